"""Flax linen's Dense, Conv and Embed with their default initializers (`flax/linen/linear.py`):
Dense and Conv kernels lecun_normal (variance_scaling(1, fan_in, truncated_normal)), biases
zeros; Conv's kernel is (*kernel_size, in_features/feature_group_count, features); Embed's
embedding default_embed_init = variance_scaling(1, 'fan_in', 'normal', out_axis=0), i.e.
N(0, 1/features). Flax names the tensors kernel, bias and embedding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.arguments import INFERRED, arg
from service.presets.base import Member, Preset, divisible, zero_bias
from service.schemes import FanSpec, Params
from service.shapes import MAX_DIM, MAX_RANK

USE_BIAS = "learn an additive bias"


@dataclass(frozen=True)
class DenseArgs:
    in_features: int = arg(
        "features of the input (the kernel's rows)", ge=0, le=MAX_DIM, framework=INFERRED
    )
    features: int = arg("features of the output", ge=0, le=MAX_DIM)
    use_bias: bool = arg(USE_BIAS, True)


@dataclass(frozen=True)
class ConvArgs:
    in_features: int = arg("features (channels) of the input", ge=0, le=MAX_DIM, framework=INFERRED)
    features: int = arg("features (channels) of the output", ge=0, le=MAX_DIM)
    kernel_size: tuple[int, ...] = arg(
        "shape of the convolutional kernel, one int per spatial dimension",
        ge=0,
        le=MAX_DIM,
        min_items=1,
        max_items=MAX_RANK - 2,  # the kernel adds (in, out): its rank stays within MAX_RANK
    )
    feature_group_count: int = arg("groups of input features", 1, ge=1, le=MAX_DIM)
    use_bias: bool = arg(USE_BIAS, True)


@dataclass(frozen=True)
class EmbedArgs:
    num_embeddings: int = arg("number of embeddings (vocabulary size)", ge=0, le=MAX_DIM)
    features: int = arg("features of each embedding", ge=0, le=MAX_DIM)


def dense(name: str, a: DenseArgs) -> list[Member]:
    out = [Member(f"{name}.kernel", (a.in_features, a.features), "lecun_normal", "jax")]
    return out + zero_bias(name, a.features, a.use_bias)


def conv(name: str, a: ConvArgs) -> list[Member]:
    groups = a.feature_group_count
    divisible("feature_group_count", groups, in_features=a.in_features, features=a.features)
    shape = (*a.kernel_size, a.in_features // groups, a.features)
    out = [Member(f"{name}.kernel", shape, "lecun_normal", "jax")]
    return out + zero_bias(name, a.features, a.use_bias)


def embed(name: str, a: EmbedArgs) -> list[Member]:
    """variance_scaling(1, 'fan_in', 'normal', out_axis=0) = N(0, 1/features)."""
    shape = (a.num_embeddings, a.features)
    params = Params(factor=1.0, mode="fan_in", distribution="normal")
    fans = FanSpec(out_axes=(0,))
    return [Member(f"{name}.embedding", shape, "variance_scaling", "jax", params, fans)]


def kernel_and_bias(a: DenseArgs | ConvArgs) -> int:
    return 1 + a.use_bias


LECUN = "kernel lecun_normal (truncated), bias zeros"

ROWS: tuple[Preset[Any], ...] = (
    Preset("flax.Dense", LECUN, DenseArgs, dense, kernel_and_bias),
    Preset("flax.Conv", LECUN, ConvArgs, conv, kernel_and_bias),
    Preset("flax.Embed", "N(0, 1/features)", EmbedArgs, embed, lambda _: 1),
)
