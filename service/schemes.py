"""Initialization schemes: fan rules, gains and the numbers that define a tensor's values.

Pure math on the standard library. Every framework's rule is reproduced as its source code
computes it, in the same order of floating-point operations, so the numbers agree with the
framework's to the last bit where the framework works in float64 (Keras, TF1, torch compute
their scale in Python floats; JAX casts the variance to the tensor dtype, Caffe computes in
the blob's dtype: those two agree to float32 rounding, see docs/schemes.md).

Sources (see `shared/reference/initializers.md`): torch/nn/init.py (torch 2.13),
keras/src/initializers/random_initializers.py (Keras 3.15), jax/_src/nn/initializers.py
(JAX 0.10), tensorflow/contrib/layers/python/layers/initializers.py (TF1),
caffe include/caffe/filler.hpp.

A request names a scheme and a convention; `resolve` turns it into a `SchemePlan`: the kind
of distribution, its parameters, the fans and the effective standard deviation. Named
variance-scaling schemes are rows that specialise `variance_scaling(scale, mode, distribution)`
(as jax.nn.initializers does); each convention says what the fans are and what "normal" means.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Literal, TypeAlias, get_args

from service.errors import SchemeError, ShapeError, one_of

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


# --------------------------------------------------------------------------------------------
# What a scheme resolves to


@dataclass(frozen=True)
class Law:
    """The distribution of every element (or the structure, for deterministic/QR kinds).

    normal / truncated_normal: loc + stddev·z, z ~ N(0,1) (restricted to [alpha, beta]).
    uniform: U(low, high). constant: loc. Structured kinds use `SchemePlan.gain`.
    """

    kind: Kind
    mean: float
    effective_std: float
    loc: float = 0.0
    stddev: float | None = None
    low: float | None = None
    high: float | None = None
    alpha: float | None = None  # truncation bounds in units of stddev around loc
    beta: float | None = None

    @property
    def limit(self) -> float | None:
        """Half-width of a support symmetric about zero (uniform bound, truncation bound)."""
        if self.low is not None and self.high is not None and self.low == -self.high:
            return self.high
        return None


@dataclass(frozen=True)
class SchemePlan:
    """Everything a scheme decides about a tensor before any value is drawn."""

    scheme: str
    convention: Convention
    shape: Shape
    params: Mapping[str, ParamValue]  # resolved: defaults filled, aliases canonical
    law: Law
    rule: str  # the framework call this reproduces
    formula: str  # the formula with this request's numbers substituted
    fan_in: float | None = None
    fan_out: float | None = None
    mode: Mode | None = None
    n: float | None = None  # the fan the scale is divided by, after any clamp
    scale: float | None = None  # variance scale (gain²)
    gain: float | None = None
    kept_axis: int | None = None  # orthogonal: the axis that becomes the matrix's columns
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------
# Gains (torch.nn.init.calculate_gain)


def calculate_gain(nonlinearity: Nonlinearity, param: float | None = None) -> float:
    """Recommended gain for a nonlinearity, as torch.nn.init.calculate_gain computes it.

    linear, conv*, conv_transpose*, sigmoid: 1; tanh: 5/3; relu: √2;
    leaky_relu: √(2/(1 + slope²)), slope = 0.01 when `param` is None; selu: 3/4
    (Klambauer et al. 2017 want 'linear' for self-normalizing networks; torch gives 3/4).
    """
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = TORCH_LEAKY_RELU_SLOPE if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    if nonlinearity in NONLINEARITIES:
        return 1.0
    raise SchemeError(
        f"unsupported nonlinearity {nonlinearity!r}; expected one of {one_of(NONLINEARITIES)}"
    )


# --------------------------------------------------------------------------------------------
# Fan rules, one per convention


def _torch_fans(shape: Shape) -> tuple[float, float]:
    """torch `_calculate_fan_in_and_fan_out`: layout (out, in, *k); rank < 2 raises."""
    if len(shape) < 2:
        raise ShapeError(
            f"convention torch cannot compute fans of a rank-{len(shape)} shape {list(shape)}: "
            "torch.nn.init raises 'Fan in and fan out can not be computed for tensor with fewer "
            "than 2 dimensions'; give fan_in and fan_out explicitly or use a rank >= 2 shape"
        )
    receptive = math.prod(shape[2:])
    return float(shape[1] * receptive), float(shape[0] * receptive)


def _keras_fans(shape: Shape) -> tuple[float, float]:
    """Keras/TF `compute_fans`: (*k, in, out); rank 0 -> (1, 1), rank 1 -> (n, n)."""
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    receptive = math.prod(shape[:-2])
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


def _caffe_fans(shape: Shape) -> tuple[float, float]:
    """Caffe filler.hpp: fan_in = count/shape(0), fan_out = count/shape(1) (count if rank 1)."""
    if len(shape) == 0:
        raise ShapeError(
            "convention caffe cannot compute fans of a rank-0 shape []: a Caffe blob filler "
            "reads shape(0); use a rank >= 1 shape or give fan_in and fan_out"
        )
    count = math.prod(shape)
    if shape[0] == 0 or (len(shape) > 1 and shape[1] == 0):
        raise ShapeError(
            f"convention caffe divides the element count by shape(0) and shape(1); "
            f"shape {list(shape)} has a zero there"
        )
    fan_out = count // shape[1] if len(shape) > 1 else count
    return float(count // shape[0]), float(fan_out)


def _axes(shape: Shape, axes: tuple[int, ...], what: str) -> tuple[int, ...]:
    rank = len(shape)
    normalized = []
    for axis in axes:
        if not -rank <= axis < rank:
            raise ShapeError(
                f"{what} {list(axes)} names axis {axis}, out of range for the rank-{rank} shape "
                f"{list(shape)}; allowed axes are {-rank} … {rank - 1}"
            )
        normalized.append(axis % rank)
    if len(set(normalized)) != len(normalized):
        raise ShapeError(f"{what} {list(axes)} names the same axis twice")
    return tuple(normalized)


def _jax_fans(shape: Shape, spec: FanSpec) -> tuple[float, float]:
    """jax `_compute_fans(shape, in_axis=-2, out_axis=-1, batch_axis=())`.

    receptive = prod(shape)/in/out/batch (floats); fan_in = in·receptive, fan_out = out·receptive.
    Rank <= 1 raises unless in_axes is given.
    """
    if spec.in_axes is None and len(shape) <= 1:
        raise ShapeError(
            f"convention jax cannot compute fans of a rank-{len(shape)} shape {list(shape)} with "
            "the default in_axis=-2 (jax raises ValueError); give in_axes (and out_axes), "
            "or fan_in and fan_out"
        )
    in_axes = _axes(shape, spec.in_axes or (-2,), "in_axes")
    out_axes = _axes(shape, spec.out_axes or (-1,), "out_axes")
    batch_axes = _axes(shape, spec.batch_axes or (), "batch_axes")
    in_size = math.prod(shape[i] for i in in_axes)
    out_size = math.prod(shape[i] for i in out_axes)
    batch_size = math.prod(shape[i] for i in batch_axes)
    if 0 in (in_size, out_size, batch_size):
        raise ShapeError(
            f"convention jax divides by the sizes of the in, out and batch axes; shape "
            f"{list(shape)} has a zero there (jax raises ZeroDivisionError)"
        )
    receptive = math.prod(shape) / in_size / out_size / batch_size
    return in_size * receptive, out_size * receptive


def _keras_axes_fans(shape: Shape, spec: FanSpec) -> tuple[float, float]:
    """Keras >= 3.15 with both input_axes and output_axes: plain products, no receptive field."""
    if spec.in_axes is None or spec.out_axes is None:
        raise ShapeError(
            "convention keras uses explicit axes only when both in_axes and out_axes are given "
            "(Keras input_axes/output_axes); received only one of them"
        )
    in_axes = _axes(shape, spec.in_axes, "in_axes")
    out_axes = _axes(shape, spec.out_axes, "out_axes")
    return float(math.prod(shape[i] for i in in_axes)), float(math.prod(shape[i] for i in out_axes))


# --------------------------------------------------------------------------------------------
# Conventions


@dataclass(frozen=True)
class ConventionRule:
    """How one framework computes fans and what its variance-scaling distributions mean."""

    name: Convention
    framework: str
    layout: str
    fan_rule: str
    clamp: bool  # Keras divides by max(1, n)
    modes: tuple[Mode, ...]
    distributions: tuple[Distribution, ...]  # accepted by variance_scaling, canonical form
    normal_means: Distribution  # what the word "normal" (and a preset's normal) means
    axes: tuple[str, ...]  # which of in_axes/out_axes/batch_axes the convention accepts

    def fans(self, shape: Shape, spec: FanSpec) -> tuple[float, float]:
        given = [n for n in ("in_axes", "out_axes", "batch_axes") if getattr(spec, n) is not None]
        refused = [n for n in given if n not in self.axes]
        if refused:
            allowed = one_of(self.axes) if self.axes else "none"
            raise ShapeError(
                f"convention {self.name} does not take {one_of(refused)} (its axes: {allowed}); "
                "give fan_in and fan_out explicitly instead"
            )
        if spec.fan_in is not None and spec.fan_out is not None:
            return spec.fan_in, spec.fan_out
        if self.name == "jax":
            fan_in, fan_out = _jax_fans(shape, spec)
        elif self.name == "keras" and given:
            fan_in, fan_out = _keras_axes_fans(shape, spec)
        elif self.name == "torch":
            fan_in, fan_out = _torch_fans(shape)
        elif self.name == "caffe":
            fan_in, fan_out = _caffe_fans(shape)
        else:
            fan_in, fan_out = _keras_fans(shape)
        return (
            fan_in if spec.fan_in is None else spec.fan_in,
            fan_out if spec.fan_out is None else spec.fan_out,
        )


_ALL_DISTRIBUTIONS: tuple[Distribution, ...] = ("truncated_normal", "untruncated_normal", "uniform")
_PLAIN: tuple[Distribution, ...] = ("untruncated_normal", "uniform")

RULES: Mapping[Convention, ConventionRule] = {
    "keras": ConventionRule(
        "keras",
        "Keras 3 / tf.keras / tf.compat.v1 (keras.initializers)",
        "(*kernel, in, out)",
        "rank 0: (1, 1); rank 1: (n, n); else fan_in = shape[-2]·R, fan_out = shape[-1]·R, "
        "R = prod(shape[:-2]); with in_axes and out_axes: plain products; scale / max(1, n)",
        clamp=True,
        modes=("fan_in", "fan_out", "fan_avg"),
        distributions=_ALL_DISTRIBUTIONS,
        normal_means="truncated_normal",
        axes=("in_axes", "out_axes"),
    ),
    "torch": ConventionRule(
        "torch",
        "PyTorch (torch.nn.init)",
        "(out, in/groups, *kernel)",
        "rank < 2: error; fan_in = shape[1]·R, fan_out = shape[0]·R, R = prod(shape[2:])",
        clamp=False,
        modes=("fan_in", "fan_out", "fan_avg"),
        distributions=_PLAIN,
        normal_means="untruncated_normal",
        axes=(),
    ),
    "jax": ConventionRule(
        "jax",
        "JAX / Flax (jax.nn.initializers)",
        "(…, in, out) with in_axis=-2, out_axis=-1, batch_axis=()",
        "R = prod(shape)/in/out/batch; fan_in = in·R, fan_out = out·R; "
        "rank <= 1 needs in_axes; fans are floats",
        clamp=False,
        modes=MODES,
        distributions=_ALL_DISTRIBUTIONS,
        normal_means="untruncated_normal",
        axes=("in_axes", "out_axes", "batch_axes"),
    ),
    "tf1": ConventionRule(
        "tf1",
        "TensorFlow 1 contrib (tf.contrib.layers.variance_scaling_initializer)",
        "(*kernel, in, out)",
        "rank 0: (1, 1); rank 1: (n, n); else fan_in = shape[-2]·R, fan_out = shape[-1]·R; "
        "no clamp; truncated σ = √(1.3·factor/n)",
        clamp=False,
        modes=("fan_in", "fan_out", "fan_avg"),
        distributions=("truncated_normal", "uniform"),
        normal_means="truncated_normal",
        axes=(),
    ),
    "caffe": ConventionRule(
        "caffe",
        "Caffe (include/caffe/filler.hpp)",
        "(out, in, h, w)",
        "fan_in = count/shape(0), fan_out = count/shape(1) (count for rank 1); rank 0: error",
        clamp=False,
        modes=("fan_in", "fan_out", "fan_avg"),
        distributions=_PLAIN,
        normal_means="untruncated_normal",
        axes=(),
    ),
}


def rule(convention: str) -> ConventionRule:
    try:
        return RULES[convention]  # type: ignore[index]
    except KeyError:
        raise SchemeError(
            f"unknown convention {convention!r}; expected one of {one_of(CONVENTIONS)}"
        ) from None


# --------------------------------------------------------------------------------------------
# Distributions: moments and constructors


def _pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def normal_cdf(x: float) -> float:
    """Φ(x), accurate in both tails (erfc, not 1 + erf)."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def truncated_moments(alpha: float, beta: float) -> tuple[float, float]:
    """Mean and std of N(0,1) restricted to [alpha, beta] (closed form).

    With Z = Φ(β) − Φ(α): mean = (φ(α) − φ(β))/Z,
    var = 1 + (αφ(α) − βφ(β))/Z − mean². For (−2, 2) the std is TRUNCATED_STD.
    """
    if alpha > 0.0:  # mirror into the lower tail, where Φ keeps its precision
        mean, std = truncated_moments(-beta, -alpha)
        return -mean, std
    mass = normal_cdf(beta) - normal_cdf(alpha)
    if mass <= 0.0:
        raise SchemeError(
            f"the truncation interval [{alpha:g}σ, {beta:g}σ] holds no probability mass; "
            "widen it or move it towards the mean"
        )
    mean = (_pdf(alpha) - _pdf(beta)) / mass
    var = 1.0 + (alpha * _pdf(alpha) - beta * _pdf(beta)) / mass - mean * mean
    return mean, math.sqrt(max(var, 0.0))


