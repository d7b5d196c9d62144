"""Declared arguments: every parameter of a scheme and every argument of a preset is a field of
a frozen dataclass, declared once with its type, bounds, default and meaning (`arg`).

The API edge derives its pydantic models (and so the OpenAPI schema) from these declarations
(`service.api.fields`), the catalogues list them, and `build` checks values against them below
the edge, with messages that say what was received and what is allowed. Standard library only.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from service.errors import SchemeError, one_of

T = TypeVar("T")
MISSING: Any = dataclasses.MISSING  # a declaration without a default: the argument is required
MAX_FLOAT = sys.float_info.max  # an integer beyond it has no float: it is not a finite number
Kind = Literal["integer", "number", "boolean", "string", "text", "integers", "integer_or_integers"]
MAX_TEXT = 256  # a free-text argument (an einsum equation) holds at most this many characters


@dataclass(frozen=True)
class Arg:
    """What an argument means and which values it takes (bounds are inclusive unless `gt`)."""

    description: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    min_items: int | None = None
    max_items: int | None = None
    framework: str | None = ""  # the framework's own name: "" the same, None it has none
    pattern: str | None = None  # free text (not a choice): the regular expression it must match


SAME = ""  # `framework=SAME`: the framework calls the argument by the same name
INFERRED = None  # `framework=INFERRED`: no such argument; the layer infers it (from its input)


def arg(
    description: str,
    default: Any = MISSING,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    min_items: int | None = None,
    max_items: int | None = None,
    framework: str | None = SAME,
    pattern: str | None = None,
) -> Any:
    """A dataclass field carrying its declaration (as `dataclasses.field` does its default).
    `framework` is what the framework itself calls the argument (a preset's layer constructor):
    SAME (the default), another name, or INFERRED where the layer takes no such argument and
    infers the value (Keras and Flax read input features from the input when they build)."""
    meta = {"arg": Arg(description, ge, gt, le, min_items, max_items, framework, pattern)}
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Declared:
    """One declared argument, read back from its dataclass."""

    name: str
    annotation: Any  # the resolved type, e.g. `float | None`, `Mode | None`, `tuple[int, ...]`
    arg: Arg
    default: Any  # MISSING when required

    @property
    def required(self) -> bool:
        return self.default is MISSING

    @functools.cached_property
    def parts(self) -> tuple[Any, ...]:
        """The annotation's alternatives, `None` left out."""
        if get_origin(self.annotation) in (Union, types.UnionType):
            return tuple(a for a in get_args(self.annotation) if a is not type(None))
        return (self.annotation,)

    @property
    def framework_name(self) -> str | None:
        """The framework's own name for the argument; None where the layer infers it."""
        return self.name if self.arg.framework == SAME else self.arg.framework

    @property
    def nullable(self) -> bool:
        union = get_origin(self.annotation) in (Union, types.UnionType)
        return union and type(None) in get_args(self.annotation)

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(c for p in self.parts if get_origin(p) is Literal for c in get_args(p))

    @property
    def kind(self) -> Kind:
        parts = set(self.parts)
        if self.choices:
            return "string"
        if parts == {str}:
            return "text"
        if parts == {int, tuple[int, ...]}:
            return "integer_or_integers"
        kinds: dict[Any, Kind] = {
            bool: "boolean",
            int: "integer",
            float: "number",
            str: "string",
            tuple[int, ...]: "integers",
        }
        (only,) = parts
        return kinds[only]

    def describe(self) -> dict[str, Any]:
        """The declaration as catalogue JSON: type, meaning, default, bounds, choices."""
        out: dict[str, Any] = {
            "name": self.name,
            "type": _CATALOGUE_TYPES.get(self.kind, self.kind),
        }
        out["description"] = self.arg.description
        out["required"] = self.required
        if not self.required:
            out["default"] = list(self.default) if isinstance(self.default, tuple) else self.default
        if self.nullable:
            out["nullable"] = True
        if self.choices:
            out["choices"] = list(self.choices)
        if self.kind == "text":
            out["max_length"] = MAX_TEXT
            if self.arg.pattern is not None:
                out["pattern"] = self.arg.pattern
        for key in ("ge", "gt", "le", "min_items", "max_items"):
            if (value := getattr(self.arg, key)) is not None:
                out[_CATALOGUE_KEYS[key]] = value
        return out


_CATALOGUE_TYPES: Mapping[Kind, str] = {"text": "string"}  # free text is a JSON string
_CATALOGUE_KEYS = {
    "ge": "minimum",
    "gt": "exclusive_minimum",
    "le": "maximum",
    "min_items": "min_items",
    "max_items": "max_items",
}


_DECLARED: dict[type, tuple[Declared, ...]] = {}


def declared(cls: type) -> tuple[Declared, ...]:
    """The declared fields of a dataclass, in order (read once); a field without `arg` is a bug."""
    if cls not in _DECLARED:
        _DECLARED[cls] = _read(cls)
    return _DECLARED[cls]


def _read(cls: type) -> tuple[Declared, ...]:
    hints = get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if "arg" not in f.metadata:
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with arg()")
        out.append(Declared(f.name, hints[f.name], f.metadata["arg"], f.default))
    return tuple(out)


def _received(value: object) -> str:
    """What was received, in at most 80 characters (never the whole of a huge value)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int past the str limit, a list nested too deep
        return f"a {type(value).__name__} too large to show"
    return text if len(text) <= 80 else text[:77] + "..."


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bound_text(a: Arg) -> str:
    bounds = ((">=", a.ge), (">", a.gt), ("<=", a.le))
    return " and ".join(f"{op} {_number_text(x)}" for op, x in bounds if x is not None)


def _number_text(x: float) -> str:
    """2**40 as 1099511627776, not 1.09951e+12; 0.0 as 0."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _in_bounds(a: Arg, x: float) -> bool:
    return not (
        (a.ge is not None and x < a.ge)
        or (a.gt is not None and x <= a.gt)
        or (a.le is not None and x > a.le)
    )


_TYPE_TEXT: Mapping[Kind, str] = {
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "string": "a string",
    "text": "a string",
    "integers": "a list of integers",
    "integer_or_integers": "an integer or a list of integers",
}


def check(d: Declared, value: object, owner: str | None = None) -> object:
    """`value` as the declaration holds it (a JSON list becomes a tuple), or a SchemeError that
    names the argument (of `owner`, a preset, when given) and says what it takes. Bounded work:
    lists are checked against max_items before their items, big numbers are never printed."""
    if value is None and d.nullable:
        return None
    kind, a = d.kind, d.arg
    label = d.name if owner is None else f"{owner} argument {d.name}"
    wanted = _TYPE_TEXT[kind] + (" or null" if d.nullable else "")
    if kind == "string":
        if value not in d.choices:
            raise SchemeError(
                f"unknown {label} {_received(value)}; expected one of {one_of(d.choices)}"
            )
        return value
    if kind == "text":
        return _text(d, value, label, wanted)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise SchemeError(f"{label} must be {wanted}; received {_received(value)}")
        return value
    if kind in ("integers", "integer_or_integers") and isinstance(value, list | tuple):
        if (a.max_items is not None and len(value) > a.max_items) or (
            a.min_items is not None and len(value) < a.min_items
        ):
            raise SchemeError(
                f"{label} must have {a.min_items or 0} … {a.max_items} items; received "
                f"{len(value)} items"
            )
        for item in value:
            _number(d, item, label, wanted, owner)
        return tuple(value)
    if kind == "integers":
        raise SchemeError(f"{label} must be {wanted}; received {_received(value)}")
    return _number(d, value, label, wanted, owner)


def _text(d: Declared, value: object, label: str, wanted: str) -> str:
    """Free text: a string of at most MAX_TEXT characters matching the declared pattern."""
    if not isinstance(value, str):
        raise SchemeError(f"{label} must be {wanted}; received {_received(value)}")
    if len(value) > MAX_TEXT:
        raise SchemeError(f"{label} must have at most {MAX_TEXT} characters; received {len(value)}")
    if d.arg.pattern is not None and re.fullmatch(d.arg.pattern, value) is None:
        raise SchemeError(f"{label} must match {d.arg.pattern}; received {_received(value)}")
    return value


def _number(d: Declared, value: object, label: str, wanted: str, owner: str | None) -> object:
    integer = d.kind != "number"
    ok = _is_int(value) or (not integer and isinstance(value, float))
    if not ok:
        raise SchemeError(f"{label} must be {wanted}; received {_received(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise SchemeError(f"{label} must be a finite number; received {value!r}")
    if not integer and isinstance(value, int) and abs(value) > MAX_FLOAT:
        raise SchemeError(f"{label} must be a finite number; received {_received(value)}")
    if not _in_bounds(d.arg, value):  # type: ignore[arg-type]
        bounds, got = _bound_text(d.arg), _received(value)
        if owner is None:
            raise SchemeError(f"{d.name} must be {bounds}; received {got}")
        raise SchemeError(f"{owner} needs {d.name} {bounds}; received {got}")
    return value


def build(cls: type[T], given: Mapping[str, object], owner: str) -> T:
    """An instance of the declared dataclass `cls` from JSON-like values, every one checked:
    unknown and missing names, types and bounds are refused with what `owner` takes."""
    decls = declared(cls)
    names = [d.name for d in decls]
    unknown = [k for k in given if k not in names]
    if unknown:
        takes = one_of(names) if names else "no arguments"
        raise SchemeError(f"{owner} does not take {one_of(unknown)}; it takes {takes}")
    values: dict[str, object] = {}
    for d in decls:
        if d.name not in given:
            if d.required:
                raise SchemeError(f"{owner} needs {d.name}")
            continue
        values[d.name] = check(d, given[d.name], owner)
    return cls(**values)
