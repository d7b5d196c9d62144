"""Algorithm v1: the portable counter-based generator and its transforms.

One implementation, written with Python operators on "array" objects, runs unchanged on numpy
(uint64 words, float64 values) and torch (int64 words, on CPU or CUDA): the few functions the
two libraries spell differently come from an `ArrayOps` adapter that each engine provides.

The contract (docs/reproducibility.md):

- words: Philox4x32-10 (Salmon et al., SC'11) keyed by the 64-bit seed (low word, high word);
  counter = (block low, block high, stream low, stream high), the stream being the first 8 bytes
  of SHA-256 of the tensor's name (little-endian); block b yields words 4b … 4b+3.
- element i of the C-order flattened tensor uses word i (words 2i, 2i+1 for float64 output).
- uniform u = (w + 0.5)·2^-32, or (m + 0.5)·2^-52 with m = (w0 << 20) | (w1 >> 12) for
  float64 output: always in (0, 1), exact in float64.
- normal: Φ⁻¹(u) by Wichura's AS241 in float64, with this module's own log.
- truncated normal on [α, β]: Φ⁻¹(Φ(α) + u·(Φ(β) − Φ(α))) (mirrored into the lower half when
  α > 0), clamped to [α, β]; the two Φ values computed once on the host, in decimal arithmetic.
- value = x·σ + μ (or u·(high − low) + low) in float64, then one cast per step: float64 → float32
  (round to nearest even) → output dtype (round to nearest even; float8_e4m3fn saturates).

Only + − × ÷ √, comparisons, selects and frexp are used on values, each as its own operation,
so every IEEE-754 engine gives the same bits. No fused multiply-add, no library log or erfinv.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any, Protocol

ALGORITHM = "philox4x32-10+as241-f64/v1"

MASK32 = 0xFFFFFFFF
PHILOX_M0 = 0xD2511F53  # round multipliers (Random123 philox.h)
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9  # Weyl key increments: golden ratio, √3 − 1
PHILOX_W1 = 0xBB67AE85
PHILOX_ROUNDS = 10

TWO_M32 = 2.0**-32
TWO_M52 = 2.0**-52
P_MAX = 1.0 - 2.0**-53  # the largest double below 1

# AS241 (Wichura 1988, PPND16), coefficients of degree 0 … 7
AS241_A = (
    3.3871328727963666080e0,
    1.3314166789178437745e2,
    1.9715909503065514427e3,
    1.3731693765509461125e4,
    4.5921953931549871457e4,
    6.7265770927008700853e4,
    3.3430575583588128105e4,
    2.5090809287301226727e3,
)
AS241_B = (
    1.0,
    4.2313330701600911252e1,
    6.8718700749205790830e2,
    5.3941960214247511077e3,
    2.1213794301586595867e4,
    3.9307895800092710610e4,
    2.8729085735721942674e4,
    5.2264952788528545610e3,
)
AS241_C = (
    1.42343711074968357734e0,
    4.63033784615654529590e0,
    5.76949722146069140550e0,
    3.64784832476320460504e0,
    1.27045825245236838258e0,
    2.41780725177450611770e-1,
    2.27238449892691845833e-2,
    7.74545014278341407640e-4,
)
AS241_D = (
    1.0,
    2.05319162663775882187e0,
    1.67638483018380384940e0,
    6.89767334985100004550e-1,
    1.48103976427480074590e-1,
    1.51986665636164571966e-2,
    5.47593808499534494600e-4,
    1.05075007164441684324e-9,
)
AS241_E = (
    6.65790464350110377720e0,
    5.46378491116411436990e0,
    1.78482653991729133580e0,
    2.96560571828504891230e-1,
    2.65321895265761230930e-2,
    1.24266094738807843860e-3,
    2.71155556874348757815e-5,
    2.01033439929228813265e-7,
)
AS241_F = (
    1.0,
    5.99832206555887937690e-1,
    1.36929880922735805310e-1,
    1.48753612908506148525e-2,
    7.86869131145613259100e-4,
    1.84631831751005468180e-5,
    1.42151175831644588870e-7,
    2.04426310338993978564e-15,
)

# log(r) = e·ln2_hi + (e·ln2_lo + 2s·Σ z^k/(2k+1)), s = (m−1)/(m+1), z = s² (fdlibm's split)
LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
SQRT_HALF = 0.70710678118654752440
LOG_SERIES = tuple(1.0 / (2 * k + 1) for k in range(12))  # 1, 1/3, …, 1/23


class FloatOps(Protocol):
    """What `log` (and service.logspace) needs beyond Python operators: arrays or Python floats."""

    def to_float(self, ints: Any) -> Any: ...  # exact conversion to float64
    def where(self, cond: Any, a: Any, b: Any) -> Any: ...
    def frexp(self, x: Any) -> tuple[Any, Any]: ...  # mantissa in [0.5, 1), integer exponent


class ArrayOps(FloatOps, Protocol):
    """What an engine's array library provides beyond Python operators."""

    def arange(self, start: int, stop: int) -> Any: ...  # 64-bit integer words
    def interleave(self, lanes: Sequence[Any]) -> Any: ...  # x0[0] x1[0] x2[0] x3[0] x0[1] …
    def empty_like(self, x: Any) -> Any: ...
    def sqrt(self, x: Any) -> Any: ...
    def indices(self, index: Any) -> Any: ...  # a numpy int64 array, as 64-bit integer words


