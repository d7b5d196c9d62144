"""megatron-core 0.19.2 `GPTModel` built with the local layer spec (`get_gpt_layer_local_spec`,
no TransformerEngine, no Apex, so every norm is torch's own through `WrappedTorchNorm`), as it
initializes with `use_cpu_initialization=True`: recipe `megatron.gpt`, under mcore's state-dict
names. `_extra_state` entries (always None for these layers) are not tensors and are left out.

The config is one flat dict of `TransformerConfig` fields and `GPTModel` arguments. The laws
(σ = init_method_std, L = num_layers, m = hidden_size/mup_base_hidden_size):
- `init_method` N(0, σ²) (N(0, σ²/m) with use_mup): linear_qkv, linear_fc1.
- `output_layer_init_method` N(0, σ²/(2L)) (N(0, σ²/(2L·m)) with use_mup): linear_proj,
  linear_fc2.
- `embedding_init_method` N(0, σ_e²), σ_e = embedding_init_method_std or σ, never width-scaled:
  word and learned position embeddings.
- the untied output_layer: `init_method` (σ) without muP, `embedding_init_method` (σ_e) with it
  (gpt_model.py:273-277); with share_embeddings_and_output_weights it has no weight at all.
- every bias 0; LayerNorm weight 1, bias 0; RMSNorm weight 1 (torch.nn.LayerNorm/RMSNorm as
  built; no zero-centered gamma: torch's norms refuse it).
All untruncated `torch.nn.init.normal_`; CPU init draws an fp32 master weight and casts it once
(layers.py:210-212), as a bundle does. muP (0.19.2) is the `use_mup` switch of
TransformerConfig itself, not the microsoft/mup package; its other effects (softmax scale,
embedding and logit multipliers) are forward-time and change no tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from service.arguments import arg
from service.errors import ShapeError
from service.presets.base import MAX_COUNT, Member
from service.recipes.base import Group, Recipe, layer_norm, linear, normal
from service.shapes import MAX_DIM

VERSION = "0.19.2"
CONFIG = "megatron/core/transformer/transformer_config.py"
UTILS = "megatron/core/utils.py"
GPT = "megatron/core/models/gpt/gpt_model.py"
EMBEDDING = "megatron/core/models/common/embeddings/language_model_embedding.py"
ATTENTION = "megatron/core/transformer/attention.py"
MLP = "megatron/core/transformer/mlp.py"
LAYERS = "megatron/core/tensor_parallel/layers.py"
NORM = "megatron/core/transformer/torch_norm.py"
LAYER = "megatron/core/transformer/transformer_layer.py"
BLOCK = "megatron/core/transformer/transformer_block.py"
SPECS = "megatron/core/models/gpt/gpt_layer_specs.py"
BACKENDS = "megatron/core/models/backends.py"
Normalization = Literal["LayerNorm", "RMSNorm"]
Positions = Literal["learned_absolute", "rope", "none"]


@dataclass(frozen=True)
class MegatronGPTConfig:
    """TransformerConfig fields and GPTModel arguments that decide the tensors, with mcore's
    defaults (its 0 defaults for the sizes build no model: those are required here)."""

    num_layers: int = arg("transformer layers (L)", ge=1, le=MAX_COUNT)
    hidden_size: int = arg("width of the residual stream (d)", ge=1, le=MAX_DIM)
    num_attention_heads: int = arg("query heads", ge=1, le=MAX_DIM)
    vocab_size: int = arg(
        "GPTModel vocab_size: rows of the embedding, as given (unpadded)", ge=1, le=MAX_DIM
    )
    max_sequence_length: int = arg(
        "GPTModel max_sequence_length: learned positions", ge=1, le=MAX_DIM
    )
    num_query_groups: int | None = arg(
        "key/value heads (GQA); null: num_attention_heads", None, ge=1, le=MAX_DIM
    )
    kv_channels: int | None = arg(
        "size of a head; null: hidden_size // num_attention_heads", None, ge=1, le=MAX_DIM
    )
    ffn_hidden_size: int | None = arg(
        "inner size of the MLP; null: 4·hidden_size", None, ge=1, le=MAX_DIM
    )
    gated_linear_unit: bool = arg("gated MLP: linear_fc1 holds gate and up, (2·ffn, d)", False)
    normalization: Normalization = arg("torch.nn.LayerNorm (weight, bias) or RMSNorm", "LayerNorm")
    add_bias_linear: bool = arg("biases on every linear layer (zeros)", True)
    add_qkv_bias: bool = arg("a bias on linear_qkv alone (zeros)", False)
    qk_layernorm: bool = arg("q_layernorm and k_layernorm of size kv_channels", False)
    attention_output_gate: bool = arg("linear_qkv gains a gate of heads·kv_channels rows", False)
    position_embedding_type: Positions = arg(
        "learned_absolute adds embedding.position_embeddings", "learned_absolute"
    )
    share_embeddings_and_output_weights: bool = arg(
        "the output layer uses the word embeddings (no output_layer.weight)", False
    )
    init_method_std: float = arg("σ of init_method", 0.02, ge=0.0)
    embedding_init_method_std: float | None = arg("σ of the embeddings; null: σ", None, ge=0.0)
    use_mup: bool = arg("muP: hidden weights ÷√m, m = hidden_size/mup_base_hidden_size", False)
    mup_base_hidden_size: int | None = arg(
        "muP base width; null: hidden_size (m = 1)", None, ge=1, le=MAX_DIM
    )
    layernorm_zero_centered_gamma: bool = arg("zero-centered gamma (refused: torch norms)", False)
    num_moe_experts: int | None = arg("MoE experts (not in this recipe)", None, ge=1, le=MAX_DIM)
    multi_latent_attention: bool = arg("MLA (not in this recipe)", False)
    mtp_num_layers: int | None = arg(
        "multi-token prediction (not in this recipe)", None, ge=1, le=MAX_DIM
    )


@dataclass(frozen=True)
class Stds:
    """The std of each init method (TransformerConfig.__post_init__, transformer_config.py:
    2197-2276), computed with mcore's own float expressions."""

    hidden: float  # init_method
    output: float  # output_layer_init_method
    embedding: float  # embedding_init_method
    head: float  # the untied output_layer


