"""The vocabulary of schemes: closed sets of names, constants, and what a request says."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal, TypeAlias, get_args

from service.arguments import arg
from service.shapes import MAX_DIM, MAX_RANK
from service.shapes import Shape as Shape  # re-exported: the schemes speak of shapes
from service.windows import Window

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
    "sparse",
    "stft",
    "inverse_softplus_log_uniform",
    "log_arange",
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
Side = Literal["real", "imag"]  # Keras STFT: the cosine or the (negated) sine
Scaling = Literal["density", "spectrum", "none"]  # Keras STFT: √Σw², Σ|w|, none (Keras' None)
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
    """Scheme parameters as the client set them; None means "not given". Each field is the one
    declaration of its parameter: the API's models, the OpenAPI schema, the catalogue and
    `resolve`'s checks are all read from it (service.arguments)."""

    factor: float | None = arg("variance scale (Keras/JAX scale, TF1 factor)", None, gt=0.0)
    mode: Mode | None = arg("which fan divides the scale", None)
    distribution: Distribution | None = arg("shape of the distribution", None)
    gain: float | None = arg("multiplies the std (torch gain, JAX scale)", None, ge=0.0)
    nonlinearity: Nonlinearity | None = arg("torch calculate_gain table", None)
    negative_slope: float | None = arg("leaky_relu slope (torch kaiming `a`)", None)
    mean: float | None = arg("mean (location) of the normal", None)
    std: float | None = arg("standard deviation before any truncation", None, ge=0.0)
    low: float | None = arg("lower bound of the uniform", None)
    high: float | None = arg("upper bound of the uniform (JAX: scale)", None)
    a: float | None = arg("lower truncation bound (torch: absolute; jax: in σ)", None)
    b: float | None = arg("upper truncation bound (torch: absolute; jax: in σ)", None)
    value: float | None = arg("the constant", None)
    groups: int | None = arg("number of groups (torch dirac_)", None, ge=1, le=MAX_DIM)
    column_axis: int | None = arg(
        "the axis kept as the matrix's columns (JAX)", None, ge=-MAX_RANK, le=MAX_RANK - 1
    )
    sparsity: float | None = arg(
        "fraction of each column set to zero (torch sparse_)", None, ge=0.0, le=1.0
    )
    side: Side | None = arg("real (cosine) or imag (sine) part of the STFT (Keras)", None)
    window: Window | None = arg(
        "scipy.signal window of the STFT over its frame, computed portably; none: no window "
        "(Keras' None); scipy windows that take parameters, and tukey, parzen, bohman, "
        "barthann, exponential, taylor, lanczos, are not served",
        None,
    )
    scaling: Scaling | None = arg(
        "STFT window normalisation: density √Σw², spectrum Σ|w|, none (Keras' None)", None
    )
    periodic: bool | None = arg("periodic (DFT-even) window, scipy's fftbins (Keras)", None)
    floor: float | None = arg(
        "dt is raised to it before the inverse softplus (Mamba's time_step_floor)", None,
        ge=0.0, le=1e6,
    )  # fmt: skip

    def given(self) -> dict[str, ParamValue]:
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}


Axes: TypeAlias = tuple[int, ...]


@dataclass(frozen=True)
class FanSpec:
    """Explicit fans or axes; each None means "use the convention's rule"."""

    fan_in: float | None = arg("explicit fan-in, instead of the convention's rule", None, gt=0.0)
    fan_out: float | None = arg("explicit fan-out, instead of the convention's rule", None, gt=0.0)
    in_axes: Axes | None = arg(
        "input axes of the fan rule (jax in_axis, keras input_axes)", None, min_items=1,
        max_items=MAX_RANK,
    )  # fmt: skip
    out_axes: Axes | None = arg(
        "output axes of the fan rule (jax out_axis, keras output_axes)", None, min_items=1,
        max_items=MAX_RANK,
    )  # fmt: skip
    batch_axes: Axes | None = arg(
        "batch axes, left out of the fans (jax batch_axis)", None, min_items=1, max_items=MAX_RANK
    )
