"""service.recipes.hf_neox: `hf.gpt_neox` (GPTNeoXForCausalLM) against transformers 5.24.0. For
a tiny config, one with the non-default options, a Pythia-style Hub config.json and the
`to_dict()` form the installed transformers writes: names, shapes and order against the real
model's state dict, the count, each law against a table read from transformers' source (below,
cited, independent of the recipe code), and a bundle fetched over HTTP that loads strictly into
the real model, in its dtype, with every random tensor KS-indistinguishable from the model's own
init, constants exact and the tie byte-equal. Also the fields that shape no tensor, the
refusals (422s naming the field) and the cited sources."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service import recipes
from service.presets.base import Member
from tests.integration.test_bundles import member_bytes
from tests.integration.test_recipes import check_law
from tests.support import assert_loads_strictly, cited, layout, members_layout

transformers = pytest.importorskip(
    "transformers",
    reason="transformers is not installed: pip install transformers==5.24.0 -c <torch pin>",
)
import safetensors.torch  # noqa: E402
import scipy.stats  # noqa: E402
import torch  # noqa: E402

RECIPE = "hf.gpt_neox"

# --- configs -----------------------------------------------------------------------------------

TINY: dict[str, Any] = {
    "vocab_size": 300, "hidden_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4,
    "intermediate_size": 80, "initializer_range": 0.05,
}  # fmt: skip
# every option off its default; initializer_range 0 reads as 0.02 (modeling_utils.py:2311)
OPTIONS: dict[str, Any] = {
    "vocab_size": 256, "hidden_size": 32, "num_hidden_layers": 3, "num_attention_heads": 2,
    "intermediate_size": 64, "attention_bias": False, "tie_word_embeddings": True,
    "hidden_act": "relu", "initializer_range": 0.0, "use_parallel_residual": False,
    "rotary_pct": 1.0, "rotary_emb_base": 500, "pad_token_id": 3, "dtype": "bfloat16",
}  # fmt: skip
# EleutherAI/pythia-160m's config.json keys (written by transformers 4.24), small sizes
PYTHIA: dict[str, Any] = {
    "architectures": ["GPTNeoXForCausalLM"], "bos_token_id": 0, "eos_token_id": 0,
    "hidden_act": "gelu", "hidden_size": 64, "initializer_range": 0.02,
    "intermediate_size": 256, "layer_norm_eps": 1e-05, "max_position_embeddings": 2048,
    "model_type": "gpt_neox", "num_attention_heads": 4, "num_hidden_layers": 2,
    "rotary_emb_base": 10000, "rotary_pct": 0.25, "tie_word_embeddings": False,
    "torch_dtype": "float16", "transformers_version": "4.24.0", "use_cache": True,
    "use_parallel_residual": True, "vocab_size": 512,
}  # fmt: skip
PYTHIA_160M: dict[str, Any] = {
    "vocab_size": 50304, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
    "intermediate_size": 3072,
}  # fmt: skip


def to_dict_config() -> dict[str, Any]:
    """The config.json the installed transformers writes (to_dict(), through JSON)."""
    cfg = transformers.GPTNeoXConfig(
        vocab_size=200, hidden_size=40, num_hidden_layers=2, num_attention_heads=5,
        intermediate_size=72, tie_word_embeddings=True, dtype="float16",
    )  # fmt: skip
    out: dict[str, Any] = json.loads(json.dumps(cfg.to_dict()))
    return out


CONFIGS: Mapping[str, Mapping[str, Any]] = {
    "tiny": TINY,
    "options": OPTIONS,
    "pythia": PYTHIA,
    "to_dict": to_dict_config(),
}
KINDS = tuple(CONFIGS)


def hf_config(given: Mapping[str, Any]) -> Any:
    return transformers.AutoConfig.for_model(
        "gpt_neox", **{k: v for k, v in given.items() if k != "model_type"}
    )


def hf_model(given: Mapping[str, Any], device: str = "cpu") -> Any:
    with torch.device(device):
        return transformers.AutoModelForCausalLM.from_config(hf_config(given))


# --- the law table, read from transformers 5.24.0's source (not from service.recipes) ----------
# gpt_neox/modeling_gpt_neox.py:273-289 GPTNeoXPreTrainedModel: no _init_weights of its own
# modeling_utils.py:2311      std = config.initializer_range or 0.02
# modeling_utils.py:2320-24   nn.Linear: weight normal_(0, std); bias zeros_
# modeling_utils.py:2331-35   nn.Embedding: normal_(0, std); weight[padding_idx] zeros_ — but
#                             embed_in is nn.Embedding(vocab, hidden) (:298): no padding_idx
# modeling_utils.py:2341-50   *LayerNorm*: weight ones_, bias zeros_
# gpt_neox/modeling_gpt_neox.py:377     _tied_weights_keys: lm_head.weight -> embed_in.weight
# Nothing truncated, nothing depth-scaled.
Law = tuple[str, float, tuple[int, ...]]  # kind, std, zero rows (check_law's form)


def expected_law(name: str, cfg: Any) -> Law:
    if name == "lm_head.weight" and cfg.tie_word_embeddings:
        return "tied", 0.0, ()
    if name.endswith(".bias"):
        return "zeros", 0.0, ()
    if name.endswith(("layernorm.weight", "layer_norm.weight")):
        return "ones", 0.0, ()
    return "normal", cfg.initializer_range or 0.02, ()


def kind_of(m: Member) -> str:
    return "tied" if m.tied_to is not None else m.scheme


# --- names, shapes, order, counts ---------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_names_shapes_and_order_are_the_models_state_dict(kind: str) -> None:
    given = CONFIGS[kind]
    members, _ = recipes.members(RECIPE, given)
    model = hf_model(given, "meta")
    assert type(model).__name__ == recipes.lookup(RECIPE).model == "GPTNeoXForCausalLM"
    assert members_layout(members) == layout(model.state_dict())
    assert recipes.count(RECIPE, given) == len(members)


def test_defaults_are_gpt_neox_20b_and_pythia_160m_has_its_size() -> None:
    """{} is GPTNeoXConfig's default (GPT-NeoX-20B's sizes); Pythia-160M has 162,322,944
    parameters (its untied embed_out counted), as EleutherAI's Pythia table says."""
    for given, params in (({}, None), (PYTHIA_160M, 162_322_944)):
        members, ignored = recipes.members(RECIPE, given)
        assert ignored == ()
        state = hf_model(given, "meta").state_dict()
        assert members_layout(members) == layout(state)
        ours = sum(math.prod(m.shape) for m in members if m.tied_to is None)
        assert ours == sum(v.numel() for v in state.values()) == (params or ours)


