"""Parallel downloaders against a live server with the default settings: `aria2c -x 16` and the
client with 16 connections finish with no 503 behind WEIGHTGEN_MAX_STREAMS=4, because a request
that finds every slot taken waits for one (WEIGHTGEN_SLOT_WAIT), first come first served, a
bounded number of them; and the wait itself (`Capacity.claim`), in process and live."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from starlette.types import Message, Receive

from bench.live import Server, live_server
from service.api.stream import Capacity, Claim
from service.client import Client

SHAPE = (4096, 4096)  # 64 MiB of raw float32
PINNED = f"/v1/tensors/he_normal?shape={SHAPE[0]},{SHAPE[1]}&seed=11&format=raw"
SMALL = "/v1/tensors/he_normal?shape=256,256&seed={seed}&format=raw"  # 256 KiB: takes a slot


# --- live helpers -----------------------------------------------------------------------------


def samples(server: Server, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    total = 0.0
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        key, value = line.rsplit(" ", 1)
        base, _, rest = key.partition("{")
        if base == name and all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += float(value)
    return total


def answered(server: Server, status: int) -> int:
    return int(samples(server, "weightgen_requests_total", status=str(status)))


def waiting(server: Server) -> int:
    return int(samples(server, "weightgen_streams_waiting"))


def wait_until(done: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"still not {what} after {seconds} s"
        time.sleep(0.05)


def direct_sha256(url: str) -> str:
    h = hashlib.sha256()
    with httpx.stream("GET", url, timeout=120) as r:
        assert r.status_code == 200
        for chunk in r.iter_raw(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


@pytest.fixture(scope="module")
def one_slot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One generation slot, a long wait: at most 4 waiters."""
    env = {"WEIGHTGEN_MAX_STREAMS": "1", "WEIGHTGEN_SLOT_WAIT": "30"}
    with live_server(tmp_path_factory.mktemp("one-slot"), env) as s:
        yield s