def stds(c: MegatronGPTConfig) -> Stds:
    sigma = float(c.init_method_std)
    emb = sigma if c.embedding_init_method_std is None else float(c.embedding_init_method_std)
    if not c.use_mup:
        return Stds(sigma, sigma / math.sqrt(2.0 * c.num_layers), emb, sigma)
    width = c.hidden_size / (c.mup_base_hidden_size or c.hidden_size)
    output = sigma / (math.sqrt(2.0 * c.num_layers) * math.sqrt(width))
    return Stds(sigma / math.sqrt(width), output, emb, emb)


@dataclass(frozen=True)
class Dims:
    """The sizes mcore derives (transformer_config.py:1329-1336, attention.py:332-333, 1678-1680,
    mlp.py:208-209)."""

    head: int  # kv_channels
    query: int  # heads · kv_channels: linear_proj's input
    qkv: int  # linear_qkv's output
    ffn: int  # linear_fc2's input
    fc1: int  # linear_fc1's output


def dims(c: MegatronGPTConfig) -> Dims:
    head = c.kv_channels or c.hidden_size // c.num_attention_heads
    groups = c.num_query_groups or c.num_attention_heads
    query = head * c.num_attention_heads
    qkv = query + 2 * head * groups + query * c.attention_output_gate
    ffn = c.ffn_hidden_size or 4 * c.hidden_size
    return Dims(head, query, qkv, ffn, 2 * ffn if c.gated_linear_unit else ffn)


REFUSED = {  # field: why; the recipe makes the dense GPT of the local spec
    "layernorm_zero_centered_gamma": "the local spec's torch norms assert it off "
    "(torch_norm.py:44-46)",
    "num_moe_experts": "MoE layers are not in this recipe",
    "multi_latent_attention": "multi-latent attention is not in this recipe",
    "mtp_num_layers": "multi-token prediction layers are not in this recipe",
}


def _check(c: MegatronGPTConfig) -> None:
    """What mcore refuses or cannot run, and what this recipe does not make."""
    for name, why in REFUSED.items():
        if getattr(c, name) not in (None, False):
            raise ShapeError(f"megatron.gpt refuses {name}: {why}")
    heads, groups = c.num_attention_heads, c.num_query_groups or c.num_attention_heads
    if heads % groups:  # keys are repeated heads // groups times (dot_product_attention.py:169)
        raise ShapeError(
            f"num_attention_heads={heads} must be divisible by num_query_groups={groups}"
        )
    if c.kv_channels is None and c.hidden_size < heads:
        raise ShapeError(
            f"hidden_size={c.hidden_size} // num_attention_heads={heads} is 0: set kv_channels"
        )


def _norm(name: str, size: int, c: MegatronGPTConfig) -> list[Member]:
    """torch.nn.LayerNorm (weight 1, bias 0) or torch.nn.RMSNorm (weight 1)."""
    return layer_norm(name, size, c.normalization == "LayerNorm")


def _layer(i: int, c: MegatronGPTConfig, s: Stds, n: Dims) -> list[Member]:
    p, d, bias = f"decoder.layers.{i}", c.hidden_size, c.add_bias_linear
    attn = f"{p}.self_attention"
    qk = [*_norm(f"{attn}.q_layernorm", n.head, c), *_norm(f"{attn}.k_layernorm", n.head, c)]
    return [
        *_norm(f"{p}.input_layernorm", d, c),
        *linear(f"{attn}.linear_proj", d, n.query, s.output, bias),
        *linear(f"{attn}.linear_qkv", n.qkv, d, s.hidden, bias or c.add_qkv_bias),
        *(qk if c.qk_layernorm else []),
        *_norm(f"{p}.pre_mlp_layernorm", d, c),
        *linear(f"{p}.mlp.linear_fc1", n.fc1, d, s.hidden, bias),
        *linear(f"{p}.mlp.linear_fc2", d, n.ffn, s.output, bias),
    ]


