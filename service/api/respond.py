"""Answering with a payload (a tensor or a bundle): validators, ranges, HEAD, capacity.

Everything here runs before the status line and raises what it refuses (406, 412, 416, 503 are
mapped in `problems`); then `PayloadResponse` streams.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from service.api import http
from service.api.deps import Services, services
from service.api.stream import PayloadResponse, generate
from service.errors import Overloaded
from service.plan import Payload

SMALL_BYTES = 1 << 16  # answered inline, without a thread hop
NOT_MODIFIED = ("ETag", "Cache-Control", "Content-Location", "Vary")  # what a 304 repeats


def byte_range(payload: Payload, request: Request) -> tuple[int, int, int]:
    """(start, stop, status) of the bytes to send: the whole answer, or the Range asked."""
    length = payload.content_length
    if request.method in ("GET", "HEAD") and http.range_applies(
        request.headers.get("if-range"), payload.etag
    ):
        header = request.headers.get("range")
        try:
            wanted = http.parse_range(header, length)
        except http.Unsatisfiable:
            raise http.RangeNotSatisfiable(header, length) from None
        if wanted is not None:
            return wanted.start, wanted.stop, 206
    return 0, length, 200


async def answer(payload: Payload, headers: dict[str, str], request: Request) -> Response:
    """A route's answer: a GET's plan is kept for its URL first (service.api.fastlane answers it
    next time; HEAD shares it, the same resource)."""
    if request.method in ("GET", "HEAD"):
        plans = services(request).plans
        plans.put(plans.key(request.scope), payload, headers)
    return await respond(payload, dict(headers), request)


async def respond(payload: Payload, headers: dict[str, str], request: Request) -> Response:
    """The answer to `request` for a planned payload whose 200 headers are `headers`."""
    if http.none_match(request.headers.get("if-none-match"), payload.etag):
        if request.method not in ("GET", "HEAD"):
            raise http.PreconditionFailed
        kept = {k: v for k, v in headers.items() if k in NOT_MODIFIED}
        return Response(status_code=304, headers=kept)
    start, stop, status = byte_range(payload, request)
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{payload.content_length}"
    headers["Content-Length"] = str(stop - start)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    s = services(request)
    if stop - start <= SMALL_BYTES and all(p.strong for p in payload.plans):
        return Response(
            content=_small(payload, start, stop, s), status_code=status, headers=headers
        )
    if not s.capacity.acquire():
        raise Overloaded(
            f"{s.capacity.limit} streams are being generated (WEIGHTGEN_MAX_STREAMS); retry"
        )
    return PayloadResponse(
        payload,
        start,
        stop,
        status,
        headers,
        block=s.settings.block_elements,
        send_timeout=s.settings.send_timeout,
        capacity=s.capacity,
        metrics=s.metrics,
    )


def _small(payload: Payload, start: int, stop: int, s: Services) -> bytes:
    parts = [
        piece if isinstance(piece, bytes) else bytes(generate(piece, s.metrics, payload.format))
        for piece in payload.spans(start, stop, 1 << 30)
    ]
    return b"".join(parts)
