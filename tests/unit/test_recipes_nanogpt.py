"""service.recipes.nanogpt against karpathy/nanoGPT's model.py (commit 3adf61e1, read with git
from the repository; nanoGPT is not a package, so it is not installed): the names and shapes of
a small torch module written here with nanoGPT's module structure (each class cites its lines),
each law against a table of nanoGPT's formulas (independent of the recipe code), the bundle
over HTTP loaded strictly into that module with its values KS-tested against the module's own
init, the count, the refusals and the cited lines."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service import recipes
from service.errors import SchemeError, ShapeError
from service.recipes import nanogpt

pytest.importorskip("torch", reason="torch is not installed: pip install -e .[dev]")
import safetensors.torch
import torch
from scipy import stats
from torch import nn

COMMIT = "3adf61e154c3fe3fca428ad6bc3818b27a3b8291"

# --- nanoGPT's model.py at COMMIT, the lines the table and the mirror rest on (verbatim) --------
SOURCE = {
    23: "self.weight = nn.Parameter(torch.ones(ndim))",
    24: "self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None",
    33: "assert config.n_embd % config.n_head == 0",
    35: "self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)",
    37: "self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)",
    45: "self.flash = hasattr(torch.nn.functional, 'scaled_dot_product_attention')",
    82: "self.c_fc    = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)",
    84: "self.c_proj  = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)",
    98: "self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)",
    100: "self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)",
    127: "wte = nn.Embedding(config.vocab_size, config.n_embd),",
    128: "wpe = nn.Embedding(config.block_size, config.n_embd),",
    131: "ln_f = LayerNorm(config.n_embd, bias=config.bias),",
    133: "self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)",
    138: "self.transformer.wte.weight = self.lm_head.weight "
    "# https://paperswithcode.com/method/weight-tying",
    143: "for pn, p in self.named_parameters():",
    144: "if pn.endswith('c_proj.weight'):",
    145: "torch.nn.init.normal_(p, mean=0.0, std=0.02/math.sqrt(2 * config.n_layer))",
    163: "if isinstance(module, nn.Linear):",
    164: "torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)",
    165: "if module.bias is not None:",
    166: "torch.nn.init.zeros_(module.bias)",
    167: "elif isinstance(module, nn.Embedding):",
    168: "torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)",
}


def expected_law(name: str, c: GPTConfig) -> tuple[str, float]:
    """(kind, std) nanoGPT gives `name`, from the lines above: kind normal, zeros, ones, tied."""
    if name == "lm_head.weight":
        return "tied", 0.0  # :138 (the one parameter; :164 and :168 both draw std 0.02)
    if name.endswith(".bias"):
        return "zeros", 0.0  # :24 (LayerNorm) and :165-166 (nn.Linear)
    if ".ln_" in name:
        return "ones", 0.0  # :23, never touched by _init_weights (not an nn.LayerNorm)
    if name.endswith("c_proj.weight"):
        return "normal", 0.02 / math.sqrt(2 * c.n_layer)  # :143-145
    return "normal", 0.02  # :164 (c_attn, c_fc), :168 (wte, wpe)


# --- a module with nanoGPT's structure (model.py:18-168; the torch >= 2 path, no dropout) ------


@dataclass
class GPTConfig:  # model.py:108-116
    block_size: int = 1024
    vocab_size: int = 50304
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True


class LayerNorm(nn.Module):  # model.py:18-24
    def __init__(self, ndim: int, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None


class CausalSelfAttention(nn.Module):  # model.py:29-45: no mask buffer
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.c_attn = nn.Linear(c.n_embd, 3 * c.n_embd, bias=c.bias)
        self.c_proj = nn.Linear(c.n_embd, c.n_embd, bias=c.bias)


class MLP(nn.Module):  # model.py:78-85 (gelu and dropout hold no tensor)
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(c.n_embd, 4 * c.n_embd, bias=c.bias)
        self.c_proj = nn.Linear(4 * c.n_embd, c.n_embd, bias=c.bias)


class Block(nn.Module):  # model.py:94-101
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = LayerNorm(c.n_embd, bias=c.bias)
        self.attn = CausalSelfAttention(c)
        self.ln_2 = LayerNorm(c.n_embd, bias=c.bias)
        self.mlp = MLP(c)


class GPT(nn.Module):  # model.py:118-145, 162-168
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        assert c.n_embd % c.n_head == 0
        wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.transformer = nn.ModuleDict(
            {
                "wte": wte,
                "wpe": nn.Embedding(c.block_size, c.n_embd),
                "drop": nn.Dropout(c.dropout),
                "h": nn.ModuleList([Block(c) for _ in range(c.n_layer)]),
                "ln_f": LayerNorm(c.n_embd, bias=c.bias),
            }
        )
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        wte.weight = self.lm_head.weight
        self.apply(self._init_weights)
        for pn, p in self.named_parameters():
            if pn.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c.n_layer))

    @staticmethod
    def _init_weights(module: Any) -> None:
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)


# --- configs -------------------------------------------------------------------------------------

TINY: dict[str, Any] = {
    "block_size": 24,
    "vocab_size": 160,
    "n_layer": 3,
    "n_head": 4,
    "n_embd": 32,
}
CONFIGS: dict[str, dict[str, Any]] = {
    "bias": {**TINY, "bias": True, "dropout": 0.1},
    "no-bias": {**TINY, "bias": False, "n_layer": 2, "n_head": 2},
}


def shapes_of(model: Any) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def describe(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/bundles/describe", json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


# --- tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [{}, *CONFIGS.values(), {"n_layer": 0, "bias": False}])
def test_names_and_shapes_are_the_modules_state_dict(config: dict[str, Any]) -> None:
    members, ignored = recipes.members("nanogpt", config)
    assert ignored == ()  # a nanoGPT config is GPTConfig's fields, nothing else
    with torch.device("meta"):
        model = GPT(GPTConfig(**config))
    assert {m.name: tuple(m.shape) for m in members} == shapes_of(model)
    assert recipes.count("nanogpt", config) == len(members)
    assert "transformer.h.0.attn.bias" not in {m.name for m in members}


def test_the_defaults_are_gpt2_124m_with_the_padded_vocabulary() -> None:
    members, _ = recipes.members("nanogpt", {})
    by = {m.name: m for m in members}
    assert by["transformer.h.11.attn.c_attn.weight"].shape == (2304, 768)
    assert by["transformer.wte.weight"].shape == (50304, 768)
    untied = sum(math.prod(m.shape) for m in members if m.tied_to is None)
    assert untied == 124_475_904  # nanoGPT prints 123.69M: less wpe (model.py:159)


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_each_law_is_nanogpts(kind: str) -> None:
    """The recipe's law of every tensor is the table's, and the table holds for the module."""
    config = CONFIGS[kind]
    c = GPTConfig(**config)
    torch.manual_seed(0)
    model = GPT(c)
    state = model.state_dict()
    for m in recipes.members("nanogpt", config)[0]:
        law, std = expected_law(m.name, c)
        assert m.convention == "torch"
        if law == "tied":
            assert m.tied_to == "transformer.wte.weight"
            assert model.lm_head.weight is model.get_parameter("transformer.wte.weight")
            continue
        assert m.tied_to is None
        assert m.scheme == law, m.name
        real = state[m.name].double()
        if law == "normal":
            assert m.params.std == pytest.approx(std, rel=1e-15), m.name
            assert (m.params.mean, m.params.a, m.params.b, m.zero_rows) == (0.0, None, None, ())
            n = real.numel()
            assert float(real.std()) == pytest.approx(std, rel=6 / math.sqrt(n) + 0.02), m.name
        else:
            assert torch.all(real == (law == "ones")), m.name


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_the_bundle_loads_strictly_and_follows_the_modules_init(
    client: TestClient, kind: str
) -> None:
    config = CONFIGS[kind]
    c = GPTConfig(**config)
    seeds = range(4)
    ours: dict[str, list[Any]] = {}
    theirs: dict[str, list[Any]] = {}
    for seed in seeds:
        d = describe(client, {"seed": seed, "recipe": "nanogpt", "config": config})
        data = client.get(d["url"]).content
        assert len(data) == d["content_length"]
        state = safetensors.torch.load(data)
        model = GPT(c)
        assert {k: (tuple(v.shape), v.dtype) for k, v in state.items()} == {
            k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()
        }
        model.load_state_dict(state, strict=True)
        assert torch.equal(state["lm_head.weight"], state["transformer.wte.weight"])
        for t in d["tensors"]:
            law, std = expected_law(t["name"], c)
            assert (t["tied_to"] is not None) == (law == "tied")
            if law == "normal":
                assert t["plan"]["kind"] == "normal", t["name"]
                assert t["plan"]["stddev"] == pytest.approx(std, rel=1e-15), t["name"]
                ours.setdefault(t["name"], []).append(state[t["name"]].flatten())
            elif law in ("zeros", "ones"):
                assert torch.all(state[t["name"]] == (law == "ones")), t["name"]
        torch.manual_seed(1000 + seed)
        for name, value in GPT(c).state_dict().items():
            theirs.setdefault(name, []).append(value.flatten())
    for name, values in ours.items():
        p = stats.ks_2samp(torch.cat(values).numpy(), torch.cat(theirs[name]).numpy()).pvalue
        assert p > 1e-4, (name, p)


def test_a_transformers_gpt2_config_is_refused_by_its_model_type(client: TestClient) -> None:
    assert recipes.members("nanogpt", {"model_type": "nanogpt"})[1] == ()
    r = client.post("/v1/bundles/describe", json={"recipe": "nanogpt", "config": {
        "model_type": "gpt2", "n_layer": 2, "n_positions": 64}})  # fmt: skip
    assert r.status_code == 422
    assert "nanogpt config model_type must be 'nanogpt'; received 'gpt2'" in r.json()["detail"]
    d = describe(client, {"recipe": "nanogpt", "config": {**TINY, "n_positions": 64}})
    assert d["ignored_config"] == ["n_positions"]


@pytest.mark.parametrize(
    ("config", "error", "text"),
    [
        ({"n_embd": 10, "n_head": 3}, ShapeError, "n_embd=10 must be divisible by n_head=3"),
        ({"dropout": 1.5}, SchemeError, "nanogpt config needs dropout >= 0 and <= 1"),
        ({"bias": 1}, SchemeError, "nanogpt config argument bias must be true or false"),
        ({"n_layer": -1}, SchemeError, "nanogpt config needs n_layer >= 0"),
        ({"block_size": 0}, SchemeError, "nanogpt config needs block_size >= 1"),
        ({"vocab_size": "50304"}, SchemeError, "vocab_size must be an integer"),
    ],
)
def test_bad_configs_are_422s_naming_the_field(
    client: TestClient, config: dict[str, Any], error: type[Exception], text: str
) -> None:
    with pytest.raises(error) as caught:
        recipes.members("nanogpt", config)
    assert text in str(caught.value)
    r = client.post("/v1/bundles/describe", json={"recipe": "nanogpt", "config": config})
    assert r.status_code == 422
    assert text in r.json()["detail"]


@pytest.mark.parametrize("layers", [0, 1, 7, 96])
@pytest.mark.parametrize("bias", [False, True])
def test_count_is_the_expansion(layers: int, bias: bool) -> None:
    config = {"n_layer": layers, "bias": bias}
    assert recipes.count("nanogpt", config) == len(recipes.members("nanogpt", config)[0])


def test_the_catalogue_cites_the_lines_this_test_quotes() -> None:
    """Every group cites model.py lines quoted above (so a cite cannot drift unnoticed); each
    law's defining line is among its group's cites; the docstring names the commit read."""
    found = recipes.lookup("nanogpt")
    assert found.version == f"git {COMMIT[:12]}"
    assert COMMIT in (nanogpt.__doc__ or "")
    cited: dict[str, set[int]] = {}
    for g in found.groups:
        lines: set[int] = set()
        for part in re.findall(r"(\d+)(?:-(\d+))?", g.source.removeprefix("model.py:")):
            first, last = int(part[0]), int(part[1] or part[0])
            lines |= set(range(first, last + 1))
        assert g.source.startswith("model.py:"), g.source
        assert lines <= set(SOURCE), (g.tensors, sorted(lines - set(SOURCE)))
        cited[g.law + ":" + g.tensors.split(" ")[0]] = lines
    assert 145 in cited["normal:transformer.h.{i}.attn.c_proj.weight"]
    assert {164, 35, 82} <= cited["normal:transformer.h.{i}.attn.c_attn.weight"]
    assert {168, 127, 128} <= cited["normal:transformer.wte.weight"]
    assert 138 in cited["tied:lm_head.weight"]
    assert (
        166 in cited["zeros:transformer.h.{i}.{attn.c_attn,attn.c_proj,mlp.c_fc,mlp.c_proj}.bias"]
    )
