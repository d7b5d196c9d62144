"""service.recipes.hf_encoders: `hf.bert` (BertModel) and `hf.t5` (T5ForConditionalGeneration)
against transformers 5.24.0. For a tiny config, a `to_dict()` config.json and a Hub-style short
config.json of each: names and shapes against the real model (meta device), the count, each law
against a table read from transformers' source (below, cited, independent of the recipe code),
and a bundle fetched over HTTP that loads strictly into the real model, in its dtype, with every
random tensor KS-indistinguishable from the model's own init, constants exact and ties
byte-equal. Also the refusals (422s naming the field) and the cited sources."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

import pytest
from fastapi.testclient import TestClient

from service import recipes
from service.presets.base import Member
from service.recipes import hf, hf_encoders
from tests.integration.test_bundles import member_bytes
from tests.integration.test_recipes import check_law
from tests.support import cited

transformers = pytest.importorskip(
    "transformers",
    reason="transformers is not installed: pip install transformers==5.24.0 -c <torch pin>",
)
import safetensors.torch  # noqa: E402
import scipy.stats  # noqa: E402
import torch  # noqa: E402

# --- configs: a tiny one, a pasted to_dict() config.json (transformers 5.24.0, small sizes) and a
# Hub-style short config.json (bert-base-uncased's and flan-t5-small's keys, small sizes) ---------

TINY: Mapping[str, dict[str, Any]] = {
    "hf.bert": {"vocab_size": 300, "hidden_size": 48, "num_hidden_layers": 2,
                "num_attention_heads": 3, "intermediate_size": 80, "max_position_embeddings": 40,
                "type_vocab_size": 3, "pad_token_id": 5, "initializer_range": 0.05,
                "is_decoder": True, "add_cross_attention": True},
    "hf.t5": {"vocab_size": 300, "d_model": 48, "d_kv": 10, "d_ff": 80, "num_layers": 2,
              "num_decoder_layers": 3, "num_heads": 4, "relative_attention_num_buckets": 8,
              "initializer_factor": 0.5},
}  # fmt: skip
_BASE = {"transformers_version": "5.24.0", "output_hidden_states": False, "return_dict": True,
         "chunk_size_feed_forward": 0, "id2label": {"0": "LABEL_0", "1": "LABEL_1"},
         "label2id": {"LABEL_0": 0, "LABEL_1": 1}, "problem_type": None, "_name_or_path": "",
         "output_attentions": False}  # fmt: skip
REAL: Mapping[str, dict[str, Any]] = {
    "hf.bert": {**_BASE, "architectures": ["BertForMaskedLM"], "dtype": "float16",
                "is_encoder_decoder": False, "vocab_size": 512, "hidden_size": 64,
                "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128,
                "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
                "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 64,
                "type_vocab_size": 2, "initializer_range": 0.02, "layer_norm_eps": 1e-12,
                "pad_token_id": 0, "use_cache": True, "classifier_dropout": None,
                "is_decoder": False, "add_cross_attention": False, "bos_token_id": None,
                "eos_token_id": None, "tie_word_embeddings": True, "model_type": "bert"},
    # flan-t5's shape (gated-gelu, num_heads·d_kv != d_model), as 5.24's to_dict() writes it
    "hf.t5": {**_BASE, "architectures": ["T5ForConditionalGeneration"], "dtype": "bfloat16",
              "is_encoder_decoder": True, "vocab_size": 600, "d_model": 64, "d_kv": 12,
              "d_ff": 96, "num_layers": 2, "num_decoder_layers": 3, "num_heads": 4,
              "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128,
              "dropout_rate": 0.1, "layer_norm_epsilon": 1e-06, "initializer_factor": 1.0,
              "feed_forward_proj": "gated-gelu", "use_cache": True, "pad_token_id": 0,
              "eos_token_id": 1, "classifier_dropout": 0.0, "is_decoder": False,
              "dense_act_fn": "gelu_new", "is_gated_act": True, "scale_decoder_outputs": False,
              "tie_word_embeddings": True, "model_type": "t5"},
}  # fmt: skip
HUB: Mapping[str, dict[str, Any]] = {
    "hf.bert": {"architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1,
                "gradient_checkpointing": False, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
                "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 256,
                "layer_norm_eps": 1e-12, "max_position_embeddings": 128, "model_type": "bert",
                "num_attention_heads": 4, "num_hidden_layers": 2, "pad_token_id": 0,
                "position_embedding_type": "absolute", "transformers_version": "4.6.0.dev0",
                "type_vocab_size": 2, "use_cache": True, "vocab_size": 1000},
    "hf.t5": {"architectures": ["T5ForConditionalGeneration"], "d_ff": 96, "d_kv": 16,
              "d_model": 64, "decoder_start_token_id": 0, "dense_act_fn": "gelu_new",
              "dropout_rate": 0.1, "eos_token_id": 1, "feed_forward_proj": "gated-gelu",
              "initializer_factor": 1.0, "is_encoder_decoder": True, "is_gated_act": True,
              "layer_norm_epsilon": 1e-06, "model_type": "t5", "n_positions": 512,
              "num_decoder_layers": 2, "num_heads": 6, "num_layers": 3, "output_past": True,
              "pad_token_id": 0, "relative_attention_max_distance": 128,
              "relative_attention_num_buckets": 32,
              "task_specific_params": {"summarization": {"num_beams": 4, "prefix": "summarize: "}},
              "tie_word_embeddings": False, "torch_dtype": "float32",
              "transformers_version": "4.23.1", "use_cache": True, "vocab_size": 700},
}  # fmt: skip
RECIPES = ("hf.bert", "hf.t5")
KINDS = ("tiny", "real", "hub")
CASES = [(r, kind) for r in RECIPES for kind in KINDS]
MODEL_TYPE = {"hf.bert": "bert", "hf.t5": "t5"}
T5_TIED = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight")


def config_of(recipe: str, kind: str) -> dict[str, Any]:
    return dict({"tiny": TINY, "real": REAL, "hub": HUB}[kind][recipe])


def hf_config(recipe: str, given: Mapping[str, Any]) -> Any:
    kwargs = {k: v for k, v in given.items() if k != "model_type"}
    return transformers.AutoConfig.for_model(MODEL_TYPE[recipe], **kwargs)


def hf_model(recipe: str, given: Mapping[str, Any], device: str = "cpu") -> Any:
    auto = transformers.AutoModel if recipe == "hf.bert" else transformers.AutoModelForSeq2SeqLM
    with torch.device(device):
        return auto.from_config(hf_config(recipe, given))


def shapes(members: list[Member]) -> dict[str, tuple[int, ...]]:
    return {m.name: tuple(m.shape) for m in members}


def state_shapes(model: Any) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


# --- the law table, read from transformers 5.24.0's source (not from service.recipes) ----------
# modeling_utils.py:2311      std = config.initializer_range or 0.02
# modeling_utils.py:2320-24   nn.Linear: weight normal_(0, std); bias zeros_
# modeling_utils.py:2331-35   nn.Embedding: normal_(0, std); weight[padding_idx] zeros_
# modeling_utils.py:2341-50   *LayerNorm*: weight ones_, bias zeros_
# bert/modeling_bert.py:59-61 only word_embeddings gets padding_idx=config.pad_token_id
# bert/modeling_bert.py:66-67 position_ids, token_type_ids: nn.Buffer(persistent=False)
# t5/modeling_t5.py:570       factor = config.initializer_factor
# t5/modeling_t5.py:571-572   T5LayerNorm: constant_(weight, factor * 1.0)
# t5/modeling_t5.py:577       shared: normal_(0, factor * 1.0)
# t5/modeling_t5.py:595-598   wi: factor * d_model**-0.5; wo: factor * d_ff**-0.5
# t5/modeling_t5.py:602-608   wi_0, wi_1: factor * d_model**-0.5; wo: factor * d_ff**-0.5
# t5/modeling_t5.py:615-620   q: factor * (d_model*d_kv)**-0.5; k, v: factor * d_model**-0.5;
#                             o: factor * (n_heads*d_kv)**-0.5; relative_attention_bias:
#                             factor * d_model**-0.5
# t5/modeling_t5.py:904-908   embed_tokens (both) and lm_head are shared.weight
# t5/configuration_t5.py:81-82 tie_word_embeddings forced True (578-579 never runs)
# No init here truncates: every normal is init.normal_.
Law = tuple[str, float, tuple[int, ...]]  # kind, std (normal) or value (constant), zero rows


def bert_law(name: str, cfg: Any) -> Law:
    std = cfg.initializer_range or 0.02
    if name.endswith(".bias"):
        return "constant", 0.0, ()
    if name.endswith("LayerNorm.weight"):
        return "constant", 1.0, ()
    pad = cfg.pad_token_id
    if name == "embeddings.word_embeddings.weight" and pad is not None:
        return "normal", std, (pad % cfg.vocab_size,)
    return "normal", std, ()


def t5_law(name: str, cfg: Any) -> Law:
    f, d, kv, h = cfg.initializer_factor, cfg.d_model, cfg.d_kv, cfg.num_heads
    if name in T5_TIED:
        assert cfg.tie_word_embeddings  # configuration_t5.py:82, whatever the config said
        return "tied", 0.0, ()
    if name.endswith("layer_norm.weight"):
        return "constant", f * 1.0, ()
    leaf = name.removesuffix(".weight").rsplit(".", 1)[-1]
    std = {
        "shared": f * 1.0,
        "q": f * ((d * kv) ** -0.5),
        "k": f * (d**-0.5),
        "v": f * (d**-0.5),
        "o": f * ((h * kv) ** -0.5),
        "relative_attention_bias": f * (d**-0.5),
        "wi": f * (d**-0.5),
        "wi_0": f * (d**-0.5),
        "wi_1": f * (d**-0.5),
        "wo": f * (cfg.d_ff**-0.5),
    }[leaf]
    return "normal", std, ()


def expected_law(recipe: str, name: str, cfg: Any) -> Law:
    return bert_law(name, cfg) if recipe == "hf.bert" else t5_law(name, cfg)


def kind_of(m: Member) -> str:
    """tied, normal, or constant (zeros, ones and constant(value) alike: `constant_value`)."""
    if m.tied_to is not None:
        return "tied"
    return "constant" if m.scheme in ("zeros", "ones", "constant") else m.scheme


def constant_value(m: Member) -> float | None:
    return {"zeros": 0.0, "ones": 1.0}.get(m.scheme, m.params.value)


# --- names, shapes, counts -------------------------------------------------------------------


@pytest.mark.parametrize(("recipe", "kind"), CASES)
def test_names_and_shapes_are_the_models_state_dict(recipe: str, kind: str) -> None:
    given = config_of(recipe, kind)
    members, _ = recipes.members(recipe, given)
    model = hf_model(recipe, given, "meta")
    assert type(model).__name__ == recipes.lookup(recipe).model
    assert shapes(members) == state_shapes(model)
    assert len(members) == len(model.state_dict())  # no name twice
    assert recipes.count(recipe, given) == len(members)


@pytest.mark.parametrize(
    ("recipe", "config"),
    [
        ("hf.bert", {"pad_token_id": None, "num_hidden_layers": 0}),
        ("hf.bert", {"pad_token_id": -1, "hidden_act": "relu", "num_hidden_layers": 1}),
        ("hf.bert", {"is_decoder": True, "num_hidden_layers": 1}),
        ("hf.t5", {"feed_forward_proj": "relu", "is_gated_act": True, "num_layers": 1}),
        ("hf.t5", {"feed_forward_proj": "gated-gelu", "is_gated_act": False, "num_layers": 1}),
        ("hf.t5", {"feed_forward_proj": "gated-silu", "dense_act_fn": "relu", "num_layers": 1}),
        ("hf.t5", {"num_layers": 0, "num_decoder_layers": 1}),
        ("hf.t5", {"num_layers": 1, "num_decoder_layers": 0}),
        ("hf.t5", {"num_layers": 0, "tie_word_embeddings": False}),
    ],
)  # fmt: skip
def test_variants_have_the_models_names_and_shapes(recipe: str, config: dict[str, Any]) -> None:
    members, ignored = recipes.members(recipe, config)
    assert ignored == ()
    model = hf_model(recipe, config, "meta")
    assert shapes(members) == state_shapes(model)
    assert recipes.count(recipe, config) == len(members)


@pytest.mark.parametrize(("recipe", "params"), [("hf.bert", 109_482_240), ("hf.t5", 60_506_624)])
def test_the_stacks_defaults_are_bert_base_and_t5_small(recipe: str, params: int) -> None:
    """{} is the stack's default config: bert-base-uncased (110M), t5-small (60.5M)."""
    members, ignored = recipes.members(recipe, {})
    assert ignored == ()
    model = hf_model(recipe, {}, "meta")
    assert shapes(members) == state_shapes(model)
    untied = [m for m in members if m.tied_to is None]
    assert sum(torch.Size(m.shape).numel() for m in untied) == params


