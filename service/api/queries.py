"""Reading a GET URL's query: lists split, repeats refused, `describe` a strict boolean.
Refusals are pydantic-style errors, so they read like a body's (`#/shape: ...`)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from service import slices
from service.api.models import TensorRequest
from service.api.parts import SHARD_PATTERN
from service.errors import ShapeError

DECIMAL = re.compile(r"-?[0-9]{1,19}")  # ASCII digits only, and no more than an int64 holds
LIST_FIELDS = ("shape", "in_axes", "out_axes", "batch_axes", "zero_rows")
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")  # FastAPI's booleans


def _split(value: str) -> list[int | str]:
    """'256,128' -> [256, 128]; '' -> []; a bad item stays a string for pydantic to report."""
    items = [v.strip() for v in value.split(",")] if value.strip() else []
    return [int(v) if DECIMAL.fullmatch(v) else v for v in items]


def _error(key: str, kind: str, msg: str, value: object) -> dict[str, Any]:
    return {"type": kind, "loc": ("query", key), "msg": msg, "input": value}


def read_query(request: Request) -> tuple[dict[str, Any], bool]:
    """A GET URL's query: its parameters (lists split) and whether `describe` is asked. A
    repeated parameter, or a `describe` that is not a boolean, is refused (422)."""
    params: dict[str, Any] = {}
    describe = False
    errors: list[dict[str, Any]] = []
    for key in request.query_params:
        values = request.query_params.getlist(key)
        if len(values) > 1:
            errors.append(_error(key, "value_error", "given more than once", values))
        elif key == "describe":
            describe = values[0].lower() in TRUE
            if not describe and values[0].lower() not in FALSE:
                msg = f"Input should be a boolean ({', '.join(TRUE + FALSE)})"
                errors.append(_error(key, "bool_parsing", msg, values[0]))
        else:
            params[key] = _split(values[0]) if key in LIST_FIELDS else values[0]
    if errors:
        raise RequestValidationError(errors)
    return params, describe


def _shard(text: str) -> dict[str, int]:
    try:
        shard = slices.parse_shard(text)
    except ShapeError as exc:
        raise RequestValidationError([_error("shard", "value_error", exc.detail, text)]) from None
    return {"dim": shard.dim, "index": shard.index, "count": shard.count}


def tensor_query(scheme: str, request: Request) -> tuple[TensorRequest, bool]:
    """The GET query of a tensor URL as a TensorRequest (unknown parameters are refused)."""
    params, describe = read_query(request)
    if "scheme" in params:  # the path names it: a second one would be silently overridden
        msg = f"the scheme is the URL's path ({scheme!r}); remove the scheme parameter"
        raise RequestValidationError([_error("scheme", "extra_forbidden", msg, params["scheme"])])
    if isinstance(params.get("shard"), str):  # dim:index:count, the body's {dim, index, count}
        params["shard"] = _shard(params["shard"])
    try:
        return TensorRequest.model_validate({**params, "scheme": scheme}), describe
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


def bundle_query(request: Request) -> bool:
    """Whether a bundle URL asks `describe`; it takes no other parameter (the manifest has them),
    and a misspelt one is refused, not ignored."""
    params, describe = read_query(request)
    if params:
        extra = "Extra inputs are not permitted"
        raise RequestValidationError(
            [_error(k, "extra_forbidden", extra, v) for k, v in params.items()]
        )
    return describe


def _query_schema(prop: dict[str, Any]) -> dict[str, Any]:
    """A body field's JSON schema as a query parameter's: a query cannot say null."""
    alternatives = [p for p in prop.get("anyOf", [prop]) if p.get("type") != "null"]
    schema = dict(alternatives[0]) if len(alternatives) == 1 else {"anyOf": alternatives}
    for key in ("description", "title"):
        schema.pop(key, None)
    if prop.get("default") is not None:
        schema["default"] = prop["default"]
    return schema


def tensor_parameters() -> list[dict[str, Any]]:
    """The OpenAPI query parameters of a tensor URL, made from TensorRequest (itself made from
    the declarations), so generated clients and schemathesis send them: lists comma-separated."""
    model = TensorRequest.model_json_schema()
    required = set(model.get("required", []))
    out = []
    for name, prop in model["properties"].items():
        if name == "scheme":  # the path's
            continue
        param: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "description": prop.get("description", ""),
            "schema": _query_schema(prop),
        }
        if name in LIST_FIELDS:
            param |= {"style": "form", "explode": False}
        if name == "shard":  # the body's object, written dim:index:count
            param["description"] = "piece index of torch.chunk(full, count, dim): dim:index:count"
            param["schema"] = {"type": "string", "pattern": SHARD_PATTERN, "examples": ["1:0:8"]}
        out.append(param)
    describe = {
        "name": "describe",
        "in": "query",
        "required": False,
        "description": "answer the JSON description (fans, std, size, ETag, URL) instead",
        "schema": {"type": "boolean", "default": False},
    }
    return [*out, describe]
