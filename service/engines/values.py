"""Float64 values of a slice of a tensor, written once for every engine's `ArrayOps`."""

from __future__ import annotations

import functools
from typing import Any

from service import logspace, rng
from service.distributions import (
    DRAWN,
    Constant,
    Dirac,
    Drawn,
    Identity,
    InverseSoftplusLogUniform,
    LogArange,
    Normal,
    Sparse,
    Stft,
    Uniform,
)
from service.engines.base import Sampling
from service.engines.runs import positions
from service.rng import ArrayOps
from service.windows import turns, window


@functools.lru_cache(maxsize=256)
def truncation(alpha: float, beta: float) -> rng.Truncation:
    return rng.truncation(alpha, beta)


def values(ops: ArrayOps, s: Sampling, start: int, stop: int) -> Any:
    """float64 values of elements [start, stop) (of the sampling's part, when it has one, each
    element drawn from its index in the full tensor): random kinds and deterministic ones."""
    d = s.distribution
    index = None if s.part is None else ops.indices(positions(s, start, stop))
    if isinstance(d, DRAWN):
        wide = s.dtype.words == 2
        if index is None:
            return _random(ops, d, rng.uniform(ops, s.seed, s.stream, start, stop, wide))
        return _random(ops, d, rng.uniform_at(ops, s.seed, s.stream, index, wide))
    if index is None:
        index = ops.arange(start, stop)
    zero = ops.to_float(index) * 0.0
    if isinstance(d, Constant):
        return zero + d.value
    if isinstance(d, Identity):
        cols = s.shape[1]
        return ops.where(index // cols == index % cols, zero + d.gain, zero)
    if isinstance(d, Dirac):
        return ops.where(_dirac_ones(index, s.shape, d.groups), zero + 1.0, zero)
    if isinstance(d, Stft):
        return _stft(ops, index, s.shape, d)
    if isinstance(d, LogArange):
        return logspace.log_arange(ops, index, s.shape[-1])
    raise ValueError(f"values() does not produce kind {d.kind!r}")


def _random(ops: ArrayOps, d: Drawn, u: Any) -> Any:
    if isinstance(d, Sparse):  # its zeros are set on the bytes (service.engines.sparse)
        d = Normal(0.0, d.scale)
    if isinstance(d, InverseSoftplusLogUniform):
        return logspace.inverse_softplus_log_uniform(ops, u, d.low, d.high, d.floor)
    if isinstance(d, Uniform):
        return u * (d.high - d.low) + d.low
    if isinstance(d, Normal):
        z = rng.normal_ppf(ops, u)
    else:
        z = rng.truncated_ppf(ops, u, truncation(d.alpha, d.beta))
    return z * d.scale + d.loc


def _dirac_ones(index: Any, shape: tuple[int, ...], groups: int) -> Any:
    """torch dirac_: 1 at [g·opg + d, d, k0//2, …] for d < min(opg, in), opg = out/groups."""
    per_group = shape[0] // groups
    spatial = shape[2:]
    centre = 0
    for size in spatial:
        centre = centre * size + size // 2
    kernel = 1
    for size in spatial:
        kernel *= size
    out_idx = index // (shape[1] * kernel)
    in_idx = (index // kernel) % shape[1]
    d = out_idx % per_group
    return (index % kernel == centre) & (in_idx == d) & (d < min(per_group, shape[1]))


def _stft(ops: ArrayOps, index: Any, shape: tuple[int, ...], d: Stft) -> Any:
    """Keras STFT (T, 1, F): trig(2π·t·f/N)·window[t]/divisor, N = 2(F − 1), every factor from
    service.windows (exact turns), in this order of operations."""
    frames, _, bins = shape
    t, f = index // bins, index % bins
    n = 2 * (bins - 1)
    cos, sin = turns(ops, t * f, n)
    trig = -sin if d.imag else cos
    if d.window == "none" or len(index) == 0:
        return trig
    first = int(t.min())  # the window of the frames the block touches, each computed once
    win = window(ops, d.window, ops.arange(first, int(t.max()) + 1), frames, d.periodic)
    return trig * win[t - first] / d.divisor
