"""torch.nn's normalization layers: LayerNorm and RMSNorm, weight ones and bias zeros
(`torch/nn/modules/normalization.py`, `reset_parameters`), and BatchNorm{1,2,3}d, weight ones,
bias zeros, buffers running_mean 0, running_var 1 and num_batches_tracked 0 as int64
(`torch/nn/modules/batchnorm.py`, `_NormBase.reset_parameters`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.arguments import arg
from service.presets.base import Member, Preset, constant
from service.shapes import MAX_DIM, MAX_RANK, Shape

AFFINE = "learn the per-element weight (and bias)"
SHAPE = "the trailing dimensions normalized: one int, or a list of them"


@dataclass(frozen=True)
class LayerNormArgs:
    normalized_shape: int | tuple[int, ...] = arg(SHAPE, ge=0, le=MAX_DIM, max_items=MAX_RANK)
    elementwise_affine: bool = arg(AFFINE, True)
    bias: bool = arg("learn an additive bias (with elementwise_affine)", True)


@dataclass(frozen=True)
class RMSNormArgs:
    normalized_shape: int | tuple[int, ...] = arg(SHAPE, ge=0, le=MAX_DIM, max_items=MAX_RANK)
    elementwise_affine: bool = arg(AFFINE, True)


@dataclass(frozen=True)
class BatchNormArgs:
    num_features: int = arg("channels of the input", ge=0, le=MAX_DIM)
    affine: bool = arg("learn the per-channel weight and bias", True)
    track_running_stats: bool = arg("keep running_mean, running_var, num_batches_tracked", True)


def _normalized(size: int | tuple[int, ...]) -> Shape:
    return (size,) if isinstance(size, int) else size


def layer_norm(name: str, a: LayerNormArgs) -> list[Member]:
    if not a.elementwise_affine:
        return []
    shape = _normalized(a.normalized_shape)
    out = [constant(f"{name}.weight", shape, 1.0)]
    if a.bias:
        out.append(constant(f"{name}.bias", shape, 0.0))
    return out


def rms_norm(name: str, a: RMSNormArgs) -> list[Member]:
    shape = _normalized(a.normalized_shape)
    return [constant(f"{name}.weight", shape, 1.0)] if a.elementwise_affine else []


def batch_norm(name: str, a: BatchNormArgs) -> list[Member]:
    n = (a.num_features,)
    out: list[Member] = []
    if a.affine:
        out += [constant(f"{name}.weight", n, 1.0), constant(f"{name}.bias", n, 0.0)]
    if a.track_running_stats:
        out += running_stats(name, a.num_features)
    return out


def running_stats(name: str, features: int) -> list[Member]:
    """_NormBase's buffers (batchnorm.py): running_mean 0, running_var 1, num_batches_tracked
    an int64 0; BatchNorm's and InstanceNorm's alike."""
    n = (features,)
    return [
        constant(f"{name}.running_mean", n, 0.0),
        constant(f"{name}.running_var", n, 1.0),
        constant(f"{name}.num_batches_tracked", (), 0.0, dtype="int64"),
    ]


ROWS: tuple[Preset[Any], ...] = (
    Preset(
        "torch.LayerNorm",
        "weight ones, bias zeros",
        LayerNormArgs,
        layer_norm,
        lambda a: a.elementwise_affine * (1 + a.bias),
    ),
    Preset(
        "torch.RMSNorm",
        "weight ones",
        RMSNormArgs,
        rms_norm,
        lambda a: int(a.elementwise_affine),
    ),
)


def spatial(dims: int) -> tuple[Preset[Any], ...]:
    """BatchNorm{dims}d: the same tensors for every rank of input."""
    return (
        Preset(
            f"torch.BatchNorm{dims}d",
            "weight ones, bias zeros; running mean 0, var 1",
            BatchNormArgs,
            batch_norm,
            lambda a: 2 * a.affine + 3 * a.track_running_stats,
        ),
    )
