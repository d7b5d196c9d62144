"""Conventions: each carries its fan rule, what its words mean and the calls it reproduces."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from service.errors import SchemeError, ShapeError, one_of
from service.schemes.fans import FanRule, caffe_fans, compute_fans, jax_fans, keras_fans, torch_fans
from service.schemes.vocabulary import (
    CONVENTIONS,
    MODES,
    Convention,
    Distribution,
    FanSpec,
    Mode,
    Shape,
)

# The families of schemes whose framework call a convention spells out, with the values a
# builder fills in. A row defined under a convention lacking its family fails loudly (`call`);
# tests/unit/test_schemes.py resolves every row under every convention that defines it.
Family = Literal[
    "variance_scaling",  # factor, mode, mode_name, distribution, uniform
    "named",  # glorot_*, he_*, lecun_*: name, camel (Keras' class), scale, mode_name, uniform
    "filler",  # Caffe's variance-scaling fillers: filler, mode_name
    "xavier",  # torch's gain-based named schemes: kind (normal/uniform), gain
    "kaiming",  # kind, a, mode, nonlinearity
    "normal",
    "uniform",
    "truncated_normal",
    "orthogonal",
    "identity",
    "dirac",
    "delta_orthogonal",
    "sparse",
    "uniform_unit_scaling",  # factor
    "stft",  # side, window, scaling, periodic
    "inverse_softplus_log_uniform",  # low, high, floor
    "log_arange",
    "constant",  # scheme, value
]


@dataclass(frozen=True)
class ConventionRule:
    """How one framework computes fans, what its variance-scaling distributions mean, and the
    calls of that framework each family of schemes reproduces."""

    name: Convention
    framework: str
    layout: str
    fan_rule: str  # the fan rule in words, for the catalogue; `compute` is the rule itself
    clamp: bool  # Keras divides by max(1, n)
    modes: tuple[Mode, ...]
    distributions: tuple[Distribution, ...]  # accepted by variance_scaling, canonical form
    normal_means: Distribution  # what the word "normal" in variance_scaling means
    axes: tuple[str, ...]  # which of in_axes/out_axes/batch_axes the convention accepts
    # repr and compare off: the catalogue's view of a rule (and its equality) stays its words
    compute: FanRule = field(repr=False, compare=False)
    calls: Mapping[Family, str] = field(repr=False, compare=False)  # str.format templates
    mode_names: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    # variance scalings the framework has a name of its own for, by (distribution, scale)
    fillers: Mapping[tuple[Distribution, float], str] = field(
        default_factory=dict, repr=False, compare=False
    )
    by_gain: bool = field(default=False, repr=False, compare=False)  # named schemes take a gain
    # where the sources compute differently, how this one does: builders read these, not names
    uniform_limit: Literal["√(3·(s/n))", "√(3·s/n)"] = field(
        default="√(3·(s/n))", repr=False, compare=False
    )
    truncated_sigma: Literal["√(s/n)/0.8796", "√(1.3·s/n)"] = field(
        default="√(s/n)/0.8796", repr=False, compare=False
    )
    truncation_bounds: Literal["mean ± 2σ", "absolute", "in σ"] = field(
        default="mean ± 2σ", repr=False, compare=False
    )
    orthogonal_columns: Literal["last axis", "first axis", "column_axis"] = field(
        default="last axis", repr=False, compare=False
    )

    def fans(self, shape: Shape, spec: FanSpec) -> tuple[float, float]:
        """The fans by this convention's rule; an explicit fan_in or fan_out wins over it."""
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
        fan_in, fan_out = self.compute(shape, spec)
        return (
            fan_in if spec.fan_in is None else spec.fan_in,
            fan_out if spec.fan_out is None else spec.fan_out,
        )

    def call(self, family: Family, **values: object) -> str:
        """The framework call this convention's `family` reproduces, with `values` filled in."""
        template = self.calls.get(family)
        if template is None:  # a catalogue row defined under a convention that cannot spell it
            raise LookupError(
                f"convention {self.name} has no call template for the {family!r} family; "
                f"it has {one_of(self.calls)}"
            )
        return template.format(**values)

    def mode_name(self, mode: str) -> str:
        """How the framework's own call spells a mode (TF1 'FAN_IN', Caffe 'AVERAGE')."""
        return self.mode_names.get(mode, mode)


