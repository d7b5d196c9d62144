"""service.recipes.olmo against OLMo v1 (allenai/OLMo at COMMIT, read with git from the
repository; its `ai2-olmo` package pins an old torch, so it is not installed): the names and
shapes of small torch modules written here with OLMo's structure (each class cites its lines),
each law against a table of OLMo's formulas (independent of the recipe code) for normal, mitchell
and full_megatron, the bundle over HTTP loaded strictly into that module with its values
KS-tested against the module's own init (a transcription of `reset_parameters`), truncation,
the count, the refusals, and the quoted lines against the repository when a mirror is present."""

from __future__ import annotations

import math
import re
import subprocess
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service import recipes
from service.errors import SchemeError, ShapeError
from service.recipes import olmo

torch = pytest.importorskip("torch", reason="torch is not installed: pip install -e .[dev]")
import safetensors.torch  # noqa: E402
from scipy import stats  # noqa: E402
from torch import nn  # noqa: E402

COMMIT = "59a53e3f68e546330ca5a99ec626e58f9ab96494"
MIRROR = Path("/work/.mirror/allenai+OLMo/repo")  # the `fetch` tool's copy, where present
# --- OLMo at COMMIT: the lines the table and the modules rest on (verbatim, stripped) ------------
SOURCE = {
    "olmo/initialization.py": {
        15: "cutoff_value = init_cutoff_factor * std",
        16: "nn.init.trunc_normal_(module.weight, mean=0.0, std=std, a=-cutoff_value, "
        "b=cutoff_value)",
        18: "nn.init.normal_(module.weight, mean=0.0, std=std)",
        22: "nn.init.zeros_(module.bias)",
    },
    "olmo/model.py": {
        151: "if elementwise_affine or (elementwise_affine is None and "
        "self.config.layer_norm_with_affine):",
        153: "use_bias = self.config.bias_for_layer_norm",
        372: "return 0.5",
        421: "config.mlp_hidden_size if config.mlp_hidden_size is not None else config.mlp_ratio "
        "* config.d_model",
        424: "assert config.d_model % config.n_heads == 0",
        438: "size=(config.d_model // config.n_heads) * config.effective_n_kv_heads,",
        441: "self.q_norm = LayerNormBase.build(config, "
        "elementwise_affine=config.attention_layer_norm_with_affine)",
        449: "assert (self.act.output_multiplier * self.hidden_size) % 1 == 0",
        458: "int(self.act.output_multiplier * self.hidden_size),",
        490: "attn_out_std = ff_out_std = self.config.init_std",
        494: "attn_out_std = 1 / (math.sqrt(2 * self.config.d_model * (self.layer_id + 1)))",
        495: "ff_out_std = 1 / (math.sqrt(2 * self.ff_out.in_features * (self.layer_id + 1)))",
        496: "cutoff_factor = self.config.init_cutoff_factor or 3.0",
        499: "attn_out_std = ff_out_std = self.config.init_std / math.sqrt(2.0 * "
        "self.config.n_layers)",
        696: "config.d_model, sum(self.fused_dims), bias=config.include_bias, "
        "device=config.init_device",
        717: "std = 1 / math.sqrt(self.config.d_model)",
        720: "std = self.config.init_std",
        1081: 'raise OLMoConfigurationError("ALiBi and RoPE are mutually exclusive")',
        1108: "config.embedding_size or config.vocab_size, config.d_model, "
        "device=config.init_device",
        1121: 'self.transformer.update({"block_groups": nn.ModuleList(block_groups)})',
        1125: "if not (self.config.alibi or self.config.rope):",
        1129: "if not config.weight_tying:",
        1141: 'self.transformer.update({"emb_norm": LayerNorm.build(config)})',
        1181: "wte_std = self.config.emb_init_std or self.config.init_std",
        1184: "wte_std = self.config.emb_init_std or 1.0 / math.sqrt(self.config.d_model)",
        1191: "wte_std *= math.sqrt(self.config.d_model)",
        1203: "wpe_std = 1 / math.sqrt(self.config.d_model)",
        1206: "wpe_std = self.config.init_std",
        1222: "ff_out_std = 1 / math.sqrt(self.config.d_model)",
        1225: "ff_out_std = 1 / math.sqrt(self.config.d_model)",
    },
    "hf_olmo/configuration_olmo.py": {15: 'model_type = "hf_olmo"'},
}
LENGTHS = {"olmo/model.py": 1878, "olmo/initialization.py": 22}


