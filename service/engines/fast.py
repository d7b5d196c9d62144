"""The fused C kernel (`_fastcore`, built at install when a compiler is there), split across
threads. Same bytes as the reference path; `available()` says whether it was built."""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from types import ModuleType
from typing import Any

import ml_dtypes
import numpy as np
import numpy.typing as npt

from service.distributions import RANDOM, Normal, Random, Sparse, TruncatedNormal, Uniform
from service.engines.base import Sampling
from service.engines.values import truncation

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
MIN_SPLIT = 1 << 16  # elements below which one thread does it all
I64 = npt.NDArray[np.int64]


BUILDS = ("portable", "avx2", "avx512")  # the kernel's builds, lowest first


def _load() -> ModuleType | None:
    try:
        from service.engines import _fastcore  # type: ignore[attr-defined]
    except ImportError:
        return None
    if not hasattr(_fastcore, "generate_bf16"):  # a build older than its source: not used
        logging.getLogger("weightgen.kernel").warning(
            "the fused kernel was built from an older _fastcore.c; rebuild it (make, or "
            "python setup.py build_ext --inplace); the reference path runs"
        )
        return None
    wanted = os.environ.get("WEIGHTGEN_KERNEL", "")
    if wanted and wanted != _fastcore.isa:  # the kernel took the best it has instead
        why = "is beyond this CPU" if wanted in BUILDS else "is not portable, avx2 or avx512"
        logging.getLogger("weightgen.kernel").warning(
            "WEIGHTGEN_KERNEL=%s %s; the %s build runs", wanted, why, _fastcore.isa
        )
    return _fastcore  # type: ignore[no-any-return]


CORE = _load()


def available() -> bool:
    return CORE is not None


def isa() -> str | None:
    """Which build of the kernel runs: "avx512" or "avx2" (intrinsics) or "portable" (C);
    None where it was not built."""
    return None if CORE is None else str(CORE.isa)


def supports(s: Sampling) -> bool:
    return CORE is not None and isinstance(s.distribution, RANDOM)


def _kind(d: type[Random]) -> int:
    """The kernel's number for a random kind (its `enum kind`)."""
    if CORE is None:
        raise RuntimeError("the fused kernel was not built")
    names = {
        Normal: "KIND_NORMAL",
        Sparse: "KIND_NORMAL",  # its zeros are set after, on the bytes (engines.sparse)
        TruncatedNormal: "KIND_TRUNCATED_NORMAL",
        Uniform: "KIND_UNIFORM",
    }
    return int(getattr(CORE, names[d]))


NO_TRUNCATION = (0.0, 0.0, 0.0, 0.0, 1.0)  # t_lo, t_hi, t_low_cdf, t_mass, t_sign


class Draw:
    """A random distribution as the kernel takes it: its enum kind, (seed, stream, wide), and
    its parameters in `_fastcore`'s argument order."""

    def __init__(
        self,
        kind: type[Random],
        s: tuple[int, int, bool],
        *,
        loc: float = 0.0,
        sigma: float = 0.0,
        low: float = 0.0,
        width: float = 0.0,
        trunc: tuple[float, float, float, float, float] = NO_TRUNCATION,
    ) -> None:
        if CORE is None:
            raise RuntimeError("the fused kernel was not built")
        seed, stream, wide = s
        self.core: ModuleType = CORE
        self.head = (_kind(kind),)
        self.tail = (seed, stream, int(wide), loc, sigma, low, width, *trunc)

    @classmethod
    def of(cls, s: Sampling) -> Draw:
        d = s.distribution
        if not isinstance(d, RANDOM):
            raise ValueError(f"the fused kernel does not draw kind {d.kind!r}")
        return cls(type(d), (s.seed, s.stream, s.dtype.words == 2), **_arguments(d))

    def generate(self, out: Any, start: int, stop: int) -> None:
        """`_fastcore.generate`: values [start, stop) into `out`."""
        self.core.generate(out, *self.head, start, stop, *self.tail)

    def generate_runs(self, out: Any, starts: I64, lengths: I64) -> None:
        """`_fastcore.generate_runs`: the values of runs of the full tensor's elements (int64
        starts and lengths), one after another in `out`."""
        self.core.generate_runs(out, *self.head, starts, lengths, *self.tail)

    def generate_bf16(self, out: Any, start: int, stop: int, *, exact: bool = False) -> int:
        """`_fastcore.generate_bf16`: values [start, stop) as bfloat16 bits into `out` (uint16),
        the same as `generate`'s float32 narrowed; returns how many the float32 Φ⁻¹ left to the
        float64 path (`exact`: all of them; docs/decisions.md)."""
        return int(self.core.generate_bf16(out, *self.head, start, stop, *self.tail, exact))

    def generate_runs_bf16(
        self, out: Any, starts: I64, lengths: I64, *, exact: bool = False
    ) -> int:
        """`generate_runs` as bfloat16 bits, as `generate_bf16`."""
        return int(
            self.core.generate_runs_bf16(out, *self.head, starts, lengths, *self.tail, exact)
        )


