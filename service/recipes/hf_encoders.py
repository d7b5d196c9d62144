"""Hugging Face transformers 5.x encoder models, as `from_config` initializes them: `hf.bert`
(BertModel) and `hf.t5` (T5ForConditionalGeneration), under their state-dict names and layouts.

BERT follows `PreTrainedModel._init_weights` (`modeling_utils.py`): σ = initializer_range, or
0.02 when it is 0; every nn.Linear N(0, σ²), bias 0; the word, position and token-type
embeddings N(0, σ²), and only `word_embeddings` has a padding_idx (`pad_token_id`, default 0),
whose row is then 0; LayerNorm 1/0. Its `position_ids`/`token_type_ids` buffers are not
persistent, so not in the state dict.

T5 follows `T5PreTrainedModel._init_weights`, which overrides every tensor the generic init
drew: with f = initializer_factor, `shared` N(0, f²); q N(0, (f/√(d_model·d_kv))²); k, v and
the first block's `relative_attention_bias` N(0, (f/√d_model)²); o N(0, (f/√(num_heads·d_kv))²);
wi (or wi_0, wi_1) N(0, (f/√d_model)²); wo N(0, (f/√d_ff)²); every T5LayerNorm weight f; no
biases. T5Config forces tie_word_embeddings to true, so `encoder.embed_tokens`,
`decoder.embed_tokens` and `lm_head` are `shared` itself. Sources cited per group (file:line,
transformers 5.24.0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from service.arguments import arg
from service.errors import ShapeError
from service.presets.base import MAX_COUNT, Member, constant
from service.recipes.base import Group, Recipe, layer_norm, linear, normal, tied
from service.recipes.hf import (
    INIT_RANGE,
    SIGMA,
    UTILS,
    VERSION,
    Activation,
    _padding,
    _sigma,
)
from service.shapes import MAX_DIM

BERT = "transformers/models/bert/modeling_bert.py"
T5 = "transformers/models/t5/modeling_t5.py"
T5_CONFIG = "transformers/models/t5/configuration_t5.py"

FeedForward = Literal[
    "gelu", "gelu_10", "gelu_accurate", "gelu_fast", "gelu_new", "gelu_python",
    "gelu_python_tanh", "gelu_pytorch_tanh", "hardswish", "laplace", "leaky_relu", "linear",
    "mish", "quick_gelu", "relu", "relu2", "relu6", "sigmoid", "silu", "sqrtsoftplus", "swish",
    "tanh",
    "gated-gelu", "gated-gelu_10", "gated-gelu_accurate", "gated-gelu_fast", "gated-gelu_new",
    "gated-gelu_python", "gated-gelu_python_tanh", "gated-gelu_pytorch_tanh", "gated-hardswish",
    "gated-laplace", "gated-leaky_relu", "gated-linear", "gated-mish", "gated-quick_gelu",
    "gated-relu", "gated-relu2", "gated-relu6", "gated-sigmoid", "gated-silu",
    "gated-sqrtsoftplus", "gated-swish", "gated-tanh",
]  # fmt: skip


# --- BERT -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int = arg("size of the vocabulary (word_embeddings rows)", 30522, ge=1, le=MAX_DIM)
    hidden_size: int = arg("width of the hidden states (d)", 768, ge=1, le=MAX_DIM)
    num_hidden_layers: int = arg("encoder layers (L)", 12, ge=0, le=MAX_COUNT)
    num_attention_heads: int = arg(
        "attention heads (must divide hidden_size)", 12, ge=1, le=MAX_DIM
    )
    intermediate_size: int = arg("inner size of the feed-forward", 3072, ge=1, le=MAX_DIM)
    max_position_embeddings: int = arg(
        "positions (position_embeddings rows)", 512, ge=1, le=MAX_DIM
    )
    type_vocab_size: int = arg("token types (token_type_embeddings rows)", 2, ge=1, le=MAX_DIM)
    initializer_range: float = arg(INIT_RANGE, 0.02, ge=0.0, le=1.0)
    pad_token_id: int | None = arg(
        "row of word_embeddings left zero (its padding_idx; the other embeddings have none)",
        0,
        ge=-MAX_DIM,
        le=MAX_DIM,
    )
    hidden_act: Activation = arg("activation of the feed-forward (no tensor of its own)", "gelu")
    is_decoder: bool = arg("causal self-attention; needed by add_cross_attention", False)
    add_cross_attention: bool = arg(
        "a crossattention block in every layer (needs is_decoder)", False
    )


def _bert_attention(p: str, d: int, std: float) -> list[Member]:
    """BertAttention: self.{query,key,value} (d, d) and output.dense, each with a bias, and
    output.LayerNorm (BertCrossAttention has the same shapes: its keys read hidden_size too)."""
    return [
        *linear(f"{p}.self.query", d, d, std, True),
        *linear(f"{p}.self.key", d, d, std, True),
        *linear(f"{p}.self.value", d, d, std, True),
        *linear(f"{p}.output.dense", d, d, std, True),
        *layer_norm(f"{p}.output.LayerNorm", d),
    ]


def _bert_layer(i: int, c: BertConfig, std: float) -> list[Member]:
    p, d, ff = f"encoder.layer.{i}", c.hidden_size, c.intermediate_size
    out = _bert_attention(f"{p}.attention", d, std)
    if c.add_cross_attention:
        out += _bert_attention(f"{p}.crossattention", d, std)
    return [
        *out,
        *linear(f"{p}.intermediate.dense", ff, d, std, True),
        *linear(f"{p}.output.dense", d, ff, std, True),
        *layer_norm(f"{p}.output.LayerNorm", d),
    ]


def bert(c: BertConfig) -> list[Member]:
    """BertModel's state dict: embeddings, the encoder layers, the pooler."""
    if c.hidden_size % c.num_attention_heads:
        raise ShapeError(
            f"hidden_size={c.hidden_size} must be divisible by "
            f"num_attention_heads={c.num_attention_heads}"
        )
    if c.add_cross_attention and not c.is_decoder:
        raise ShapeError("add_cross_attention needs is_decoder (BertLayer refuses it otherwise)")
    d, std = c.hidden_size, _sigma(c.initializer_range)
    out = [
        normal("embeddings.word_embeddings.weight", (c.vocab_size, d), std,
               _padding(c.pad_token_id, c.vocab_size)),
        normal("embeddings.position_embeddings.weight", (c.max_position_embeddings, d), std),
        normal("embeddings.token_type_embeddings.weight", (c.type_vocab_size, d), std),
        *layer_norm("embeddings.LayerNorm", d),
    ]  # fmt: skip
    for i in range(c.num_hidden_layers):
        out += _bert_layer(i, c, std)
    return [*out, *linear("pooler.dense", d, d, std, True)]


