"""What an engine is asked to draw: a tagged union of distributions with non-optional fields.

`service.plan` builds one from a scheme's plan; engines read only this (never a scheme), so a
new kind of tensor is a new class here and a case in the engines. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypeAlias


@dataclass(frozen=True)
class Normal:
    """loc + scale·z, z ~ N(0, 1)."""

    kind: ClassVar[str] = "normal"
    loc: float
    scale: float


@dataclass(frozen=True)
class TruncatedNormal:
    """loc + scale·z, z ~ N(0, 1) restricted to [alpha, beta] (bounds in units of scale)."""

    kind: ClassVar[str] = "truncated_normal"
    loc: float
    scale: float
    alpha: float
    beta: float


@dataclass(frozen=True)
class Uniform:
    """U(low, high): low + u·(high − low)."""

    kind: ClassVar[str] = "uniform"
    low: float
    high: float


@dataclass(frozen=True)
class Constant:
    kind: ClassVar[str] = "constant"
    value: float


@dataclass(frozen=True)
class Identity:
    """gain on the diagonal of a matrix, zero elsewhere."""

    kind: ClassVar[str] = "identity"
    gain: float


@dataclass(frozen=True)
class Dirac:
    """torch dirac_: 1 at [g·out/groups + d, d, centre…] for d < min(out/groups, in)."""

    kind: ClassVar[str] = "dirac"
    groups: int


@dataclass(frozen=True)
class Orthogonal:
    """A matrix with orthonormal columns along `kept_axis` (rows if fewer), times gain."""

    kind: ClassVar[str] = "orthogonal"
    gain: float
    kept_axis: int


@dataclass(frozen=True)
class DeltaOrthogonal:
    """Zeros but for an orthogonal (in, out) centre tap, times gain (layout (*k, in, out));
    `kept_axis` (0 or 1) is the block's axis that runs along an orthogonal matrix's columns:
    1 draws the (in, out) matrix, 0 the transpose of an (out, in) one (JAX column_axis)."""

    kind: ClassVar[str] = "delta_orthogonal"
    gain: float
    kept_axis: int


@dataclass(frozen=True)
class Sparse:
    """N(0, scale²) (the values of `Normal(0, scale)`), then in each column of the (rows, cols)
    matrix the `zeros` rows with the smallest mask keys set to 0 (torch sparse_; the keys and
    their order: service.engines.sparse)."""

    kind: ClassVar[str] = "sparse"
    scale: float
    zeros: int


@dataclass(frozen=True)
class Stft:
    """Keras STFT kernel (T, 1, F): trig(2π·t·f/(2(F − 1)))·window[t]/divisor, trig = cos, or
    −sin when `imag`; `window` a name of service.windows ("none": no window, no divisor)."""

    kind: ClassVar[str] = "stft"
    imag: bool
    window: str
    periodic: bool
    divisor: float


@dataclass(frozen=True)
class InverseSoftplusLogUniform:
    """softplus⁻¹(max(floor, dt)), dt log-uniform on [low, high] (low, high > 0): Mamba's
    dt_proj.bias, from one uniform per element (service.logspace)."""

    kind: ClassVar[str] = "inverse_softplus_log_uniform"
    low: float
    high: float
    floor: float


@dataclass(frozen=True)
class LogArange:
    """ln(j + 1) at index j of the last axis, in every row (Mamba's A_log, S4D-real)."""

    kind: ClassVar[str] = "log_arange"


Distribution: TypeAlias = (
    Normal
    | TruncatedNormal
    | Uniform
    | Constant
    | Identity
    | Dirac
    | Orthogonal
    | DeltaOrthogonal
    | Sparse
    | Stft
    | InverseSoftplusLogUniform
    | LogArange
)
# one generator word (or two) per element; a Sparse's zeros are set after (engines.sparse).
# RANDOM: the kinds the fused kernel draws; DRAWN adds those only the reference path draws
Random: TypeAlias = Normal | TruncatedNormal | Uniform | Sparse
RANDOM = (Normal, TruncatedNormal, Uniform, Sparse)
Drawn: TypeAlias = Random | InverseSoftplusLogUniform
DRAWN = (*RANDOM, InverseSoftplusLogUniform)
STRUCTURED = (Orthogonal, DeltaOrthogonal)  # the whole tensor first, then QR