def standard_normals(count: int, seed: int, stream: int) -> npt.NDArray[np.float64]:
    """N(0, 1) values [0, count) of a stream in float64, 52-bit uniforms: what
    `rng.normal_ppf(rng.uniform(..., wide=True))` gives (z * 1 + 0 is z: Φ⁻¹ never gives -0),
    without that path's float64 temporaries."""
    out = np.empty(count, dtype=np.float64)
    Draw(Normal, (seed, stream, True), sigma=1.0).generate(out, 0, count)
    return out


class FastKernel:
    """Fills a float32 (or, for float64 output, float64) buffer with values [start, stop)."""

    def __init__(self, threads: int) -> None:
        self.threads = max(1, threads)
        self.pool = (
            ThreadPoolExecutor(self.threads - 1, "weightgen-kernel") if self.threads > 1 else None
        )

    def fill(self, out: Any, s: Sampling, start: int, stop: int) -> None:
        """Values [start, stop) into `out`: float64 or float32, or bfloat16 by the kernel's
        bfloat16 call (float32 values narrowed chunk by chunk, or made by its exact float32
        shortcut: docs/decisions.md)."""
        draw = Draw.of(s)
        bf16 = out.dtype == BFLOAT16
        view = memoryview(out.view(np.uint16) if bf16 else out).cast("B")
        size = out.itemsize

        def part(lo: int, hi: int) -> None:
            if bf16:
                draw.generate_bf16(out[lo:hi].view(np.uint16), start + lo, start + hi)
            else:
                draw.generate(view[lo * size : hi * size], start + lo, start + hi)

        self._split(stop - start, part)

    def fill_runs(self, out: Any, s: Sampling, starts: I64, lengths: I64) -> None:
        """Fills `out` with the values of runs of the full tensor's elements (starts, lengths),
        one after another: one kernel call per thread, split by elements, not by run; dtypes
        as for `fill`."""
        draw = Draw.of(s)
        ends = np.cumsum(lengths)
        bf16 = out.dtype == BFLOAT16

        def part(lo: int, hi: int) -> None:
            runs = _between(starts, lengths, ends, lo, hi)
            if bf16:
                draw.generate_runs_bf16(out[lo:hi].view(np.uint16), *runs)
            else:
                draw.generate_runs(out[lo:hi], *runs)

        self._split(int(ends[-1]) if len(ends) else 0, part)

    def _split(self, n: int, part: Callable[[int, int], None]) -> None:
        """`part(lo, hi)` over output elements [0, n), one even share per thread (one thread
        below MIN_SPLIT); the calling thread takes the first share itself: one hand-off fewer,
        and it is awake."""
        parts = self.threads if self.pool is not None and n >= MIN_SPLIT else 1
        edges = [n * i // parts for i in range(parts + 1)]
        shares = [(lo, hi) for lo, hi in itertools.pairwise(edges) if hi > lo]
        if not shares:
            return
        pool = self.pool
        others = [pool.submit(part, *share) for share in shares[1:]] if pool else []
        _join(lambda: part(*shares[0]), others)


def _join(first: Callable[[], None], others: list[Future[None]]) -> None:
    """The first part in this thread, then every other part waited for, even when the first
    raised: the buffer they write must not go back to a caller (or a pool of spare buffers)
    before they end."""
    try:
        first()
    finally:
        wait(others)
    for f in others:
        f.result()


def _between(starts: I64, lengths: I64, ends: I64, lo: int, hi: int) -> tuple[I64, I64]:
    """The runs of output elements [lo, hi), the first and the last trimmed to them."""
    first = int(np.searchsorted(ends, lo, side="right"))
    last = int(np.searchsorted(ends, hi, side="left")) + 1
    mine_starts, mine_lengths = starts[first:last].copy(), lengths[first:last].copy()
    skip = lo - (int(ends[first]) - int(lengths[first]))
    mine_starts[0] += skip
    mine_lengths[0] -= skip
    mine_lengths[-1] -= int(ends[last - 1]) - hi
    return mine_starts, mine_lengths


def _arguments(d: Random) -> dict[str, Any]:
    """The kernel's parameters of a distribution (loc, sigma; low, width; the truncation)."""
    if isinstance(d, Uniform):
        return {"low": d.low, "width": d.high - d.low}
    if isinstance(d, Normal):
        return {"loc": d.loc, "sigma": d.scale}
    if isinstance(d, Sparse):
        return {"loc": 0.0, "sigma": d.scale}
    tr = truncation(d.alpha, d.beta)
    return {"loc": d.loc, "sigma": d.scale, "trunc": (tr.lo, tr.hi, tr.low_cdf, tr.mass, tr.sign)}
