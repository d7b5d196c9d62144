"""The catalogue: one row per scheme, with its parameters and defaults per convention."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from service.arguments import Declared, check, declared
from service.errors import SchemeError, ShapeError, clip, one_of
from service.schemes.builders import (
    Builder,
    Context,
    constant,
    named,
    normal,
    torch_params,
    truncated_normal,
    uniform,
    uniform_unit_scaling,
    variance_scaling_scheme,
)
from service.schemes.conventions import RULES, ConventionRule, rule
from service.schemes.laws import SchemePlan
from service.schemes.ssm import inverse_softplus_log_uniform, log_arange
from service.schemes.stft import stft
from service.schemes.structured import delta_orthogonal, dirac, identity, orthogonal, sparse
from service.schemes.vocabulary import (
    CONVENTIONS,
    Convention,
    Distribution,
    FanSpec,
    Mode,
    Params,
    ParamValue,
    Shape,
)

# --------------------------------------------------------------------------------------------
# The catalogue: one row per scheme, with its parameters and defaults per convention

REQUIRED = None  # a parameter without a default must be given


PARAMS: Mapping[str, Declared] = {d.name: d for d in declared(Params)}  # a view, by name

Defaults = Mapping[str, ParamValue | None]


@dataclass(frozen=True)
class Scheme:
    """One row of the catalogue: a docstring-grade summary, its builder, its parameters."""

    name: str
    summary: str
    formula: str
    source: str
    build: Builder = field(repr=False)
    params: Mapping[Convention, Defaults]  # conventions that define the scheme


def _every(defaults: Defaults) -> dict[Convention, Defaults]:
    return dict.fromkeys(CONVENTIONS, defaults)


_VS: Defaults = {"factor": 1.0, "mode": "fan_in", "distribution": "truncated_normal"}
_PAPERS = {
    "glorot": "Glorot & Bengio 2010, Understanding the difficulty of training deep networks",
    "he": "He et al. 2015, Delving Deep into Rectifiers",
    "lecun": "LeCun et al. 1998, Efficient BackProp; Klambauer et al. 2017 (SELU)",
}


def _named(name: str, scale: float, mode: Mode, distribution: Distribution) -> Scheme:
    """The row of `name = variance_scaling(scale, mode, distribution)` (jax.nn.initializers);
    a convention whose named schemes take a gain (torch) has its own parameters."""
    is_normal = distribution != "uniform"
    n = "(fan_in + fan_out)/2" if mode == "fan_avg" else "fan_in"
    shape = "N(0, Var), truncated at ±2σ except torch/caffe" if is_normal else "U(±√(3·Var))"
    params: dict[Convention, Defaults] = {}
    for conv in CONVENTIONS:
        defaults = torch_params(scale, mode) if RULES[conv].by_gain else {}
        if defaults is not None:
            params[conv] = defaults
    return Scheme(
        name=name,
        summary=f"variance_scaling({scale:g}, {mode!r}, "
        f"{'normal' if is_normal else 'uniform'!r}); torch: gain-based xavier_/kaiming_",
        formula=f"Var = {scale:g}/{n}; {shape}",
        source=_PAPERS[name.split("_")[0]],
        build=named(name, scale, mode, distribution),
        params=params,
    )


SCHEMES: Mapping[str, Scheme] = {
    s.name: s
    for s in [
        Scheme(
            "variance_scaling",
            "the general scheme every Glorot/He/LeCun preset specialises",
            "Var = factor/n, n from mode; truncated σ = √Var/0.8796 (tf1: √(1.3·Var)) cut at ±2σ",
            "Keras VarianceScaling; JAX variance_scaling; TF1 variance_scaling_initializer",
            variance_scaling_scheme,
            {
                "keras": _VS,
                "jax": _VS,
                "tf1": {**_VS, "factor": 2.0},
                "torch": {**_VS, "distribution": "untruncated_normal"},
                "caffe": {**_VS, "distribution": "uniform"},
            },
        ),
        # jax.nn.initializers: he_normal = variance_scaling(2.0, "fan_in", "truncated_normal")
        _named("glorot_uniform", 1.0, "fan_avg", "uniform"),
        _named("glorot_normal", 1.0, "fan_avg", "truncated_normal"),
        _named("he_uniform", 2.0, "fan_in", "uniform"),
        _named("he_normal", 2.0, "fan_in", "truncated_normal"),
        _named("lecun_uniform", 1.0, "fan_in", "uniform"),
        _named("lecun_normal", 1.0, "fan_in", "truncated_normal"),
        Scheme(
            "xavier",
            "Caffe's xavier filler: U(±√(3/n)), n by variance_norm (default FAN_IN = LeCun!)",
            "L = √(3/n); n = fan_in (FAN_IN) | fan_out (FAN_OUT) | (fan_in+fan_out)/2 (AVERAGE)",
            "Caffe filler.hpp XavierFiller",
            named("xavier", 1.0, None, "uniform"),  # mode: variance_norm
            {"caffe": {"mode": "fan_in"}},
        ),
        Scheme(
            "msra",
            "Caffe's msra filler: N(0, 2/n), n by variance_norm (default FAN_IN = He normal)",
            "σ = √(2/n), untruncated",
            "Caffe filler.hpp MSRAFiller; He et al. 2015",
            named("msra", 2.0, None, "untruncated_normal"),
            {"caffe": {"mode": "fan_in"}},
        ),
        Scheme(
            "normal",
            "plain normal; defaults differ: torch std 1, keras 0.05, jax 0.01 (no mean)",
            "N(mean, std²), untruncated",
            "torch normal_; keras RandomNormal; jax normal; TF random_normal_initializer",
            normal,
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
            uniform,
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
            truncated_normal,
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
            constant(None),
            {
                "torch": {"value": REQUIRED},
                "jax": {"value": REQUIRED},
                "keras": {"value": 0.0},
                "tf1": {"value": 0.0},
                "caffe": {"value": 0.0},
            },
        ),
        Scheme("zeros", "all zeros", "w = 0", "every framework", constant(0.0), _every({})),
        Scheme("ones", "all ones", "w = 1", "every framework", constant(1.0), _every({})),
        Scheme(
            "orthogonal",
            "orthogonal matrix (QR with sign fix) times gain; which axis is kept depends on "
            "the convention",
            "Q·sign(diag R)·gain of a Gaussian matrix",
            "Saxe et al. 2014, Exact solutions to the nonlinear dynamics of learning",
            orthogonal,
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
            identity,
            {"torch": {}, "keras": {"gain": 1.0}, "tf1": {"gain": 1.0}},
        ),
        Scheme(
            "dirac",
            "Dirac delta kernel: a convolution that preserves the identity of its inputs",
            "1 at [g·out/groups + d, d, centre…]",
            "torch dirac_",
            dirac,
            {"torch": {"groups": 1}},
        ),
        Scheme(
            "delta_orthogonal",
            "convolution kernel that is zero but for an orthogonal centre tap",
            "w[centre] = orthogonal(in×out)·gain; jax column_axis 0 or −2: orthogonal(out×in)ᵀ",
            "Xiao et al. 2018, Dynamical Isometry and a Mean Field Theory of CNNs; "
            "jax/_src/nn/initializers.py::delta_orthogonal",
            delta_orthogonal,
            {"jax": {"gain": 1.0, "column_axis": -1}, "tf1": {"gain": 1.0}},
        ),
        Scheme(
            "sparse",
            "torch sparse_: N(0, std²), then ⌈sparsity·rows⌉ zeros in every column (rank 2); "
            "the zero rows come from the portable generator, not torch's unseeded randperm",
            "w ~ N(0, std²); in column j the k = ⌈sparsity·rows⌉ rows with the smallest mask "
            "keys are 0; effective std = std·√(1 − k/rows)",
            "torch torch/nn/init.py::sparse_; Martens 2010, Deep learning via Hessian-free "
            "optimization",
            sparse,
            {"torch": {"sparsity": REQUIRED, "std": 0.01}},
        ),
        Scheme(
            "uniform_unit_scaling",
            "TF1's deprecated uniform_unit_scaling_initializer: U(±√(3/input_size)·factor) "
            "with input_size the product of every dimension but the last",
            "L = √(3/max(1, ∏ shape[:-1]))·factor; U(−L, L)",
            "tensorflow/python/ops/init_ops.py::UniformUnitScaling "
            "(tf.compat.v1.uniform_unit_scaling_initializer); Sussillo & Abbott 2014",
            uniform_unit_scaling,
            {"tf1": {"factor": 1.0}},
        ),
        Scheme(
            "stft",
            "Keras STFT kernel (frame_length, 1, fft_bins): the DFT's cosines (real) or "
            "negated sines (imag) times a scipy window over its normalisation; deterministic",
            "w[t, 0, f] = trig(2π·t·f/(2·(F − 1)))·win[t]/s; s = √Σwin² (density), Σ|win| "
            "(spectrum), 1 (none)",
            "keras/src/initializers/constant_initializers.py::STFT",
            stft,
            {"keras": {"side": "real", "window": "hann", "scaling": "density", "periodic": False}},
        ),
        Scheme(
            "inverse_softplus_log_uniform",
            "Mamba's dt_proj.bias: softplus⁻¹ of a step dt drawn log-uniform on [low, high] and "
            "raised to floor, so that softplus(w) = dt; exp, expm1 and ln computed portably",
            "dt = max(floor, exp(u·(ln high − ln low) + ln low)), u ~ U(0, 1); "
            "w = dt + ln(−expm1(−dt))",
            "Gu & Dao 2023, Mamba; state-spaces/mamba mamba_simple.py; transformers "
            "models/mamba/modeling_mamba.py::MambaMixer.init_mamba_weights",
            inverse_softplus_log_uniform,
            {"torch": {"low": 0.001, "high": 0.1, "floor": 1e-4}},
        ),
        Scheme(
            "log_arange",
            "ln(j + 1) at index j of the last axis, the same in every row: Mamba's A_log "
            "(S4D-real, A = −exp(A_log) = −(1 … n)); deterministic",
            "w[…, j] = ln(j + 1)",
            "Gu et al. 2022, On the Parameterization and Initialization of Diagonal State Space "
            "Models (S4D); transformers models/mamba/modeling_mamba.py::"
            "MambaMixer.init_mamba_weights",
            log_arange,
            {"torch": {}},
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
            f"unknown scheme {clip(name)!r}; expected one of {one_of(SCHEMES)} "
            f"(aliases: {one_of(ALIASES)})"
        )
    return scheme


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
        check(PARAMS[k], v)
    fan_spec = fans or FanSpec()
    for name, fan in (("fan_in", fan_spec.fan_in), ("fan_out", fan_spec.fan_out)):
        if fan is not None and not (math.isfinite(fan) and fan > 0):
            raise ShapeError(f"{name} must be a finite number > 0; received {fan}")
    plan = entry.build(Context(entry.name, conv, tuple(shape), fan_spec, resolved))
    return plan if plan.fan_in is not None else _with_fans(plan, conv, fan_spec)


def _with_fans(plan: SchemePlan, conv: ConventionRule, spec: FanSpec) -> SchemePlan:
    """A plan whose values do not use the fans still reports the tensor's fans by its
    convention's rule (explicit fans and axes honoured as by any scheme); `mode` stays None and
    nothing drawn depends on them. None, with a note why, where the framework itself raises."""
    try:
        fan_in, fan_out = conv.fans(plan.shape, spec)
    except ShapeError as exc:
        return replace(plan, notes=(*plan.notes, f"fan_in and fan_out not reported: {exc}"))
    return replace(plan, fan_in=fan_in, fan_out=fan_out)
