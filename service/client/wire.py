"""Plain-HTTP requests through the standard library's `http.client`, as an httpx transport, so
that a download's body can be received straight into the caller's buffer (`readinto`).

httpx hands a body over through httpcore and h11 in 64 KiB `bytes` chunks: each a new object,
copied into h11's buffer and out of it again, and a trip through three libraries' Python code.
On the 2-core machine of docs/benchmarks.md, 2.2 GB received that way cost 1.4 s of CPU
(user 0.82 s, system 0.60 s), and 0.5 s (user 0.10 s, system 0.39 s) with `http.client`'s
`readinto` into an 8 MiB buffer (`python -m bench.wire`: a socket server sending a fixed body).
For a checkpoint written at 1–2 GB/s that is a large share of the client's CPU, on a machine
whose two cores the server needs too.

`DirectTransport` speaks HTTP/1.1 to `http://` URLs with keep-alive connections of its own;
`https://` (and anything else) goes to httpx's own transport. Every response it makes carries
`READINTO` in its extensions: `readinto(view) -> n`, the body's next bytes into `view`.
Failures are raised as the httpx exceptions httpx's transport raises for them (ConnectError,
ReadTimeout, RemoteProtocolError, ...), so retries treat both transports alike.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
from collections.abc import Iterator

import httpx

READINTO = "weightgen.readinto"  # the response extension: readinto(view) -> bytes received
CHUNK = 1 << 16  # iterating a body (problem documents, JSON): as httpx's own transport does
IDLE = 16  # idle connections kept per host
Key = tuple[str, int]


class DirectTransport(httpx.BaseTransport):
    """http:// over `http.client`, keep-alive, thread-safe; other schemes to `fallback`."""

    def __init__(self, fallback: httpx.BaseTransport | None = None) -> None:
        self.fallback = fallback or httpx.HTTPTransport()
        self._idle: dict[Key, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme != "http":
            return self.fallback.handle_request(request)
        key = (request.url.host, request.url.port or 80)
        timeout = request.extensions.get("timeout", {})
        body = request.read()
        conn = self._take(key)
        if conn is not None:  # an idle connection the server may have closed meanwhile
            try:
                return self._exchange(key, conn, request, body, timeout)
            except (httpx.RemoteProtocolError, httpx.WriteError, httpx.ReadError):
                pass  # nothing came back on it: once more, on a new connection
        return self._exchange(key, _connect(key, timeout), request, body, timeout)

    def _exchange(
        self,
        key: Key,
        conn: http.client.HTTPConnection,
        request: httpx.Request,
        body: bytes,
        timeout: dict[str, float | None],
    ) -> httpx.Response:
        try:
            with _mapped(httpx.WriteError, httpx.WriteTimeout, request):
                conn.putrequest(
                    request.method, request.url.raw_path.decode("ascii"),
                    skip_host=True, skip_accept_encoding=True,
                )  # fmt: skip
                for name, value in request.headers.raw:
                    conn.putheader(name.decode("latin-1"), value)
                conn.endheaders(body or None)
            with _mapped(httpx.ReadError, httpx.ReadTimeout, request):
                if conn.sock is not None:
                    conn.sock.settimeout(timeout.get("read"))
                response = conn.getresponse()
        except BaseException:
            conn.close()
            raise
        stream = _Body(self, key, conn, response, request)
        return httpx.Response(
            response.status,
            headers=response.getheaders(),
            stream=stream,
            request=request,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": response.reason.encode("latin-1"),
                READINTO: stream.readinto,
            },
        )

    def _take(self, key: Key) -> http.client.HTTPConnection | None:
        with self._lock:
            idle = self._idle.get(key)
            return idle.pop() if idle else None

    def release(self, key: Key, conn: http.client.HTTPConnection) -> None:
        """A connection whose response was read to its end, kept for the next request."""
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < IDLE:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for conn in conns:
            conn.close()
        self.fallback.close()


def _connect(key: Key, timeout: dict[str, float | None]) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection(*key, timeout=timeout.get("connect"))
    try:
        with _mapped(httpx.ConnectError, httpx.ConnectTimeout, None):
            conn.connect()
        if conn.sock is not None:  # requests are small: sent at once, not after an ACK
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def _mapped(
    error: type[httpx.TransportError],
    timeout: type[httpx.TransportError],
    request: httpx.Request | None,
) -> Iterator[None]:
    """http.client's and the socket's failures as the httpx exceptions for them."""
    try:
        yield
    except TimeoutError as exc:
        raise timeout(str(exc) or "timed out", request=request) from exc
    except http.client.HTTPException as exc:  # a malformed answer, or none (RemoteDisconnected)
        raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__, request=request) from exc
    except OSError as exc:
        raise error(str(exc) or type(exc).__name__, request=request) from exc


class _Body(httpx.SyncByteStream):
    """A response's body: iterated in 64 KiB chunks, or received into a buffer (`readinto`).
    Closed when read to its end, its connection goes back to the transport; else it is
    closed (the unread rest would be the next response's start)."""

    def __init__(
        self,
        transport: DirectTransport,
        key: Key,
        conn: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        request: httpx.Request,
    ) -> None:
        self.transport, self.key, self.conn = transport, key, conn
        self.response, self.request = response, request

    def __iter__(self) -> Iterator[bytes]:
        buffer = bytearray(CHUNK)  # readinto, not read1: only it closes the body at its length
        while n := self.readinto(memoryview(buffer)):
            yield bytes(buffer[:n])

    def readinto(self, view: memoryview) -> int:
        """The body's next bytes into `view` (until it is full, unless the body ends first); a
        body cut short is a RemoteProtocolError (http.client ends quietly where it runs out)."""
        with _mapped(httpx.ReadError, httpx.ReadTimeout, self.request):
            n = self.response.readinto(view)
        if not n and self.response.length:
            raise httpx.RemoteProtocolError(
                f"the connection closed with {self.response.length} bytes of the body unread",
                request=self.request,
            )
        return n

    def close(self) -> None:
        """Back to the transport only when the body ended where its framing said (its length
        read, none to read as for HEAD, 204, 304, or a chunked body read to its last chunk),
        never where the connection merely ran out."""
        r = self.response
        ended = r.length == 0 or (r.chunked and r.isclosed() and r.length is None)
        done = ended and not r.will_close
        r.close()
        if done:
            self.transport.release(self.key, self.conn)
        else:
            self.conn.close()
