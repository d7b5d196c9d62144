"""What a layer preset is: a framework layer's declared arguments (a frozen dataclass whose every
field is declared with `service.arguments.arg`), the named tensors it expands into, and how many
(counted from the arguments alone, so a bundle can refuse a huge layer before expanding it).

The small builders shared by the framework modules live here too: constant and uniform members,
torch's Linear/Conv weight-and-bias (`torch/nn/modules/linear.py`, `reset_parameters`), and the
checks that only an expander can make (kernel_size entries, channels divisible by groups).
Pure: no HTTP, no pydantic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from service import arguments
from service.dtypes import DTypeName
from service.errors import ShapeError
from service.schemes import Convention, FanSpec, Params, Shape
from service.slices import Part

A = TypeVar("A")
SQRT5 = math.sqrt(5.0)  # torch's Linear/Conv a=√5: kaiming bound becomes 1/√fan_in
MAX_COUNT = 10_000  # a count argument (num_layers): a bundle holds at most this many tensors
MAX_KERNEL_DIMS = 3  # torch/keras convolutions are 1-, 2- or 3-d


@dataclass(frozen=True)
class Member:
    """One named tensor of a bundle; dtype None means the bundle's dtype. A member `tied_to`
    another (GPT-2's lm_head.weight to transformer.wte.weight) holds that member's bytes. `part`
    (a slice or shard, service.slices) sends only that part of it."""

    name: str
    shape: Shape
    scheme: str
    convention: Convention
    params: Params = field(default_factory=Params)
    fans: FanSpec = field(default_factory=FanSpec)
    zero_rows: tuple[int, ...] = ()
    dtype: DTypeName | None = None
    tied_to: str | None = None
    part: Part | None = None


@dataclass(frozen=True)
class Preset(Generic[A]):
    """A framework layer: `args` declares what it takes, `expand` names its tensors, `count` says
    how many `expand` returns (when it succeeds), in O(1), without expanding."""

    name: str
    summary: str
    args: type[A]
    expand: Callable[[str, A], list[Member]] = field(repr=False)
    count: Callable[[A], int] = field(repr=False)

    def arguments(self, given: Mapping[str, object]) -> A:
        """`given` checked against the declarations: unknown, missing, type and bounds."""
        return arguments.build(self.args, given, self.name)

    def members(self, name: str, given: Mapping[str, object]) -> list[Member]:
        return self.expand(name, self.arguments(given))


# --- small builders ---------------------------------------------------------------------------


def constant(name: str, shape: Shape, value: float, dtype: DTypeName | None = None) -> Member:
    """zeros, ones or constant(value), as torch's init.zeros_/ones_/constant_."""
    scheme = "zeros" if value == 0 else "ones" if value == 1 else "constant"
    params = Params(value=value) if scheme == "constant" else Params()
    return Member(name, shape, scheme, "torch", params, dtype=dtype)


def uniform(name: str, shape: Shape, bound: float, convention: Convention = "torch") -> Member:
    """U(-bound, bound)."""
    return Member(name, shape, "uniform", convention, Params(low=-bound, high=bound))


def zero_bias(name: str, size: int, use: bool) -> list[Member]:
    """`name.bias` zeros of `size` when `use`, else nothing (Keras, Flax, GPT-2 biases)."""
    return [constant(f"{name}.bias", (size,), 0.0)] if use else []


def torch_fan_in(shape: Shape) -> int:
    """torch's fan_in of a Linear/Conv weight: shape[1] times the receptive field."""
    return shape[1] * math.prod(shape[2:])


def torch_weight_and_bias(prefix: str, weight: Shape, bias: int | None) -> list[Member]:
    """torch Linear/Conv reset_parameters: kaiming_uniform_(W, a=√5); bias U(±1/√fan_in)."""
    out = [
        Member(f"{prefix}.weight", weight, "kaiming_uniform", "torch", Params(negative_slope=SQRT5))
    ]
    if bias is not None:
        fan_in = torch_fan_in(weight)
        out.append(uniform(f"{prefix}.bias", (bias,), 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0))
    return out


# --- checks only an expander can make ---------------------------------------------------------


def kernel(size: int | tuple[int, ...], dims: int) -> tuple[int, ...]:
    """A `dims`-d kernel: one int repeated, or exactly `dims` entries."""
    k = (size,) * dims if isinstance(size, int) else size
    if len(k) != dims:
        shown = size if isinstance(size, int) else list(size)
        raise ShapeError(f"kernel_size {shown} must have {dims} entries for a {dims}-d convolution")
    return k


def divisible(key: str, groups: int, **channels: int) -> None:
    """Each channel count a multiple of `groups` (argument `key`), as the frameworks require."""
    for name, value in channels.items():
        if value % groups:
            raise ShapeError(f"{name}={value} must be divisible by {key}={groups}")
