"""The engine seam: what an engine is asked to produce, and the Protocol it implements."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

from service.distributions import Distribution
from service.dtypes import DType
from service.shapes import Shape, numel


@dataclass(frozen=True)
class Sampling:
    """One tensor to sample: its distribution and shape, the seed, the stream of its name (see
    `service.rng.stream_id`), the dtype, and rows along axis 0 set to zero (an embedding's
    padding row)."""

    distribution: Distribution
    shape: Shape
    seed: int
    stream: int
    dtype: DType
    zero_rows: tuple[int, ...] = ()

    @cached_property
    def numel(self) -> int:
        return numel(self.shape)


def blank_rows(view: memoryview, s: Sampling, start: int, stop: int) -> memoryview:
    """Zero the bytes of `s.zero_rows` within elements [start, stop) of `view` (in place)."""
    if s.zero_rows:
        row, size = s.numel // s.shape[0], s.dtype.itemsize
        for r in s.zero_rows:
            lo, hi = max(r * row, start), min((r + 1) * row, stop)
            if lo < hi:
                view[(lo - start) * size : (hi - start) * size] = bytes((hi - lo) * size)
    return view


class Engine(Protocol):
    """Produces the little-endian bytes of elements [start, stop) of a flattened tensor.

    Every engine gives the same bytes for the same Sampling (algorithm v1, service.rng);
    structured kinds (orthogonal, delta_orthogonal) are equal to rounding only.
    """

    name: str

    def devices(self) -> tuple[str, ...]: ...

    def generate(self, sampling: Sampling, start: int, stop: int, device: str) -> memoryview: ...
