"""A part of a tensor as runs of the full tensor's flattened elements.

A slice's elements, in C order, are runs of consecutive elements of the full tensor: the
innermost axis that is cut and every axis after it make one run (`run_length`), and the axes
before it count the runs. Elements [lo, hi) of the part are runs `lo // L` … of them, the
first and the last trimmed. The fused kernel takes the runs (starts and lengths) in one call;
the reference path takes each element's index.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from service.engines.base import Sampling
from service.slices import Slice

I64 = npt.NDArray[np.int64]
MAX_RUNS = 1 << 16  # runs handed over at once: 1 MiB of starts and lengths


def run_length(part: Slice, shape: tuple[int, ...]) -> tuple[int, int]:
    """(axis, length): the innermost axis the part cuts, and the elements of one run (that
    axis's extent in the part times the full size of the axes after it)."""
    cut = max((i for i, (a, b) in enumerate(part.bounds) if (a, b) != (0, shape[i])), default=0)
    return cut, part.shape[cut] * math.prod(shape[cut + 1 :])


def runs(s: Sampling, lo: int, hi: int) -> tuple[I64, I64]:
    """(starts, lengths) of elements [lo, hi) of the sampling's part, as runs of the full
    tensor's elements, in order; empty for an empty range."""
    part = s.part
    if part is None or hi <= lo:
        whole = [lo] if hi > lo else []
        return np.array(whole, dtype=np.int64), np.array([hi - lo] * len(whole), dtype=np.int64)
    cut, length = run_length(part, s.shape)
    first, last = lo // length, (hi - 1) // length + 1
    index = np.arange(first, last, dtype=np.int64)
    strides = [math.prod(s.shape[i + 1 :]) for i in range(len(s.shape))]
    corner = sum(a * stride for (a, _), stride in zip(part.bounds, strides, strict=True))
    starts = np.full(len(index), corner, dtype=np.int64)
    for axis in reversed(range(cut)):  # the run's position among the axes before the cut
        index, within = np.divmod(index, part.shape[axis])
        starts += within * strides[axis]
    ends = starts + length
    ends[-1] -= last * length - hi
    starts[0] += lo - first * length
    return starts, ends - starts


def batches(s: Sampling, lo: int, hi: int) -> Iterator[tuple[int, int, I64, I64]]:
    """Elements [lo, hi) of the part in pieces of at most MAX_RUNS runs: (lo, hi, starts,
    lengths) each, so that the run arrays stay O(MAX_RUNS) whatever the part."""
    step = hi - lo
    if s.part is not None:
        step = max(1, run_length(s.part, s.shape)[1]) * MAX_RUNS
    for a in range(lo, hi, step):
        b = min(a + step, hi)
        yield (a, b, *runs(s, a, b))


def positions(s: Sampling, lo: int, hi: int) -> I64:
    """The full tensor's element index of each element [lo, hi) of the part."""
    starts, lengths = runs(s, lo, hi)
    offsets = np.cumsum(lengths) - lengths  # where each run begins in the output
    return np.repeat(starts - offsets, lengths) + np.arange(hi - lo, dtype=np.int64)