@pytest.mark.parametrize("layers", [0, 1, 5])
@pytest.mark.parametrize("flag", [False, True])
def test_count_is_the_expansion(layers: int, flag: bool) -> None:
    config = {"num_hidden_layers": layers, "attention_bias": flag, "tie_word_embeddings": flag}
    assert recipes.count(RECIPE, config) == len(recipes.members(RECIPE, config)[0])


def test_fields_it_does_not_read_shape_no_tensor() -> None:
    """use_parallel_residual (forward wiring), the rotary fields (inv_freq is persistent=False),
    layer_norm_eps, max_position_embeddings and pad_token_id (embed_in has no padding_idx) leave
    the real model's state dict as it is; so the recipe does not read them."""
    base = {**TINY, "num_hidden_layers": 1}
    others = {
        "use_parallel_residual": False,
        "rotary_pct": 1.0,
        "rotary_emb_base": 77,
        "layer_norm_eps": 1e-3,
        "max_position_embeddings": 64,
        "pad_token_id": 5,
        "rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 1e4},
    }
    model = hf_model(base)  # fmt: skip
    assert model.gpt_neox.embed_in.padding_idx is None
    buffers = {name for name, _ in model.named_buffers()}
    assert buffers == {"gpt_neox.rotary_emb.inv_freq", "gpt_neox.rotary_emb.original_inv_freq"}
    assert not buffers & set(model.state_dict())
    for key, value in others.items():
        other = hf_model({**base, key: value}, "meta").state_dict()
        assert layout(other) == layout(model.state_dict()), key
        members, ignored = recipes.members(RECIPE, {**base, key: value})
        assert ignored == (key,)
        assert members == recipes.members(RECIPE, base)[0]


# --- laws ------------------------------------------------------------------------------------


def test_gpt_neox_keeps_the_generic_init_weights() -> None:
    from transformers.models.gpt_neox import modeling_gpt_neox

    generic = transformers.PreTrainedModel._init_weights
    assert modeling_gpt_neox.GPTNeoXPreTrainedModel._init_weights is generic