_ALL_DISTRIBUTIONS: tuple[Distribution, ...] = ("truncated_normal", "untruncated_normal", "uniform")
_PLAIN: tuple[Distribution, ...] = ("untruncated_normal", "uniform")

# Every framework fills a constant the same way; the text names the scheme, not a call.
_CONSTANT = "{scheme}: every element {value}"

_KERAS = ConventionRule(
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
    compute=keras_fans,
    calls={
        "variance_scaling": "keras.initializers.VarianceScaling({factor}, {mode!r}, "
        "{distribution!r})",
        "named": "keras.initializers.{camel}()",
        "normal": "keras.initializers.RandomNormal(mean, stddev)",
        "uniform": "keras.initializers.RandomUniform(minval, maxval)",
        "truncated_normal": "keras.initializers.TruncatedNormal(mean, stddev): cut at mean ± 2σ",
        "orthogonal": "keras.initializers.Orthogonal(gain): matrix (prod(shape[:-1]), shape[-1])",
        "identity": "keras.initializers.Identity(gain)",
        "stft": "keras.initializers.STFT(side={side!r}, window={window}, scaling={scaling}, "
        "periodic={periodic})",
        "constant": _CONSTANT,
    },
)

_TORCH = ConventionRule(
    "torch",
    "PyTorch (torch.nn.init)",
    "(out, in/groups, *kernel)",
    "rank < 2: error; fan_in = shape[1]·R, fan_out = shape[0]·R, R = prod(shape[2:])",
    clamp=False,
    modes=("fan_in", "fan_out", "fan_avg"),
    distributions=_PLAIN,
    normal_means="untruncated_normal",
    axes=(),
    compute=torch_fans,
    calls={
        "variance_scaling": "variance scaling with torch's fan rule "
        "(torch.nn.init has no such function)",
        "xavier": "torch.nn.init.xavier_{kind}_(gain={gain})",
        "kaiming": "torch.nn.init.kaiming_{kind}_(a={a}, mode={mode!r}, "
        "nonlinearity={nonlinearity!r})",
        "normal": "torch.nn.init.normal_(mean, std)",
        "uniform": "torch.nn.init.uniform_(a=low, b=high)",
        "truncated_normal": "torch.nn.init.trunc_normal_(mean, std, a, b): a, b absolute",
        "orthogonal": "torch.nn.init.orthogonal_(gain): matrix (shape[0], numel/shape[0])",
        "identity": "torch.nn.init.eye_()",
        "dirac": "torch.nn.init.dirac_(groups)",
        "sparse": "torch.nn.init.sparse_(sparsity, std): zero rows drawn portably, not by "
        "torch's unseeded randperm",
        "inverse_softplus_log_uniform": "dt = torch.exp(torch.rand(n) * (math.log({high}) - "
        "math.log({low})) + math.log({low})).clamp(min={floor}); dt + torch.log(-torch.expm1(-dt)) "
        "(Mamba's dt_proj.bias)",
        "log_arange": "torch.log(torch.arange(1, n + 1)) along the last axis, in every row "
        "(Mamba's A_log)",
        "constant": _CONSTANT,
    },
    by_gain=True,  # torch.nn.init has xavier_(gain) and kaiming_(a, mode, nonlinearity)
    truncation_bounds="absolute",  # trunc_normal_(mean, std, a, b)
    orthogonal_columns="first axis",  # orthogonal_ flattens to (shape[0], numel/shape[0])
)

