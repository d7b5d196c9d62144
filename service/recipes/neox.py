"""EleutherAI gpt-neox (the library that trained GPT-NeoX-20B and the Pythia suite) as it
initializes a model: recipe `neox`, under the names and layouts of transformers'
GPTNeoXForCausalLM, which Pythia is published in and gpt-neox's own converter writes
(`tools/ckpts/convert_neox_to_hf.py`).

Read at commit ea7aefd8f8e183256992d9fede4d7c71a46d67a5 (2026-05-20, the repository's head).
small_init and wang_init have had these formulas since 2021-05-11 (c9f69b16 fixed small_init's
brackets the day they were added); later changes to init_functions.py add muP and Mamba's
num_residuals_per_layer, and 2·L as an int gives the float 2.0·L gave. gpt-neox is not a pip
package, so the commit is the version. I = megatron/model/init_functions.py, T =
megatron/model/transformer.py, G = megatron/model/gpt2_model.py, W =
megatron/model/word_embeddings.py, P = megatron/mpu/layers.py, A =
megatron/neox_arguments/neox_args.py, C = tools/ckpts/convert_neox_to_hf.py.

`get_init_methods` (I:178-227) turns the options `init_method` (default normal) and
`output_layer_init_method` (default scaled_normal, A:391-417) into two laws, with σ =
`init_method_std` (0.02, A:352), L = `num_layers`, d = `hidden_size`:

| option | std | source |
|---|---|---|
| normal | σ | I:35, 188-191 |
| scaled_normal | σ/√(2L) | I:45, 52, 192-195 |
| single_residual_scaled_normal | σ/√L | I:52, 214-223 |
| small_init | √(2/(5d)) | I:149, 210-213 |
| wang_init | 2/(L·√d), computed `2 / L / math.sqrt(d)` | I:164, 206-209 |

each `torch.nn.init.normal_(mean=0, std)`, untruncated. The output-layer law goes to the two
residual outputs, `attention.dense` (T:462-471) and the MLP's second Linear (T:154-163); the
other to the word embeddings (W:63-68, from G:201/215), the fused `query_key_value` (T:344-351),
the MLP's first Linear (T:144-152) and, with `no_weight_tying`, the final linear (G:334-343,
T:220-230). Biases are zeroed where built (P:494-496, 704-706); the norms are torch's LayerNorm
(weight 1, bias 0). Tied (the default), the head is the word embedding (G:318-333). The Pythia
configs (configs/pythia/160M.yml …) set small_init and wang_init: Pythia-160M's stds 0.022822 and
0.0060141. Refused: orthogonal and scaled_orthogonal (a QR of a normal matrix, I:66-111, not an
elementwise law) and xavier_uniform/xavier_normal: torch's xavier of each model-parallel rank's
shard (P:44-52), of the whole matrix only with `use_cpu_initialization` (P:76-79), so the fans
depend on the parallel layout.

Names (C:54-80, 540-558, 692-770): `word_embeddings.weight` is `gpt_neox.embed_in.weight`,
`mlp.linear1`/`linear2` are `mlp.dense_h_to_4h`/`dense_4h_to_h`, the final norm
`gpt_neox.final_layer_norm`, `final_linear.weight` (or the tied embedding) `embed_out.weight`,
which transformers 5.24 calls `lm_head.weight` (see hf_neox.py). The HF config is the
converter's (C:306-314, 362-377): vocab_size = the padded vocabulary, num_hidden_layers =
num_layers, tie_word_embeddings = not no_weight_tying; `attention_bias` = use_bias_in_attn_linear
(the converter leaves it true, so it cannot load a model built without those biases). Describe
answers it as `hf_config`, which `weightgen checkpoint neox` writes as config.json: with
initializer_range = init_method_std, use_cache, and rotary_pct, rotary_emb_base,
use_parallel_residual (gpt_j_residual), layer_norm_eps (layernorm_epsilon) and
max_position_embeddings from the config (read for that alone); intermediate_size is the MLP's
built width (the converter takes the `intermediate_size` key, or 4·d, unrounded).

Rows: `padded_vocab_size`, else the tokenizer's `vocab_size` rounded up to a multiple of
`make_vocab_size_divisible_by`·`model_parallel_size` (megatron/tokenizer/tokenizer.py:72-79);
GPT-2's 50257 (the default tokenizer_type's) pads to Pythia-160M's 50304. MLP width: T:117-143.
Only what GPTNeoXForCausalLM can hold is made: rotary positions, LayerNorm, an ungated MLP with
biases, full multi-head attention, no q/k norms, no muP, untied per-layer norms (the converter
refuses gpt_j_tied, C:294-301); anything else is a 422. Keys are NeoXArgs' (underscores).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from service.arguments import MISSING, arg
from service.errors import SchemeError, ShapeError, one_of
from service.presets.base import MAX_COUNT, Member
from service.recipes import hf_neox
from service.recipes.base import Group, Recipe
from service.shapes import MAX_DIM

COMMIT = "ea7aefd8f8e183256992d9fede4d7c71a46d67a5"
INIT = "megatron/model/init_functions.py"
TRANSFORMER = "megatron/model/transformer.py"
GPT2 = "megatron/model/gpt2_model.py"
EMBEDDINGS = "megatron/model/word_embeddings.py"
LAYERS = "megatron/mpu/layers.py"
NORMS = "megatron/model/norms.py"
CONVERTER = "tools/ckpts/convert_neox_to_hf.py"
InitMethod = Literal["normal", "scaled_normal", "orthogonal", "scaled_orthogonal",
                     "xavier_uniform", "xavier_normal", "wang_init", "small_init",
                     "single_residual_scaled_normal"]  # fmt: skip  # A:391-401
PosEmb = Literal["learned", "rotary", "sinusoidal", "rpe", "alibi", "none"]  # A:207-209
Norm = Literal["layernorm", "rmsnorm", "non_parametric_layernorm", "scalenorm", "te_rmsnorm",
               "te_layernorm"]  # fmt: skip  # A:165-172
Activation = Literal["gelu", "geglu", "relu", "softsign", "swish", "mish", "silu", "reglu",
                     "swiglu", "bilinear", "glu"]  # fmt: skip  # A:295-307
GATED = ("geglu", "reglu", "bilinear", "swiglu", "glu")  # megatron/model/activations.py:30-44


@dataclass(frozen=True)
class NeoXConfig:
    """NeoXArgs' fields (neox_args.py) that shape a tensor or its law, with their defaults;
    hidden_size, num_layers and num_attention_heads have none there (None: required)."""

    hidden_size: int = arg("width of the residual stream (d)", MISSING, ge=1, le=MAX_DIM)
    num_layers: int = arg("transformer layers (L)", MISSING, ge=1, le=MAX_COUNT)
    num_attention_heads: int = arg(
        "attention heads (must divide hidden_size)", MISSING, ge=1, le=MAX_DIM
    )
    num_kv_heads: int | None = arg(
        "key/value heads; null: num_attention_heads (GQA refused)", None, ge=1, le=MAX_DIM
    )
    intermediate_size: int | None = arg(
        "the MLP's width; null: int(expansion_factor·d), else 4·d; rounded up to a multiple of "
        "2·mlp_multiple_of",
        None,
        ge=1,
        le=MAX_DIM,
    )
    expansion_factor: float | None = arg(
        "the MLP's width over d (with no intermediate_size)", None, gt=0.0, le=MAX_DIM
    )
    mlp_multiple_of: int = arg("the MLP's width is a multiple of twice this", 1, ge=1, le=MAX_DIM)
    vocab_size: int = arg(
        "the tokenizer's vocabulary (GPT-2 BPE's 50257: tokenizer_type's default), padded",
        50257,
        ge=1,
        le=MAX_DIM,
    )
    make_vocab_size_divisible_by: int = arg(
        "pad the vocabulary to a multiple of this times model_parallel_size", 128, ge=1, le=MAX_DIM
    )
    model_parallel_size: int = arg(
        "tensor-parallel ranks (only the padding reads it)", 1, ge=1, le=MAX_COUNT
    )
    padded_vocab_size: int | None = arg(
        "the embedding rows as is; null: vocab_size padded", None, ge=1, le=MAX_DIM
    )
    no_weight_tying: bool = arg(
        "an untied final linear (lm_head); false: lm_head is embed_in", False
    )
    use_bias_in_attn_linear: bool = arg("zero biases on query_key_value and dense", True)
    use_bias_in_mlp: bool = arg("zero biases on the MLP (false refused: HF always has them)", True)
    pos_emb: PosEmb = arg("position embedding; GPTNeoXForCausalLM holds only rotary", "learned")
    norm: Norm = arg("norm class; GPTNeoXForCausalLM holds only layernorm", "layernorm")
    activation: Activation = arg("the MLP's activation (gated ones refused)", "gelu")
    use_qk_layernorm: bool = arg("q/k layer norms (refused: no such HF tensor)", False)
    gpt_j_tied: bool = arg("one shared norm per layer (refused, as by the converter)", False)
    use_mup: bool = arg("muP re-initialization (refused)", False)
    init_method: InitMethod = arg(
        "law of embeddings, query_key_value, dense_h_to_4h, the head", "normal"
    )
    output_layer_init_method: InitMethod = arg(
        "law of attention.dense and dense_4h_to_h", "scaled_normal"
    )
    init_method_std: float = arg("σ of normal, scaled_normal", 0.02, ge=0.0, le=1e3)
    # read for the converter's config.json only (no tensor depends on them)
    max_position_embeddings: int | None = arg(
        "positions (config.json only; null: GPTNeoXConfig's 2048)", None, ge=1, le=MAX_DIM
    )
    rotary_pct: float = arg("share of each head rotated (config.json only)", 1.0, ge=0.0, le=1.0)
    rotary_emb_base: float = arg("RoPE base (config.json only)", 10000.0, gt=0.0, le=1e12)
    gpt_j_residual: bool = arg("parallel attention and MLP (config.json only)", False)
    layernorm_epsilon: float = arg("LayerNorm eps (config.json only)", 1e-5, gt=0.0, le=1.0)


# get_init_methods's _get (I:187-225): the std each served option draws with, written as there
STDS: Mapping[str, Callable[[NeoXConfig], float]] = {
    "normal": lambda c: c.init_method_std,  # I:35, 189-191
    "scaled_normal": lambda c: c.init_method_std / math.sqrt(2 * c.num_layers),  # I:45, 52
    "single_residual_scaled_normal": lambda c: c.init_method_std / math.sqrt(1 * c.num_layers),
    "small_init": lambda c: math.sqrt(2 / (5 * c.hidden_size)),  # I:149, 211-212
    "wang_init": lambda c: 2 / c.num_layers / math.sqrt(c.hidden_size),  # I:164, 207-208
}
NOT_A_LAW = "a QR-orthogonalized normal matrix (init_functions.py:66-111), not an elementwise law"
PARTITIONED = ("torch's xavier of each model-parallel rank's shard (mpu/layers.py:44-52; of the "
               "whole matrix only with use_cpu_initialization, :76-79): the fans depend on the "
               "parallel layout")  # fmt: skip
REFUSED = {"orthogonal": NOT_A_LAW, "scaled_orthogonal": NOT_A_LAW,
           "xavier_uniform": PARTITIONED, "xavier_normal": PARTITIONED}  # fmt: skip


def law(option: str, name: str, c: NeoXConfig) -> float:
    """The std the init method `name` (the value of the field `option`) draws with, or a
    SchemeError saying why it is not served."""
    if name not in STDS:
        raise SchemeError(f"neox config {option} {name!r} is not served: {REFUSED[name]}; "
                          f"served: {one_of(STDS)}")  # fmt: skip
    return float(STDS[name](c))


def padded_vocab(c: NeoXConfig) -> int:
    """tokenizer.py:72-79: vocab_size rounded up to a multiple of make_vocab_size_divisible_by ×
    model_parallel_size (padded_vocab_size, where given, is what NeoXArgs holds: G:198)."""
    if c.padded_vocab_size is not None:
        return c.padded_vocab_size
    multiple = c.make_vocab_size_divisible_by * c.model_parallel_size
    return -(-c.vocab_size // multiple) * multiple


def mlp_widths(c: NeoXConfig) -> tuple[int, int]:
    """ParallelMLP (T:117-143, ungated): linear1's rows and linear2's columns."""
    if c.intermediate_size:
        ffn = c.intermediate_size
    elif c.expansion_factor:
        ffn = int(c.expansion_factor * c.hidden_size)
    else:
        ffn = 4 * c.hidden_size
    m = c.mlp_multiple_of
    return int((2 * m) * ((ffn + (2 * m) - 1) // (2 * m))), int(m * ((ffn + m - 1) // m))


def hf_config(c: NeoXConfig) -> hf_neox.GPTNeoXConfig:
    """The GPTNeoXConfig the converter makes (C:306-314, 362-377), with the sizes gpt-neox
    builds and attention_bias from use_bias_in_attn_linear."""
    return hf_neox.GPTNeoXConfig(
        vocab_size=padded_vocab(c), hidden_size=c.hidden_size, num_hidden_layers=c.num_layers,
        num_attention_heads=c.num_attention_heads, intermediate_size=mlp_widths(c)[0],
        attention_bias=c.use_bias_in_attn_linear, tie_word_embeddings=not c.no_weight_tying,
    )  # fmt: skip


def converted(c: NeoXConfig) -> dict[str, object]:
    """config.json as the converter writes it for GPTNeoXForCausalLM (C:306-314, 362-377),
    with the sizes and attention_bias of `hf_config` (so that the model holds these tensors)."""
    out: dict[str, object] = {
        "model_type": "gpt_neox", "architectures": ["GPTNeoXForCausalLM"],
        **dataclasses.asdict(hf_config(c)), "initializer_range": c.init_method_std,
        "use_cache": True, "rotary_pct": c.rotary_pct, "rotary_emb_base": c.rotary_emb_base,
        "use_parallel_residual": c.gpt_j_residual, "layer_norm_eps": c.layernorm_epsilon,
    }  # fmt: skip
    if c.max_position_embeddings is not None:
        out["max_position_embeddings"] = c.max_position_embeddings
    return out


def _refuse(c: NeoXConfig) -> None:
    """What GPTNeoXForCausalLM cannot hold, or gpt-neox itself refuses, as a ShapeError."""
    rows, cols = mlp_widths(c)
    checks = (
        (c.pos_emb != "rotary", f"pos_emb {c.pos_emb!r}: GPTNeoXForCausalLM has rotary "
         "positions only (learned adds a position_embeddings it has no name for, "
         "word_embeddings.py:88-94); use 'rotary', as the Pythia configs do"),
        (c.norm != "layernorm", f"norm {c.norm!r}: GPTNeoXForCausalLM's norms are LayerNorms"),
        (c.activation in GATED, f"activation {c.activation!r} is gated (linear1 twice as wide, "
         "transformer.py:125-135); GPTNeoXForCausalLM's MLP is not"),
        (c.num_kv_heads not in (None, c.num_attention_heads), f"num_kv_heads={c.num_kv_heads}: "
         "GPTNeoXForCausalLM has no grouped-query attention"),
        (c.use_qk_layernorm, "use_qk_layernorm: GPTNeoXForCausalLM has no q/k norms"),
        (c.gpt_j_tied, "gpt_j_tied: one shared norm per layer, which the converter refuses "
         "(convert_neox_to_hf.py:294-301)"),
        (not c.use_bias_in_mlp, "use_bias_in_mlp false: GPTNeoXForCausalLM's MLP has biases"),
        (c.use_mup, "use_mup: muP re-initializes every layer (training.py:73-83); not made here"),
        (c.hidden_size % c.num_attention_heads != 0, f"hidden_size={c.hidden_size} must be "
         f"divisible by num_attention_heads={c.num_attention_heads} (transformer.py:303-305)"),
        (bool(c.intermediate_size and c.expansion_factor), "gives both intermediate_size and "
         "expansion_factor (transformer.py:106-108 asserts one)"),
        (cols < 1, "makes an MLP of width 0: raise expansion_factor"),
        (rows != cols, f"makes linear1 {rows} rows but linear2 {cols} columns "
         "(transformer.py:137-143); GPTNeoXForCausalLM has one intermediate_size"),
        (padded_vocab(c) > MAX_DIM, f"pads the vocabulary to {padded_vocab(c)} > {MAX_DIM}"),
    )  # fmt: skip
    for bad, why in checks:
        if bad:
            raise ShapeError(f"neox config {why}")


def neox(c: NeoXConfig) -> list[Member]:
    """GPTNeoXForCausalLM's state dict with gpt-neox's laws: init_method's std everywhere but
    attention.dense and dense_4h_to_h, which draw with output_layer_init_method's."""
    _refuse(c)
    inner = law("init_method", c.init_method, c)
    outer = law("output_layer_init_method", c.output_layer_init_method, c)
    return hf_neox.state_dict(hf_config(c), inner, outer)


