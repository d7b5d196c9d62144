"""Orthogonal and delta-orthogonal tensors: portable normals, then LAPACK's QR.

QR is not bit-reproducible across LAPACK builds, so these tensors are reproducible to rounding
only (weak ETag). They need the whole matrix, so memory is O(tensor), not O(block).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from service import rng
from service.distributions import DeltaOrthogonal, Orthogonal
from service.engines.base import Sampling
from service.engines.runs import positions

F64 = npt.NDArray[np.float64]


Normals = Callable[[int, int, int], F64]  # (count, seed, stream) -> N(0, 1) in float64


def normals(ops: rng.ArrayOps, s: Sampling, count: int, draw: Normals | None = None) -> F64:
    """N(0, 1) values [0, count) of the stream, from 52-bit uniforms; `draw` (the fused
    kernel's, where the engine has it) gives the same values without float64 temporaries."""
    if draw is not None:
        return draw(count, s.seed, s.stream)
    u = rng.uniform(ops, s.seed, s.stream, 0, count, wide=True)
    return np.asarray(rng.normal_ppf(ops, u), dtype=np.float64)


def orthogonal_matrix(
    ops: rng.ArrayOps, s: Sampling, rows: int, cols: int, draw: Normals | None = None
) -> F64:
    """rows × cols with orthonormal columns (rows ≥ cols) or rows (rows < cols).

    Draw N(0,1) of shape (max, min), Q·sign(diag R) of its QR, transposed when rows < cols
    (Saxe et al. 2014; the recipe of torch, Keras and JAX).
    """
    big, small = max(rows, cols), min(rows, cols)
    a = normals(ops, s, big * small, draw).reshape(big, small)
    q, r = np.linalg.qr(a)
    q *= np.where(np.diag(r) < 0, -1.0, 1.0)  # in place: one matrix fewer at the peak
    return q.T if rows < cols else q


class _Build:
    """A tensor being built: its waiters wake on `done` and take `value` (None if it failed)."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: F64 | None = None


class Memo:
    """The structured tensors an engine built lately, so that the blocks of a stream (and the
    streams of one tensor) share one QR instead of each redoing it. Bounded by bytes: the
    largest tensor (MAX_QR_ELEMENTS float64, 32 MiB) fits twice in the default 64 MiB, layer-sized
    ones by the dozen. Thread-safe: a tensor is built once however many streams want it (they
    wait for its builder), and a hit never waits for a build. Builds take turns: the largest
    peaks at ~160 MiB above its start (~270 MiB with the reference normals), so one at a time.
    A key names everything the values depend on."""

    def __init__(self, budget: int = 64 << 20, draw: Normals | None = None) -> None:
        self.budget, self.held, self.draw = budget, 0, draw
        self.builder = threading.Lock()  # one build at a time: a QR's peak memory, once
        self.lock = threading.Lock()  # guards the three fields below; never held while building
        self.entries: OrderedDict[tuple[object, ...], F64] = OrderedDict()
        self.building: dict[tuple[object, ...], _Build] = {}

    @staticmethod
    def key(s: Sampling) -> tuple[object, ...]:
        """Everything a structured tensor's values depend on."""
        return (s.distribution, s.shape, s.seed, s.stream)

    def get(self, ops: rng.ArrayOps, s: Sampling) -> F64:
        key = self.key(s)
        while True:
            with self.lock:
                if key in self.entries:
                    self.entries.move_to_end(key)
                    return self.entries[key]
                pending = self.building.get(key)
                if pending is None:
                    mine = self.building[key] = _Build()
                    break
            pending.done.wait()
            if pending.value is not None:  # kept or not (too big, evicted since), it is the value
                return pending.value
            # its builder failed: try again (one waiter builds, the others wait for it)
        try:
            with self.builder:
                value = tensor(ops, s, self.draw)
            value.setflags(write=False)
            mine.value = value
            with self.lock:
                self._keep(key, value)
            return value
        finally:
            with self.lock:
                del self.building[key]
            mine.done.set()

    def _keep(self, key: tuple[object, ...], value: F64) -> None:
        if value.nbytes > self.budget:
            return
        self.entries[key] = value
        self.held += value.nbytes
        while self.held > self.budget:
            _, old = self.entries.popitem(last=False)
            self.held -= old.nbytes


def cut(full: F64, s: Sampling, start: int, stop: int) -> F64:
    """Elements [start, stop) of a built tensor (flattened), or of the sampling's part of it."""
    return full[start:stop] if s.part is None else full[positions(s, start, stop)]


def tensor(ops: rng.ArrayOps, s: Sampling, draw: Normals | None = None) -> F64:
    """The whole tensor, float64, C order."""
    shape, d = s.shape, s.distribution
    if s.numel == 0:
        return np.zeros(0)
    if isinstance(d, Orthogonal):
        cols = shape[d.kept_axis]
        m = orthogonal_matrix(ops, s, s.numel // cols, cols, draw)
        m *= d.gain  # 0 is a gain: torch gives zeros
        rest = tuple(n for i, n in enumerate(shape) if i != d.kept_axis)
        return np.ascontiguousarray(np.moveaxis(m.reshape(*rest, cols), -1, d.kept_axis)).reshape(
            -1
        )
    if not isinstance(d, DeltaOrthogonal):
        raise ValueError(f"not a structured kind: {d.kind!r}")
    cin, cout = shape[-2], shape[-1]
    out = np.zeros(shape)
    centre = tuple((k - 1) // 2 for k in shape[:-2])
    if d.kept_axis == 1:
        block = orthogonal_matrix(ops, s, cin, cout, draw)
    else:  # JAX column_axis 0: an (out, in) orthogonal matrix, transposed
        block = orthogonal_matrix(ops, s, cout, cin, draw).T
    out[centre] = block * d.gain
    return out.reshape(-1)
