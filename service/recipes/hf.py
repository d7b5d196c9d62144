"""Hugging Face transformers 5.x causal LMs, as `from_config` initializes them: `hf.gpt2`
(GPT2LMHeadModel), `hf.llama` (LlamaForCausalLM), `hf.mistral` (MistralForCausalLM) and
`hf.qwen2` (Qwen2ForCausalLM), under their state-dict names and layouts.

The laws are `PreTrainedModel._init_weights` (`modeling_utils.py`): σ = initializer_range, or
0.02 when it is 0; every nn.Linear N(0, σ²), bias 0; nn.Embedding N(0, σ²) then its padding_idx
row 0; LayerNorm/RMSNorm weight 1, bias 0. GPT-2 adds its own (`GPT2PreTrainedModel
._init_weights`): Conv1D weights, stored (in, out), N(0, initializer_range²) and then both
`c_proj.weight`s N(0, (initializer_range/√(2·n_layer))²). A tied `lm_head.weight` is the
embedding itself (`_tied_weights_keys`). Sources cited per group (file:line, transformers 5.24.0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from service.arguments import arg
from service.errors import ShapeError
from service.presets.base import MAX_COUNT, Member
from service.recipes.base import (
    Group,
    Recipe,
    layer_norm,
    linear,
    normal,
    ones,
    residual_std,
    tied,
    zeros,
)
from service.shapes import MAX_DIM

VERSION = "5.24.0"
UTILS = "transformers/modeling_utils.py"
GPT2 = "transformers/models/gpt2/modeling_gpt2.py"
SIGMA = "σ = initializer_range, or 0.02 where it is 0"
INIT_RANGE = "std of the normal init (σ); 0 means 0.02 in PreTrainedModel._init_weights"


# ACT2FN's entries (transformers/activations.py) whose module holds no tensor: `prelu` and
# `xielu` carry parameters of their own that _init_weights does not touch, so they are refused
Activation = Literal[
    "gelu", "gelu_10", "gelu_accurate", "gelu_fast", "gelu_new", "gelu_python",
    "gelu_python_tanh", "gelu_pytorch_tanh", "hardswish", "laplace", "leaky_relu", "linear",
    "mish", "quick_gelu", "relu", "relu2", "relu6", "sigmoid", "silu", "sqrtsoftplus", "swish",
    "tanh",
]  # fmt: skip


def _sigma(initializer_range: float) -> float:
    """`std = self.config.initializer_range or 0.02` (modeling_utils.py:2311)."""
    return float(initializer_range) or 0.02


def _padding(pad: int | None, vocab: int) -> tuple[int, ...]:
    """nn.Embedding's padding_idx: a row of the vocabulary (negative counts from the end)."""
    if pad is None:
        return ()
    if not -vocab <= pad < vocab:
        raise ShapeError(f"pad_token_id={pad} must be a row of the vocabulary of {vocab}")
    return (pad % vocab,)


# --- GPT-2 ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GPT2Config:
    vocab_size: int = arg("size of the vocabulary (wte rows)", 50257, ge=1, le=MAX_DIM)
    n_positions: int = arg("positions (wpe rows)", 1024, ge=1, le=MAX_DIM)
    n_embd: int = arg("width of the residual stream (d)", 768, ge=1, le=MAX_DIM)
    n_layer: int = arg("transformer blocks (L)", 12, ge=0, le=MAX_COUNT)
    n_head: int = arg("attention heads (must divide n_embd)", 12, ge=1, le=MAX_DIM)
    n_inner: int | None = arg("inner size of the MLP; null: 4·n_embd", None, ge=1, le=MAX_DIM)
    initializer_range: float = arg(INIT_RANGE + " (Conv1D: used as given)", 0.02, ge=0.0)
    tie_word_embeddings: bool = arg("lm_head.weight is transformer.wte.weight", True)
    activation_function: Activation = arg("activation of the MLP (no tensor of its own)",
                                          "gelu_new")  # fmt: skip
    add_cross_attention: bool = arg("cross-attention blocks (not in this recipe)", False)