def count(c: NeoXConfig) -> int:
    return hf_neox.count(hf_config(c))


LAWS = f"{INIT}:35, 45, 52, 149, 164, 187-227"
STD = ("s by the option (σ = init_method_std, L = num_layers, d = hidden_size): normal σ; "
       "scaled_normal σ/√(2L); single_residual_scaled_normal σ/√L; small_init √(2/(5d)); "
       "wang_init 2/(L·√d)")  # fmt: skip
GROUPS = (
    Group("gpt_neox.embed_in.weight (padded vocab, d): word_embeddings", "normal",
          f"N(0, s²), init_method's; {STD}; no padding row",
          f"{EMBEDDINGS}:63-68; {GPT2}:201, 215; {LAYERS}:163-165; {LAWS}"),
    Group("gpt_neox.layers.{i}.attention.query_key_value.weight (3·d, d), rows per head "
          "[q; k; v]; .mlp.dense_h_to_4h.weight (ffn, d): linear1", "normal",
          f"N(0, s²), init_method's; {STD}",
          f"{TRANSFORMER}:144-152, 344-351; {LAYERS}:472-474; {LAWS}"),
    Group("gpt_neox.layers.{i}.attention.dense.weight (d, d); .mlp.dense_4h_to_h.weight "
          "(d, ffn): linear2", "normal", f"N(0, s²), output_layer_init_method's; {STD}",
          f"{TRANSFORMER}:154-163, 462-471; {LAYERS}:688-690; {LAWS}"),
    Group("gpt_neox.layers.{i}.attention.{query_key_value,dense}.bias (use_bias_in_attn_linear), "
          ".mlp.{dense_h_to_4h,dense_4h_to_h}.bias", "zeros", "0",
          f"{LAYERS}:494-496, 704-706; {TRANSFORMER}:151, 162, 350, 470"),
    Group("gpt_neox.layers.{i}.{input,post_attention}_layernorm.weight, "
          "gpt_neox.final_layer_norm.weight (d)", "ones", "1 (torch.nn.LayerNorm)",
          f"{NORMS}:16, 35; {TRANSFORMER}:934, 994; {GPT2}:293-295"),
    Group("gpt_neox.layers.{i}.{input,post_attention}_layernorm.bias, "
          "gpt_neox.final_layer_norm.bias (d)", "zeros", "0 (torch.nn.LayerNorm)",
          f"{NORMS}:16, 35; {TRANSFORMER}:934, 994; {GPT2}:293-295"),
    Group("lm_head.weight (no_weight_tying false: the default)", "tied",
          "= gpt_neox.embed_in.weight", f"{GPT2}:185, 318-333; {CONVERTER}:313"),
    Group("lm_head.weight (no_weight_tying): final_linear", "normal",
          f"N(0, s²), init_method's; {STD}",
          f"{GPT2}:334-343; {TRANSFORMER}:220-226; {LAWS}"),
)  # fmt: skip

ROWS: tuple[Recipe[Any], ...] = (
    Recipe(
        "neox",
        "EleutherAI gpt-neox's init (Pythia: small_init √(2/(5d)), wang_init 2/(L·√d) on the "
        "residual outputs) under GPTNeoXForCausalLM's names",
        "gpt-neox",
        f"git {COMMIT[:12]}",
        "GPTNeoXForCausalLM",
        "neox",
        NeoXConfig,
        neox,
        count,
        GROUPS,
        hf_config=converted,
    ),
)