def normal_law(loc: float, stddev: float) -> Law:
    return Law("normal", mean=loc, effective_std=stddev, loc=loc, stddev=stddev)


def truncated_law(loc: float, stddev: float, alpha: float, beta: float) -> Law:
    mean, std = truncated_moments(alpha, beta)
    return Law(
        "truncated_normal",
        mean=loc + stddev * mean,
        effective_std=stddev * std,
        loc=loc,
        stddev=stddev,
        low=loc + alpha * stddev,
        high=loc + beta * stddev,
        alpha=alpha,
        beta=beta,
    )


def uniform_law(low: float, high: float) -> Law:
    """U(low, high): mean (low+high)/2, std (high−low)/√12 (= limit/√3 when symmetric)."""
    return Law(
        "uniform",
        mean=(low + high) / 2.0,
        effective_std=(high - low) / math.sqrt(12.0),
        low=low,
        high=high,
    )


def constant_law(value: float) -> Law:
    return Law("constant", mean=value, effective_std=0.0, loc=value, low=value, high=value)


def sparse_law(kind: Kind, ones: int, count: int, gain: float) -> Law:
    """Deterministic tensor holding `gain` in `ones` of its `count` places, zero elsewhere."""
    if count == 0:
        return Law(kind, mean=0.0, effective_std=0.0)
    mean = gain * ones / count
    return Law(
        kind, mean=mean, effective_std=math.sqrt(max(gain * gain * ones / count - mean**2, 0.0))
    )


