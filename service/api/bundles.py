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

from service.api import digests, http
from service.api.deps import services
from service.api.headers import headers
from service.api.models import BundleDescribeResponse, BundleRequest
from service.api.respond import answer
from service.bundle import BundlePlan, plan_bundle
from service.errors import InvalidRequest

MAX_MANIFEST = 1 << 20  # decompressed bytes of a manifest in a URL
MEDIA_TYPE = "application/vnd.safetensors"


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
    s = services(request)
    b = plan_bundle(body.to_spec(), s.limits, s.engines)
    return b, f"/v1/bundles/{encode(body, b.seed)}"


async def describe(body: BundleRequest, request: Request) -> BundleDescribeResponse:
    b, url = await anyio.to_thread.run_sync(make, body, request)  # 10k members: ~0.6 s
    known = services(request).digests.get(b)
    return BundleDescribeResponse.of(b, url, digests.field(known) if known else None)


async def serve(body: BundleRequest, request: Request) -> Response:
    http.negotiate(request.headers.get("accept"), "safetensors", only="safetensors")
    b, url = await anyio.to_thread.run_sync(make, body, request)
    out = headers(
        b,
        url,
        f"{body.name}.safetensors",
        MEDIA_TYPE,
        negotiated=False,
        settings=services(request).settings,
    )
    return await answer(b, out, request)