def test_berts_buffers_are_not_in_its_state_dict() -> None:
    """position_ids and token_type_ids (integer buffers) are persistent=False in 5.24."""
    model = hf_model("hf.bert", TINY["hf.bert"], "meta")
    buffers = {name for name, _ in model.named_buffers()}
    assert buffers == {"embeddings.position_ids", "embeddings.token_type_ids"}
    assert not buffers & set(model.state_dict())


@pytest.mark.parametrize("layers", [0, 1, 5])
@pytest.mark.parametrize("flag", [False, True])
def test_count_is_the_expansion(layers: int, flag: bool) -> None:
    configs: dict[str, dict[str, Any]] = {
        "hf.bert": {"num_hidden_layers": layers, "is_decoder": flag, "add_cross_attention": flag},
        "hf.t5": {"num_layers": layers, "num_decoder_layers": (layers + 2) if flag else None,
                  "feed_forward_proj": "gated-gelu" if flag else "relu"},
    }  # fmt: skip
    for recipe, config in configs.items():
        assert recipes.count(recipe, config) == len(recipes.members(recipe, config)[0])


def test_activations_are_the_parameter_free_entries_of_act2fn() -> None:
    from transformers.activations import ACT2FN

    free = sorted(k for k in ACT2FN if not list(ACT2FN[k].state_dict()))
    assert sorted(get_args(hf.Activation)) == free
    assert {"prelu", "xielu"} <= set(ACT2FN) - set(free)
    assert sorted(get_args(hf_encoders.FeedForward)) == sorted(free + [f"gated-{a}" for a in free])


