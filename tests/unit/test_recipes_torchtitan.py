"""service.recipes.torchtitan against the installed torchtitan 0.3.0: names and shapes against
`Llama3Model`'s state dict (its flavors on the meta device, small configs on the CPU, tied and
untied), each law against the init callables the stack's own config builders attach
(`param_init` partials, read from the built config, not from the recipe), the bundle over HTTP
loaded strictly into the model and KS-tested against `init_weights()` of the same config,
truncation bounds, the count, the refusals and the cited lines."""

from __future__ import annotations

import functools
import math
import warnings
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service import recipes
from service.errors import SchemeError, ShapeError

torch = pytest.importorskip("torch", reason="torch is not installed: pip install -e .[dev]")
with warnings.catch_warnings():  # torchtitan compiles flex attention at import: torch 2.13's
    # inductor imports torch.utils.mkldnn, which warns about its own torch.jit.script_method
    warnings.filterwarnings("ignore", "`torch.jit.script_method` is deprecated", DeprecationWarning)
    torchtitan = pytest.importorskip(
        "torchtitan", reason="torchtitan is not installed: pip install torchtitan==0.3.0 triton"
    )
    from torchtitan.models import llama3 as titan
    from torchtitan.models.common import (
        ComplexRoPE,
        Embedding,
        Linear,
        RMSNorm,
    )
    from torchtitan.models.common import compute_ffn_hidden_dim as ffn_rule
import safetensors.torch  # noqa: E402
from scipy import stats  # noqa: E402

RECIPE = "torchtitan.llama3"
FIELDS = ("dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "multiple_of",
          "ffn_dim_multiplier", "enable_weight_tying")  # fmt: skip
# the flavors as the recipe's flat config (__init__.py:114-356), checked against model_registry
FLAVORS: dict[str, dict[str, Any]] = {
    "debugmodel": {"dim": 256, "n_layers": 6, "n_heads": 16, "vocab_size": 2048},
    "1B": {"dim": 2048, "n_layers": 16, "n_kv_heads": 8, "multiple_of": 1024,
           "ffn_dim_multiplier": 1.5, "enable_weight_tying": True},
    "3B": {"dim": 3072, "n_layers": 28, "n_heads": 24, "n_kv_heads": 8, "multiple_of": 1024,
           "ffn_dim_multiplier": 1.0, "enable_weight_tying": True},
    "8B": {"n_kv_heads": 8, "multiple_of": 1024, "ffn_dim_multiplier": 1.3},
    "70B": {"dim": 8192, "n_layers": 80, "n_heads": 64, "n_kv_heads": 8, "multiple_of": 4096,
            "ffn_dim_multiplier": 1.3},
}  # fmt: skip
SMALL: dict[str, dict[str, Any]] = {
    "untied": {"dim": 64, "n_layers": 3, "n_heads": 8, "n_kv_heads": 2, "vocab_size": 512,
               "multiple_of": 32, "ffn_dim_multiplier": 1.3, "enable_weight_tying": False},
    "tied": {"dim": 48, "n_layers": 2, "n_heads": 4, "n_kv_heads": None, "vocab_size": 640,
             "multiple_of": 64, "ffn_dim_multiplier": None, "enable_weight_tying": True},
}  # fmt: skip


