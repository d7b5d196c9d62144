"""The engine seam: what an engine is asked to produce, and the Protocol it implements."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

from service.distributions import Distribution
from service.dtypes import DType
from service.shapes import Shape, numel
from service.slices import Slice


@dataclass(frozen=True)
class Sampling:
    """One tensor to sample: its distribution and shape, the seed, the stream of its name (see
    `service.rng.stream_id`), the dtype, rows along axis 0 set to zero (an embedding's
    padding row), and the part of it wanted (None: all of it). `shape`, `numel` and the rows
    are the full tensor's; the elements an engine produces are the part's, in C order."""

    distribution: Distribution
    shape: Shape
    seed: int
    stream: int
    dtype: DType
    zero_rows: tuple[int, ...] = ()
    part: Slice | None = None

    @cached_property
    def numel(self) -> int:
        return numel(self.shape)

    @property
    def produced(self) -> int:
        """Elements of what is produced: the part's, or the whole tensor's."""
        return self.numel if self.part is None else self.part.numel


def blank_rows(view: memoryview, s: Sampling, start: int, stop: int) -> memoryview:
    """Zero the bytes of `s.zero_rows` within elements [start, stop) of `view` (in place); with
    a part, the rows it holds, at their place in it."""
    rows, shape = s.zero_rows, s.shape
    if rows and s.part is not None:
        (first, last), shape = s.part.bounds[0], s.part.shape
        rows = tuple(r - first for r in rows if first <= r < last)
    if rows and shape[0]:
        row, size = numel(shape) // shape[0], s.dtype.itemsize
        for r in rows:
            lo, hi = max(r * row, start), min((r + 1) * row, stop)
            if lo < hi:
                view[(lo - start) * size : (hi - start) * size] = bytes((hi - lo) * size)
    return view


class Engine(Protocol):
    """Produces the little-endian bytes of elements [start, stop) of a flattened tensor (of the
    sampling's part, when it has one: its runs of the full tensor, service.engines.runs).

    Every engine gives the same bytes for the same Sampling (algorithm v1, service.rng);
    structured kinds (orthogonal, delta_orthogonal) are equal to rounding only.
    """

    name: str

    def devices(self) -> tuple[str, ...]: ...

    def generate(self, sampling: Sampling, start: int, stop: int, device: str) -> memoryview: ...