# --------------------------------------------------------------------------------------------
# Builders: one per family of schemes


@dataclass(frozen=True)
class _Ctx:
    scheme: str
    rule: ConventionRule
    shape: Shape
    fanspec: FanSpec
    params: Mapping[str, ParamValue]

    def fans(self) -> tuple[float, float]:
        return self.rule.fans(self.shape, self.fanspec)

    def num(self, name: str) -> float:
        return float(self.params[name])

    def word(self, name: str) -> str:
        return str(self.params[name])

    def plan(self, law: Law, call: str, formula: str, **extra: object) -> SchemePlan:
        return SchemePlan(
            scheme=self.scheme,
            convention=self.rule.name,
            shape=self.shape,
            params=dict(self.params),
            law=law,
            rule=call,
            formula=formula,
            **extra,  # type: ignore[arg-type]
        )


def _g(x: float) -> str:
    return f"{x:.10g}"


def _mode_fan(mode: Mode, fan_in: float, fan_out: float) -> float:
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    if mode == "fan_avg":
        return (fan_in + fan_out) / 2.0
    return math.sqrt(fan_in * fan_out)


def _positive_fan(ctx: _Ctx, mode: str, fan: float) -> None:
    if fan <= 0:
        raise ShapeError(
            f"{mode} is {_g(fan)} for shape {list(ctx.shape)} under convention {ctx.rule.name}, "
            "so the scale divided by it is undefined; use a shape without zero dimensions "
            "there, give fan_in/fan_out, or use convention keras (which clamps to max(1, n))"
        )


