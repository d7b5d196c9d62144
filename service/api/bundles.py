"""Bundles: POST /v1/bundles, POST /v1/bundles/describe, GET/HEAD /v1/bundles/{manifest}.

A bundle's GET URL carries its manifest: base64url(zlib(canonical JSON)), so the resource is
stateless and any replica or cache can answer it, Range and If-None-Match included.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib

import anyio
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError

from service import __version__
from service.api import http
from service.api.cache import remember
from service.api.models import BundleRequest
from service.api.problems import instance, problem
from service.api.respond import cache_control, respond
from service.api.tensors import planning
from service.bundle import BundlePlan, plan_bundle
from service.errors import InvalidRequest

MAX_MANIFEST = 1 << 20  # decompressed bytes of a manifest in a URL


def encode(body: BundleRequest, seed: int) -> str:
    text = json.dumps(
        {**body.model_dump(mode="json", exclude_defaults=True), "seed": seed},
        separators=(",", ":"),
        sort_keys=True,
    )
    packed = zlib.compress(text.encode(), 9)
    return base64.urlsafe_b64encode(packed).decode().rstrip("=")


def decode(manifest: str) -> BundleRequest:
    """The BundleRequest of a GET URL; anything malformed is a clear 422."""
    try:
        packed = base64.urlsafe_b64decode(manifest + "=" * (-len(manifest) % 4))
        inflater = zlib.decompressobj()
        text = inflater.decompress(packed, MAX_MANIFEST)
        if inflater.unconsumed_tail:
            raise InvalidRequest(f"the manifest inflates beyond {MAX_MANIFEST} bytes")
        data = json.loads(text)
    except (binascii.Error, zlib.error, ValueError, RecursionError) as exc:
        raise InvalidRequest(
            f"the manifest in the URL is not base64url(zlib(JSON)) ({exc}); "
            "POST /v1/bundles/describe returns the URL of a bundle"
        ) from None
    try:
        return BundleRequest.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("path", "manifest", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


def make(body: BundleRequest, request: Request) -> tuple[BundlePlan, str]:
    limits, engines = planning(request)
    b = plan_bundle(body.to_spec(), limits, engines)
    return b, f"/v1/bundles/{encode(body, b.seed)}"


def headers_for(b: BundlePlan, url: str, name: str) -> dict[str, str]:
    return {
        "Content-Type": "application/vnd.safetensors",
        "ETag": b.etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": cache_control(b),
        "Content-Disposition": f'attachment; filename="{name}.safetensors"',
        "Content-Location": url,
        "X-Content-Type-Options": "nosniff",
        "X-Init-Seed": str(b.seed),
        "X-Init-Algorithm": b.algorithm,
        "X-Init-Tensors": str(len(b.entries)),
        "X-Init-Header-Bytes": str(len(b.header)),
        "X-Init-Service-Version": __version__,
    }


async def serve(body: BundleRequest, request: Request) -> Response:
    try:
        http.negotiate(request.headers.get("accept"), "safetensors", only="safetensors")
    except http.NotAcceptable as exc:
        return problem(406, "not-acceptable", str(exc), instance=instance(request))
    b, url = await anyio.to_thread.run_sync(make, body, request)  # 10k members: ~0.6 s
    headers = headers_for(b, url, body.name)
    remember(request, b, headers)
    return await respond(b, dict(headers), request)
