"""Streaming a planned payload: blocks generated in worker threads, one block ahead of the one
being sent, through a queue of one; memoryview chunks; a disconnect stops the work. A whole
representation is hashed as it is produced, in a thread of its own beside the generation (its
`Repr-Digest`, kept once it is all produced and hashed).

Memory per stream: the block being sent, the one queued, the one being generated and, for a
whole representation, up to two being hashed or queued for it (often the same blocks), each
`block_elements` elements (plus the engine's own chunk temporaries), whatever the tensor size.
A stream's slot (`Capacity`) is claimed before its status line and held until its last byte.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from collections.abc import Mapping
from typing import Any, Literal, Protocol

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from service.api.metrics import Metrics
from service.plan import Payload, Span

CHUNK_BYTES = 1 << 20  # one ASGI body message
log = logging.getLogger("weightgen.stream")
WAITERS_PER_SLOT = 4  # requests that may wait for a slot, per slot (16 behind the default 4)
Claim = Literal["taken", "full", "gone"]


class Keep(Protocol):
    """Where a stream of a whole representation leaves its digest (api.digests.Keeper)."""

    def finishing(self) -> None: ...

    def done(self, digest: bytes | None) -> None: ...


class Capacity:
    """At most `limit` tensor streams at once, in one event loop (no lock needed). A request
    that finds every slot taken may wait for one (`claim`), without holding a thread: first
    come first served, a freed slot handed straight to the longest waiter, at most
    `WAITERS_PER_SLOT` x `limit` waiting (beyond them: refused at once)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.max_waiters = WAITERS_PER_SLOT * limit
        self.in_use = 0
        self._threads: anyio.CapacityLimiter | None = None
        self._waiters: deque[anyio.Event] = deque()  # set: handed a slot

    @property
    def threads(self) -> anyio.CapacityLimiter:
        """Generation threads; made on first use, inside the event loop."""
        if self._threads is None:
            self._threads = anyio.CapacityLimiter(self.limit)
        return self._threads

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def acquire(self) -> bool:
        """A slot now, or False: every slot is taken (and then never ahead of a waiter)."""
        if self.in_use >= self.limit or self._waiters:
            return False
        self.in_use += 1
        return True

    def release(self) -> None:
        """A slot back: handed to the longest waiter (so it stays in use), else freed."""
        if self._waiters:
            self._waiters.popleft().set()
        else:
            self.in_use -= 1

    async def claim(self, wait: float, receive: Receive) -> Claim:
        """A slot now or within `wait` seconds ("taken"); "full" when none came or too many
        wait already; "gone" when the client disconnected while waiting (`receive` is its
        request's). Whatever happens to the waiter, a slot it was handed is passed on."""
        if self.acquire():
            return "taken"
        if wait <= 0 or len(self._waiters) >= self.max_waiters:
            return "full"
        turn = anyio.Event()
        self._waiters.append(turn)
        try:
            gone = await _wait_for(turn, wait, receive)
        except BaseException:  # cancelled (a shutdown): leave the queue, or pass the slot on
            self._leave(turn)
            raise
        if turn.is_set() and not gone:
            return "taken"
        self._leave(turn)
        return "gone" if gone else "full"

    def _leave(self, turn: anyio.Event) -> None:
        if turn.is_set():  # handed a slot it will not use: the next waiter's
            self.release()
        else:
            self._waiters.remove(turn)


async def _wait_for(turn: anyio.Event, wait: float, receive: Receive) -> bool:
    """Until `turn` is set or `wait` seconds have passed; True if the client left first."""
    gone = False

    async def watch(scope: anyio.CancelScope) -> None:
        nonlocal gone
        while (await receive())["type"] != "http.disconnect":
            pass  # a bodiless request's one empty message; a POST's body was read already
        gone = True
        scope.cancel()

    with anyio.move_on_after(wait):
        async with anyio.create_task_group() as group:
            group.start_soon(watch, group.cancel_scope)
            await turn.wait()
            group.cancel_scope.cancel()
    return gone


def generate(span: Span, metrics: Metrics, fmt: str) -> memoryview:
    """The wanted bytes of one span (a block of elements), counted in the metrics."""
    plan = span.plan
    began = time.perf_counter()
    data = plan.engine.generate(plan.sampling, span.lo, span.hi, plan.device)
    metrics.generated(plan, fmt, span.hi - span.lo, data.nbytes, time.perf_counter() - began)
    return data[span.byte_lo : span.byte_hi]


