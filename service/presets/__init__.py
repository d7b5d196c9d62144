"""Layer presets: a framework's layer, expanded into its named tensors, each with that
framework's own default initialization: torch.nn (`torch.py`, `torch_norm.py`,
`torch_sequence.py`), Keras 3 (`keras.py`, `keras_more.py`, `keras_einsum.py`), Flax linen
(`flax.py`, `flax_linen.py`, `flax_norm.py`) and GPT-2 (`gpt2.py`).

Each preset declares its arguments once, as a frozen dataclass (`service.arguments`); `expand`
checks a layer's JSON arguments against it and names the tensors, `count` says how many there
would be without expanding. Adding a preset: one args dataclass, one expand, one row of its
module's table. Pure: no HTTP, no pydantic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.errors import SchemeError, one_of
from service.presets import (
    flax,
    flax_linen,
    flax_norm,
    gpt2,
    keras,
    keras_einsum,
    keras_more,
    torch,
    torch_more,
    torch_norm,
    torch_sequence,
    torch_transformer,
)
from service.presets.base import Member, Preset

__all__ = ["PRESETS", "Member", "Preset", "count", "expand", "lookup"]


def _table() -> list[Preset[Any]]:
    rows = [*torch.ROWS, *torch_norm.ROWS, *torch_sequence.ROWS]
    rows += [*torch_more.ROWS, *torch_transformer.ROWS]
    rows += [*keras.ROWS, *keras_more.ROWS, *keras_einsum.ROWS, *flax.ROWS, *gpt2.ROWS]
    rows += [*flax_linen.ROWS, *flax_norm.ROWS]
    rows += [p for dims in (1, 2, 3) for p in keras_more.spatial(dims)]
    for dims in (1, 2, 3):
        rows += [*torch.spatial(dims), *torch_norm.spatial(dims), *keras.spatial(dims)]
    return rows


PRESETS: Mapping[str, Preset[Any]] = {p.name: p for p in _table()}


def lookup(name: str) -> Preset[Any]:
    """The preset called `name`, or a SchemeError listing them."""
    found = PRESETS.get(name)
    if found is None:
        raise SchemeError(f"unknown preset {name!r}; expected one of {one_of(PRESETS)}")
    return found


def expand(preset: str, name: str, args: Mapping[str, object]) -> list[Member]:
    """The named tensors of one layer; unknown presets and arguments say what is allowed."""
    return lookup(preset).members(name, args)


def count(preset: str, args: Mapping[str, object]) -> int:
    """How many tensors `expand` would name (if it succeeds), from the arguments alone."""
    found = lookup(preset)
    return found.count(found.arguments(args))
