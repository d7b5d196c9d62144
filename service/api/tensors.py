"""The tensor resource: POST /v1/tensors and GET/HEAD /v1/tensors/{scheme}, one handler."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError

from service import __version__
from service.api import http
from service.api.cache import remember
from service.api.models import TensorRequest
from service.api.problems import instance, problem
from service.api.respond import cache_control, respond
from service.api.urls import canonical_url
from service.dtypes import DTYPES
from service.engines import Engines
from service.plan import Limits, Plan, TensorSpec, default_format, plan

DECIMAL = re.compile(r"-?[0-9]{1,19}")  # ASCII digits only, and no more than an int64 holds
LIST_FIELDS = ("shape", "in_axes", "out_axes", "batch_axes", "zero_rows")
HEADER_NAMES = {
    "scheme": "X-Init-Scheme",
    "convention": "X-Init-Convention",
    "kind": "X-Init-Kind",
    "fan_in": "X-Init-Fan-In",
    "fan_out": "X-Init-Fan-Out",
    "mode": "X-Init-Mode",
    "gain": "X-Init-Gain",
    "std": "X-Init-Std",
    "limit": "X-Init-Limit",
    "low": "X-Init-Low",
    "high": "X-Init-High",
    "mean": "X-Init-Mean",
    "effective_std": "X-Init-Effective-Std",
    "zero_rows": "X-Init-Zero-Rows",
    "seed": "X-Init-Seed",
    "algorithm": "X-Init-Algorithm",
}


def _split(value: str) -> list[int | str]:
    """'256,128' -> [256, 128]; '' -> []; a bad item stays a string for pydantic to report."""
    items = [v.strip() for v in value.split(",")] if value.strip() else []
    return [int(v) if DECIMAL.fullmatch(v) else v for v in items]


TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")  # FastAPI's booleans


def read_query(request: Request) -> tuple[dict[str, Any], bool]:
    """A GET URL's query: its parameters (lists split) and whether `describe` is asked. A
    repeated parameter, or a `describe` that is not a boolean, is refused (422)."""
    params: dict[str, Any] = {}
    describe = False
    errors: list[dict[str, Any]] = []
    for key in request.query_params:
        values = request.query_params.getlist(key)
        if len(values) > 1:
            errors.append(
                {
                    "type": "value_error",
                    "loc": ("query", key),
                    "msg": "given more than once",
                    "input": values,
                }
            )
        elif key == "describe":
            describe = values[0].lower() in TRUE
            if not describe and values[0].lower() not in FALSE:
                errors.append(
                    {
                        "type": "bool_parsing",
                        "loc": ("query", key),
                        "msg": f"Input should be a boolean ({', '.join(TRUE + FALSE)})",
                        "input": values[0],
                    }
                )
        else:
            params[key] = _split(values[0]) if key in LIST_FIELDS else values[0]
    if errors:
        raise RequestValidationError(errors)
    return params, describe


def request_from_query(scheme: str, request: Request) -> tuple[TensorRequest, bool]:
    """The GET query as a TensorRequest (unknown or repeated parameters are refused)."""
    params, describe = read_query(request)
    try:
        return TensorRequest.model_validate({**params, "scheme": scheme}), describe
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


def planning(request: Request) -> tuple[Limits, Engines]:
    """The deployment's limits and engines, built once in create_app."""
    return request.app.state.limits, request.app.state.engines


def make_plan(body: TensorRequest, request: Request) -> Plan:
    limits, engines = planning(request)
    spec: TensorSpec = body.to_spec()
    if spec.format is None:
        default = default_format(DTYPES[body.dtype])
        fmt = http.negotiate(request.headers.get("accept"), default)
        spec = replace(spec, format=fmt)
    return plan(spec, limits, engines)


def headers_for(p: Plan, negotiated: bool) -> dict[str, str]:
    out = {
        "Content-Type": p.writer.media_type,
        "ETag": p.etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": cache_control(p),
        "Content-Disposition": f'attachment; filename="{p.spec.name}.{p.writer.extension}"',
        "Content-Location": canonical_url(p),
        "X-Content-Type-Options": "nosniff",
        "X-Init-Shape": ",".join(str(d) for d in p.spec.shape),
        "X-Init-Dtype": p.dtype.name,
        "X-Init-Format": p.writer.name,
        "X-Init-Service-Version": __version__,  # a header only: the payload is version-free
    }
    if negotiated:
        out["Vary"] = "Accept"
    for key, value in p.metadata().items():
        out[HEADER_NAMES[key]] = value
    return out


async def serve(body: TensorRequest, request: Request) -> Response:
    """Plan, apply the HTTP semantics, then stream: every failure happens before the first byte.
    A GET's plan is kept for its URL (service.api.cache)."""
    try:
        p = make_plan(body, request)
    except http.NotAcceptable as exc:
        return problem(406, "not-acceptable", str(exc), instance=instance(request))
    headers = headers_for(p, negotiated=body.format is None)
    remember(request, p, headers)
    return await respond(p, dict(headers), request)
