"""Streaming against a live uvicorn: bounded memory, disconnects stop the work, capacity."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
import pytest

from tests.e2e.conftest import Server

GIB = 1 << 30


def generated(server: Server) -> int:
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith("weightgen_generated_elements_total "):
            return int(line.split()[1])
    raise AssertionError("no work counter")


@pytest.mark.slow
def test_a_gibibyte_streams_in_bounded_memory(server: Server) -> None:
    httpx.get(f"{server.url}/v1/tensors/he_normal?shape=2048,2048&seed=1").raise_for_status()
    idle = server.rss()
    peak = idle
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, server.rss())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    received = 0
    try:
        url = f"{server.url}/v1/tensors/he_normal?shape=16384,16384&seed=2&format=raw"
        with httpx.stream("GET", url, timeout=120) as r:
            assert r.status_code == 200
            assert int(r.headers["content-length"]) == GIB
            for chunk in r.iter_raw(1 << 20):
                received += len(chunk)
    finally:
        done.set()
        sampler.join()
    assert received == GIB
    assert peak - idle <= 64 * (1 << 20), (
        f"peak RSS {peak / 2**20:.0f} MiB, idle {idle / 2**20:.0f} MiB"
    )


def test_a_client_that_disconnects_stops_the_generation(server: Server) -> None:
    before = generated(server)
    url = f"{server.url}/v1/tensors/he_normal?shape=16384,16384&seed=3&format=raw"
    with httpx.stream("GET", url, timeout=60) as r:
        got = 0
        for chunk in r.iter_raw(1 << 20):
            got += len(chunk)
            if got >= 16 << 20:
                break
    time.sleep(1.0)
    after_close = generated(server)
    time.sleep(1.0)
    assert generated(server) == after_close, "generation went on after the client left"
    assert after_close - before < (GIB // 4) // 4, "far more was generated than was sent"


def test_streams_beyond_capacity_get_503_with_retry_after(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(max_streams="1")
    url = f"{server.url}/v1/tensors/he_normal?shape=8192,8192&seed=4&format=raw"
    with httpx.stream("GET", url, timeout=60) as first:
        assert first.status_code == 200
        next(first.iter_raw(1 << 16))
        second = httpx.get(url, timeout=60)
        assert second.status_code == 503
        assert second.headers["content-type"] == "application/problem+json"
        assert second.headers["retry-after"] == "1"
        assert "WEIGHTGEN_MAX_STREAMS" in second.json()["detail"]
    time.sleep(0.5)
    with httpx.stream("GET", url, timeout=60) as third:
        assert third.status_code == 200
