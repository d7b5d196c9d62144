"""service.recipes: every recipe's count against its expansion, its names and shapes against the
real transformers model (built on the meta device), each tensor's law against a table read from
transformers' `_init_weights` (independent of the recipe code), the refusals, tied members in
`service.bundle`, and the import rule (recipes beside presets)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from service import recipes
from service.bundle import BundleSpec, plan_bundle
from service.config import Settings
from service.engines import Engines
from service.errors import InvalidRequest, SchemeError, ShapeError
from service.plan import Limits
from service.presets.base import Member

transformers = pytest.importorskip(
    "transformers",
    reason="transformers is not installed: pip install transformers==5.24.0 -c <torch pin>",
)
import torch  # noqa: E402

# --- configs: a tiny one per recipe, and a real config.json (to_dict() of transformers 5.24.0,
# sizes made small) -----------------------------------------------------------------------------

TINY: Mapping[str, dict[str, Any]] = {
    "hf.gpt2": {"vocab_size": 300, "n_positions": 32, "n_embd": 48, "n_layer": 4, "n_head": 3,
                "n_inner": 80, "tie_word_embeddings": False},
    "hf.llama": {"vocab_size": 320, "hidden_size": 48, "intermediate_size": 96,
                 "num_hidden_layers": 2, "num_attention_heads": 6, "num_key_value_heads": 2,
                 "pad_token_id": 7, "tie_word_embeddings": True, "attention_bias": True,
                 "mlp_bias": True},
    "hf.mistral": {"vocab_size": 256, "hidden_size": 32, "intermediate_size": 64,
                   "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1,
                   "head_dim": 24, "pad_token_id": 255},
    "hf.qwen2": {"vocab_size": 256, "hidden_size": 32, "intermediate_size": 64,
                 "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2,
                 "pad_token_id": 3, "initializer_range": 0.05},
}  # fmt: skip
_LABELS = {"id2label": {"0": "LABEL_0", "1": "LABEL_1"}, "label2id": {"LABEL_0": 0, "LABEL_1": 1}}
_BASE = {"transformers_version": "5.24.0", "output_hidden_states": False, "return_dict": True,
         "chunk_size_feed_forward": 0, "is_encoder_decoder": False, **_LABELS,
         "problem_type": None, "_name_or_path": "", "output_attentions": False}  # fmt: skip
REAL: Mapping[str, dict[str, Any]] = {
    "hf.gpt2": {**_BASE, "architectures": ["GPT2LMHeadModel"], "dtype": None, "vocab_size": 512,
                "n_positions": 128, "n_embd": 64, "n_layer": 3, "n_head": 4, "n_inner": None,
                "activation_function": "gelu_new", "resid_pdrop": 0.1, "embd_pdrop": 0.1,
                "attn_pdrop": 0.1, "layer_norm_epsilon": 1e-05, "initializer_range": 0.02,
                "summary_type": "cls_index", "summary_use_proj": True, "summary_activation": None,
                "summary_proj_to_labels": True, "summary_first_dropout": 0.1,
                "scale_attn_weights": True, "use_cache": True, "bos_token_id": 511,
                "eos_token_id": 511, "pad_token_id": None, "scale_attn_by_inverse_layer_idx": False,
                "reorder_and_upcast_attn": False, "add_cross_attention": False,
                "tie_word_embeddings": True, "model_type": "gpt2"},
    # Llama-3-8B's config.json (GQA 4:1, llama3 rope, bfloat16), with small sizes
    "hf.llama": {**_BASE, "architectures": ["LlamaForCausalLM"], "dtype": "bfloat16",
                 "vocab_size": 1024, "hidden_size": 64, "intermediate_size": 224,
                 "num_hidden_layers": 2, "num_attention_heads": 8, "num_key_value_heads": 2,
                 "hidden_act": "silu", "max_position_embeddings": 8192, "initializer_range": 0.02,
                 "rms_norm_eps": 1e-05, "use_cache": True, "pad_token_id": None,
                 "bos_token_id": 1000, "eos_token_id": 1001, "pretraining_tp": 1,
                 "tie_word_embeddings": False,
                 "rope_parameters": {"rope_theta": 500000.0, "rope_type": "llama3", "factor": 8.0,
                                     "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                     "original_max_position_embeddings": 8192},
                 "attention_bias": False, "attention_dropout": 0.0, "mlp_bias": False,
                 "head_dim": 8, "model_type": "llama"},
    "hf.mistral": {**_BASE, "architectures": ["MistralForCausalLM"], "dtype": "bfloat16",
                   "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 192,
                   "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                   "head_dim": 16, "hidden_act": "silu", "max_position_embeddings": 131072,
                   "initializer_range": 0.02, "rms_norm_eps": 1e-06, "use_cache": True,
                   "pad_token_id": None, "bos_token_id": 1, "eos_token_id": 2,
                   "tie_word_embeddings": False,
                   "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"},
                   "sliding_window": 4096, "attention_dropout": 0.0, "model_type": "mistral"},
    "hf.qwen2": {**_BASE, "architectures": ["Qwen2ForCausalLM"], "dtype": "bfloat16",
                 "vocab_size": 1200, "hidden_size": 64, "intermediate_size": 160,
                 "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                 "hidden_act": "silu", "max_position_embeddings": 32768, "initializer_range": 0.02,
                 "rms_norm_eps": 1e-06, "use_cache": True, "tie_word_embeddings": True,
                 "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"},
                 "use_sliding_window": False, "sliding_window": None, "max_window_layers": 2,
                 "layer_types": ["full_attention", "full_attention"], "attention_dropout": 0.0,
                 "pad_token_id": None, "bos_token_id": 1100, "eos_token_id": 1100,
                 "model_type": "qwen2"},
}  # fmt: skip
HF_CAUSAL = tuple(TINY)  # the transformers causal LMs this file checks; other stacks: their files
CASES = [(r, kind) for r in HF_CAUSAL for kind in ("tiny", "real")]
MODEL_TYPE = {"hf.gpt2": "gpt2", "hf.llama": "llama", "hf.mistral": "mistral", "hf.qwen2": "qwen2"}


def config_of(recipe: str, kind: str) -> dict[str, Any]:
    return dict(TINY[recipe] if kind == "tiny" else REAL[recipe])


def hf_config(recipe: str, given: Mapping[str, Any]) -> Any:
    kwargs = {k: v for k, v in given.items() if k != "model_type"}
    return transformers.AutoConfig.for_model(MODEL_TYPE[recipe], **kwargs)


def hf_model(recipe: str, given: Mapping[str, Any], device: str = "cpu") -> Any:
    with torch.device(device):
        return transformers.AutoModelForCausalLM.from_config(hf_config(recipe, given))


# --- the law table, read from transformers 5.24.0's source (not from service.recipes) ----------
# modeling_utils.py:2311     std = config.initializer_range or 0.02
# modeling_utils.py:2320-24  nn.Linear: weight normal_(0, std); bias zeros_
# modeling_utils.py:2331-35  nn.Embedding: normal_(0, std); weight[padding_idx] zeros_
# modeling_utils.py:2341-50  *LayerNorm*/*RMSNorm*: weight ones_, bias zeros_
# gpt2/modeling_gpt2.py:435-438  Conv1D: normal_(0, config.initializer_range) (no `or`); bias 0
# gpt2/modeling_gpt2.py:446-449  GPT2Attention/GPT2MLP: c_proj.weight normal_(0, ir/√(2·n_layer))
# _tied_weights_keys: gpt2 :637, llama :413, mistral :386, qwen2 :401 -> lm_head is the embedding
# No init in these models truncates: every normal is torch.nn.init.normal_.


def expected_law(recipe: str, name: str, cfg: Any) -> tuple[str, float, tuple[int, ...]]:
    """(kind, std, zero rows) that transformers gives `name`: kind normal, zeros, ones, tied."""
    ir = float(cfg.initializer_range)
    std = ir or 0.02
    if name == "lm_head.weight" and cfg.tie_word_embeddings:
        return "tied", 0.0, ()
    if name.endswith(".bias"):
        return "zeros", 0.0, ()
    if "ln_" in name or "norm" in name:
        return "ones", 0.0, ()
    if recipe == "hf.gpt2" and name.endswith("c_proj.weight"):
        return "normal", ir / math.sqrt(2 * cfg.n_layer), ()
    if recipe == "hf.gpt2" and name.endswith(("c_attn.weight", "c_fc.weight")):
        return "normal", ir, ()
    pad = getattr(cfg, "pad_token_id", None)
    if name == "model.embed_tokens.weight" and pad is not None:
        return "normal", std, (pad % cfg.vocab_size,)
    return "normal", std, ()


def kind_of(m: Member) -> str:
    if m.tied_to is not None:
        return "tied"
    return m.scheme


# --- tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("recipe", "kind"), CASES)
def test_names_and_shapes_are_the_models_state_dict(recipe: str, kind: str) -> None:
    given = config_of(recipe, kind)
    members, _ = recipes.members(recipe, given)
    model = hf_model(recipe, given, "meta")
    theirs = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {m.name: tuple(m.shape) for m in members} == theirs
    assert recipes.count(recipe, given) == len(members)


@pytest.mark.parametrize("recipe", HF_CAUSAL)
def test_the_stacks_defaults_are_the_recipes(recipe: str) -> None:
    """{} is the stack's default config: GPT-2 124M, Llama-2-7B-like, Mistral-7B, Qwen2-7B."""
    members, ignored = recipes.members(recipe, {})
    assert ignored == ()
    model = hf_model(recipe, {}, "meta")
    assert {m.name: tuple(m.shape) for m in members} == {
        k: tuple(v.shape) for k, v in model.state_dict().items()
    }


