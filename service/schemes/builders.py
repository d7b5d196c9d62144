"""Builders: one per family of schemes, each reproducing its framework's arithmetic."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from service.errors import SchemeError, ShapeError, one_of
from service.schemes.conventions import ConventionRule, _axes
from service.schemes.gains import calculate_gain
from service.schemes.laws import (
    Law,
    SchemePlan,
    constant_law,
    normal_law,
    sparse_law,
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
