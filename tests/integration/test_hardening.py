"""Bad input at the edge, through the ASGI app: the reserved tensor name, echoed input cut to a
bounded length, a stalled body, settings refused at start-up, the 412's `instance`. The
protocol layer's bounds (head size and time) are tested live, in tests/e2e/test_hardening_live.py.
"""

from __future__ import annotations

import base64
import json
import time
import zlib
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from starlette.responses import PlainTextResponse

from service import cli
from service.api import create_app
from service.api.middleware import BodyLimit
from service.config import Settings

PROBLEM = "application/problem+json"
HUGE = "x" * 900_000  # a 900 KB scheme name


def manifest_url(body: dict[str, Any]) -> str:
    packed = zlib.compress(json.dumps(body).encode())
    return "/v1/bundles/" + base64.urlsafe_b64encode(packed).decode().rstrip("=")


def assert_reserved(r: Any) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    assert "__metadata__ is reserved by the safetensors format" in r.json()["detail"]


def test_metadata_cannot_name_a_single_tensor(client: TestClient) -> None:
    body = {"scheme": "zeros", "shape": [2], "name": "__metadata__", "format": "safetensors"}
    assert_reserved(client.post("/v1/tensors", json=body))
    assert_reserved(client.get("/v1/tensors/zeros?shape=2&name=__metadata__&format=safetensors"))
    assert_reserved(client.post("/v1/tensors/describe", json=body))
    # names that only contain it are tensors' names like any other
    for name in ("__metadata__.weight", "_metadata__", "__metadata"):
        assert client.post("/v1/tensors", json={**body, "name": name}).status_code == 200


def test_metadata_cannot_name_a_bundle_member(client: TestClient) -> None:
    manifest = {"seed": 1, "tensors": [{"name": "__metadata__", "shape": [2], "scheme": "zeros"}]}
    assert_reserved(client.post("/v1/bundles", json=manifest))
    assert_reserved(client.get(manifest_url(manifest)))


def asgi(
    app: Any,
    method: str,
    path: str,
    chunks: list[bytes],
    *,
    query: bytes = b"",
    stall: bool = False,
    delay: float = 0.0,
) -> tuple[list[dict[str, Any]], float]:
    """Run one request through `app` itself, below any HTTP client (httpx refuses URLs over
    64 KiB) and server: its body is `chunks`, each `delay` seconds after the last, then stops
    for good if `stall`. The messages sent back, and the seconds it took."""
    sent: list[dict[str, Any]] = []
    headers = [(b"content-length", str(100 if stall else sum(map(len, chunks))).encode())]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    left = list(chunks)

    async def receive() -> dict[str, Any]:
        if left:
            await anyio.sleep(delay)
            return {"type": "http.request", "body": left.pop(0), "more_body": stall or bool(left)}
        if not stall:
            return {"type": "http.request", "body": b"", "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    began = time.monotonic()
    anyio.run(app, scope, receive, send)
    return sent, time.monotonic() - began


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/v1/tensors/{HUGE}", None),
        ("POST", "/v1/tensors", {"scheme": HUGE, "shape": [2]}),
        ("POST", "/v1/tensors/describe", {"scheme": HUGE, "shape": [2]}),
        ("POST", "/v1/bundles", {"tensors": [{"name": "a", "shape": [], "scheme": HUGE}]}),
    ],
    ids=["get", "post", "describe", "bundle"],
)
def test_an_unknown_scheme_is_not_echoed_whole(method: str, path: str, body: Any) -> None:
    app = create_app(Settings(max_body_bytes=1 << 21))
    chunks = [] if body is None else [json.dumps(body).encode()]
    sent, _ = asgi(app, method, path, chunks, query=b"shape=2")
    assert sent[0]["status"] == 422
    assert dict(sent[0]["headers"])[b"content-type"] == PROBLEM.encode()
    assert len(sent[1]["body"]) < 4096
    detail = json.loads(sent[1]["body"])["detail"]
    assert "unknown scheme 'xxx" in detail
    assert "…" in detail
    assert "expected one of" in detail  # the useful part is kept


