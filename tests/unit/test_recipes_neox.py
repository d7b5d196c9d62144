"""service.recipes.neox against EleutherAI/gpt-neox at COMMIT, read with git from the repository
(gpt-neox is not a pip package, so it is not installed). The gpt-neox lines the laws, sizes and
names rest on are quoted verbatim below (and checked against a mirror of the repository when one
is present); this file's mirrors of `get_init_methods`, the MLP width, the vocabulary padding
and the converter's config are written from them, independent of the recipe code. Checked:
names, shapes and order against transformers' GPTNeoXForCausalLM built from the converter's
config; each group's std against the mirror (Pythia-160M's known values too); a bundle fetched
over HTTP loads strictly into that model, its random tensors KS-tested against N(0, s²), its
constants exact and the tie byte-equal; the refusals as 422s; describe's ignored fields; the
cited lines."""

from __future__ import annotations

import math
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service import recipes
from service.recipes import neox
from tests.integration.test_bundles import member_bytes
from tests.support import layout

transformers = pytest.importorskip(
    "transformers",
    reason="transformers is not installed: pip install transformers==5.24.0 -c <torch pin>",
)
import numpy as np  # noqa: E402
import safetensors.torch  # noqa: E402
import torch  # noqa: E402
from scipy import stats  # noqa: E402

RECIPE = "neox"
COMMIT = "ea7aefd8f8e183256992d9fede4d7c71a46d67a5"
MIRROR = Path("/work/.mirror/EleutherAI+gpt-neox/repo")  # the `fetch` tool's copy, where present

