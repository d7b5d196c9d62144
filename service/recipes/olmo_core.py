"""OLMo-core 3.0.0 (`ai2-olmo-core`): the `Transformer` that `TransformerConfig.llama_like(...)`
builds, initialized by `Transformer.init_weights` (`olmo_core/nn/transformer/model.py:308-431`)
with the `InitMethod` rows of `olmo_core/nn/transformer/init.py`, under its state-dict names.

Laws (σ = init_std): every Linear `init_linear` = `trunc_normal_(std=s, a=-3s, b=3s)`, bias 0
(init.py:30-43); the std s per init_method:

| tensor | normal | llama | llama_depth | fan_in | normalized |
|---|---|---|---|---|---|
| embeddings | TN(e, ±3e) | N(0, 1) | N(0, 1) | N(0, (1/embed_scale or 1)²) | N(0, 1/d) |
| w_q, w_k, w_v | σ | σ | σ | d^-½ | d^-½ |
| w_out | σ | σ/√(2L) | σ/√(2(ℓ+1)) | (n_heads·head_dim)^-½ | d^-½/√(2L) |
| w1 | σ | σ | σ | d^-½ | d^-½ |
| w3 | σ | σ/√(2L) | σ/√(2(ℓ+1)) | d^-½ | d^-½ |
| w2 | σ | σ/√(2L) | σ/√(2(ℓ+1)) | hidden^-½ | d^-½/√(2L) |
| lm_head.w_out | σ | d^-½ | d^-½ | d^-½ | d^-½ |

e = embedding_init_std or σ; `w2` inherits `w3`'s std (init_feed_forward reuses the variable).
Norm weights 1 (no biases in llama_like). Tied (`tie_word_embeddings`), `lm_head.w_out.weight`
is `embeddings.weight` and is not initialized again (model.py:160-162, 356-358, 423).

`block_name` default_scaled adds `blocks.{i}.ln_scale`, a float32 scalar buffer 1/√(ℓ+1)
(block.py:272-274), given here as constructed: `init_weights`' `to_empty` leaves it uninitialized
memory in 3.0.0 (nothing writes it again), so a model initialized by OLMo-core itself holds garbage
there until a checkpoint (or this bundle) is loaded.

`init_seed` is not read: the request's seed decides the values (reported in ignored_config).
Objects among llama_like's arguments (`gate`, `feed_forward`, `feed_forward_moe`, `rope_scaling`,
`block_mods`, `embedding_norm`, …) are not read either. model_type: OLMo-core configs carry
none, so the recipe's is its own name, and an HF `config.json` (olmo2, olmo3, whose fields are
named otherwise) is refused instead of silently read as defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from service.arguments import MISSING, arg
from service.errors import ShapeError
from service.presets.base import MAX_COUNT, Member, constant
from service.recipes.base import Group, Recipe, cutoff_normal, normal, ones, tied
from service.shapes import MAX_DIM

VERSION = "3.0.0"
NAME = "olmo_core"
INIT = "olmo_core/nn/transformer/init.py"
MODEL = "olmo_core/nn/transformer/model.py"
CONFIG = "olmo_core/nn/transformer/config.py"
ATTENTION = "olmo_core/nn/attention/__init__.py"
CUTOFF = 3.0  # init.py:38-39, 102-103: a=-3·std, b=3·std
InitMethod = Literal["normal", "llama", "llama_depth", "fan_in", "normalized"]
NormName = Literal["default", "rms", "qwen_rms", "nemotron_rms"]
BlockName = Literal["default", "default_scaled", "reordered_norm", "peri_norm"]


@dataclass(frozen=True)
class OlmoCoreConfig:
    """`TransformerConfig.llama_like`'s arguments that shape a tensor or its law (config.py:1647-
    1680; d_model … n_heads have no default there), and TransformerConfig's init fields."""

    d_model: int = arg("width of the residual stream (d)", MISSING, ge=1, le=MAX_DIM)
    vocab_size: int = arg("size of the vocabulary", MISSING, ge=1, le=MAX_DIM)
    n_layers: int = arg("transformer blocks (L)", MISSING, ge=0, le=MAX_COUNT)
    n_heads: int = arg("query heads", MISSING, ge=1, le=MAX_DIM)
    n_kv_heads: int | None = arg("key/value heads; null: n_heads", None, ge=1, le=MAX_DIM)
    head_dim: int | None = arg("size of a head; null: d_model // n_heads", None, ge=1, le=MAX_DIM)
    qk_norm: bool = arg("q_norm and k_norm in every attention (weights 1)", False)
    use_head_qk_norm: bool = arg("QK norms over head_dim (with qk_norm)", False)
    layer_norm_name: NormName | None = arg("the norm class (weight 1); null: rms", None)
    hidden_size_multiple_of: int = arg("the FFN hidden size is rounded up to a multiple of it",
                                       256, ge=1, le=MAX_DIM)  # fmt: skip
    hidden_size_multiplier: float | None = arg(
        "multiplies the FFN hidden size int(8·d/3) before rounding", None, gt=0.0, le=MAX_DIM
    )
    fused_ops: bool = arg("fused kernels (not in this recipe: refused)", False)
    block_name: BlockName = arg(
        "the block class: peri_norm adds two norms, default_scaled an ln_scale buffer", "default"
    )
    init_method: InitMethod = arg("TransformerConfig.init_method", "normal")
    init_std: float = arg("σ of init_method normal, llama, llama_depth", 0.02, gt=0.0, le=1e3)
    embedding_init_std: float | None = arg(
        "std of the embeddings under init_method normal; null: init_std", None, gt=0.0, le=1e3
    )
    embed_scale: float | None = arg(
        "fan_in embeddings are N(0, (1/embed_scale)²)", None, ge=1e-6, le=1e6
    )
    tie_word_embeddings: bool = arg("lm_head.w_out.weight is embeddings.weight", False)