def test_a_llama_3_8b_has_its_names_and_shapes() -> None:
    config = {"vocab_size": 128256, "hidden_size": 4096, "intermediate_size": 14336,
              "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
              "max_position_embeddings": 8192, "rope_theta": 500000.0}  # fmt: skip
    members, ignored = recipes.members("hf.llama", config)
    assert ignored == ("max_position_embeddings", "rope_theta")
    model = hf_model("hf.llama", config, "meta")
    assert {m.name: tuple(m.shape) for m in members} == {
        k: tuple(v.shape) for k, v in model.state_dict().items()
    }
    assert sum(math.prod(m.shape) for m in members) == 8_030_261_248


@pytest.mark.parametrize(("recipe", "kind"), CASES)
def test_each_law_is_what_init_weights_applies(recipe: str, kind: str) -> None:
    """The recipe's law of every tensor equals the table read from transformers' source, and the
    table holds for the real model transformers initializes (tied: the same parameter)."""
    given = config_of(recipe, kind)
    cfg = hf_config(recipe, given)
    torch.manual_seed(0)
    model = hf_model(recipe, given)
    state = model.state_dict()
    for m in recipes.members(recipe, given)[0]:
        law, std, rows = expected_law(recipe, m.name, cfg)
        assert kind_of(m) == law, m.name
        assert m.convention == "torch"
        if law == "normal":
            assert m.params.std == pytest.approx(std, rel=1e-15), m.name
            assert (m.params.mean, m.params.a, m.params.b) == (0.0, None, None), m.name
            assert m.zero_rows == rows, m.name
        real = state[m.name].double()
        if law == "tied":
            assert model.lm_head.weight is model.get_input_embeddings().weight
            ptr = state[m.name].data_ptr()
            same = [k for k, v in state.items() if v.data_ptr() == ptr and k != m.name]
            assert same == [m.tied_to]
        elif law in ("zeros", "ones"):
            assert torch.all(real == (law == "ones")), m.name
        else:
            for row in rows:
                assert not real[row].any(), m.name
            if real.numel() >= 1000:
                tol = 6 / math.sqrt(real.numel()) + 0.02
                assert float(real.std()) == pytest.approx(std, rel=tol), m.name
                assert abs(float(real.mean())) < 6 * std / math.sqrt(real.numel()), m.name


