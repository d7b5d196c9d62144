"""Builders: one per family of schemes, each reproducing its framework's arithmetic.

A builder does the arithmetic; the convention in its context says what the fans are, how the
framework's source orders the operations where they differ, and the text of the call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from service.errors import SchemeError, ShapeError, one_of
from service.schemes.conventions import ConventionRule, Family
from service.schemes.gains import calculate_gain
from service.schemes.laws import (
    Law,
    SchemePlan,
    constant_law,
    normal_law,
    truncated_law,
    uniform_law,
)
from service.schemes.vocabulary import (
    TF1_TRUNCATED_FACTOR,
    TRUNCATED_STD,
    Distribution,
    FanSpec,
    Mode,
    Nonlinearity,
    ParamValue,
    Shape,
)


@dataclass(frozen=True)
class Context:
    """One resolved request, as a builder sees it: parameters checked and defaults filled."""

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


Builder = Callable[[Context], SchemePlan]


def shown(x: float) -> str:
    """A number as the formulas print it (ten significant digits)."""
    return f"{x:.10g}"


def _mode_fan(mode: Mode, fan_in: float, fan_out: float) -> float:
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    if mode == "fan_avg":
        return (fan_in + fan_out) / 2.0
    return math.sqrt(fan_in * fan_out)


def _positive_fan(ctx: Context, mode: str, fan: float) -> None:
    if fan <= 0:
        raise ShapeError(
            f"{mode} is {shown(fan)} for shape {list(ctx.shape)} under convention {ctx.rule.name}, "
            "so the scale divided by it is undefined; use a shape without zero dimensions "
            "there, give fan_in/fan_out, or use convention keras (which clamps to max(1, n))"
        )


def _distribution(r: ConventionRule, distribution: Distribution, notes: list[str]) -> Distribution:
    dist = distribution
    if dist == "normal":
        dist = r.normal_means
        notes.append(f"'normal' means {dist} under convention {r.name}")
    if dist not in r.distributions:
        raise SchemeError(
            f"distribution {distribution!r} is not available for variance scaling under "
            f"convention {r.name}; expected one of {one_of((*r.distributions, 'normal'))}"
        )
    return dist


def variance_scaling(
    ctx: Context, scale: float, mode: Mode, distribution: Distribution, call: str
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
    dist = _distribution(r, distribution, notes)
    fan_in, fan_out = ctx.fans()
    fan = _mode_fan(mode, fan_in, fan_out)
    n = max(1.0, fan) if r.clamp else fan
    _positive_fan(ctx, mode, n)
    if n != fan:
        notes.append(f"{mode} = {shown(fan)} clamped to max(1, {mode}) = {shown(n)} (Keras)")
    den = f"max(1, {shown(fan)})" if r.clamp else shown(n)
    law, formula = _scaled_law(r, dist, scale, n, den, notes)
    numbers = {"fan_in": fan_in, "fan_out": fan_out, "mode": mode, "n": n, "scale": scale}
    numbers["gain"] = math.sqrt(scale)
    return ctx.plan(law, call, formula, notes=tuple(notes), **numbers)


def _scaled_law(
    r: ConventionRule, dist: Distribution, scale: float, n: float, den: str, notes: list[str]
) -> tuple[Law, str]:
    if dist == "uniform":
        if r.uniform_limit == "√(3·s/n)":  # TF1 and Caffe: sqrt(3 * factor / n)
            limit = math.sqrt(3.0 * scale / n)
        else:
            limit = math.sqrt(3.0 * (scale / n))
        return uniform_law(
            -limit, limit
        ), f"L = √(3·{shown(scale)}/{den}) = {shown(limit)}; U(−L, L)"
    if dist == "untruncated_normal":
        sigma = math.sqrt(scale / n)
        return normal_law(0.0, sigma), f"σ = √({shown(scale)}/{den}) = {shown(sigma)}; N(0, σ²)"
    if r.truncated_sigma == "√(1.3·s/n)":
        sigma = math.sqrt(TF1_TRUNCATED_FACTOR * scale / n)
        notes.append("TF1 contrib's 1.3 approximates 1/0.8796²: effective std is 1.0029×√(s/n)")
        formula = f"σ = √(1.3·{shown(scale)}/{den}) = {shown(sigma)}; N(0, σ²) cut at ±2σ"
        return truncated_law(0.0, sigma, -2.0, 2.0), formula
    sigma = math.sqrt(scale / n) / TRUNCATED_STD
    formula = (
        f"σ = √({shown(scale)}/{den})/0.87962566103423978 = {shown(sigma)}; "
        "N(0, σ²) cut at ±2σ, effective std √(scale/n)"
    )
    return truncated_law(0.0, sigma, -2.0, 2.0), formula


def _scaling_call(
    ctx: Context, family: Family, scale: float, mode: str, dist: str, **more: object
) -> str:
    r = ctx.rule
    mode_name = r.mode_name(mode)
    return r.call(
        family, factor=shown(scale), scale=scale, mode=mode, mode_name=mode_name, distribution=dist,
        uniform=dist == "uniform", **more,
    )  # fmt: skip


def variance_scaling_scheme(ctx: Context) -> SchemePlan:
    """`variance_scaling(factor, mode, distribution)`, all three from the request."""
    factor, mode, dist = ctx.num("factor"), ctx.word("mode"), ctx.word("distribution")
    call = _scaling_call(ctx, "variance_scaling", factor, mode, dist)
    return variance_scaling(ctx, factor, mode, dist, call)  # type: ignore[arg-type]


def named(name: str, scale: float, mode: Mode | None, distribution: Distribution) -> Builder:
    """`name = variance_scaling(scale, mode, distribution)`, as jax.nn.initializers defines them.

    mode None: the request's `mode` (Caffe's variance_norm). A convention without a truncated
    normal draws the normal ones untruncated (Caffe msra); under torch they are the gain-based
    xavier_ (fan_avg) and kaiming_ (fan_in, fan_out) functions.
    """
    is_normal = distribution != "uniform"
    camel = "".join(word.capitalize() for word in name.split("_"))  # Keras' class name

    def build(ctx: Context) -> SchemePlan:
        r = ctx.rule
        if r.by_gain:
            gain_based = _torch_xavier if mode == "fan_avg" else _torch_kaiming
            return gain_based(ctx, is_normal)
        m: Mode = mode or ctx.params["mode"]  # type: ignore[assignment]
        dist = distribution if distribution in r.distributions else "untruncated_normal"
        filler = r.fillers.get((dist, scale))
        family: Family = "named" if filler is None else "filler"
        call = _scaling_call(ctx, family, scale, m, dist, name=name, camel=camel, filler=filler)
        return variance_scaling(ctx, scale, m, dist, call)

    return build


def torch_params(scale: float, mode: Mode) -> dict[str, ParamValue] | None:
    """torch's defaults for a named scheme: xavier_'s gain, or kaiming_'s a, mode and the
    nonlinearity whose gain² is the scale; None where torch.nn.init has no such function."""
    if mode == "fan_avg":
        return {"gain": math.sqrt(scale)}
    nonlinearity = {2.0: "leaky_relu", 1.0: "linear"}.get(scale)  # √(2/(1 + 0²))², 1²
    if mode not in ("fan_in", "fan_out") or nonlinearity is None:
        return None
    return {"negative_slope": 0.0, "mode": mode, "nonlinearity": nonlinearity}


def _torch_xavier(ctx: Context, is_normal: bool) -> SchemePlan:
    """torch `xavier_*_(gain)`: std = gain·√(2/(fan_in + fan_out)); uniform bound √3·std."""
    gain = ctx.num("gain")
    fan_in, fan_out = ctx.fans()
    _positive_fan(ctx, "fan_in + fan_out", fan_in + fan_out)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    formula = f"std = {shown(gain)}·√(2/({shown(fan_in)} + {shown(fan_out)})) = {shown(std)}"
    if is_normal:
        law = normal_law(0.0, std)
        formula += "; N(0, std²)"
    else:
        bound = math.sqrt(3.0) * std
        law = uniform_law(-bound, bound)
        formula += f"; bound = √3·std = {shown(bound)}; U(−bound, bound)"
    call = ctx.rule.call("xavier", kind="normal" if is_normal else "uniform", gain=shown(gain))
    n = (fan_in + fan_out) / 2.0
    return ctx.plan(
        law, call, formula, fan_in=fan_in, fan_out=fan_out, mode="fan_avg", n=n,
        scale=gain * gain, gain=gain,
    )  # fmt: skip


def _torch_kaiming(ctx: Context, is_normal: bool) -> SchemePlan:
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
        f"gain = calculate_gain({nonlinearity!r}, {shown(slope)}) = {shown(gain)}; "
        f"std = gain/√{shown(fan)} = {shown(std)}"
    )
    kind = "normal" if is_normal else "uniform"
    call = ctx.rule.call("kaiming", kind=kind, a=shown(slope), mode=mode, nonlinearity=nonlinearity)
    if is_normal:
        law = normal_law(0.0, std)
        formula += "; N(0, std²)"
    else:
        bound = math.sqrt(3.0) * std
        law = uniform_law(-bound, bound)
        formula += f"; bound = √3·std = {shown(bound)}; U(−bound, bound)"
    return ctx.plan(
        law, call, formula, fan_in=fan_in, fan_out=fan_out, mode=mode, n=fan,
        scale=gain * gain, gain=gain,
    )  # fmt: skip


def normal(ctx: Context) -> SchemePlan:
    loc, std = float(ctx.params.get("mean", 0.0)), ctx.num("std")
    return ctx.plan(
        normal_law(loc, std), ctx.rule.call("normal"), f"N({shown(loc)}, {shown(std)}²)"
    )


def uniform(ctx: Context) -> SchemePlan:
    low, high = float(ctx.params.get("low", 0.0)), ctx.num("high")
    if not low <= high:
        raise SchemeError(f"uniform needs low <= high; received low={low}, high={high}")
    return ctx.plan(
        uniform_law(low, high), ctx.rule.call("uniform"), f"U({shown(low)}, {shown(high)})"
    )


def truncated_normal(ctx: Context) -> SchemePlan:
    loc, std = float(ctx.params.get("mean", 0.0)), ctx.num("std")
    if std <= 0:
        raise SchemeError(f"truncated_normal needs std > 0; received std={std}")
    bounds = ctx.rule.truncation_bounds
    if bounds == "absolute":  # torch trunc_normal_
        a, b = ctx.num("a"), ctx.num("b")
        alpha, beta = (a - loc) / std, (b - loc) / std
    elif bounds == "in σ":  # jax truncated_normal(stddev, lower, upper)
        alpha, beta = ctx.num("a"), ctx.num("b")
    else:
        alpha, beta = -2.0, 2.0
    if not alpha < beta:
        raise SchemeError(f"truncated_normal needs a < b; received a={alpha}, b={beta} (in σ)")
    law = truncated_law(loc, std, alpha, beta)
    low, high = shown(law.low or 0.0), shown(law.high or 0.0)
    formula = (
        f"N({shown(loc)}, {shown(std)}²) restricted to [{low}, {high}]; "
        f"effective std {shown(law.effective_std)} (no variance correction)"
    )
    return ctx.plan(law, ctx.rule.call("truncated_normal"), formula)


def constant(value: float | None) -> Builder:
    """Every element `value`; None: the request's `value`."""

    def build(ctx: Context) -> SchemePlan:
        v = ctx.num("value") if value is None else value
        call = ctx.rule.call("constant", scheme=ctx.scheme, value=shown(v))
        return ctx.plan(constant_law(v), call, f"w = {shown(v)}")

    return build