def variance_scaling(
    ctx: _Ctx, scale: float, mode: Mode, distribution: Distribution, call: str
) -> SchemePlan:
    """Variance scaling (Keras `VarianceScaling`, JAX `variance_scaling`, TF1 contrib).

    n = fan_in | fan_out | (fan_in + fan_out)/2 | √(fan_in·fan_out), clamped to max(1, n)
    under keras. Then, with s = scale:
      uniform: U(−L, L), L = √(3·s/n);   untruncated_normal: N(0, s/n);
      truncated_normal: σ = √(s/n)/0.87962566103423978 cut at ±2σ (Keras, JAX), or
      σ = √(1.3·s/n) cut at ±2σ (TF1 contrib), whose effective std is √(s/n) (resp. 1.0029×).
    """
    r = ctx.rule
    if mode not in r.modes:
        raise SchemeError(
            f"mode {mode!r} is not available under convention {r.name}; "
            f"expected one of {one_of(r.modes)}"
        )
    notes: list[str] = []
    dist = distribution
    if dist == "normal":
        dist = r.normal_means
        notes.append(f"'normal' means {dist} under convention {r.name}")
    if dist not in r.distributions:
        raise SchemeError(
            f"distribution {distribution!r} is not available for variance scaling under "
            f"convention {r.name}; expected one of {one_of((*r.distributions, 'normal'))}"
        )
    fan_in, fan_out = ctx.fans()
    fan = _mode_fan(mode, fan_in, fan_out)
    n = max(1.0, fan) if r.clamp else fan
    _positive_fan(ctx, mode, n)
    if n != fan:
        notes.append(f"{mode} = {_g(fan)} clamped to max(1, {mode}) = {_g(n)} (Keras)")
    den = f"max(1, {_g(fan)})" if r.clamp else _g(n)
    numbers = {"fan_in": fan_in, "fan_out": fan_out, "mode": mode, "n": n, "scale": scale}
    numbers["gain"] = math.sqrt(scale)
    if dist == "uniform":
        if r.name in ("tf1", "caffe"):  # their sources compute sqrt(3 * factor / n)
            limit = math.sqrt(3.0 * scale / n)
        else:
            limit = math.sqrt(3.0 * (scale / n))
        formula = f"L = √(3·{_g(scale)}/{den}) = {_g(limit)}; U(−L, L)"
        law = uniform_law(-limit, limit)
    elif dist == "untruncated_normal":
        sigma = math.sqrt(scale / n)
        formula = f"σ = √({_g(scale)}/{den}) = {_g(sigma)}; N(0, σ²)"
        law = normal_law(0.0, sigma)
    elif r.name == "tf1":
        sigma = math.sqrt(TF1_TRUNCATED_FACTOR * scale / n)
        formula = f"σ = √(1.3·{_g(scale)}/{den}) = {_g(sigma)}; N(0, σ²) cut at ±2σ"
        law = truncated_law(0.0, sigma, -2.0, 2.0)
        notes.append("TF1 contrib's 1.3 approximates 1/0.8796²: effective std is 1.0029×√(s/n)")
    else:
        sigma = math.sqrt(scale / n) / TRUNCATED_STD
        formula = (
            f"σ = √({_g(scale)}/{den})/0.87962566103423978 = {_g(sigma)}; "
            "N(0, σ²) cut at ±2σ, effective std √(scale/n)"
        )
        law = truncated_law(0.0, sigma, -2.0, 2.0)
    return ctx.plan(law, call, formula, notes=tuple(notes), **numbers)


def _vs_scheme(ctx: _Ctx) -> SchemePlan:
    factor, mode, dist = ctx.num("factor"), ctx.word("mode"), ctx.word("distribution")
    tf1_mode = {"fan_in": "FAN_IN", "fan_out": "FAN_OUT", "fan_avg": "FAN_AVG"}.get(mode, mode)
    call = {
        "keras": f"keras.initializers.VarianceScaling({_g(factor)}, {mode!r}, {dist!r})",
        "jax": f"jax.nn.initializers.variance_scaling({_g(factor)}, {mode!r}, {dist!r})",
        "tf1": f"tf.contrib.layers.variance_scaling_initializer({_g(factor)}, {tf1_mode!r}, "
        f"uniform={dist == 'uniform'})",
        "torch": "variance scaling with torch's fan rule (torch.nn.init has no such function)",
        "caffe": "variance scaling with Caffe's fan rule (Caffe xavier/msra generalised)",
    }[ctx.rule.name]
    return variance_scaling(ctx, factor, mode, dist, call)  # type: ignore[arg-type]


def _preset(
    scale: float, mode: Mode, normal: bool, calls: Mapping[str, str]
) -> Callable[[_Ctx], SchemePlan]:
    def build(ctx: _Ctx) -> SchemePlan:
        if ctx.rule.name == "torch":
            return _torch_xavier(ctx, normal) if mode == "fan_avg" else _torch_kaiming(ctx, normal)
        if ctx.rule.name == "caffe":
            dist: Distribution = "untruncated_normal" if normal else "uniform"
        else:
            dist = "truncated_normal" if normal else "uniform"
        call = calls[ctx.rule.name] or f"variance scaling with {ctx.rule.name}'s fan rule"
        return variance_scaling(ctx, scale, mode, dist, call)

    return build


def _torch_xavier(ctx: _Ctx, normal: bool) -> SchemePlan:
    """torch `xavier_*_(gain)`: std = gain·√(2/(fan_in + fan_out)); uniform bound √3·std."""
    gain = ctx.num("gain")
    fan_in, fan_out = ctx.fans()
    _positive_fan(ctx, "fan_in + fan_out", fan_in + fan_out)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    formula = f"std = {_g(gain)}·√(2/({_g(fan_in)} + {_g(fan_out)})) = {_g(std)}"
    if normal:
        law, call = normal_law(0.0, std), f"torch.nn.init.xavier_normal_(gain={_g(gain)})"
        formula += "; N(0, std²)"
    else:
        bound = math.sqrt(3.0) * std
        law, call = uniform_law(-bound, bound), f"torch.nn.init.xavier_uniform_(gain={_g(gain)})"
        formula += f"; bound = √3·std = {_g(bound)}; U(−bound, bound)"
    n = (fan_in + fan_out) / 2.0
    return ctx.plan(
        law, call, formula, fan_in=fan_in, fan_out=fan_out, mode="fan_avg", n=n,
        scale=gain * gain, gain=gain,
    )  # fmt: skip


