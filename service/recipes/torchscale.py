"""microsoft/torchscale's DeepNet decoder (DeepNorm, Wang et al. 2022) as torchscale initializes
it: recipe `torchscale.deepnet`, `torchscale.architecture.decoder.Decoder(DecoderConfig(
deepnorm=True, ...))` under its own state-dict names. Sources: torchscale 0.3.0 (PyPI; its files
are those of git 881d03079da7, 2023-09-29). D = torchscale/architecture/decoder.py, A =
torchscale/component/multihead_attention.py, F = torchscale/component/feedforward_network.py,
C = torchscale/architecture/config.py, E = torchscale/component/embedding.py, U =
torchscale/architecture/utils.py, R = torchscale/component/relative_position_bias.py, L =
torch/nn/modules/linear.py.

What the code does, which is not what the DeepNet paper's pseudo-code says: MultiheadAttention
defines `reset_parameters` (A:58-63: xavier_uniform_ with gain 1/√2 on q/k/v, as fairseq's) but
nothing calls it, so every projection keeps nn.Linear's own init (A:40-45, L:117-128):
kaiming_uniform_(a=√5), U(±1/√in_features), and its bias U(±1/√in_features) too. Then DeepNorm
(D:285-297) divides every parameter whose name holds fc1, fc2, out_proj or v_proj, weights and
biases, by math.pow(8.0·M, 0.25), M = decoder_layers: β = (8M)^-¼ (the decoder-only β; the
residual α = (2M)^¼, D:89-95, is a plain attribute, no tensor). With bert_init, init_bert_params
runs first (D:282-283, U:10-33): every Linear N(0, 0.02²) with bias 0, embeddings N(0, 0.02²).
The output projection (D:315-333) is N(0, d^-1), d = decoder_embed_dim, or the input embedding
itself with share_decoder_input_output_embed. The Decoder builds no input embedding (D:228: it is
an argument); `embed_tokens` here builds it as torchscale's TextEmbedding (E:93-96: N(0, d^-1),
the padding row 0). deepnorm forces post-LN and no sub-LN (C:121-123), so there is no final
layer_norm, no inner_attn_ln and no ffn_layernorm. LayerNorms are torch's (1/0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from service import schemes
from service.arguments import arg
from service.errors import ShapeError
from service.presets.base import MAX_COUNT, SQRT5, Member, torch_weight_and_bias, uniform
from service.recipes.base import Group, Recipe, layer_norm, normal, tied, zeros
from service.schemes import Params
from service.shapes import MAX_DIM

NAME = "torchscale.deepnet"
VERSION = "0.3.0"
DECODER = "torchscale/architecture/decoder.py"
ATTENTION = "torchscale/component/multihead_attention.py"
FFN = "torchscale/component/feedforward_network.py"
CONFIG = "torchscale/architecture/config.py"
EMBEDDING = "torchscale/component/embedding.py"
UTILS = "torchscale/architecture/utils.py"
REL_POS = "torchscale/component/relative_position_bias.py"
MULTIWAY = "torchscale/component/multiway_network.py"
LINEAR = "torch/nn/modules/linear.py"
BERT_STD = 0.02  # init_bert_params: normal_(mean=0.0, std=0.02), U:12
Activation = Literal["relu", "gelu", "swish"]  # F:94-102; any other raises NotImplementedError
# the attention's projections in their order (A:40-45), and whether DeepNorm scales them
PROJECTIONS = (("k_proj", False), ("v_proj", True), ("q_proj", False), ("out_proj", True))


@dataclass(frozen=True)
class DeepNetConfig:
    """DecoderConfig's fields (C:74-126) that shape a tensor or its law, with its defaults, and
    two of Decoder's arguments (`embed_tokens`, `padding_idx`); deepnorm is true here."""

    decoder_embed_dim: int = arg("width d of the residual stream", 768, ge=1, le=MAX_DIM)
    decoder_attention_heads: int = arg(
        "attention heads (must divide decoder_embed_dim)", 12, ge=1, le=MAX_DIM
    )
    decoder_ffn_embed_dim: int = arg("the FFN's inner width (fc1's rows)", 3072, ge=1, le=MAX_DIM)
    decoder_layers: int = arg("decoder layers M: β = (8M)^-¼", 12, ge=0, le=MAX_COUNT)
    vocab_size: int = arg(
        "rows of output_projection and embed_tokens; -1 or 0: no output projection", -1,
        ge=-1, le=MAX_DIM,
    )  # fmt: skip
    deepnorm: bool = arg(
        "DeepNorm; true here (DecoderConfig's default is false: false is refused)", True
    )
    share_decoder_input_output_embed: bool = arg(
        "output_projection.weight is embed_tokens.weight (needs embed_tokens)", False
    )
    no_output_layer: bool = arg("no output_projection", False)
    layernorm_embedding: bool = arg("a LayerNorm (1/0) on the embeddings", False)
    bert_init: bool = arg(
        "init_bert_params before DeepNorm: Linear weights and embeddings N(0, 0.02²), biases 0",
        False,
    )
    multiway: bool = arg("two copies, A and B, of each attention projection", False)
    rel_pos_buckets: int = arg(
        "relative-position buckets (a bias table when it and max_rel_pos are > 0)", 0, ge=0,
        le=MAX_DIM,
    )  # fmt: skip
    max_rel_pos: int = arg("relative positions' max distance", 0, ge=0, le=MAX_DIM)
    moe_freq: int = arg("every moe_freq-th layer mixture-of-experts (> 0 refused)", 0, ge=0,
                        le=MAX_COUNT)  # fmt: skip
    xpos_rel_pos: bool = arg("XPOS positions (refused: its scale buffer is no law)", False)
    activation_fn: Activation = arg("the FFN's activation (no tensor of its own)", "gelu")
    embed_tokens: bool = arg(
        "build Decoder(args, embed_tokens=TextEmbedding(vocab_size, decoder_embed_dim, "
        "padding_idx)); false: Decoder(args), which has no input embedding",
        False,
    )
    padding_idx: int | None = arg("embed_tokens' padding row, zeroed", None, ge=0, le=MAX_DIM)