# --- parallel downloaders -------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("aria2c") is None, reason="aria2c is not installed (apt aria2)")
def test_aria2c_with_16_connections_gets_no_503(server: Server, tmp_path: Path) -> None:
    url = server.url + PINNED
    expected = direct_sha256(url)
    refused = answered(server, 503)
    options = ["--no-conf", "--summary-interval=0", "--allow-overwrite=true"]
    run = subprocess.run(
        [
            "aria2c",
            "-x",
            "16",
            "-s",
            "16",
            "-k",
            "1M",
            *options,
            "-d",
            str(tmp_path),
            "-o",
            "w.bin",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    said = run.stdout + run.stderr
    assert run.returncode == 0, said
    assert "status=503" not in said, said
    assert "ERROR" not in said, said
    assert file_sha256(tmp_path / "w.bin") == expected
    assert answered(server, 503) == refused
    assert answered(server, 206) >= 8, "aria2c did not split the download"


def test_the_client_with_16_connections_needs_no_retry(server: Server, tmp_path: Path) -> None:
    expected = direct_sha256(server.url + PINNED)
    refused, parts = answered(server, 503), answered(server, 206)
    with Client(server.url, retries=4) as c:
        r = c.resource("he_normal", list(SHAPE), seed=11, format="raw")
        c.save(r, tmp_path / "w.bin", connections=16)
    assert file_sha256(tmp_path / "w.bin") == expected
    assert answered(server, 503) == refused, "the client's retry path fired"
    assert answered(server, 206) - parts == 16, "a range was asked for again"
    assert samples(server, "weightgen_slot_wait_seconds_count", outcome="full") == 0


# --- the wait, live -------------------------------------------------------------------------


class Background:
    """A GET in a thread: its response (or error) once done."""

    def __init__(self, url: str, timeout: float = 60) -> None:
        self.response: httpx.Response | None = None
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._get, args=(url, timeout), daemon=True)
        self.thread.start()

    def _get(self, url: str, timeout: float) -> None:
        try:
            self.response = httpx.get(url, timeout=timeout)
        except Exception as exc:  # kept for the test to look at
            self.error = exc

    def result(self) -> httpx.Response:
        self.thread.join(60)
        assert self.response is not None, self.error
        return self.response


def test_a_waiting_request_is_handed_the_freed_slot(one_slot: Server) -> None:
    server, url = one_slot, one_slot.url + PINNED
    taken = samples(server, "weightgen_slot_wait_seconds_count", outcome="taken")
    with httpx.stream("GET", url, timeout=60) as first:
        chunks = first.iter_raw(1 << 16)  # kept alive: a dropped iterator closes the stream
        next(chunks)
        second = Background(server.url + SMALL.format(seed=1))
        wait_until(lambda: waiting(server) == 1, "waiting")
        assert second.response is None
    assert second.result().status_code == 200  # the first left: its slot went to the second
    assert waiting(server) == 0
    assert samples(server, "weightgen_slot_wait_seconds_count", outcome="taken") == taken + 1


def test_waiters_are_bounded_and_one_that_leaves_frees_its_place(one_slot: Server) -> None:
    server = one_slot  # 4 waiters at most
    left = samples(server, "weightgen_slot_wait_seconds_count", outcome="gone")
    closed = answered(server, 499)
    with httpx.stream("GET", server.url + PINNED, timeout=60) as first:
        chunks = first.iter_raw(1 << 16)
        next(chunks)
        leaving = [Background(server.url + SMALL.format(seed=s), timeout=1) for s in range(4)]
        for b in leaving:
            b.thread.join(30)
            assert isinstance(b.error, httpx.ReadTimeout)  # and the client closed
        wait_until(lambda: waiting(server) == 0, "rid of the waiters that left")
        staying = [Background(server.url + SMALL.format(seed=s)) for s in range(4, 8)]
        wait_until(lambda: waiting(server) == 4, "waiting, in the places given back")
        began = time.monotonic()
        beyond = httpx.get(server.url + SMALL.format(seed=9), timeout=60)
        assert beyond.status_code == 503
        assert time.monotonic() - began < 25, "the fifth waited: it should be refused at once"
        assert beyond.headers["retry-after"] == "1"
        assert "waiting" in beyond.json()["detail"]
    assert [b.result().status_code for b in staying] == [200] * 4
    assert samples(server, "weightgen_slot_wait_seconds_count", outcome="gone") == left + 4
    assert answered(server, 499) == closed + 4  # logged as nginx logs a client that left


def test_a_wait_that_runs_out_is_a_503(start_server: Callable[..., Server]) -> None:
    server = start_server(max_streams="1", slot_wait="1")
    with httpx.stream("GET", server.url + PINNED, timeout=60) as first:
        chunks = first.iter_raw(1 << 16)
        next(chunks)
        late = httpx.get(server.url + SMALL.format(seed=1), timeout=60)
    assert late.status_code == 503
    assert late.headers["retry-after"] == "1"
    detail = late.json()["detail"]
    assert "WEIGHTGEN_MAX_STREAMS" in detail
    assert "within 1 s" in detail


# --- the wait, in process -------------------------------------------------------------------


def connected() -> Receive:
    """A client's `receive` that never disconnects."""

    async def receive() -> Message:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    return receive


def leaves(gone: anyio.Event) -> Receive:
    """A bodiless request's `receive`: its one empty message, then a disconnect once `gone`."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    return receive


def run(test: Callable[[], Any]) -> None:
    anyio.run(test)


def test_first_come_first_served_and_no_one_jumps_the_queue() -> None:
    async def main() -> None:
        capacity, order = Capacity(1), list[int]()
        assert capacity.acquire()

        async def waiter(i: int) -> None:
            assert await capacity.claim(10, connected()) == "taken"
            order.append(i)
            await anyio.sleep(0.01)
            capacity.release()

        async with anyio.create_task_group() as group:
            for i in range(3):
                group.start_soon(waiter, i)
                await anyio.sleep(0.01)  # queued in this order
            assert capacity.waiting == 3
            capacity.release()  # handed to waiter 0: still in use
            assert capacity.in_use == 1
            assert not capacity.acquire(), "a newcomer took a slot ahead of the waiters"
        assert order == [0, 1, 2]
        assert (capacity.in_use, capacity.waiting) == (0, 0)

    run(main)


def test_a_wait_is_bounded_in_time_and_in_waiters() -> None:
    async def main() -> None:
        capacity = Capacity(1)
        assert capacity.acquire()
        assert await capacity.claim(0, connected()) == "full"  # no wait at all
        began = time.monotonic()
        assert await capacity.claim(0.05, connected()) == "full"
        assert time.monotonic() - began < 5
        assert capacity.waiting == 0
        claims = list[Claim]()

        async def waiter() -> None:
            claims.append(await capacity.claim(10, connected()))

        async with anyio.create_task_group() as group:
            for _ in range(capacity.max_waiters):
                group.start_soon(waiter)
            await anyio.sleep(0.01)
            assert capacity.waiting == capacity.max_waiters == 4
            assert await capacity.claim(10, connected()) == "full"  # beyond: at once
            group.cancel_scope.cancel()
        assert (capacity.in_use, capacity.waiting, claims) == (1, 0, [])

    run(main)


def test_a_waiter_that_disconnects_leaves_the_queue() -> None:
    async def main() -> None:
        capacity, gone = Capacity(1), anyio.Event()
        assert capacity.acquire()
        claims = list[Claim]()

        async def waiter(receive: Receive) -> None:
            claims.append(await capacity.claim(10, receive))

        async with anyio.create_task_group() as group:
            group.start_soon(waiter, leaves(gone))
            group.start_soon(waiter, connected())
            await anyio.sleep(0.01)
            gone.set()
            await anyio.sleep(0.01)
            assert claims == ["gone"]
            assert capacity.waiting == 1
            capacity.release()  # to the one that stayed
        assert claims == ["gone", "taken"]
        assert (capacity.in_use, capacity.waiting) == (1, 0)

    run(main)


def test_a_slot_handed_to_a_waiter_cancelled_meanwhile_is_passed_on() -> None:
    async def main() -> None:
        capacity = Capacity(1)
        assert capacity.acquire()
        claims = list[Claim]()

        async def waiter() -> None:
            claims.append(await capacity.claim(10, connected()))

        async with anyio.create_task_group() as outer:
            with anyio.CancelScope() as first:
                async with anyio.create_task_group() as group:
                    group.start_soon(waiter)
                    outer.start_soon(waiter)
                    await anyio.sleep(0.01)
                    first.cancel()  # the first waiter is being cancelled ...
                    capacity.release()  # ... when the slot is handed to it, in the same step
        assert claims == ["taken"]  # the second, in the slot the first could not use
        assert (capacity.in_use, capacity.waiting) == (1, 0)
        capacity.release()
        assert capacity.in_use == 0

    run(main)
