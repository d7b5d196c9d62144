"""Answering with a payload (a tensor or a bundle): validators, ranges, HEAD, capacity.

Everything here runs before the status line and raises what it refuses (406, 412, 416, 503 are
mapped in `problems`); then `PayloadResponse` streams. A known `Repr-Digest` goes on 200, 206,
HEAD and 304 alike: it is the digest of the whole representation, whatever range is sent.
"""

from __future__ import annotations

import hashlib
import time

import anyio
from fastapi import Request
from fastapi.responses import Response

from service.api import digests, http
from service.api.deps import Services, services
from service.api.headers import DIGEST as REPR_DIGEST  # RFC 9530: of the whole representation
from service.api.stream import PayloadResponse, generate
from service.errors import Overloaded
from service.plan import Payload

SMALL_BYTES = 1 << 16  # answered inline, without a thread hop
NOT_MODIFIED = ("ETag", "Cache-Control", "Content-Location", "Vary", REPR_DIGEST)  # a 304's
CLIENT_GONE = 499  # nginx's "client closed request": what the log says of a waiter that left


class ClientGone(Exception):
    """The client disconnected while its request waited for a generation slot."""


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
    """The answer to `request` for a planned payload whose 200 headers are `headers`; the
    representation's digest is added here, so the fast lane's answers carry it too."""
    try:
        return await _respond(payload, headers, request)
    except ClientGone:  # it left while waiting for a slot: an answer nobody reads (logged)
        return Response(status_code=CLIENT_GONE)


async def _respond(payload: Payload, headers: dict[str, str], request: Request) -> Response:
    s = services(request)
    matched = http.none_match(request.headers.get("if-none-match"), payload.etag)
    if matched and request.method not in ("GET", "HEAD"):
        raise http.PreconditionFailed
    start, stop, status = (0, 0, 304) if matched else byte_range(payload, request)
    digest, whole_body = await _digest(payload, request, s)
    if digest is not None:
        headers[REPR_DIGEST] = digests.field(digest)
    if matched:
        kept = {k: v for k, v in headers.items() if k in NOT_MODIFIED}
        return Response(status_code=304, headers=kept)
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{payload.content_length}"
    headers["Content-Length"] = str(stop - start)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    whole = start == 0 and stop == payload.content_length
    if stop - start <= SMALL_BYTES and payload.strong:
        body = whole_body[start:stop] if whole_body is not None else _small(payload, start, stop, s)
        if whole and digest is None:  # the whole of it is at hand: its digest costs ~30 µs
            digest = hashlib.sha256(body).digest()
            s.digests.put(payload, digest)
            headers[REPR_DIGEST] = digests.field(digest)
        return Response(content=body, status_code=status, headers=headers)
    await _acquire(s, request)
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
        keep=s.digests.keeper(payload) if whole and digest is None else None,
    )


async def _digest(
    payload: Payload, request: Request, s: Services
) -> tuple[bytes | None, bytes | None]:
    """The representation's SHA-256 if known; computed first if the request wants it (RFC 9530
    §4), in a worker thread under the streams' capacity, as a stream of it would be; None when
    unknown and not wanted. A small strong payload is made whole inline, as its GET is, and
    that body comes back too, so the answer is not generated again."""
    known = s.digests.get(payload)
    if known is not None or not digests.wanted(request.headers.getlist("want-repr-digest")):
        return known, None
    known = await s.digests.settled(payload)  # a stream of it hashing its last blocks
    if known is not None:
        return known, None
    block = s.settings.block_elements
    if payload.content_length <= SMALL_BYTES and payload.strong:
        body = _small(payload, 0, payload.content_length, s)
        computed = hashlib.sha256(body).digest()
        s.digests.put(payload, computed)
        return computed, body
    await _acquire(s, request)
    try:
        computed = await anyio.to_thread.run_sync(
            digests.compute, payload, block, s.metrics, limiter=s.capacity.threads
        )
    finally:
        s.capacity.release()
    s.digests.put(payload, computed)
    return computed, None


async def _acquire(s: Services, request: Request) -> None:
    """A generation slot, waited for up to WEIGHTGEN_SLOT_WAIT seconds when all are taken, or
    503; released when the stream (or digest) is done. ClientGone if the client left."""
    capacity, wait = s.capacity, s.settings.slot_wait
    if capacity.acquire():
        return
    waiters, began = capacity.waiting, time.perf_counter()
    s.metrics.waiting.inc()
    try:
        claim = await capacity.claim(wait, request.receive)
    finally:
        s.metrics.waiting.dec()
    s.metrics.slot_waited(claim, time.perf_counter() - began)
    if claim == "gone":
        raise ClientGone
    if claim == "full":
        raise Overloaded(
            f"{capacity.limit} streams are being generated (WEIGHTGEN_MAX_STREAMS) and "
            f"{_why(wait, waiters, capacity.max_waiters)}; retry"
        )


def _why(wait: float, waiters: int, most: int) -> str:
    if wait <= 0:
        return "none may be waited for (WEIGHTGEN_SLOT_WAIT=0)"
    if waiters >= most:
        return f"{waiters} requests are waiting for one already"
    return f"none was free within {wait:g} s (WEIGHTGEN_SLOT_WAIT)"


def _small(payload: Payload, start: int, stop: int, s: Services) -> bytes:
    parts = [
        piece if isinstance(piece, bytes) else bytes(generate(piece, s.metrics, payload.format))
        for piece in payload.spans(start, stop, 1 << 30)
    ]
    return b"".join(parts)