# --- gpt-neox at COMMIT: the lines this file and the recipe's cites rest on (verbatim, stripped)
QUOTED: dict[str, dict[int, tuple[str, ...]]] = {
    "megatron/model/init_functions.py": {
        35: ("return torch.nn.init.normal_(tensor, mean=0.0, std=sigma)",),
        45: ("num_residuals_per_layer=2,",),
        52: ("std = sigma / math.sqrt(num_residuals_per_layer * num_layers)",),
        149: ("std = math.sqrt(2 / (5 * dim))",),
        164: ("std = 2 / n_layers / math.sqrt(dim)",),
        187: (
            "def _get(name):",
            'if name == "normal":',
            "return init_method_normal(",
            "args.init_method_std, args.use_mup, args.mup_init_scale",
            ")",
            'elif name == "scaled_normal":',
            "return scaled_init_method_normal(",
            "args.init_method_std, args.num_layers, args.use_mup, args.mup_init_scale",
            ")",
            'elif name == "orthogonal":',
            "return orthogonal_init_method(args.use_mup, args.mup_init_scale)",
            'elif name == "scaled_orthogonal":',
            "return orthogonal_init_method(",
            "args.num_layers, args.use_mup, args.mup_init_scale",
            ")",
            'elif name == "xavier_uniform":',
            "return xavier_uniform_init_method(args.use_mup, args.mup_init_scale)",
            'elif name == "xavier_normal":',
            "return xavier_normal_init_method(args.use_mup, args.mup_init_scale)",
            'elif name == "wang_init":',
            "return wang_init_method(",
            "args.num_layers, args.hidden_size, args.use_mup, args.mup_init_scale",
            ")",
            'elif name == "small_init":',
            "return small_init_init_method(",
            "args.hidden_size, args.use_mup, args.mup_init_scale",
            ")",
            'elif name == "single_residual_scaled_normal":',
            "# mamba init uses scaled_normal but no need for 2 * num_layers",
            "# since only one residual per layer",
            "return scaled_init_method_normal(",
            "args.init_method_std,",
            "args.num_layers,",
            "args.use_mup,",
            "args.mup_init_scale,",
            "num_residuals_per_layer=1,",
            ")",
            "else:",
            'raise NotImplementedError(f"Unknown init method {name}")',
            "",
            "return _get(args.init_method), _get(args.output_layer_init_method)",
        ),
    },
    "megatron/model/transformer.py": {
        106: (
            "assert (",
            "neox_args.intermediate_size == None or neox_args.expansion_factor == None",
            '), "Must pass either the absolute intermediate size or the relative expansion '
            'factor for the mamba projections"',
        ),
        117: (
            "if neox_args.intermediate_size:",
            "ffn_dim = neox_args.intermediate_size",
            "elif neox_args.expansion_factor:",
            "ffn_dim = int(neox_args.expansion_factor * neox_args.hidden_size)",
            "else:",
            "# 4h is default for ffn_dim",
            "ffn_dim = 4 * neox_args.hidden_size",
            "ffn_dim_in = ffn_dim",
            "if self.is_gated:",
            "# set activation function to be gated implementation",
            "self.activation_func = Gated_Activation(",
            "self.activation_func,",
            "(swiglu is not None)",
            'and (neox_args.activation == "swiglu")',
            "and neox_args.use_flashattn_swiglu,",
            ")",
            "# auto scale so gated activations has equal parameters",
            "ffn_dim = int(ffn_dim * 2 / 3)",
            "ffn_dim_in = ffn_dim // 2",
            "# set multiple",
            "ffn_dim = int(",
            "(2 * self.multiple_of)",
            "* ((ffn_dim + (2 * multiple_of) - 1) // (2 * multiple_of))",
            ")",
            "ffn_dim_in = int(",
            "self.multiple_of * ((ffn_dim_in + multiple_of - 1) // multiple_of)",
            ")",
            "self.linear1 = ColumnParallelLinear(",
            "neox_args=neox_args,",
            "input_size=neox_args.hidden_size,",
            "output_size=ffn_dim,",
            "gather_output=False,",
            "init_method=init_method,",
            "skip_bias_add=True,",
            "bias=neox_args.use_bias_in_mlp,",
            ")",
            "# Project back to h.",
            "self.linear2 = RowParallelLinear(",
            "neox_args=neox_args,",
            "input_size=ffn_dim_in,",
            "output_size=neox_args.hidden_size,",
            "input_is_parallel=True,",
            "init_method=output_layer_init_method,",
            "parallel_output=parallel_output,",
            "skip_bias_add=True,",
            "bias=neox_args.use_bias_in_mlp,",
            ")",
        ),
        220: (
            "self.final_linear = ColumnParallelLinear(",
            "neox_args=neox_args,",
            "input_size=neox_args.hidden_size,",
            "output_size=neox_args.padded_vocab_size,",
            "bias=False,",
            "init_method=init_method,",
            "gather_output=not parallel_output,",
        ),
        303: (
            "self.hidden_size_per_attention_head = mpu.divide(",
            "neox_args.hidden_size, neox_args.num_attention_heads",
            ")",
        ),
        344: (
            "self.query_key_value = ColumnParallelLinear(",
            "neox_args=neox_args,",
            "input_size=neox_args.hidden_size,",
            "output_size=3 * neox_args.hidden_size,",
            "gather_output=False,",
            "init_method=init_method,",
            "bias=neox_args.use_bias_in_attn_linear,",
            ")",
        ),
        462: (
            "self.dense = RowParallelLinear(",
            "neox_args=neox_args,",
            "input_size=neox_args.hidden_size,",
            "output_size=neox_args.hidden_size,",
            "input_is_parallel=True,",
            "init_method=output_layer_init_method,",
            "skip_bias_add=True,",
            "parallel_output=parallel_output,",
            "bias=neox_args.use_bias_in_attn_linear,",
            ")",
        ),
        934: ("self.input_layernorm = norm(neox_args.hidden_size, eps=eps)",),
        994: ("self.post_attention_layernorm = norm(neox_args.hidden_size, eps=eps)",),
    },
    "megatron/model/gpt2_model.py": {
        185: ("weight_tying = not self.neox_args.no_weight_tying",),
        201: ("self.init_method,",),
        215: ("self.init_method,",),
        293: (
            "norm, eps = get_norm(self.neox_args)",
            "self.specs.append(",
            "LayerSpec(NormPipe, norm, self.neox_args.hidden_size, eps=eps)",
        ),
        318: (
            "if weight_tying:",
            "self.specs.append(",
            "TiedLayerSpec(",
            '"embed",',
            "EmbeddingPipe,",
            "self.neox_args,",
            "self.hidden_size,",
            "self.neox_args.padded_vocab_size,",
            "self.neox_args.max_position_embeddings,",
            "self.neox_args.hidden_dropout,",
            "self.init_method,",
            "self.num_tokentypes,",
            "forward_fn=_logits_helper,",
            'tied_weight_attr="word_embeddings_weight",',
            ")",
            ")",
            "else:",
            "self.specs.append(",
            "LayerSpec(",
            "ParallelLinearPipe,",
            "neox_args=self.neox_args,",
            "init_method=self.init_method,",
            "parallel_output=self.parallel_output,",
            "is_last_layer=True,",
            ")",
            ")",
        ),
    },
    "megatron/model/word_embeddings.py": {
        63: (
            "self.word_embeddings = mpu.VocabParallelEmbedding(",
            "neox_args=neox_args,",
            "num_embeddings=vocab_size,",
            "embedding_dim=self.hidden_size,",
            "init_method=self.init_method,",
            ")",
        ),
        88: (
            'if self.embedding_type == "learned":',
            "self.position_embeddings = self.embedding_module(",
            "max_sequence_length, self.hidden_size",
            ")",
            'self._position_embeddings_key = "position_embeddings"',
            "# Initialize the position embeddings.",
            "self.init_method(self.position_embeddings.weight)",
        ),
    },
    "megatron/mpu/layers.py": {
        44: (
            "def _initialize_affine_weight_gpu(weight, init_method, partition_dim, stride=1):",
            '"""Initialize affine weight for model parallel on GPU."""',
            "",
            "weight.model_parallel = True",
            "weight.partition_dim = partition_dim",
            "weight.partition_stride = stride",
            "",
            "with get_cuda_rng_tracker().fork():",
            "init_method(weight)",
        ),
        76: (
            "master_weight = torch.empty(",
            "output_size, input_size, dtype=torch.float, requires_grad=False",
            ")",
            "init_method(master_weight)",
        ),
        163: (
            "_initialize_affine_weight_gpu(",
            "self.weight, init_method, partition_dim=0, stride=1",
            ")",
        ),
        472: (
            "_initialize_affine_weight_gpu(",
            "self.weight, init_method, partition_dim=0, stride=stride",
            ")",
        ),
        494: (
            "# Always initialize bias to zero.",
            "with torch.no_grad():",
            "self.bias.zero_()",
        ),
        688: (
            "_initialize_affine_weight_gpu(",
            "self.weight, init_method, partition_dim=1, stride=stride",
            ")",
        ),
        704: (
            "# Always initialize bias to zero.",
            "with torch.no_grad():",
            "self.bias.zero_()",
        ),
    },
    "megatron/model/norms.py": {
        16: ("from torch.nn import LayerNorm as LayerNorm",),
        28: (
            'elif neox_args.norm == "layernorm":',
            "eps = neox_args.layernorm_epsilon",
            "if neox_args.layernorm_fusion:",
            "from .fused_layer_norm import MixedFusedLayerNorm",
            "",
            "norm = MixedFusedLayerNorm",
            "else:",
            "norm = LayerNorm",
        ),
    },
    "tools/ckpts/convert_neox_to_hf.py": {
        294: (
            'use_tied_lns = get_key(neox_config, "gpt-j-tied", False)',
            "",
            "if use_tied_lns:",
            "raise NotImplementedError(",
            '"""ERROR: Huggingface Transformers does not yet support a single shared layernorm',
            "per transformer block for GPT-NeoX models trained  w/ GPT-J parallel residuals.",
            'See https://github.com/EleutherAI/gpt-neox/pull/481 for further details."""',
            ")",
        ),
        306: (
            "args = {",
            '"vocab_size": args.padded_vocab_size,',
            '"hidden_size": get_key(neox_config, "hidden-size"),',
            '"num_hidden_layers": get_key(neox_config, "num-layers"),',
            '"num_attention_heads": get_key(neox_config, "num-attention-heads"),',
            '"max_position_embeddings": get_key(neox_config, "max-position-embeddings"),',
            '"initializer_range": get_key(neox_config, "init-method-std", 0.02),',
            '"tie_word_embeddings": (not get_key(neox_config, "no-weight-tying", False)),',
            '"use_cache": True,',
        ),
        362: (
            "args.update(",
            "{",
            '"rotary_pct": get_key(neox_config, "rotary-pct", default=1.0),',
            '"rotary_emb_base": get_key(',
            'neox_config, "rotary-emb-base", default=10000.0',
            "),",
            '"use_parallel_residual": get_key(neox_config, "gpt-j-residual", False),',
            '"layer_norm_eps": get_key(neox_config, "layernorm-epsilon", 1e-5),',
            '"intermediate_size": get_key(',
            "neox_config,",
            '"intermediate-size",',
            '4 * get_key(neox_config, "hidden-size"),',
            "),",
            "}",
            ")",
            "hf_config = GPTNeoXConfig(**args)",
        ),
    },
    "megatron/tokenizer/tokenizer.py": {
        72: (
            "def _vocab_size_with_padding(orig_vocab_size, args):",
            '"""Pad vocab size so it is divisible by model parallel size and',
            'still having GPU friendly size."""',
            "",
            "after = orig_vocab_size",
            "multiple = args.make_vocab_size_divisible_by * args.model_parallel_size",
            "while (after % multiple) != 0:",
            "after += 1",
        ),
    },
    "megatron/model/activations.py": {
        30: (
            'if neox_args.activation == "geglu":',
            "is_gated = True",
            "activation_func = F.gelu",
            'elif neox_args.activation == "reglu":',
            "is_gated = True",
            "activation_func = F.relu",
            'elif neox_args.activation == "bilinear":',
            "is_gated = True",
            "activation_func = lambda x: x",
            'elif neox_args.activation == "swiglu":',
            "is_gated = True",
            "activation_func = swish",
            'elif neox_args.activation == "glu":',
            "is_gated = True",
            "activation_func = F.sigmoid",
        ),
    },
    "megatron/neox_arguments/neox_args.py": {
        65: ("model_parallel_size: int = 1",),
        122: ("mlp_multiple_of: int = 1",),
        209: ('] = "learned"',),
        229: ("no_weight_tying: bool = False",),
        290: ("make_vocab_size_divisible_by: int = 128",),
        352: ("init_method_std: float = 0.02",),
        401: ('] = "normal"',),
        417: ('] = "scaled_normal"',),
        452: ("use_bias_in_attn_linear: bool = True",),
        456: ("use_bias_in_mlp: bool = True",),
        1476: ("use_mup: bool = False",),
    },
    "tools/ckpts/merge20b.py": {
        23: ("VOCAB_SIZE = 50432",),
    },
}


