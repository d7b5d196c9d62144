"""service.recipes.olmo_core against the installed ai2-olmo-core 3.0.0: names, shapes and dtypes
against `TransformerConfig.llama_like(...).build()`, each law against the exact call OLMo-core
makes in `init_weights` (torch.nn.init spied on: function, std, a, b, bit for bit), the bundle
over HTTP loaded strictly and KS-tested against OLMo-core's own init of the same config for every
init_method, truncation at ±3σ, ties, the count, the refusals and the cited lines."""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service import recipes
from service.errors import SchemeError, ShapeError

torch = pytest.importorskip("torch", reason="torch is not installed: pip install -e .[dev]")
with warnings.catch_warnings():  # olmo_core.io imports google.api_core, which asks for grpcio
    warnings.filterwarnings("ignore", "Please install grpcio-status", ImportWarning)
    olmo_core = pytest.importorskip(
        "olmo_core", reason="OLMo-core is not installed: pip install ai2-olmo-core==3.0.0"
    )
    from olmo_core.config import DType
    from olmo_core.nn.layer_norm import LayerNormType
    from olmo_core.nn.transformer import InitMethod, TransformerBlockType, TransformerConfig
import safetensors.torch  # noqa: E402
from scipy import stats  # noqa: E402

RECIPE = "olmo_core"
BASE = {"d_model": 64, "vocab_size": 384, "n_layers": 2, "n_heads": 4}
CONFIGS: dict[str, dict[str, Any]] = {  # every init_method; ties, GQA, QK norms, head_dim, …
    "normal": {**BASE, "n_kv_heads": 2, "init_std": 0.03, "embedding_init_std": 0.05},
    "llama": {**BASE, "n_layers": 3, "tie_word_embeddings": True, "init_method": "llama"},
    "llama_depth": {**BASE, "n_layers": 3, "init_method": "llama_depth", "qk_norm": True},
    "fan_in": {**BASE, "init_method": "fan_in", "embed_scale": 2.0, "head_dim": 24,
               "hidden_size_multiplier": 1.5, "hidden_size_multiple_of": 32},
    "normalized": {**BASE, "init_method": "normalized", "block_name": "peri_norm",
                   "qk_norm": True, "use_head_qk_norm": True, "layer_norm_name": "default"},
    "normal-tied-bf16": {**BASE, "n_layers": 1, "tie_word_embeddings": True, "dtype": "bfloat16"},
}  # fmt: skip
SHAPES_ONLY: list[dict[str, Any]] = [
    {**BASE, "n_layers": 0},
    {**BASE, "layer_norm_name": "qwen_rms", "block_name": "reordered_norm"},
    {**BASE, "layer_norm_name": "nemotron_rms", "n_kv_heads": 1, "head_dim": 8},
    {**BASE, "d_model": 50, "n_heads": 3, "hidden_size_multiple_of": 1},  # head_dim 16, floor
]  # fmt: skip
ENUMS = {"init_method": InitMethod, "layer_norm_name": LayerNormType,
         "block_name": TransformerBlockType, "dtype": DType}  # fmt: skip


def olmo_config(flat: dict[str, Any], seed: int = 0) -> Any:
    kwargs = {k: ENUMS[k](v) if k in ENUMS else v for k, v in flat.items()}
    return TransformerConfig.llama_like(**kwargs, init_seed=seed)


def olmo_init(flat: dict[str, Any], seed: int) -> Any:
    model = olmo_config(flat, seed).build(init_device="cpu")
    model.init_weights(device=torch.device("cpu"))
    return model