def _torch_kaiming(ctx: _Ctx, normal: bool) -> SchemePlan:
    """torch `kaiming_*_(a, mode, nonlinearity)`: std = calculate_gain(nonlinearity, a)/√fan."""
    mode = ctx.word("mode")
    if mode not in ("fan_in", "fan_out"):
        raise SchemeError(
            f"mode {mode!r} is not supported by torch kaiming_*; expected one of fan_in, fan_out"
        )
    slope = ctx.num("negative_slope")
    nonlinearity: Nonlinearity = ctx.params["nonlinearity"]  # type: ignore[assignment]
    fan_in, fan_out = ctx.fans()
    fan = fan_in if mode == "fan_in" else fan_out
    _positive_fan(ctx, mode, fan)
    gain = calculate_gain(nonlinearity, slope)
    std = gain / math.sqrt(fan)
    formula = (
        f"gain = calculate_gain({nonlinearity!r}, {_g(slope)}) = {_g(gain)}; "
        f"std = gain/√{_g(fan)} = {_g(std)}"
    )
    name = "kaiming_normal_" if normal else "kaiming_uniform_"
    call = f"torch.nn.init.{name}(a={_g(slope)}, mode={mode!r}, nonlinearity={nonlinearity!r})"
    if normal:
        law = normal_law(0.0, std)
        formula += "; N(0, std²)"
    else:
        bound = math.sqrt(3.0) * std
        law = uniform_law(-bound, bound)
        formula += f"; bound = √3·std = {_g(bound)}; U(−bound, bound)"
    return ctx.plan(
        law, call, formula, fan_in=fan_in, fan_out=fan_out, mode=mode, n=fan,
        scale=gain * gain, gain=gain,
    )  # fmt: skip


def _caffe_filler(scale: float, normal: bool, filler: str) -> Callable[[_Ctx], SchemePlan]:
    def build(ctx: _Ctx) -> SchemePlan:
        dist: Distribution = "untruncated_normal" if normal else "uniform"
        mode: Mode = ctx.params["mode"]  # type: ignore[assignment]
        norm = {"fan_in": "FAN_IN", "fan_out": "FAN_OUT", "fan_avg": "AVERAGE"}.get(mode, mode)
        call = f"Caffe {filler} filler (variance_norm={norm})"
        return variance_scaling(ctx, scale, mode, dist, call)

    return build


def _normal(ctx: _Ctx) -> SchemePlan:
    loc, std = float(ctx.params.get("mean", 0.0)), ctx.num("std")
    call = {
        "torch": "torch.nn.init.normal_(mean, std)",
        "keras": "keras.initializers.RandomNormal(mean, stddev)",
        "jax": "jax.nn.initializers.normal(stddev)",
        "tf1": "tf.compat.v1.random_normal_initializer(mean, stddev)",
        "caffe": "Caffe gaussian filler (mean, std)",
    }[ctx.rule.name]
    return ctx.plan(normal_law(loc, std), call, f"N({_g(loc)}, {_g(std)}²)")


def _uniform(ctx: _Ctx) -> SchemePlan:
    low, high = float(ctx.params.get("low", 0.0)), ctx.num("high")
    if not low <= high:
        raise SchemeError(f"uniform needs low <= high; received low={low}, high={high}")
    call = {
        "torch": "torch.nn.init.uniform_(a=low, b=high)",
        "keras": "keras.initializers.RandomUniform(minval, maxval)",
        "jax": "jax.nn.initializers.uniform(scale=high): U[0, scale)",
        "tf1": "tf.compat.v1.random_uniform_initializer(minval, maxval)",
        "caffe": "Caffe uniform filler (min, max)",
    }[ctx.rule.name]
    return ctx.plan(uniform_law(low, high), call, f"U({_g(low)}, {_g(high)})")


def _truncated_normal(ctx: _Ctx) -> SchemePlan:
    loc, std = float(ctx.params.get("mean", 0.0)), ctx.num("std")
    if std <= 0:
        raise SchemeError(f"truncated_normal needs std > 0; received std={std}")
    conv = ctx.rule.name
    if conv == "torch":  # trunc_normal_: a and b are absolute values
        a, b = ctx.num("a"), ctx.num("b")
        alpha, beta = (a - loc) / std, (b - loc) / std
        call = "torch.nn.init.trunc_normal_(mean, std, a, b): a, b absolute"
    elif conv == "jax":  # truncated_normal(stddev, lower, upper): bounds in units of stddev
        alpha, beta = ctx.num("a"), ctx.num("b")
        call = "jax.nn.initializers.truncated_normal(stddev, lower=a, upper=b): a, b in σ"
    else:
        alpha, beta = -2.0, 2.0
        call = {
            "keras": "keras.initializers.TruncatedNormal(mean, stddev): cut at mean ± 2σ",
            "tf1": "tf.compat.v1.truncated_normal_initializer(mean, stddev): cut at mean ± 2σ",
        }[conv]
    if not alpha < beta:
        raise SchemeError(f"truncated_normal needs a < b; received a={alpha}, b={beta} (in σ)")
    law = truncated_law(loc, std, alpha, beta)
    formula = (
        f"N({_g(loc)}, {_g(std)}²) restricted to [{_g(law.low or 0.0)}, {_g(law.high or 0.0)}]; "
        f"effective std {_g(law.effective_std)} (no variance correction)"
    )
    return ctx.plan(law, call, formula)


def _constant(value: float | None) -> Callable[[_Ctx], SchemePlan]:
    def build(ctx: _Ctx) -> SchemePlan:
        v = ctx.num("value") if value is None else value
        return ctx.plan(constant_law(v), f"{ctx.scheme}: every element {_g(v)}", f"w = {_g(v)}")

    return build


def _need_rank(ctx: _Ctx, ranks: range, what: str) -> None:
    if len(ctx.shape) not in ranks:
        allowed = f"{ranks.start}" if len(ranks) == 1 else f"{ranks.start} … {ranks.stop - 1}"
        raise ShapeError(
            f"{ctx.scheme} needs a rank {allowed} shape ({what}); received rank "
            f"{len(ctx.shape)} shape {list(ctx.shape)}"
        )