def quoted_lines() -> dict[str, dict[int, str]]:
    """QUOTED as {path: {line number: text}}."""
    return {
        path: {first + k: text for first, lines in blocks.items() for k, text in enumerate(lines)}
        for path, blocks in QUOTED.items()
    }


# --- mirrors of the quoted lines (not of service.recipes) ---------------------------------------


def init_std(name: str, c: Mapping[str, Any]) -> float:
    """get_init_methods's _get (init_functions.py:187-227) for the options that draw
    torch.nn.init.normal_ (:35, :61, :158, :173): the std it passes."""
    sigma = c.get("init_method_std", 0.02)  # neox_args.py:352
    layers: int = c["num_layers"]
    dim: int = c["hidden_size"]
    if name == "normal":
        return float(sigma)  # :188-191 -> :35
    if name == "scaled_normal":
        return float(sigma / math.sqrt(2 * layers))  # :192-195 -> :45, :52
    if name == "single_residual_scaled_normal":
        return float(sigma / math.sqrt(1 * layers))  # :214-223 -> :52
    if name == "wang_init":
        return 2 / layers / math.sqrt(dim)  # :206-209 -> :164
    if name == "small_init":
        return math.sqrt(2 / (5 * dim))  # :210-213 -> :149
    raise NotImplementedError(name)


