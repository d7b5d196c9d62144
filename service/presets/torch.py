"""torch.nn's Linear, Bilinear, Embedding and Conv/ConvTranspose{1,2,3}d, each parameter with
its `reset_parameters` init (distribution-wise).

`torch.Linear` named `mlp.fc1` with in_features=768, out_features=3072 becomes `mlp.fc1.weight`
(3072, 768), kaiming_uniform(a=√5) = U(±1/√768), and `mlp.fc1.bias` (3072,), U(±1/√768)
(`torch/nn/modules/linear.py`). Bilinear: weight and bias U(±1/√in1_features) (same file).
Embedding: N(0, 1), the padding_idx row zeroed (`torch/nn/modules/sparse.py`). Conv: the weight
(out, in/groups, *k), transposed (in, out/groups, *k), kaiming_uniform(a=√5), bias
U(±1/√fan_in) (`torch/nn/modules/conv.py`, `_ConvNd.reset_parameters`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.arguments import arg
from service.presets.base import (
    MAX_KERNEL_DIMS,
    Member,
    Preset,
    divisible,
    kernel,
    torch_weight_and_bias,
    uniform,
)
from service.schemes import Params
from service.shapes import MAX_DIM

BIAS = "learn an additive bias"


@dataclass(frozen=True)
class LinearArgs:
    in_features: int = arg("size of each input sample", ge=0, le=MAX_DIM)
    out_features: int = arg("size of each output sample", ge=0, le=MAX_DIM)
    bias: bool = arg(BIAS, True)


@dataclass(frozen=True)
class BilinearArgs:
    in1_features: int = arg("size of each first input sample", ge=0, le=MAX_DIM)
    in2_features: int = arg("size of each second input sample", ge=0, le=MAX_DIM)
    out_features: int = arg("size of each output sample", ge=0, le=MAX_DIM)
    bias: bool = arg(BIAS, True)


@dataclass(frozen=True)
class EmbeddingArgs:
    num_embeddings: int = arg("size of the dictionary of embeddings", ge=0, le=MAX_DIM)
    embedding_dim: int = arg("size of each embedding vector", ge=0, le=MAX_DIM)
    padding_idx: int | None = arg(
        "the row left zero (negative counts from the end)", None, ge=-MAX_DIM, le=MAX_DIM
    )


@dataclass(frozen=True)
class ConvArgs:
    in_channels: int = arg("channels of the input", ge=0, le=MAX_DIM)
    out_channels: int = arg("channels produced by the convolution", ge=0, le=MAX_DIM)
    kernel_size: int | tuple[int, ...] = arg(
        "size of the kernel: one int for every dimension, or one per dimension",
        ge=0,
        le=MAX_DIM,
        min_items=1,
        max_items=MAX_KERNEL_DIMS,
    )
    groups: int = arg("blocked connections from input to output channels", 1, ge=1, le=MAX_DIM)
    bias: bool = arg(BIAS, True)


def linear(name: str, a: LinearArgs) -> list[Member]:
    bias = a.out_features if a.bias else None
    return torch_weight_and_bias(name, (a.out_features, a.in_features), bias)


def bilinear(name: str, a: BilinearArgs) -> list[Member]:
    bound = 1 / math.sqrt(a.in1_features) if a.in1_features > 0 else 0.0
    shape = (a.out_features, a.in1_features, a.in2_features)
    out = [uniform(f"{name}.weight", shape, bound)]
    if a.bias:
        out.append(uniform(f"{name}.bias", (a.out_features,), bound))
    return out


def embedding(name: str, a: EmbeddingArgs) -> list[Member]:
    rows = () if a.padding_idx is None else (a.padding_idx,)
    shape = (a.num_embeddings, a.embedding_dim)
    params = Params(mean=0.0, std=1.0)
    return [Member(f"{name}.weight", shape, "normal", "torch", params, zero_rows=rows)]


def conv(dims: int, transposed: bool) -> Callable[[str, ConvArgs], list[Member]]:
    def expand(name: str, a: ConvArgs) -> list[Member]:
        divisible("groups", a.groups, in_channels=a.in_channels, out_channels=a.out_channels)
        cin, cout, k = a.in_channels, a.out_channels, kernel(a.kernel_size, dims)
        weight = (cin, cout // a.groups, *k) if transposed else (cout, cin // a.groups, *k)
        return torch_weight_and_bias(name, weight, cout if a.bias else None)

    return expand


def weight_and_bias(a: LinearArgs | BilinearArgs | ConvArgs) -> int:
    return 1 + a.bias


ROWS: tuple[Preset[Any], ...] = (
    Preset(
        "torch.Linear",
        "weight kaiming_uniform(a=√5) = U(±1/√in), bias U(±1/√in)",
        LinearArgs,
        linear,
        weight_and_bias,
    ),
    Preset(
        "torch.Bilinear",
        "weight and bias U(±1/√in1_features)",
        BilinearArgs,
        bilinear,
        weight_and_bias,
    ),
    Preset(
        "torch.Embedding",
        "N(0, 1); the padding_idx row zero",
        EmbeddingArgs,
        embedding,
        lambda _: 1,
    ),
)


def spatial(dims: int) -> tuple[Preset[Any], ...]:
    """The presets of `dims`-d layers (1, 2, 3)."""
    return (
        Preset(
            f"torch.Conv{dims}d",
            "weight kaiming_uniform(a=√5), bias U(±1/√fan_in)",
            ConvArgs,
            conv(dims, transposed=False),
            weight_and_bias,
        ),
        Preset(
            f"torch.ConvTranspose{dims}d",
            "as Conv; fans from the (in, out/groups, *k) weight",
            ConvArgs,
            conv(dims, transposed=True),
            weight_and_bias,
        ),
    )