@pytest.mark.parametrize("kind", KINDS)
def test_each_law_is_what_init_weights_applies(kind: str) -> None:
    """The recipe's law of every tensor equals the table read from transformers' source, and the
    table holds for the model transformers initializes (constants, the tie)."""
    given = CONFIGS[kind]
    cfg = hf_config(given)
    torch.manual_seed(0)
    model = hf_model(given)
    state = model.state_dict()
    for m in recipes.members(RECIPE, given)[0]:
        law, std, _ = expected_law(m.name, cfg)
        assert kind_of(m) == law, m.name
        assert m.convention == "torch"
        real = state[m.name]
        if law == "normal":
            assert m.params.std == std, m.name  # computed as transformers does: exact
            assert (m.params.mean, m.params.a, m.params.b, m.zero_rows) == (0.0, None, None, ())
            assert real.double().std() > 0, m.name
        elif law in ("zeros", "ones"):
            assert torch.all(real == (law == "ones")), m.name
        else:
            assert model.lm_head.weight is model.gpt_neox.embed_in.weight
            assert m.tied_to == "gpt_neox.embed_in.weight"


@pytest.mark.parametrize("kind", KINDS)
def test_ignored_fields_are_those_it_does_not_read(kind: str) -> None:
    given = CONFIGS[kind]
    found = recipes.lookup(RECIPE).configure(given)
    read = {f["name"] for f in recipes.lookup(RECIPE).fields()} | {"model_type"}
    assert set(found.ignored) == set(given) - read
    dtype = {"tiny": None, "options": "bfloat16", "pythia": "float16", "to_dict": "float16"}
    assert found.dtype == dtype[kind]


# --- over HTTP: the bundle against the real model ---------------------------------------------

SEEDS = (21, 22, 23, 24)  # the bundle's seeds; the model's: torch.manual_seed(0 … 3)
SMALL = 2000  # a tensor with fewer elements is pooled over every seed for its KS test