def _orthogonal(ctx: _Ctx) -> SchemePlan:
    """Orthogonal (Saxe et al. 2014): QR of a Gaussian matrix with the sign fix, times gain.

    The tensor is viewed as a matrix whose columns run along the kept axis: torch keeps the
    first axis (shape[0], rest); keras and tf1 keep the last; jax keeps `column_axis`.
    Every element has mean 0 and rms gain/√max(rows, cols).
    """
    _need_rank(ctx, range(2, 9), "torch, keras and jax refuse rank < 2")
    gain, rank = ctx.num("gain"), len(ctx.shape)
    if ctx.rule.name == "torch":
        kept = 0
    elif ctx.rule.name == "jax":
        kept = _axes(ctx.shape, (int(ctx.params["column_axis"]),), "column_axis")[0]
    else:
        kept = rank - 1
    numel = math.prod(ctx.shape)
    cols = ctx.shape[kept]
    rows = numel // cols if cols else 0
    rms = gain / math.sqrt(max(rows, cols)) if numel else 0.0
    law = Law("orthogonal", mean=0.0, effective_std=rms)
    call = {
        "torch": "torch.nn.init.orthogonal_(gain): matrix (shape[0], numel/shape[0])",
        "keras": "keras.initializers.Orthogonal(gain): matrix (prod(shape[:-1]), shape[-1])",
        "tf1": "tf.compat.v1.orthogonal_initializer(gain): matrix (prod(shape[:-1]), shape[-1])",
        "jax": "jax.nn.initializers.orthogonal(scale=gain, column_axis)",
    }[ctx.rule.name]
    formula = f"Q of QR(N(0,1)^({max(rows, cols)}×{min(rows, cols)})) · sign(diag R) · {_g(gain)}"
    notes = ("reproducible to rounding only: QR runs in LAPACK (weak ETag)",)
    return ctx.plan(law, call, formula, gain=gain, kept_axis=kept, notes=notes)


def _identity(ctx: _Ctx) -> SchemePlan:
    _need_rank(ctx, range(2, 3), "an identity matrix")
    rows, cols = ctx.shape
    gain = float(ctx.params.get("gain", 1.0))
    law = sparse_law("identity", min(rows, cols), rows * cols, gain)
    call = {
        "torch": "torch.nn.init.eye_()",
        "keras": "keras.initializers.Identity(gain)",
        "tf1": "tf.compat.v1.initializers.identity(gain)",
    }[ctx.rule.name]
    return ctx.plan(law, call, f"{_g(gain)}·eye({rows}, {cols})", gain=gain)


