"""The torch engine: the same algorithm v1 on torch tensors, on the CPU or a CUDA device.

Eager torch runs each operation as its own kernel, so nothing is contracted into a fused
multiply-add and the float64 results equal the numpy engine's bit for bit. One exception is
handled: torch's CPU sqrt is not correctly rounded, so the CPU path takes numpy's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from service.distributions import STRUCTURED
from service.dtypes import DType
from service.engines import sparse, structured
from service.engines.base import Sampling, blank_rows
from service.engines.numpy_engine import E4M3_MAX, NumpyOps
from service.engines.values import values

TORCH_DTYPES: dict[str, torch.dtype] = {
    "float64": torch.float64,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float8_e4m3fn": torch.float8_e4m3fn,
    "float8_e5m2": torch.float8_e5m2,
    "int64": torch.int64,
}


class TorchOps:
    """`rng.ArrayOps` for torch: words in int64 (products wrap, bits survive), values in float64."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def arange(self, start: int, stop: int) -> Any:
        return torch.arange(start, stop, dtype=torch.int64, device=self.device)

    def interleave(self, lanes: Sequence[Any]) -> Any:
        full = [self._tensor(x) for x in lanes]
        size = max(x.numel() for x in full)
        return torch.stack([x.expand(size) for x in full], dim=-1).reshape(-1)

    def _tensor(self, x: Any) -> torch.Tensor:
        if isinstance(x, torch.Tensor):
            return x
        return torch.tensor(x, dtype=torch.int64, device=self.device)

    def to_float(self, ints: Any) -> Any:
        return ints.to(torch.float64)

    def empty_like(self, x: Any) -> Any:
        return torch.empty_like(x)

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        return torch.where(cond, a, b)

    def sqrt(self, x: Any) -> Any:
        # torch's CPU sqrt (SLEEF, 0.5001 ulp) is not correctly rounded; numpy's is, and it
        # shares the memory. CUDA's double sqrt is IEEE correctly rounded.
        if x.device.type == "cpu":
            return torch.from_numpy(np.sqrt(x.numpy()))
        return torch.sqrt(x)

    def frexp(self, x: Any) -> tuple[Any, Any]:
        m, e = torch.frexp(x)
        return m, e

    def indices(self, index: Any) -> Any:
        return torch.from_numpy(index).to(self.device)


def cast(x: torch.Tensor, dtype: DType) -> torch.Tensor:
    """float64 → float32 → dtype, each step rounding to nearest even (algorithm v1)."""
    if dtype.name == "float64":
        return x
    if dtype.integer:  # constants only (plan checks), so the values are integral
        return x.to(TORCH_DTYPES[dtype.name])
    x32 = x.to(torch.float32)
    if dtype.name == "float8_e4m3fn":
        x32 = x32.clamp(-E4M3_MAX, E4M3_MAX)
    return x32.to(TORCH_DTYPES[dtype.name])


class TorchEngine:
    name = "torch"

    def __init__(self, chunk: int = 1 << 20) -> None:
        self.chunk = chunk
        self.memo = structured.Memo()
        self.thresholds = sparse.Thresholds()

    def devices(self) -> tuple[str, ...]:
        return ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)

    def generate(
        self, sampling: Sampling, start: int, stop: int, device: str = "cpu"
    ) -> memoryview:
        host = self.fill(sampling, start, stop, device).cpu().contiguous().view(torch.uint8)
        view = blank_rows(host.numpy().data, sampling, start, stop)
        return sparse.mask(NumpyOps(), self.thresholds, view, sampling, start, stop)

    def fill(self, sampling: Sampling, start: int, stop: int, device: str = "cpu") -> torch.Tensor:
        """Values [start, stop) as a tensor of the sampling's dtype on `device` (zero_rows and a
        Sparse's zeros not yet set: `generate` does that on the host bytes)."""
        dev = torch.device(device)
        ops = TorchOps(dev)
        dtype = TORCH_DTYPES[sampling.dtype.name]
        out = torch.empty(max(stop - start, 0), dtype=dtype, device=dev)
        if stop > start and isinstance(sampling.distribution, STRUCTURED):
            built = self.memo.get(NumpyOps(), sampling)
            full = np.array(structured.cut(built, sampling, start, stop))  # the memo is read-only
            out.copy_(cast(torch.from_numpy(full).to(dev), sampling.dtype))
        else:
            for lo in range(start, stop, self.chunk):
                hi = min(lo + self.chunk, stop)
                out[lo - start : hi - start] = cast(values(ops, sampling, lo, hi), sampling.dtype)
        return out
