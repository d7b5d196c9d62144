"""torch sparse_'s zeros, set after the normal values are drawn (algorithm v1).

Column j of the (rows, cols) matrix has k zeros: the k rows r with the smallest keys
K(r, j)·2³² + r, where K(r, j) is word r·cols + j of the stream `rng.substream(stream,
"sparse")` under the tensor's seed (equal words, rare, go to the lower row). A column's zeros
depend on that column alone, so any part of the tensor is exactly that part of the whole, and
the normal values are those of `Normal(0, std)` (the fused kernel's or the reference's).

Each column's k-th smallest key (its threshold) is found once per group of columns, all rows of
a group ranked at once (at most GROUP words, or one column's rows), and kept in a memo bounded by
bytes; a block then zeroes the elements whose key is at most their column's threshold.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np
import numpy.typing as npt

from service import rng
from service.distributions import Sparse
from service.engines.base import Sampling
from service.engines.runs import positions

U64 = npt.NDArray[np.uint64]
GROUP = 1 << 18  # words ranked at once: the columns of a group times the rows
PIECE = 1 << 16  # words drawn at once
PURPOSE = "sparse"  # names the mask's stream (rng.substream)


def width(rows: int) -> int:
    """Columns per group."""
    return max(1, GROUP // max(rows, 1))


def keys(ops: rng.ArrayOps, s: Sampling, index: U64, contiguous: bool = False) -> U64:
    """K·2³² + row of the elements `index` (the full tensor's flat indices; `contiguous`: they
    are index[0], index[0] + 1, …, whose words come four to a Philox block)."""
    stream = rng.substream(s.stream, PURPOSE)
    if contiguous and len(index):
        start = int(index[0])
        found = rng.words(ops, s.seed, stream, start, start + len(index))
    else:
        found = rng.words_at(ops, s.seed, stream, index)
    words = np.asarray(found, dtype=np.uint64)
    return (words << np.uint64(32)) | (index // np.uint64(s.shape[1]))


def row_words(s: Sampling, starts: U64, count: int) -> U64:
    """Words starts[i] … starts[i] + count − 1 of the mask stream, a row per start: the Philox
    blocks of each row once (as `rng.words`), not a block per word (as `rng.words_at`)."""
    stream = rng.substream(s.stream, PURPOSE)
    per = (count + 3) // 4 + 1  # blocks a row of `count` words touches, at most
    blocks = np.add.outer(starts >> np.uint64(2), np.arange(per, dtype=np.uint64)).reshape(-1)
    counter = (blocks & rng.MASK32, blocks >> np.uint64(32), stream & rng.MASK32, stream >> 32)
    lanes = rng.philox(counter, rng.key_words(s.seed))
    words = np.stack(lanes, axis=-1).reshape(len(starts), 4 * per)
    offsets = (starts & np.uint64(3)).astype(np.int64)[:, None] + np.arange(count)
    found: U64 = np.take_along_axis(words, offsets, axis=1)
    return found


def thresholds(s: Sampling, zeros: int, first: int, last: int) -> U64:
    """The k-th smallest key of each column in [first, last)."""
    rows, cols = s.shape
    count = last - first
    table = np.empty((rows, count), dtype=np.uint64)
    step = max(1, PIECE // count)
    for r0 in range(0, rows, step):
        r = np.arange(r0, min(r0 + step, rows), dtype=np.uint64)
        words = row_words(s, r * np.uint64(cols) + np.uint64(first), count)
        table[r0 : r0 + len(r)] = (words << np.uint64(32)) | r[:, None]
    ranked: U64 = np.partition(table, zeros - 1, axis=0)[zeros - 1]
    return ranked


class Thresholds:
    """The thresholds of recent groups of columns, by tensor and group; thread-safe (a group
    two streams want at once may be ranked twice, to the same values), bounded by bytes."""

    def __init__(self, budget: int = 32 << 20) -> None:
        self.budget, self.held = budget, 0
        self.lock = threading.Lock()
        self.entries: OrderedDict[tuple[object, ...], U64] = OrderedDict()

    def group(self, s: Sampling, zeros: int, g: int) -> U64:
        key = (s.seed, s.stream, s.shape, zeros, g)
        with self.lock:
            if key in self.entries:
                self.entries.move_to_end(key)
                return self.entries[key]
        w = width(s.shape[0])
        value = thresholds(s, zeros, g * w, min((g + 1) * w, s.shape[1]))
        with self.lock:
            if key not in self.entries and value.nbytes <= self.budget:
                self.entries[key] = value
                self.held += value.nbytes
                while self.held > self.budget:
                    _, old = self.entries.popitem(last=False)
                    self.held -= old.nbytes
        return value

    def of(self, s: Sampling, zeros: int, columns: U64) -> U64:
        """The threshold of each element's column."""
        w = width(s.shape[0])
        group = (columns // np.uint64(w)).astype(np.int64)
        present = np.zeros(-(-s.shape[1] // w), dtype=bool)  # groups: numel / GROUP at most
        present[group] = True
        groups = np.flatnonzero(present)
        row = np.zeros(len(present), dtype=np.int64)
        row[groups] = np.arange(len(groups))
        table = np.zeros((len(groups), min(w, s.shape[1])), dtype=np.uint64)
        for i, g in enumerate(groups):
            found = self.group(s, zeros, int(g))
            table[i, : len(found)] = found
        found_each: U64 = table[row[group], columns.astype(np.int64) - group * w]
        return found_each


def mask(
    ops: rng.ArrayOps, memo: Thresholds, view: memoryview, s: Sampling, start: int, stop: int
) -> memoryview:
    """Zero the bytes of the elements [start, stop) (of the part) that a Sparse sets to zero."""
    d = s.distribution
    if not isinstance(d, Sparse) or d.zeros == 0 or stop <= start:
        return view
    items: Any = np.frombuffer(view, dtype=np.uint8).reshape(stop - start, s.dtype.itemsize)
    if d.zeros >= s.shape[0]:
        items[:] = 0
        return view
    cols = np.uint64(s.shape[1])
    for lo in range(start, stop, PIECE):
        hi = min(lo + PIECE, stop)
        index = positions(s, lo, hi).astype(np.uint64)
        mine = keys(ops, s, index, contiguous=s.part is None)
        zero = mine <= memo.of(s, d.zeros, index % cols)
        items[lo - start : hi - start][zero] = 0
    return view
