"""What a model recipe is: a training stack's architecture config (the fields it reads, declared
once as a frozen dataclass with `service.arguments.arg`, with the stack's own defaults) turned
into the model's whole state dict: every named tensor, under the stack's names and layouts, with
the law the stack's init gives it. `count` says how many tensors in O(1), before expanding.

A recipe reads only the fields it declares; any other field of a pasted `config.json` is left
alone and reported as ignored. `dtype`/`torch_dtype` and `model_type` are read by every recipe.
Pure: no HTTP, no pydantic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from service import arguments
from service.arguments import arg
from service.dtypes import DTypeName
from service.errors import SchemeError
from service.presets.base import Member, constant, zero_bias
from service.schemes import Params, Shape

C = TypeVar("C")
Law = Literal[
    "normal", "truncated_normal", "uniform", "zeros", "ones", "constant", "tied",
    "inverse_softplus_log_uniform", "log_arange",
]  # fmt: skip
FloatDType = Literal["float32", "float16", "bfloat16", "float64"]


@dataclass(frozen=True)
class Common:
    """Fields every recipe reads besides its own: the checkpoint's dtype and model type."""

    dtype: FloatDType | None = arg(
        "dtype the checkpoint is stored in (a request's dtype wins)", None
    )
    torch_dtype: FloatDType | None = arg("the older name of dtype (transformers 4.x)", None)


@dataclass(frozen=True)
class Group:
    """One parameter group: which tensors, the law the stack applies, and where it does."""

    tensors: str  # the state-dict names, {i} for the layer index
    law: Law
    formula: str
    source: str  # file:line in the stack's source

    def describe(self) -> dict[str, str]:
        return {
            "tensors": self.tensors,
            "law": self.law,
            "formula": self.formula,
            "source": self.source,
        }


@dataclass(frozen=True)
class Configured(Generic[C]):
    """A recipe's config, checked: its own fields, the checkpoint dtype, what it did not read."""

    config: C
    dtype: DTypeName | None
    ignored: tuple[str, ...]


@dataclass(frozen=True)
class Recipe(Generic[C]):
    """A model of a training stack: `config` declares the fields it reads, `expand` names every
    tensor of the state dict, `count` how many in O(1); `groups` document the laws."""

    name: str
    summary: str
    stack: str  # e.g. "transformers"
    version: str  # the version whose source it follows
    model: str  # the class it reproduces, e.g. "GPT2LMHeadModel"
    model_type: str  # config.json's model_type
    config: type[C]
    expand: Callable[[C], list[Member]] = field(repr=False)
    count: Callable[[C], int] = field(repr=False)
    groups: tuple[Group, ...] = ()
    # where the stack's own DCP checkpoints keep the model's keys: OLMo-core saves
    # {"model": state_dict} ("model.<name>"), torchtitan flattens them to the top ("<name>")
    dcp_prefix: str = ""
    # words the stack's config takes for a field besides its declared type, read as the value
    # declared for them (MambaConfig's time_step_rank "auto": null, ⌈hidden_size/16⌉)
    words: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    # the transformers config.json a checkpoint of it carries where that is not the config
    # given (a converter's: gpt-neox's NeoXArgs become a GPTNeoXConfig); None: the given one
    hf_config: Callable[[C], dict[str, object]] | None = field(default=None, repr=False)

    def configure(self, given: Mapping[str, object]) -> Configured[C]:
        """`given` (a config.json) checked against the declared fields; others are ignored."""
        own = {d.name for d in arguments.declared(self.config)}
        common = {d.name for d in arguments.declared(Common)}
        mine = {k: self._word(k, v) for k, v in given.items() if k in own}
        theirs = {k: v for k, v in given.items() if k in common}
        if "model_type" in given and given["model_type"] != self.model_type:
            got = repr(given["model_type"])
            raise SchemeError(
                f"{self.name} config model_type must be {self.model_type!r}; received "
                f"{got if len(got) <= 80 else got[:77] + '...'}"
            )
        config = arguments.build(self.config, mine, f"{self.name} config")
        dtypes = arguments.build(Common, theirs, f"{self.name} config")
        ignored = tuple(sorted(k for k in given if k not in own | common | {"model_type"}))
        return Configured(config, dtypes.dtype or dtypes.torch_dtype, ignored)

    def _word(self, key: str, value: object) -> object:
        """A field's value, or the value one of the stack's words for it stands for."""
        words = self.words.get(key, {})
        return words[value] if isinstance(value, str) and value in words else value

    def members(self, given: Mapping[str, object]) -> list[Member]:
        return self.expand(self.configure(given).config)

    def fields(self) -> list[dict[str, Any]]:
        """The config fields it reads, as catalogue JSON (with the stack's defaults)."""
        decls = [*arguments.declared(self.config), *arguments.declared(Common)]
        return [d.describe() for d in decls]


# --- small builders ---------------------------------------------------------------------------


def normal(name: str, shape: Shape, std: float, zero_rows: tuple[int, ...] = ()) -> Member:
    """torch.nn.init.normal_(mean=0, std), untruncated; `zero_rows` set to zero afterwards."""
    params = Params(mean=0.0, std=float(std))
    return Member(name, shape, "normal", "torch", params, zero_rows=zero_rows)


def trunc_normal(name: str, shape: Shape, std: float, a: float, b: float) -> Member:
    """torch.nn.init.trunc_normal_(mean=0, std, a, b): N(0, std²) restricted to [a, b], bounds
    absolute (torch's default ±2 is ±100σ at std 0.02), no variance correction."""
    params = Params(mean=0.0, std=float(std), a=float(a), b=float(b))
    return Member(name, shape, "truncated_normal", "torch", params)


def cutoff_normal(name: str, shape: Shape, std: float, cutoff: float | None) -> Member:
    """TN(std, ±cutoff·std) as OLMo and OLMo-core write it (`trunc_normal_(std=s, a=-c·s,
    b=c·s)`); cutoff None: the plain untruncated normal."""
    if cutoff is None:
        return normal(name, shape, std)
    return trunc_normal(name, shape, std, -cutoff * std, cutoff * std)


def zeros(name: str, shape: Shape) -> Member:
    return constant(name, shape, 0.0)


def ones(name: str, shape: Shape) -> Member:
    return constant(name, shape, 1.0)


def linear(name: str, out: int, inp: int, std: float, bias: bool) -> list[Member]:
    """nn.Linear(inp, out, bias) (or a parallel linear at size 1): weight (out, in) N(0, std²),
    bias zeros when `bias`."""
    return [normal(f"{name}.weight", (out, inp), std), *zero_bias(name, out, bias)]


def layer_norm(name: str, size: int, bias: bool = True) -> list[Member]:
    """LayerNorm (or, without bias, RMSNorm): weight ones, bias zeros when `bias`."""
    return [ones(f"{name}.weight", (size,)), *zero_bias(name, size, bias)]


def tied(name: str, shape: Shape, source: str) -> Member:
    """A tensor that is `source` (the same parameter in the model): the same bytes."""
    return Member(name, shape, "zeros", "torch", tied_to=source)


def residual_std(std: float, layers: int) -> float:
    """GPT-2 / Megatron's residual projections: std/√(2·layers)."""
    return std / math.sqrt(2 * layers)
