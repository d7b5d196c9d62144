"""The OpenAPI contract beyond what FastAPI infers: the responses of the tensor and bundle
resources (statuses, media types, every header), the problem schema, the bearer security scheme.

Made from the code's own declarations, not copied: header names from `service.api.headers` (a
new `X-Init-*` header without a description here fails the document's build), the 304's from
`respond.NOT_MODIFIED`, media types from the format registry, enumerations from the Literal
types, the request-id pattern from the middleware's. Routes take their `responses=` from here;
`install` completes the document (components, security, X-Request-ID, 401) for the app.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Literal, get_args

from fastapi import FastAPI

from service.api.headers import BUNDLE_HEADERS, DIGEST, METADATA_HEADERS, TENSOR_HEADERS, VERSION
from service.api.middleware import REQUEST_ID
from service.api.models import TensorRequest
from service.api.problems import MEDIA_TYPE as PROBLEM_MEDIA_TYPE
from service.api.respond import NOT_MODIFIED
from service.dtypes import DTYPE_NAMES, FORMAT_NAMES
from service.formats import WRITERS
from service.schemes.vocabulary import Convention, Kind, Mode

Schema = dict[str, Any]
Responses = dict[int | str, dict[str, Any]]
Resource = Literal["tensor", "bundle"]
Method = Literal["GET", "HEAD", "POST"]

GUARDED = "/v1"  # the prefix service.api.middleware.ApiKeys guards
BEARER = "bearer"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
BINARY: Schema = {"type": "string", "format": "binary"}
BUNDLE_MEDIA_TYPE = WRITERS["safetensors"].media_type
STRING: Schema = {"type": "string"}
NUMBER: Schema = {"type": "number"}
COUNT: Schema = {"type": "integer", "minimum": 0}


def enum(values: Iterable[str]) -> Schema:
    return {"type": "string", "enum": [*values]}


SEED: Schema = {"type": "integer", "minimum": 0, "maximum": 2**64 - 1}

# Plan.metadata() keys: (description, schema); ALWAYS: the keys every plan has
METADATA: dict[str, tuple[str, Schema]] = {
    "scheme": ("the scheme that drew the tensor (its canonical name, aliases resolved)", STRING),
    "convention": (
        "the convention whose fan rule and defaults apply",
        enum(get_args(Convention)),
    ),
    "kind": (
        "the law of the elements (or the structure, for QR and identity kinds)",
        enum(get_args(Kind)),
    ),
    "fan_in": ("the fan-in: the convention's rule, or the explicit `fan_in`", NUMBER),
    "fan_out": ("the fan-out: the convention's rule, or the explicit `fan_out`", NUMBER),
    "mode": ("which fan divides the variance scale", enum(get_args(Mode))),
    "gain": ("the gain multiplying the std (torch gain, JAX scale)", NUMBER),
    "std": ("σ, the std of the normal before any truncation", NUMBER),
    "limit": ("half-width of a support symmetric about zero (uniform or truncation bound)", NUMBER),
    "low": ("lower bound of the elements' support", NUMBER),
    "high": ("upper bound of the elements' support", NUMBER),
    "mean": ("the mean of every element", NUMBER),
    "effective_std": (
        "the std of every element, after truncation: what a sample estimates",
        NUMBER,
    ),
    "zero_rows": (
        "rows along axis 0 set to zero (normalized, comma-separated)",
        {"type": "string", "pattern": "^[0-9]+(,[0-9]+)*$"},
    ),
    "full_shape": (
        "with a slice or shard: the whole tensor's shape (X-Init-Shape is the part's)",
        {"type": "string", "pattern": "^[0-9]+(,[0-9]+)*$"},
    ),
    "slice": (
        "with a slice or shard: the part sent, start:stop on every axis of the whole tensor",
        {"type": "string", "pattern": "^[0-9]+:[0-9]+(,[0-9]+:[0-9]+)*$"},
    ),
    "seed": (
        "the seed: the request's, or the one the service drew (then `Cache-Control: no-store`)",
        SEED,
    ),
    "algorithm": ("the generator's version: same request and algorithm, same bytes", STRING),
}
ALWAYS = frozenset({"scheme", "convention", "kind", "mean", "effective_std", "seed", "algorithm"})
BUNDLE_METADATA = ("seed", "algorithm")  # a bundle's, of METADATA
OTHER: dict[str, tuple[str, Schema]] = {
    "X-Init-Shape": (
        "the dimensions, comma-separated (empty for a scalar)",
        {"type": "string", "pattern": "^([0-9]+(,[0-9]+)*)?$"},
    ),
    "X-Init-Dtype": ("the element type", enum(DTYPE_NAMES)),
    "X-Init-Format": ("the file format of the body", enum(FORMAT_NAMES)),
    "X-Init-Tensors": ("the number of tensors in the bundle", COUNT),
    "X-Init-Header-Bytes": ("bytes of the safetensors header, its length prefix included", COUNT),
    VERSION: ("the service's version (the bytes do not depend on it)", STRING),
    DIGEST: (
        "RFC 9530 `sha-256=:<base64>:` of the whole representation (whatever the range), "
        "when known or asked with Want-Repr-Digest",
        {"type": "string", "pattern": "^sha-256=:[A-Za-z0-9+/]+={0,2}:$"},
    ),
    "ETag": (
        "the validator: a hash of the canonical request (weak, `W/`, for QR schemes)",
        {"type": "string", "pattern": '^(W/)?"[^"]*"$'},
    ),
    "Accept-Ranges": ("byte ranges are served (Range, If-Range)", enum(["bytes"])),
    "Cache-Control": (
        "`public|private, max-age=31536000, immutable` for a pinned seed, else `no-store`",
        STRING,
    ),
    "Content-Disposition": ('`attachment; filename="<name>.<ext>"`', STRING),
    "Content-Location": (
        "the fully specified GET URL of this answer (defaults resolved, seed pinned)",
        STRING,
    ),
    "X-Content-Type-Options": ("the body is never to be sniffed", enum(["nosniff"])),
    "Vary": ("`Accept` when the format was negotiated (no `format` asked)", STRING),
    "Content-Length": ("bytes of this answer's body (of the range, on a 206)", COUNT),
    "Content-Range": (
        "`bytes <first>-<last>/<length>`: the range sent",
        {"type": "string", "pattern": "^bytes [0-9]+-[0-9]+/[0-9]+$"},
    ),
}
REQUEST_ID_HEADER = {
    "description": "the request's id: the client's X-Request-ID when safe, else a new one "
    "(also in a problem's `instance`)",
    "required": True,
    "schema": {"type": "string", "pattern": REQUEST_ID.pattern},
}


def header(description: str, schema: Schema, *, required: bool = True) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema}


def _metadata(keys: Iterable[str], always: Collection[str]) -> dict[str, Any]:
    """The X-Init-* headers of Plan.metadata() keys: every one described, or the build fails."""
    return {METADATA_HEADERS[k]: header(*METADATA[k], required=k in always) for k in keys}


def payload_headers(resource: Resource) -> dict[str, dict[str, Any]]:
    """Every header of a 200 answer with the payload (service.api.headers, then respond's)."""
    common = ("ETag", "Accept-Ranges", "Cache-Control", "Content-Disposition", "Content-Location")
    names = [*common, "X-Content-Type-Options", "Content-Length", VERSION]
    out = {n: header(*OTHER[n]) for n in names}
    if resource == "tensor":
        out |= {n: header(*OTHER[n]) for n in TENSOR_HEADERS}
        out["Vary"] = header(*OTHER["Vary"], required=False)
        out |= _metadata(METADATA_HEADERS, ALWAYS)
    else:
        out |= _metadata(BUNDLE_METADATA, BUNDLE_METADATA)
        out |= {n: header(*OTHER[n]) for n in BUNDLE_HEADERS}
    return out | {DIGEST: header(*OTHER[DIGEST], required=False)}


def optional(headers: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n: {**h, "required": False} for n, h in headers.items()}


def problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """A problem+json answer (RFC 9457), with `headers` besides X-Request-ID."""
    content = {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}
    return {"description": description, "content": content, "headers": dict(headers or {})}


RETRY_AFTER = header("seconds to wait before retrying", COUNT)
UNSATISFIABLE_RANGE = header(
    "`bytes */<length>`: the length of the whole answer",
    {"type": "string", "pattern": "^bytes \\*/[0-9]+$"},
)
WWW_AUTHENTICATE = header(
    "the scheme to authenticate with", {"type": "string", "pattern": "^Bearer "}
)


def errors(*, body: bool) -> Responses:
    """The refusals of any operation with inputs; a request body adds its own."""
    out: Responses = {
        422: problem("invalid request: every error with its JSON pointer in `errors`"),
        503: problem("device unavailable or overloaded", {"Retry-After": RETRY_AFTER}),
    }
    if body:
        out |= {
            400: problem("a body that cannot be read as JSON"),
            408: problem("the request body stalled (WEIGHTGEN_BODY_TIMEOUT)"),
            413: problem("request body too large (WEIGHTGEN_MAX_BODY_BYTES)"),
        }
    return out


def _media(resource: Resource) -> dict[str, Any]:
    if resource == "bundle":
        return {BUNDLE_MEDIA_TYPE: {"schema": BINARY}}
    return {w.media_type: {"schema": BINARY} for w in WRITERS.values()}


def payload_responses(resource: Resource, method: Method) -> Responses:
    """The answers of a tensor or bundle resource: GET and HEAD get ranges and 304 (respond),
    POST gets 412 where If-None-Match matches; HEAD the same statuses and headers as GET."""
    headers = payload_headers(resource)
    media = _media(resource)
    out: Responses = {
        200: {"description": f"the {resource}", "content": media, "headers": headers},
        406: problem("no acceptable format (Accept)"),
    }
    if method == "POST":
        return out | {412: problem("If-None-Match matches the answer's ETag")} | errors(body=True)
    described = "DescribeResponse" if resource == "tensor" else "BundleDescribeResponse"
    json = {"application/json": {"schema": {"$ref": f"#/components/schemas/{described}"}}}
    out[200] = {
        "description": f"the {resource}; with `describe=true` its JSON description instead "
        "(without the payload's headers)",
        "content": {**media, **json},
        "headers": optional(headers) | {"Content-Length": headers["Content-Length"]},
    }
    partial = {"Content-Range": header(*OTHER["Content-Range"]), **headers}
    kept = {n: headers[n] for n in NOT_MODIFIED if n in headers}
    return (
        out
        | {
            206: {
                "description": "the byte range asked (Range, If-Range)",
                "content": media,
                "headers": partial,
            },
            304: {"description": "not modified (If-None-Match); no body", "headers": kept},
            416: problem("range not satisfiable", {"Content-Range": UNSATISFIABLE_RANGE}),
        }
        | errors(body=False)
    )


PROBLEM: Schema = {
    "type": "object",
    "description": "RFC 9457 problem details: every error answer has this shape",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {
            "type": "string",
            "description": "a URN naming the problem (`urn:weightgen:problem:<slug>`)",
        },
        "title": {"type": "string", "description": "the problem's summary"},
        "status": {
            "type": "integer",
            "minimum": 400,
            "maximum": 599,
            "description": "the HTTP status",
        },
        "detail": {"type": "string", "description": "what was wrong with this request"},
        "instance": {
            "type": "string",
            "description": "the request's id as a URN (`urn:weightgen:request:<X-Request-ID>`)",
        },
        "errors": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/ProblemError"},
            "description": "each validation error (422)",
        },
    },
    "additionalProperties": True,
}
PROBLEM_ERROR: Schema = {
    "type": "object",
    "required": ["pointer", "detail"],
    "properties": {
        "pointer": {"type": "string", "description": "JSON pointer to the value (`#/shape/0`)"},
        "detail": {"type": "string", "description": "what is wrong with it"},
        "received": {"type": "string", "description": "the value received, cut to 80 characters"},
    },
}
SECURITY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "`Authorization: Bearer <key>` on `/v1/*`; enforced only when the deployment "
    "configures keys (WEIGHTGEN_API_KEYS). Health, readiness, metrics and docs stay open.",
}
UNAUTHORIZED = problem(
    "no valid API key (only when keys are configured)", {"WWW-Authenticate": WWW_AUTHENTICATE}
)


