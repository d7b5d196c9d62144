"""service.recipes.megatron against the real megatron-core 0.19.2 GPTModel, built on the CPU
(`use_cpu_initialization=True`, the local layer spec) in a gloo process group of world size 1
made by a module fixture: names and shapes (less `_extra_state`), the bundle over HTTP loaded
with strict=True, dtypes, every random tensor KS-tested against megatron's own init of the same
config (pooled over seeds), constants exact, the laws against megatron's own init methods, the
refusals (422s naming the field) and the cited lines of the installed package."""

from __future__ import annotations

import importlib.metadata
import math
import warnings
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service import recipes
from service.errors import SchemeError, ShapeError

pytest.importorskip("torch", reason="torch is not installed: pip install -e .[dev]")
import safetensors.torch
import torch
from scipy import stats

# megatron-core warns on import, about what this machine lacks (TransformerEngine, Apex) and
# about torch.jit.script; each message is ignored by name, only while importing it
IMPORT_WARNINGS = (
    (UserWarning, r"Apex is not installed\. Falling back to Torch Norm"),
    (UserWarning, r"Transformer Engine and Apex are not installed\. Falling back to"),
    (DeprecationWarning, r"`torch\.jit\.script_method` is deprecated"),
    (DeprecationWarning, r"The following imports from `dynamic_context\.py` will be removed"),
)
with warnings.catch_warnings():
    for category, message in IMPORT_WARNINGS:
        warnings.filterwarnings("ignore", message, category)
    core = pytest.importorskip(
        "megatron.core",
        reason="megatron-core is not installed: make installs megatron-core==0.19.2 with "
        "--no-deps --ignore-requires-python (docs/recipes.md, Testing)",
    )
    from megatron.core import parallel_state
    from megatron.core.models.gpt.gpt_layer_specs import (
        get_gpt_layer_local_spec,
    )
    from megatron.core.models.gpt.gpt_model import GPTModel
    from megatron.core.transformer.transformer_config import (
        TransformerConfig,
    )

pytestmark = [
    # TransformerConfig's own default cuda_graph_modules="full" (transformer_config.py:1047)
    # trips its deprecation (:2414-2418); the local spec's MLP is built without ffn_hidden_size
    pytest.mark.filterwarnings("ignore:full scope is deprecated:UserWarning"),
    pytest.mark.filterwarnings("ignore:MLP requires ffn_hidden_size:DeprecationWarning"),
]

ROOT = Path(core.__file__).parents[2]  # site-packages: the cites start at megatron/
MODEL_ARGS = ("vocab_size", "max_sequence_length", "position_embedding_type",
              "share_embeddings_and_output_weights")  # fmt: skip
SEEDS = range(4)
BASE = {"num_layers": 2, "hidden_size": 32, "num_attention_heads": 4, "vocab_size": 96,
        "max_sequence_length": 16}  # fmt: skip
CONFIGS: Mapping[str, dict[str, Any]] = {
    # GPT-2-like: learned positions, LayerNorm, every bias, untied output layer
    "gpt": {**BASE},
    # Llama-like: RoPE, RMSNorm (q/k norms too), SwiGLU (gate and up fused in linear_fc1), GQA,
    # no biases; an embedding std of its own, which the untied output layer does not take
    "llama": {**BASE, "num_layers": 3, "num_query_groups": 2, "ffn_hidden_size": 48,
              "gated_linear_unit": True, "normalization": "RMSNorm", "add_bias_linear": False,
              "position_embedding_type": "rope", "qk_layernorm": True,
              "embedding_init_method_std": 0.04},
    # Qwen-like: q/k/v bias only, qk_layernorm, shared embeddings, head size apart from d
    "qwen": {**BASE, "add_bias_linear": False, "add_qkv_bias": True, "qk_layernorm": True,
             "kv_channels": 12, "share_embeddings_and_output_weights": True,
             "position_embedding_type": "none", "init_method_std": 0.01,
             "embedding_init_method_std": 0.05},
    # muP, m = 4, untied: the output layer takes the embedding's init
    "mup": {**BASE, "hidden_size": 64, "use_mup": True, "mup_base_hidden_size": 16,
            "embedding_init_method_std": 0.1},
    # muP, m = 2, tied, gated attention output with one key/value head
    "mup-tied": {**BASE, "use_mup": True, "mup_base_hidden_size": 16, "num_query_groups": 1,
                 "share_embeddings_and_output_weights": True, "attention_output_gate": True,
                 "normalization": "RMSNorm", "gated_linear_unit": True},
}  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A gloo process group of one and mcore's model-parallel state (1, 1), then torn down."""
    if torch.distributed.is_initialized():
        pytest.skip("a process group is already initialized in this process")
    store = tmp_path_factory.mktemp("gloo") / "store"
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{store}", rank=0, world_size=1
    )
    try:
        parallel_state.initialize_model_parallel(1, 1)
        yield
    finally:
        parallel_state.destroy_model_parallel()
        torch.distributed.destroy_process_group()
        megatron_state.cache_clear()