# --------------------------------------------------------------------------------------------
# Philox4x32-10


def key_words(seed: int) -> tuple[int, int]:
    return seed & MASK32, (seed >> 32) & MASK32


def stream_id(name: str) -> int:
    """The 64-bit stream of a tensor: the first 8 bytes of SHA-256(name), little-endian."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


def substream(stream: int, purpose: str) -> int:
    """A stream of its own for a second use of a tensor's randomness (sparse's mask keys): the
    first 8 bytes of SHA-256 of the stream's 8 bytes (little-endian) then `purpose` in UTF-8,
    read little-endian."""
    data = stream.to_bytes(8, "little") + purpose.encode("utf-8")
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "little")


def philox(counter: Sequence[Any], key: tuple[int, int]) -> tuple[Any, Any, Any, Any]:
    """Philox4x32-10 on arrays (or ints) of 32-bit values held in 64-bit integers.

    One round: (hi0, lo0) = M0·c0, (hi1, lo1) = M1·c2;
    c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0); the key is bumped by (W0, W1) each round.
    A signed 64-bit product wraps but keeps its bits; the masks recover both halves.
    """
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for r in range(PHILOX_ROUNDS):
        p0 = c0 * PHILOX_M0
        p1 = c2 * PHILOX_M1
        rk0 = (k0 + r * PHILOX_W0) & MASK32
        rk1 = (k1 + r * PHILOX_W1) & MASK32
        c0, c1, c2, c3 = (
            ((p1 >> 32) & MASK32) ^ c1 ^ rk0,
            p1 & MASK32,
            ((p0 >> 32) & MASK32) ^ c3 ^ rk1,
            p0 & MASK32,
        )
    return c0, c1, c2, c3


def words(ops: ArrayOps, seed: int, stream: int, start: int, stop: int) -> Any:
    """Words [start, stop) of the stream, as 64-bit integers holding 32-bit values."""
    if stop <= start:
        return ops.arange(0, 0)
    first, last = start // 4, (stop - 1) // 4 + 1
    blocks = ops.arange(first, last)
    counter = (blocks & MASK32, (blocks >> 32) & MASK32, stream & MASK32, stream >> 32)
    lanes = philox(counter, key_words(seed))
    out = ops.interleave(lanes)
    offset = start - 4 * first
    return out[offset : offset + stop - start]


def uniform(ops: ArrayOps, seed: int, stream: int, start: int, stop: int, wide: bool) -> Any:
    """u in (0, 1) for elements [start, stop): 32 random bits, or 52 when `wide` (float64)."""
    if not wide:
        return (ops.to_float(words(ops, seed, stream, start, stop)) + 0.5) * TWO_M32
    w = words(ops, seed, stream, 2 * start, 2 * stop)
    m = (w[0::2] << 20) | (w[1::2] >> 12)
    return (ops.to_float(m) + 0.5) * TWO_M52


def words_at(ops: ArrayOps, seed: int, stream: int, index: Any) -> Any:
    """Words `index` (an array of word numbers) of the stream, each from its own block: the
    words of scattered elements (a slice's), equal to those `words` gives for a range."""
    blocks = index >> 2
    lane = index & 3
    counter = (blocks & MASK32, (blocks >> 32) & MASK32, stream & MASK32, stream >> 32)
    x0, x1, x2, x3 = philox(counter, key_words(seed))
    return ops.where(lane == 0, x0, ops.where(lane == 1, x1, ops.where(lane == 2, x2, x3)))


def uniform_at(ops: ArrayOps, seed: int, stream: int, index: Any, wide: bool) -> Any:
    """`uniform` of the elements `index` (an array of element numbers, in any order)."""
    if not wide:
        return (ops.to_float(words_at(ops, seed, stream, index)) + 0.5) * TWO_M32
    high, low = words_at(ops, seed, stream, 2 * index), words_at(ops, seed, stream, 2 * index + 1)
    return (ops.to_float((high << 20) | (low >> 12)) + 0.5) * TWO_M52


# --------------------------------------------------------------------------------------------
# Transforms, float64


def horner(coefs: Sequence[float], x: Any) -> Any:
    """coefs[0] + x·(coefs[1] + x·(…)), evaluated from the highest degree down."""
    acc: Any = coefs[-1]
    for c in reversed(coefs[:-1]):
        acc = acc * x + c
    return acc


def log(ops: FloatOps, x: Any) -> Any:
    """Natural log of positive normal x from correctly rounded operations only.

    x = m·2^e with m in [√½, √2); log x = e·ln2_hi + (e·ln2_lo + 2s·Σ_{k<12} z^k/(2k+1)),
    s = (m − 1)/(m + 1), z = s². Relative error below 2.3e-16 on [1e-300, 1].
    """
    m, e = ops.frexp(x)
    small = m < SQRT_HALF
    m = ops.where(small, m + m, m)
    ef = ops.to_float(e)
    ef = ops.where(small, ef - 1.0, ef)
    s = (m - 1.0) / (m + 1.0)
    logm = (s + s) * horner(LOG_SERIES, s * s)
    return ef * LN2_HI + (ef * LN2_LO + logm)


def normal_ppf(ops: ArrayOps, p: Any) -> Any:
    """Φ⁻¹(p) for p in (0, 1): Wichura's AS241 (PPND16), |error| ~ 1e-16.

    |p − ½| ≤ 0.425: q·A(r)/B(r), r = 0.180625 − q²; otherwise r = √(−log min(p, 1 − p)),
    C(r − 1.6)/D(r − 1.6) for r ≤ 5 and E(r − 5)/F(r − 5) beyond, negated below ½.
    """
    q = p - 0.5
    out = ops.empty_like(p)
    central = abs(q) <= 0.425
    qc = q[central]
    rc = 0.180625 - qc * qc
    out[central] = qc * horner(AS241_A, rc) / horner(AS241_B, rc)
    tail = ~central
    qt = q[tail]
    pt = p[tail]
    r = ops.sqrt(-log(ops, ops.where(qt < 0.0, pt, 1.0 - pt)))
    x = ops.empty_like(r)
    near = r <= 5.0
    rn = r[near] - 1.6
    x[near] = horner(AS241_C, rn) / horner(AS241_D, rn)
    far = ~near
    rf = r[far] - 5.0
    x[far] = horner(AS241_E, rf) / horner(AS241_F, rf)
    out[tail] = ops.where(qt < 0.0, -x, x)
    return out


# --------------------------------------------------------------------------------------------
# The host side of a truncated normal: Φ at the bounds, decided once, in decimal arithmetic


def normal_cdf(x: float) -> float:
    """Φ(x), correctly rounded in practice and identical on every platform.

    Computed with `decimal` (exactly specified arithmetic, not the platform's libm): the
    Maclaurin series of erf for |x| < 6, Laplace's continued fraction for erfc beyond.
    """
    with localcontext() as ctx:
        ctx.prec = 60
        t = Decimal(x) / Decimal(2).sqrt()
        if abs(t) < 6:
            term, total, n = t, t, 0
            while abs(term) > Decimal(10) ** -70:
                n += 1
                term = -term * t * t / n
                total += term / (2 * n + 1)
            erf = total * 2 / _sqrt_pi()
            return float((1 + erf) / 2)
        a = abs(t)
        frac = Decimal(0)
        for k in range(400, 0, -1):
            frac = (Decimal(k) / 2) / (a + frac)
        erfc = (-(a * a)).exp() / _sqrt_pi() / (a + frac)
        return float(erfc / 2 if t < 0 else 1 - erfc / 2)


def _sqrt_pi() -> Decimal:
    # π to 64 digits; Decimal has no π of its own
    pi = Decimal("3.141592653589793238462643383279502884197169399375105820974944592")
    return pi.sqrt()


@dataclass(frozen=True)
class Truncation:
    """p = low_cdf + u·mass, z = sign·clamp(Φ⁻¹(p), lo, hi): everything the engines need."""

    lo: float
    hi: float
    low_cdf: float
    mass: float
    sign: float


def truncation(alpha: float, beta: float) -> Truncation:
    """Mirror [α, β] into the lower half when α > 0 so Φ(α) keeps its precision near 1."""
    sign = 1.0
    if alpha > 0.0:
        alpha, beta, sign = -beta, -alpha, -1.0
    low = normal_cdf(alpha)
    return Truncation(alpha, beta, low, normal_cdf(beta) - low, sign)


def truncated_ppf(ops: ArrayOps, u: Any, t: Truncation) -> Any:
    p = u * t.mass + t.low_cdf
    p = ops.where(p < P_MAX, p, P_MAX)
    z = normal_ppf(ops, p)
    z = ops.where(z < t.lo, t.lo, ops.where(z > t.hi, t.hi, z))
    return -z if t.sign < 0 else z
