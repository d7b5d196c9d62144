"""Model recipes: a training stack's architecture config turned into the model's whole state
dict, each tensor with the law that stack's init gives it, under the stack's own names and
layouts (`hf.gpt2`, `hf.llama`, `hf.mistral`, `hf.qwen2`: transformers 5.x, `hf.py`).

Each recipe declares the config fields it reads once, as a frozen dataclass
(`service.arguments`), with the stack's defaults; other fields are ignored and reported. `count`
says how many tensors there would be without expanding. Pure: no HTTP, no pydantic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.errors import SchemeError, one_of
from service.presets.base import Member
from service.recipes import (
    hf,
    hf_encoders,
    hf_mamba,
    hf_neox,
    megatron,
    nanogpt,
    neox,
    olmo,
    olmo_core,
    torchscale,
    torchtitan,
)
from service.recipes.base import Configured, Group, Recipe

# one module per training stack (transformers' encoders, GPT-NeoX and Mamba apart: hf.py would
# pass 400 lines); the catalogue lists them in this order
STACKS = (
    hf, hf_encoders, hf_neox, hf_mamba, nanogpt, megatron, torchtitan, olmo_core, olmo, neox,
    torchscale,
)  # fmt: skip

__all__ = ["RECIPES", "Configured", "Group", "Recipe", "count", "lookup", "members"]

RECIPES: Mapping[str, Recipe[Any]] = {r.name: r for stack in STACKS for r in stack.ROWS}


def lookup(name: str) -> Recipe[Any]:
    """The recipe called `name`, or a SchemeError listing them."""
    found = RECIPES.get(name)
    if found is None:
        raise SchemeError(f"unknown recipe {name!r}; expected one of {one_of(RECIPES)}")
    return found


def members(name: str, config: Mapping[str, object]) -> tuple[list[Member], tuple[str, ...]]:
    """The model's named tensors, and the config fields the recipe did not read."""
    found = lookup(name)
    configured = found.configure(config)
    return found.expand(configured.config), configured.ignored


def count(name: str, config: Mapping[str, object]) -> int:
    """How many tensors `members` would name (if it succeeds), in O(1)."""
    found = lookup(name)
    return found.count(found.configure(config).config)
