"""Float64 values of a slice of a tensor, written once for every engine's `ArrayOps`."""

from __future__ import annotations

import functools
from typing import Any

from service import rng
from service.engines.base import Sampling
from service.rng import ArrayOps

RANDOM_KINDS = frozenset({"normal", "truncated_normal", "uniform"})
STRUCTURED_KINDS = frozenset({"orthogonal", "delta_orthogonal"})


@functools.lru_cache(maxsize=256)
def truncation(alpha: float, beta: float) -> rng.Truncation:
    return rng.truncation(alpha, beta)


def values(ops: ArrayOps, s: Sampling, start: int, stop: int) -> Any:
    """float64 values of elements [start, stop): random kinds and deterministic ones."""
    law = s.scheme.law
    if law.kind in RANDOM_KINDS:
        u = rng.uniform(ops, s.seed, s.stream, start, stop, wide=s.dtype.words == 2)
        if law.kind == "uniform":
            low, high = bounds(law.low, law.high)
            return u * (high - low) + low
        sigma = law.stddev if law.stddev is not None else 0.0
        if law.kind == "normal":
            z = rng.normal_ppf(ops, u)
        else:
            alpha, beta = bounds(law.alpha, law.beta)
            z = rng.truncated_ppf(ops, u, truncation(alpha, beta))
        return z * sigma + law.loc
    index = ops.arange(start, stop)
    zero = ops.to_float(index) * 0.0
    if law.kind == "constant":
        return zero + law.loc
    gain = s.scheme.gain if s.scheme.gain is not None else 1.0
    if law.kind == "identity":
        cols = s.scheme.shape[1]
        return ops.where(index // cols == index % cols, zero + gain, zero)
    if law.kind == "dirac":
        return ops.where(_dirac_ones(index, s), zero + 1.0, zero)
    raise ValueError(f"values() does not produce kind {law.kind!r}")


def bounds(low: float | None, high: float | None) -> tuple[float, float]:
    if low is None or high is None:
        raise ValueError("a bounded law without bounds")
    return low, high


def _dirac_ones(index: Any, s: Sampling) -> Any:
    """torch dirac_: 1 at [g·opg + d, d, k0//2, …] for d < min(opg, in), opg = out/groups."""
    shape = s.scheme.shape
    groups = int(s.scheme.params.get("groups", 1))
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
