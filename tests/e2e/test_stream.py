"""Streaming against a live uvicorn: bounded memory, disconnects stop the work, capacity."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import httpx
import pytest

from bench.live import Server, peak_rss

GIB = 1 << 30


def metric(server: Server, name: str) -> int:
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    raise AssertionError(f"no {name} in /metrics")


def generated(server: Server) -> int:
    return metric(server, "weightgen_generated_elements_total")


def wait_until(done: Callable[[], bool], what: str, seconds: float = 30) -> None:
    """Poll server state (not a latency bound: the deadline only keeps a hang from hanging)."""
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"still not {what} after {seconds} s"
        time.sleep(0.05)


def no_streams(server: Server) -> bool:
    return metric(server, "weightgen_streams_in_flight") == 0


def peak_rss_while(server: Server, request: Callable[[], int]) -> tuple[int, int]:
    """(bytes received, peak RSS rise over idle) while `request` runs, RSS from /proc."""
    httpx.get(f"{server.url}/v1/tensors/he_normal?shape=2048,2048&seed=1").raise_for_status()
    received, idle, peak = peak_rss(server.pid, request)
    return received, peak - idle


def drain(method: str, url: str, length: int, body: object = None) -> int:
    received = 0
    with httpx.stream(method, url, timeout=300, json=body) as r:
        assert r.status_code == 200
        assert int(r.headers["content-length"]) == length
        for chunk in r.iter_raw(1 << 20):
            received += len(chunk)
    return received


@pytest.mark.slow
def test_a_gibibyte_streams_in_bounded_memory(server: Server) -> None:
    url = f"{server.url}/v1/tensors/he_normal?shape=16384,16384&seed=2&format=raw"
    received, rise = peak_rss_while(server, lambda: drain("GET", url, GIB))
    assert received == GIB
    assert rise <= 64 << 20, f"RSS rose {rise / 2**20:.0f} MiB"


@pytest.mark.slow
def test_a_two_gibibyte_bundle_streams_in_bounded_memory(server: Server) -> None:
    layer = {"preset": "gpt2.Linear", "in_features": 8192, "out_features": 8192, "bias": False}
    manifest = {"seed": 5, "layers": [{**layer, "name": f"h.{i}"} for i in range(8)]}
    d = httpx.post(f"{server.url}/v1/bundles/describe", json=manifest).json()
    assert d["content_length"] - d["header_bytes"] == 2 * GIB
    url = f"{server.url}/v1/bundles"
    received, rise = peak_rss_while(
        server, lambda: drain("POST", url, d["content_length"], manifest)
    )
    assert received == d["content_length"]
    assert rise <= 64 << 20, f"RSS rose {rise / 2**20:.0f} MiB"


def test_a_client_that_disconnects_stops_the_generation(server: Server) -> None:
    before = generated(server)
    url = f"{server.url}/v1/tensors/he_normal?shape=16384,16384&seed=3&format=raw"
    with httpx.stream("GET", url, timeout=60) as r:
        got = 0
        for chunk in r.iter_raw(1 << 20):
            got += len(chunk)
            if got >= 16 << 20:
                break
    wait_until(lambda: no_streams(server), "done with the stream")  # its work is awaited
    after_close = generated(server)
    time.sleep(1.0)
    assert generated(server) == after_close, "generation went on after the client left"
    assert after_close - before < (GIB // 4) // 4, "far more was generated than was sent"


def test_streams_beyond_capacity_get_503_with_retry_after(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(max_streams="1", slot_wait="0")
    url = f"{server.url}/v1/tensors/he_normal?shape=8192,8192&seed=4&format=raw"
    with httpx.stream("GET", url, timeout=60) as first:
        assert first.status_code == 200
        chunks = first.iter_raw(1 << 16)  # kept alive: a dropped iterator closes the stream
        next(chunks)
        second = httpx.get(url, timeout=60)
        assert second.status_code == 503
        assert second.headers["content-type"] == "application/problem+json"
        assert second.headers["retry-after"] == "1"
        assert "WEIGHTGEN_MAX_STREAMS" in second.json()["detail"]
    wait_until(lambda: no_streams(server), "done with the first stream")
    with httpx.stream("GET", url, timeout=60) as third:
        assert third.status_code == 200


def listening(server: Server) -> bool:
    try:
        httpx.get(f"{server.url}/healthz", timeout=2)
    except httpx.TransportError:
        return False
    return True


def test_sigterm_lets_streams_in_flight_finish(start_server: Callable[..., Server]) -> None:
    server = start_server(shutdown_timeout="60")
    url = f"{server.url}/v1/tensors/he_normal?shape=4096,4096&seed=6&format=raw"
    with httpx.stream("GET", url, timeout=60) as r:
        chunks = r.iter_raw()
        received = len(next(chunks))
        server.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: not listening(server), "closed to new connections")
        with pytest.raises(httpx.TransportError):  # no new connections while shutting down
            httpx.get(f"{server.url}/healthz", timeout=2)
        received += sum(len(c) for c in chunks)
    assert received == 4096 * 4096 * 4
    # uvicorn finishes, then re-raises the signal so the exit status says SIGTERM (143)
    assert server.proc.wait(timeout=30) in (0, -signal.SIGTERM)
    assert "Finished server process" in server.log.read_text()


def test_a_client_that_stops_reading_gives_its_slot_back(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(max_streams="1", send_timeout="1")
    url = f"{server.url}/v1/tensors/he_normal?shape=16384,4096&seed=8&format=raw"
    with httpx.stream("GET", url, timeout=60) as stalled:
        assert stalled.status_code == 200  # and never read: the socket buffers fill, send blocks
        deadline = time.monotonic() + 20
        while True:
            retry = httpx.get(url.replace("seed=8", "seed=9").replace("16384", "64"), timeout=60)
            if retry.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert retry.status_code == 200
    assert "stream abandoned" in server.log.read_text()