def uniform_unit_scaling(ctx: Context) -> SchemePlan:
    """tf.compat.v1 `uniform_unit_scaling_initializer(factor)` (deprecated; TF init_ops.py
    `UniformUnitScaling.__call__`): input_size = max(1, ∏ shape[:-1]) multiplied as floats in
    axis order, L = √(3/input_size)·factor, U(−L, L). Not a fan: rank 1 gives input_size 1."""
    factor = ctx.num("factor")
    input_size = 1.0
    for dim in ctx.shape[:-1]:
        input_size *= float(dim)
    input_size = max(input_size, 1.0)  # TF: "avoid errors when initializing zero-size tensors"
    limit = math.sqrt(3 / input_size) * factor
    dims = "·".join(str(d) for d in ctx.shape[:-1]) or "1"
    formula = (
        f"input_size = max(1, {dims}) = {shown(input_size)}; "
        f"L = √(3/{shown(input_size)})·{shown(factor)} = {shown(limit)}; U(−L, L)"
    )
    call = ctx.rule.call("uniform_unit_scaling", factor=shown(factor))
    law = uniform_law(-limit, limit)
    return ctx.plan(law, call, formula, gain=factor, scale=factor * factor)


def need_rank(ctx: Context, ranks: range, what: str) -> None:
    """Refuse a rank outside `ranks`: "<scheme> needs a rank … shape (what); received …"."""
    if len(ctx.shape) not in ranks:
        allowed = f"{ranks.start}" if len(ranks) == 1 else f"{ranks.start} … {ranks.stop - 1}"
        raise ShapeError(
            f"{ctx.scheme} needs a rank {allowed} shape ({what}); received rank "
            f"{len(ctx.shape)} shape {list(ctx.shape)}"
        )
