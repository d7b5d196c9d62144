"""OLMo v1 (allenai/OLMo, `olmo/model.py`, `olmo/config.py`, `olmo/initialization.py` at commit
59a53e3f68e546330ca5a99ec626e58f9ab96494, version 0.6.0): the `OLMo` module with sequential
blocks as `OLMo.__init__` builds and `reset_parameters` initializes it, under its state-dict names
(`transformer.wte.weight`, `transformer.blocks.{i}.att_proj.weight`, …; the hf_olmo wrapper
prefixes them with `model.`).

Every weight goes through `init_normal` (initialization.py:8-22): `trunc_normal_(std=s, a=-c·s,
b=c·s)` with c = `init_cutoff_factor`, or `normal_(std=s)` when c is None; biases 0; layer norms
1/0. With d = d_model, L = n_layers, ℓ the 0-based layer, σ = init_std:

| tensor | normal | mitchell | full_megatron |
|---|---|---|---|
| cutoff c | init_cutoff_factor (None: untruncated) | init_cutoff_factor or 3 | the same |
| wte | emb_init_std or σ | emb_init_std or 1/√d | emb_init_std, else σ (·√d: scale_emb_init) |
| wpe | σ | 1/√d | σ |
| att_proj, ff_proj | σ | 1/√d | σ |
| attn_out | σ | 1/√(2·d·(ℓ+1)) | σ/√(2L) |
| block ff_out | σ | 1/√(2·ff_out.in_features·(ℓ+1)) | σ/√(2L) |
| final ff_out | σ | 1/√d | 1/√d |

`ff_proj` is (hidden, d) with hidden = mlp_hidden_size or mlp_ratio·d; SwiGLU halves it before
the block's `ff_out` ((d, hidden/2): output_multiplier 0.5, model.py:365-372). `wte` (and the untied
`ff_out`) have `embedding_size or vocab_size` rows, the padding rows drawn like the rest.

model_type `hf_olmo`: the hf_olmo wrapper's (hf_olmo/configuration_olmo.py:15), whose
`config.json` holds exactly these ModelConfig fields, so an OLMo v1 checkpoint's config.json is
read; a transformers-native `olmo` config (fields `hidden_size`, …) is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from service.arguments import arg
from service.errors import ShapeError
from service.presets.base import MAX_COUNT, Member
from service.recipes.base import Group, Recipe, cutoff_normal, ones, zeros
from service.shapes import MAX_DIM

COMMIT = "59a53e3f68e546330ca5a99ec626e58f9ab96494"
MODEL = "olmo/model.py"
INIT = "olmo/initialization.py:8-22"
InitFn = Literal["normal", "mitchell", "full_megatron"]  # kaiming_normal, fan_in: model.py raises


@dataclass(frozen=True)
class OlmoConfig:
    """olmo.config.ModelConfig's fields that shape a tensor or its law (config.py:235-476),
    with its defaults (GPT-2 small's sizes)."""

    d_model: int = arg("width of the residual stream (d)", 768, ge=1, le=MAX_DIM)
    n_heads: int = arg("attention heads (must divide d_model)", 12, ge=1, le=MAX_DIM)
    n_kv_heads: int | None = arg("key/value heads; null: n_heads", None, ge=1, le=MAX_DIM)
    multi_query_attention: bool | None = arg("deprecated: true means n_kv_heads 1", None)
    n_layers: int = arg("blocks (L)", 12, ge=1, le=MAX_COUNT)
    mlp_ratio: int = arg("hidden = mlp_ratio·d_model unless mlp_hidden_size", 4, ge=1,
                         le=MAX_DIM)  # fmt: skip
    mlp_hidden_size: int | None = arg("the MLP's hidden size (ff_proj rows)", None, ge=1,
                                      le=MAX_DIM)  # fmt: skip
    activation_type: Literal["gelu", "relu", "swiglu"] = arg(
        "swiglu halves the hidden size before ff_out", "swiglu"
    )
    block_type: Literal["sequential", "llama"] = arg("only sequential is made", "sequential")
    block_group_size: int = arg("blocks per block group (names block_groups.{g}.{j})", 1, ge=1,
                                le=MAX_COUNT)  # fmt: skip
    alibi: bool = arg("ALiBi positions (no wpe)", False)
    rope: bool = arg("rotary positions (no wpe)", False)
    attention_layer_norm: bool = arg("q_norm and k_norm in every block", False)
    attention_layer_norm_with_affine: bool = arg("q_norm/k_norm have weights", True)
    embedding_layer_norm: bool = arg("transformer.emb_norm", False)
    layer_norm_type: Literal["default", "low_precision", "rms"] = arg("norm class", "default")
    layer_norm_with_affine: bool = arg("block and final norms have weights", True)
    max_sequence_length: int = arg("wpe rows (learned positions)", 1024, ge=1, le=MAX_DIM)
    include_bias: bool = arg("biases on every Linear (zeros)", True)
    bias_for_layer_norm: bool | None = arg("norm biases; null: include_bias", None)
    vocab_size: int = arg("size of the vocabulary", 50257, ge=1, le=MAX_DIM)
    embedding_size: int | None = arg("wte rows (≥ vocab_size); null: vocab_size", 50304, ge=1,
                                     le=MAX_DIM)  # fmt: skip
    weight_tying: bool = arg("the output is wte (no transformer.ff_out)", True)
    init_fn: InitFn = arg("the initialization", "normal")
    init_std: float = arg("σ of normal and full_megatron", 0.02, gt=0.0, le=1e3)
    init_cutoff_factor: float | None = arg("truncation at ±c·std; null: none (normal), 3 (others)",
                                           None, gt=0.0, le=1e3)  # fmt: skip
    emb_init_std: float | None = arg("std of wte; null: per init_fn", None, gt=0.0, le=1e3)
    scale_emb_init: bool = arg("full_megatron wte std ×√d_model (no emb_init_std)", False)


@dataclass(frozen=True)
class Stds:
    """One block's stds and cutoff (OLMoBlock and OLMoSequentialBlock.reset_parameters)."""

    proj: float  # att_proj, ff_proj
    attn_out: float
    ff_out: float
    cutoff: float | None


def kv_heads(c: OlmoConfig) -> int:
    """ModelConfig.effective_n_kv_heads (config.py:478-495)."""
    mqa = c.multi_query_attention
    if c.n_kv_heads is None:
        return 1 if mqa is True else c.n_heads
    if mqa is None or c.n_kv_heads == (1 if mqa else c.n_heads):
        return c.n_kv_heads
    raise ShapeError("multi_query_attention and n_kv_heads cannot both be set (config.py:495)")


def hidden(c: OlmoConfig) -> tuple[int, int]:
    """(ff_proj rows, ff_out columns): model.py:420-422, 449, 457-458."""
    size = c.mlp_hidden_size if c.mlp_hidden_size is not None else c.mlp_ratio * c.d_model
    multiplier = 0.5 if c.activation_type == "swiglu" else 1.0
    if (multiplier * size) % 1:
        raise ShapeError(f"swiglu halves the MLP hidden size: {size} must be even (model.py:449)")
    return size, int(multiplier * size)


def block_stds(c: OlmoConfig, i: int, ff_in: int) -> Stds:
    """model.py:489-506 (attn_out, ff_out) and 713-726 (att_proj, ff_proj)."""
    if c.init_fn == "normal":
        s = c.init_std
        return Stds(s, s, s, c.init_cutoff_factor)
    cutoff = c.init_cutoff_factor or 3.0
    if c.init_fn == "mitchell":
        attn_out = 1 / (math.sqrt(2 * c.d_model * (i + 1)))
        ff_out = 1 / (math.sqrt(2 * ff_in * (i + 1)))
        return Stds(1 / math.sqrt(c.d_model), attn_out, ff_out, cutoff)
    deep = c.init_std / math.sqrt(2.0 * c.n_layers)
    return Stds(c.init_std, deep, deep, cutoff)


def wte_std(c: OlmoConfig) -> tuple[float, float | None]:
    """model.py:1177-1194."""
    if c.init_fn == "normal":
        return c.emb_init_std or c.init_std, c.init_cutoff_factor
    if c.init_fn == "mitchell":
        return c.emb_init_std or 1.0 / math.sqrt(c.d_model), c.init_cutoff_factor or 3.0
    std = c.init_std
    if c.emb_init_std is not None:
        std = c.emb_init_std
    elif c.scale_emb_init:
        std *= math.sqrt(c.d_model)
    return std, c.init_cutoff_factor or 3.0


def _top_std(c: OlmoConfig, mitchell: float, megatron: float) -> tuple[float, float | None]:
    """wpe (model.py:1199-1209) and the final ff_out (1218-1228)."""
    if c.init_fn == "normal":
        return c.init_std, c.init_cutoff_factor
    return (mitchell if c.init_fn == "mitchell" else megatron), c.init_cutoff_factor or 3.0


def _norm(name: str, size: int, affine: bool, c: OlmoConfig) -> list[Member]:
    """LayerNormBase's weight 1 and bias 0 (model.py:151-162)."""
    if not affine:
        return []
    bias = c.include_bias if c.bias_for_layer_norm is None else c.bias_for_layer_norm
    return [ones(f"{name}.weight", (size,))] + ([zeros(f"{name}.bias", (size,))] if bias else [])


def _linear(name: str, out: int, inp: int, law: tuple[float, float | None], bias: bool
            ) -> list[Member]:  # fmt: skip
    weight = cutoff_normal(f"{name}.weight", (out, inp), law[0], law[1])
    return [weight, zeros(f"{name}.bias", (out,))] if bias else [weight]


def _prefix(c: OlmoConfig, i: int) -> str:
    if c.block_group_size == 1:
        return f"transformer.blocks.{i}"
    return f"transformer.block_groups.{i // c.block_group_size}.{i % c.block_group_size}"


def _block(c: OlmoConfig, i: int, kv: int, sizes: tuple[int, int]) -> list[Member]:
    """OLMoSequentialBlock (model.py:416-463, 685-705)."""
    p, d, b, (size, ff_in) = _prefix(c, i), c.d_model, c.include_bias, sizes
    s = block_stds(c, i, ff_in)
    out: list[Member] = []
    if c.attention_layer_norm:
        qk = c.attention_layer_norm_with_affine
        out += _norm(f"{p}.k_norm", (d // c.n_heads) * kv, qk, c) + _norm(f"{p}.q_norm", d, qk, c)
    fused = d + 2 * kv * (d // c.n_heads)
    return [
        *out,
        *_linear(f"{p}.attn_out", d, d, (s.attn_out, s.cutoff), b),
        *_linear(f"{p}.ff_out", d, ff_in, (s.ff_out, s.cutoff), b),
        *_linear(f"{p}.att_proj", fused, d, (s.proj, s.cutoff), b),
        *_linear(f"{p}.ff_proj", size, d, (s.proj, s.cutoff), b),
        *_norm(f"{p}.attn_norm", d, c.layer_norm_with_affine, c),
        *_norm(f"{p}.ff_norm", d, c.layer_norm_with_affine, c),
    ]


def _check(c: OlmoConfig) -> None:
    """What OLMo refuses (model.py:424, 670-675, 1077-1100)."""
    if c.block_type != "sequential":
        raise ShapeError(f"olmo makes sequential blocks (OLMoSequentialBlock) only; received "
                         f"block_type {c.block_type!r} (OLMoLlamaBlock)")  # fmt: skip
    if c.alibi and c.rope:
        raise ShapeError("alibi and rope are mutually exclusive (model.py:1080-1081)")
    if c.embedding_size is not None and c.embedding_size < c.vocab_size:
        raise ShapeError(f"embedding_size={c.embedding_size} must be at least vocab_size="
                         f"{c.vocab_size} (model.py:1084-1085)")  # fmt: skip
    if c.block_group_size > c.n_layers or c.n_layers % c.block_group_size:
        raise ShapeError(f"n_layers={c.n_layers} must be divisible by block_group_size="
                         f"{c.block_group_size} (model.py:1096-1100)")  # fmt: skip
    if c.d_model % c.n_heads:
        raise ShapeError(f"d_model={c.d_model} must be divisible by n_heads={c.n_heads}")


def olmo(c: OlmoConfig) -> list[Member]:
    """OLMo's state dict, in the order of `OLMo.__init__` (model.py:1105-1141)."""
    _check(c)
    kv, sizes, d = kv_heads(c), hidden(c), c.d_model
    rows = c.embedding_size or c.vocab_size
    out = [cutoff_normal("transformer.wte.weight", (rows, d), *wte_std(c))]
    out += _norm("transformer.ln_f", d, c.layer_norm_with_affine, c)
    for i in range(c.n_layers):
        out += _block(c, i, kv, sizes)
    if not (c.alibi or c.rope):
        law = _top_std(c, 1 / math.sqrt(d), c.init_std)
        out.append(cutoff_normal("transformer.wpe.weight", (c.max_sequence_length, d), *law))
    if not c.weight_tying:
        law = _top_std(c, 1 / math.sqrt(d), 1 / math.sqrt(d))
        out += _linear("transformer.ff_out", rows, d, law, c.include_bias)
    if c.embedding_layer_norm:
        out += _norm("transformer.emb_norm", d, c.layer_norm_with_affine, c)
    return out


def _count(c: OlmoConfig) -> int:
    bias = c.include_bias if c.bias_for_layer_norm is None else c.bias_for_layer_norm
    norm = c.layer_norm_with_affine * (1 + bias)
    qk = c.attention_layer_norm * c.attention_layer_norm_with_affine * 2 * (1 + bias)
    block = 4 * (1 + c.include_bias) + 2 * norm + qk
    top = 1 + norm + (not (c.alibi or c.rope)) + (not c.weight_tying) * (1 + c.include_bias)
    return top + c.embedding_layer_norm * norm + c.n_layers * block


BLOCK = "transformer.blocks.{i}"
GROUPS = (
    Group("transformer.wte.weight (embedding_size or vocab_size, d)", "truncated_normal",
          "TN(s, ±c·s): normal s = emb_init_std or σ; mitchell emb_init_std or 1/√d; "
          "full_megatron emb_init_std, else σ (·√d with scale_emb_init); c = None (normal: "
          "untruncated) or init_cutoff_factor, mitchell/full_megatron default 3",
          f"{MODEL}:1107-1109, 1177-1196; {INIT}"),
    Group("transformer.wpe.weight (max_sequence_length, d), neither rope nor alibi",
          "truncated_normal", "TN(s, ±c·s): s = σ; mitchell 1/√d", f"{MODEL}:1125-1128, 1198-1211"),
    Group(f"{BLOCK}.att_proj.weight (d + 2·n_kv_heads·d/n_heads, d), .ff_proj.weight (hidden, "
          "d); hidden = mlp_hidden_size or mlp_ratio·d", "truncated_normal",
          "TN(s, ±c·s): s = σ; mitchell 1/√d (not depth-scaled)",
          f"{MODEL}:420-422, 689-701, 713-726; {INIT}"),
    Group(f"{BLOCK}.attn_out.weight (d, d)", "truncated_normal",
          "TN(s, ±c·s): normal σ; mitchell 1/√(2·d·(ℓ+1)); full_megatron σ/√(2L)",
          f"{MODEL}:452-454, 489-505"),
    Group(f"{BLOCK}.ff_out.weight (d, hidden·m), m = 0.5 for swiglu, else 1", "truncated_normal",
          "TN(s, ±c·s): normal σ; mitchell 1/√(2·hidden·m·(ℓ+1)); full_megatron σ/√(2L)",
          f"{MODEL}:365-372, 457-463, 489-506"),
    Group(f"{BLOCK}.{{att_proj,ff_proj,attn_out,ff_out}}.bias, transformer.ff_out.bias "
          "(include_bias)", "zeros", "0", "olmo/initialization.py:21-22"),
    Group(f"{BLOCK}.{{attn_norm,ff_norm,q_norm,k_norm}}.weight, transformer.{{ln_f,emb_norm}}"
          ".weight (with affine)", "ones", "1; biases (bias_for_layer_norm or include_bias) 0",
          f"{MODEL}:151-162, 190-194, 432-441, 704-705"),
    Group("transformer.ff_out.weight (embedding_size or vocab_size, d), not weight_tying",
          "truncated_normal", "TN(s, ±c·s): normal σ; mitchell and full_megatron 1/√d",
          f"{MODEL}:1129-1139, 1217-1230"),
)  # fmt: skip

ROWS: tuple[Recipe[Any], ...] = (
    Recipe(
        "olmo",
        "OLMo v1 (allenai/OLMo) sequential blocks: init_fn normal, mitchell (1/√d, depth-scaled "
        "outputs) or full_megatron, TN(s, ±c·s) via init_cutoff_factor; fused att_proj, wpe, "
        "padded embedding_size, tying",
        "olmo",
        f"git {COMMIT[:12]}",
        "OLMo",
        "hf_olmo",
        OlmoConfig,
        olmo,
        _count,
        GROUPS,
    ),
)
