"""torchtitan 0.3.0's Llama 3 (`torchtitan.llama3`): `Llama3Model` as its flavors are built in
`torchtitan/models/llama3/__init__.py`, under the names its state dict has.

0.3.0 has no flat model-args class: a flavor is a tree of sub-configs built from a handful of
numbers (`dim`, `n_layers`, `n_heads`, `n_kv_heads`, `vocab_size`, the FFN rule's `multiple_of`
and `ffn_dim_multiplier`, `enable_weight_tying`). Those numbers are this recipe's config; the
8B flavor is `{"n_kv_heads": 8, "multiple_of": 1024, "ffn_dim_multiplier": 1.3}`, the 1B
`{"dim": 2048, "n_layers": 16, "n_kv_heads": 8, "multiple_of": 1024, "ffn_dim_multiplier": 1.5,
"enable_weight_tying": true}`. `norm_eps`, `rope_theta`, `max_seq_len` shape no tensor (the RoPE
cache is a non-persistent buffer) and are reported as ignored.

Laws (`__init__.py:45-66`): every Linear weight `trunc_normal_(std=0.02)` with torch's default
bounds a=-2, b=2, absolute (±100σ: in effect untruncated); `wo`, `w2`, `w3` of layer ℓ
`trunc_normal_(std=0.02/(2(ℓ+1))**0.5)`, bounds still ±2; RMSNorm weights 1; `tok_embeddings`
N(0, 1); `lm_head` `trunc_normal_(std=s, a=-3s, b=3s)` with s = dim**-0.5. Tied, the embedding is
skipped (`skip_param_init`) and re-pointed at the initialized `lm_head.weight`: the head's law.
The flavors fuse q/k/v into one `wqkv` Linear but draw and save it as separate `wq`/`wk`/`wv`
(`config_utils.py:106-184`, `attention.py:872-900`): those are the state-dict names.

model_type: torchtitan configs carry none, so the recipe's is its own name: a config without one
is read, and a transformers `config.json` (model_type `llama`, fields `hidden_size`, …, which
this recipe would otherwise ignore for its defaults) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.arguments import arg
from service.errors import ShapeError
from service.presets.base import MAX_COUNT, Member
from service.recipes.base import Group, Recipe, normal, ones, tied, trunc_normal
from service.shapes import MAX_DIM

VERSION = "0.3.0"
NAME = "torchtitan.llama3"
LLAMA3 = "torchtitan/models/llama3/__init__.py"
COMMON = "torchtitan/models/common"
BASE_STD = 0.02  # __init__.py:46, 64: trunc_normal_(std=0.02) and depth_scaled_std(0.02, ℓ)
TORCH_BOUND = 2.0  # torch.nn.init.trunc_normal_'s default a=-2.0, b=2.0 (absolute)


@dataclass(frozen=True)
class Llama3Config:
    """The numbers a llama3 flavor is built from (`_8b` etc.); defaults: `Llama3Model.Config`'s
    dim and vocab_size (model.py:63-64), the 8B flavor's depth and heads, and debugmodel's FFN
    rounding (multiple_of 256, no multiplier), as torchtitan's former flat ModelArgs had."""

    dim: int = arg("width of the residual stream (d)", 4096, ge=1, le=MAX_DIM)
    n_layers: int = arg("transformer blocks (L)", 32, ge=0, le=MAX_COUNT)
    n_heads: int = arg("query heads; head_dim = dim // n_heads", 32, ge=1, le=MAX_DIM)
    n_kv_heads: int | None = arg(
        "key/value heads (GQA; must divide n_heads); null: n_heads", None, ge=1, le=MAX_DIM
    )
    vocab_size: int = arg("size of the vocabulary", 128256, ge=1, le=MAX_DIM)
    multiple_of: int = arg("the FFN hidden size is rounded up to a multiple of it", 256, ge=1,
                           le=MAX_DIM)  # fmt: skip
    ffn_dim_multiplier: float | None = arg(
        "multiplies the FFN hidden size int(8·dim/3) before rounding; null: none",
        None,
        gt=0.0,
        le=MAX_DIM,
    )
    enable_weight_tying: bool = arg(
        "tok_embeddings.weight is lm_head.weight (the 1B and 3B flavors)", False
    )