def hidden_size(c: OlmoCoreConfig) -> int:
    """config.py:1694-1697 and olmo_core/utils.py:903-904 (`of * math.ceil(x / of)`)."""
    size = int(8 * c.d_model / 3)
    if c.hidden_size_multiplier is not None:
        size = int(c.hidden_size_multiplier * size)
    return c.hidden_size_multiple_of * math.ceil(size / c.hidden_size_multiple_of)


def attention_stds(c: OlmoCoreConfig, i: int, q: int) -> tuple[float, float]:
    """(w_q/w_k/w_v, w_out) stds as Attention.init_weights (attention/__init__.py:1191-1223)."""
    m, std = c.init_method, c.init_std
    if m == "fan_in":
        qkv = c.d_model**-0.5  # w.in_features**-0.5 of w_q, w_k, w_v: d_model
    else:
        if m == "normalized":
            std = c.d_model**-0.5
        qkv = std
    if m == "fan_in":
        std = q**-0.5  # self.w_out.in_features: n_heads·head_dim
    elif m in ("llama", "normalized"):
        std = std / (2 * c.n_layers) ** 0.5
    elif m == "llama_depth":
        std = std / (2 * (i + 1)) ** 0.5
    return qkv, std


def ffn_stds(c: OlmoCoreConfig, i: int, hidden: int) -> tuple[float, float, float]:
    """(w1, w2, w3) stds as InitMethod.init_feed_forward (init.py:153-180): one variable."""
    m, std = c.init_method, c.init_std
    if m in ("fan_in", "normalized"):
        std = c.d_model**-0.5
    w1 = std
    if m == "fan_in":
        std = c.d_model**-0.5
    elif m == "llama":
        std = std / (2 * c.n_layers) ** 0.5
    elif m == "llama_depth":
        std = std / (2 * (i + 1)) ** 0.5
    w3 = std
    if m == "fan_in":
        std = hidden**-0.5
    elif m == "normalized":
        std = std / (2 * c.n_layers) ** 0.5
    return w1, std, w3


