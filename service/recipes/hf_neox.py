"""Hugging Face transformers 5.x GPT-NeoX (GPT-NeoX-20B, the Pythia suite), as `from_config`
initializes it: `hf.gpt_neox` (GPTNeoXForCausalLM), under its state-dict names and layouts.
Sources: transformers 5.24.0; M = `models/gpt_neox/modeling_gpt_neox.py`, U =
`modeling_utils.py`.

GPTNeoXPreTrainedModel has no `_init_weights` of its own (M:273-289), so the laws are
`PreTrainedModel._init_weights` (U:2304-2350): σ = initializer_range, or 0.02 when it is 0
(U:2311); every nn.Linear N(0, σ²), bias 0 (U:2320-2324); `embed_in` N(0, σ²) (U:2331-2332),
built without padding_idx (M:298), so no row is zeroed whatever pad_token_id says; every
LayerNorm weight 1, bias 0 (U:2341-2350). Nothing is truncated or depth-scaled: this is
transformers' init, not the EleutherAI gpt-neox library's `small_init`/`wang_init` that trained
Pythia (that is recipe `neox`, which builds its tensors with `state_dict` here).

Layout: q, k and v are one fused `attention.query_key_value` (3·d, d) (M:181), its rows grouped
per head as [q_h; k_h; v_h] (the forward's view, M:193-196); `attention.dense` (d, d) (M:182);
both have biases only with `attention_bias` (default true); the MLP's two Linears always have
theirs (M:41-42). The head is `lm_head.weight` (M:385); 4.x and the Hub checkpoints call it
`embed_out.weight`, renamed on load (`conversion_mapping.py:417-419`) and back by
`save_pretrained` of a `from_config` model (`core_model_loading.py:2024-2046`). It is tied to
`gpt_neox.embed_in.weight` only with `tie_word_embeddings` (default false, M:377). The rotary
`inv_freq` buffers are `persistent=False` (M:66-67): not in the state dict, so `rotary_pct`,
`rotary_emb_base` and `rope_parameters` shape no tensor; nor do `use_parallel_residual` (only
the forward's wiring, M:260-268), `layer_norm_eps`, the dropouts or `max_position_embeddings`.
Those are not read (describe lists them as ignored).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.arguments import arg
from service.errors import ShapeError
from service.presets.base import MAX_COUNT, Member
from service.recipes.base import Group, Recipe, layer_norm, linear, normal, tied
from service.recipes.hf import INIT_RANGE, SIGMA, UTILS, VERSION, Activation, _sigma
from service.shapes import MAX_DIM

NEOX = "transformers/models/gpt_neox/modeling_gpt_neox.py"
NEOX_CONFIG = "transformers/models/gpt_neox/configuration_gpt_neox.py"


@dataclass(frozen=True)
class GPTNeoXConfig:
    """The fields GPTNeoXForCausalLM's tensors depend on, with GPTNeoXConfig's defaults
    (GPT-NeoX-20B's sizes: `configuration_gpt_neox.py:61-80`)."""

    vocab_size: int = arg(
        "size of the vocabulary (embed_in, lm_head rows)", 50432, ge=1, le=MAX_DIM
    )
    hidden_size: int = arg("width of the residual stream (d)", 6144, ge=1, le=MAX_DIM)
    num_hidden_layers: int = arg("decoder layers (L)", 44, ge=0, le=MAX_COUNT)
    num_attention_heads: int = arg(
        "attention heads (must divide hidden_size)", 64, ge=1, le=MAX_DIM
    )
    intermediate_size: int = arg(
        "inner size of the MLP (dense_h_to_4h rows)", 24576, ge=1, le=MAX_DIM
    )
    initializer_range: float = arg(INIT_RANGE, 0.02, ge=0.0, le=1.0)
    attention_bias: bool = arg(
        "biases on attention.query_key_value and attention.dense (zeros); the MLP's biases are "
        "always there",
        True,
    )
    tie_word_embeddings: bool = arg("lm_head.weight is gpt_neox.embed_in.weight", False)
    hidden_act: Activation = arg("activation of the MLP (no tensor of its own)", "gelu")


def _layer(i: int, c: GPTNeoXConfig, std: float, out_std: float) -> list[Member]:
    """GPTNeoXLayer, in its registration order: the two LayerNorms, attention, MLP."""
    p, d, ff, bias = f"gpt_neox.layers.{i}", c.hidden_size, c.intermediate_size, c.attention_bias
    return [
        *layer_norm(f"{p}.input_layernorm", d),
        *layer_norm(f"{p}.post_attention_layernorm", d),
        *linear(f"{p}.attention.query_key_value", 3 * d, d, std, bias),
        *linear(f"{p}.attention.dense", d, d, out_std, bias),
        *linear(f"{p}.mlp.dense_h_to_4h", ff, d, std, True),
        *linear(f"{p}.mlp.dense_4h_to_h", d, ff, out_std, True),
    ]


def gpt_neox(c: GPTNeoXConfig) -> list[Member]:
    """GPTNeoXForCausalLM's state dict as transformers initializes it: one σ for every weight."""
    if c.hidden_size % c.num_attention_heads:
        raise ShapeError(
            f"hidden_size={c.hidden_size} must be divisible by "
            f"num_attention_heads={c.num_attention_heads} (GPTNeoXConfig refuses it)"
        )
    std = _sigma(c.initializer_range)
    return state_dict(c, std, std)


def state_dict(c: GPTNeoXConfig, std: float, out_std: float) -> list[Member]:
    """GPTNeoXForCausalLM's state dict: embed_in, the layers, final_layer_norm, lm_head; every
    random weight N(0, std²) but the residual outputs attention.dense and mlp.dense_4h_to_h,
    N(0, out_std²) (the gpt-neox library's split, `neox.py`; transformers uses one σ)."""
    d, shape = c.hidden_size, (c.vocab_size, c.hidden_size)
    out = [normal("gpt_neox.embed_in.weight", shape, std)]
    for i in range(c.num_hidden_layers):
        out += _layer(i, c, std, out_std)
    out += [*layer_norm("gpt_neox.final_layer_norm", d)]  # fmt: skip
    if c.tie_word_embeddings:
        return [*out, tied("lm_head.weight", shape, "gpt_neox.embed_in.weight")]
    return [*out, normal("lm_head.weight", shape, std)]


def count(c: GPTNeoXConfig) -> int:
    return 4 + c.num_hidden_layers * (10 + 2 * c.attention_bias)


LINEAR = f"{UTILS}:2320-2322"
GROUPS = (
    Group("gpt_neox.embed_in.weight (vocab_size, d)", "normal",
          f"N(0, σ²), {SIGMA}; no padding row (nn.Embedding without padding_idx)",
          f"{UTILS}:2311, 2331-2332; {NEOX}:298"),
    Group("gpt_neox.layers.{i}.attention.query_key_value.weight (3·d, d), rows per head "
          "[q; k; v]; .attention.dense.weight (d, d)", "normal",
          f"N(0, σ²), {SIGMA}; no depth scaling", f"{LINEAR}; {NEOX}:181-182, 193-196"),
    Group("gpt_neox.layers.{i}.mlp.dense_h_to_4h.weight (intermediate_size, d), "
          ".mlp.dense_4h_to_h.weight (d, intermediate_size)", "normal",
          f"N(0, σ²), {SIGMA}; no depth scaling", f"{LINEAR}; {NEOX}:41-42"),
    Group("gpt_neox.layers.{i}.attention.{query_key_value,dense}.bias (attention_bias), "
          ".mlp.{dense_h_to_4h,dense_4h_to_h}.bias (always)", "zeros", "0",
          f"{UTILS}:2323-2324; {NEOX}:41-42, 181-182"),
    Group("gpt_neox.layers.{i}.{input,post_attention}_layernorm.weight, "
          "gpt_neox.final_layer_norm.weight (d)", "ones", "1",
          f"{UTILS}:2341-2348; {NEOX}:232-233, 301"),
    Group("gpt_neox.layers.{i}.{input,post_attention}_layernorm.bias, "
          "gpt_neox.final_layer_norm.bias (d)", "zeros", "0",
          f"{UTILS}:2349-2350; {NEOX}:232-233, 301"),
    Group("lm_head.weight (tie_word_embeddings)", "tied", "= gpt_neox.embed_in.weight",
          f"{NEOX}:377"),
    Group("lm_head.weight (untied: the default)", "normal", f"N(0, σ²), {SIGMA}",
          f"{LINEAR}; {NEOX}:385; {NEOX_CONFIG}:77"),
)  # fmt: skip

ROWS: tuple[Recipe[Any], ...] = (
    Recipe(
        "hf.gpt_neox",
        "GPTNeoXForCausalLM (Pythia): every Linear and embed_in N(0, 0.02²), fused "
        "query_key_value (3d, d), biases 0, LayerNorm 1/0, lm_head untied unless asked",
        "transformers",
        VERSION,
        "GPTNeoXForCausalLM",
        "gpt_neox",
        GPTNeoXConfig,
        gpt_neox,
        count,
        GROUPS,
    ),
)
