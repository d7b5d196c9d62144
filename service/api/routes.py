"""The routes of API v1 and the operational endpoints."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from service.analyze import analyze, check
from service.api import bundles, contract, queries, tensors
from service.api.analysis import AnalyzeRequest, AnalyzeResponse
from service.api.catalogue import catalogue, preset_catalogue
from service.api.deps import services
from service.api.models import (
    BundleDescribeResponse,
    BundleRequest,
    DescribeResponse,
    TensorRequest,
)

router = APIRouter(generate_unique_id_function=lambda route: route.name)  # operationId
STATIC = Path(__file__).resolve().parent.parent / "static"  # the playground, in the package
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

_ERRORS = contract.errors(body=True)  # of the describe and analyze operations


@router.post(
    "/v1/tensors",
    responses=contract.payload_responses("tensor", "POST"),
    response_class=Response,
    tags=["tensors"],
)
async def post_tensor(body: TensorRequest, request: Request) -> Response:
    """The tensor a JSON body describes, streamed in the format asked (field or Accept)."""
    return await tensors.serve(body, request)


_QUERY = {"parameters": queries.tensor_parameters()}


@router.get(
    "/v1/tensors/{scheme}",
    responses=contract.payload_responses("tensor", "GET"),
    response_class=Response,
    tags=["tensors"],
    openapi_extra=_QUERY,
)
@router.head(
    "/v1/tensors/{scheme}",
    responses=contract.payload_responses("tensor", "HEAD"),
    response_class=Response,
    tags=["tensors"],
    operation_id="head_tensor",
    openapi_extra=_QUERY,
)
async def get_tensor(scheme: str, request: Request) -> Response:
    """The same tensor as a cacheable URL: every request field is a query parameter
    (lists comma-separated: `shape=256,128`); `describe=true` answers the JSON plan instead."""
    # a URL already planned never gets here: service.api.fastlane answers it
    body, describe = queries.tensor_query(scheme, request)
    if describe:
        out = tensors.describe(body, request)
        return Response(out.model_dump_json(), media_type="application/json")
    return await tensors.serve(body, request)


@router.post(
    "/v1/tensors/describe", responses=_ERRORS, tags=["tensors"], operation_id="describe_tensor"
)
async def describe(body: TensorRequest, request: Request) -> DescribeResponse:
    """Fans, stddev, limit, effective std, size, ETag and GET URL of a tensor, without sampling."""
    return tensors.describe(body, request)


@router.post(
    "/v1/bundles",
    responses=contract.payload_responses("bundle", "POST"),
    response_class=Response,
    tags=["bundles"],
)
async def post_bundle(body: BundleRequest, request: Request) -> Response:
    """Many named tensors (a model's initial state dict) as one safetensors stream."""
    return await bundles.serve(body, request)


@router.post("/v1/bundles/describe", responses=_ERRORS, tags=["bundles"])
async def describe_bundle(body: BundleRequest, request: Request) -> BundleDescribeResponse:
    """Each member's plan and offsets, the bundle's size, ETag and GET URL, without sampling."""
    return await bundles.describe(body, request)


@router.get(
    "/v1/bundles/{manifest}",
    responses=contract.payload_responses("bundle", "GET"),
    response_class=Response,
    tags=["bundles"],
)
@router.head(
    "/v1/bundles/{manifest}",
    responses=contract.payload_responses("bundle", "HEAD"),
    response_class=Response,
    tags=["bundles"],
    operation_id="head_bundle",
)
async def get_bundle(
    manifest: Annotated[str, PathParam(description="the manifest, as describe's `url` has it")],
    request: Request,
    describe: Annotated[  # noqa: ARG001 - for the OpenAPI document; bundle_query reads it
        bool, Query(description="answer the JSON description instead of the bundle")
    ] = False,
) -> Response:
    """The bundle whose manifest the URL carries (from describe's `url`); Range, HEAD and
    If-None-Match work as for tensors; `describe=true` answers the JSON description."""
    # a URL already planned never gets here: service.api.fastlane answers it
    asked = queries.bundle_query(request)  # as for tensor URLs: repeats refused
    body = bundles.decode(manifest)
    if asked:
        out = await bundles.describe(body, request)
        return Response(out.model_dump_json(), media_type="application/json")
    return await bundles.serve(body, request)


@router.get("/v1/presets", tags=["catalogue"])
async def presets_catalogue() -> dict[str, Any]:
    """Every layer preset of bundles: its arguments, their types and defaults."""
    return preset_catalogue()


@router.post("/v1/analyze", responses=_ERRORS, tags=["analysis"])
async def analyze_signal(body: AnalyzeRequest, request: Request) -> AnalyzeResponse:
    """Per-layer std of activations and gradients through a deep MLP initialized by a scheme
    (at most 256 MiB and 17 GFLOP each; WEIGHTGEN_MAX_ANALYSES at once, then 503)."""
    s, spec = services(request), body.to_spec()
    check(spec)  # before waiting for a slot
    async with s.analyses.slot():
        found = await anyio.to_thread.run_sync(analyze, spec, s.limits, s.engines)
    return AnalyzeResponse.model_validate(found)


@router.get("/v1/schemes", tags=["catalogue"])
async def schemes_catalogue() -> dict[str, Any]:
    """Every scheme, alias and parameter with its default, per convention; fan rules; gains."""
    return catalogue()


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
async def playground() -> HTMLResponse:
    """The playground page: pick a scheme, see its numbers, a sample and its effect in depth."""
    return HTMLResponse(_page(), headers=PAGE_HEADERS)


@functools.cache
def _page() -> str:
    return (STATIC / "index.html").read_text()


@router.get("/healthz", tags=["operations"])
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", tags=["operations"])
async def readyz(request: Request) -> dict[str, object]:
    """Readiness: the engines are built; the devices served; whether the fused kernel is."""
    engines = services(request).engines
    return {
        "status": "ready",
        "engine": engines.cpu.name,
        "devices": list(engines.devices()),
        "fast_kernel": engines.numpy.fast,
        "threads": services(request).settings.threads,
    }


@router.get("/metrics", response_class=Response, tags=["operations"])
async def metrics(request: Request) -> Response:
    """Prometheus text format: requests, generation work and time, streams."""
    return Response(services(request).metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