def build(config: Mapping[str, Any], seed: int, dtype: Any = torch.float32) -> Any:
    """GPTModel from the flat dict: GPTModel's arguments to it, the rest to TransformerConfig;
    the local spec with the config's qk_layernorm and norm, as Megatron-LM's own builder passes
    them (megatron/training/models/gpt.py:120-130)."""
    args = {k: v for k, v in config.items() if k in MODEL_ARGS}
    fields = {k: v for k, v in config.items() if k not in MODEL_ARGS}
    half = dtype == torch.bfloat16
    cfg = TransformerConfig(use_cpu_initialization=True, params_dtype=dtype, bf16=half, **fields)
    spec = get_gpt_layer_local_spec(normalization=cfg.normalization, qk_layernorm=cfg.qk_layernorm)
    torch.manual_seed(seed)
    return GPTModel(cfg, spec, **args)


@cache
def megatron_state(kind: str, seed: int) -> dict[str, Any]:
    return {k: v for k, v in build(CONFIGS[kind], seed).state_dict().items() if v is not None}


def extra_state(model: Any) -> dict[str, None]:
    """The `_extra_state` entries mcore's state dict holds (None: Column/RowParallelLinear's
    get_extra_state, layers.py:1232-1234); safetensors holds tensors only, so a Megatron user
    adds them back before a strict load (set_extra_state ignores them, layers.py:1229-1230)."""
    found = {k: v for k, v in model.state_dict().items() if k.endswith("._extra_state")}
    assert set(found.values()) == {None}
    return dict.fromkeys(found)


def expected_std(name: str, cfg: Any, config: Mapping[str, Any]) -> float | None:
    """The std of the init method megatron gives `name`, read off its own config's init
    partials (utils.py:828-857); None: a constant (biases 0, norms 1/0)."""
    if name.endswith(".bias") or "layernorm" in name:
        return None
    if name.startswith("embedding."):  # language_model_embedding.py:59, 73
        method = cfg.embedding_init_method
    elif name == "output_layer.weight":  # gpt_model.py:273-277
        shared = config.get("share_embeddings_and_output_weights", False)
        method = cfg.embedding_init_method if cfg.use_mup and not shared else cfg.init_method
    elif name.endswith(("linear_proj.weight", "linear_fc2.weight")):  # attention.py:417, mlp.py:248
        method = cfg.output_layer_init_method
    else:  # linear_qkv (attention.py:1685), linear_fc1 (mlp.py:226)
        method = cfg.init_method
    assert method.func is torch.nn.init.normal_
    assert method.keywords["mean"] == 0.0
    return float(method.keywords["std"])


