"""RFC 9457 problem details: every error answer, whoever raised it, has the same shape."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.status import HTTP_422_UNPROCESSABLE_CONTENT

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
}


def problem(
    status: int,
    slug: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A problem+json answer; `type` is a URN naming the problem, `title` its summary."""
    body = {
        "type": f"urn:weightgen:problem:{slug}",
        "title": _TITLES.get(slug, slug.replace("-", " ").capitalize()),
        "status": status,
        "detail": detail,
        **extensions,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)


def _pointer(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc[1:]] if loc and loc[0] in ("body", "query", "path") else loc
    return "#/" + "/".join(str(p) for p in parts)


def _received(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


async def _on_validation(_: Request, exc: Exception) -> JSONResponse:
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
    return problem(HTTP_422_UNPROCESSABLE_CONTENT, "invalid-request", detail, errors=errors)


async def _on_domain(_: Request, exc: Exception) -> JSONResponse:
    exc = cast(WeightgenError, exc)  # registered for this class only
    if isinstance(exc, Unavailable):
        return problem(503, exc.slug, exc.detail, {"Retry-After": str(exc.retry_after)})
    status = HTTP_422_UNPROCESSABLE_CONTENT if isinstance(exc, InvalidRequest) else 500
    return problem(status, exc.slug, exc.detail)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    exc = cast(HTTPException, exc)
    slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    detail = str(exc.detail)
    if exc.status_code == 404:
        detail = f"no resource at {request.url.path}; GET /docs lists the endpoints"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    return problem(exc.status_code, slug, detail, dict(exc.headers or {}))


async def _on_unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem(500, "internal", "the service failed on this request; it has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(WeightgenError, _on_domain)
    app.add_exception_handler(HTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)