def _gpt2_block(i: int, c: GPT2Config) -> list[Member]:
    p, d = f"transformer.h.{i}", c.n_embd
    inner = c.n_inner if c.n_inner is not None else 4 * d
    std = float(c.initializer_range)
    res = residual_std(std, c.n_layer)
    return [
        *layer_norm(f"{p}.ln_1", d),
        normal(f"{p}.attn.c_attn.weight", (d, 3 * d), std),
        zeros(f"{p}.attn.c_attn.bias", (3 * d,)),
        normal(f"{p}.attn.c_proj.weight", (d, d), res),
        zeros(f"{p}.attn.c_proj.bias", (d,)),
        *layer_norm(f"{p}.ln_2", d),
        normal(f"{p}.mlp.c_fc.weight", (d, inner), std),
        zeros(f"{p}.mlp.c_fc.bias", (inner,)),
        normal(f"{p}.mlp.c_proj.weight", (inner, d), res),
        zeros(f"{p}.mlp.c_proj.bias", (d,)),
    ]


def gpt2(c: GPT2Config) -> list[Member]:
    """GPT2LMHeadModel's state dict (Conv1D weights (in, out))."""
    if c.add_cross_attention:
        raise ShapeError("hf.gpt2 does not make cross-attention blocks (add_cross_attention)")
    if c.n_embd % c.n_head:
        raise ShapeError(f"n_embd={c.n_embd} must be divisible by n_head={c.n_head}")
    d, sigma = c.n_embd, _sigma(c.initializer_range)
    out = [
        normal("transformer.wte.weight", (c.vocab_size, d), sigma),
        normal("transformer.wpe.weight", (c.n_positions, d), sigma),
    ]
    for i in range(c.n_layer):
        out += _gpt2_block(i, c)
    out += [ones("transformer.ln_f.weight", (d,)), zeros("transformer.ln_f.bias", (d,))]
    if c.tie_word_embeddings:
        return [*out, tied("lm_head.weight", (c.vocab_size, d), "transformer.wte.weight")]
    return [*out, normal("lm_head.weight", (c.vocab_size, d), sigma)]


GPT2_GROUPS = (
    Group("transformer.wte.weight, transformer.wpe.weight", "normal",
          f"N(0, σ²), {SIGMA}; no padding row", f"{UTILS}:2331-2332; {GPT2}:491-492"),
    Group("transformer.h.{i}.attn.c_attn.weight (d, 3d), .mlp.c_fc.weight (d, n_inner)",
          "normal", "N(0, initializer_range²); Conv1D stores (in, out)",
          f"{GPT2}:435-436; transformers/pytorch_utils.py:110"),
    Group("transformer.h.{i}.attn.c_proj.weight (d, d), .mlp.c_proj.weight (n_inner, d)",
          "normal", "N(0, (initializer_range/√(2·n_layer))²)", f"{GPT2}:446-449"),
    Group("transformer.h.{i}.{attn.c_attn,attn.c_proj,mlp.c_fc,mlp.c_proj}.bias", "zeros",
          "0", f"{GPT2}:437-438"),
    Group("transformer.h.{i}.ln_{1,2}.weight, transformer.ln_f.weight", "ones", "1",
          f"{UTILS}:2344-2348"),
    Group("transformer.h.{i}.ln_{1,2}.bias, transformer.ln_f.bias", "zeros", "0",
          f"{UTILS}:2349-2350"),
    Group("lm_head.weight (tie_word_embeddings)", "tied", "= transformer.wte.weight",
          f"{GPT2}:637"),
    Group("lm_head.weight (untied)", "normal", f"N(0, σ²), {SIGMA}",
          f"{UTILS}:2320-2322; {GPT2}:642"),
)  # fmt: skip


# --- Llama, Mistral, Qwen2 --------------------------------------------------------------------


@dataclass(frozen=True)
class DecoderConfig:
    """The fields Llama, Mistral and Qwen2 read for their tensors (Llama's defaults)."""

    vocab_size: int = arg("size of the vocabulary", 32000, ge=1, le=MAX_DIM)
    hidden_size: int = arg("width of the residual stream (d)", 4096, ge=1, le=MAX_DIM)
    intermediate_size: int = arg("inner size of the gated MLP", 11008, ge=1, le=MAX_DIM)
    num_hidden_layers: int = arg("decoder layers (L)", 32, ge=0, le=MAX_COUNT)
    num_attention_heads: int = arg("query heads", 32, ge=1, le=MAX_DIM)
    num_key_value_heads: int | None = arg(
        "key/value heads (GQA); null: num_attention_heads", None, ge=1, le=MAX_DIM
    )
    head_dim: int | None = arg(
        "size of a head; null: hidden_size // num_attention_heads", None, ge=1, le=MAX_DIM
    )
    initializer_range: float = arg(INIT_RANGE, 0.02, ge=0.0, le=1.0)
    pad_token_id: int | None = arg(
        "row of embed_tokens left zero (its padding_idx)", None, ge=-MAX_DIM, le=MAX_DIM
    )
    tie_word_embeddings: bool = arg("lm_head.weight is model.embed_tokens.weight", False)
    hidden_act: Activation = arg("activation of the MLP (no tensor of its own)", "silu")


