"""GPT-2 / Megatron-style init, as `transformers/models/gpt2/modeling_gpt2.py`
(`GPT2PreTrainedModel._init_weights`) draws it: Linear weights and embeddings N(0, std²) with
std = initializer_range = 0.02, biases zeros, and the residual output projections (c_proj)
N(0, (std/√(2·n_layers))²). Named as torch's nn.Linear / nn.Embedding."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from service.arguments import INFERRED, arg
from service.errors import SchemeError
from service.presets.base import MAX_COUNT, Member, Preset, zero_bias
from service.schemes import Params
from service.shapes import MAX_DIM

STD = "standard deviation of the normal (initializer_range)"


@dataclass(frozen=True)
class LinearArgs:
    in_features: int = arg("size of each input sample", ge=0, le=MAX_DIM)
    out_features: int = arg("size of each output sample", ge=0, le=MAX_DIM)
    bias: bool = arg("learn an additive bias (zeros)", True)
    std: float = arg(STD, 0.02, ge=0.0, framework="initializer_range")
    residual: bool = arg(
        "a residual output projection: std/√(2·n_layers)", False, framework=INFERRED
    )
    n_layers: int | None = arg(
        "transformer layers of the model (needed with residual)",
        None,
        ge=1,
        le=MAX_COUNT,
        framework="n_layer",
    )


@dataclass(frozen=True)
class EmbeddingArgs:
    num_embeddings: int = arg("size of the vocabulary (or of the positions)", ge=0, le=MAX_DIM)
    embedding_dim: int = arg("size of each embedding vector", ge=0, le=MAX_DIM)
    std: float = arg(STD, 0.02, ge=0.0, framework="initializer_range")


def linear(name: str, a: LinearArgs) -> list[Member]:
    """N(0, std²); residual output projections std/√(2·n_layers)."""
    std = float(a.std)
    if a.residual:
        if a.n_layers is None or a.n_layers < 1:
            raise SchemeError(
                "gpt2.Linear with residual=true needs n_layers >= 1 (the std is "
                f"std/√(2·n_layers)); received n_layers={a.n_layers!r}"
            )
        std /= math.sqrt(2 * a.n_layers)
    shape = (a.out_features, a.in_features)
    out = [Member(f"{name}.weight", shape, "normal", "torch", Params(mean=0.0, std=std))]
    return out + zero_bias(name, a.out_features, a.bias)


def embedding(name: str, a: EmbeddingArgs) -> list[Member]:
    shape = (a.num_embeddings, a.embedding_dim)
    params = Params(mean=0.0, std=float(a.std))
    return [Member(f"{name}.weight", shape, "normal", "torch", params)]


ROWS: tuple[Preset[Any], ...] = (
    Preset(
        "gpt2.Linear",
        "N(0, std²), std 0.02; residual projections std/√(2·n_layers); bias zeros",
        LinearArgs,
        linear,
        lambda a: 1 + a.bias,
    ),
    Preset(
        "gpt2.Embedding",
        "N(0, std²), std 0.02",
        EmbeddingArgs,
        embedding,
        lambda _: 1,
    ),
)
