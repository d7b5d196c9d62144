"""Repr-Digest (RFC 9530): the SHA-256 of the whole representation, on 200, 206, HEAD and 304
once known; computed while a whole 200 streams, or first when `Want-Repr-Digest` asks."""

from __future__ import annotations

import base64
import hashlib
import time
import tracemalloc
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import anyio
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Message

from service.api import create_app, digests, stream
from service.api.deps import Services
from service.api.digests import Digests, wanted
from service.config import Settings

BIG = "/v1/tensors/he_normal?shape=256,256&seed=7"  # 256 KiB: streamed, not inline
WANT = {"Want-Repr-Digest": "sha-256=10"}


def field(body: bytes) -> str:
    return f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode()}:"


def state(app: Any) -> Services:
    found: Services = app.state.services
    return found


@pytest.fixture(params=[32 << 20, 0], ids=["fast-lane", "no-plan-cache"])
def either(request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """With the plan cache (repeated URLs answered by the fast lane) and without it."""
    settings = Settings(max_elements=2**24, max_bytes=2**26, plan_cache_bytes=request.param)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("fmt", ["npy", "safetensors", "raw"])
def test_a_whole_get_makes_the_digest_known_for_head_206_and_304(
    either: TestClient, fmt: str
) -> None:
    url = f"{BIG}&format={fmt}"
    first = either.get(url)
    assert first.status_code == 200
    digest = field(first.content)
    again = either.get(url)
    assert again.content == first.content
    assert again.headers["repr-digest"] == digest
    assert either.head(url).headers["repr-digest"] == digest
    part = either.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["repr-digest"] == digest  # of the whole representation, not the part
    cached = either.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert cached.status_code == 304
    assert cached.headers["repr-digest"] == digest


def test_headers_other_than_the_digest_are_unchanged(client: TestClient) -> None:
    before = client.get(BIG)
    after = client.get(BIG)
    assert after.content == before.content
    drop = {"repr-digest", "x-request-id"}
    assert {k: v for k, v in after.headers.items() if k not in drop} == {
        k: v for k, v in before.headers.items() if k not in drop
    }


def test_want_repr_digest_computes_it_on_a_head_before_any_get(either: TestClient) -> None:
    url = f"{BIG}&format=safetensors"
    head = either.head(url, headers=WANT)
    assert head.status_code == 200
    assert head.headers["repr-digest"] == field(either.get(url).content)
    assert either.head(url).headers["repr-digest"] == head.headers["repr-digest"]  # kept


def test_a_bundle_has_a_digest_too(client: TestClient) -> None:
    layers = [{"preset": "torch.Linear", "name": "fc", "in_features": 256, "out_features": 128}]
    url = client.post("/v1/bundles/describe", json={"seed": 3, "layers": layers}).json()["url"]
    asked = client.head(url, headers=WANT).headers["repr-digest"]
    body = client.get(url).content
    assert asked == field(body)
    other = {"seed": 4, "layers": layers}
    url = client.post("/v1/bundles/describe", json=other).json()["url"]
    body = client.get(url).content
    assert client.head(url).headers["repr-digest"] == field(body)  # learnt while streaming


def test_small_answers_carry_it_at_once_and_weak_etags_get_one(client: TestClient) -> None:
    small = client.get("/v1/tensors/he_normal?shape=8,8&seed=1")
    assert small.headers["repr-digest"] == field(small.content)  # inline: hashed before sent
    weak = "/v1/tensors/orthogonal?shape=64,64&seed=1"
    head = client.head(weak, headers=WANT)
    assert head.headers["etag"].startswith("W/")
    assert head.headers["repr-digest"] == field(client.get(weak).content)  # this replica's


def test_post_answers_with_the_same_digest(client: TestClient) -> None:
    body = {"scheme": "he_normal", "shape": [256, 256], "seed": 7}
    posted = client.post("/v1/tensors", json=body, headers=WANT)
    assert posted.headers["repr-digest"] == field(posted.content)
    assert posted.headers["repr-digest"] == client.head(BIG).headers["repr-digest"]


@pytest.mark.parametrize(
    "value",
    [
        "sha-256=0",
        "sha-512=10",
        "md5=3, unixsum=2",
        "sha-256",
        "sha-256=x",
        "sha-256=11",
        "sha-256=-1",
        ",,;=",
        "sha-256=1" + "0" * 40,
        "sha-256=1\u00e9".encode("latin-1"),
    ],
)
def test_not_asking_for_sha256_computes_nothing(client: TestClient, value: str | bytes) -> None:
    asked = value if isinstance(value, bytes) else value.encode()
    head = client.head(BIG, headers={b"Want-Repr-Digest": asked})
    assert head.status_code == 200
    assert "repr-digest" not in head.headers
    assert len(state(client.app).digests) == 0


def test_what_asks_for_sha256() -> None:
    assert wanted(["sha-256=10"])
    assert wanted(["sha-512=3, sha-256=1"])
    assert wanted(["SHA-256=5;q=1"])
    assert wanted(["unixsum=1", "sha-256=2"])  # repeated header lines join as one list
    assert not wanted(["sha-256=4, sha-256=0"])  # a repeated key: the last one counts
    assert not wanted([])


async def _stream(app: FastAPI, query: str, *, cut: bool) -> int:
    """Drive one GET through the ASGI app; with `cut`, the client disconnects after the first
    body message and reads nothing more. The number of body messages received."""
    first = anyio.Event()
    bodies: list[Message] = []
    requested = False

    async def receive() -> Message:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        if not cut:
            await anyio.sleep_forever()  # the whole body is read: cancelled once it is sent
        await first.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            bodies.append(message)
            first.set()
            if cut:
                await anyio.sleep_forever()  # a client that reads no more

    await app(_scope("GET", query, []), receive, send)
    return len(bodies)


def test_a_stream_cut_short_stores_no_digest() -> None:
    app = create_app(Settings(block_elements=1024, max_elements=2**22, max_bytes=2**24))
    digests = state(app).digests

    async def both() -> tuple[int, int]:
        whole = await _stream(app, "shape=1024,1024&seed=1&format=raw", cut=False)
        stored = len(digests)
        await _stream(app, "shape=1024,1024&seed=2&format=raw", cut=True)
        return whole, stored

    whole, stored = anyio.run(both)
    assert whole > 2
    assert stored == 1
    assert len(digests) == 1  # the cut one was not
    with TestClient(app) as c:
        url = "/v1/tensors/he_normal?shape=1024,1024&format=raw&seed="
        assert "repr-digest" in c.head(f"{url}1").headers
        assert "repr-digest" not in c.head(f"{url}2").headers


def test_computing_a_large_digest_takes_o_block_memory() -> None:
    size = 4096 * 4096 * 4  # 64 MiB of float32
    settings = Settings(block_elements=1 << 16, max_elements=2**24, max_bytes=2**27)
    with TestClient(create_app(settings)) as c:
        url = "/v1/tensors/he_normal?shape=4096,4096&seed=5&format=raw"
        c.head(url)  # planned and warmed up outside the measurement
        tracemalloc.start()
        try:
            np.ones(size // 4, dtype=np.uint8)  # the check: numpy's buffers are traced
            assert tracemalloc.get_traced_memory()[1] >= size // 4
            tracemalloc.reset_peak()
            head = c.head(url, headers=WANT)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert "repr-digest" in head.headers
        assert peak < size // 16, f"peak {peak} bytes computing a digest of {size}"


def test_capacity_full_is_503_with_retry_after() -> None:
    app = create_app(Settings(max_streams=1, slot_wait=0))
    capacity = state(app).capacity
    with TestClient(app, raise_server_exceptions=False) as c:
        assert capacity.acquire()  # the one slot, held by "another stream"
        try:
            busy = c.get(BIG, headers=WANT)
            head = c.head(BIG, headers=WANT)
            small = c.head("/v1/tensors/he_normal?shape=4,4&seed=1", headers=WANT)
        finally:
            capacity.release()
        assert busy.status_code == head.status_code == 503
        assert busy.headers["retry-after"]
        assert busy.json()["type"] == "urn:weightgen:problem:overloaded"
        assert small.status_code == 200
        assert "repr-digest" in small.headers
        assert "repr-digest" in c.head(BIG, headers=WANT).headers  # once the slot is free
        assert capacity.in_use == 0


def test_the_store_is_bounded_least_recently_used_out(client: TestClient) -> None:
    store = state(client.app).digests
    payloads = []
    for seed in range(3):
        client.get(f"/v1/tensors/he_normal?shape=4,4&seed={seed}")
        payloads.append(list(state(client.app).plans.entries.values())[-1][0])
    bounded = Digests(entries=2)
    for i, p in enumerate(payloads):
        bounded.put(p, bytes([i]) * 32)
        if i == 1:
            assert bounded.get(payloads[0]) is not None  # used: the second is the oldest now
    assert len(bounded) == 2
    assert bounded.get(payloads[1]) is None
    assert bounded.get(payloads[0]) == bytes(32)
    assert len(store) == 3


class _SlowSha256:
    """SHA-256 whose every update takes 50 ms: the stream's hashing thread lags behind it."""

    def __init__(self) -> None:
        self.inner = hashlib.sha256()

    def update(self, data: bytes) -> None:
        time.sleep(0.05)
        self.inner.update(data)

    def digest(self) -> bytes:
        return self.inner.digest()


def _scope(method: str, query: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": "/v1/tensors/he_normal",
        "raw_path": b"/v1/tensors/he_normal",
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"test"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }


async def _call(app: FastAPI, scope: dict[str, Any], leave: anyio.Event) -> list[Message]:
    """One request through the ASGI app; its client disconnects once `leave` is set."""
    sent: list[Message] = []
    requested = False

    async def receive() -> Message:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await leave.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def _read_whole_then(app: FastAPI, query: str, then: Any) -> bytes:
    """A GET whose client, once it has every byte (Content-Length), runs `then(leave)` while the
    server may still be hashing; `leave` set makes it disconnect."""
    leave, whole = anyio.Event(), anyio.Event()
    body = bytearray()
    length = -1

    async def send(message: Message) -> None:
        nonlocal length
        if message["type"] == "http.response.start":
            length = int(dict(message["headers"])[b"content-length"])
        else:
            body.extend(message["body"])
            if len(body) == length:
                whole.set()

    async def receive() -> Message:
        if not body and length < 0:
            return {"type": "http.request", "body": b"", "more_body": False}
        await leave.wait()
        return {"type": "http.disconnect"}

    async with anyio.create_task_group() as group:
        group.start_soon(app, _scope("GET", query, []), receive, send)
        await whole.wait()
        await then(leave)
        leave.set()
    return bytes(body)


SLOW_QUERY = "shape=1024,1024&seed=3&format=raw"  # 16 blocks of 64K elements


def _slow_app(monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    monkeypatch.setattr(stream, "hashlib", SimpleNamespace(sha256=_SlowSha256))
    return create_app(Settings(block_elements=1 << 16, max_elements=2**22, max_bytes=2**24))


def test_a_client_that_reads_every_byte_and_leaves_still_leaves_the_digest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = _slow_app(monkeypatch)

    async def leave_at_once(leave: anyio.Event) -> None:
        leave.set()  # the disconnect arrives while the last blocks are being hashed

    body = anyio.run(_read_whole_then, app, SLOW_QUERY, leave_at_once)
    with TestClient(app) as c:
        head = c.head(f"/v1/tensors/he_normal?{SLOW_QUERY}")
    assert head.headers["repr-digest"] == field(body)


def test_a_digest_wanted_while_a_stream_hashes_its_last_blocks_is_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = _slow_app(monkeypatch)
    computed: list[object] = []

    def compute(*args: object) -> bytes:
        computed.append(args)
        return b"\0" * 32

    monkeypatch.setattr(digests, "compute", compute)
    heads: list[Message] = []

    async def ask(leave: anyio.Event) -> None:
        scope = _scope("HEAD", SLOW_QUERY, [(b"want-repr-digest", b"sha-256=10")])
        heads.extend(await _call(app, scope, leave))

    body = anyio.run(_read_whole_then, app, SLOW_QUERY, ask)
    headers = dict(heads[0]["headers"])
    assert headers[b"repr-digest"].decode() == field(body)
    assert computed == []  # the stream's digest, not a second generation of every byte


class _FailingSha256(_SlowSha256):
    """The slow SHA-256 whose last update (the 16th block) fails: the stream has produced
    every byte by then, and its hashing task raises."""

    def update(self, data: bytes) -> None:
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 16:
            raise MemoryError("hashing failed")
        super().update(data)


def test_a_failed_hash_keeps_no_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "hashlib", SimpleNamespace(sha256=_FailingSha256))
    app = create_app(Settings(block_elements=1 << 16, max_elements=2**22, max_bytes=2**24))
    with TestClient(app, raise_server_exceptions=False) as c:
        url = f"/v1/tensors/he_normal?{SLOW_QUERY}"
        c.get(url)  # every byte is sent; the hashing of the last block fails after
        assert "repr-digest" not in c.head(url).headers  # not the digest of 15 blocks
