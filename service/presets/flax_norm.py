"""Flax linen's normalization layers with their default initializers, as flax 0.12.8 builds them
(`flax/linen/normalization.py`): every one makes its params through `_normalize` (197-220),
`scale` with `scale_init` = initializers.ones and `bias` with `bias_init` = initializers.zeros,
both shaped as the feature axes (`reduced_feature_shape`), float32 (`param_dtype`).

- LayerNorm (`LayerNorm.__call__` 501-538): scale, bias over `feature_axes` (default -1).
- RMSNorm (`RMSNorm.__call__` 601-639): scale only (it passes use_bias=False to `_normalize`).
- BatchNorm (`BatchNorm.__call__` 358-375, 406-421): scale, bias in `params`; `mean` zeros and
  `var` ones in the `batch_stats` collection, float32 (`force_float32_reductions`). The bundle
  is flat: `m.mean`, `m.var` beside `m.scale`, `m.bias` (docs/decisions.md, Flax collections).
- GroupNorm (`GroupNorm.__call__` 727-819): scale, bias (channels,); exactly one of num_groups
  (default 32) and group_size, and channels divisible by it, as Flax requires (757-783).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.arguments import INFERRED, arg
from service.errors import ShapeError
from service.presets.base import Member, Preset, constant
from service.shapes import MAX_DIM, MAX_RANK, Shape

USE_BIAS = "learn an additive bias (beta)"
USE_SCALE = "learn a multiplicative scale (gamma)"


def _feature_shape() -> Any:
    return arg(
        "sizes of the feature axes (x.shape[ax] for ax in the feature axes): one int, or a list",
        ge=0,
        le=MAX_DIM,
        min_items=1,
        max_items=MAX_RANK,
        framework=INFERRED,
    )


@dataclass(frozen=True)
class LayerNormArgs:
    feature_shape: int | tuple[int, ...] = _feature_shape()
    use_bias: bool = arg(USE_BIAS, True)
    use_scale: bool = arg(USE_SCALE, True)


@dataclass(frozen=True)
class RMSNormArgs:
    feature_shape: int | tuple[int, ...] = _feature_shape()
    use_scale: bool = arg(USE_SCALE, True)


@dataclass(frozen=True)
class BatchNormArgs:
    feature_shape: int | tuple[int, ...] = _feature_shape()
    use_bias: bool = arg(USE_BIAS, True)
    use_scale: bool = arg(USE_SCALE, True)


@dataclass(frozen=True)
class GroupNormArgs:
    features: int = arg("channels of the input (x.shape[-1])", ge=0, le=MAX_DIM, framework=INFERRED)
    num_groups: int | None = arg(
        "number of channel groups (null when group_size is given)", 32, ge=1, le=MAX_DIM
    )
    group_size: int | None = arg(
        "channels per group (with num_groups null)", None, ge=1, le=MAX_DIM
    )
    use_bias: bool = arg(USE_BIAS, True)
    use_scale: bool = arg(USE_SCALE, True)


def _shape(size: int | tuple[int, ...]) -> Shape:
    return (size,) if isinstance(size, int) else tuple(size)


def _scale_and_bias(name: str, shape: Shape, scale: bool, bias: bool) -> list[Member]:
    """`_normalize`'s params: scale ones, then bias zeros (normalization.py 208-220)."""
    out = [constant(f"{name}.scale", shape, 1.0)] if scale else []
    return out + ([constant(f"{name}.bias", shape, 0.0)] if bias else [])


def layer_norm(name: str, a: LayerNormArgs) -> list[Member]:
    return _scale_and_bias(name, _shape(a.feature_shape), a.use_scale, a.use_bias)


def rms_norm(name: str, a: RMSNormArgs) -> list[Member]:
    return _scale_and_bias(name, _shape(a.feature_shape), a.use_scale, False)


def batch_norm(name: str, a: BatchNormArgs) -> list[Member]:
    """params scale, bias; batch_stats mean zeros, var ones (normalization.py 358-376)."""
    shape = _shape(a.feature_shape)
    stats = [constant(f"{name}.mean", shape, 0.0), constant(f"{name}.var", shape, 1.0)]
    return _scale_and_bias(name, shape, a.use_scale, a.use_bias) + stats


def _check_groups(a: GroupNormArgs) -> None:
    """normalization.py 757-783: exactly one of num_groups and group_size, dividing channels."""
    if (a.num_groups is None) == (a.group_size is None):
        raise ShapeError(
            f"flax.GroupNorm needs exactly one of num_groups and group_size; received "
            f"num_groups={a.num_groups}, group_size={a.group_size} (num_groups defaults to 32: "
            "give num_groups null with group_size)"
        )
    key, groups = (
        ("group_size", a.group_size) if a.num_groups is None else ("num_groups", a.num_groups)
    )
    if groups is not None and a.features % groups:
        raise ShapeError(f"flax.GroupNorm needs features={a.features} divisible by {key}={groups}")


def group_norm(name: str, a: GroupNormArgs) -> list[Member]:
    _check_groups(a)
    return _scale_and_bias(name, (a.features,), a.use_scale, a.use_bias)


def _count(a: LayerNormArgs | RMSNormArgs | BatchNormArgs | GroupNormArgs) -> int:
    bias = getattr(a, "use_bias", False)
    return int(a.use_scale) + int(bias) + (2 if isinstance(a, BatchNormArgs) else 0)


ROWS: tuple[Preset[Any], ...] = (
    Preset("flax.LayerNorm", "scale ones, bias zeros", LayerNormArgs, layer_norm, _count),
    Preset("flax.RMSNorm", "scale ones", RMSNormArgs, rms_norm, _count),
    Preset(
        "flax.BatchNorm",
        "params scale ones, bias zeros; batch_stats mean zeros, var ones",
        BatchNormArgs,
        batch_norm,
        _count,
    ),
    Preset("flax.GroupNorm", "scale ones, bias zeros", GroupNormArgs, group_norm, _count),
)