# --- laws ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("recipe", "kind"), CASES)
def test_each_law_is_what_init_weights_applies(recipe: str, kind: str) -> None:
    """The recipe's law of every tensor equals the table read from transformers' source, and the
    table holds for the model transformers initializes (constants, zero rows, ties)."""
    given = config_of(recipe, kind)
    cfg = hf_config(recipe, given)
    torch.manual_seed(0)
    model = hf_model(recipe, given)
    state = model.state_dict()
    for m in recipes.members(recipe, given)[0]:
        law, value, rows = expected_law(recipe, m.name, cfg)
        assert kind_of(m) == law, m.name
        assert m.convention == "torch"
        real = state[m.name].double()
        if law == "normal":
            assert m.params.std == value, m.name  # computed as transformers does: exact
            assert (m.params.mean, m.params.a, m.params.b) == (0.0, None, None), m.name
            assert m.zero_rows == rows, m.name
            assert all(not real[r].any() for r in rows), m.name
            assert real.std() > 0, m.name
        elif law == "constant":
            assert constant_value(m) == value, m.name
            assert torch.all(real == torch.tensor(value, dtype=state[m.name].dtype)), m.name
        else:
            ptr = state[m.name].data_ptr()
            same = sorted(k for k, v in state.items() if v.data_ptr() == ptr)
            assert m.tied_to == "shared.weight"
            assert same == sorted(["shared.weight", *T5_TIED])


