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
from service.errors import InvalidRequest, Unavailable, WeightgenError

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("weightgen")

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
    body = {
        "type": f"urn:weightgen:problem:{slug}",
        "title": _TITLES.get(slug, slug.replace("-", " ").capitalize()),
        "status": status,
        "detail": detail,
        **({"instance": instance} if instance else {}),
        **extensions,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)


def instance(request: Request) -> str | None:
    """The problem's `instance`: the request's id (RequestIds middleware), as a URN."""
    rid = request.scope.get("state", {}).get("request_id")
    return f"urn:weightgen:request:{rid}" if rid else None


def _pointer(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc[1:]] if loc and loc[0] in ("body", "query", "path") else loc
    return "#/" + "/".join(str(p) for p in parts)


def _received(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    errors = [
        {
            "pointer": _pointer(e["loc"]),
            "detail": e["msg"],
            **({"received": _received(e["input"])} if "input" in e else {}),
        }
        for e in cast(RequestValidationError, exc).errors()
    ]
    detail = "; ".join(
        f"{e['pointer'][2:] or 'body'}: {e['detail']}"
        + (f" (received {e['received']})" if "received" in e else "")
        for e in errors
    )
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
        detail = f"no resource at {request.url.path}; GET /docs lists the endpoints"
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed(request))
        detail = (
            f"{request.method} is not allowed on {request.url.path}; allowed: {headers['Allow']}"
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