_JAX = ConventionRule(
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
    compute=jax_fans,
    calls={
        "variance_scaling": "jax.nn.initializers.variance_scaling({factor}, {mode!r}, "
        "{distribution!r})",
        "named": "jax.nn.initializers.{name}()",
        "normal": "jax.nn.initializers.normal(stddev)",
        "uniform": "jax.nn.initializers.uniform(scale=high): U[0, scale)",
        "truncated_normal": "jax.nn.initializers.truncated_normal(stddev, lower=a, upper=b): "
        "a, b in σ",
        "orthogonal": "jax.nn.initializers.orthogonal(scale=gain, column_axis)",
        "delta_orthogonal": "jax.nn.initializers.delta_orthogonal(scale=gain, column_axis)",
        "constant": _CONSTANT,
    },
    truncation_bounds="in σ",  # truncated_normal(stddev, lower, upper)
    orthogonal_columns="column_axis",
)

_TF1 = ConventionRule(
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
    compute=compute_fans,
    calls={
        "variance_scaling": "tf.contrib.layers.variance_scaling_initializer({factor}, "
        "{mode_name!r}, uniform={uniform})",
        "named": "tf.contrib.layers.variance_scaling_initializer(factor={scale:g}, "
        "mode='{mode_name}', uniform={uniform})",
        "normal": "tf.compat.v1.random_normal_initializer(mean, stddev)",
        "uniform": "tf.compat.v1.random_uniform_initializer(minval, maxval)",
        "truncated_normal": "tf.compat.v1.truncated_normal_initializer(mean, stddev): "
        "cut at mean ± 2σ",
        "orthogonal": "tf.compat.v1.orthogonal_initializer(gain): "
        "matrix (prod(shape[:-1]), shape[-1])",
        "identity": "tf.compat.v1.initializers.identity(gain)",
        "delta_orthogonal": "tf.compat.v1.initializers.convolution_delta_orthogonal(gain)",
        "uniform_unit_scaling": "tf.compat.v1.uniform_unit_scaling_initializer(factor={factor})",
        "constant": _CONSTANT,
    },
    mode_names={"fan_in": "FAN_IN", "fan_out": "FAN_OUT", "fan_avg": "FAN_AVG"},
    uniform_limit="√(3·s/n)",
    truncated_sigma="√(1.3·s/n)",  # contrib's 1.3 stands in for 1/0.8796² = 1.2924
)

_CAFFE = ConventionRule(
    "caffe",
    "Caffe (include/caffe/filler.hpp)",
    "(out, in, h, w)",
    "fan_in = count/shape(0), fan_out = count/shape(1) (count for rank 1); rank 0: error",
    clamp=False,
    modes=("fan_in", "fan_out", "fan_avg"),
    distributions=_PLAIN,
    normal_means="untruncated_normal",
    axes=(),
    compute=caffe_fans,
    calls={
        "variance_scaling": "variance scaling with Caffe's fan rule "
        "(Caffe xavier/msra generalised)",
        "named": "variance scaling with caffe's fan rule",
        "filler": "Caffe {filler} filler (variance_norm={mode_name})",
        "normal": "Caffe gaussian filler (mean, std)",
        "uniform": "Caffe uniform filler (min, max)",
        "constant": _CONSTANT,
    },
    mode_names={"fan_in": "FAN_IN", "fan_out": "FAN_OUT", "fan_avg": "AVERAGE"},  # VarianceNorm
    # XavierFiller: U(±√(3/n)); MSRAFiller: N(0, 2/n); n by variance_norm
    fillers={("uniform", 1.0): "xavier", ("untruncated_normal", 2.0): "msra"},
    uniform_limit="√(3·s/n)",
)

RULES: Mapping[Convention, ConventionRule] = {
    r.name: r for r in (_KERAS, _TORCH, _JAX, _TF1, _CAFFE)
}


def rule(convention: str) -> ConventionRule:
    try:
        return RULES[convention]  # type: ignore[index]
    except KeyError:
        raise SchemeError(
            f"unknown convention {convention!r}; expected one of {one_of(CONVENTIONS)}"
        ) from None