def gpt(c: MegatronGPTConfig) -> list[Member]:
    """GPTModel's state dict (pre_process and post_process, tensor-parallel size 1)."""
    _check(c)
    s, n, shape = stds(c), dims(c), (c.vocab_size, c.hidden_size)
    out = [normal("embedding.word_embeddings.weight", shape, s.embedding)]
    if c.position_embedding_type == "learned_absolute":
        positions = (c.max_sequence_length, c.hidden_size)
        out.append(normal("embedding.position_embeddings.weight", positions, s.embedding))
    for i in range(c.num_layers):
        out += _layer(i, c, s, n)
    out += _norm("decoder.final_layernorm", c.hidden_size, c)
    if c.share_embeddings_and_output_weights:
        return out
    return [*out, normal("output_layer.weight", shape, s.head)]


def count(c: MegatronGPTConfig) -> int:
    """How many tensors `gpt` names, in O(1)."""
    norm = 1 + (c.normalization == "LayerNorm")
    layer = 2 * norm + 4 + 3 * c.add_bias_linear + (c.add_bias_linear or c.add_qkv_bias)
    top = 1 + (c.position_embedding_type == "learned_absolute") + norm
    return (
        top
        + (not c.share_embeddings_and_output_weights)
        + c.num_layers * (layer + 2 * norm * c.qk_layernorm)
    )


MUP = "with use_mup: m = hidden_size/(mup_base_hidden_size or hidden_size)"
GROUPS = (
    Group("embedding.word_embeddings.weight (vocab_size, d), "
          "embedding.position_embeddings.weight (max_sequence_length, d; learned_absolute)",
          "normal", "N(0, σ_e²), σ_e = embedding_init_method_std or σ; not width-scaled by muP",
          f"{CONFIG}:2238-2246; {EMBEDDING}:56-73; {LAYERS}:278-295"),
    Group("decoder.layers.{i}.self_attention.linear_qkv.weight "
          "((heads + 2·query_groups [+ heads with attention_output_gate])·kv_channels, d), "
          "decoder.layers.{i}.mlp.linear_fc1.weight (ffn or 2·ffn gated, d)", "normal",
          f"init_method: N(0, σ²); N(0, σ²/m) {MUP}",
          f"{CONFIG}:2254-2261; {UTILS}:828-830; {ATTENTION}:1678-1693; {MLP}:204-235"),
    Group("decoder.layers.{i}.self_attention.linear_proj.weight (d, heads·kv_channels), "
          "decoder.layers.{i}.mlp.linear_fc2.weight (d, ffn)", "normal",
          f"output_layer_init_method: N(0, σ²/(2L)); N(0, σ²/(2L·m)) {MUP}",
          f"{CONFIG}:2263-2276; {UTILS}:833-857; {ATTENTION}:413-425; {MLP}:242-256"),
    Group("output_layer.weight (vocab_size, d; absent with share_embeddings_and_output_weights)",
          "normal", "N(0, σ²); with use_mup N(0, σ_e²) (embedding_init_method)", f"{GPT}:264-286"),
    Group("biases of linear_qkv (add_bias_linear or add_qkv_bias), linear_proj, linear_fc1, "
          "linear_fc2 (add_bias_linear)", "zeros", "0",
          f"{LAYERS}:1046-1049, 1408-1411; {ATTENTION}:1687"),
    Group("decoder.layers.{i}.{input,pre_mlp}_layernorm.weight, "
          ".self_attention.{q,k}_layernorm.weight (kv_channels; qk_layernorm), "
          "decoder.final_layernorm.weight", "ones", "1 (torch.nn.LayerNorm or RMSNorm as built)",
          f"{SPECS}:394-401; {BACKENDS}:33-37, 118-127; {NORM}:56-69; {LAYER}:354-358, 406-410; "
          f"{ATTENTION}:1722-1739; {BLOCK}:376-380"),
    Group("the same norms' .bias (normalization LayerNorm)", "zeros", "0", f"{NORM}:56-57, 69"),
)  # fmt: skip

ROWS: tuple[Recipe[Any], ...] = (
    Recipe(
        "megatron.gpt",
        "megatron-core GPTModel (local spec): init_method N(0, σ²), linear_proj/linear_fc2 "
        "σ/√(2L), embeddings embedding_init_method_std or σ, muP ÷√m, biases 0, norms 1/0",
        "megatron-core",
        VERSION,
        "GPTModel",
        "megatron.gpt",
        MegatronGPTConfig,
        gpt,
        count,
        GROUPS,
    ),
)