def _bert_count(c: BertConfig) -> int:
    return 7 + c.num_hidden_layers * (16 + 10 * c.add_cross_attention)


BERT_GROUPS = (
    Group("embeddings.word_embeddings.weight (vocab_size, d)", "normal",
          f"N(0, σ²), {SIGMA}; row pad_token_id (default 0) 0",
          f"{UTILS}:2311, 2331-2335; {BERT}:59"),
    Group("embeddings.position_embeddings.weight (max_position_embeddings, d), "
          "embeddings.token_type_embeddings.weight (type_vocab_size, d)", "normal",
          f"N(0, σ²), {SIGMA}; no padding row", f"{UTILS}:2331-2332; {BERT}:60-61"),
    Group("encoder.layer.{i}.{attention,crossattention}.self.{query,key,value}.weight, "
          ".output.dense.weight (d, d); .intermediate.dense.weight (intermediate_size, d), "
          ".output.dense.weight (d, intermediate_size); pooler.dense.weight (d, d)", "normal",
          f"N(0, σ²), {SIGMA}; no depth scaling",
          f"{UTILS}:2320-2322; {BERT}:155-157, 223-225, 286, 330, 345, 458"),
    Group("every bias of those Linears", "zeros", "0", f"{UTILS}:2323-2324"),
    Group("embeddings.LayerNorm.weight, encoder.layer.{i}.*.LayerNorm.weight", "ones", "1",
          f"{UTILS}:2344-2348; {BERT}:63, 287, 346"),
    Group("embeddings.LayerNorm.bias, encoder.layer.{i}.*.LayerNorm.bias", "zeros", "0",
          f"{UTILS}:2349-2350"),
)  # fmt: skip


