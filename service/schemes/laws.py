"""What a scheme resolves to: the law of every element, its moments, the plan."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from service.errors import SchemeError
from service.schemes.vocabulary import Convention, Kind, Mode, ParamValue, Shape

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
    fan_in: float | None = None  # the tensor's fans by the convention (or explicit), if defined
    fan_out: float | None = None
    mode: Mode | None = None  # the fan the scale is divided by; None: the values use no fan
    n: float | None = None  # the fan the scale is divided by, after any clamp
    scale: float | None = None  # variance scale (gain²)
    gain: float | None = None
    kept_axis: int | None = None  # orthogonal: the axis that becomes the matrix's columns
    notes: tuple[str, ...] = ()

    @property
    def uses_fans(self) -> bool:
        """Whether the values depend on the fans (a `mode` divides the scale). Every plan reports
        its tensor's fans where the convention defines them; only these are part of its numbers."""
        return self.mode is not None


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
