"""Pure ASGI middleware (streams and disconnects pass through untouched): request ids and
JSON access logs, API keys, request-body limits and read timeouts, per-route request counts."""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

import anyio
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.metrics import Metrics
from service.api.problems import problem

log = logging.getLogger("weightgen.access")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


def request_id(scope: Scope) -> str:
    """The id of the request in `scope` (set by RequestIds)."""
    return str(scope.get("state", {}).get("request_id", ""))


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header (`name` lower-case), decoded as latin-1."""
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class RequestIds:
    """X-Request-ID: the client's when it is safe, else a new one; echoed on the answer, put in
    problems' `instance`, and logged with the request as one JSON line when the answer ends."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = header(scope, b"x-request-id")
        rid = given if given and REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        began, status, sent = time.perf_counter(), 0, 0

        async def send_with_id(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(template, scope["method"], str(status)).inc()
            if log.isEnabledFor(logging.INFO):
                fields = {
                    "request_id": rid,
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": template,
                    "status": status,
                    "bytes": sent,
                    "ms": round(1000 * (time.perf_counter() - began), 2),
                }
                log.info("request", extra={"fields": fields})


class ApiKeys:
    """When keys are configured, `/v1` needs `Authorization: Bearer <key>`; health, readiness,
    metrics and docs stay open. Keys are compared in constant time, all of them every time."""

    def __init__(self, app: ASGIApp, keys: Sequence[str]) -> None:
        self.app = app
        self.keys = [k.encode() for k in keys]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys or not scope["path"].startswith("/v1"):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":  # CORS preflight carries no credentials
            await self.app(scope, receive, send)
            return
        given = (header(scope, b"authorization") or "").encode()
        scheme, _, token = given.partition(b" ")
        ok = False
        for key in self.keys:
            ok |= hmac.compare_digest(token, key)
        if scheme.lower() != b"bearer" or not ok:
            detail = (
                "this service needs an API key: send Authorization: Bearer <key>"
                if not given
                else "the API key is not valid (Authorization: Bearer <key>)"
            )
            response = problem(
                401,
                "unauthorized",
                detail,
                {"WWW-Authenticate": 'Bearer realm="weightgen"'},
                instance=f"urn:weightgen:request:{request_id(scope)}",
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """Request bodies larger than `limit` bytes get a 413 problem before the app reads them; a
    body that stalls for `timeout` seconds between two reads gets a 408 (nginx's
    client_body_timeout). `timeout` None: the app's WEIGHTGEN_BODY_TIMEOUT."""

    def __init__(self, app: ASGIApp, limit: int, timeout: float | None = None) -> None:
        self.app, self.limit, self.timeout = app, limit, timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send, int(declared))
            return
        # without Content-Length or Transfer-Encoding there is no body (RFC 9112 6.3): the
        # one receive() answers at once, so small GETs pay for no timer
        bodiless = declared is None and header(scope, b"transfer-encoding") is None
        timeout = None if bodiless else self._timeout(scope)
        body, more, messages = 0, True, list[Message]()
        while more:
            try:
                with anyio.fail_after(timeout):
                    message = await receive()
            except TimeoutError:
                await self._stalled(scope, receive, send, body, timeout or 0.0)
                return
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += len(message.get("body", b""))
            more = message.get("more_body", False)
            if body > self.limit:
                await self._refuse(scope, receive, send, body)
                return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    def _timeout(self, scope: Scope) -> float:
        if self.timeout is not None:
            return self.timeout
        # imported here: deps -> cache -> this module (cache reads headers with `header`)
        from service.api.deps import services

        return services(HTTPConnection(scope)).settings.body_timeout

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, size: int) -> None:
        response = problem(
            413,
            "content-too-large",
            f"the request body has {size} bytes or more; this service takes at most "
            f"{self.limit} (WEIGHTGEN_MAX_BODY_BYTES)",
            instance=f"urn:weightgen:request:{request_id(scope)}",
        )
        await response(scope, receive, send)

    async def _stalled(
        self, scope: Scope, receive: Receive, send: Send, size: int, timeout: float
    ) -> None:
        # Connection: close, so that the server drops the rest of the body with the connection
        # instead of waiting for it to parse the next request
        response = problem(
            408,
            "request-timeout",
            f"the request body stalled for {timeout:g} s after {size} bytes "
            "(WEIGHTGEN_BODY_TIMEOUT)",
            {"Connection": "close"},
            instance=f"urn:weightgen:request:{request_id(scope)}",
        )
        await response(scope, receive, send)


def cors_headers(extra: Sequence[str]) -> dict[str, Any]:
    """Arguments of CORSMiddleware: what a browser may send and read."""
    return {
        "allow_methods": ["GET", "HEAD", "POST"],
        "allow_headers": [
            "Authorization",
            "Content-Type",
            "Accept",
            "Range",
            "If-None-Match",
            "If-Range",
            "Want-Repr-Digest",
            "X-Request-ID",
        ],
        "expose_headers": [
            "ETag",
            "Content-Length",
            "Content-Range",
            "Content-Disposition",
            "Accept-Ranges",
            "X-Request-ID",
            *extra,
        ],
        "max_age": 600,
    }