# --- T5 ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class T5Config:
    vocab_size: int = arg("size of the vocabulary (shared rows)", 32128, ge=1, le=MAX_DIM)
    d_model: int = arg("width of the residual stream", 512, ge=1, le=MAX_DIM)
    d_kv: int = arg("size of a head (q, k, v have num_heads·d_kv rows)", 64, ge=1, le=MAX_DIM)
    d_ff: int = arg("inner size of the feed-forward", 2048, ge=1, le=MAX_DIM)
    num_layers: int = arg("encoder blocks", 6, ge=0, le=MAX_COUNT)
    num_decoder_layers: int | None = arg(
        "decoder blocks; null: num_layers", None, ge=0, le=MAX_COUNT
    )
    num_heads: int = arg("attention heads", 8, ge=1, le=MAX_DIM)
    relative_attention_num_buckets: int = arg(
        "rows of relative_attention_bias", 32, ge=1, le=MAX_DIM
    )
    initializer_factor: float = arg(
        "f: scales every std of T5's init; the layer-norm weight", 1.0, ge=0.0
    )
    feed_forward_proj: FeedForward = arg(
        "'{act}': DenseReluDense.wi, wo; 'gated-{act}': wi_0, wi_1, wo", "relu"
    )
    is_gated_act: bool | None = arg(
        "wins over feed_forward_proj's 'gated-' where given (T5Config sets it after deriving "
        "it; to_dict() writes it)",
        None,
    )
    dense_act_fn: Activation | None = arg(
        "wins over feed_forward_proj's activation where given (no tensor of its own)", None
    )
    tie_word_embeddings: bool = arg(
        "read by T5Config for scale_decoder_outputs only: it forces the tie, so lm_head and "
        "both embed_tokens are shared.weight either way",
        True,
    )


def _t5_attention(p: str, c: T5Config, relative: bool) -> list[Member]:
    """T5Attention: q, k, v (num_heads·d_kv, d_model), o (d_model, num_heads·d_kv); the first
    block's self-attention also has relative_attention_bias (buckets, num_heads)."""
    f, d, inner = float(c.initializer_factor), c.d_model, c.num_heads * c.d_kv
    out = [
        normal(f"{p}.q.weight", (inner, d), f * (d * c.d_kv) ** -0.5),
        normal(f"{p}.k.weight", (inner, d), f * d**-0.5),
        normal(f"{p}.v.weight", (inner, d), f * d**-0.5),
        normal(f"{p}.o.weight", (d, inner), f * inner**-0.5),
    ]
    if relative:
        shape = (c.relative_attention_num_buckets, c.num_heads)
        out.append(normal(f"{p}.relative_attention_bias.weight", shape, f * d**-0.5))
    return out


def _gated(c: T5Config) -> bool:
    """T5Config derives is_gated_act from feed_forward_proj; a given is_gated_act wins."""
    if c.is_gated_act is not None:
        return c.is_gated_act
    return c.feed_forward_proj.startswith("gated-")


def _t5_feed_forward(p: str, c: T5Config) -> list[Member]:
    f, d, ff, dense = float(c.initializer_factor), c.d_model, c.d_ff, f"{p}.DenseReluDense"
    names = ("wi_0", "wi_1") if _gated(c) else ("wi",)
    return [
        *(normal(f"{dense}.{w}.weight", (ff, d), f * d**-0.5) for w in names),
        normal(f"{dense}.wo.weight", (d, ff), f * ff**-0.5),
        constant(f"{p}.layer_norm.weight", (d,), f),
    ]


def _t5_stack(stack: str, c: T5Config, blocks: int) -> list[Member]:
    """T5Stack: embed_tokens (shared), the blocks (the decoder's with EncDecAttention), the
    final layer norm."""
    f, d, decoder = float(c.initializer_factor), c.d_model, stack == "decoder"
    out = [tied(f"{stack}.embed_tokens.weight", (c.vocab_size, d), "shared.weight")]
    for i in range(blocks):
        p = f"{stack}.block.{i}.layer"
        out += _t5_attention(f"{p}.0.SelfAttention", c, i == 0)
        out.append(constant(f"{p}.0.layer_norm.weight", (d,), f))
        if decoder:
            out += _t5_attention(f"{p}.1.EncDecAttention", c, False)
            out.append(constant(f"{p}.1.layer_norm.weight", (d,), f))
        out += _t5_feed_forward(f"{p}.{2 if decoder else 1}", c)
    return [*out, constant(f"{stack}.final_layer_norm.weight", (d,), f)]