def expected_law(name: str, c: ModelConfig) -> tuple[str, float, float | None]:
    """(kind, std, cutoff) OLMo gives `name`, from the lines above; kind normal (a cutoff None:
    untruncated, :18), zeros, ones. Layer ℓ from the name, L = n_layers, d = d_model."""
    d, normal, mitchell = c.d_model, c.init_fn == "normal", c.init_fn == "mitchell"
    cut = c.init_cutoff_factor if normal else c.init_cutoff_factor or 3.0  # :491, :496, :500
    if name.endswith(".bias"):
        return "zeros", 0.0, None  # init_normal :22; LayerNormBase zeros
    if "norm" in name or "ln_f" in name:
        return "ones", 0.0, None
    if name == "transformer.wte.weight":  # :1181, :1184, :1187-1191
        if normal:
            return "normal", c.emb_init_std or c.init_std, cut
        if mitchell:
            return "normal", c.emb_init_std or 1 / math.sqrt(d), cut
        if c.emb_init_std is not None:
            return "normal", c.emb_init_std, cut
        return "normal", c.init_std * (math.sqrt(d) if c.scale_emb_init else 1.0), cut
    if name == "transformer.wpe.weight":  # :1200, :1203, :1206
        return "normal", 1 / math.sqrt(d) if mitchell else c.init_std, cut
    if name == "transformer.ff_out.weight":  # :1219, :1222, :1225
        return "normal", c.init_std if normal else 1 / math.sqrt(d), cut
    layer = int(re.findall(r"\.(\d+)\.", name)[-1]) + c.block_group_size * (
        int(name.split(".")[2]) if "block_groups" in name else 0
    )
    if name.endswith(("att_proj.weight", "ff_proj.weight")):  # :714, :717, :720
        return "normal", 1 / math.sqrt(d) if mitchell else c.init_std, cut
    if normal:  # :490
        return "normal", c.init_std, cut
    if not mitchell:  # :499
        return "normal", c.init_std / math.sqrt(2.0 * c.n_layers), cut
    if name.endswith("attn_out.weight"):  # :494
        return "normal", 1 / math.sqrt(2 * d * (layer + 1)), cut
    hidden = c.mlp_hidden_size or c.mlp_ratio * d  # ff_out: :495 with :458 (swiglu: :372)
    ff_in = hidden // 2 if c.activation_type == "swiglu" else hidden
    return "normal", 1 / math.sqrt(2 * ff_in * (layer + 1)), cut


# --- modules with OLMo's structure (olmo/model.py; dropout, activations, RoPE hold no tensor) ----


@dataclass
class ModelConfig:  # olmo/config.py:235-476, the fields that shape a tensor or its law
    d_model: int = 768
    n_heads: int = 12
    n_kv_heads: int | None = None
    multi_query_attention: bool | None = None
    n_layers: int = 12
    mlp_ratio: int = 4
    mlp_hidden_size: int | None = None
    activation_type: str = "swiglu"
    block_type: str = "sequential"
    block_group_size: int = 1
    alibi: bool = False
    rope: bool = False
    attention_layer_norm: bool = False
    attention_layer_norm_with_affine: bool = True
    embedding_layer_norm: bool = False
    layer_norm_type: str = "default"
    layer_norm_with_affine: bool = True
    max_sequence_length: int = 1024
    include_bias: bool = True
    bias_for_layer_norm: bool | None = None
    vocab_size: int = 50257
    embedding_size: int | None = 50304
    weight_tying: bool = True
    init_fn: str = "normal"
    init_std: float = 0.02
    init_cutoff_factor: float | None = None
    scale_emb_init: bool = False
    emb_init_std: float | None = None

    @property
    def effective_n_kv_heads(self) -> int:  # config.py:478-495 (consistent settings only)
        if self.n_kv_heads is None:
            return 1 if self.multi_query_attention is True else self.n_heads
        return self.n_kv_heads

    @classmethod
    def of(cls, given: dict[str, Any]) -> ModelConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in given.items() if k in names})


