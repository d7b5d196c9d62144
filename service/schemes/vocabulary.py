"""The vocabulary of schemes: closed sets of names, constants, and what a request says."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal, TypeAlias, get_args

Convention = Literal["keras", "torch", "jax", "tf1", "caffe"]
Mode = Literal["fan_in", "fan_out", "fan_avg", "fan_geo_avg"]
Distribution = Literal["truncated_normal", "untruncated_normal", "uniform", "normal"]
Kind = Literal[
    "normal",
    "truncated_normal",
    "uniform",
    "constant",
    "orthogonal",
    "identity",
    "dirac",
    "delta_orthogonal",
]
Nonlinearity = Literal[
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
]
Shape: TypeAlias = tuple[int, ...]
ParamValue: TypeAlias = float | int | str

CONVENTIONS: tuple[Convention, ...] = get_args(Convention)
MODES: tuple[Mode, ...] = get_args(Mode)
DISTRIBUTIONS: tuple[Distribution, ...] = get_args(Distribution)
NONLINEARITIES: tuple[Nonlinearity, ...] = get_args(Nonlinearity)

# std of N(0,1) truncated to (-2, 2); Keras, TF compat.v1 and JAX hard-code it
TRUNCATED_STD = 0.87962566103423978
TF1_TRUNCATED_FACTOR = 1.3  # tf.contrib's stand-in for 1/TRUNCATED_STD**2 = 1.29242
TORCH_LEAKY_RELU_SLOPE = 0.01  # calculate_gain('leaky_relu') with param=None


# --------------------------------------------------------------------------------------------
# What a request says (frozen values, built by the API edge)


@dataclass(frozen=True)
class Params:
    """Scheme parameters as the client set them; None means "not given"."""

    factor: float | None = None
    mode: Mode | None = None
    distribution: Distribution | None = None
    gain: float | None = None
    nonlinearity: Nonlinearity | None = None
    negative_slope: float | None = None
    mean: float | None = None
    std: float | None = None
    low: float | None = None
    high: float | None = None
    a: float | None = None
    b: float | None = None
    value: float | None = None
    groups: int | None = None
    column_axis: int | None = None

    def given(self) -> dict[str, ParamValue]:
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}


@dataclass(frozen=True)
class FanSpec:
    """Explicit fans or axes; each None means "use the convention's rule"."""

    fan_in: float | None = None
    fan_out: float | None = None
    in_axes: tuple[int, ...] | None = None
    out_axes: tuple[int, ...] | None = None
    batch_axes: tuple[int, ...] | None = None
