"""Streaming a planned payload: blocks generated in worker threads, one block ahead of the one
being sent, through a queue of one; memoryview chunks; a disconnect stops the work.

Memory per stream: the block being sent, the one queued and the one being generated, each
`block_elements` elements (plus the engine's own chunk temporaries), whatever the tensor size.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from service.api.metrics import Metrics
from service.plan import Payload, Span

CHUNK_BYTES = 1 << 20  # one ASGI body message
log = logging.getLogger("weightgen.stream")


class Capacity:
    """At most `limit` tensor streams at once, in one event loop (no lock needed)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self._threads: anyio.CapacityLimiter | None = None

    @property
    def threads(self) -> anyio.CapacityLimiter:
        """Generation threads; made on first use, inside the event loop."""
        if self._threads is None:
            self._threads = anyio.CapacityLimiter(self.limit)
        return self._threads

    def acquire(self) -> bool:
        if self.in_use >= self.limit:
            return False
        self.in_use += 1
        return True

    def release(self) -> None:
        self.in_use -= 1


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
    ) -> None:
        self.status_code = status_code
        self.background = None
        self.payload, self.start, self.stop, self.block = payload, start, stop, block
        self.capacity, self.metrics, self.fmt = capacity, metrics, payload.format
        self.send_timeout = send_timeout
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

    async def _stream(self, send: Send) -> None:
        sender, receiver = anyio.create_memory_object_stream[bytes | memoryview](1)

        async def produce() -> None:
            async with sender:
                for piece in self.payload.spans(self.start, self.stop, self.block):
                    if isinstance(piece, Span):
                        data = await anyio.to_thread.run_sync(
                            generate, piece, self.metrics, self.fmt, limiter=self.capacity.threads
                        )
                        await sender.send(data)
                    else:
                        await sender.send(piece)

        async with anyio.create_task_group() as group, receiver:
            group.start_soon(produce)
            async for data in receiver:
                view = memoryview(data)
                for at in range(0, len(view), CHUNK_BYTES):
                    body = view[at : at + CHUNK_BYTES]
                    with anyio.fail_after(self.send_timeout):
                        await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
