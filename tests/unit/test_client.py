"""service.client against mock transports: retries, typed problems, integrity checks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.client import (
    Client,
    IntegrityError,
    ProblemError,
    Resource,
    UnreachableError,
    split,
)

PAYLOAD = bytes(range(256)) * 40
ETAG = '"abc"'


class Broken(httpx.SyncByteStream):
    """A body that stops with a connection reset after `n` bytes."""

    def __init__(self, data: bytes, request: httpx.Request) -> None:
        self.data, self.request = data, request

    def __iter__(self) -> Iterator[bytes]:
        yield self.data
        raise httpx.ReadError("connection reset", request=self.request)


def serve_ranges(request: httpx.Request, etag: str = ETAG) -> httpx.Response:
    header = request.headers.get("range")
    if header is None:
        return httpx.Response(200, stream=httpx.ByteStream(PAYLOAD), headers={"ETag": etag})
    a, b = header.removeprefix("bytes=").split("-")
    start, stop = int(a), int(b) + 1
    body = httpx.ByteStream(PAYLOAD[start:stop])
    return httpx.Response(206, stream=body, headers={"ETag": etag})


def test_split_covers_the_range() -> None:
    assert split(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert split(2, 8) == [(0, 1), (1, 2)]
    assert split(0, 4) == [(0, 0)]


def test_retries_503_and_honours_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    waits: list[float] = []
    monkeypatch.setattr("service.client.time.sleep", waits.append)

    def handler(_: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) < 3:
            return httpx.Response(503, json={"title": "busy"}, headers={"Retry-After": "2"})
        return httpx.Response(200, json={"schemes": []})

    with Client("http://x", transport=httpx.MockTransport(handler), backoff=0.001) as c:
        assert c.schemes() == {"schemes": []}
    assert len(calls) == 3
    assert waits == [2.0, 2.0]  # the server's Retry-After, longer than the backoff


def test_problems_become_typed_errors() -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        problem = {
            "type": "urn:weightgen:problem:invalid-scheme",
            "title": "Invalid scheme",
            "status": 422,
            "detail": "unknown scheme 'x'",
        }
        return httpx.Response(422, json=problem)

    with (
        Client("http://x", transport=httpx.MockTransport(handler)) as c,
        pytest.raises(ProblemError) as info,
    ):
        c.describe("x", [2])
    assert info.value.status == 422
    assert info.value.problem["type"] == "urn:weightgen:problem:invalid-scheme"
    assert "unknown scheme 'x'" in str(info.value)


def test_connection_errors_retry_then_raise_unreachable() -> None:
    attempts: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        raise httpx.ConnectError("refused", request=request)

    mock = httpx.MockTransport(handler)
    with Client("http://x", transport=mock, retries=2, backoff=0.001) as c:  # noqa: SIM117
        with pytest.raises(UnreachableError, match="cannot reach"):
            c.schemes()
    assert len(attempts) == 3  # the first try and two retries


def test_parallel_ranges_reassemble_the_payload() -> None:
    r = Resource("/t", len(PAYLOAD), ETAG, {})
    with Client("http://x", transport=httpx.MockTransport(serve_ranges)) as c:
        assert c.fetch(r, connections=5) == PAYLOAD
        assert c.fetch(r) == PAYLOAD


def test_a_changed_etag_is_an_integrity_error() -> None:
    r = Resource("/t", len(PAYLOAD), ETAG, {})
    mock = httpx.MockTransport(lambda q: serve_ranges(q, '"new"'))
    with (
        Client("http://x", transport=mock) as c,
        pytest.raises(IntegrityError, match="ETag changed"),
    ):
        c.fetch(r, connections=2)


def test_a_short_body_is_resumed_with_range_and_if_range() -> None:
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.headers))
        if len(seen) == 1:  # the first answer breaks after 1000 bytes
            return httpx.Response(
                200, stream=Broken(PAYLOAD[:1000], request), headers={"ETag": ETAG}
            )
        return serve_ranges(request)

    r = Resource("/t", len(PAYLOAD), ETAG, {})
    with Client("http://x", transport=httpx.MockTransport(handler), backoff=0.001) as c:
        assert c.fetch(r) == PAYLOAD
    assert seen[1]["range"] == f"bytes=1000-{len(PAYLOAD) - 1}"
    assert seen[1]["if-range"] == ETAG


def test_a_whole_answer_of_another_length_is_an_integrity_error() -> None:
    """A server that ignores Range and sends a whole 200 shorter than described."""
    short = PAYLOAD[:-1000]

    def whole(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=short, headers={"ETag": ETAG})

    mock = httpx.MockTransport(whole)
    r = Resource("/t", len(PAYLOAD), ETAG, {})
    with (
        Client("http://x", transport=mock, backoff=0.001) as c,
        pytest.raises(IntegrityError, match=f"came with {len(short)} bytes; {len(PAYLOAD)}"),
    ):
        c.fetch(r)


def test_a_server_that_sends_no_further_bytes_is_given_up_on() -> None:
    """A 206 that never gets past the same byte (empty parts): the retries run out, then an
    IntegrityError, not an endless loop."""
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("range", ""))
        body = PAYLOAD[:1000] if len(asked) == 1 else b""
        headers = {"ETag": ETAG, "Content-Range": f"bytes 0-999/{len(PAYLOAD)}"}
        return httpx.Response(206, stream=httpx.ByteStream(body), headers=headers)

    r = Resource("/t", len(PAYLOAD), ETAG, {})
    with (
        Client("http://x", transport=httpx.MockTransport(handler), retries=3) as c,
        pytest.raises(IntegrityError, match="no bytes past 1000"),
    ):
        c.fetch(r)
    assert len(asked) == 5  # the first answer, then the first try and three retries


def test_the_client_folder_works_copied_alone(tmp_path: Path) -> None:
    """docs/clients.md: `service/client/` can be copied into another project; it imports
    nothing else of the service (here `service` cannot be imported at all)."""
    shutil.copytree(Path(__file__).resolve().parents[2] / "service" / "client", tmp_path / "wg")
    code = "import sys; sys.modules['service'] = None; import wg; print(wg.Client.__name__)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "Client"


def test_the_clients_dtype_table_is_the_services() -> None:
    """The client keeps its own copy (it works copied alone): the same names and codes."""
    from service.client.dtypes import BY_CODE, numpy_dtype, torch_dtype
    from service.dtypes import DTYPES

    assert {d.safetensors: name for name, d in DTYPES.items()} == BY_CODE
    for name in DTYPES:
        assert numpy_dtype(name).itemsize == DTYPES[name].itemsize
        assert torch_dtype(name).itemsize == DTYPES[name].itemsize
