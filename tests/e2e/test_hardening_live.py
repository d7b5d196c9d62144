"""The protocol layer's bounds against a live `python -m service` (service/api/protocol.py), over
raw sockets: a head too large or too slow, malformed requests, a stalled body, and the settings
refused at start-up. Timeouts are set to 1 s; each is asserted to have happened, within 10x."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.live import Server, live_server, peak_rss

PROBLEM = "application/problem+json"
TIMEOUT = 1.0  # WEIGHTGEN_HEADER_TIMEOUT and WEIGHTGEN_BODY_TIMEOUT of the server here


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"WEIGHTGEN_HEADER_TIMEOUT": str(TIMEOUT), "WEIGHTGEN_BODY_TIMEOUT": str(TIMEOUT)}
    with live_server(tmp_path_factory.mktemp("hardening"), env) as s:
        yield s


def connect(server: Server, data: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(data)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (or resets after it answered)."""
    out = b""
    try:
        while chunk := sock.recv(1 << 16):
            out += chunk
    except ConnectionResetError:
        pass
    sock.close()
    return out


def answer(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def problem(raw: bytes, status: int) -> dict[str, Any]:
    code, headers, body = answer(raw)
    assert code == status, raw[:500]
    assert headers["content-type"] == PROBLEM
    assert headers["connection"] == "close"
    doc: dict[str, Any] = json.loads(body)
    assert doc["status"] == status
    assert doc["instance"] == f"urn:weightgen:request:{headers['x-request-id']}"
    return doc


def test_a_64_mib_header_line_is_a_431_in_bounded_memory(live: Server) -> None:
    """Before: read whole and answered 200 (256 MiB cost +337 MiB of RSS)."""
    line = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (64 << 20) + b"\r\n\r\n"

    def exchange() -> bytes:
        sock = connect(live)
        sender = threading.Thread(target=send_quietly, args=(sock, line))
        sender.start()
        raw = read_all(sock)
        sender.join()
        return raw

    raw, idle, peak = peak_rss(live.pid, exchange)
    doc = problem(raw, 431)
    assert doc["type"] == "urn:weightgen:problem:header-fields-too-large"
    assert "32768 bytes (WEIGHTGEN_MAX_HEADER_BYTES)" in doc["detail"]
    assert peak - idle < 16 << 20
    assert httpx.get(f"{live.url}/healthz").status_code == 200


def send_quietly(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the server closed once it had answered
        sock.sendall(data)


def test_a_long_request_line_is_a_414(live: Server) -> None:
    raw = read_all(connect(live, b"GET /v1/schemes?" + b"a" * (100 << 10) + b" HTTP/1.1\r\n\r\n"))
    assert problem(raw, 414)["type"] == "urn:weightgen:problem:uri-too-long"


def test_a_head_within_the_limit_is_served(live: Server) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Fill: "
    raw = read_all(connect(live, head + b"a" * (30 << 10) + b"\r\n\r\n"))
    assert answer(raw)[0] == 200


@pytest.mark.parametrize(
    ("request_bytes", "reason"),
    [
        (
            b"POST /v1/tensors HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "Content-Length",
        ),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", "header value char"),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", "header"),
        (b"GET /v1/\xff HTTP/1.1\r\nHost: x\r\n\r\n", "url"),
    ],
    ids=["cl-and-te", "nul", "no-colon", "non-ascii-url"],
)
def test_malformed_requests_are_400_problems(
    live: Server, request_bytes: bytes, reason: str
) -> None:
    doc = problem(read_all(connect(live, request_bytes)), 400)
    assert doc["type"] == "urn:weightgen:problem:malformed-request"
    assert doc["detail"].startswith("the request is not valid HTTP/1.1: ")
    assert reason.lower() in doc["detail"].lower()


def test_a_malformed_chunked_body_is_a_400_not_a_stall(live: Server) -> None:
    head = b"POST /v1/tensors HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    doc = problem(read_all(connect(live, head + b"zz\r\n{}\r\n")), 400)
    assert doc["type"] == "urn:weightgen:problem:malformed-request"


def test_a_malformed_request_behind_a_good_one_is_answered_after_it(live: Server) -> None:
    """HTTP/1.1 answers in order: the refusal waits for the answer under way."""
    good = b"GET /v1/tensors/zeros?shape=65536&seed=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    raw = read_all(connect(live, good + b"GET /healthz HTTP/1.1\r\nX-A: \x00\r\n\r\n"))
    first, _, rest = raw.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200 OK")
    length = int(answer(first + b"\r\n\r\n")[1]["content-length"])
    assert problem(rest[length:], 400)["type"] == "urn:weightgen:problem:malformed-request"


def test_a_half_sent_head_gets_a_408(live: Server) -> None:
    began = time.monotonic()
    raw = read_all(connect(live, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Half: a"))
    took = time.monotonic() - began
    doc = problem(raw, 408)
    assert doc["type"] == "urn:weightgen:problem:request-timeout"
    assert "WEIGHTGEN_HEADER_TIMEOUT" in doc["detail"]
    assert took < 10 * TIMEOUT


def test_a_silent_connection_is_closed_without_an_answer(live: Server) -> None:
    began = time.monotonic()
    assert read_all(connect(live)) == b""
    assert time.monotonic() - began < 10 * TIMEOUT


def test_150_half_sent_heads_do_not_starve_healthz(live: Server) -> None:
    socks = [connect(live, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Half: a") for _ in range(150)]
    try:
        assert httpx.get(f"{live.url}/healthz", timeout=5).status_code == 200
    finally:
        answers = [read_all(s) for s in socks]
    assert all(answer(raw)[0] == 408 for raw in answers)


def test_a_stalled_body_gets_a_408(live: Server) -> None:
    head = b"POST /v1/tensors HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    began = time.monotonic()
    raw = read_all(connect(live, head + b'Content-Length: 100\r\n\r\n{"shape"'))
    took = time.monotonic() - began
    doc = problem(raw, 408)
    assert "the request body stalled for 1 s after 8 bytes" in doc["detail"]
    assert took < 10 * TIMEOUT


def test_keep_alive_pipelining_and_bodies_still_work(live: Server) -> None:
    get = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    raw = read_all(
        connect(live, get + get + get.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
    )
    assert raw.count(b"HTTP/1.1 200 OK") == 3
    with httpx.Client(base_url=live.url) as client:
        for _ in range(3):  # one connection, kept alive
            r = client.post("/v1/tensors", json={"scheme": "zeros", "shape": [4096]})
            assert r.status_code == 200
            assert len(r.content) > 4 * 4096


def test_serve_refuses_blank_api_keys_in_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "service", "--port", "0"],
        env={"WEIGHTGEN_API_KEYS": '[""]', "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 2
    assert done.stderr.startswith("weightgen: error: WEIGHTGEN_API_KEYS: ")
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