def _block(i: int, c: OlmoCoreConfig, hd: int, hidden: int) -> list[Member]:
    p, d = f"blocks.{i}", c.d_model
    q, kv = c.n_heads * hd, (c.n_kv_heads or c.n_heads) * hd
    qkv, out = attention_stds(c, i, q)
    w1, w2, w3 = ffn_stds(c, i, hidden)
    members = [
        cutoff_normal(f"{p}.attention.w_q.weight", (q, d), qkv, CUTOFF),
        cutoff_normal(f"{p}.attention.w_k.weight", (kv, d), qkv, CUTOFF),
        cutoff_normal(f"{p}.attention.w_v.weight", (kv, d), qkv, CUTOFF),
        cutoff_normal(f"{p}.attention.w_out.weight", (d, q), out, CUTOFF),
    ]
    if c.qk_norm:
        heads = (hd, hd) if c.use_head_qk_norm else (q, kv)
        members += [ones(f"{p}.attention.q_norm.weight", (heads[0],)),
                    ones(f"{p}.attention.k_norm.weight", (heads[1],))]  # fmt: skip
    members += [
        ones(f"{p}.attention_norm.weight", (d,)),
        cutoff_normal(f"{p}.feed_forward.w1.weight", (hidden, d), w1, CUTOFF),
        cutoff_normal(f"{p}.feed_forward.w2.weight", (d, hidden), w2, CUTOFF),
        cutoff_normal(f"{p}.feed_forward.w3.weight", (hidden, d), w3, CUTOFF),
        ones(f"{p}.feed_forward_norm.weight", (d,)),
    ]
    if c.block_name == "peri_norm":
        members += [ones(f"{p}.post_attention_norm.weight", (d,)),
                    ones(f"{p}.post_feed_forward_norm.weight", (d,))]  # fmt: skip
    if c.block_name == "default_scaled":  # a float32 scalar buffer in the state dict
        members.append(constant(f"{p}.ln_scale", (), 1.0 / math.sqrt(i + 1), "float32"))
    return members


def embeddings(c: OlmoCoreConfig) -> Member:
    """InitMethod.init_embeddings (init.py:79-105)."""
    name, shape, m = "embeddings.weight", (c.vocab_size, c.d_model), c.init_method
    if m in ("llama", "llama_depth"):
        return normal(name, shape, 1.0)
    if m == "normalized":
        return normal(name, shape, c.d_model**-0.5)
    if m == "fan_in":
        return normal(name, shape, 1.0 / c.embed_scale if c.embed_scale is not None else 1.0)
    std = c.embedding_init_std if c.embedding_init_std is not None else c.init_std
    return cutoff_normal(name, shape, std, CUTOFF)


def _head(c: OlmoCoreConfig) -> Member:
    """InitMethod.init_final_w_out (init.py:107-122), or the embedding itself when tied."""
    name, shape = "lm_head.w_out.weight", (c.vocab_size, c.d_model)
    if c.tie_word_embeddings:
        return tied(name, shape, "embeddings.weight")
    std = c.init_std if c.init_method == "normal" else c.d_model**-0.5
    return cutoff_normal(name, shape, std, CUTOFF)


def transformer(c: OlmoCoreConfig) -> list[Member]:
    """Transformer's state dict: embeddings, the blocks, lm_head (norm, w_out)."""
    if c.fused_ops:
        raise ShapeError("olmo_core does not make fused_ops models (FusedRMSNorm needs flash-attn;"
                         " without n_kv_heads the attention is fused_v2's w_qkv): use fused_ops "
                         "false")  # fmt: skip
    hd, hidden = c.head_dim or c.d_model // c.n_heads, hidden_size(c)
    if hd < 1:
        raise ShapeError(f"d_model={c.d_model} // n_heads={c.n_heads} is 0: give head_dim")
    if hidden < 1:
        raise ShapeError(f"the FFN hidden size int(8·d_model/3) is {hidden}: raise d_model or "
                         "hidden_size_multiplier")  # fmt: skip
    out = [embeddings(c)]
    for i in range(c.n_layers):
        out += _block(i, c, hd, hidden)
    return [*out, ones("lm_head.norm.weight", (c.d_model,)), _head(c)]


def _count(c: OlmoCoreConfig) -> int:
    extra = 2 * (c.block_name == "peri_norm") + (c.block_name == "default_scaled")
    return 3 + c.n_layers * (9 + 2 * c.qk_norm + extra)


