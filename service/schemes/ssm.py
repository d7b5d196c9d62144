"""The laws of a Mamba mixer that no framework initializer has (state-spaces/mamba
`mamba_simple.py`; transformers `models/mamba/modeling_mamba.py`, `init_mamba_weights`):

- `inverse_softplus_log_uniform` (dt_proj.bias): dt = exp(u·(ln high − ln low) + ln low),
  u ~ U(0, 1), raised to `floor`, then w = dt + ln(−expm1(−dt)) = softplus⁻¹(dt), so that
  softplus(w) = dt at init;
- `log_arange` (A_log, S4D-real): w[…, j] = ln(j + 1) along the last axis, in every row.

Their values are service.logspace's (portable: + − × ÷ and frexp only). The mean and std the
catalogue reports are computed here with those same functions on Python floats (Simpson's rule
over ln dt, math.fsum; exact sums for log_arange), so they are the same on every machine.
"""

from __future__ import annotations

import functools
import math

from service.errors import LimitExceeded, SchemeError
from service.logspace import SCALARS, exp, inverse_softplus, log_bounds
from service.rng import log
from service.schemes.builders import Context, need_rank, shown
from service.schemes.laws import Law, SchemePlan
from service.shapes import MAX_RANK

MIN_DT, MAX_DT = 1e-30, 1e6  # the dt (low, high) served: ln dt within ±69.1, moments finite
STEPS = 16  # Simpson intervals per unit of ln dt (at least 64)
MAX_LOG_ARANGE = 1 << 16  # log_arange's last axis: its moments are summed on the host


def _softplus_inverse(dt: float) -> float:
    return float(inverse_softplus(SCALARS, dt))


def _simpson(a: float, b: float, floor: float) -> tuple[float, float]:
    """∫ g and ∫ g² over ln dt in [a, b] (a < b), g = softplus⁻¹(max(floor, e^s))."""
    n = 2 * max(32, math.ceil(STEPS * (b - a) / 2))
    h = (b - a) / n
    first, second = [], []
    for i in range(n + 1):
        weight = 1 if i in (0, n) else 4 if i % 2 else 2
        g = _softplus_inverse(max(floor, float(exp(SCALARS, a + i * h))))
        first.append(weight * g)
        second.append(weight * g * g)
    return math.fsum(first) * h / 3, math.fsum(second) * h / 3


@functools.lru_cache(maxsize=64)
def dt_moments(low: float, high: float, floor: float) -> tuple[float, float, float, float]:
    """(mean, std, least, greatest) of softplus⁻¹(max(floor, dt)), ln dt ~ U(ln low, ln high)."""
    ln_low, width = log_bounds(low, high)
    a, b = sorted((ln_low, ln_low + width))
    least = _softplus_inverse(max(floor, float(exp(SCALARS, a))))
    greatest = _softplus_inverse(max(floor, float(exp(SCALARS, b))))
    if b - a == 0.0 or least == greatest:
        return least, 0.0, least, greatest
    ln_floor = float(log(SCALARS, floor)) if floor > 0.0 else -math.inf
    c = min(max(a, ln_floor), b)  # below c every dt is raised to the floor
    first, second = _simpson(c, b, floor) if c < b else (0.0, 0.0)
    mean = (first + (c - a) * least) / (b - a)
    square = (second + (c - a) * least * least) / (b - a)
    return mean, math.sqrt(max(square - mean * mean, 0.0)), least, greatest


def inverse_softplus_log_uniform(ctx: Context) -> SchemePlan:
    """Mamba's dt_proj.bias: see the module's docstring."""
    low, high, floor = ctx.num("low"), ctx.num("high"), ctx.num("floor")
    for name, value in (("low", low), ("high", high)):
        if not MIN_DT <= value <= MAX_DT:
            raise SchemeError(
                f"{ctx.scheme} needs {name} (a bound of dt) within [{MIN_DT:g}, {MAX_DT:g}]; "
                f"received {name}={value}"
            )
    mean, std, least, greatest = dt_moments(low, high, floor)
    law = Law(
        "inverse_softplus_log_uniform", mean=mean, effective_std=std, low=least, high=greatest
    )
    formula = (
        f"dt = max({shown(floor)}, exp(u·(ln {shown(high)} − ln {shown(low)}) + "
        f"ln {shown(low)})), u ~ U(0, 1); w = dt + ln(−expm1(−dt)) ∈ [{shown(least)}, "
        f"{shown(greatest)}]"
    )
    call = ctx.rule.call(
        "inverse_softplus_log_uniform", low=shown(low), high=shown(high), floor=shown(floor)
    )
    return ctx.plan(law, call, formula)


@functools.lru_cache(maxsize=64)
def arange_moments(n: int) -> tuple[float, float, float]:
    """(mean, population std, ln n) of ln(1 … n), each ln the engines' (rng.log)."""
    logs = [float(log(SCALARS, float(j))) for j in range(1, n + 1)]
    mean = math.fsum(logs) / n
    square = math.fsum(x * x for x in logs) / n
    return mean, math.sqrt(max(square - mean * mean, 0.0)), logs[-1]


def log_arange(ctx: Context) -> SchemePlan:
    """Mamba's A_log: ln(1 … n) along the last axis (n = shape[-1]), the same in every row."""
    need_rank(ctx, range(1, MAX_RANK + 1), "ln(j + 1) runs along the last axis")
    n = ctx.shape[-1]
    if n > MAX_LOG_ARANGE:
        raise LimitExceeded(
            f"{ctx.scheme} sums its values on the host for the moments; this service does that "
            f"for a last axis of up to {MAX_LOG_ARANGE}; received {n}"
        )
    mean, std, top = (0.0, 0.0, 0.0) if 0 in ctx.shape else arange_moments(n)
    law = Law("log_arange", mean=mean, effective_std=std, low=0.0, high=top)
    formula = f"w[…, j] = ln(j + 1), j = 0 … {n - 1}: 0 … {shown(top)}"
    return ctx.plan(law, ctx.rule.call("log_arange"), formula)