def describe(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/bundles/describe", json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def ks_p(ours: list[torch.Tensor], theirs: list[torch.Tensor]) -> float:
    a, b = (torch.cat([t.double().flatten() for t in ts]).numpy() for ts in (ours, theirs))
    return float(scipy.stats.ks_2samp(a, b).pvalue)


@pytest.mark.parametrize("kind", KINDS)
def test_a_bundle_loads_strictly_and_draws_as_the_model_does(client: TestClient, kind: str) -> None:
    config = CONFIGS[kind]
    cfg = hf_config(config)
    described = [describe(client, {"seed": s, "recipe": RECIPE, "config": config}) for s in SEEDS]
    blobs = [client.get(d["url"]).content for d in described]
    bundles = [safetensors.torch.load(b) for b in blobs]
    models = []
    for s in range(len(SEEDS)):
        torch.manual_seed(s)
        models.append(hf_model(config).state_dict())
    theirs = models[0]
    assert sorted(t["name"] for t in described[0]["tensors"]) == sorted(theirs)
    assert_loads_strictly(hf_model(config), bundles[0], theirs)
    for t in described[0]["tensors"]:
        name, law = t["name"], expected_law(t["name"], cfg)
        check_law(t, law)
        if law[0] in ("zeros", "ones"):
            assert torch.equal(bundles[0][name], theirs[name]), name  # exact, in the dtype
        elif law[0] == "tied":
            assert member_bytes(blobs[0], name) == member_bytes(blobs[0], t["tied_to"])
        else:
            n = 1 if theirs[name].numel() >= SMALL else len(SEEDS)
            p = ks_p([b[name] for b in bundles[:n]], [m[name] for m in models[:n]])
            assert p > 1e-4, (name, p)


def test_the_describe_answer_lists_the_ignored_fields(client: TestClient) -> None:
    d = describe(client, {"seed": 0, "recipe": RECIPE, "config": PYTHIA})
    assert d["ignored_config"] == [
        "architectures", "bos_token_id", "eos_token_id", "layer_norm_eps",
        "max_position_embeddings", "rotary_emb_base", "rotary_pct", "transformers_version",
        "use_cache", "use_parallel_residual",
    ]  # fmt: skip
    assert {t["dtype"] for t in d["tensors"]} == {"float16"}  # its torch_dtype


def test_the_ks_check_tells_a_wrong_std_apart(client: TestClient) -> None:
    """The test above has power: TINY's σ 0.05 is not the default 0.02."""
    d = describe(client, {"seed": SEEDS[0], "recipe": RECIPE, "config": TINY})
    ours = safetensors.torch.load(client.get(d["url"]).content)
    name = "gpt_neox.layers.1.mlp.dense_h_to_4h.weight"
    torch.manual_seed(0)
    theirs = hf_model(TINY)
    torch.manual_seed(0)
    default = hf_model({**TINY, "initializer_range": 0.02})
    assert ks_p([ours[name]], [theirs.state_dict()[name]]) > 1e-4
    assert ks_p([ours[name]], [default.state_dict()[name]]) < 1e-4


@pytest.mark.parametrize(
    ("config", "text"),
    [
        ({"hidden_size": 0}, "hf.gpt_neox config needs hidden_size >= 1"),
        ({"hidden_size": 50, "num_attention_heads": 3},
         "hidden_size=50 must be divisible by num_attention_heads=3"),
        ({"hidden_act": "prelu"}, "unknown hf.gpt_neox config argument hidden_act 'prelu'"),
        ({"initializer_range": -0.1}, "initializer_range >= 0"),
        ({"num_hidden_layers": "2"},
         "hf.gpt_neox config argument num_hidden_layers must be an integer"),
        ({"num_hidden_layers": 10001}, "num_hidden_layers >= 0 and <= 10000"),
        ({"intermediate_size": 0}, "intermediate_size >= 1"),
        ({"vocab_size": 0}, "vocab_size >= 1"),
        ({"attention_bias": "yes"}, "attention_bias must be true or false"),
        ({"tie_word_embeddings": 1}, "tie_word_embeddings must be true or false"),
        ({"torch_dtype": "int8"}, "unknown hf.gpt_neox config argument torch_dtype"),
        ({"model_type": "gpt2"}, "model_type must be 'gpt_neox'"),
    ],
)  # fmt: skip
def test_bad_values_are_422s_naming_the_field(
    client: TestClient, config: dict[str, Any], text: str
) -> None:
    r = client.post("/v1/bundles/describe", json={"recipe": RECIPE, "config": config})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert text in r.json()["detail"]


def test_transformers_refuses_what_the_recipe_refuses() -> None:
    with pytest.raises(Exception, match="hidden size is not divisible"):
        transformers.GPTNeoXConfig(hidden_size=50, num_attention_heads=3)


# --- the catalogue's sources ------------------------------------------------------------------

# what each group's cited lines must say (a group is found by a piece of its `tensors`)
SAYS = {
    "embed_in.weight (vocab": ["self.embed_in = nn.Embedding(config.vocab_size, "
                               "config.hidden_size)", "init.normal_(module.weight, mean=0.0"],
    "query_key_value.weight": ["nn.Linear(config.hidden_size, 3 * config.hidden_size, "
                               "bias=config.attention_bias)",
                               "self.dense = nn.Linear(config.hidden_size, config.hidden_size, "
                               "bias=config.attention_bias)", "qkv.chunk(3, dim=-1)"],
    "dense_h_to_4h.weight": ["nn.Linear(config.hidden_size, config.intermediate_size)",
                             "nn.Linear(config.intermediate_size, config.hidden_size)"],
    ".bias (attention_bias)": ["init.zeros_(module.bias)", "bias=config.attention_bias"],
    "layernorm.weight": ["nn.LayerNorm(config.hidden_size", "init.ones_(module.weight)"],
    "layernorm.bias": ["nn.LayerNorm(config.hidden_size", "init.zeros_(module.bias)"],
    "(tie_word_embeddings)": ['{"lm_head.weight": "gpt_neox.embed_in.weight"}'],
    "(untied": ["self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)",
                "tie_word_embeddings: bool = False"],
}  # fmt: skip


def test_the_cited_sources_say_what_the_groups_say() -> None:
    root = Path(transformers.__file__).parent.parent
    found = recipes.lookup(RECIPE)
    assert (found.version, found.model_type) == (transformers.__version__, "gpt_neox")
    texts = {g.tensors: cited(g.source, root) for g in found.groups}
    for piece, says in SAYS.items():
        (text,) = [t for tensors, t in texts.items() if piece in tensors]
        for said in says:
            assert said in text, (piece, said)
