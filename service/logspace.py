"""exp and expm1 from correctly rounded operations, and the two laws of Mamba's mixer built on
them (algorithm v1): `inverse_softplus_log_uniform` (dt_proj.bias) and `log_arange` (A_log).

Library exp, expm1 and log differ by an ulp between numpy, torch, CUDA and the platforms' libms,
so, as `service.rng.log` does for log, everything here is + − × ÷, comparisons, selects and
frexp, each its own IEEE-754 float64 operation, in this order (docs/reproducibility.md):

- k = (x·(1/ln 2) + 1.5·2^52) − 1.5·2^52, x/ln 2 rounded to an integer (ties to even);
  r = (x − k·ln2_hi) − k·ln2_lo with fdlibm's split of ln 2 (k·ln2_hi and the subtraction are
  exact), |r| ≤ ln2/2 + ε; p(r) = r·Σ_{j<14} r^j/(j+1)! by Horner (the first term left out is
  below 2^-56 of p); 2^k exactly, as a product of 2^(2^b) over the bits b of |k| (1/that for
  k < 0).
- exp(x) = 2^k·(p(r) + 1); expm1(x) = 2^k·p(r) + (2^k − 1), x first raised to −60 (e^−60 <
  2^−86, so expm1 is −1 there to the last bit).
- inverse_softplus_log_uniform(u): dt = exp(u·(ln high − ln low) + ln low); dt = floor where
  dt < floor; dt + log(−expm1(−dt)), `rng.log`; ln low and ln high are computed once on the
  host in decimal arithmetic (correctly rounded, no libm), their difference in float64.
- log_arange: log((i mod n) + 1), n the last axis, `rng.log`.

The code takes `rng.FloatOps` and runs on arrays (the engines) and on Python floats (`SCALARS`:
the catalogue's moments). Standard library only.
"""

from __future__ import annotations

import functools
import math
from decimal import Decimal, localcontext
from typing import Any

from service.rng import LN2_HI, LN2_LO, FloatOps, horner, log

INV_LN2 = 1.44269504088896338700e00  # 1/ln 2, rounded to float64 (fdlibm's invln2)
ROUND = 1.5 * 2.0**52  # x + ROUND − ROUND rounds x to an integer for |x| < 2^51
EXP_SERIES = tuple(1.0 / math.factorial(j + 1) for j in range(14))  # 1, 1/2!, …, 1/14!
EXPM1_FLOOR = -60.0  # expm1 is −1.0 below it (e^−60 < 2^−86)
POW2_BITS = 10  # 2^k for |k| ≤ 2^10 − 1


class Scalars:
    """`rng.FloatOps` on Python numbers."""

    def to_float(self, ints: Any) -> Any:
        return float(ints)

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        return a if cond else b

    def frexp(self, x: Any) -> tuple[Any, Any]:
        return math.frexp(x)


SCALARS = Scalars()


def pow2(ops: FloatOps, k: Any) -> Any:
    """2^k for integral float64 k, |k| ≤ 1023, exactly: from the highest bit down, every
    partial product is a power of two of at most 2^1023; 1/2^|k| is exact too."""
    negative = k < 0.0
    rest = ops.where(negative, -k, k)
    out = rest * 0.0 + 1.0
    for b in reversed(range(POW2_BITS)):
        step = float(1 << b)
        take = rest >= step
        rest = ops.where(take, rest - step, rest)
        out = ops.where(take, out * 2.0**step, out)
    return ops.where(negative, 1.0 / out, out)


def _reduced(ops: FloatOps, x: Any) -> tuple[Any, Any]:
    """(2^k, p(r)) with x = k·ln 2 + r (see the module's docstring); p(r) = expm1(r)."""
    k = (x * INV_LN2 + ROUND) - ROUND
    r = (x - k * LN2_HI) - k * LN2_LO
    return pow2(ops, k), r * horner(EXP_SERIES, r)


def exp(ops: FloatOps, x: Any) -> Any:
    """e^x for |x| ≤ 700 (2^k stays a normal number)."""
    scale, p = _reduced(ops, x)
    return scale * (p + 1.0)


def expm1(ops: FloatOps, x: Any) -> Any:
    """e^x − 1 for x ≤ 700 without cancellation near 0; −1.0 below −60."""
    x = ops.where(x < EXPM1_FLOOR, EXPM1_FLOOR, x)
    scale, p = _reduced(ops, x)
    return scale * p + (scale - 1.0)


def inverse_softplus(ops: FloatOps, dt: Any) -> Any:
    """softplus⁻¹(dt) = dt + log(−expm1(−dt)) = log(e^dt − 1), for dt ≥ 1e-300."""
    return dt + log(ops, -expm1(ops, -dt))


@functools.lru_cache(maxsize=64)
def log_bounds(low: float, high: float) -> tuple[float, float]:
    """(ln low, ln high − ln low): each log correctly rounded (decimal, 60 digits), then one
    float64 subtraction, as Mamba's `math.log(dt_max) - math.log(dt_min)`."""
    with localcontext() as ctx:
        ctx.prec = 60
        ln_low, ln_high = float(Decimal(low).ln()), float(Decimal(high).ln())
    return ln_low, ln_high - ln_low


def inverse_softplus_log_uniform(
    ops: FloatOps, u: Any, low: float, high: float, floor: float
) -> Any:
    """softplus⁻¹(max(floor, exp(u·(ln high − ln low) + ln low))) for u in (0, 1): Mamba's
    dt_proj.bias (`dt = torch.exp(torch.rand(n) * (math.log(dt_max) - math.log(dt_min)) +
    math.log(dt_min)).clamp(min=dt_init_floor)`, then `dt + torch.log(-torch.expm1(-dt))`)."""
    ln_low, width = log_bounds(low, high)
    dt = exp(ops, u * width + ln_low)
    return inverse_softplus(ops, ops.where(dt < floor, floor, dt))


def log_arange(ops: FloatOps, index: Any, n: int) -> Any:
    """ln((i mod n) + 1) of flat indices i: ln(1 … n) along a last axis of n, in every row."""
    return log(ops, ops.to_float(index % n) + 1.0)