def init_normal(module: Any, std: float, init_cutoff_factor: float | None = None) -> None:
    """olmo/initialization.py:8-22."""
    if init_cutoff_factor is not None:
        cutoff_value = init_cutoff_factor * std
        nn.init.trunc_normal_(module.weight, mean=0.0, std=std, a=-cutoff_value, b=cutoff_value)
    else:
        nn.init.normal_(module.weight, mean=0.0, std=std)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


class Norm(nn.Module):  # LayerNormBase (model.py:139-162); LayerNorm and RMSLayerNorm alike
    def __init__(self, c: ModelConfig, size: int | None = None, affine: bool | None = None):
        super().__init__()
        shape = (size or c.d_model,)
        self.weight: nn.Parameter | None = None
        self.bias: nn.Parameter | None = None
        if affine or (affine is None and c.layer_norm_with_affine):
            self.weight = nn.Parameter(torch.ones(shape))
            use_bias = c.bias_for_layer_norm
            if use_bias is None:
                use_bias = c.include_bias
            if use_bias:
                self.bias = nn.Parameter(torch.zeros(shape))


class Block(nn.Module):  # OLMoBlock + OLMoSequentialBlock (model.py:416-463, 685-726)
    def __init__(self, layer_id: int, c: ModelConfig) -> None:
        super().__init__()
        self.layer_id, self.c = layer_id, c
        hidden = c.mlp_hidden_size if c.mlp_hidden_size is not None else c.mlp_ratio * c.d_model
        assert c.d_model % c.n_heads == 0
        kv, head_dim, b = c.effective_n_kv_heads, c.d_model // c.n_heads, c.include_bias
        if c.attention_layer_norm:
            self.k_norm = Norm(c, head_dim * kv, c.attention_layer_norm_with_affine)
            self.q_norm = Norm(c, None, c.attention_layer_norm_with_affine)
        multiplier = 0.5 if c.activation_type == "swiglu" else 1.0
        self.attn_out = nn.Linear(c.d_model, c.d_model, bias=b)
        self.ff_out = nn.Linear(int(multiplier * hidden), c.d_model, bias=b)
        self.att_proj = nn.Linear(c.d_model, c.d_model + 2 * kv * head_dim, bias=b)
        self.ff_proj = nn.Linear(c.d_model, hidden, bias=b)
        self.attn_norm = Norm(c, c.d_model)
        self.ff_norm = Norm(c, c.d_model)

    def reset_parameters(self) -> None:  # model.py:483-506, 707-726 (norms: already 1/0)
        c = self.c
        if c.init_fn == "normal":
            attn_out_std = ff_out_std = std = c.init_std
            cutoff = c.init_cutoff_factor
        elif c.init_fn == "mitchell":
            attn_out_std = 1 / (math.sqrt(2 * c.d_model * (self.layer_id + 1)))
            ff_out_std = 1 / (math.sqrt(2 * self.ff_out.in_features * (self.layer_id + 1)))
            std, cutoff = 1 / math.sqrt(c.d_model), c.init_cutoff_factor or 3.0
        else:
            attn_out_std = ff_out_std = c.init_std / math.sqrt(2.0 * c.n_layers)
            std, cutoff = c.init_std, c.init_cutoff_factor or 3.0
        init_normal(self.attn_out, attn_out_std, cutoff)
        init_normal(self.ff_out, ff_out_std, cutoff)
        init_normal(self.att_proj, std, cutoff)
        init_normal(self.ff_proj, std, cutoff)