def test_t5_ties_lm_head_even_when_the_config_says_not_to() -> None:
    """flan-t5's config.json says tie_word_embeddings false; 5.24 ties all the same."""
    given = {**HUB["hf.t5"], "num_layers": 1, "num_decoder_layers": 1}
    model = hf_model("hf.t5", given, "meta")
    assert model.lm_head.weight is model.shared.weight
    assert model.decoder.embed_tokens.weight is model.shared.weight
    by = {m.name: m for m in recipes.members("hf.t5", given)[0]}
    assert {name: by[name].tied_to for name in T5_TIED} == dict.fromkeys(T5_TIED, "shared.weight")


@pytest.mark.parametrize(("recipe", "kind"), CASES)
def test_ignored_fields_are_those_it_does_not_read(recipe: str, kind: str) -> None:
    given = config_of(recipe, kind)
    found = recipes.lookup(recipe).configure(given)
    read = {f["name"] for f in recipes.lookup(recipe).fields()} | {"model_type"}
    assert set(found.ignored) == set(given) - read
    if kind != "tiny":
        assert "architectures" in found.ignored
    assert found.dtype == {"tiny": None, "real": REAL[recipe]["dtype"], "hub": HUB[recipe].get(
        "torch_dtype")}[kind]  # fmt: skip