def padded_vocab(c: Mapping[str, Any]) -> int:
    """tokenizer.py:72-79 (the while loop), unless padded_vocab_size is given as NeoXArgs holds."""
    if c.get("padded_vocab_size") is not None:
        return int(c["padded_vocab_size"])
    after = c.get("vocab_size", 50257)  # GPT-2 BPE's vocabulary, tokenizer_type's default
    multiple = c.get("make_vocab_size_divisible_by", 128) * c.get("model_parallel_size", 1)
    while (after % multiple) != 0:
        after += 1
    return int(after)


def ffn_dims(c: Mapping[str, Any]) -> tuple[int, int]:
    """ParallelMLP (transformer.py:117-143) with an ungated activation: linear1's output size and
    linear2's input size; multiple_of is neox_args.mlp_multiple_of (:1003, neox_args.py:122)."""
    hidden, multiple_of = c["hidden_size"], c.get("mlp_multiple_of", 1)
    if c.get("intermediate_size"):
        ffn_dim = c["intermediate_size"]
    elif c.get("expansion_factor"):
        ffn_dim = int(c["expansion_factor"] * hidden)
    else:
        ffn_dim = 4 * hidden
    ffn_dim_in = ffn_dim
    ffn_dim = int((2 * multiple_of) * ((ffn_dim + (2 * multiple_of) - 1) // (2 * multiple_of)))
    ffn_dim_in = int(multiple_of * ((ffn_dim_in + multiple_of - 1) // multiple_of))
    return ffn_dim, ffn_dim_in


def converted(c: Mapping[str, Any]) -> Any:
    """create_config (convert_neox_to_hf.py:306-314, 362-377) for architecture "neox", with the
    MLP width gpt-neox builds (the converter reads intermediate_size or 4·hidden_size: the same
    unless expansion_factor or mlp_multiple_of change it) and attention_bias from
    use_bias_in_attn_linear (the converter leaves transformers' default, true)."""
    args = {
        "vocab_size": padded_vocab(c),
        "hidden_size": c["hidden_size"],
        "num_hidden_layers": c["num_layers"],
        "num_attention_heads": c["num_attention_heads"],
        "initializer_range": c.get("init_method_std", 0.02),
        "tie_word_embeddings": not c.get("no_weight_tying", False),
        "use_cache": True,
        "rotary_pct": c.get("rotary_pct", 1.0),
        "rotary_emb_base": c.get("rotary_emb_base", 10000.0),
        "use_parallel_residual": c.get("gpt_j_residual", False),
        "layer_norm_eps": c.get("layernorm_epsilon", 1e-5),
        "intermediate_size": ffn_dims(c)[0],
        "attention_bias": c.get("use_bias_in_attn_linear", True),
    }
    if "max_position_embeddings" in c:
        args["max_position_embeddings"] = c["max_position_embeddings"]
    return transformers.GPTNeoXConfig(**args)


def expected_law(name: str, c: Mapping[str, Any]) -> tuple[str, float]:
    """(kind, std) gpt-neox gives the HF tensor `name`: output_layer_init_method on the residual
    outputs (transformer.py:159, :467), init_method on the rest (word_embeddings.py:67 via
    gpt2_model.py:201/215, transformer.py:149, :349, the final linear gpt2_model.py:339); biases
    zero (layers.py:494-496, 704-706); torch LayerNorm 1/0 (norms.py:16, 35); tied: the word
    embedding (gpt2_model.py:318-333)."""
    inner = init_std(c.get("init_method", "normal"), c)  # neox_args.py:401
    outer = init_std(c.get("output_layer_init_method", "scaled_normal"), c)  # neox_args.py:417
    if name == "lm_head.weight" and not c.get("no_weight_tying", False):
        return "tied", 0.0
    if name.endswith(".bias"):
        return "zeros", 0.0
    if "layernorm" in name or "layer_norm" in name:
        return "ones", 0.0
    if name.endswith(("attention.dense.weight", "mlp.dense_4h_to_h.weight")):
        return "normal", outer
    return "normal", inner


# --- configs (NeoXArgs keys, as a gpt-neox .yml writes them) ------------------------------------

BASE: dict[str, Any] = {"pos_emb": "rotary"}  # gpt-neox's default is "learned" (refused)
# Pythia's laws (configs/pythia/*.yml: small_init, wang_init, untied), tiny sizes
TINY: dict[str, Any] = {
    **BASE, "hidden_size": 48, "num_layers": 3, "num_attention_heads": 4, "vocab_size": 300,
    "no_weight_tying": True, "init_method": "small_init", "output_layer_init_method": "wang_init",
}  # fmt: skip
# gpt-neox's default laws (normal, scaled_normal) and tying; options off their defaults
DEFAULTS: dict[str, Any] = {
    **BASE, "hidden_size": 32, "num_layers": 2, "num_attention_heads": 2, "vocab_size": 200,
    "init_method_std": 0.05, "expansion_factor": 2.5, "use_bias_in_attn_linear": False,
    "model_parallel_size": 2, "make_vocab_size_divisible_by": 64,
}  # fmt: skip
SINGLE: dict[str, Any] = {
    **BASE, "hidden_size": 40, "num_layers": 4, "num_attention_heads": 5, "padded_vocab_size": 100,
    "intermediate_size": 70, "mlp_multiple_of": 5, "no_weight_tying": True,
    "output_layer_init_method": "single_residual_scaled_normal", "init_method_std": 0.03,
}  # fmt: skip
# configs/pythia/160M.yml at COMMIT, as it is but for its sizes
PYTHIA: dict[str, Any] = {
    "pipe_parallel_size": 1, "model_parallel_size": 1, "num_layers": 2, "hidden_size": 64,
    "num_attention_heads": 4, "seq_length": 2048, "max_position_embeddings": 2048,
    "pos_emb": "rotary", "rotary_pct": 0.25, "no_weight_tying": True, "gpt_j_residual": True,
    "output_layer_parallelism": "column", "attention_config": [[["flash"], 2]],
    "scaled_upper_triang_masked_softmax_fusion": True, "bias_gelu_fusion": True,
    "init_method": "small_init", "output_layer_init_method": "wang_init",
    "optimizer": {"type": "Adam", "params": {"lr": 0.0006, "betas": [0.9, 0.95], "eps": 1.0e-8}},
    "min_lr": 0.00006, "train_micro_batch_size_per_gpu": 32, "checkpoint_activations": True,
    "hidden_dropout": 0, "attention_dropout": 0,
    "fp16": {"fp16": True, "enabled": True, "loss_scale": 0}, "train_iters": 143000,
    "tokenizer_type": "HFTokenizer",
}  # fmt: skip
PYTHIA_160M: dict[str, Any] = {**PYTHIA, "num_layers": 12, "hidden_size": 768,
                               "num_attention_heads": 12}  # fmt: skip
# configs/20B.yml's model settings (model_parallel_size 2)
NEOX_20B: dict[str, Any] = {
    "model_parallel_size": 2, "num_layers": 44, "hidden_size": 6144, "num_attention_heads": 64,
    "seq_length": 2048, "max_position_embeddings": 2048, "norm": "layernorm", "pos_emb": "rotary",
    "rotary_pct": 0.25, "no_weight_tying": True, "gpt_j_residual": True,
    "init_method": "small_init", "output_layer_init_method": "wang_init",
}  # fmt: skip
CONFIGS: Mapping[str, Mapping[str, Any]] = {
    "tiny": TINY, "defaults": DEFAULTS, "single": SINGLE, "pythia": PYTHIA,
}  # fmt: skip


def hf_model(c: Mapping[str, Any], device: str = "cpu") -> Any:
    with torch.device(device):
        return transformers.GPTNeoXForCausalLM(converted(c))


def describe(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/bundles/describe", json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


# --- names, shapes, sizes ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_names_shapes_and_order_are_the_converted_models(kind: str) -> None:
    c = CONFIGS[kind]
    members, _ = recipes.members(RECIPE, c)
    assert [(m.name, tuple(m.shape)) for m in members] == layout(hf_model(c, "meta").state_dict())
    assert recipes.count(RECIPE, c) == len(members)
    rows, cols = ffn_dims(c)
    assert rows == cols  # one intermediate_size holds both Linears
    if "expansion_factor" not in c and "mlp_multiple_of" not in c:
        assert rows == c.get("intermediate_size", 4 * c["hidden_size"])  # the converter's :370-374


def test_pythia_160m_and_neox_20b_have_their_published_sizes() -> None:
    """Pythia-160M: 162,322,944 parameters (EleutherAI's Pythia table), vocabulary 50304;
    GPT-NeoX-20B (model_parallel_size 2): the 50432 rows of merge20b.py:23."""
    members, _ = recipes.members(RECIPE, PYTHIA_160M)
    assert sum(math.prod(m.shape) for m in members) == 162_322_944
    assert members[0].shape == (50304, 768)
    assert [(m.name, tuple(m.shape)) for m in members] == layout(
        hf_model(PYTHIA_160M, "meta").state_dict()
    )
    big = recipes.members(RECIPE, NEOX_20B)[0]
    assert big[0].shape == (50432, 6144) == (padded_vocab(NEOX_20B), 6144)
    state = hf_model(NEOX_20B, "meta").state_dict()
    assert [(m.name, tuple(m.shape)) for m in big] == layout(state)


@pytest.mark.parametrize("layers", [1, 5])
@pytest.mark.parametrize("flag", [False, True])
def test_count_is_the_expansion(layers: int, flag: bool) -> None:
    c = {**TINY, "num_layers": layers, "use_bias_in_attn_linear": flag, "no_weight_tying": flag}
    assert recipes.count(RECIPE, c) == len(recipes.members(RECIPE, c)[0])


# --- laws ----------------------------------------------------------------------------------


def test_pythia_160m_stds_are_small_init_and_wang_init() -> None:
    """√(2/(5·768)) = 0.0228218 and 2/(12·√768) = 0.0060141 (init_functions.py:149, 164)."""
    assert init_std("small_init", PYTHIA_160M) == pytest.approx(0.0228218, abs=5e-8)
    assert init_std("wang_init", PYTHIA_160M) == pytest.approx(0.0060141, abs=5e-8)
    by = {m.name: m for m in recipes.members(RECIPE, PYTHIA_160M)[0]}
    for name in ("gpt_neox.embed_in.weight", "gpt_neox.layers.11.attention.query_key_value.weight",
                 "gpt_neox.layers.0.mlp.dense_h_to_4h.weight", "lm_head.weight"):  # fmt: skip
        assert by[name].params.std == init_std("small_init", PYTHIA_160M), name
    for name in ("gpt_neox.layers.3.attention.dense.weight",
                 "gpt_neox.layers.7.mlp.dense_4h_to_h.weight"):  # fmt: skip
        assert by[name].params.std == init_std("wang_init", PYTHIA_160M), name


@pytest.mark.parametrize("kind", [*CONFIGS, "160M", "20B"])
def test_each_law_is_gpt_neoxs(kind: str) -> None:
    """Every member's law is the mirror's, the std to the bit (computed as gpt-neox does)."""
    c = {**CONFIGS, "160M": PYTHIA_160M, "20B": NEOX_20B}[kind]
    for m in recipes.members(RECIPE, c)[0]:
        law, std = expected_law(m.name, c)
        assert m.convention == "torch"
        if law == "tied":
            assert m.tied_to == "gpt_neox.embed_in.weight", m.name
            continue
        assert (m.tied_to, m.scheme) == (None, law), m.name
        if law == "normal":
            assert m.params.std == std, m.name
            assert (m.params.mean, m.params.a, m.params.b, m.zero_rows) == (0.0, None, None, ())


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_a_bundle_loads_strictly_and_draws_the_laws(client: TestClient, kind: str) -> None:
    c = CONFIGS[kind]
    d = describe(client, {"seed": 7, "recipe": RECIPE, "config": c})
    blob = client.get(d["url"]).content
    assert len(blob) == d["content_length"]
    bundle = safetensors.torch.load(blob)
    model = hf_model(c)
    state = model.state_dict()
    assert {k: (v.dtype, v.shape) for k, v in bundle.items()} == {
        k: (v.dtype, v.shape) for k, v in state.items()
    }
    model.load_state_dict(bundle, strict=True)
    for t in d["tensors"]:
        name = t["name"]
        law, std = expected_law(name, c)
        values = bundle[name]
        if law == "tied":
            assert t["tied_to"] == "gpt_neox.embed_in.weight"
            assert member_bytes(blob, name) == member_bytes(blob, t["tied_to"])
            assert model.lm_head.weight is model.gpt_neox.embed_in.weight
        elif law in ("zeros", "ones"):
            assert torch.all(values == (law == "ones")), name
        else:
            assert (t["plan"]["kind"], t["plan"]["stddev"]) == ("normal", std), name
            sample = values.double().flatten().numpy()
            p = stats.kstest(sample, "norm", args=(0.0, std)).pvalue
            assert p > 1e-4, (name, std, p)


def test_the_ks_check_tells_the_laws_apart(client: TestClient) -> None:
    """The test above has power: TINY's wang_init dense_4h_to_h is neither transformers' N(0,
    0.02²) nor gpt-neox's default scaled_normal. (At d = 48, L = 3, small_init's 0.0913 and
    wang_init's 0.0962 are too close for one tensor to tell apart; Pythia's sizes are not.)"""
    d = describe(client, {"seed": 7, "recipe": RECIPE, "config": TINY})
    values = safetensors.torch.load(client.get(d["url"]).content)
    sample = values["gpt_neox.layers.2.mlp.dense_4h_to_h.weight"].double().flatten().numpy()
    assert stats.kstest(sample, "norm", args=(0.0, init_std("wang_init", TINY))).pvalue > 1e-4
    for wrong in (0.02, init_std("scaled_normal", TINY)):
        assert stats.kstest(sample, "norm", args=(0.0, wrong)).pvalue < 1e-4, wrong


def test_a_bfloat16_bundle_loads_into_a_bfloat16_model(client: TestClient) -> None:
    d = describe(client, {"recipe": RECIPE, "config": {**SINGLE, "dtype": "bfloat16"}})
    bundle = safetensors.torch.load(client.get(d["url"]).content)
    model = hf_model(SINGLE).to(torch.bfloat16)
    assert {v.dtype for v in bundle.values()} == {torch.bfloat16}
    model.load_state_dict(bundle, strict=True)
    dense = bundle["gpt_neox.layers.0.attention.dense.weight"].double()
    std = init_std("single_residual_scaled_normal", SINGLE)
    assert float(dense.std()) == pytest.approx(std, rel=0.1)
    assert float(np.abs(dense.numpy()).max()) > 3 * std  # untruncated


def test_describe_lists_the_fields_it_ignores(client: TestClient) -> None:
    d = describe(client, {"seed": 0, "recipe": RECIPE, "config": PYTHIA})
    assert d["ignored_config"] == [
        "attention_config", "attention_dropout", "bias_gelu_fusion", "checkpoint_activations",
        "fp16", "hidden_dropout", "min_lr", "optimizer", "output_layer_parallelism",
        "pipe_parallel_size", "scaled_upper_triang_masked_softmax_fusion", "seq_length",
        "tokenizer_type", "train_iters", "train_micro_batch_size_per_gpu",
    ]  # fmt: skip
    assert {t["dtype"] for t in d["tensors"]} == {"float32"}


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_describe_answers_the_converters_config(client: TestClient, kind: str) -> None:
    """hf_config: the GPTNeoXConfig convert_neox_to_hf.py makes (`converted` above), every
    field it sets, for a checkpoint's config.json."""
    c = CONFIGS[kind]
    given = describe(client, {"seed": 0, "recipe": RECIPE, "config": c})["hf_config"]
    assert given.pop("model_type") == "gpt_neox"
    assert given.pop("architectures") == ["GPTNeoXForCausalLM"]
    theirs = converted(c)
    rope = theirs.rope_parameters  # transformers 5 keeps the converter's two RoPE keys here
    legacy = {"rotary_pct": rope["partial_rotary_factor"], "rotary_emb_base": rope["rope_theta"]}
    assert {k: legacy[k] if k in legacy else getattr(theirs, k) for k in given} == given
    assert {"use_cache", "rotary_pct", "rotary_emb_base", "use_parallel_residual",
            "layer_norm_eps", "initializer_range", "intermediate_size"} <= set(given)  # fmt: skip
    assert ("max_position_embeddings" in given) == ("max_position_embeddings" in c)


def test_the_defaults_are_neox_args() -> None:
    """The recipe's defaults are NeoXArgs' (the neox_args.py lines quoted above)."""
    fields = {f["name"]: f for f in recipes.lookup(RECIPE).fields()}
    lines = quoted_lines()["megatron/neox_arguments/neox_args.py"]
    declared = {m[1]: m[2] for t in lines.values() if (m := re.fullmatch(r"(\w+): \w+ = (.+)", t))}
    assert set(declared) == {
        "model_parallel_size", "mlp_multiple_of", "no_weight_tying",
        "make_vocab_size_divisible_by", "init_method_std", "use_bias_in_attn_linear",
        "use_bias_in_mlp", "use_mup",
    }  # fmt: skip
    for name, value in declared.items():
        assert str(fields[name]["default"]) == value, name
    for name, line in (("pos_emb", 209), ("init_method", 401), ("output_layer_init_method", 417)):
        assert lines[line] == f'] = "{fields[name]["default"]}"', name
    assert all(fields[n]["required"] for n in ("hidden_size", "num_layers", "num_attention_heads"))


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"pos_emb": None}, "neox config pos_emb 'learned': GPTNeoXForCausalLM has rotary"),
        ({"pos_emb": "alibi"}, "pos_emb 'alibi'"),
        ({"norm": "rmsnorm"}, "norm 'rmsnorm': GPTNeoXForCausalLM's norms are LayerNorms"),
        ({"activation": "swiglu"}, "activation 'swiglu' is gated"),
        ({"num_kv_heads": 2}, "num_kv_heads=2: GPTNeoXForCausalLM has no grouped-query"),
        ({"use_qk_layernorm": True}, "use_qk_layernorm"),
        ({"gpt_j_tied": True}, "gpt_j_tied: one shared norm per layer"),
        ({"use_bias_in_mlp": False}, "use_bias_in_mlp false"),
        ({"use_mup": True}, "use_mup: muP re-initializes"),
        ({"init_method": "xavier_uniform"}, "init_method 'xavier_uniform' is not served: torch's "
         "xavier of each model-parallel rank's shard"),
        ({"output_layer_init_method": "xavier_normal"}, "output_layer_init_method "
         "'xavier_normal' is not served"),
        ({"init_method": "orthogonal"}, "init_method 'orthogonal' is not served: a "
         "QR-orthogonalized"),
        ({"output_layer_init_method": "scaled_orthogonal"}, "served: normal, scaled_normal, "
         "single_residual_scaled_normal, small_init, wang_init"),
        ({"init_method": "kaiming"}, "unknown neox config argument init_method 'kaiming'"),
        ({"hidden_size": 50, "num_attention_heads": 3},
         "hidden_size=50 must be divisible by num_attention_heads=3"),
        ({"intermediate_size": 96, "expansion_factor": 2.0},
         "gives both intermediate_size and expansion_factor"),
        ({"intermediate_size": 81}, "makes linear1 82 rows but linear2 81 columns"),
        ({"mlp_multiple_of": 256}, "makes linear1 512 rows but linear2 256 columns"),
        ({"expansion_factor": 0.01}, "makes an MLP of width 0"),
        ({"num_layers": 0}, "neox config needs num_layers >= 1"),
        ({"hidden_size": None}, "neox config needs hidden_size"),
        ({"init_method_std": -1.0}, "init_method_std >= 0"),
        ({"model_type": "gpt_neox"}, "neox config model_type must be 'neox'"),
    ],
)  # fmt: skip
def test_what_gpt_neox_or_the_hf_layout_refuses_is_a_422(
    client: TestClient, change: dict[str, Any], text: str
) -> None:
    c = {k: v for k, v in {**TINY, **change}.items() if v is not None}
    r = client.post("/v1/bundles/describe", json={"recipe": RECIPE, "config": c})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert text in r.json()["detail"]


def test_the_refused_options_are_gpt_neoxs_own() -> None:
    """Every init option NeoXArgs takes is served or refused with a reason; the gated activations
    are those get_activation marks (activations.py:30-44)."""
    found = {f["name"]: f for f in recipes.lookup(RECIPE).fields()}
    assert set(found["init_method"]["choices"]) == set(neox.STDS) | set(neox.REFUSED)
    gated = QUOTED["megatron/model/activations.py"][30]
    marked = {re.findall(r'"(\w+)"', gated[i])[0] for i in range(len(gated))
              if "is_gated = True" in gated[i + 1 : i + 2]}  # fmt: skip
    assert marked == set(neox.GATED)


# --- the catalogue's sources --------------------------------------------------------------------


def cited_lines(source: str) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for cite in source.split("; "):
        path, _, spans = cite.partition(":")
        lines = {n for a, b in re.findall(r"(\d+)(?:-(\d+))?", spans)
                 for n in range(int(a), int(b or a) + 1)}  # fmt: skip
        assert lines, cite
        out.setdefault(path, set()).update(lines)
    return out


def test_the_catalogue_cites_the_lines_this_test_quotes() -> None:
    """Every cite is a quoted line; each law's defining lines are among its group's cites; the
    docstring names the commit."""
    found = recipes.lookup(RECIPE)
    assert (found.version, found.stack, found.model) == (
        f"git {COMMIT[:12]}", "gpt-neox", "GPTNeoXForCausalLM")  # fmt: skip
    assert COMMIT in (neox.__doc__ or "")
    quoted = quoted_lines()
    by: dict[str, dict[str, set[int]]] = {}
    for g in found.groups:
        cites = cited_lines(g.source)
        for path, lines in cites.items():
            assert lines <= set(quoted.get(path, {})), (g.tensors, path, lines - set(quoted[path]))
        by[g.law + ":" + g.tensors.split(" ")[0]] = cites
    init = "megatron/model/init_functions.py"
    laws = {35, 52, 149, 164, 227}
    assert laws <= by["normal:gpt_neox.embed_in.weight"][init]
    assert {63, 67} <= by["normal:gpt_neox.embed_in.weight"]["megatron/model/word_embeddings.py"]
    qkv = by["normal:gpt_neox.layers.{i}.attention.query_key_value.weight"]
    assert laws <= qkv[init]
    assert {149, 349} <= qkv["megatron/model/transformer.py"]
    dense = by["normal:gpt_neox.layers.{i}.attention.dense.weight"]
    assert laws <= dense[init]
    assert {159, 467} <= dense["megatron/model/transformer.py"]
    head = by["normal:lm_head.weight"]
    assert laws <= head[init]
    assert 339 in head["megatron/model/gpt2_model.py"]
    assert {185, 318, 331} <= by["tied:lm_head.weight"]["megatron/model/gpt2_model.py"]
    assert {496, 706} <= by["zeros:gpt_neox.layers.{i}.attention.{query_key_value,dense}.bias"][
        "megatron/mpu/layers.py"]  # fmt: skip


@pytest.mark.skipif(
    not MIRROR.is_dir(), reason="no gpt-neox mirror: fetch github:EleutherAI/gpt-neox"
)
def test_the_quoted_lines_are_gpt_neoxs_at_the_commit() -> None:
    for path, quoted in quoted_lines().items():
        text = subprocess.run(["git", "-C", str(MIRROR), "show", f"{COMMIT}:{path}"],
                              capture_output=True, text=True, check=True).stdout  # fmt: skip
        lines = text.splitlines()
        for number, line in quoted.items():
            assert lines[number - 1].strip() == line, (path, number)
