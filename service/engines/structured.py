"""Orthogonal and delta-orthogonal tensors: portable normals, then LAPACK's QR.

QR is not bit-reproducible across LAPACK builds, so these tensors are reproducible to rounding
only (weak ETag). They need the whole matrix, so memory is O(tensor), not O(block).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict

import numpy as np
import numpy.typing as npt

from service import rng
from service.engines.base import Sampling

F64 = npt.NDArray[np.float64]


def normals(ops: rng.ArrayOps, s: Sampling, count: int) -> F64:
    u = rng.uniform(ops, s.seed, s.stream, 0, count, wide=True)
    return np.asarray(rng.normal_ppf(ops, u), dtype=np.float64)


def orthogonal_matrix(ops: rng.ArrayOps, s: Sampling, rows: int, cols: int) -> F64:
    """rows × cols with orthonormal columns (rows ≥ cols) or rows (rows < cols).

    Draw N(0,1) of shape (max, min), Q·sign(diag R) of its QR, transposed when rows < cols
    (Saxe et al. 2014; the recipe of torch, Keras and JAX).
    """
    big, small = max(rows, cols), min(rows, cols)
    a = normals(ops, s, big * small).reshape(big, small)
    q, r = np.linalg.qr(a)
    q = q * np.where(np.diag(r) < 0, -1.0, 1.0)
    return q.T if rows < cols else q


class Memo:
    """The last few structured tensors an engine built, so that the blocks of one stream share
    one QR instead of each redoing it. Thread-safe; a key names everything the values depend on."""

    def __init__(self, size: int = 2) -> None:
        self.size, self.lock = size, threading.Lock()
        self.entries: OrderedDict[tuple[object, ...], F64] = OrderedDict()

    def get(self, ops: rng.ArrayOps, s: Sampling) -> F64:
        p = s.scheme
        key = (p.law.kind, p.shape, p.kept_axis, p.gain, s.seed, s.stream)
        with self.lock:  # one builder at a time: a second stream waits for the first's result
            if key in self.entries:
                self.entries.move_to_end(key)
                return self.entries[key]
            value = tensor(ops, s)
            value.setflags(write=False)
            self.entries[key] = value
            if len(self.entries) > self.size:
                self.entries.popitem(last=False)
            return value


def tensor(ops: rng.ArrayOps, s: Sampling) -> F64:
    """The whole tensor, float64, C order."""
    shape, gain = s.scheme.shape, s.scheme.gain or 1.0
    numel = math.prod(shape)
    if numel == 0:
        return np.zeros(0)
    if s.scheme.law.kind == "orthogonal":
        kept = s.scheme.kept_axis if s.scheme.kept_axis is not None else len(shape) - 1
        cols = shape[kept]
        m = orthogonal_matrix(ops, s, numel // cols, cols) * gain
        rest = tuple(d for i, d in enumerate(shape) if i != kept)
        return np.ascontiguousarray(np.moveaxis(m.reshape(*rest, cols), -1, kept)).reshape(-1)
    cin, cout = shape[-2], shape[-1]
    out = np.zeros(shape)
    centre = tuple((k - 1) // 2 for k in shape[:-2])
    out[centre] = orthogonal_matrix(ops, s, cin, cout) * gain
    return out.reshape(-1)
