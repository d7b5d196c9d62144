"""karpathy/nanoGPT (`model.py`, `GPT` built from a `GPTConfig`), as `GPT(config)` initializes
it: recipe `nanogpt`, under nanoGPT's state-dict names and nn.Linear (out, in) layouts.

Read at commit 3adf61e154c3fe3fca428ad6bc3818b27a3b8291 (2025-11-12, the repository's head;
model.py last changed 2023-06-14): nanoGPT has no releases and is not a package, so the commit
is the version. The laws (`_init_weights`, model.py:162-168, applied at model.py:141): every
nn.Linear weight N(0, 0.02²) and its bias 0; both nn.Embedding (`wte`, `wpe`) N(0, 0.02²), no
padding row; then every parameter whose name ends in `c_proj.weight` (attention and MLP)
N(0, (0.02/√(2·n_layer))²) (model.py:143-145). The std is hard-coded: GPTConfig has no init
field. nanoGPT's own LayerNorm (model.py:18-27) is not an nn.LayerNorm, so `_init_weights`
leaves it as built: weight 1, bias 0, the bias only when `bias`. `lm_head.weight` is
`transformer.wte.weight` (model.py:138): one parameter under both names of the state dict.
With torch ≥ 2 (`scaled_dot_product_attention`) attention registers no causal-mask buffer
`attn.bias` (model.py:45-50), so the state dict has none.

nanoGPT's checkpoints keep `GPTConfig`'s fields as `model_args` (train.py:147-148, 280), with
no `model_type`: the recipe's model_type is its own name, `nanogpt`, which no config carries, so
a nanoGPT config passes the base check untouched while a transformers config.json (model_type
`gpt2`: its n_layer, n_head, n_embd and vocab_size share nanoGPT's names but its Conv1D layout
is (in, out)) is refused rather than half-read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.arguments import arg
from service.errors import ShapeError
from service.presets.base import MAX_COUNT, Member
from service.recipes.base import Group, Recipe, layer_norm, linear, normal, residual_std, tied
from service.shapes import MAX_DIM

COMMIT = "3adf61e154c3fe3fca428ad6bc3818b27a3b8291"
SRC = "model.py"
STD = 0.02  # model.py:164, 168 and 145: hard-coded, not a config field


@dataclass(frozen=True)
class NanoGPTConfig:
    """GPTConfig (model.py:108-116), with its defaults: GPT-2 124M, vocabulary padded to 50304."""

    block_size: int = arg("context length: positions (wpe rows)", 1024, ge=1, le=MAX_DIM)
    vocab_size: int = arg(
        "size of the vocabulary (wte rows); GPT-2's 50257 padded up to a multiple of 64",
        50304,
        ge=1,
        le=MAX_DIM,
    )
    n_layer: int = arg("transformer blocks (L)", 12, ge=0, le=MAX_COUNT)
    n_head: int = arg("attention heads (must divide n_embd)", 12, ge=1, le=MAX_DIM)
    n_embd: int = arg("width of the residual stream (d)", 768, ge=1, le=MAX_DIM)
    dropout: float = arg("dropout probability (no tensor depends on it)", 0.0, ge=0.0, le=1.0)
    bias: bool = arg("biases in every nn.Linear but lm_head and in the LayerNorms (zeros)", True)


def _block(i: int, c: NanoGPTConfig) -> list[Member]:
    p, d, b = f"transformer.h.{i}", c.n_embd, c.bias
    res = residual_std(STD, c.n_layer)
    return [
        *layer_norm(f"{p}.ln_1", d, b),
        *linear(f"{p}.attn.c_attn", 3 * d, d, STD, b),
        *linear(f"{p}.attn.c_proj", d, d, res, b),
        *layer_norm(f"{p}.ln_2", d, b),
        *linear(f"{p}.mlp.c_fc", 4 * d, d, STD, b),
        *linear(f"{p}.mlp.c_proj", d, 4 * d, res, b),
    ]


def gpt(c: NanoGPTConfig) -> list[Member]:
    """GPT's state dict: wte, wpe, the blocks, ln_f, lm_head (tied to wte)."""
    if c.n_embd % c.n_head:  # model.py:33
        raise ShapeError(f"n_embd={c.n_embd} must be divisible by n_head={c.n_head}")
    d = c.n_embd
    out = [
        normal("transformer.wte.weight", (c.vocab_size, d), STD),
        normal("transformer.wpe.weight", (c.block_size, d), STD),
    ]
    for i in range(c.n_layer):
        out += _block(i, c)
    out += layer_norm("transformer.ln_f", d, c.bias)
    return [*out, tied("lm_head.weight", (c.vocab_size, d), "transformer.wte.weight")]


def count(c: NanoGPTConfig) -> int:
    """wte, wpe, ln_f.weight, lm_head (+ ln_f.bias); 6 tensors a block (+ 6 biases)."""
    return 4 + c.bias + c.n_layer * (6 + 6 * c.bias)


GROUPS = (
    Group("transformer.wte.weight (vocab_size, d), transformer.wpe.weight (block_size, d)",
          "normal", "N(0, 0.02²); no padding row", f"{SRC}:127-128, 167-168"),
    Group("transformer.h.{i}.attn.c_attn.weight (3d, d), .mlp.c_fc.weight (4d, d)", "normal",
          "N(0, 0.02²); nn.Linear stores (out, in)", f"{SRC}:35, 82, 163-164"),
    Group("transformer.h.{i}.attn.c_proj.weight (d, d), .mlp.c_proj.weight (d, 4d)", "normal",
          "N(0, (0.02/√(2·n_layer))²), drawn again after _init_weights",
          f"{SRC}:37, 84, 143-145"),
    Group("transformer.h.{i}.{attn.c_attn,attn.c_proj,mlp.c_fc,mlp.c_proj}.bias (bias)", "zeros",
          "0", f"{SRC}:35, 37, 82, 84, 165-166"),
    Group("transformer.h.{i}.ln_{1,2}.weight, transformer.ln_f.weight", "ones", "1",
          f"{SRC}:23, 98, 100, 131"),
    Group("transformer.h.{i}.ln_{1,2}.bias, transformer.ln_f.bias (bias)", "zeros", "0",
          f"{SRC}:24"),
    Group("lm_head.weight (vocab_size, d)", "tied", "= transformer.wte.weight",
          f"{SRC}:133, 138"),
)  # fmt: skip

ROWS: tuple[Recipe[Any], ...] = (
    Recipe(
        "nanogpt",
        "nanoGPT GPT: every Linear and embedding N(0, 0.02²), c_proj 0.02/√(2·n_layer), "
        "LayerNorm 1/0, biases 0 (if bias), lm_head tied to wte",
        "nanoGPT",
        f"git {COMMIT[:12]}",
        "GPT",
        "nanogpt",
        NanoGPTConfig,
        gpt,
        count,
        GROUPS,
    ),
)