def model_config(flat: dict[str, Any]) -> Any:
    """`Llama3Model.Config` as the flavor factories write it (__init__.py:236-274, tied as
    :148-189), from a full flat config, with torchtitan's own helpers and init tables."""
    dim, vocab, heads = flat["dim"], flat["vocab_size"], flat["n_heads"]
    tied = flat["enable_weight_tying"]
    emb_init = titan._EMBEDDING_SKIP_INIT if tied else titan._EMBEDDING_INIT
    multiple_of, multiplier = flat["multiple_of"], flat["ffn_dim_multiplier"]
    hidden = ffn_rule(dim, multiple_of=multiple_of, ffn_dim_multiplier=multiplier)
    rope = ComplexRoPE.Config(dim=dim // heads, max_seq_len=64, theta=500000, scaling="llama")
    layers = titan._build_llama3_layers(
        fuse_qkv=True,
        n_layers=flat["n_layers"],
        dim=dim,
        n_heads=heads,
        n_kv_heads=flat["n_kv_heads"],
        hidden_dim=hidden,
        rope=rope,
        attn_backend="flex",
    )
    head_init = titan._output_linear_init(dim)
    return titan.Llama3Model.Config(
        dim=dim,
        vocab_size=vocab,
        enable_weight_tying=tied,
        tok_embeddings=Embedding.Config(
            num_embeddings=vocab, embedding_dim=dim, param_init=emb_init
        ),
        norm=RMSNorm.Config(normalized_shape=dim, param_init=titan._NORM_INIT),
        lm_head=Linear.Config(in_features=dim, out_features=vocab, param_init=head_init),
        layers=layers,
    )


def titan_init(flat: dict[str, Any], seed: int) -> Any:
    """The stack's own init: build on the CPU, `init_weights()` from the global generator."""
    model = model_config(flat).build()
    torch.manual_seed(seed)
    model.init_weights()
    return model


def shapes(state: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


def expected_init(flat: dict[str, Any], name: str) -> Any:
    """The init callable torchtitan attaches to `name`'s parameter in the built config."""
    cfg = model_config(flat)
    if name == "tok_embeddings.weight":
        return cfg.tok_embeddings.param_init["weight"]
    if name == "lm_head.weight":
        return cfg.lm_head.param_init["weight"]
    if name.endswith("norm.weight"):
        return titan._NORM_INIT["weight"]
    i, rest = int(name.split(".")[1]), name.split(".", 2)[2]
    layer = cfg.layers[i]
    if rest.startswith("attention.qkv_linear."):
        # the fused wqkv init wraps _LINEAR_INIT per q/k/v slice (config_utils.py:135-148)
        return titan._LINEAR_INIT["weight"]
    module = {"attention.wo.weight": layer.attention.wo, "feed_forward.w1.weight":
              layer.feed_forward.w1, "feed_forward.w2.weight": layer.feed_forward.w2,
              "feed_forward.w3.weight": layer.feed_forward.w3}[rest]  # fmt: skip
    return module.param_init["weight"]


# --- names and shapes ----------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", list(FLAVORS))
def test_the_flavors_names_and_shapes(flavor: str) -> None:
    members, ignored = recipes.members(RECIPE, FLAVORS[flavor])
    assert ignored == ()
    with torch.device("meta"):
        model = titan.model_registry(flavor).model.build()
    assert {m.name: tuple(m.shape) for m in members} == shapes(model.state_dict())
    assert recipes.count(RECIPE, FLAVORS[flavor]) == len(members)


def test_the_defaults_and_the_8b_flavor() -> None:
    """{} is dim 4096, 32 layers of 32 heads, vocab 128256 (Llama3Model.Config's dim and vocab,
    model.py:63-64), MHA, FFN 11008 (multiple_of 256); the 8B flavor differs by its GQA and FFN."""
    by = {m.name: m.shape for m in recipes.members(RECIPE, {})[0]}
    assert by["layers.31.attention.qkv_linear.wk.weight"] == (4096, 4096)
    assert by["layers.0.feed_forward.w1.weight"] == (ffn_rule(4096, multiple_of=256), 4096)
    assert by["tok_embeddings.weight"] == (128256, 4096)
    eight = recipes.members(RECIPE, FLAVORS["8B"])[0]
    assert sum(math.prod(m.shape) for m in eight) == 8_030_261_248


@pytest.mark.parametrize("kind", list(SMALL))
def test_names_shapes_and_dtypes_are_the_cpu_models(kind: str) -> None:
    members, _ = recipes.members(RECIPE, SMALL[kind])
    state = titan_init(SMALL[kind], 0).state_dict()
    assert {m.name: tuple(m.shape) for m in members} == shapes(state)
    assert {v.dtype for v in state.values()} == {torch.float32}
    assert not any("rope" in k or "cache" in k for k in state)  # RoPE: non-persistent buffer


# --- laws ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(SMALL))
def test_each_law_is_the_init_torchtitan_attaches(kind: str) -> None:
    """The recipe's std and bounds equal the keywords of the stack's own `param_init` partial
    (bit for bit; torch's defaults a=-2, b=2 where the partial gives none)."""
    flat = SMALL[kind]
    for m in recipes.members(RECIPE, flat)[0]:
        init = expected_init(flat, m.name)
        if m.name == "tok_embeddings.weight" and flat["enable_weight_tying"]:
            assert init is titan.skip_param_init
            assert m.tied_to == "lm_head.weight"
            continue
        assert m.tied_to is None
        if m.scheme == "ones":
            assert init is torch.nn.init.ones_, m.name
            continue
        assert isinstance(init, functools.partial), m.name
        kw = init.keywords
        if init.func is torch.nn.init.normal_:
            assert (m.scheme, m.params.std, m.params.mean) == ("normal", kw["std"], 0.0)
            continue
        assert init.func is torch.nn.init.trunc_normal_, m.name
        assert m.scheme == "truncated_normal", m.name
        assert (m.params.std, m.params.a, m.params.b) == (
            kw["std"], kw.get("a", -2.0), kw.get("b", 2.0)), m.name  # fmt: skip


def test_the_depth_scaling_is_per_layer_and_spares_w1_and_qkv() -> None:
    by = {m.name: m.params.std for m in recipes.members(RECIPE, SMALL["untied"])[0]}
    for i in range(3):
        deep = 0.02 / math.sqrt(2 * (i + 1))
        for name in ("attention.wo", "feed_forward.w2", "feed_forward.w3"):
            assert by[f"layers.{i}.{name}.weight"] == pytest.approx(deep, rel=1e-15)
        for name in ("attention.qkv_linear.wq", "attention.qkv_linear.wv", "feed_forward.w1"):
            assert by[f"layers.{i}.{name}.weight"] == 0.02
    assert by["lm_head.weight"] == 64**-0.5
    assert by["tok_embeddings.weight"] == 1.0


# --- the bundle over HTTP ------------------------------------------------------------------------


def bundle(client: TestClient, flat: dict[str, Any], seed: int) -> tuple[Any, dict[str, Any]]:
    r = client.post("/v1/bundles/describe", json={"seed": seed, "recipe": RECIPE, "config": flat})
    assert r.status_code == 200, r.text
    d = r.json()
    data = client.get(d["url"]).content
    assert len(data) == d["content_length"]
    return safetensors.torch.load(data), d


@pytest.mark.parametrize("kind", list(SMALL))
def test_the_bundle_loads_strictly_and_follows_the_stacks_init(
    client: TestClient, kind: str
) -> None:
    flat, seeds = SMALL[kind], range(3)
    ours: dict[str, list[Any]] = {}
    theirs: dict[str, list[Any]] = {}
    for seed in seeds:
        state, d = bundle(client, flat, seed)
        model = titan_init(flat, 1000 + seed)
        reference = model.state_dict()
        assert {k: (tuple(v.shape), v.dtype) for k, v in state.items()} == {
            k: (tuple(v.shape), v.dtype) for k, v in reference.items()}  # fmt: skip
        for k, v in reference.items():
            theirs.setdefault(k, []).append(v.flatten())
        model.load_state_dict(state, strict=True)  # wq/wk/wv fused into wqkv by its hook
        for k, v in model.state_dict().items():  # and split back on save, unchanged
            assert torch.equal(v, state[k]), k
        for t in d["tensors"]:
            if t["plan"]["kind"] != "constant" and t["tied_to"] is None:
                ours.setdefault(t["name"], []).append(state[t["name"]].flatten())
        if flat["enable_weight_tying"]:
            assert torch.equal(state["tok_embeddings.weight"], state["lm_head.weight"])
            assert model.tok_embeddings.weight is model.lm_head.weight
    for name, values in ours.items():
        p = stats.ks_2samp(torch.cat(values).numpy(), torch.cat(theirs[name]).numpy()).pvalue
        assert p > 1e-4, (name, p)
    assert set(ours) | {"tok_embeddings.weight"} >= {k for k in theirs if "norm" not in k}


def test_values_respect_the_bounds_and_the_constants_are_exact(client: TestClient) -> None:
    flat = SMALL["untied"]
    state, d = bundle(client, flat, 5)
    s = flat["dim"] ** -0.5
    head = state["lm_head.weight"].double()
    bound = torch.tensor(3 * s, dtype=torch.float32).double()  # trunc_normal_ casts it too
    assert head.abs().max() <= bound
    assert float(head.abs().max()) > 2.5 * s  # a ±3σ cut, not a ±2σ one and not a plain normal
    assert head.numel() == 512 * 64  # enough draws that ±2.5σ is passed (P(none) < 1e-100)
    assert float(state["tok_embeddings.weight"].abs().max()) > 3.5  # N(0, 1), untruncated
    for t in d["tensors"]:
        if t["plan"]["kind"] == "constant":
            assert torch.all(state[t["name"]] == 1.0), t["name"]
        elif t["name"].endswith(("wo.weight", "w1.weight")):
            assert float(state[t["name"]].abs().max()) <= 2.0
            assert t["plan"]["kind"] == "truncated_normal"


# --- config handling -----------------------------------------------------------------------------


def test_unread_fields_are_reported_and_a_transformers_config_is_refused(
    client: TestClient,
) -> None:
    given = {**SMALL["tied"], "norm_eps": 1e-5, "rope_theta": 500000, "max_seq_len": 8192}
    assert recipes.members(RECIPE, given)[1] == ("max_seq_len", "norm_eps", "rope_theta")
    assert recipes.members(RECIPE, {"model_type": RECIPE})[1] == ()
    r = client.post("/v1/bundles/describe", json={"recipe": RECIPE, "config": {
        "model_type": "llama", "hidden_size": 64}})  # fmt: skip
    assert r.status_code == 422
    assert f"{RECIPE} config model_type must be '{RECIPE}'; received 'llama'" in r.json()["detail"]


@pytest.mark.parametrize(
    ("config", "error", "text"),
    [
        ({"n_heads": 6, "n_kv_heads": 4}, ShapeError,
         "n_heads=6 must be divisible by n_kv_heads=4"),
        ({"dim": 0}, SchemeError, "torchtitan.llama3 config needs dim >= 1"),
        ({"n_layers": -1}, SchemeError, "torchtitan.llama3 config needs n_layers >= 0"),
        ({"ffn_dim_multiplier": 0}, SchemeError, "needs ffn_dim_multiplier > 0"),
        ({"multiple_of": 0}, SchemeError, "needs multiple_of >= 1"),
        ({"enable_weight_tying": 1}, SchemeError, "enable_weight_tying must be true or false"),
        ({"vocab_size": "2048"}, SchemeError, "vocab_size must be an integer"),
    ],
)  # fmt: skip
def test_bad_configs_are_422s_naming_the_field(
    client: TestClient, config: dict[str, Any], error: type[Exception], text: str
) -> None:
    with pytest.raises(error) as caught:
        recipes.members(RECIPE, config)
    assert text in str(caught.value)
    r = client.post("/v1/bundles/describe", json={"recipe": RECIPE, "config": config})
    assert r.status_code == 422
    assert text in r.json()["detail"]


@pytest.mark.parametrize("layers", [0, 1, 5, 126])
def test_count_is_the_expansion(layers: int) -> None:
    for tied in (False, True):
        config = {"n_layers": layers, "enable_weight_tying": tied, "dim": 64, "n_heads": 4}
        assert recipes.count(RECIPE, config) == len(recipes.members(RECIPE, config)[0])


# --- the catalogue -------------------------------------------------------------------------------

ANCHORS = {  # a cited line and the text it must hold in the installed package
    "torchtitan/models/llama3/__init__.py:46": "partial(nn.init.trunc_normal_, std=0.02)",
    "torchtitan/models/llama3/__init__.py:50": "partial(nn.init.normal_, std=1.0)",
    "torchtitan/models/llama3/__init__.py:57": "a=-3 * s, b=3 * s",
    "torchtitan/models/llama3/__init__.py:64": "depth_scaled_std(0.02, layer_id)",
    "torchtitan/models/common/param_init.py:30": "base_std / (2 * (layer_id + 1)) ** 0.5",
    "torchtitan/models/common/feed_forward.py:28": "int(2 * 4 * dim / 3)",
    "torchtitan/models/common/decoder.py:208": "self.tok_embeddings.weight = self.lm_head.weight",
}


def test_the_catalogue_cites_lines_of_the_installed_torchtitan() -> None:
    found = recipes.lookup(RECIPE)
    root = Path(torchtitan.__file__).parent.parent
    assert (found.version, found.stack) == (torchtitan.__version__, "torchtitan")
    assert [f["name"] for f in found.fields()][: len(FIELDS)] == list(FIELDS)
    for g in found.groups:
        for cite in g.source.split("; "):
            path, _, lines = cite.partition(":")
            text = (root / path).read_text().splitlines()
            for part in lines.split(", "):
                first, _, last = part.partition("-")
                assert 1 <= int(first) <= int(last or first) <= len(text), cite
    for cite, quoted in ANCHORS.items():
        path, _, line = cite.partition(":")
        assert quoted in (root / path).read_text().splitlines()[int(line) - 1], cite
