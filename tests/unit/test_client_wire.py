"""service.client.wire: plain HTTP through http.client as an httpx transport. Against a real
socket server that answers as scripted: bodies into buffers and iterated, keep-alive, an idle
connection the server closed, a body cut short, timeouts and refusals as httpx's exceptions."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest

from service.client.wire import READINTO, DirectTransport

Script = Callable[[socket.socket, int], None]  # (a connection, its number from 0)


@contextmanager
def server(script: Script) -> Iterator[tuple[str, list[int]]]:
    """A server on loopback running `script` on each connection it accepts (in a thread of
    its own); its URL, and the requests per connection read so far."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: list[int] = []

    def accept() -> None:
        number = 0
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            seen.append(0)
            threading.Thread(target=script, args=(conn, number), daemon=True).start()
            number += 1

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        listener.close()


def head(conn: socket.socket) -> bytes:
    """One request's head (no request here carries a body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        got = conn.recv(65536)
        if not got:
            return b""
        data += got
    return data


def answer(body: bytes, *extra: str) -> bytes:
    lines = ["HTTP/1.1 200 OK", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def serve_all(bodies: dict[bytes, bytes]) -> Script:
    """Keep-alive: every request answered (by its path) on the same connection."""

    def script(conn: socket.socket, _: int) -> None:
        with conn:
            while request := head(conn):
                method, path = request.split(b" ")[:2]
                whole = answer(bodies[path], "X-Part: a", "X-Part: b")
                cut = len(whole) - len(bodies[path]) if method == b"HEAD" else len(whole)
                conn.sendall(whole[:cut])

    return script


def client(url: str, **kw: float) -> httpx.Client:
    return httpx.Client(base_url=url, transport=DirectTransport(), timeout=kw.get("timeout", 5.0))


def test_a_body_is_received_into_buffers_and_the_connection_kept() -> None:
    body = bytes(range(256)) * 4096  # 1 MiB
    with server(serve_all({b"/a": body, b"/b": b"small"})) as (url, seen), client(url) as c:
        with c.stream("GET", "/a") as response:
            readinto = response.extensions[READINTO]
            out = bytearray(len(body))
            view, at = memoryview(out), 0
            while at < len(body):
                at += readinto(view[at : at + 300_000])
        assert out == body
        second = c.get("/b")
        assert second.content == b"small"
        assert second.headers.get_list("x-part") == ["a", "b"]
        assert len(seen) == 1  # both on one connection


def test_a_body_read_by_iterating_it_is_whole_and_keeps_the_connection() -> None:
    body = b"x" * 200_000
    with server(serve_all({b"/": body, b"/s": b"small"})) as (url, seen), client(url) as c:
        assert c.get("/").content == body
        assert c.get("/s").content == b"small"
        assert c.head("/s").status_code == 200  # no body to read: done at once
        assert c.get("/s").content == b"small"
        assert len(seen) == 1


def test_a_chunked_body_is_decoded() -> None:
    def script(conn: socket.socket, _: int) -> None:
        with conn:
            head(conn)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
            )

    with server(script) as (url, _), client(url) as c:
        assert c.get("/").content == b"hello world"


def test_an_idle_connection_the_server_closed_is_replaced() -> None:
    """The server answers one request per connection and closes it without saying so."""

    def script(conn: socket.socket, _: int) -> None:
        with conn:
            head(conn)
            conn.sendall(answer(b"one"))

    with server(script) as (url, seen), client(url) as c:
        assert c.get("/").content == b"one"
        assert c.get("/").content == b"one"  # the kept connection fails, a new one answers
        assert len(seen) == 2


def test_a_body_cut_short_is_an_error_not_a_short_read() -> None:
    def script(conn: socket.socket, _: int) -> None:
        with conn:
            head(conn)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 400)

    with server(script) as (url, _), client(url) as c:
        with pytest.raises(httpx.RemoteProtocolError, match="600 bytes"):
            c.get("/")
        with c.stream("GET", "/") as response:
            view = memoryview(bytearray(1000))
            assert response.extensions[READINTO](view) == 400  # what came, then the end
            with pytest.raises(httpx.RemoteProtocolError):
                response.extensions[READINTO](view[400:])


def test_a_silent_server_is_a_read_timeout() -> None:
    def script(conn: socket.socket, _: int) -> None:
        head(conn)  # and never answers; the test's end closes the listener

    timeout = pytest.raises(httpx.ReadTimeout)
    with server(script) as (url, _), client(url, timeout=0.3) as c, timeout:
        c.get("/")


def test_a_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        with client(f"http://127.0.0.1:{port}") as c, pytest.raises(httpx.ConnectError):
            c.get("/")


def test_other_schemes_go_to_the_fallback_transport() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(200, content=b"tls")

    transport = DirectTransport(fallback=httpx.MockTransport(handler))
    with httpx.Client(transport=transport) as c:
        assert c.get("https://example.invalid/x").content == b"tls"
    assert asked == ["https://example.invalid/x"]
