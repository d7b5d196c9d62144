"""The tensor resource: POST /v1/tensors and GET/HEAD /v1/tensors/{scheme}, one handler."""

from __future__ import annotations

from dataclasses import replace

from fastapi import Request
from fastapi.responses import Response

from service.api import digests, http
from service.api.deps import services
from service.api.headers import headers
from service.api.models import DescribeResponse, TensorRequest
from service.api.respond import answer
from service.api.urls import canonical_url
from service.dtypes import DTYPES
from service.plan import Plan, plan


def make_plan(body: TensorRequest, request: Request, *, negotiate: bool = True) -> Plan:
    """The plan of a request; the format is the body's, else negotiated by `Accept`, else the
    dtype's default (`describe` does not negotiate: its answer is JSON, its URL pins a format)."""
    s = services(request)
    spec = body.to_spec()
    if spec.format is None and negotiate:
        default = DTYPES[body.dtype].default_format
        spec = replace(spec, format=http.negotiate(request.headers.get("accept"), default))
    return plan(spec, s.limits, s.engines)


def describe(body: TensorRequest, request: Request) -> DescribeResponse:
    p = make_plan(body, request, negotiate=False)
    known = services(request).digests.get(p)
    return DescribeResponse.of(p, digests.field(known) if known else None)


async def serve(body: TensorRequest, request: Request) -> Response:
    """Plan, apply the HTTP semantics, then stream: every failure happens before the first byte."""
    p = make_plan(body, request)
    name = f"{p.name}.{p.writer.extension}"
    out = headers(
        p,
        canonical_url(p),
        name,
        p.writer.media_type,
        negotiated=body.format is None,
        settings=services(request).settings,
    )
    return await answer(p, out, request)