def init_scale(layers: int) -> float:
    """1/β, computed as D:289 does: math.pow(8.0 * decoder_layers, 0.25)."""
    return math.pow(8.0 * layers, 0.25)


def has_output(c: DeepNetConfig) -> bool:
    """D:231-236: Decoder builds output_projection unless no_output_layer or vocab_size <= 0."""
    return not c.no_output_layer and c.vocab_size > 0


def _refuse(c: DeepNetConfig) -> None:
    """What Decoder does not build, or this recipe does not make, as a ShapeError."""
    d, heads = c.decoder_embed_dim, c.decoder_attention_heads
    checks = (
        (not c.deepnorm, "deepnorm false: torchscale.deepnet is the DeepNorm decoder (its "
         "subln default, Magneto, and the plain pre-LN decoder are not made here)"),
        (c.moe_freq > 0, f"moe_freq={c.moe_freq}: mixture-of-experts layers "
         "(feedforward_network.py:43-91) are not made here"),
        (c.xpos_rel_pos, "xpos_rel_pos: XPOS's persistent scale buffer, (arange(0, head_dim, 2) "
         "+ 0.4·head_dim)/(1.4·head_dim) (xpos_relative_position.py:45-47), is no law the "
         "service draws"),
        (d % heads != 0, f"decoder_embed_dim={d} must be divisible by "
         f"decoder_attention_heads={heads} (multihead_attention.py:33, 90: the heads' view)"),
        (c.embed_tokens and c.vocab_size < 1, f"embed_tokens needs vocab_size >= 1; received "
         f"{c.vocab_size}"),
        (c.share_decoder_input_output_embed and has_output(c) and not c.embed_tokens,
         "share_decoder_input_output_embed needs embed_tokens (decoder.py:319-325 reads "
         "embed_tokens.weight)"),
        (c.embed_tokens and c.padding_idx is not None and c.padding_idx >= c.vocab_size,
         f"padding_idx={c.padding_idx} must be below vocab_size={c.vocab_size}"),
    )  # fmt: skip
    for bad, why in checks:
        if bad:
            raise ShapeError(f"{NAME} config {why}")