# --- over HTTP: the bundle against the real model ---------------------------------------------

SEEDS = (11, 12, 13, 14)  # the bundle's seeds; the model's: torch.manual_seed(0 … 3)
SMALL = 2000  # a tensor with fewer elements is pooled over every seed for its KS test


def describe(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/bundles/describe", json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def kept(tensor: torch.Tensor, rows: tuple[int, ...]) -> torch.Tensor:
    """The tensor's values, its zero rows left out, as float64."""
    keep = [r for r in range(tensor.shape[0]) if r not in rows]
    return tensor.double()[keep].flatten()


def ks_p(ours: list[torch.Tensor], theirs: list[torch.Tensor]) -> float:
    return float(scipy.stats.ks_2samp(torch.cat(ours).numpy(), torch.cat(theirs).numpy()).pvalue)


def check_member(t: dict[str, Any], data: bytes, law: Law) -> None:
    """The describe entry's plan is the law (check_law from the causal LMs' test; a constant
    plan, zeros and ones included, has mean = the value); a tied member holds its source's
    bytes."""
    kind, value, _ = law
    if kind == "constant":
        assert (t["plan"]["kind"], t["plan"]["mean"], t["tied_to"]) == ("constant", value, None)
        assert t["plan"]["stddev"] is None
        return
    check_law(t, law)
    if kind == "tied":
        assert member_bytes(data, t["name"]) == member_bytes(data, t["tied_to"])


@pytest.mark.parametrize(("recipe", "kind"), CASES)
def test_a_bundle_loads_strictly_and_draws_as_the_model_does(
    client: TestClient, recipe: str, kind: str
) -> None:
    config = config_of(recipe, kind)
    cfg = hf_config(recipe, config)
    described = [describe(client, {"seed": s, "recipe": recipe, "config": config}) for s in SEEDS]
    blobs = [client.get(d["url"]).content for d in described]
    bundles = [safetensors.torch.load(b) for b in blobs]
    models = []
    for s in range(len(SEEDS)):
        torch.manual_seed(s)
        models.append(hf_model(recipe, config).state_dict())
    theirs = models[0]
    assert {k: (v.dtype, v.shape) for k, v in bundles[0].items()} == {
        k: (v.dtype, v.shape) for k, v in theirs.items()
    }
    loaded = hf_model(recipe, config)
    loaded.load_state_dict(bundles[0], strict=True)
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, bundles[0][name]), name
    for t in described[0]["tensors"]:
        law = expected_law(recipe, t["name"], cfg)
        check_member(t, blobs[0], law)
        name, (kind_, _, rows) = t["name"], law
        if kind_ == "constant":
            assert torch.equal(bundles[0][name], theirs[name]), name  # exact, in the dtype
        elif kind_ == "normal":
            n = 1 if theirs[name].numel() >= SMALL else len(SEEDS)
            p = ks_p([kept(b[name], rows) for b in bundles[:n]],
                     [kept(m[name], rows) for m in models[:n]])  # fmt: skip
            assert p > 1e-4, (name, p)
            assert all(not b[name][r].any() for b in bundles for r in rows), name


def test_the_ks_check_tells_a_wrong_std_apart(client: TestClient) -> None:
    """The test above has power: T5's q (std f/√(d_model·d_kv)) is not its k (f/√d_model)."""
    config = config_of("hf.t5", "tiny")
    d = describe(client, {"seed": SEEDS[0], "recipe": "hf.t5", "config": config})
    ours = safetensors.torch.load(client.get(d["url"]).content)
    torch.manual_seed(0)
    theirs = hf_model("hf.t5", config).state_dict()
    q, k = (f"encoder.block.1.layer.0.SelfAttention.{x}.weight" for x in "qk")
    assert ks_p([kept(ours[q], ())], [kept(theirs[q], ())]) > 1e-4
    assert ks_p([kept(ours[q], ())], [kept(theirs[k], ())]) < 1e-4


