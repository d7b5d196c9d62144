"""Fan rules, one per convention, and what each convention means by its words."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from service.errors import SchemeError, ShapeError, one_of
from service.schemes.vocabulary import (
    CONVENTIONS,
    MODES,
    Convention,
    Distribution,
    FanSpec,
    Mode,
    Shape,
)

# --------------------------------------------------------------------------------------------
# Fan rules, one per convention


def _torch_fans(shape: Shape) -> tuple[float, float]:
    """torch `_calculate_fan_in_and_fan_out`: layout (out, in, *k); rank < 2 raises."""
    if len(shape) < 2:
        raise ShapeError(
            f"convention torch cannot compute fans of a rank-{len(shape)} shape {list(shape)}: "
            "torch.nn.init raises 'Fan in and fan out can not be computed for tensor with fewer "
            "than 2 dimensions'; give fan_in and fan_out explicitly or use a rank >= 2 shape"
        )
    receptive = math.prod(shape[2:])
    return float(shape[1] * receptive), float(shape[0] * receptive)


def _keras_fans(shape: Shape) -> tuple[float, float]:
    """Keras/TF `compute_fans`: (*k, in, out); rank 0 -> (1, 1), rank 1 -> (n, n)."""
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    receptive = math.prod(shape[:-2])
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


def _caffe_fans(shape: Shape) -> tuple[float, float]:
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


def _axes(shape: Shape, axes: tuple[int, ...], what: str) -> tuple[int, ...]:
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


def _jax_fans(shape: Shape, spec: FanSpec) -> tuple[float, float]:
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
    in_axes = _axes(shape, spec.in_axes or (-2,), "in_axes")
    out_axes = _axes(shape, spec.out_axes or (-1,), "out_axes")
    batch_axes = _axes(shape, spec.batch_axes or (), "batch_axes")
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


def _keras_axes_fans(shape: Shape, spec: FanSpec) -> tuple[float, float]:
    """Keras >= 3.15 with both input_axes and output_axes: plain products, no receptive field."""
    if spec.in_axes is None or spec.out_axes is None:
        raise ShapeError(
            "convention keras uses explicit axes only when both in_axes and out_axes are given "
            "(Keras input_axes/output_axes); received only one of them"
        )
    in_axes = _axes(shape, spec.in_axes, "in_axes")
    out_axes = _axes(shape, spec.out_axes, "out_axes")
    return float(math.prod(shape[i] for i in in_axes)), float(math.prod(shape[i] for i in out_axes))


# --------------------------------------------------------------------------------------------
# Conventions


@dataclass(frozen=True)
class ConventionRule:
    """How one framework computes fans and what its variance-scaling distributions mean."""

    name: Convention
    framework: str
    layout: str
    fan_rule: str
    clamp: bool  # Keras divides by max(1, n)
    modes: tuple[Mode, ...]
    distributions: tuple[Distribution, ...]  # accepted by variance_scaling, canonical form
    normal_means: Distribution  # what the word "normal" (and a preset's normal) means
    axes: tuple[str, ...]  # which of in_axes/out_axes/batch_axes the convention accepts

    def fans(self, shape: Shape, spec: FanSpec) -> tuple[float, float]:
        given = [n for n in ("in_axes", "out_axes", "batch_axes") if getattr(spec, n) is not None]
        refused = [n for n in given if n not in self.axes]
        if refused:
            allowed = one_of(self.axes) if self.axes else "none"
            raise ShapeError(
                f"convention {self.name} does not take {one_of(refused)} (its axes: {allowed}); "
                "give fan_in and fan_out explicitly instead"
            )
        if spec.fan_in is not None and spec.fan_out is not None:
            return spec.fan_in, spec.fan_out
        if self.name == "jax":
            fan_in, fan_out = _jax_fans(shape, spec)
        elif self.name == "keras" and given:
            fan_in, fan_out = _keras_axes_fans(shape, spec)
        elif self.name == "torch":
            fan_in, fan_out = _torch_fans(shape)
        elif self.name == "caffe":
            fan_in, fan_out = _caffe_fans(shape)
        else:
            fan_in, fan_out = _keras_fans(shape)
        return (
            fan_in if spec.fan_in is None else spec.fan_in,
            fan_out if spec.fan_out is None else spec.fan_out,
        )


_ALL_DISTRIBUTIONS: tuple[Distribution, ...] = ("truncated_normal", "untruncated_normal", "uniform")
_PLAIN: tuple[Distribution, ...] = ("untruncated_normal", "uniform")

RULES: Mapping[Convention, ConventionRule] = {
    "keras": ConventionRule(
        "keras",
        "Keras 3 / tf.keras / tf.compat.v1 (keras.initializers)",
        "(*kernel, in, out)",
        "rank 0: (1, 1); rank 1: (n, n); else fan_in = shape[-2]·R, fan_out = shape[-1]·R, "
        "R = prod(shape[:-2]); with in_axes and out_axes: plain products; scale / max(1, n)",
        clamp=True,
        modes=("fan_in", "fan_out", "fan_avg"),
        distributions=_ALL_DISTRIBUTIONS,
        normal_means="truncated_normal",
        axes=("in_axes", "out_axes"),
    ),
    "torch": ConventionRule(
        "torch",
        "PyTorch (torch.nn.init)",
        "(out, in/groups, *kernel)",
        "rank < 2: error; fan_in = shape[1]·R, fan_out = shape[0]·R, R = prod(shape[2:])",
        clamp=False,
        modes=("fan_in", "fan_out", "fan_avg"),
        distributions=_PLAIN,
        normal_means="untruncated_normal",
        axes=(),
    ),
    "jax": ConventionRule(
        "jax",
        "JAX / Flax (jax.nn.initializers)",
        "(…, in, out) with in_axis=-2, out_axis=-1, batch_axis=()",
        "R = prod(shape)/in/out/batch; fan_in = in·R, fan_out = out·R; "
        "rank <= 1 needs in_axes; fans are floats",
        clamp=False,
        modes=MODES,
        distributions=_ALL_DISTRIBUTIONS,
        normal_means="untruncated_normal",
        axes=("in_axes", "out_axes", "batch_axes"),
    ),
    "tf1": ConventionRule(
        "tf1",
        "TensorFlow 1 contrib (tf.contrib.layers.variance_scaling_initializer)",
        "(*kernel, in, out)",
        "rank 0: (1, 1); rank 1: (n, n); else fan_in = shape[-2]·R, fan_out = shape[-1]·R; "
        "no clamp; truncated σ = √(1.3·factor/n)",
        clamp=False,
        modes=("fan_in", "fan_out", "fan_avg"),
        distributions=("truncated_normal", "uniform"),
        normal_means="truncated_normal",
        axes=(),
    ),
    "caffe": ConventionRule(
        "caffe",
        "Caffe (include/caffe/filler.hpp)",
        "(out, in, h, w)",
        "fan_in = count/shape(0), fan_out = count/shape(1) (count for rank 1); rank 0: error",
        clamp=False,
        modes=("fan_in", "fan_out", "fan_avg"),
        distributions=_PLAIN,
        normal_means="untruncated_normal",
        axes=(),
    ),
}


def rule(convention: str) -> ConventionRule:
    try:
        return RULES[convention]  # type: ignore[index]
    except KeyError:
        raise SchemeError(
            f"unknown convention {convention!r}; expected one of {one_of(CONVENTIONS)}"
        ) from None