def _linear(name: str, out: int, inp: int, c: DeepNetConfig, scale: float | None) -> list[Member]:
    """nn.Linear(inp, out) as left by bert_init or its own init (L:117-128), then divided by
    `scale` (DeepNorm's 1/β) where given: weight and bias alike."""
    shape = (out, inp)
    if c.bert_init:
        std = BERT_STD if scale is None else BERT_STD / scale
        return [normal(f"{name}.weight", shape, std), zeros(f"{name}.bias", (out,))]
    if scale is None:
        return torch_weight_and_bias(name, shape, out)
    law = Params(negative_slope=SQRT5)
    bound = schemes.resolve("kaiming_uniform", shape, "torch", law).law.limit or 0.0
    return [
        uniform(f"{name}.weight", shape, bound / scale),
        uniform(f"{name}.bias", (out,), 1 / math.sqrt(inp) / scale),
    ]


def _layer(i: int, c: DeepNetConfig, scale: float) -> list[Member]:
    """DecoderLayer (D:23-95) in its state-dict order: self_attn's k, v, q, out projections (A
    and B with multiway), self_attn_layer_norm, ffn.fc1, ffn.fc2, final_layer_norm."""
    p, d, f = f"layers.{i}", c.decoder_embed_dim, c.decoder_ffn_embed_dim
    ways = (".A", ".B") if c.multiway else ("",)
    out: list[Member] = []
    for proj, scaled in PROJECTIONS:
        for way in ways:
            out += _linear(f"{p}.self_attn.{proj}{way}", d, d, c, scale if scaled else None)
    out += layer_norm(f"{p}.self_attn_layer_norm", d)
    out += _linear(f"{p}.ffn.fc1", f, d, c, scale)
    out += _linear(f"{p}.ffn.fc2", d, f, c, scale)
    return [*out, *layer_norm(f"{p}.final_layer_norm", d)]


def _embeddings(c: DeepNetConfig) -> list[Member]:
    """embed_tokens (TextEmbedding, E:93-96) and output_projection (D:315-333). With bert_init
    and a shared weight, the output Linear's normal_ re-draws the embedding after its padding
    row was zeroed (Module.apply visits embed_tokens first): no zero row then."""
    d, v = c.decoder_embed_dim, c.vocab_size
    shared = c.share_decoder_input_output_embed
    out: list[Member] = []
    if c.embed_tokens:
        std = BERT_STD if c.bert_init else d**-0.5
        redrawn = c.bert_init and shared and has_output(c)
        rows = () if c.padding_idx is None or redrawn else (c.padding_idx,)
        out.append(normal("embed_tokens.weight", (v, d), std, zero_rows=rows))
    if not has_output(c):
        return out
    if shared:
        return [*out, tied("output_projection.weight", (v, d), "embed_tokens.weight")]
    std = BERT_STD if c.bert_init else d**-0.5
    return [*out, normal("output_projection.weight", (v, d), std)]


def has_rel_pos(c: DeepNetConfig) -> bool:
    return c.rel_pos_buckets > 0 and c.max_rel_pos > 0  # D:269


def deepnet(c: DeepNetConfig) -> list[Member]:
    """Decoder's state dict in its order: embed_tokens, output_projection, layernorm_embedding,
    the layers, self_attn_relative_position."""
    _refuse(c)
    out = _embeddings(c)
    if c.layernorm_embedding:
        out += layer_norm("layernorm_embedding", c.decoder_embed_dim)
    scale = init_scale(c.decoder_layers)
    for i in range(c.decoder_layers):
        out += _layer(i, c, scale)
    if has_rel_pos(c):
        shape = (c.rel_pos_buckets, c.decoder_attention_heads)
        std = BERT_STD if c.bert_init else 1.0  # nn.Embedding's own N(0, 1)
        out.append(normal("self_attn_relative_position.relative_attention_bias.weight", shape, std))
    return out


def count(c: DeepNetConfig) -> int:
    per_layer = 8 * (2 if c.multiway else 1) + 8
    top = c.embed_tokens + has_output(c) + 2 * c.layernorm_embedding + has_rel_pos(c)
    return int(top) + c.decoder_layers * per_layer