class OLMo(nn.Module):  # model.py:1070-1145 and reset_parameters 1173-1238
    def __init__(self, c: ModelConfig) -> None:
        super().__init__()
        self.c = c
        rows = c.embedding_size or c.vocab_size
        blocks = [Block(i, c) for i in range(c.n_layers)]
        parts: dict[str, nn.Module] = {"wte": nn.Embedding(rows, c.d_model), "ln_f": Norm(c)}
        g = c.block_group_size
        if g > 1:
            groups = [nn.ModuleList(blocks[i : i + g]) for i in range(0, c.n_layers, g)]
            parts["block_groups"] = nn.ModuleList(groups)
        else:
            parts["blocks"] = nn.ModuleList(blocks)
        if not (c.alibi or c.rope):
            parts["wpe"] = nn.Embedding(c.max_sequence_length, c.d_model)
        if not c.weight_tying:
            parts["ff_out"] = nn.Linear(c.d_model, rows, bias=c.include_bias)
        if c.embedding_layer_norm:
            parts["emb_norm"] = Norm(c)
        self.transformer = nn.ModuleDict(parts)
        self.blocks = blocks
        self.reset_parameters()

    def reset_parameters(self) -> None:  # a transcription of model.py:1177-1230
        c, t, d = self.c, self.transformer, self.c.d_model
        if c.init_fn == "normal":
            wte_std, cutoff = c.emb_init_std or c.init_std, c.init_cutoff_factor
            wpe_std = ff_out_std = c.init_std
        elif c.init_fn == "mitchell":
            wte_std, cutoff = c.emb_init_std or 1.0 / math.sqrt(d), c.init_cutoff_factor or 3.0
            wpe_std = ff_out_std = 1 / math.sqrt(d)
        else:
            wte_std = c.init_std
            if c.emb_init_std is not None:
                wte_std = c.emb_init_std
            elif c.scale_emb_init:
                wte_std *= math.sqrt(d)
            wpe_std, ff_out_std, cutoff = c.init_std, 1 / math.sqrt(d), c.init_cutoff_factor or 3.0
        init_normal(t["wte"], wte_std, cutoff)
        if "wpe" in t:
            init_normal(t["wpe"], wpe_std, cutoff)
        if "ff_out" in t:
            init_normal(t["ff_out"], ff_out_std, cutoff)
        for block in self.blocks:
            block.reset_parameters()


# --- configs -------------------------------------------------------------------------------------

CONFIGS: dict[str, dict[str, Any]] = {
    # OLMo-7B's hf_olmo config.json (mitchell, non-parametric norms, RoPE, no biases, untied),
    # small sizes; the HF wrapper's own fields are ignored
    "mitchell-7b": {"model_type": "hf_olmo", "architectures": ["OLMoForCausalLM"],
                    "d_model": 64, "n_heads": 4, "n_kv_heads": None, "n_layers": 3,
                    "mlp_ratio": 4, "mlp_hidden_size": 344, "activation_type": "swiglu",
                    "block_type": "sequential", "block_group_size": 1, "alibi": False,
                    "alibi_bias_max": 8.0, "rope": True, "rope_full_precision": True,
                    "flash_attention": True, "attention_dropout": 0.0,
                    "multi_query_attention": False, "attention_layer_norm": False,
                    "residual_dropout": 0.0, "embedding_dropout": 0.0,
                    "layer_norm_type": "default", "layer_norm_with_affine": False,
                    "attention_layer_norm_with_affine": False, "max_sequence_length": 2048,
                    "include_bias": False, "bias_for_layer_norm": False, "scale_logits": False,
                    "vocab_size": 500, "embedding_size": 512, "weight_tying": False,
                    "eos_token_id": 1, "pad_token_id": 1, "init_device": "meta",
                    "init_fn": "mitchell", "init_std": 0.02, "init_cutoff_factor": None,
                    "precision": "amp_bf16", "clip_qkv": None, "use_cache": True,
                    "transformers_version": "4.36.2"},
    "full_megatron": {"d_model": 48, "n_heads": 4, "n_kv_heads": 2, "n_layers": 2,
                      "activation_type": "gelu", "max_sequence_length": 40, "vocab_size": 300,
                      "embedding_size": 320, "init_fn": "full_megatron", "init_std": 0.03,
                      "scale_emb_init": True, "init_cutoff_factor": 2.0,
                      "attention_layer_norm": True, "layer_norm_type": "rms",
                      "embedding_layer_norm": True},
    "normal": {"d_model": 32, "n_heads": 2, "n_layers": 4, "block_group_size": 2,
               "activation_type": "relu", "alibi": True, "vocab_size": 200,
               "embedding_size": None, "weight_tying": False, "emb_init_std": 0.1,
               "bias_for_layer_norm": False},
    "mitchell-mqa": {"d_model": 32, "n_heads": 4, "multi_query_attention": True, "n_layers": 2,
                     "mlp_ratio": 3, "rope": True, "vocab_size": 256, "embedding_size": 256,
                     "init_fn": "mitchell", "init_cutoff_factor": 2.0, "emb_init_std": 0.05,
                     "attention_layer_norm": True, "attention_layer_norm_with_affine": False},
    "normal-cut": {"d_model": 32, "n_heads": 2, "n_layers": 2, "vocab_size": 128,
                   "max_sequence_length": 64, "init_cutoff_factor": 3.0, "init_std": 0.05},
}  # fmt: skip
HF_FIELDS = {"model_type", "architectures", "transformers_version", "use_cache"}