def bundle(client: TestClient, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    r = client.post("/v1/bundles/describe", json=body)
    assert r.status_code == 200, r.text
    d: dict[str, Any] = r.json()
    data = client.get(d["url"]).content
    assert len(data) == d["content_length"]
    return d, safetensors.torch.load(data)


# --- tests ---------------------------------------------------------------------------------------


@pytest.mark.usefixtures("world")
@pytest.mark.parametrize("kind", list(CONFIGS))
def test_names_and_shapes_are_the_models_state_dict(kind: str) -> None:
    config = CONFIGS[kind]
    members, ignored = recipes.members("megatron.gpt", config)
    assert ignored == ()
    theirs = megatron_state(kind, 0)
    assert {m.name: tuple(m.shape) for m in members} == {
        k: tuple(v.shape) for k, v in theirs.items()
    }
    assert recipes.count("megatron.gpt", config) == len(members)
    assert all(m.tied_to is None for m in members)
    shared = config.get("share_embeddings_and_output_weights", False)
    assert ("output_layer.weight" in theirs) is not shared


@pytest.mark.usefixtures("world")
@pytest.mark.parametrize("kind", list(CONFIGS))
def test_the_bundle_loads_strictly_and_each_law_is_megatrons(client: TestClient, kind: str) -> None:
    config = CONFIGS[kind]
    cfg = build(config, 0).config
    ours: dict[str, list[Any]] = {}
    for seed in SEEDS:
        d, state = bundle(client, {"seed": seed, "recipe": "megatron.gpt", "config": config})
        model = build(config, 100 + seed)
        theirs = megatron_state(kind, seed)
        assert {k: (v.dtype, tuple(v.shape)) for k, v in state.items()} == {
            k: (v.dtype, tuple(v.shape)) for k, v in theirs.items()
        }
        model.load_state_dict({**state, **extra_state(model)}, strict=True)
        for name, value in model.state_dict().items():
            assert value is None or torch.equal(value, state[name]), name
        for t in d["tensors"]:
            std, plan = expected_std(t["name"], cfg, config), t["plan"]
            if std is None:  # constants: exactly megatron's (biases 0, norms 1 and 0)
                assert plan["kind"] == "constant", t["name"]
                assert torch.equal(state[t["name"]], theirs[t["name"]]), t["name"]
                continue
            assert (plan["kind"], plan["mean"], plan["limit"]) == ("normal", 0, None), t["name"]
            assert plan["stddev"] == pytest.approx(std, rel=1e-15), t["name"]
            ours.setdefault(t["name"], []).append(state[t["name"]].flatten())
    for name, values in ours.items():
        real = torch.cat([megatron_state(kind, s)[name].flatten() for s in SEEDS])
        p = stats.ks_2samp(torch.cat(values).numpy(), real.numpy()).pvalue
        assert p > 1e-4, (kind, name, p)


@pytest.mark.usefixtures("world")
def test_the_mup_laws_are_width_scaled_as_megatron_scales_them() -> None:
    """m = 64/16 = 4: hidden weights σ/2, output projections σ/(2·√(2L)), embeddings and the
    untied output layer σ_e (not width-scaled), all read off megatron's config."""
    members = {m.name: m for m in recipes.members("megatron.gpt", CONFIGS["mup"])[0]}
    cfg = build(CONFIGS["mup"], 0).config
    assert cfg.mup_width_mult == 4.0
    sigma, layers = 0.02, 2
    assert members["decoder.layers.0.self_attention.linear_qkv.weight"].params.std == sigma / 2
    assert members["decoder.layers.1.mlp.linear_fc2.weight"].params.std == pytest.approx(
        sigma / (2 * math.sqrt(2 * layers)), rel=1e-15
    )
    assert members["embedding.word_embeddings.weight"].params.std == 0.1
    assert members["output_layer.weight"].params.std == 0.1
    plain = recipes.members("megatron.gpt", {**CONFIGS["mup"], "use_mup": False})[0]
    assert {m.name: m.params.std for m in plain}["output_layer.weight"] == sigma


@pytest.mark.usefixtures("world")
def test_a_bfloat16_bundle_loads_into_a_bfloat16_model(client: TestClient) -> None:
    """params_dtype bfloat16: the parallel layers hold bfloat16 as the bundle does; the torch
    norms and position embeddings mcore builds stay float32 (torch's default dtype) and take
    the bundle's values exactly (Megatron-LM's Float16Module casts them to bf16 for training)."""
    config = CONFIGS["gpt"]
    d, state = bundle(client, {"seed": 5, "recipe": "megatron.gpt", "config": config,
                               "dtype": "bfloat16"})  # fmt: skip
    assert {t["dtype"] for t in d["tensors"]} == {"bfloat16"}
    model = build(config, 0, torch.bfloat16)
    model.load_state_dict({**state, **extra_state(model)}, strict=True)
    kept = {k: v for k, v in model.state_dict().items() if v is not None}
    assert {k for k, v in kept.items() if v.dtype == torch.float32} == {
        k for k in kept if "layernorm" in k or k == "embedding.position_embeddings.weight"
    }
    for name, value in kept.items():
        assert torch.equal(value, state[name].to(value.dtype)), name


@pytest.mark.usefixtures("world")
@pytest.mark.parametrize(
    ("change", "megatron_error"),
    [
        ({"layernorm_zero_centered_gamma": True}, "zero_centered_gamma not supported"),
        ({"num_layers": 0}, "float division by zero"),
        ({"hidden_size": 3}, "float division by zero"),
    ],
)
def test_what_megatron_cannot_build_is_refused(change: dict[str, Any], megatron_error: str) -> None:
    config = {**CONFIGS["gpt"], **change}
    with pytest.raises((AssertionError, ZeroDivisionError), match=megatron_error):
        build(config, 0)
    with pytest.raises((SchemeError, ShapeError)):
        recipes.members("megatron.gpt", config)


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"num_layers": 0}, "megatron.gpt config needs num_layers >= 1 and <= 10000; received 0"),
        ({"hidden_size": None}, "megatron.gpt config argument hidden_size must be an integer"),
        ({"normalization": "L2Norm"},
         "unknown megatron.gpt config argument normalization 'L2Norm'; expected one of"),
        ({"position_embedding_type": "yarn"},
         "unknown megatron.gpt config argument position_embedding_type 'yarn'"),
        ({"use_mup": "yes"}, "megatron.gpt config argument use_mup must be true or false"),
        ({"init_method_std": -0.02}, "megatron.gpt config needs init_method_std >= 0"),
        ({"mup_base_hidden_size": 0}, "megatron.gpt config needs mup_base_hidden_size >= 1 and"),
        ({"num_query_groups": 3}, "num_attention_heads=4 must be divisible by num_query_groups=3"),
        ({"hidden_size": 3}, "hidden_size=3 // num_attention_heads=4 is 0: set kv_channels"),
        ({"layernorm_zero_centered_gamma": True},
         "megatron.gpt refuses layernorm_zero_centered_gamma: the local spec's torch norms"),
        ({"num_moe_experts": 8}, "megatron.gpt refuses num_moe_experts: "),
        ({"multi_latent_attention": True}, "megatron.gpt refuses multi_latent_attention: "),
        ({"mtp_num_layers": 1}, "megatron.gpt refuses mtp_num_layers: "),
        ({"model_type": "gpt2"}, "megatron.gpt config model_type must be 'megatron.gpt'"),
    ],
)  # fmt: skip
def test_bad_fields_are_422s_naming_the_field(
    client: TestClient, change: dict[str, Any], text: str
) -> None:
    config = {**CONFIGS["gpt"], **change}
    r = client.post("/v1/bundles/describe", json={"recipe": "megatron.gpt", "config": config})
    assert r.status_code == 422, r.text
    assert text in r.json()["detail"]