@pytest.mark.parametrize(("recipe", "kind"), CASES)
def test_ignored_fields_are_those_it_does_not_read(recipe: str, kind: str) -> None:
    given = config_of(recipe, kind)
    found = recipes.lookup(recipe).configure(given)
    read = {f["name"] for f in recipes.lookup(recipe).fields()} | {"model_type"}
    assert set(found.ignored) == set(given) - read
    if kind == "real":
        assert "architectures" in found.ignored
        assert "bos_token_id" in found.ignored
        assert recipe == "hf.gpt2" or "rope_parameters" in found.ignored
        assert found.dtype == (None if recipe == "hf.gpt2" else "bfloat16")


@pytest.mark.parametrize(
    ("recipe", "config", "error", "text"),
    [
        ("hf.llama", {"num_hidden_layers": "2"}, SchemeError,
         "hf.llama config argument num_hidden_layers must be an integer"),
        ("hf.llama", {"num_hidden_layers": -1}, SchemeError,
         "hf.llama config needs num_hidden_layers >= 0"),
        ("hf.gpt2", {"initializer_range": -0.1}, SchemeError, "initializer_range >= 0"),
        ("hf.gpt2", {"model_type": "llama"}, SchemeError, "model_type must be 'gpt2'"),
        ("hf.llama", {"dtype": "int8"}, SchemeError, "unknown hf.llama config argument dtype"),
        ("hf.llama", {"tie_word_embeddings": 1}, SchemeError, "must be true or false"),
        ("hf.gpt2", {"n_embd": 10, "n_head": 3}, ShapeError, "divisible by n_head"),
        ("hf.gpt2", {"add_cross_attention": True}, ShapeError, "cross-attention"),
        # prelu holds a weight of its own (transformers/activations.py), which the recipe lacks
        ("hf.llama", {"hidden_act": "prelu"}, SchemeError,
         "unknown hf.llama config argument hidden_act 'prelu'; expected one of gelu"),
        ("hf.gpt2", {"activation_function": "xielu"}, SchemeError, "activation_function 'xielu'"),
        ("hf.llama", {"num_attention_heads": 6, "num_key_value_heads": 4, "hidden_size": 48},
         ShapeError, "divisible by num_key_value_heads"),
        ("hf.qwen2", {"pad_token_id": 151936}, ShapeError, "must be a row of the vocabulary"),
        ("hf.gpt3", {}, SchemeError, "unknown recipe 'hf.gpt3'; expected one of"),
    ],
)  # fmt: skip
def test_bad_configs_are_refused_naming_the_field(
    recipe: str, config: dict[str, Any], error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=None) as caught:
        recipes.members(recipe, config)
    assert text in str(caught.value)