def module(given: dict[str, Any], device: str = "cpu") -> OLMo:
    with torch.device(device):
        return OLMo(ModelConfig.of(given))


def shapes_of(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def law_of(m: Any) -> tuple[str, float, float | None]:
    """A recipe member as (kind, std, cutoff in σ): truncated_normal ±c·s reads back as c."""
    if m.scheme in ("zeros", "ones"):
        return m.scheme, 0.0, None
    std = m.params.std
    if m.scheme == "normal":
        return "normal", std, None
    assert m.params.a == -m.params.b, m.name
    return "normal", std, m.params.b / std


# --- tests ---------------------------------------------------------------------------------------

SHAPES_ONLY: list[dict[str, Any]] = [
    {},  # ModelConfig's defaults: GPT-2 small's sizes, swiglu, learned positions, tied
    {"n_layers": 1, "d_model": 16, "n_heads": 4, "layer_norm_type": "low_precision",
     "include_bias": False, "bias_for_layer_norm": True, "embedding_size": None},
    {"n_layers": 6, "d_model": 16, "n_heads": 2, "block_group_size": 3, "vocab_size": 50},
]  # fmt: skip


@pytest.mark.parametrize("given", [*CONFIGS.values(), *SHAPES_ONLY])
def test_names_and_shapes_are_the_modules_state_dict(given: dict[str, Any]) -> None:
    members, ignored = recipes.members("olmo", given)
    assert set(ignored) == set(given) - {f.name for f in fields(ModelConfig)} - {"model_type"}
    assert {m.name: tuple(m.shape) for m in members} == shapes_of(module(given, "meta"))
    assert recipes.count("olmo", given) == len(members)


def test_the_7b_config_reads_as_olmo_7b() -> None:
    """OLMo-7B's sizes (d 4096, 32 heads and layers, mlp_hidden_size 22016, vocab 50280 padded
    to 50304, untied, no biases, non-parametric norms): 6.888e9 parameters."""
    given = {**CONFIGS["mitchell-7b"], "d_model": 4096, "n_heads": 32, "n_layers": 32,
             "mlp_hidden_size": 22016, "vocab_size": 50280, "embedding_size": 50304}  # fmt: skip
    members, _ = recipes.members("olmo", given)
    assert sum(math.prod(m.shape) for m in members) == 6_888_095_744
    by = {m.name: m for m in members}
    assert by["transformer.blocks.31.ff_out.weight"].shape == (4096, 11008)
    assert by["transformer.blocks.31.ff_out.weight"].params.std == 1 / math.sqrt(2 * 11008 * 32)
    assert "transformer.ln_f.weight" not in by  # layer_norm_with_affine false
    assert "transformer.wpe.weight" not in by  # rope


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_each_law_is_olmos(kind: str) -> None:
    given = CONFIGS[kind]
    c = ModelConfig.of(given)
    for m in recipes.members("olmo", given)[0]:
        kind_, std, cut = expected_law(m.name, c)
        got = law_of(m)
        assert (m.convention, m.tied_to, got[0]) == ("torch", None, kind_), m.name
        assert got[1] == pytest.approx(std, rel=1e-15), m.name
        assert (got[2] is None) == (cut is None), m.name
        if cut is not None:
            assert got[2] == pytest.approx(cut, rel=1e-12), m.name


def test_the_three_init_fns_differ_where_the_source_says() -> None:
    def law(given: dict[str, Any], name: str) -> tuple[str, float, float | None]:
        return law_of({m.name: m for m in recipes.members("olmo", given)[0]}[name])

    base = {"d_model": 64, "n_heads": 4, "n_layers": 4, "mlp_ratio": 4}
    name = "transformer.blocks.2.attn_out.weight"
    assert law({**base, "init_fn": "mitchell"}, name)[1:] == (1 / math.sqrt(2 * 64 * 3), 3.0)
    assert law({**base, "init_fn": "full_megatron"}, name)[1:] == (0.02 / math.sqrt(8), 3.0)
    assert law(base, name) == ("normal", 0.02, None)  # normal: untruncated without a cutoff
    mitchell_ff = law({**base, "init_fn": "mitchell"}, "transformer.blocks.0.ff_out.weight")
    assert mitchell_ff[1] == 1 / math.sqrt(2 * 128)  # swiglu: ff_out has 256/2 inputs
    assert law({**base, "init_fn": "full_megatron", "scale_emb_init": True},
               "transformer.wte.weight")[1] == 0.02 * 8  # fmt: skip


def bundle(client: TestClient, given: dict[str, Any], seed: int) -> tuple[Any, dict[str, Any]]:
    r = client.post("/v1/bundles/describe", json={"seed": seed, "recipe": "olmo", "config": given})
    assert r.status_code == 200, r.text
    d = r.json()
    data = client.get(d["url"]).content
    assert len(data) == d["content_length"]
    return safetensors.torch.load(data), d


def check_support(name: str, values: Any, law: tuple[str, float, float | None]) -> None:
    """Nothing past ±c·s (compared in the tensor's dtype) and, for enough draws, values past
    (c - 0.5)·s; untruncated laws reach past 3σ."""
    _, std, cut = law
    top = float(values.double().abs().max())
    if cut is not None:
        assert top <= float(torch.tensor(cut * std, dtype=values.dtype)), name
    if values.numel() >= 5000:
        assert top > ((cut - 0.5) if cut is not None else 3.0) * std, name


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_the_bundle_loads_strictly_and_follows_the_modules_init(
    client: TestClient, kind: str
) -> None:
    given, seeds = CONFIGS[kind], range(3)
    c = ModelConfig.of(given)
    ours: dict[str, list[Any]] = {}
    theirs: dict[str, list[Any]] = {}
    for seed in seeds:
        state, d = bundle(client, given, seed)
        torch.manual_seed(1000 + seed)
        model = module(given)
        reference = model.state_dict()
        assert {k: (tuple(v.shape), v.dtype) for k, v in state.items()} == {
            k: (tuple(v.shape), v.dtype) for k, v in reference.items()}  # fmt: skip
        model.load_state_dict(state, strict=True)
        for t in d["tensors"]:
            law, value = expected_law(t["name"], c), state[t["name"]]
            if law[0] in ("zeros", "ones"):
                assert torch.all(value == (law[0] == "ones")), t["name"]
                continue
            check_support(t["name"], value, law)
            ours.setdefault(t["name"], []).append(value.flatten())
            theirs.setdefault(t["name"], []).append(reference[t["name"]].flatten())
    for name, values in ours.items():
        p = stats.ks_2samp(torch.cat(values).numpy(), torch.cat(theirs[name]).numpy()).pvalue
        assert p > 1e-4, (name, p)


def test_an_hf_olmo_config_is_read_and_a_transformers_one_refused(client: TestClient) -> None:
    assert recipes.lookup("olmo").model_type == "hf_olmo"  # configuration_olmo.py:15
    r = client.post("/v1/bundles/describe", json={"recipe": "olmo", "config": {
        "model_type": "olmo", "hidden_size": 64, "num_hidden_layers": 2}})  # fmt: skip
    assert r.status_code == 422
    assert "olmo config model_type must be 'hf_olmo'; received 'olmo'" in r.json()["detail"]


@pytest.mark.parametrize(
    ("config", "error", "text"),
    [
        ({"block_type": "llama"}, ShapeError, "sequential blocks (OLMoSequentialBlock) only"),
        ({"alibi": True, "rope": True}, ShapeError, "alibi and rope are mutually exclusive"),
        ({"vocab_size": 50400}, ShapeError, "embedding_size=50304 must be at least vocab_size"),
        ({"n_layers": 3, "block_group_size": 2}, ShapeError, "divisible by block_group_size=2"),
        ({"d_model": 100, "n_heads": 12}, ShapeError, "d_model=100 must be divisible by n_heads"),
        ({"mlp_hidden_size": 101}, ShapeError, "101 must be even"),
        ({"n_kv_heads": 2, "multi_query_attention": True}, ShapeError,
         "multi_query_attention and n_kv_heads cannot both be set"),
        ({"init_fn": "fan_in"}, SchemeError,
         "unknown olmo config argument init_fn 'fan_in'; expected one of"),
        ({"n_layers": 0}, SchemeError, "olmo config needs n_layers >= 1"),
        ({"init_cutoff_factor": 0}, SchemeError, "olmo config needs init_cutoff_factor > 0"),
        ({"weight_tying": "no"}, SchemeError, "weight_tying must be true or false"),
    ],
)  # fmt: skip
def test_bad_configs_are_422s_naming_the_field(
    client: TestClient, config: dict[str, Any], error: type[Exception], text: str
) -> None:
    with pytest.raises(error) as caught:
        recipes.members("olmo", config)
    assert text in str(caught.value)
    r = client.post("/v1/bundles/describe", json={"recipe": "olmo", "config": config})
    assert r.status_code == 422
    assert text in r.json()["detail"]


@pytest.mark.parametrize("layers", [1, 2, 12])
@pytest.mark.parametrize("flags", [(False, False, True), (True, True, False), (True, False, True)])
def test_count_is_the_expansion(layers: int, flags: tuple[bool, bool, bool]) -> None:
    bias, affine, tied = flags
    for extra in ({}, {"rope": True, "attention_layer_norm": True, "embedding_layer_norm": True},
                  {"bias_for_layer_norm": not bias, "attention_layer_norm": True}):  # fmt: skip
        given = {"n_layers": layers, "include_bias": bias, "layer_norm_with_affine": affine,
                 "weight_tying": tied, **extra}  # fmt: skip
        assert recipes.count("olmo", given) == len(recipes.members("olmo", given)[0])


def test_the_catalogue_cites_the_lines_this_test_quotes() -> None:
    """Every cite is inside its file at COMMIT; each law's defining line (quoted above) is among
    its group's cites; the docstring names the commit."""
    found = recipes.lookup("olmo")
    assert found.version == f"git {COMMIT[:12]}"
    assert COMMIT in (olmo.__doc__ or "")
    cited: dict[str, set[int]] = {}
    for g in found.groups:
        for cite in g.source.split("; "):
            path, _, spans = cite.partition(":")
            lines = {n for a, b in re.findall(r"(\d+)(?:-(\d+))?", spans)
                     for n in range(int(a), int(b or a) + 1)}  # fmt: skip
            assert lines, cite
            assert max(lines) <= LENGTHS[path], cite
            if path == "olmo/model.py":
                cited[g.tensors.split(" ")[0]] = cited.get(g.tensors.split(" ")[0], set()) | lines
    assert {1181, 1184, 1191} <= cited["transformer.wte.weight"]
    assert {1203, 1206} <= cited["transformer.wpe.weight"]
    assert {494, 499} <= cited["transformer.blocks.{i}.attn_out.weight"]
    assert {372, 495, 458} <= cited["transformer.blocks.{i}.ff_out.weight"]
    assert {717, 720, 696} <= cited["transformer.blocks.{i}.att_proj.weight"]
    assert {1222, 1225, 1129} <= cited["transformer.ff_out.weight"]


@pytest.mark.skipif(not MIRROR.is_dir(), reason="no allenai/OLMo mirror: fetch github:allenai/OLMo")
def test_the_quoted_lines_are_olmos_at_the_commit() -> None:
    for path, quoted in SOURCE.items():
        text = subprocess.run(["git", "-C", str(MIRROR), "show", f"{COMMIT}:{path}"],
                              capture_output=True, text=True, check=True).stdout  # fmt: skip
        lines = text.splitlines()
        assert len(lines) == LENGTHS.get(path, len(lines)), path
        for number, line in quoted.items():
            assert lines[number - 1].strip() == line, (path, number)