def _decoder_layers(c: T5Config) -> int:
    return c.num_layers if c.num_decoder_layers is None else c.num_decoder_layers


def t5(c: T5Config) -> list[Member]:
    """T5ForConditionalGeneration's state dict; embed_tokens and lm_head tied to shared."""
    shape = (c.vocab_size, c.d_model)
    return [
        normal("shared.weight", shape, float(c.initializer_factor) * 1.0),
        *_t5_stack("encoder", c, c.num_layers),
        *_t5_stack("decoder", c, _decoder_layers(c)),
        tied("lm_head.weight", shape, "shared.weight"),
    ]


def _t5_count(c: T5Config) -> int:
    encoder, decoder, gated = c.num_layers, _decoder_layers(c), _gated(c)
    return 6 + encoder * (8 + gated) + decoder * (13 + gated) + (encoder > 0) + (decoder > 0)


T5_GROUPS = (
    Group("shared.weight (vocab_size, d_model)", "normal", "N(0, f²), f = initializer_factor",
          f"{T5}:577, 914"),
    Group("encoder.embed_tokens.weight, decoder.embed_tokens.weight, lm_head.weight", "tied",
          "= shared.weight (T5Config forces tie_word_embeddings true, so the untied lm_head "
          "N(0, f²) of :578-579 never runs)", f"{T5}:904-908; {T5_CONFIG}:81-82"),
    Group("*.SelfAttention.q.weight, *.EncDecAttention.q.weight (num_heads·d_kv, d_model)",
          "normal", "N(0, (f/√(d_model·d_kv))²)", f"{T5}:207, 615"),
    Group("*.{SelfAttention,EncDecAttention}.{k,v}.weight (num_heads·d_kv, d_model)", "normal",
          "N(0, (f/√d_model)²)", f"{T5}:208-209, 616-617"),
    Group("*.{SelfAttention,EncDecAttention}.o.weight (d_model, num_heads·d_kv)", "normal",
          "N(0, (f/√(num_heads·d_kv))²)", f"{T5}:210, 618"),
    Group("{encoder,decoder}.block.0.layer.0.SelfAttention.relative_attention_bias.weight "
          "(relative_attention_num_buckets, num_heads); block 0 only", "normal",
          "N(0, (f/√d_model)²)", f"{T5}:212-213, 619-620, 651-653"),
    Group("*.DenseReluDense.wi.weight, or wi_0 and wi_1 when gated (d_ff, d_model)", "normal",
          "N(0, (f/√d_model)²); gated: is_gated_act, else feed_forward_proj 'gated-…'",
          f"{T5}:79, 101-102, 130-133, 595, 602, 605; {T5_CONFIG}:68-70; "
          "transformers/configuration_utils.py:499-504"),
    Group("*.DenseReluDense.wo.weight (d_model, d_ff)", "normal", "N(0, (f/√d_ff)²)",
          f"{T5}:80, 103, 598, 608"),
    Group("*.layer_norm.weight, {encoder,decoder}.final_layer_norm.weight (d_model)",
          "constant", "f (T5LayerNorm: a weight, no bias)", f"{T5}:57, 571-572"),
)  # fmt: skip

ROWS: tuple[Recipe[Any], ...] = (
    Recipe(
        "hf.bert",
        "BertModel: every Linear and embedding N(0, 0.02²) (word_embeddings' pad row 0), "
        "biases 0, LayerNorm 1/0, pooler",
        "transformers",
        VERSION,
        "BertModel",
        "bert",
        BertConfig,
        bert,
        _bert_count,
        BERT_GROUPS,
    ),
    Recipe(
        "hf.t5",
        "T5ForConditionalGeneration: shared N(0, f²), q f/√(d·d_kv), k, v f/√d, o "
        "f/√(h·d_kv), wi f/√d, wo f/√d_ff, layer norms f; embed_tokens and lm_head tied",
        "transformers",
        VERSION,
        "T5ForConditionalGeneration",
        "t5",
        T5Config,
        t5,
        _t5_count,
        T5_GROUPS,
    ),
)
