"""pydantic fields from declarations (service.arguments): the edge models, and so the OpenAPI
schema, are read from the same fields as the catalogues and the domain's checks."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field
from pydantic_core import PydanticUndefined

from service import schemes
from service.arguments import MAX_TEXT, Declared, declared
from service.plan import MAX_SEED
from service.shapes import MAX_DIM, MAX_RANK

Dim = Annotated[int, Field(ge=0, le=MAX_DIM, strict=True)]
Shape = Annotated[
    list[Dim],
    Field(max_length=MAX_RANK, description="dimensions, rank 0 … 8", examples=[[256, 128]]),
]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED, description="0 … 2^64-1; absent: service picks")]
RESERVED = "__metadata__"  # the safetensors header's metadata key, never a tensor's


def _not_reserved(name: str) -> str:
    if name == RESERVED:
        raise ValueError(
            f"{RESERVED} is reserved by the safetensors format (its header's metadata key), so "
            "it cannot name a tensor; choose another name"
        )
    return name


Name = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}$",
        description=f"tensor name: letters, digits, _ . - (up to 200), not {RESERVED}",
        json_schema_extra={"not": {"const": RESERVED}},
    ),
    AfterValidator(_not_reserved),
]
SchemeName = Annotated[
    str,
    Field(
        description="scheme or alias (GET /v1/schemes lists them)",
        json_schema_extra={"enum": sorted([*schemes.SCHEMES, *schemes.ALIASES])},
    ),
]


def _number(t: type, d: Declared, strict: bool) -> Any:
    a = d.arg
    bounds: dict[str, Any] = {"ge": a.ge, "gt": a.gt, "le": a.le, "strict": strict or None}
    if t is float:
        bounds["allow_inf_nan"] = False
    return Annotated[t, Field(**{k: v for k, v in bounds.items() if v is not None})]


def _items(d: Declared, strict: bool) -> Any:
    """A list, not a tuple: pydantic checks a list's length before its items, so an overlong
    list is one error, not one per item (the declaration's tuple is made by `values`)."""
    item = _number(int, d, strict)
    lengths = Field(min_length=d.arg.min_items, max_length=d.arg.max_items)
    return Annotated[list[item], lengths]  # type: ignore[valid-type]


def values(model: Any, cls: type) -> dict[str, Any]:
    """The declared fields of `cls` read from an edge model, lists as the tuples declared."""
    return {
        d.name: tuple(v) if isinstance(v := getattr(model, d.name), list) else v
        for d in declared(cls)
    }


def annotation(d: Declared, *, strict: bool) -> Any:
    """The pydantic type of a declaration: its type, with its bounds as constraints."""
    kind = d.kind
    if kind == "string":
        base: Any = d.parts[0] if len(d.parts) == 1 else d.annotation
    elif kind == "text":
        base = Annotated[str, Field(max_length=MAX_TEXT, pattern=d.arg.pattern, strict=True)]
    elif kind == "boolean":
        base = Annotated[bool, Field(strict=True)] if strict else bool
    elif kind == "integers":
        base = _items(d, strict)
    elif kind == "integer_or_integers":
        base = _number(int, d, strict) | _items(d, strict)
    else:
        base = _number(float if kind == "number" else int, d, strict)
    return base | None if d.nullable else base


def model_fields(cls: type, *, strict: bool = False) -> dict[str, Any]:
    """`create_model` arguments for every declared field of `cls`: (type, FieldInfo)."""
    return {
        d.name: (
            annotation(d, strict=strict),
            Field(PydanticUndefined if d.required else d.default, description=d.arg.description),
        )
        for d in declared(cls)
    }