@pytest.mark.parametrize(
    ("recipe", "config", "text"),
    [
        ("hf.bert", {"hidden_size": 0}, "hf.bert config needs hidden_size >= 1"),
        ("hf.bert", {"hidden_size": 50, "num_attention_heads": 3},
         "hidden_size=50 must be divisible by num_attention_heads=3"),
        ("hf.bert", {"pad_token_id": 30522}, "pad_token_id=30522 must be a row of the vocabulary"),
        ("hf.bert", {"hidden_act": "prelu"}, "unknown hf.bert config argument hidden_act 'prelu'"),
        ("hf.bert", {"add_cross_attention": True}, "add_cross_attention needs is_decoder"),
        ("hf.bert", {"initializer_range": -0.1}, "initializer_range >= 0"),
        ("hf.bert", {"type_vocab_size": "2"},
         "hf.bert config argument type_vocab_size must be an integer"),
        ("hf.bert", {"max_position_embeddings": 0}, "max_position_embeddings >= 1"),
        ("hf.bert", {"is_decoder": 1}, "is_decoder must be true or false"),
        ("hf.bert", {"model_type": "t5"}, "model_type must be 'bert'"),
        ("hf.t5", {"feed_forward_proj": "gated-prelu"},
         "unknown hf.t5 config argument feed_forward_proj 'gated-prelu'"),
        ("hf.t5", {"feed_forward_proj": "swiglu"}, "argument feed_forward_proj 'swiglu'"),
        ("hf.t5", {"dense_act_fn": "xielu"}, "argument dense_act_fn 'xielu'"),
        ("hf.t5", {"initializer_factor": -1.0}, "initializer_factor >= 0"),
        ("hf.t5", {"d_kv": 0}, "d_kv >= 1"),
        ("hf.t5", {"num_decoder_layers": -1}, "num_decoder_layers >= 0"),
        ("hf.t5", {"num_layers": 10001}, "num_layers >= 0 and <= 10000"),
        ("hf.t5", {"relative_attention_num_buckets": 0}, "relative_attention_num_buckets >= 1"),
        ("hf.t5", {"is_gated_act": "yes"}, "is_gated_act must be true or false or null"),
        ("hf.t5", {"tie_word_embeddings": 0}, "tie_word_embeddings must be true or false"),
        ("hf.t5", {"model_type": "bert"}, "model_type must be 't5'"),
    ],
)  # fmt: skip
def test_bad_values_are_422s_naming_the_field(
    client: TestClient, recipe: str, config: dict[str, Any], text: str
) -> None:
    r = client.post("/v1/bundles/describe", json={"recipe": recipe, "config": config})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert text in r.json()["detail"]


# --- the catalogue's sources ------------------------------------------------------------------

# what each group's cited lines must say (a group is found by a piece of its `tensors`)
SAYS = {
    ("hf.bert", "word_embeddings"): ["padding_idx=config.pad_token_id", "module.padding_idx"],
    ("hf.bert", "position_embeddings"): ["nn.Embedding(config.max_position_embeddings",
                                         "nn.Embedding(config.type_vocab_size"],
    ("hf.bert", "pooler.dense"): ["self.query = nn.Linear", "init.normal_(module.weight"],
    ("hf.t5", "shared.weight (vocab"): ["std=factor * 1.0"],
    ("hf.t5", "lm_head"): ['"lm_head.weight": "shared.weight"', "self.tie_word_embeddings = True"],
    ("hf.t5", ".q.weight"): ["(d_model * key_value_proj_dim) ** -0.5"],
    ("hf.t5", "{k,v}"): ["std=factor * (d_model**-0.5)"],
    ("hf.t5", ".o.weight"): ["(n_heads * key_value_proj_dim) ** -0.5"],
    ("hf.t5", "relative_attention_bias"): ["has_relative_attention_bias=bool(i == 0)"],
    ("hf.t5", "wi_0"): ["self.wi_0 = nn.Linear", "config.is_gated_act", "setattr(self, key"],
    ("hf.t5", "wo.weight"): ["(self.config.d_ff) ** -0.5"],
    ("hf.t5", "layer_norm"): ["init.constant_(module.weight, factor * 1.0)"],
}  # fmt: skip


@pytest.mark.parametrize("recipe", RECIPES)
def test_the_cited_sources_say_what_the_groups_say(recipe: str) -> None:
    root = Path(transformers.__file__).parent.parent
    found = recipes.lookup(recipe)
    assert found.version == transformers.__version__
    assert found.model_type == MODEL_TYPE[recipe]
    texts = {g.tensors: cited(g.source, root) for g in found.groups}
    for (r, piece), says in SAYS.items():
        if r != recipe:
            continue
        (text,) = [t for tensors, t in texts.items() if piece in tensors]
        for said in says:
            assert said in text, (recipe, piece, said)