@contextmanager
def spied(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, str, dict[str, Any]]]]:
    """Every torch.nn.init call OLMo-core makes: (data_ptr, function, its std/mean/a/b/val)."""
    calls: list[tuple[int, str, dict[str, Any]]] = []

    def spy(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(real)

        def record(tensor: Any, *args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(tensor, *args, **kwargs)
            bound.apply_defaults()
            keep = {k: v for k, v in bound.arguments.items() if k in ("mean", "std", "a", "b")}
            calls.append((tensor.data_ptr(), name, keep))
            return real(tensor, *args, **kwargs)

        return record

    for name in ("normal_", "trunc_normal_", "ones_", "zeros_"):
        monkeypatch.setattr(torch.nn.init, name, spy(name, getattr(torch.nn.init, name)))
    yield calls
    monkeypatch.undo()


def stack_laws(flat: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict[str, Any]]:
    """The last init call on each parameter of OLMo-core's own `init_weights` (by name)."""
    with spied(monkeypatch) as calls:
        model = olmo_init(flat, 0)
    names: dict[int, list[str]] = {}
    for n, p in model.named_parameters(remove_duplicate=False):
        names.setdefault(p.data_ptr(), []).append(n)
    laws = {n: (fn, kw) for ptr, fn, kw in calls for n in names.get(ptr, [])}
    return model, laws


def shapes_of(model: Any) -> dict[str, tuple[tuple[int, ...], Any]]:
    return {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}


# --- names and shapes ----------------------------------------------------------------------------


@pytest.mark.parametrize("flat", [*CONFIGS.values(), *SHAPES_ONLY])
def test_names_and_shapes_are_the_built_models(flat: dict[str, Any]) -> None:
    members, ignored = recipes.members(RECIPE, flat)
    assert set(ignored) == set(flat) & {"layer_norm_eps", "rope_theta"}
    model = olmo_config(flat).build(init_device="meta")
    assert {m.name: tuple(m.shape) for m in members} == {
        k: v[0] for k, v in shapes_of(model).items()}  # fmt: skip
    assert recipes.count(RECIPE, flat) == len(members)


PRESETS = {  # OLMo-core's own presets (config.py:678-692, 731-742) as flat configs
    "olmo2_7B": {"d_model": 4096, "n_layers": 32, "n_heads": 32, "qk_norm": True,
                 "block_name": "reordered_norm", "rope_theta": 500_000, "layer_norm_eps": 1e-6},
    "olmo2_1B": {"d_model": 2048, "n_layers": 18, "n_heads": 16, "qk_norm": True,
                 "block_name": "reordered_norm", "hidden_size_multiplier": 1.5},
}  # fmt: skip


@pytest.mark.parametrize("preset", list(PRESETS))
def test_olmo_cores_presets_are_their_flat_configs(preset: str) -> None:
    flat = {**PRESETS[preset], "vocab_size": 100352}
    members, ignored = recipes.members(RECIPE, flat)
    assert set(ignored) <= {"rope_theta", "layer_norm_eps"}
    config = getattr(TransformerConfig, preset)(vocab_size=100352)
    model = config.build(init_device="meta")
    assert {m.name: tuple(m.shape) for m in members} == {
        k: v[0] for k, v in shapes_of(model).items()}  # fmt: skip
    assert sum(math.prod(m.shape) for m in members) == config.num_params  # its own count


def test_a_default_scaled_block_keeps_its_ln_scale_which_init_weights_loses(
    client: TestClient,
) -> None:
    """block.py:272-274 registers ln_scale = 1/√(ℓ+1) (float32, persistent); init_weights'
    to_empty (model.py:332) reallocates it and nothing writes it again: the bundle holds the
    constructed value (float32 in a bfloat16 bundle), which a strict load puts back."""
    flat = {**BASE, "n_layers": 3, "block_name": "default_scaled", "dtype": "bfloat16"}
    members = {m.name: m for m in recipes.members(RECIPE, flat)[0]}
    built = olmo_config(flat).build(init_device="cpu").state_dict()
    state, _ = bundle(client, flat, 0)
    model = olmo_init(flat, 0)
    assert {k: (tuple(v.shape), v.dtype) for k, v in state.items()} == shapes_of(model)
    model.load_state_dict(state, strict=True)
    for i in range(3):
        name = f"blocks.{i}.ln_scale"
        assert (members[name].shape, members[name].dtype) == ((), "float32")
        assert members[name].scheme == ("ones" if i == 0 else "constant")  # 1/√1 = 1
        assert state[name].dtype == torch.float32
        assert torch.equal(state[name], built[name])
        assert torch.equal(model.get_buffer(name), built[name])


# --- laws ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_each_law_is_the_call_init_weights_makes(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    flat = CONFIGS[kind]
    model, laws = stack_laws(flat, monkeypatch)
    for m in recipes.members(RECIPE, flat)[0]:
        fn, kw = laws[m.name]
        if m.tied_to is not None:
            assert model.get_parameter(m.name) is model.get_parameter(m.tied_to)
            assert laws[m.tied_to] == (fn, kw)
            continue
        if m.scheme == "ones":
            assert fn == "ones_", m.name
        elif m.scheme == "normal":
            assert (fn, kw["mean"], kw["std"]) == ("normal_", 0.0, m.params.std), m.name
        else:
            assert (fn, m.scheme) == ("trunc_normal_", "truncated_normal"), m.name
            assert (kw["std"], kw["a"], kw["b"]) == (m.params.std, m.params.a, m.params.b), m.name
            assert kw["a"] == -3 * kw["std"], m.name


def test_the_init_methods_differ_where_the_source_says() -> None:
    """A few entries of the module table, by number (d = 64, L = 3, σ = 0.02)."""

    def stds(method: str) -> dict[str, float]:
        flat = {**BASE, "n_layers": 3, "init_method": method}
        return {m.name: m.params.std or 0.0 for m in recipes.members(RECIPE, flat)[0]}

    llama, depth, normalized = stds("llama"), stds("llama_depth"), stds("normalized")
    assert llama["blocks.0.feed_forward.w2.weight"] == 0.02 / 6**0.5  # w3's std, kept for w2
    assert depth["blocks.2.attention.w_out.weight"] == 0.02 / 6**0.5
    assert depth["blocks.0.attention.w_out.weight"] == 0.02 / 2**0.5
    assert normalized["blocks.1.feed_forward.w3.weight"] == 64**-0.5
    assert normalized["blocks.1.feed_forward.w2.weight"] == 64**-0.5 / 6**0.5
    assert (llama["embeddings.weight"], normalized["embeddings.weight"]) == (1.0, 0.125)
    assert stds("normal")["lm_head.w_out.weight"] == 0.02
    assert stds("fan_in")["lm_head.w_out.weight"] == 0.125


# --- the bundle over HTTP ------------------------------------------------------------------------


def bundle(client: TestClient, flat: dict[str, Any], seed: int) -> tuple[Any, dict[str, Any]]:
    r = client.post("/v1/bundles/describe", json={"seed": seed, "recipe": RECIPE, "config": flat})
    assert r.status_code == 200, r.text
    d = r.json()
    data = client.get(d["url"]).content
    assert len(data) == d["content_length"]
    return safetensors.torch.load(data), d


def check_bounds(name: str, values: Any, member: Any) -> None:
    """A ±3σ cut: nothing past the bound (torch casts it to the tensor's dtype too), and a
    sample of this size does reach past 2.5σ (not a ±2σ cut, not a much smaller std)."""
    bound = torch.tensor(member.params.b, dtype=values.dtype).double()
    top = values.double().abs().max()
    assert top <= bound, name
    if values.numel() >= 2000:
        assert top > 2.5 * member.params.std, name


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_the_bundle_loads_strictly_and_follows_olmo_cores_init(
    client: TestClient, kind: str
) -> None:
    flat, seeds = CONFIGS[kind], range(3)
    members = {m.name: m for m in recipes.members(RECIPE, flat)[0]}
    ours: dict[str, list[Any]] = {}
    theirs: dict[str, list[Any]] = {}
    for seed in seeds:
        state, d = bundle(client, flat, seed)
        model = olmo_init(flat, 1000 + seed)
        assert {k: (tuple(v.shape), v.dtype) for k, v in state.items()} == shapes_of(model)
        for k, v in model.state_dict().items():
            theirs.setdefault(k, []).append(v.flatten().float())
        model.load_state_dict(state, strict=True)
        for t in d["tensors"]:
            m, value = members[t["name"]], state[t["name"]]
            if m.tied_to is not None:
                assert torch.equal(value, state[m.tied_to])
                assert model.get_parameter(m.name) is model.get_parameter(m.tied_to)
            elif m.scheme == "ones":
                assert torch.all(value == 1), m.name
            else:
                assert t["plan"]["kind"] == m.scheme
                ours.setdefault(m.name, []).append(value.flatten().float())
                if m.scheme == "truncated_normal":
                    check_bounds(m.name, value, m)
    assert len(ours) == sum(m.scheme not in ("ones", "zeros") and m.tied_to is None
                            for m in members.values())  # fmt: skip
    for name, values in ours.items():
        p = stats.ks_2samp(torch.cat(values).numpy(), torch.cat(theirs[name]).numpy()).pvalue
        assert p > 1e-4, (name, p)


def test_the_request_seed_replaces_init_seed(client: TestClient) -> None:
    flat = CONFIGS["normal"]
    a, _ = bundle(client, {**flat, "init_seed": 1}, 7)
    b, d = bundle(client, {**flat, "init_seed": 2}, 7)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert d["ignored_config"] == ["init_seed"]
    c, _ = bundle(client, flat, 8)
    assert not torch.equal(a["embeddings.weight"], c["embeddings.weight"])


# --- config handling -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "error", "text"),
    [
        ({"vocab_size": 10, "n_layers": 1, "n_heads": 1}, SchemeError,
         "olmo_core config needs d_model"),
        ({**BASE, "fused_ops": True}, ShapeError, "olmo_core does not make fused_ops models"),
        ({**BASE, "init_method": "mitchell"}, SchemeError,
         "unknown olmo_core config argument init_method 'mitchell'; expected one of"),
        ({**BASE, "block_name": "moe"}, SchemeError, "argument block_name 'moe'"),
        ({**BASE, "layer_norm_name": "l2_norm"}, SchemeError, "layer_norm_name 'l2_norm'"),
        ({**BASE, "init_std": 0}, SchemeError, "olmo_core config needs init_std > 0"),
        ({**BASE, "n_layers": -1}, SchemeError, "olmo_core config needs n_layers >= 0"),
        ({**BASE, "qk_norm": "yes"}, SchemeError, "qk_norm must be true or false"),
        ({**BASE, "n_heads": 128}, ShapeError, "d_model=64 // n_heads=128 is 0: give head_dim"),
        ({**BASE, "model_type": "olmo2"}, SchemeError,
         "olmo_core config model_type must be 'olmo_core'; received 'olmo2'"),
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


@pytest.mark.parametrize("layers", [0, 1, 5, 64])
def test_count_is_the_expansion(layers: int) -> None:
    for block in ("default", "peri_norm", "default_scaled"):
        for qk in (False, True):
            flat = {**BASE, "n_layers": layers, "block_name": block, "qk_norm": qk}
            assert recipes.count(RECIPE, flat) == len(recipes.members(RECIPE, flat)[0])


# --- the catalogue -------------------------------------------------------------------------------

ANCHORS = {  # a cited line and the text it holds in the installed package
    "olmo_core/nn/transformer/init.py:38": "a=-3 * std,",
    "olmo_core/nn/transformer/init.py:89": "_apply_init(nn.init.normal_, m.weight, generator",
    "olmo_core/nn/transformer/init.py:167": "std = std / (2 * num_blocks) ** 0.5",
    "olmo_core/nn/transformer/init.py:121": "std = d_model**-0.5",
    "olmo_core/nn/attention/__init__.py:1217": "std = std / (2 * num_blocks) ** 0.5",
    "olmo_core/nn/transformer/config.py:1694": "hidden_size = int(8 * d_model / 3)",
    "olmo_core/utils.py:904": "return of * math.ceil(x / of)",
    "olmo_core/nn/transformer/model.py:194": "self.lm_head.w_out.weight = self.embeddings.weight",
    "olmo_core/nn/transformer/model.py:332": "self.to_empty(device=device)",
}


def test_the_catalogue_cites_lines_of_the_installed_olmo_core() -> None:
    found = recipes.lookup(RECIPE)
    root = Path(olmo_core.__file__).parent.parent
    assert (found.version, found.stack) == (version("ai2-olmo-core"), "olmo_core")
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
    fields = {f["name"]: f for f in found.fields()}
    assert all(fields[k]["required"] for k in BASE)
    assert set(fields["init_method"]["choices"]) == {m.value for m in InitMethod}
