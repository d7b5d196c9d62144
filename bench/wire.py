"""What receiving a large body costs the client: httpx's own transport (`iter_raw`, 64 KiB
chunks through httpcore and h11) against `service.client.wire.DirectTransport` (`readinto`
into one 8 MiB buffer), in the same run. The server is a plain socket in a child process that
sends a fixed body as fast as the kernel takes it, so the client's CPU is what is measured
(`os.times()` of this process: user and system).

    .venv/bin/python -m bench.wire [--gb 2.2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import time
from collections.abc import Callable

import httpx

from service.client.wire import READINTO, DirectTransport

BUFFER = 8 << 20


def _serve(listener: socket.socket, length: int) -> None:
    chunk = memoryview(b"\x01" * (4 << 20))
    while True:
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % length)
            left = length
            while left:
                left -= conn.send(chunk[: min(left, len(chunk))])


def _httpx(url: str) -> int:
    n = 0
    with httpx.Client() as c, c.stream("GET", url) as response:
        for chunk in response.iter_raw():
            n += len(chunk)
    return n


def _direct(url: str) -> int:
    n, buffer = 0, memoryview(bytearray(BUFFER))
    with httpx.Client(transport=DirectTransport()) as c, c.stream("GET", url) as response:
        readinto = response.extensions[READINTO]
        while got := readinto(buffer):
            n += got
    return n


def _measured(what: str, receive: Callable[[str], int], url: str) -> None:
    began, before = time.perf_counter(), os.times()
    n = receive(url)
    after = os.times()
    print(
        f"{what}: {n / 1e9:.2f} GB in {time.perf_counter() - began:.2f} s; client CPU user "
        f"{after.user - before.user:.2f} s, system {after.system - before.system:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gb", type=float, default=2.2, help="body size in GB (10^9 bytes)")
    args = parser.parse_args()
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    server = multiprocessing.get_context("fork").Process(
        target=_serve, args=(listener, int(args.gb * 1e9)), daemon=True
    )
    server.start()
    try:
        print(f"machine: {os.cpu_count()} CPUs")
        for _ in range(2):
            _measured("httpx iter_raw", _httpx, url)
            _measured("DirectTransport readinto", _direct, url)
    finally:
        server.terminate()
        listener.close()


if __name__ == "__main__":
    main()
