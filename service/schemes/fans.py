"""Fan rules, one per framework: what fan_in and fan_out are for a shape (and its axes)."""

from __future__ import annotations

import math
from collections.abc import Callable

from service.errors import ShapeError
from service.schemes.vocabulary import FanSpec, Shape

# A fan rule reads the axes of the spec where its framework takes them; the explicit fan_in and
# fan_out, and the refusal of axes a framework does not take, are the convention's, not its own.
FanRule = Callable[[Shape, FanSpec], tuple[float, float]]


def torch_fans(shape: Shape, _spec: FanSpec) -> tuple[float, float]:
    """torch `_calculate_fan_in_and_fan_out`: layout (out, in, *k); rank < 2 raises."""
    if len(shape) < 2:
        raise ShapeError(
            f"convention torch cannot compute fans of a rank-{len(shape)} shape {list(shape)}: "
            "torch.nn.init raises 'Fan in and fan out can not be computed for tensor with fewer "
            "than 2 dimensions'; give fan_in and fan_out explicitly or use a rank >= 2 shape"
        )
    receptive = math.prod(shape[2:])
    return float(shape[1] * receptive), float(shape[0] * receptive)


def compute_fans(shape: Shape, _spec: FanSpec) -> tuple[float, float]:
    """Keras/TF `compute_fans`: (*k, in, out); rank 0 -> (1, 1), rank 1 -> (n, n)."""
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    receptive = math.prod(shape[:-2])
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


def keras_fans(shape: Shape, spec: FanSpec) -> tuple[float, float]:
    """Keras 3: `compute_fans`, or with input_axes/output_axes (>= 3.15) plain products."""
    if spec.in_axes is None and spec.out_axes is None:
        return compute_fans(shape, spec)
    if spec.in_axes is None or spec.out_axes is None:
        raise ShapeError(
            "convention keras uses explicit axes only when both in_axes and out_axes are given "
            "(Keras input_axes/output_axes); received only one of them"
        )
    in_axes = normalize_axes(shape, spec.in_axes, "in_axes")
    out_axes = normalize_axes(shape, spec.out_axes, "out_axes")
    return float(math.prod(shape[i] for i in in_axes)), float(math.prod(shape[i] for i in out_axes))


def caffe_fans(shape: Shape, _spec: FanSpec) -> tuple[float, float]:
    """Caffe filler.hpp: fan_in = count/shape(0), fan_out = count/shape(1) (count if rank 1)."""
    if len(shape) == 0:
        raise ShapeError(
            "convention caffe cannot compute fans of a rank-0 shape []: a Caffe blob filler "
            "reads shape(0); use a rank >= 1 shape or give fan_in and fan_out"
        )
    count = math.prod(shape)
    if shape[0] == 0 or (len(shape) > 1 and shape[1] == 0):
        raise ShapeError(
            f"convention caffe divides the element count by shape(0) and shape(1); "
            f"shape {list(shape)} has a zero there"
        )
    fan_out = count // shape[1] if len(shape) > 1 else count
    return float(count // shape[0]), float(fan_out)


def jax_fans(shape: Shape, spec: FanSpec) -> tuple[float, float]:
    """jax `_compute_fans(shape, in_axis=-2, out_axis=-1, batch_axis=())`.

    receptive = prod(shape)/in/out/batch (floats); fan_in = in·receptive, fan_out = out·receptive.
    Rank <= 1 raises unless in_axes is given.
    """
    if spec.in_axes is None and len(shape) <= 1:
        raise ShapeError(
            f"convention jax cannot compute fans of a rank-{len(shape)} shape {list(shape)} with "
            "the default in_axis=-2 (jax raises ValueError); give in_axes (and out_axes), "
            "or fan_in and fan_out"
        )
    in_axes = normalize_axes(shape, spec.in_axes or (-2,), "in_axes")
    out_axes = normalize_axes(shape, spec.out_axes or (-1,), "out_axes")
    batch_axes = normalize_axes(shape, spec.batch_axes or (), "batch_axes")
    in_size = math.prod(shape[i] for i in in_axes)
    out_size = math.prod(shape[i] for i in out_axes)
    batch_size = math.prod(shape[i] for i in batch_axes)
    if 0 in (in_size, out_size, batch_size):
        raise ShapeError(
            f"convention jax divides by the sizes of the in, out and batch axes; shape "
            f"{list(shape)} has a zero there (jax raises ZeroDivisionError)"
        )
    receptive = math.prod(shape) / in_size / out_size / batch_size
    return in_size * receptive, out_size * receptive


def normalize_axes(shape: Shape, axes: tuple[int, ...], what: str) -> tuple[int, ...]:
    """The axes as non-negative indices of `shape`; out-of-range or repeated axes are refused."""
    rank = len(shape)
    normalized = []
    for axis in axes:
        if not -rank <= axis < rank:
            raise ShapeError(
                f"{what} {list(axes)} names axis {axis}, out of range for the rank-{rank} shape "
                f"{list(shape)}; allowed axes are {-rank} … {rank - 1}"
            )
        normalized.append(axis % rank)
    if len(set(normalized)) != len(normalized):
        raise ShapeError(f"{what} {list(axes)} names the same axis twice")
    return tuple(normalized)