class PayloadResponse(Response):
    """Bytes [start, stop) of a plan's payload, generated block by block while sent."""

    def __init__(
        self,
        payload: Payload,
        start: int,
        stop: int,
        status_code: int,
        headers: Mapping[str, str],
        *,
        block: int,
        capacity: Capacity,
        metrics: Metrics,
        send_timeout: float = 60.0,
        keep: Keep | None = None,
    ) -> None:
        """`keep`, for a whole representation, receives its SHA-256 once every byte of it has
        been produced and hashed; a stream cut short before that (a disconnect, a timeout)
        gives it None."""
        self.status_code = status_code
        self.background = None
        self.payload, self.start, self.stop, self.block = payload, start, stop, block
        self.capacity, self.metrics, self.fmt = capacity, metrics, payload.format
        self.send_timeout, self.keep = send_timeout, keep
        self.raw_headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: ARG002
        self.metrics.in_flight.inc()
        self.metrics.streams.inc()
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            await self._send_body(receive, send)
        finally:
            self.metrics.in_flight.dec()
            self.capacity.release()

    async def _send_body(self, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._watch_disconnect, receive, group.cancel_scope)
                await self._stream(send)
                group.cancel_scope.cancel()
        except* TimeoutError:  # the client stopped reading: drop it, free the slot
            log.warning("stream abandoned: no progress for %s s", self.send_timeout)

    async def _watch_disconnect(self, receive: Receive, scope: anyio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        scope.cancel()

    async def _made(self, piece: bytes | Span) -> bytes | memoryview:
        """A piece's bytes: a header as it is, a span generated in a worker thread."""
        if isinstance(piece, bytes):
            return piece
        return await anyio.to_thread.run_sync(
            generate, piece, self.metrics, self.fmt, limiter=self.capacity.threads
        )

    async def _stream(self, send: Send) -> None:
        sender, receiver = anyio.create_memory_object_stream[bytes | memoryview](1)

        async def produce() -> None:
            async with sender:
                if self.keep is None:  # no digest to keep: sent, not hashed
                    for piece in self.payload.spans(self.start, self.stop, self.block):
                        await sender.send(await self._made(piece))
                    return
                await self._hashed(sender, self.keep)

        async with anyio.create_task_group() as group, receiver:
            group.start_soon(produce)
            async for data in receiver:
                view = memoryview(data)
                for at in range(0, len(view), CHUNK_BYTES):
                    body = view[at : at + CHUNK_BYTES]
                    with anyio.fail_after(self.send_timeout):
                        await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _hashed(self, sender: MemoryObjectSendStream[bytes | memoryview], keep: Keep) -> None:
        """Every piece made, handed to the hashing thread and to `sender`. Once all are made
        the digest is `finishing` and is kept even if the client leaves meanwhile (hashing the
        last blocks is shielded: a client that read every byte and closed, or asks for the
        digest next, should not make the server generate it all again)."""
        hasher, complete, hashed = hashlib.sha256(), False, [False]
        hash_in, hash_out = anyio.create_memory_object_stream[bytes | memoryview](1)
        try:
            async with anyio.create_task_group() as hashing:
                hashing.start_soon(_hash, hasher, hash_out, hashed)
                async with hash_in:
                    for piece in self.payload.spans(self.start, self.stop, self.block):
                        data = await self._made(piece)
                        await hash_in.send(data)
                        await sender.send(data)
                    complete = True
                    keep.finishing()
        finally:  # the hashing thread has ended here, whatever happened
            keep.done(hasher.digest() if complete and hashed[0] else None)


async def _hash(
    hasher: Any, blocks: MemoryObjectReceiveStream[bytes | memoryview], ended: list[bool]
) -> None:
    """The representation's SHA-256, block by block in order, in a thread of its own: hashing a
    block overlaps generating the next one and sending the one before (hashlib and the kernel
    release the GIL), rather than following its generation in the same thread. Shielded: what
    was handed over is hashed even when the stream is cancelled (at most a block or two: the
    producer closes `blocks` as it stops). `ended[0]` becomes True once every block handed
    over was hashed (a failure leaves it False: no digest of a part is kept)."""
    with anyio.CancelScope(shield=True):
        async with blocks:
            async for data in blocks:
                await anyio.to_thread.run_sync(hasher.update, data)
        ended[0] = True
