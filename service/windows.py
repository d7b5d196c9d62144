"""scipy's window functions, and the cosine and sine they need, computed the same everywhere.

Keras' `STFT` initializer multiplies cos(2π·t·f/N) (or −sin) by a window of
`scipy.signal.get_window`. Library cos and sin differ by an ulp between numpy, torch and CUDA,
so here every angle is a rational number of turns, 2π·p/q with integers p ≥ 0, q > 0, and:

- the reduction is exact integer arithmetic: o = ⌊8·(p mod q)/q⌋ is the octant and
  r = 8·(p mod q) − o·q; a = (π/4)·(s/q) with s = r in even octants, q − r in odd ones, so
  a ∈ [0, π/4];
- cos a and sin a are their Taylor polynomials (to a¹⁸ and a¹⁹, error below 2⁻⁵³ on [0, π/4])
  in Horner's order, from + and × only;
- the octant's symmetry swaps and negates them (exact).

Only correctly rounded operations, each on its own, so Python floats, numpy and torch give the
same bits. The code takes `Ops` (a `where` and an exact int → float64 conversion) and runs on
Python numbers (`SCALARS`) as well as on arrays. Standard library only: the catalogue (its
moments) and the engines (the values) share it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, Protocol, TypeAlias, get_args

Window: TypeAlias = Literal[
    "hann",
    "hamming",
    "blackman",
    "nuttall",
    "blackmanharris",
    "flattop",
    "bartlett",
    "triang",
    "cosine",
    "boxcar",
    "none",
]
WINDOWS: tuple[Window, ...] = get_args(Window)

# scipy.signal.windows._windows: general_cosine(M, a) = Σ_k a[k]·cos(k·x), x from −π to π
COSINE_SUMS: dict[str, tuple[float, ...]] = {
    "hann": (0.5, 0.5),  # general_hamming(M, 0.5)
    "hamming": (0.54, 0.46),  # general_hamming(M, 0.54)
    "blackman": (0.42, 0.50, 0.08),
    "nuttall": (0.3635819, 0.4891775, 0.1365995, 0.0106411),
    "blackmanharris": (0.35875, 0.48829, 0.14128, 0.01168),
    "flattop": (0.21557895, 0.41663158, 0.277263158, 0.083578947, 0.006947368),
}
QUARTER_PI = 0.78539816339744830962  # π/4, rounded to float64
SIN_SERIES = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(10))  # a, a³ … a¹⁹
COS_SERIES = tuple((-1) ** k / math.factorial(2 * k) for k in range(10))  # 1, a² … a¹⁸


class Ops(Protocol):
    """What the formulas need beyond Python operators (service.rng.ArrayOps has both)."""

    def where(self, cond: Any, a: Any, b: Any) -> Any: ...
    def to_float(self, ints: Any) -> Any: ...  # exact conversion to float64


class Scalars:
    """`Ops` on Python ints and floats."""

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        return a if cond else b

    def to_float(self, ints: Any) -> Any:
        return float(ints)


SCALARS = Scalars()


def _horner(coefs: Sequence[float], x: Any) -> Any:
    acc: Any = coefs[-1]
    for c in reversed(coefs[:-1]):
        acc = acc * x + c
    return acc


def turns(ops: Ops, p: Any, q: int) -> tuple[Any, Any]:
    """(cos, sin) of 2π·p/q for integers p ≥ 0 (an int or an integer array) and q > 0."""
    eighths = 8 * (p % q)
    octant = eighths // q
    rest = eighths - octant * q
    odd = octant % 2 == 1
    a = ops.to_float(ops.where(odd, q - rest, rest)) / float(q) * QUARTER_PI
    z = a * a
    c = _horner(COS_SERIES, z)
    s = a * _horner(SIN_SERIES, z)
    swap = (octant + 1) // 2 % 2 == 1  # octants 1, 2, 5, 6: π/2 ∓ a, 3π/2 ∓ a
    x, y = ops.where(swap, s, c), ops.where(swap, c, s)
    cos = ops.where((octant >= 2) & (octant <= 5), -x, x)
    sin = ops.where(octant >= 4, -y, y)
    return cos, sin


def window(ops: Ops, name: str, n: Any, length: int, periodic: bool) -> Any:
    """w[n] of scipy.signal.get_window(name, length, fftbins=periodic), n an integer (array).

    A periodic window is the first `length` values of the symmetric one of length + 1
    (scipy's `_extend`/`_truncate`); a window of length 1 is [1]. With L the symmetric length:
    cosine sums Σ_k a_k·(−1)^k·cos(2π·k·n/(L − 1)); bartlett 2n/(L − 1) up to the middle, then
    2 − 2n/(L − 1); triang (2m + 1)/L (L even) or 2(m + 1)/(L + 1) (L odd), m = min(n, L−1−n);
    cosine sin(π(n + ½)/L); boxcar and none 1.
    """
    one = ops.to_float(0 * n) + 1.0
    if length <= 1 or name in ("boxcar", "none"):
        return one
    size = length + 1 if periodic else length
    if name in COSINE_SUMS:
        total: Any = 0.0
        for k, a in enumerate(COSINE_SUMS[name]):
            cos, _ = turns(ops, k * n, size - 1)
            total = total + a * (-cos if k % 2 else cos)
        return total
    if name == "bartlett":
        ramp = ops.to_float(2 * n) / float(size - 1)
        return ops.where(2 * n <= size - 1, ramp, 2.0 - ramp)
    if name == "triang":
        m = ops.where(n < size - 1 - n, n, size - 1 - n)
        if size % 2 == 0:
            return ops.to_float(2 * m + 1) / float(size)
        return ops.to_float(2 * m + 2) / float(size + 1)
    if name == "cosine":
        _, sin = turns(ops, 2 * n + 1, 4 * size)
        return sin
    raise ValueError(f"unknown window {name!r}; expected one of {', '.join(WINDOWS)}")