def test_validation_errors_echo_bounded_values_pointers_and_counts(client: TestClient) -> None:
    # a huge bad value, a huge unknown key (a pointer is made of the client's keys), and a
    # thousand bad members: the answer stays a few KB
    r = client.post("/v1/tensors", json={"scheme": "zeros", "shape": [2], "dtype": HUGE})
    assert r.status_code == 422
    assert len(r.content) < 4096
    assert r.json()["errors"][0]["received"].endswith("…")
    r = client.post("/v1/tensors", json={"scheme": "zeros", "shape": [2], HUGE: 1})
    assert r.status_code == 422
    assert len(r.content) < 4096
    bad = [{"name": "-bad", "shape": [2], "scheme": "zeros"}] * 1000
    r = client.post("/v1/bundles", json={"tensors": bad})
    assert r.status_code == 422
    assert len(r.content) < 16384
    problem = r.json()
    assert len(problem["errors"]) == 20
    assert problem["detail"].startswith("1000 errors, the first 20 listed: ")


def test_a_long_unknown_path_is_cut_in_the_404(client: TestClient) -> None:
    r = client.get("/" + "p" * 20_000)
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM
    assert len(r.content) < 1024


def test_the_412_problem_names_its_request(client: TestClient) -> None:
    body = {"shape": [4, 4], "scheme": "he_normal", "seed": 3}
    etag = client.head("/v1/tensors/he_normal?shape=4,4&seed=3").headers["etag"]
    r = client.post(
        "/v1/tensors", json=body, headers={"If-None-Match": etag, "X-Request-ID": "pre-1"}
    )
    assert r.status_code == 412
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["instance"] == "urn:weightgen:request:pre-1"
    assert r.headers["x-request-id"] == "pre-1"


def test_a_stalled_body_gets_a_408_problem() -> None:
    app = create_app(Settings(body_timeout=0.2))
    sent, took = asgi(app, "POST", "/v1/tensors", [b'{"shape"'], stall=True)
    start, body = sent[0], json.loads(sent[1]["body"])
    assert start["status"] == 408
    headers = dict(start["headers"])
    assert headers[b"content-type"] == PROBLEM.encode()
    assert headers[b"connection"] == b"close"  # the rest of the body is not waited for
    assert body["type"] == "urn:weightgen:problem:request-timeout"
    assert "stalled for 0.2 s after 8 bytes" in body["detail"]
    assert body["instance"].startswith("urn:weightgen:request:")
    assert took < 2.0  # 10x the setting: it happened, by the timeout


def test_the_body_timeout_is_per_read() -> None:
    """As nginx's client_body_timeout: between two reads, not for the whole body."""
    got: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        more = True
        while more:
            message = await receive()
            got.append(message["body"])
            more = message["more_body"]
        await PlainTextResponse("ok")(scope, receive, send)

    limit = BodyLimit(app, limit=1 << 20, timeout=1.0)
    sent, took = asgi(limit, "POST", "/", [b"a"] * 30, delay=0.05)
    assert sent[0]["status"] == 200
    assert took > 1.0  # the whole body took longer than the timeout, no read did
    assert b"".join(got) == b"a" * 30
    sent, _ = asgi(limit, "POST", "/", [b"a"] * 5, stall=True)
    assert sent[0]["status"] == 408
    assert "after 5 bytes" in json.loads(sent[1]["body"])["detail"]


def test_blank_api_keys_are_refused_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIGHTGEN_API_KEYS", '[""]')
    with pytest.raises(ValidationError, match="API keys must be non-empty"):
        Settings()
    with pytest.raises(ValidationError, match="API keys must be non-empty"):
        create_app()
    with pytest.raises(ValidationError):
        Settings(api_keys=["ok", " padded "])


def test_serve_exits_with_one_line_on_bad_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WEIGHTGEN_API_KEYS", '["secret-key", ""]')
    with pytest.raises(SystemExit) as exited:
        cli.main(["serve", "--port", "0"])
    assert exited.value.code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("weightgen: error: WEIGHTGEN_API_KEYS: ")
    assert "non-empty" in err
    assert "Traceback" not in err
    assert "secret-key" not in err  # the value given is not printed: it may be a key
    monkeypatch.setenv("WEIGHTGEN_API_KEYS", "not json")
    with pytest.raises(SystemExit) as exited:
        cli.main(["serve"])
    assert exited.value.code == cli.EXIT_USAGE
    assert "api_keys" in capsys.readouterr().err
