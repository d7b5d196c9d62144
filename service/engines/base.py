"""The engine seam: what an engine is asked to produce, and the Protocol it implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from service import rng
from service.dtypes import DType
from service.schemes import SchemePlan


@dataclass(frozen=True)
class Sampling:
    """One tensor to sample: the resolved scheme, the seed, the name's stream, the dtype."""

    scheme: SchemePlan
    seed: int
    name: str
    dtype: DType
    zero_rows: tuple[int, ...] = ()  # rows (along axis 0) set to zero, e.g. an embedding's padding
    stream: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stream", rng.stream_id(self.name))

    @property
    def numel(self) -> int:
        n = 1
        for d in self.scheme.shape:
            n *= d
        return n


def blank_rows(view: memoryview, s: Sampling, start: int, stop: int) -> memoryview:
    """Zero the bytes of `s.zero_rows` within elements [start, stop) of `view` (in place)."""
    if s.zero_rows:
        row, size = s.numel // s.scheme.shape[0], s.dtype.itemsize
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