DEEPNORM = f"{DECODER}:285-297"
KAIMING = f"{LINEAR}:117-128"
BETA = "s = 1/β = math.pow(8.0·M, 0.25), M = decoder_layers"
BERT = "bert_init: N(0, 0.02²) first (init_bert_params)"
GROUPS = (
    Group("layers.{i}.self_attn.{k,q}_proj.weight (d, d) (.A/.B with multiway)", "uniform",
          "nn.Linear's kaiming_uniform_(a=√5): U(±1/√d); MultiheadAttention.reset_parameters "
          f"(xavier, gain 1/√2) is never called; {BERT}",
          f"{ATTENTION}:40-45, 58-63; {KAIMING}; {UTILS}:10-33; {MULTIWAY}:10-13, 28-30"),
    Group("layers.{i}.self_attn.{k,q}_proj.bias (d)", "uniform",
          "nn.Linear's U(±1/√d); bert_init: 0", f"{ATTENTION}:40-45; {KAIMING}; {UTILS}:16-17"),
    Group("layers.{i}.self_attn.{v,out}_proj.weight (d, d), layers.{i}.ffn.fc1.weight (ffn, d)",
          "uniform", f"U(±1/√d)/s: kaiming_uniform_(a=√5) divided by s; {BETA}; bert_init: "
          "N(0, (0.02/s)²)", f"{ATTENTION}:40-45; {FFN}:121; {KAIMING}; {DEEPNORM}"),
    Group("layers.{i}.ffn.fc2.weight (d, ffn)", "uniform",
          f"U(±1/√ffn)/s; {BETA}; bert_init: N(0, (0.02/s)²)", f"{FFN}:122; {KAIMING}; {DEEPNORM}"),
    Group("layers.{i}.self_attn.{v,out}_proj.bias (d), layers.{i}.ffn.fc1.bias (ffn), "
          "layers.{i}.ffn.fc2.bias (d)", "uniform",
          "nn.Linear's bias U(±1/√in_features) divided by s too (DeepNorm matches names, "
          f"biases included); {BETA}; bert_init: 0",
          f"{ATTENTION}:40-45; {FFN}:121-122; {KAIMING}; {DEEPNORM}"),
    Group("output_projection.weight (vocab_size, d), untied", "normal",
          "N(0, (d^-½)²), written decoder_embed_dim**-0.5; bert_init: N(0, 0.02²); absent with "
          "no_output_layer or vocab_size <= 0", f"{DECODER}:231-238, 326-332; {UTILS}:14-17"),
    Group("embed_tokens.weight (vocab_size, d), with embed_tokens", "normal",
          "TextEmbedding: N(0, (d^-½)²), row padding_idx 0; bert_init: N(0, 0.02²), row "
          "padding_idx 0 unless shared (re-drawn by the output Linear)",
          f"{EMBEDDING}:93-96; {DECODER}:228; {UTILS}:18-21"),
    Group("output_projection.weight, with share_decoder_input_output_embed", "tied",
          "= embed_tokens.weight", f"{DECODER}:319-325"),
    Group("layers.{i}.{self_attn_layer_norm,final_layer_norm}.weight, layernorm_embedding"
          ".weight (d)", "ones", "1 (torch.nn.LayerNorm)", f"{DECODER}:48, 87, 240-243"),
    Group("layers.{i}.{self_attn_layer_norm,final_layer_norm}.bias, layernorm_embedding.bias "
          "(d)", "zeros", "0 (torch.nn.LayerNorm)", f"{DECODER}:48, 87, 240-243"),
    Group("self_attn_relative_position.relative_attention_bias.weight (rel_pos_buckets, heads)",
          "normal", "nn.Embedding's N(0, 1); bert_init: N(0, 0.02²)",
          f"{DECODER}:269-274; {REL_POS}:19; {UTILS}:18-19"),
)  # fmt: skip

ROWS: tuple[Recipe[Any], ...] = (
    Recipe(
        NAME,
        "torchscale's DeepNet decoder (deepnorm): nn.Linear's U(±1/√in) everywhere, v_proj, "
        "out_proj, fc1, fc2 (weights and biases) divided by (8M)^¼; output_projection "
        "N(0, 1/d); LayerNorm 1/0",
        "torchscale",
        VERSION,
        "Decoder",
        NAME,
        DeepNetConfig,
        deepnet,
        count,
        GROUPS,
    ),
)