@dataclass(frozen=True)
class LlamaConfig(DecoderConfig):
    attention_bias: bool = arg("biases on q/k/v/o_proj (zeros)", False)
    mlp_bias: bool = arg("biases on gate/up/down_proj (zeros)", False)


@dataclass(frozen=True)
class MistralConfig(DecoderConfig):
    intermediate_size: int = arg("inner size of the gated MLP", 14336, ge=1, le=MAX_DIM)
    num_key_value_heads: int | None = arg(
        "key/value heads (GQA); null: num_attention_heads", 8, ge=1, le=MAX_DIM
    )


@dataclass(frozen=True)
class Qwen2Config(DecoderConfig):
    vocab_size: int = arg("size of the vocabulary", 151936, ge=1, le=MAX_DIM)
    intermediate_size: int = arg("inner size of the gated MLP", 22016, ge=1, le=MAX_DIM)
    num_key_value_heads: int | None = arg(
        "key/value heads (GQA); null: num_attention_heads", 32, ge=1, le=MAX_DIM
    )


@dataclass(frozen=True)
class Biases:
    """Which projections of a decoder layer have a bias (each zeros)."""

    qkv: bool = False
    o: bool = False
    mlp: bool = False

    def count(self) -> int:
        return 3 * self.qkv + self.o + 3 * self.mlp


def _biases(c: DecoderConfig, family: str) -> Biases:
    if family == "qwen2":
        return Biases(qkv=True)
    if isinstance(c, LlamaConfig):
        return Biases(c.attention_bias, c.attention_bias, c.mlp_bias)
    return Biases()


def _decoder_layer(i: int, c: DecoderConfig, b: Biases) -> list[Member]:
    p, d, ff, std = (
        f"model.layers.{i}",
        c.hidden_size,
        c.intermediate_size,
        _sigma(c.initializer_range),
    )
    hd = c.head_dim or c.hidden_size // c.num_attention_heads
    q, kv = c.num_attention_heads * hd, (c.num_key_value_heads or c.num_attention_heads) * hd
    return [
        *linear(f"{p}.self_attn.q_proj", q, d, std, b.qkv),
        *linear(f"{p}.self_attn.k_proj", kv, d, std, b.qkv),
        *linear(f"{p}.self_attn.v_proj", kv, d, std, b.qkv),
        *linear(f"{p}.self_attn.o_proj", d, q, std, b.o),
        *linear(f"{p}.mlp.gate_proj", ff, d, std, b.mlp),
        *linear(f"{p}.mlp.up_proj", ff, d, std, b.mlp),
        *linear(f"{p}.mlp.down_proj", d, ff, std, b.mlp),
        ones(f"{p}.input_layernorm.weight", (d,)),
        ones(f"{p}.post_attention_layernorm.weight", (d,)),
    ]


def _decoder(c: DecoderConfig, family: str) -> list[Member]:
    """*ForCausalLM's state dict: embed_tokens, the layers, norm, lm_head (tied or not)."""
    heads, kv = c.num_attention_heads, c.num_key_value_heads or c.num_attention_heads
    if heads % kv:
        raise ShapeError(
            f"num_attention_heads={heads} must be divisible by num_key_value_heads={kv}"
        )
    std, shape = _sigma(c.initializer_range), (c.vocab_size, c.hidden_size)
    pad = _padding(c.pad_token_id, c.vocab_size)
    out = [normal("model.embed_tokens.weight", shape, std, pad)]
    biases = _biases(c, family)
    for i in range(c.num_hidden_layers):
        out += _decoder_layer(i, c, biases)
    out.append(ones("model.norm.weight", (c.hidden_size,)))
    if c.tie_word_embeddings:
        return [*out, tied("lm_head.weight", shape, "model.embed_tokens.weight")]
    return [*out, normal("lm_head.weight", shape, std)]


