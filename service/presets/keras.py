"""Keras 3's Dense, Embedding and Conv{1,2,3}D with their default initializers: Dense kernel
glorot_uniform, bias zeros (`keras/src/layers/core/dense.py`); Embedding embeddings "uniform" =
RandomUniform(-0.05, 0.05) (`keras/src/layers/core/embedding.py`); Conv kernel
(*kernel_size, in_channels/groups, filters) glorot_uniform, bias zeros
(`keras/src/layers/convolutional/base_conv.py`). Keras names the tensors kernel, bias and
embeddings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.arguments import INFERRED, arg
from service.presets.base import MAX_KERNEL_DIMS, Member, Preset, divisible, kernel, zero_bias
from service.shapes import MAX_DIM

USE_BIAS = "learn an additive bias"


@dataclass(frozen=True)
class DenseArgs:
    input_dim: int = arg(
        "features of the input (the kernel's rows)", ge=0, le=MAX_DIM, framework=INFERRED
    )
    units: int = arg("dimensionality of the output space", ge=0, le=MAX_DIM)
    use_bias: bool = arg(USE_BIAS, True)


@dataclass(frozen=True)
class EmbeddingArgs:
    input_dim: int = arg("size of the vocabulary", ge=0, le=MAX_DIM)
    output_dim: int = arg("dimension of the dense embedding", ge=0, le=MAX_DIM)


@dataclass(frozen=True)
class ConvArgs:
    in_channels: int = arg("channels of the input", ge=0, le=MAX_DIM, framework=INFERRED)
    filters: int = arg("dimensionality of the output space (output channels)", ge=0, le=MAX_DIM)
    kernel_size: int | tuple[int, ...] = arg(
        "size of the convolution window: one int for every dimension, or one per dimension",
        ge=0,
        le=MAX_DIM,
        min_items=1,
        max_items=MAX_KERNEL_DIMS,
    )
    groups: int = arg("groups the input is split into along the channels", 1, ge=1, le=MAX_DIM)
    use_bias: bool = arg(USE_BIAS, True)


def dense(name: str, a: DenseArgs) -> list[Member]:
    out = [Member(f"{name}.kernel", (a.input_dim, a.units), "glorot_uniform", "keras")]
    return out + zero_bias(name, a.units, a.use_bias)


def embedding(name: str, a: EmbeddingArgs) -> list[Member]:
    shape = (a.input_dim, a.output_dim)
    return [Member(f"{name}.embeddings", shape, "uniform", "keras")]  # RandomUniform(±0.05)


def conv(dims: int) -> Callable[[str, ConvArgs], list[Member]]:
    def expand(name: str, a: ConvArgs) -> list[Member]:
        divisible("groups", a.groups, in_channels=a.in_channels, filters=a.filters)
        shape = (*kernel(a.kernel_size, dims), a.in_channels // a.groups, a.filters)
        out = [Member(f"{name}.kernel", shape, "glorot_uniform", "keras")]
        return out + zero_bias(name, a.filters, a.use_bias)

    return expand


def kernel_and_bias(a: DenseArgs | ConvArgs) -> int:
    return 1 + a.use_bias


ROWS: tuple[Preset[Any], ...] = (
    Preset("keras.Dense", "kernel glorot_uniform, bias zeros", DenseArgs, dense, kernel_and_bias),
    Preset(
        "keras.Embedding",
        "embeddings RandomUniform(±0.05)",
        EmbeddingArgs,
        embedding,
        lambda _: 1,
    ),
)


def spatial(dims: int) -> tuple[Preset[Any], ...]:
    """Conv{dims}D."""
    return (
        Preset(
            f"keras.Conv{dims}D",
            "kernel glorot_uniform, bias zeros",
            ConvArgs,
            conv(dims),
            kernel_and_bias,
        ),
    )