def ffn_hidden_dim(c: Llama3Config) -> int:
    """compute_ffn_hidden_dim (models/common/feed_forward.py:18-31), the same operations."""
    hidden_dim = int(2 * 4 * c.dim / 3)
    if c.ffn_dim_multiplier is not None:
        hidden_dim = int(c.ffn_dim_multiplier * hidden_dim)
    return c.multiple_of * ((hidden_dim + c.multiple_of - 1) // c.multiple_of)


def depth_scaled_std(base_std: float, layer_id: int) -> float:
    """models/common/param_init.py:28-30, the same operations."""
    scale: float = (2 * (layer_id + 1)) ** 0.5
    return base_std / scale


def _linear(name: str, shape: tuple[int, int], std: float) -> Member:
    """`trunc_normal_(std=std)`: torch's default bounds ±2, absolute."""
    return trunc_normal(name, shape, std, -TORCH_BOUND, TORCH_BOUND)


def _layer(i: int, c: Llama3Config, hidden: int) -> list[Member]:
    p, d = f"layers.{i}", c.dim
    hd = c.dim // c.n_heads
    q, kv = c.n_heads * hd, (c.n_kv_heads or c.n_heads) * hd
    deep = depth_scaled_std(BASE_STD, i)
    return [
        _linear(f"{p}.attention.qkv_linear.wq.weight", (q, d), BASE_STD),
        _linear(f"{p}.attention.qkv_linear.wk.weight", (kv, d), BASE_STD),
        _linear(f"{p}.attention.qkv_linear.wv.weight", (kv, d), BASE_STD),
        _linear(f"{p}.attention.wo.weight", (d, q), deep),
        _linear(f"{p}.feed_forward.w1.weight", (hidden, d), BASE_STD),
        _linear(f"{p}.feed_forward.w2.weight", (d, hidden), deep),
        _linear(f"{p}.feed_forward.w3.weight", (hidden, d), deep),
        ones(f"{p}.attention_norm.weight", (d,)),
        ones(f"{p}.ffn_norm.weight", (d,)),
    ]


def llama3(c: Llama3Config) -> list[Member]:
    """Llama3Model's state dict: tok_embeddings, the layers, norm, lm_head."""
    kv = c.n_kv_heads or c.n_heads
    if c.n_heads % kv:  # FusedQKVLinear refuses it (attention.py:808-812)
        raise ShapeError(f"n_heads={c.n_heads} must be divisible by n_kv_heads={kv}")
    shape, s = (c.vocab_size, c.dim), c.dim**-0.5
    head = trunc_normal("lm_head.weight", shape, s, -3 * s, 3 * s)
    if c.enable_weight_tying:
        out = [tied("tok_embeddings.weight", shape, "lm_head.weight")]
    else:
        out = [normal("tok_embeddings.weight", shape, 1.0)]
    hidden = ffn_hidden_dim(c)
    for i in range(c.n_layers):
        out += _layer(i, c, hidden)
    return [*out, ones("norm.weight", (c.dim,)), head]


GROUPS = (
    Group("tok_embeddings.weight (vocab, d), untied", "normal", "N(0, 1)",
          f"{LLAMA3}:50, 247-249"),
    Group("tok_embeddings.weight, enable_weight_tying", "tied",
          "= lm_head.weight (its own init skipped)",
          f"{LLAMA3}:51, 159-164; {COMMON}/param_init.py:20-25; {COMMON}/decoder.py:206-221"),
    Group("layers.{i}.attention.qkv_linear.{wq,wk,wv}.weight: wq (n_heads·head_dim, d), "
          "wk, wv (n_kv_heads·head_dim, d); head_dim = d // n_heads", "truncated_normal",
          "trunc_normal_(std=0.02), bounds ±2 absolute (±100σ); drawn per slice, saved split",
          f"{LLAMA3}:45-48, 95; {COMMON}/config_utils.py:106-184, 214-215; "
          f"{COMMON}/attention.py:872-900"),
    Group("layers.{i}.attention.wo.weight (d, n_heads·head_dim)", "truncated_normal",
          "trunc_normal_(std=0.02/(2(ℓ+1))**0.5), bounds ±2 absolute",
          f"{LLAMA3}:62-66, 96; {COMMON}/param_init.py:28-30; {COMMON}/config_utils.py:270-274"),
    Group("layers.{i}.feed_forward.w1.weight (ffn, d); ffn = compute_ffn_hidden_dim: "
          "multiple_of·⌈int(ffn_dim_multiplier·int(8d/3))/multiple_of⌉", "truncated_normal",
          "trunc_normal_(std=0.02), bounds ±2 absolute",
          f"{LLAMA3}:45-48, 105; {COMMON}/feed_forward.py:18-31; {COMMON}/config_utils.py:299-301"),
    Group("layers.{i}.feed_forward.w2.weight (d, ffn), .w3.weight (ffn, d)", "truncated_normal",
          "trunc_normal_(std=0.02/(2(ℓ+1))**0.5), bounds ±2 absolute",
          f"{LLAMA3}:62-66, 106; {COMMON}/config_utils.py:302-307"),
    Group("layers.{i}.{attention_norm,ffn_norm}.weight, norm.weight (d)", "ones", "1 (RMSNorm)",
          f"{LLAMA3}:49, 87-90, 250"),
    Group("lm_head.weight (vocab, d)", "truncated_normal",
          "trunc_normal_(std=s, a=-3s, b=3s), s = d**-0.5; no bias",
          f"{LLAMA3}:54-59, 251-255; {COMMON}/linear.py:33"),
)  # fmt: skip

ROWS: tuple[Recipe[Any], ...] = (
    Recipe(
        NAME,
        "torchtitan Llama3Model: Linear TN(0.02, ±2 absolute), wo/w2/w3 0.02/√(2(ℓ+1)), "
        "tok_embeddings N(0, 1), lm_head TN(d^-½, ±3σ), RMSNorm 1; GQA, tying",
        "torchtitan",
        VERSION,
        "Llama3Model",
        NAME,
        Llama3Config,
        llama3,
        lambda c: 3 + 9 * c.n_layers,
        GROUPS,
    ),
)
