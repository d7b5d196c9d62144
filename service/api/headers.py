"""The response headers of a payload (a tensor or a bundle): one builder for both."""

from __future__ import annotations

from typing import Literal

from service import __version__
from service.bundle import BundlePlan
from service.config import Settings
from service.plan import Payload, Plan

IMMUTABLE = "max-age=31536000, immutable"  # after `public, ` or `private, `
METADATA_HEADERS = {  # Plan.metadata() keys, as headers
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
    "full_shape": "X-Init-Full-Shape",  # with a slice or shard: the whole tensor's shape
    "slice": "X-Init-Slice",  # and the part sent, every axis start:stop
    "seed": "X-Init-Seed",
    "algorithm": "X-Init-Algorithm",
}
TENSOR_HEADERS = ("X-Init-Shape", "X-Init-Dtype", "X-Init-Format")
BUNDLE_HEADERS = ("X-Init-Tensors", "X-Init-Header-Bytes")
VERSION = "X-Init-Service-Version"  # a header only: the payload is version-free
DIGEST = "Repr-Digest"  # added by service.api.respond where known
EXPOSED = sorted(  # to browsers, through CORS
    {*METADATA_HEADERS.values(), *TENSOR_HEADERS, *BUNDLE_HEADERS, VERSION, DIGEST}
)


def visibility(settings: Settings) -> Literal["public", "private"]:
    """Who may keep a pinned answer: `private` (the client's own cache only) when API keys guard
    the service, unless WEIGHTGEN_CACHE_VISIBILITY says otherwise: a shared cache must not hand
    a keyed answer to a request without the key (RFC 9111 §3.5 lets it reuse a `public` one)."""
    if settings.cache_visibility == "auto":
        return "private" if settings.api_keys else "public"
    return settings.cache_visibility


def cache_control(payload: Payload, settings: Settings) -> str:
    """Pinned seeds are immutable resources; a seed the service drew is a new answer each time."""
    if payload.seed_source != "request":
        return "no-store"
    return f"{visibility(settings)}, {IMMUTABLE}"


def headers(
    payload: Payload,
    location: str,
    filename: str,
    media_type: str,
    *,
    negotiated: bool,
    settings: Settings,
) -> dict[str, str]:
    """Every header of a 200 answer but Content-Length (the range decides that)."""
    out = {
        "Content-Type": media_type,
        "ETag": payload.etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": cache_control(payload, settings),
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Content-Location": location,
        "X-Content-Type-Options": "nosniff",
    }
    if isinstance(payload, Plan):
        out |= {
            "X-Init-Shape": ",".join(str(d) for d in payload.shape),
            "X-Init-Dtype": payload.dtype.name,
            "X-Init-Format": payload.format,
        }
        out[VERSION] = __version__
        if negotiated:
            out["Vary"] = "Accept"
        return out | {METADATA_HEADERS[k]: v for k, v in payload.metadata().items()}
    if isinstance(payload, BundlePlan):
        out |= {"X-Init-Seed": str(payload.seed), "X-Init-Algorithm": payload.algorithm}
        out |= {"X-Init-Tensors": str(len(payload.entries))}
        out |= {"X-Init-Header-Bytes": str(len(payload.header))}
    return out | {VERSION: __version__}