def _scheme_parameter() -> dict[str, Any]:
    """A tensor URL's `{scheme}`: any segment is routed here (`describe` too, then refused), so
    a string; its names and aliases, the body's `scheme` enumeration, as the examples."""
    prop = TensorRequest.model_json_schema()["properties"]["scheme"]
    schema = {"type": "string", "examples": prop["enum"]}
    return {"description": prop.get("description", ""), "schema": schema}


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """The document FastAPI made, with the problem schemas, the bearer scheme on every guarded
    operation (and its 401), and X-Request-ID on every answer (service.api.middleware)."""
    document = copy.deepcopy(document)  # FastAPI shares the routes' `responses` dicts
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas |= {"Problem": PROBLEM, "ProblemError": PROBLEM_ERROR}
    components["securitySchemes"] = {BEARER: SECURITY_SCHEME}
    scheme = _scheme_parameter()
    for path, item in document.get("paths", {}).items():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] == "scheme":
                    parameter |= scheme
            responses = operation.setdefault("responses", {})
            if path.startswith(GUARDED):
                operation["security"] = [{BEARER: []}]
                responses["401"] = copy.deepcopy(UNAUTHORIZED)
            for response in responses.values():
                response.setdefault("headers", {})["X-Request-ID"] = REQUEST_ID_HEADER
    return document


def install(app: FastAPI) -> None:
    """Serve the completed document at the app's /openapi.json (built once, then kept)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
