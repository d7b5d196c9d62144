"""The tensor resource: POST /v1/tensors and GET/HEAD /v1/tensors/{scheme}, one handler."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError

from service.api import http
from service.api.models import TensorRequest
from service.api.problems import problem
from service.api.stream import Capacity, PayloadResponse, Work, generate
from service.api.urls import canonical_url
from service.config import Settings
from service.dtypes import DTYPES
from service.engines import Engines
from service.plan import Limits, Plan, TensorSpec, default_format, plan

LIST_FIELDS = ("shape", "in_axes", "out_axes", "batch_axes", "zero_rows")
SMALL_BYTES = 1 << 16  # answered inline, without a thread hop
IMMUTABLE = "public, max-age=31536000, immutable"
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
    "service_version": "X-Init-Service-Version",
}


def _split(value: str) -> list[int | str]:
    """'256,128' -> [256, 128]; '' -> []; a bad item stays a string for pydantic to report."""
    items = [v.strip() for v in value.split(",")] if value.strip() else []
    return [int(v) if v.lstrip("-").isdigit() else v for v in items]


def request_from_query(scheme: str, request: Request) -> tuple[TensorRequest, bool]:
    """The GET query as a TensorRequest (unknown or repeated parameters are refused)."""
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
            describe = values[0].lower() in ("1", "true", "yes")
        else:
            params[key] = _split(values[0]) if key in LIST_FIELDS else values[0]
    if errors:
        raise RequestValidationError(errors)
    try:
        return TensorRequest.model_validate({**params, "scheme": scheme}), describe
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


def _state(request: Request) -> tuple[Settings, Limits, Engines, Capacity, Work]:
    s = request.app.state
    return s.settings, s.limits, s.engines, s.capacity, s.work


def make_plan(body: TensorRequest, request: Request) -> Plan:
    _, limits, engines, _, _ = _state(request)
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
        "Cache-Control": IMMUTABLE if p.seed_source == "request" else "no-store",
        "Content-Disposition": f'attachment; filename="{p.spec.name}.{p.writer.extension}"',
        "Content-Location": canonical_url(p),
        "X-Content-Type-Options": "nosniff",
        "X-Init-Shape": ",".join(str(d) for d in p.spec.shape),
        "X-Init-Dtype": p.dtype.name,
        "X-Init-Format": p.writer.name,
    }
    if negotiated:
        out["Vary"] = "Accept"
    for key, value in p.metadata().items():
        out[HEADER_NAMES[key]] = value
    return out


async def serve(body: TensorRequest, request: Request) -> Response:
    """Plan, apply the HTTP semantics, then stream: every failure happens before the first byte."""
    settings, _, _, capacity, work = _state(request)
    try:
        p = make_plan(body, request)
    except http.NotAcceptable as exc:
        return problem(406, "not-acceptable", str(exc))
    headers = headers_for(p, negotiated=body.format is None)
    length = p.content_length
    safe = request.method in ("GET", "HEAD")
    if http.none_match(request.headers.get("if-none-match"), p.etag):
        if not safe:
            return problem(412, "precondition-failed", "If-None-Match matches this tensor's ETag")
        keep = ("ETag", "Cache-Control", "Content-Location", "Vary")
        return Response(status_code=304, headers={k: v for k, v in headers.items() if k in keep})
    start, stop, status = 0, length, 200
    if safe and http.range_applies(request.headers.get("if-range"), p.etag):
        try:
            wanted = http.parse_range(request.headers.get("range"), length)
        except http.Unsatisfiable:
            return problem(
                416,
                "range-not-satisfiable",
                f"Range {request.headers.get('range')!r} is outside the tensor's {length} bytes",
                {"Content-Range": f"bytes */{length}"},
            )
        if wanted is not None:
            start, stop, status = wanted.start, wanted.stop, 206
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{length}"
    headers["Content-Length"] = str(stop - start)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    if stop - start <= SMALL_BYTES:
        return Response(content=_small(p, start, stop, work), status_code=status, headers=headers)
    if not capacity.acquire():
        return problem(
            503,
            "overloaded",
            f"{capacity.limit} tensor streams are being generated (WEIGHTGEN_MAX_STREAMS); retry",
            {"Retry-After": "1"},
        )
    return PayloadResponse(
        p, start, stop, status, headers, block=settings.block_elements, capacity=capacity, work=work
    )


def _small(p: Plan, start: int, stop: int, work: Work) -> bytes:
    parts = [
        piece if isinstance(piece, bytes) else bytes(generate(piece, work))
        for piece in p.spans(start, stop, p.numel or 1)
    ]
    return b"".join(parts)