METHODS = "σ = init_std; per init_method as the table of service/recipes/olmo_core.py"
GROUPS = (
    Group("embeddings.weight (vocab, d), init_method normal", "truncated_normal",
          "TN(s, ±3s), s = embedding_init_std or σ", f"{INIT}:96-105; {MODEL}:345-354"),
    Group("embeddings.weight (vocab, d), init_method llama, llama_depth, fan_in, normalized",
          "normal", "N(0, 1) (llama, llama_depth); N(0, (1/embed_scale or 1)²) (fan_in); "
          "N(0, 1/d) (normalized)", f"{INIT}:88-95; {MODEL}:345-354"),
    Group("blocks.{i}.attention.{w_q,w_k,w_v}.weight: w_q (n_heads·head_dim, d), w_k, w_v "
          "(n_kv_heads·head_dim, d); head_dim = head_dim or d // n_heads", "truncated_normal",
          "TN(s, ±3s): s = σ; d^-½ (fan_in, normalized)",
          f"{ATTENTION}:688-703, 1191-1203; {INIT}:30-43"),
    Group("blocks.{i}.attention.w_out.weight (d, n_heads·head_dim)", "truncated_normal",
          "TN(s, ±3s): s = σ (normal); σ/(2L)**0.5 (llama); σ/(2(ℓ+1))**0.5 (llama_depth); "
          "(n_heads·head_dim)^-½ (fan_in); d^-½/(2L)**0.5 (normalized)",
          f"{ATTENTION}:704-706, 1213-1223"),
    Group("blocks.{i}.feed_forward.{w1,w3}.weight (hidden, d), .w2.weight (d, hidden); hidden = "
          "multiple_of·⌈int(multiplier·int(8d/3))/multiple_of⌉", "truncated_normal",
          f"TN(s, ±3s); {METHODS}; w2 keeps w3's s but for fan_in (hidden^-½) and normalized",
          f"{INIT}:143-180; {CONFIG}:1694-1697, 1721; olmo_core/utils.py:903-904; "
          "olmo_core/nn/feed_forward.py:161-163"),
    Group("blocks.{i}.{attention_norm,feed_forward_norm}.weight, lm_head.norm.weight (d); "
          "attention.{q_norm,k_norm}.weight (qk_norm); post_{attention,feed_forward}_norm.weight "
          "(peri_norm)", "ones", "1 (no bias in llama_like)",
          f"olmo_core/nn/layer_norm.py:222-226; {CONFIG}:1700-1707, 1740-1741; "
          f"{ATTENTION}:742-761; olmo_core/nn/transformer/block.py:134-139, 345-346"),
    Group("blocks.{i}.ln_scale () float32 (block_name default_scaled)", "constant",
          "1/√(ℓ+1) as constructed (init_weights' to_empty leaves it uninitialized in 3.0.0)",
          f"olmo_core/nn/transformer/block.py:272-274; {MODEL}:331-336"),
    Group("lm_head.w_out.weight (vocab, d), untied", "truncated_normal",
          "TN(s, ±3s): s = σ (normal); d^-½ (every other init_method)",
          f"{INIT}:107-122; {MODEL}:423-429; olmo_core/nn/lm_head.py:174"),
    Group("lm_head.w_out.weight, tie_word_embeddings", "tied", "= embeddings.weight",
          f"{MODEL}:160-162, 187-194, 356-358"),
)  # fmt: skip

ROWS: tuple[Recipe[Any], ...] = (
    Recipe(
        NAME,
        "OLMo-core Transformer (llama_like): every Linear TN(s, ±3s) by init_method (normal, "
        "llama, llama_depth, fan_in, normalized), embeddings by init_method, norms 1; GQA, QK "
        "norm, tying",
        "olmo_core",
        VERSION,
        "Transformer",
        NAME,
        OlmoCoreConfig,
        transformer,
        _count,
        GROUPS,
        # distributed/checkpoint/__init__.py:716: {"model": get_model_state_dict(model)}
        dcp_prefix="model.",
    ),
)