def test_the_sizes_are_required_and_other_fields_are_listed(client: TestClient) -> None:
    r = client.post("/v1/bundles/describe", json={"recipe": "megatron.gpt", "config": {}})
    assert r.status_code == 422
    assert "megatron.gpt config needs num_layers" in r.json()["detail"]
    extra = {"hidden_dropout": 0.0, "rotary_base": 500000, "seq_length": 16}
    r = client.post("/v1/bundles/describe", json={"recipe": "megatron.gpt",
                                                  "config": {**BASE, **extra}})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["ignored_config"] == sorted(extra)


@pytest.mark.parametrize("layers", [1, 7, 96])
@pytest.mark.parametrize("flags", range(64))
def test_count_is_the_expansion(layers: int, flags: int) -> None:
    bits = [bool(flags >> i & 1) for i in range(6)]
    config = {**BASE, "num_layers": layers, "add_bias_linear": bits[0], "add_qkv_bias": bits[1],
              "qk_layernorm": bits[2], "share_embeddings_and_output_weights": bits[3],
              "normalization": "RMSNorm" if bits[4] else "LayerNorm",
              "position_embedding_type": "learned_absolute" if bits[5] else "rope"}  # fmt: skip
    assert recipes.count("megatron.gpt", config) == len(recipes.members("megatron.gpt", config)[0])


MARKS = {  # a group's defining line, found among the lines it cites
    "embedding.word_embeddings": "self.embedding_init_method = init_method_normal(",
    "decoder.layers.{i}.self_attention.linear_qkv": "self.init_method_std / math.sqrt(",
    "decoder.layers.{i}.self_attention.linear_proj": "math.sqrt(width_mult)",
    "output_layer.weight": "config.embedding_init_method",
    "biases": "self.bias.zero_()",
    "decoder.layers.{i}.{input,pre_mlp}_layernorm": "norm_cls = torch.nn.RMSNorm",
    "the same norms": "norm_cls = torch.nn.LayerNorm",
}


def test_the_catalogue_cites_lines_of_the_installed_package() -> None:
    found = recipes.lookup("megatron.gpt")
    assert found.version == importlib.metadata.version("megatron-core") == "0.19.2"
    for g in found.groups:
        text = []
        for cite in g.source.split("; "):
            path, _, lines = cite.partition(":")
            source = (ROOT / path).read_text().splitlines()
            for part in lines.split(", "):
                first, _, last = part.partition("-")
                assert 1 <= int(first) <= int(last or first) <= len(source), cite
                text += source[int(first) - 1 : int(last or first)]
        (mark,) = [v for k, v in MARKS.items() if g.tensors.startswith(k)]
        assert mark in "\n".join(text), (g.tensors, mark)
