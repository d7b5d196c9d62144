"""The numpy engine: always available, CPU only, the reference of algorithm v1."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import ml_dtypes
import numpy as np
import numpy.typing as npt

from service.distributions import STRUCTURED
from service.dtypes import DType
from service.engines import sparse, structured
from service.engines.base import Sampling, blank_rows
from service.engines.blocks import Blocks
from service.engines.fast import FastKernel, available, standard_normals, supports
from service.engines.runs import batches
from service.engines.values import values

SPARE = 4  # float32 block buffers kept for narrowed dtypes (one per stream generating at once)
E4M3_MAX = 448.0  # largest finite float8_e4m3fn; torch saturates there, so do we

NUMPY_DTYPES: dict[str, Any] = {
    "float64": np.dtype("<f8"),
    "float32": np.dtype("<f4"),
    "float16": np.dtype("<f2"),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "float8_e4m3fn": np.dtype(ml_dtypes.float8_e4m3fn),
    "float8_e5m2": np.dtype(ml_dtypes.float8_e5m2),
    "int64": np.dtype("<i8"),
}


class NumpyOps:
    """`rng.ArrayOps` for numpy: words in uint64, values in float64."""

    def arange(self, start: int, stop: int) -> Any:
        return np.arange(start, stop, dtype=np.uint64)

    def interleave(self, lanes: Sequence[Any]) -> Any:
        return np.stack([np.asarray(x, dtype=np.uint64) for x in lanes], axis=-1).reshape(-1)

    def to_float(self, ints: Any) -> Any:
        return np.asarray(ints).astype(np.float64)

    def empty_like(self, x: Any) -> Any:
        return np.empty_like(x)

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        return np.where(cond, a, b)

    def sqrt(self, x: Any) -> Any:
        return np.sqrt(x)

    def frexp(self, x: Any) -> tuple[Any, Any]:
        m, e = np.frexp(x)
        return m, e

    def indices(self, index: Any) -> Any:
        return np.asarray(index).astype(np.uint64)


def cast(x: npt.NDArray[np.float64], dtype: DType) -> npt.NDArray[Any]:
    """float64 → float32 → dtype, each step rounding to nearest even (algorithm v1)."""
    if dtype.name == "float64":
        return x.astype("<f8", copy=False)
    if dtype.integer:  # constants only (plan checks), so the values are integral
        return x.astype(NUMPY_DTYPES[dtype.name])
    with np.errstate(over="ignore"):  # overflow to ±inf is the defined result
        return narrow(x.astype("<f4"), dtype)


def narrow(x32: npt.NDArray[np.float32], dtype: DType) -> npt.NDArray[Any]:
    """float32 → dtype (round to nearest even; float8_e4m3fn saturates like torch)."""
    if dtype.name == "float32":
        return x32
    with np.errstate(over="ignore"):
        if dtype.name == "float8_e4m3fn":
            x32 = np.clip(x32, -E4M3_MAX, E4M3_MAX)
        return x32.astype(NUMPY_DTYPES[dtype.name])


class NumpyEngine:
    name = "numpy"

    def __init__(self, chunk: int = 1 << 17, fast: bool = True, threads: int = 1) -> None:
        """`fast`: use the fused C kernel where it was built (same bytes); `threads` for it."""
        self.chunk = chunk
        self.ops = NumpyOps()
        self.kernel = FastKernel(threads) if fast and available() else None
        self.memo = structured.Memo(draw=standard_normals if self.kernel else None)
        self.thresholds = sparse.Thresholds()
        self.spare: list[npt.NDArray[np.float32]] = []  # float32 buffers for values to narrow
        self.blocks = Blocks()  # the kernel's output arrays, reused once let go (blocks.py)
        self.lock = threading.Lock()

    @property
    def fast(self) -> bool:
        return self.kernel is not None

    def devices(self) -> tuple[str, ...]:
        return ("cpu",)

    def generate(
        self,
        sampling: Sampling,
        start: int,
        stop: int,
        device: str = "cpu",  # noqa: ARG002 - the numpy engine has one device
    ) -> memoryview:
        if self.kernel is not None and stop > start and supports(sampling):
            out = self._fast(self.kernel, sampling, start, stop)
        else:
            out = self._reference(sampling, start, stop)
        view = blank_rows(out.view(np.uint8).data, sampling, start, stop)
        return sparse.mask(self.ops, self.thresholds, view, sampling, start, stop)

    def _fast(self, kernel: FastKernel, s: Sampling, start: int, stop: int) -> npt.NDArray[Any]:
        """The fused kernel: a range in one call, a part's runs in one call per MAX_RUNS."""
        if s.dtype.words == 2:
            return self._fill(kernel, self.blocks.empty(stop - start, "<f8"), s, start, stop)
        if s.dtype.name == "float32":
            return self._fill(kernel, self.blocks.empty(stop - start, "<f4"), s, start, stop)
        if s.dtype.name == "bfloat16":  # made as bfloat16 by the kernel's threads
            out = self.blocks.empty(stop - start, NUMPY_DTYPES["bfloat16"])
            return self._fill(kernel, out, s, start, stop)
        raw = self._take(stop - start)
        try:  # the values leave in a new array: the float32 buffer never leaves this call
            return narrow(self._fill(kernel, raw[: stop - start], s, start, stop), s.dtype)
        finally:
            with self.lock:
                if len(self.spare) < SPARE:
                    self.spare.append(raw)

    @staticmethod
    def _fill(
        kernel: FastKernel, out: npt.NDArray[Any], s: Sampling, start: int, stop: int
    ) -> npt.NDArray[Any]:
        """The kernel's values [start, stop) into `out` (float64, float32 or bfloat16)."""
        if s.part is None:
            kernel.fill(out, s, start, stop)
        else:
            for lo, hi, starts, lengths in batches(s, start, stop):
                kernel.fill_runs(out[lo - start : hi - start], s, starts, lengths)
        return out

    def _take(self, n: int) -> npt.NDArray[np.float32]:
        """A float32 buffer of at least n values, kept from an earlier block where one is free:
        a new one per block would be new pages every block, which the OS must fault in (the
        server's system time that `bench.checkpoint` prints)."""
        with self.lock:
            for i, kept in enumerate(self.spare):
                if kept.size >= n:
                    return self.spare.pop(i)
        return np.empty(n, dtype="<f4")

    def _reference(self, s: Sampling, start: int, stop: int) -> npt.NDArray[Any]:
        out = np.empty(max(stop - start, 0), dtype=NUMPY_DTYPES[s.dtype.name])
        if stop > start and isinstance(s.distribution, STRUCTURED):
            out[:] = cast(structured.cut(self.memo.get(self.ops, s), s, start, stop), s.dtype)
            return out
        for lo in range(start, stop, self.chunk):
            hi = min(lo + self.chunk, stop)
            out[lo - start : hi - start] = cast(values(self.ops, s, lo, hi), s.dtype)
        return out
