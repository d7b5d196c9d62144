"""Answering with a payload (a tensor or a bundle): validators, ranges, HEAD, capacity.

Everything here runs before the status line; then `PayloadResponse` streams.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, Protocol

from fastapi import Request
from fastapi.responses import Response

from service.api import http
from service.api.metrics import Metrics
from service.api.problems import instance, problem
from service.api.stream import Capacity, PayloadResponse, generate
from service.config import Settings
from service.plan import Span

SMALL_BYTES = 1 << 16  # answered inline, without a thread hop
IMMUTABLE = "public, max-age=31536000, immutable"


class Payload(Protocol):
    """A planned answer: its exact length, its validator and its bytes, span by span."""

    @property
    def content_length(self) -> int: ...
    @property
    def format(self) -> str: ...  # npy, safetensors or raw
    @property
    def etag(self) -> str: ...
    @property
    def seed_source(self) -> Literal["request", "service"]: ...
    @property
    def light(self) -> bool: ...  # may be generated inline, on the event loop
    @property
    def tensors(self) -> int: ...  # how many: 1, or a bundle's members
    @property
    def header(self) -> bytes: ...  # the format's header, the payload's first bytes
    def spans(self, start: int, stop: int, block: int) -> Iterator[bytes | Span]: ...


def cache_control(payload: Payload) -> str:
    return IMMUTABLE if payload.seed_source == "request" else "no-store"


async def respond(payload: Payload, headers: dict[str, str], request: Request) -> Response:
    state = request.app.state
    settings: Settings = state.settings
    capacity: Capacity = state.capacity
    metrics: Metrics = state.metrics
    fmt = payload.format  # a metrics label
    length, etag = payload.content_length, payload.etag
    safe = request.method in ("GET", "HEAD")
    if http.none_match(request.headers.get("if-none-match"), etag):
        if not safe:
            return problem(
                412, "precondition-failed", "If-None-Match matches the ETag of this answer"
            )
        keep = ("ETag", "Cache-Control", "Content-Location", "Vary")
        return Response(status_code=304, headers={k: v for k, v in headers.items() if k in keep})
    start, stop, status = 0, length, 200
    if safe and http.range_applies(request.headers.get("if-range"), etag):
        try:
            wanted = http.parse_range(request.headers.get("range"), length)
        except http.Unsatisfiable:
            return problem(
                416,
                "range-not-satisfiable",
                f"Range {request.headers.get('range')!r} is outside the answer's {length} bytes",
                {"Content-Range": f"bytes */{length}"},
                instance=instance(request),
            )
        if wanted is not None:
            start, stop, status = wanted.start, wanted.stop, 206
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{length}"
    headers["Content-Length"] = str(stop - start)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    if stop - start <= SMALL_BYTES and payload.light:
        return Response(
            content=_small(payload, start, stop, metrics, fmt), status_code=status, headers=headers
        )
    if not capacity.acquire():
        return problem(
            503,
            "overloaded",
            f"{capacity.limit} streams are being generated (WEIGHTGEN_MAX_STREAMS); retry",
            {"Retry-After": "1"},
            instance=instance(request),
        )
    return PayloadResponse(
        payload,
        start,
        stop,
        status,
        headers,
        block=settings.block_elements,
        send_timeout=settings.send_timeout,
        capacity=capacity,
        metrics=metrics,
        fmt=fmt,
    )


def _small(payload: Payload, start: int, stop: int, metrics: Metrics, fmt: str) -> bytes:
    parts = [
        piece if isinstance(piece, bytes) else bytes(generate(piece, metrics, fmt))
        for piece in payload.spans(start, stop, 1 << 30)
    ]
    return b"".join(parts)