def _dirac(ctx: _Ctx) -> SchemePlan:
    """torch `dirac_(groups)`: 1 at [g·out/groups + d, d, centre…] for d < min(out/groups, in)."""
    _need_rank(ctx, range(3, 6), "a 1-3 d convolution kernel (out, in, *k)")
    groups = int(ctx.params["groups"])
    out = ctx.shape[0]
    if out % groups:
        raise ShapeError(f"dirac needs shape[0] = {out} divisible by groups = {groups}")
    ones = groups * min(out // groups, ctx.shape[1])
    law = sparse_law("dirac", ones, math.prod(ctx.shape), 1.0)
    return ctx.plan(law, "torch.nn.init.dirac_(groups)", "identity on the centre tap", gain=1.0)


def _delta_orthogonal(ctx: _Ctx) -> SchemePlan:
    """Delta-orthogonal (Xiao et al. 2018): zero kernel with an orthogonal centre tap.

    Layout (*k, in, out), in <= out; the (in, out) block at [(k−1)//2, …] is orthogonal·gain.
    """
    _need_rank(ctx, range(3, 6), "a 1-3 d convolution kernel (*k, in, out)")
    cin, cout = ctx.shape[-2], ctx.shape[-1]
    if cin > cout:
        raise ShapeError(
            f"delta_orthogonal needs in <= out (shape[-2] <= shape[-1]); received {cin} > {cout}"
        )
    gain = ctx.num("gain")
    numel = math.prod(ctx.shape)
    rms = gain * math.sqrt(cin / numel) if numel else 0.0
    call = {
        "jax": "jax.nn.initializers.delta_orthogonal(scale=gain)",
        "tf1": "tf.compat.v1.initializers.convolution_delta_orthogonal(gain)",
    }[ctx.rule.name]
    notes = ("reproducible to rounding only: QR runs in LAPACK (weak ETag)",)
    law = Law("delta_orthogonal", mean=0.0, effective_std=rms)
    formula = f"centre tap = orthogonal({cin}×{cout})·{_g(gain)}, zeros elsewhere"
    return ctx.plan(law, call, formula, gain=gain, kept_axis=len(ctx.shape) - 1, notes=notes)


# --------------------------------------------------------------------------------------------
# The catalogue: one row per scheme, with its parameters and defaults per convention

REQUIRED = None  # a parameter without a default must be given


@dataclass(frozen=True)
class ParamInfo:
    type: Literal["number", "integer", "string"]
    description: str
    minimum: float | None = None
    exclusive_minimum: float | None = None
    choices: tuple[str, ...] = ()


PARAMS: Mapping[str, ParamInfo] = {
    "factor": ParamInfo("number", "variance scale (Keras/JAX scale, TF1 factor)", None, 0.0),
    "mode": ParamInfo("string", "which fan divides the scale", choices=MODES),
    "distribution": ParamInfo("string", "shape of the distribution", choices=DISTRIBUTIONS),
    "gain": ParamInfo("number", "multiplies the std (torch gain, JAX scale)", 0.0),
    "nonlinearity": ParamInfo("string", "torch calculate_gain table", choices=NONLINEARITIES),
    "negative_slope": ParamInfo("number", "leaky_relu slope (torch kaiming `a`)"),
    "mean": ParamInfo("number", "mean (location) of the normal"),
    "std": ParamInfo("number", "standard deviation before any truncation", 0.0),
    "low": ParamInfo("number", "lower bound of the uniform"),
    "high": ParamInfo("number", "upper bound of the uniform (JAX: scale)"),
    "a": ParamInfo("number", "lower truncation bound (torch: absolute; jax: in σ)"),
    "b": ParamInfo("number", "upper truncation bound (torch: absolute; jax: in σ)"),
    "value": ParamInfo("number", "the constant"),
    "groups": ParamInfo("integer", "number of groups (torch dirac_)", 1),
    "column_axis": ParamInfo("integer", "the axis kept as the matrix's columns (JAX)"),
}

Defaults = Mapping[str, ParamValue | None]


@dataclass(frozen=True)
class Scheme:
    """One row of the catalogue: a docstring-grade summary, its builder, its parameters."""

    name: str
    summary: str
    formula: str
    source: str
    build: Callable[[_Ctx], SchemePlan] = field(repr=False)
    params: Mapping[Convention, Defaults]  # conventions that define the scheme


def _every(defaults: Defaults, *, torch: Defaults | None = None) -> dict[Convention, Defaults]:
    rows: dict[Convention, Defaults] = dict.fromkeys(CONVENTIONS, defaults)
    if torch is not None:
        rows["torch"] = torch
    return rows


_KAIMING: Defaults = {"negative_slope": 0.0, "mode": "fan_in", "nonlinearity": "leaky_relu"}
_VS: Defaults = {"factor": 1.0, "mode": "fan_in", "distribution": "truncated_normal"}
_PAPERS = {
    "glorot": "Glorot & Bengio 2010, Understanding the difficulty of training deep networks",
    "he": "He et al. 2015, Delving Deep into Rectifiers",
    "lecun": "LeCun et al. 1998, Efficient BackProp; Klambauer et al. 2017 (SELU)",
}


# name, scale, mode, normal?, torch parameters, Keras class name
_PRESET_ROWS: tuple[tuple[str, float, Mode, bool, Defaults, str], ...] = (
    ("glorot_uniform", 1.0, "fan_avg", False, {"gain": 1.0}, "GlorotUniform"),
    ("glorot_normal", 1.0, "fan_avg", True, {"gain": 1.0}, "GlorotNormal"),
    ("he_uniform", 2.0, "fan_in", False, _KAIMING, "HeUniform"),
    ("he_normal", 2.0, "fan_in", True, _KAIMING, "HeNormal"),
    ("lecun_uniform", 1.0, "fan_in", False, {**_KAIMING, "nonlinearity": "linear"}, "LecunUniform"),
    ("lecun_normal", 1.0, "fan_in", True, {**_KAIMING, "nonlinearity": "linear"}, "LecunNormal"),
)


def _preset_calls(name: str, scale: float, mode: Mode, normal: bool, keras: str) -> dict[str, str]:
    tf1_mode = {"fan_in": "FAN_IN", "fan_avg": "FAN_AVG"}[mode]
    norm = {"fan_in": "FAN_IN", "fan_avg": "AVERAGE"}[mode]  # Caffe's VarianceNorm enum
    caffe = ("msra" if normal else "xavier") + f" filler (variance_norm={norm})"
    return {
        "keras": f"keras.initializers.{keras}()",
        "jax": f"jax.nn.initializers.{name}()",
        "tf1": f"tf.contrib.layers.variance_scaling_initializer(factor={scale:g}, "
        f"mode='{tf1_mode}', uniform={not normal})",
        "caffe": f"Caffe {caffe}" if scale == (2.0 if normal else 1.0) else "",
    }


def _presets() -> list[Scheme]:
    rows = []
    for name, scale, mode, normal, torch_params, keras in _PRESET_ROWS:
        family = name.split("_")[0]
        n = "(fan_in + fan_out)/2" if mode == "fan_avg" else "fan_in"
        shape = "N(0, Var), truncated at ±2σ except torch/caffe" if normal else "U(±√(3·Var))"
        rows.append(
            Scheme(
                name=name,
                summary=f"variance_scaling({scale:g}, {mode!r}, "
                f"{'normal' if normal else 'uniform'!r}); torch: gain-based xavier_/kaiming_",
                formula=f"Var = {scale:g}/{n}; {shape}",
                source=_PAPERS[family],
                build=_preset(scale, mode, normal, _preset_calls(name, scale, mode, normal, keras)),
                params=_every({}, torch=torch_params),
            )
        )
    return rows


SCHEMES: Mapping[str, Scheme] = {
    s.name: s
    for s in [
        Scheme(
            "variance_scaling",
            "the general scheme every Glorot/He/LeCun preset specialises",
            "Var = factor/n, n from mode; truncated σ = √Var/0.8796 (tf1: √(1.3·Var)) cut at ±2σ",
            "Keras VarianceScaling; JAX variance_scaling; TF1 variance_scaling_initializer",
            _vs_scheme,
            {
                "keras": _VS,
                "jax": _VS,
                "tf1": {**_VS, "factor": 2.0},
                "torch": {**_VS, "distribution": "untruncated_normal"},
                "caffe": {**_VS, "distribution": "uniform"},
            },
        ),
        *_presets(),
        Scheme(
            "xavier",
            "Caffe's xavier filler: U(±√(3/n)), n by variance_norm (default FAN_IN = LeCun!)",
            "L = √(3/n); n = fan_in (FAN_IN) | fan_out (FAN_OUT) | (fan_in+fan_out)/2 (AVERAGE)",
            "Caffe filler.hpp XavierFiller",
            _caffe_filler(1.0, False, "xavier"),
            {"caffe": {"mode": "fan_in"}},
        ),
        Scheme(
            "msra",
            "Caffe's msra filler: N(0, 2/n), n by variance_norm (default FAN_IN = He normal)",
            "σ = √(2/n), untruncated",
            "Caffe filler.hpp MSRAFiller; He et al. 2015",
            _caffe_filler(2.0, True, "msra"),
            {"caffe": {"mode": "fan_in"}},
        ),
        Scheme(
            "normal",
            "plain normal; defaults differ: torch std 1, keras 0.05, jax 0.01 (no mean)",
            "N(mean, std²), untruncated",
            "torch normal_; keras RandomNormal; jax normal; TF random_normal_initializer",
            _normal,
            {
                "torch": {"mean": 0.0, "std": 1.0},
                "keras": {"mean": 0.0, "std": 0.05},
                "jax": {"std": 0.01},
                "tf1": {"mean": 0.0, "std": 1.0},
                "caffe": {"mean": 0.0, "std": 1.0},
            },
        ),
        Scheme(
            "uniform",
            "plain uniform; torch [0, 1), keras [−0.05, 0.05), jax [0, 0.01)",
            "U(low, high)",
            "torch uniform_; keras RandomUniform; jax uniform; TF random_uniform_initializer",
            _uniform,
            {
                "torch": {"low": 0.0, "high": 1.0},
                "keras": {"low": -0.05, "high": 0.05},
                "jax": {"high": 0.01},
                "tf1": {"low": 0.0, "high": 1.0},
                "caffe": {"low": 0.0, "high": 1.0},
            },
        ),
        Scheme(
            "truncated_normal",
            "normal cut to an interval, no variance correction: torch absolute a, b; "
            "keras/tf1 mean ± 2σ; jax a, b in units of σ",
            "N(mean, std²) restricted to [a, b]",
            "torch trunc_normal_; keras TruncatedNormal; jax truncated_normal",
            _truncated_normal,
            {
                "torch": {"mean": 0.0, "std": 1.0, "a": -2.0, "b": 2.0},
                "keras": {"mean": 0.0, "std": 0.05},
                "jax": {"std": 0.01, "a": -2.0, "b": 2.0},
                "tf1": {"mean": 0.0, "std": 1.0},
            },
        ),
        Scheme(
            "constant",
            "every element equal to value",
            "w = value",
            "torch constant_; keras Constant; jax constant; Caffe constant filler",
            _constant(None),
            {
                "torch": {"value": REQUIRED},
                "jax": {"value": REQUIRED},
                "keras": {"value": 0.0},
                "tf1": {"value": 0.0},
                "caffe": {"value": 0.0},
            },
        ),
        Scheme("zeros", "all zeros", "w = 0", "every framework", _constant(0.0), _every({})),
        Scheme("ones", "all ones", "w = 1", "every framework", _constant(1.0), _every({})),
        Scheme(
            "orthogonal",
            "orthogonal matrix (QR with sign fix) times gain; which axis is kept depends on "
            "the convention",
            "Q·sign(diag R)·gain of a Gaussian matrix",
            "Saxe et al. 2014, Exact solutions to the nonlinear dynamics of learning",
            _orthogonal,
            {
                "torch": {"gain": 1.0},
                "keras": {"gain": 1.0},
                "tf1": {"gain": 1.0},
                "jax": {"gain": 1.0, "column_axis": -1},
            },
        ),
        Scheme(
            "identity",
            "gain times the identity matrix (rank 2 only)",
            "w = gain·eye(rows, cols)",
            "torch eye_; keras Identity; TF identity_initializer",
            _identity,
            {"torch": {}, "keras": {"gain": 1.0}, "tf1": {"gain": 1.0}},
        ),
        Scheme(
            "dirac",
            "Dirac delta kernel: a convolution that preserves the identity of its inputs",
            "1 at [g·out/groups + d, d, centre…]",
            "torch dirac_",
            _dirac,
            {"torch": {"groups": 1}},
        ),
        Scheme(
            "delta_orthogonal",
            "convolution kernel that is zero but for an orthogonal centre tap",
            "w[centre] = orthogonal(in×out)·gain",
            "Xiao et al. 2018, Dynamical Isometry and a Mean Field Theory of CNNs",
            _delta_orthogonal,
            {"jax": {"gain": 1.0}, "tf1": {"gain": 1.0}},
        ),
    ]
}

ALIASES: Mapping[str, str] = {
    "xavier_uniform": "glorot_uniform",
    "xavier_normal": "glorot_normal",
    "kaiming_uniform": "he_uniform",
    "kaiming_normal": "he_normal",
    "random_normal": "normal",
    "random_uniform": "uniform",
    "gaussian": "normal",
    "trunc_normal": "truncated_normal",
    "eye": "identity",
    "zero": "zeros",
    "one": "ones",
}


def lookup(name: str) -> Scheme:
    """The scheme named `name` or by an alias; an unknown name lists the valid ones."""
    scheme = SCHEMES.get(ALIASES.get(name, name))
    if scheme is None:
        raise SchemeError(
            f"unknown scheme {name!r}; expected one of {one_of(SCHEMES)} "
            f"(aliases: {one_of(ALIASES)})"
        )
    return scheme


def _check(name: str, value: ParamValue) -> None:
    info = PARAMS[name]
    if info.choices and value not in info.choices:
        raise SchemeError(f"unknown {name} {value!r}; expected one of {one_of(info.choices)}")
    if isinstance(value, str) or info.choices:
        return
    if not math.isfinite(value):
        raise SchemeError(f"{name} must be a finite number; received {value}")
    if info.minimum is not None and value < info.minimum:
        raise SchemeError(f"{name} must be >= {info.minimum:g}; received {value}")
    if info.exclusive_minimum is not None and value <= info.exclusive_minimum:
        raise SchemeError(f"{name} must be > {info.exclusive_minimum:g}; received {value}")


def resolve(
    scheme: str,
    shape: Shape,
    convention: str = "keras",
    params: Params | None = None,
    fans: FanSpec | None = None,
) -> SchemePlan:
    """Resolve a scheme for a shape under a convention, or raise what is wrong and allowed."""
    entry, conv = lookup(scheme), rule(convention)
    if any(d < 0 for d in shape):
        raise ShapeError(f"shape {list(shape)} has a negative dimension")
    accepted = entry.params.get(conv.name)
    if accepted is None:
        raise SchemeError(
            f"scheme {entry.name!r} is not defined under convention {conv.name}; "
            f"it is defined under {one_of(entry.params)}"
        )
    given = (params or Params()).given()
    unexpected = [k for k in given if k not in accepted]
    if unexpected:
        takes = one_of(accepted) if accepted else "no parameters"
        raise SchemeError(
            f"scheme {entry.name!r} under convention {conv.name} does not take "
            f"{one_of(unexpected)}; it takes {takes}"
        )
    missing = [k for k, default in accepted.items() if default is REQUIRED and k not in given]
    if missing:
        raise SchemeError(
            f"scheme {entry.name!r} under convention {conv.name} needs {one_of(missing)}"
        )
    resolved: dict[str, ParamValue] = {
        k: v for k in accepted if (v := given.get(k, accepted[k])) is not None
    }
    for k, v in resolved.items():
        _check(k, v)
    fan_spec = fans or FanSpec()
    for name, fan in (("fan_in", fan_spec.fan_in), ("fan_out", fan_spec.fan_out)):
        if fan is not None and not (math.isfinite(fan) and fan > 0):
            raise ShapeError(f"{name} must be a finite number > 0; received {fan}")
    return entry.build(_Ctx(entry.name, conv, tuple(shape), fan_spec, resolved))