@pytest.mark.parametrize("layers", [0, 1, 7, 96])
@pytest.mark.parametrize("bias", [False, True])
def test_count_is_the_expansion(layers: int, bias: bool) -> None:
    for recipe in HF_CAUSAL:
        key = "n_layer" if recipe == "hf.gpt2" else "num_hidden_layers"
        config: dict[str, Any] = {key: layers, "tie_word_embeddings": bias}
        if recipe == "hf.llama":
            config |= {"attention_bias": bias, "mlp_bias": not bias}
        assert recipes.count(recipe, config) == len(recipes.members(recipe, config)[0])


def _plan(members: list[Member], seed: int = 3) -> Any:
    s = Settings()
    spec = BundleSpec(tuple(members), seed)
    return plan_bundle(
        spec, Limits(s.max_elements, s.max_bytes), Engines(s.engine, s.devices, s.threads)
    )


def test_a_tied_member_is_its_sources_plan_under_its_own_name() -> None:
    members = recipes.members("hf.gpt2", {"n_layer": 1, "vocab_size": 50, "n_embd": 8,
                                          "n_head": 2, "n_positions": 4})[0]  # fmt: skip
    b = _plan(members)
    by = {e.label: e for e in b.entries}
    assert by["lm_head.weight"].plan is by["transformer.wte.weight"].plan
    assert by["lm_head.weight"].tied_to == "transformer.wte.weight"
    assert b.canonical()["tied"] == {"lm_head.weight": "transformer.wte.weight"}
    untied = _plan([m for m in members if m.tied_to is None])
    assert "tied" not in untied.canonical()
    assert untied.etag != b.etag
    header = json.loads(b.header[8:])
    assert header["lm_head.weight"]["shape"] == header["transformer.wte.weight"]["shape"]
    plan = json.loads(header["__metadata__"]["weightgen.plan.lm_head.weight"])
    assert plan.pop("tied_to") == "transformer.wte.weight"
    assert plan == json.loads(header["__metadata__"]["weightgen.plan.transformer.wte.weight"])


@pytest.mark.parametrize(
    ("tied", "text"),
    [
        (Member("b", (2, 2), "zeros", "torch", tied_to="c"), "not an untied member"),
        (Member("b", (2, 3), "zeros", "torch", tied_to="a"), "of another shape"),
    ],
)
def test_ties_must_name_an_untied_member_of_the_same_shape(tied: Member, text: str) -> None:
    with pytest.raises(InvalidRequest, match=text):
        _plan([Member("a", (2, 2), "ones", "torch"), tied])
    with pytest.raises(InvalidRequest, match="not an untied member"):
        _plan([Member("a", (2, 2), "ones", "torch", tied_to="b"),
               Member("b", (2, 2), "zeros", "torch", tied_to="a")])  # fmt: skip


def test_the_catalogue_cites_lines_of_the_installed_source() -> None:
    root = Path(transformers.__file__).parent.parent
    for r in (x for x in recipes.RECIPES.values() if x.stack == "transformers"):
        assert r.version == transformers.__version__
        assert r.groups
        for g in r.groups:
            for cite in g.source.split("; "):
                path, _, lines = cite.partition(":")
                text = (root / path).read_text().splitlines()
                for part in lines.split(", "):
                    first, _, last = part.partition("-")
                    assert 1 <= int(first) <= int(last or first) <= len(text), (r.name, cite)
