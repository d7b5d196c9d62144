"""RFC 9457 problem details: every error answer, whoever raised it, has the same shape."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.status import HTTP_422_UNPROCESSABLE_CONTENT

from service.api.http import NotAcceptable, PreconditionFailed, RangeNotSatisfiable
from service.errors import InvalidRequest, Unavailable, WeightgenError, clip
from service.presets import PRESETS

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("weightgen")
# Echoed input is cut, so an answer's size does not follow the request's: a value or a
# message of one validation error, a JSON pointer (its keys are the client's), the number of
# errors listed, and, as the net under every message that embeds a value, the detail.
ECHO, MESSAGE, MAX_ERRORS, MAX_DETAIL = 80, 200, 20, 2000

_TITLES = {
    "invalid-request": "Invalid request",
    "invalid-shape": "Invalid shape",
    "invalid-scheme": "Invalid scheme or parameter",
    "unsupported-combination": "Unsupported combination",
    "limit-exceeded": "Tensor too large",
    "unavailable": "Service unavailable",
    "not-found": "Not found",
    "method-not-allowed": "Method not allowed",
    "internal": "Internal server error",
    "unauthorized": "Unauthorized",
    "content-too-large": "Content too large",
    "not-acceptable": "Not acceptable",
    "range-not-satisfiable": "Range not satisfiable",
    "precondition-failed": "Precondition failed",
    "overloaded": "Overloaded",
    "request-timeout": "Request timeout",
    "header-fields-too-large": "Request header fields too large",
    "uri-too-long": "URI too long",
    "malformed-request": "Malformed HTTP request",
}


def document(
    status: int, slug: str, detail: str, instance: str | None = None, **extensions: Any
) -> dict[str, Any]:
    """The problem's JSON object (also written by service.api.protocol, below the app)."""
    return {
        "type": f"urn:weightgen:problem:{slug}",
        "title": _TITLES.get(slug, slug.replace("-", " ").capitalize()),
        "status": status,
        "detail": clip(detail, MAX_DETAIL),
        **({"instance": instance} if instance else {}),
        **extensions,
    }


def problem(
    status: int,
    slug: str,
    detail: str,
    headers: dict[str, str] | None = None,
    *,
    instance: str | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A problem+json answer; `type` is a URN naming the problem, `title` its summary,
    `instance` the request's id (also in X-Request-ID)."""
    body = document(status, slug, detail, instance, **extensions)
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)


def instance(request: Request) -> str | None:
    """The problem's `instance`: the request's id (RequestIds middleware), as a URN."""
    rid = request.scope.get("state", {}).get("request_id")
    return f"urn:weightgen:request:{rid}" if rid else None


def _pointer(loc: Sequence[int | str]) -> str:
    parts = list(loc[1:]) if loc and loc[0] in ("body", "query", "path") else list(loc)
    # pydantic puts a layer's preset (the tag of its union) in the path; the body has no such key
    parts = [
        p for i, p in enumerate(parts) if not (p in PRESETS and i and isinstance(parts[i - 1], int))
    ]
    return clip("#/" + "/".join(str(p) for p in parts), MESSAGE)


def _received(value: Any) -> str:
    if isinstance(value, str | bytes):  # no repr of a megabyte to keep 80 characters of it
        value = value[: ECHO + 1]
    try:
        return clip(repr(value), ECHO)
    except (RecursionError, ValueError):  # nested too deep; an int past the str limit
        return f"a {type(value).__name__} too large to show"


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    found = cast(RequestValidationError, exc).errors()
    errors = [
        {
            "pointer": _pointer(e["loc"]),
            "detail": clip(str(e["msg"]), MESSAGE),
            **({"received": _received(e["input"])} if "input" in e else {}),
        }
        for e in found[:MAX_ERRORS]
    ]
    detail = "; ".join(
        f"{e['pointer'][2:] or 'body'}: {e['detail']}"
        + (f" (received {e['received']})" if "received" in e else "")
        for e in errors
    )
    if len(found) > MAX_ERRORS:
        detail = f"{len(found)} errors, the first {MAX_ERRORS} listed: {detail}"
    return problem(
        HTTP_422_UNPROCESSABLE_CONTENT,
        "invalid-request",
        detail,
        instance=instance(request),
        errors=errors,
    )


def domain(request: Request, exc: WeightgenError) -> JSONResponse:
    """The problem answer of a domain error (also used by middleware, outside the router)."""
    if isinstance(exc, Unavailable):
        headers = {"Retry-After": str(exc.retry_after)}
        return problem(503, exc.slug, exc.detail, headers, instance=instance(request))
    status = HTTP_422_UNPROCESSABLE_CONTENT if isinstance(exc, InvalidRequest) else 500
    return problem(status, exc.slug, exc.detail, instance=instance(request))


def semantics(request: Request, exc: Exception) -> JSONResponse:
    """The problem answer of an HTTP-semantics refusal (406, 412, 416) of service.api.http."""
    if isinstance(exc, NotAcceptable):
        return problem(406, "not-acceptable", str(exc), instance=instance(request))
    if isinstance(exc, PreconditionFailed):
        detail = "If-None-Match matches the ETag of this answer"
        return problem(412, "precondition-failed", detail, instance=instance(request))
    if isinstance(exc, RangeNotSatisfiable):
        headers = {"Content-Range": f"bytes */{exc.length}"}
        return problem(416, "range-not-satisfiable", str(exc), headers, instance=instance(request))
    raise TypeError(f"not an HTTP-semantics refusal: {exc!r}")


REFUSALS = (NotAcceptable, PreconditionFailed, RangeNotSatisfiable)


async def _on_domain(request: Request, exc: Exception) -> JSONResponse:
    return domain(request, cast(WeightgenError, exc))  # registered for this class only


async def _on_semantics(request: Request, exc: Exception) -> JSONResponse:
    return semantics(request, exc)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    exc = cast(HTTPException, exc)
    slug = {400: "invalid-request", 404: "not-found", 405: "method-not-allowed"}.get(
        exc.status_code, "http-error"
    )
    detail = str(exc.detail)
    if exc.status_code == 404:
        detail = f"no resource at {clip(request.url.path)}; GET /docs lists the endpoints"
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed(request))
        detail = (
            f"{clip(request.method, 20)} is not allowed on {clip(request.url.path)}; "
            f"allowed: {headers['Allow']}"
        )
    return problem(exc.status_code, slug, detail, headers, instance=instance(request))


def _allowed(request: Request) -> list[str]:
    """Every method some route answers on this path (Starlette reports only one route's)."""
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    detail = "the service failed on this request; it has been logged"
    return problem(500, "internal", detail, instance=instance(request))


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(WeightgenError, _on_domain)
    for refusal in REFUSALS:
        app.add_exception_handler(refusal, _on_semantics)
    app.add_exception_handler(HTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)