def _decoder_count(c: DecoderConfig, family: str) -> int:
    return 3 + c.num_hidden_layers * (9 + _biases(c, family).count())


def _decoder_groups(family: str, lines: dict[str, str]) -> tuple[Group, ...]:
    src = f"transformers/models/{family}/modeling_{family}.py"
    linear = f"{UTILS}:2320-2322"
    bias = {
        "llama": ("q/k/v/o_proj (attention_bias), gate/up/down_proj (mlp_bias)", lines["attn"]),
        "qwen2": ("q_proj, k_proj, v_proj (always)", lines["attn"]),
    }.get(family)
    groups = [
        Group("model.embed_tokens.weight (vocab, d)", "normal",
              f"N(0, σ²), {SIGMA}; row pad_token_id 0 where set",
              f"{UTILS}:2311, 2331-2335; {src}:{lines['embed']}"),
        Group("model.layers.{i}.self_attn.{q,k,v,o}_proj.weight: q (heads·head_dim, d), "
              "k, v (kv_heads·head_dim, d), o (d, heads·head_dim)", "normal",
              f"N(0, σ²), {SIGMA}; no depth scaling", f"{linear}; {src}:{lines['attn']}"),
        Group("model.layers.{i}.mlp.{gate,up}_proj.weight (ff, d), .down_proj.weight (d, ff)",
              "normal", f"N(0, σ²), {SIGMA}", f"{linear}; {src}:{lines['mlp']}"),
        Group("model.layers.{i}.{input,post_attention}_layernorm.weight, model.norm.weight",
              "ones", "1 (RMSNorm)", f"{UTILS}:2344-2348; {src}:{lines['norm']}"),
        Group("lm_head.weight (tie_word_embeddings)", "tied", "= model.embed_tokens.weight",
              f"{src}:{lines['tied']}"),
        Group("lm_head.weight (untied)", "normal", f"N(0, σ²), {SIGMA}",
              f"{linear}; {src}:{lines['head']}"),
    ]  # fmt: skip
    if bias is not None:
        groups.insert(3, Group(f"biases of {bias[0]}", "zeros", "0", f"{UTILS}:2323-2324; "
                               f"{src}:{bias[1]}"))  # fmt: skip
    return tuple(groups)


def _family(family: str, model: str, config: type[Any], summary: str) -> Recipe[Any]:
    lines = LINES[family]
    return Recipe(
        f"hf.{family}",
        summary,
        "transformers",
        VERSION,
        model,
        family,
        config,
        lambda c: _decoder(c, family),
        lambda c: _decoder_count(c, family),
        _decoder_groups(family, lines),
    )


LINES = {  # where each module is built, in transformers 5.24.0's models/<family>/modeling_*.py
    "llama": {"embed": "343", "attn": "219-230", "mlp": "158-160", "norm": "282-283, 347",
              "tied": "413", "head": "422"},
    "mistral": {"embed": "316", "attn": "134-137", "mlp": "41-43", "norm": "209-210, 320",
                "tied": "386", "head": "395"},
    "qwen2": {"embed": "320", "attn": "181-184", "mlp": "41-43", "norm": "259-260, 324",
              "tied": "401", "head": "410"},
}  # fmt: skip

ROWS: tuple[Recipe[Any], ...] = (
    Recipe(
        "hf.gpt2",
        "GPT2LMHeadModel: N(0, 0.02²), residual c_proj 0.02/√(2·n_layer), lm_head tied to wte",
        "transformers",
        VERSION,
        "GPT2LMHeadModel",
        "gpt2",
        GPT2Config,
        gpt2,
        lambda c: 5 + 12 * c.n_layer,
        GPT2_GROUPS,
    ),
    _family("llama", "LlamaForCausalLM", LlamaConfig, "LlamaForCausalLM: every Linear and the "
            "embedding N(0, 0.02²) (padding row 0), RMSNorm 1, GQA, lm_head tied if asked"),
    _family("mistral", "MistralForCausalLM", MistralConfig, "MistralForCausalLM: as Llama "
            "without biases (GQA: 8 key/value heads by default)"),
    _family("qwen2", "Qwen2ForCausalLM", Qwen2Config, "Qwen2ForCausalLM: as Llama, with zero "
            "q/k/v biases"),
)  # fmt: skip
