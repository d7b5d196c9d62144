"""service.recipes.hf_mamba: `hf.mamba` (MambaForCausalLM) against transformers 5.24.0. For a tiny
config, one with every option off its default, one with the other dt_proj.weight schemes, the
state-spaces/mamba-130m-hf config.json (small sizes) and the `to_dict()` form the installed
transformers writes: names, shapes and order against the real model's state dict, the count, each
law against a table read from transformers' source (below, cited, independent of the recipe
code), and a bundle fetched over HTTP that loads strictly into the real model, in its dtype, with
every random tensor KS-indistinguishable from the model's own init (dt_proj.bias included),
constants exact, A_log the correctly rounded ln(1 … N) (equal to the model's but where torch's
float32 log is an ulp off), and the tie byte-equal. Also the fields that shape no tensor, the
refusals (422s naming the field), the catalogue row and the cited sources."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service import recipes
from service.presets.base import Member
from service.recipes.hf_mamba import rank_inverse_sqrt
from tests.integration.test_bundles import member_bytes
from tests.support import assert_loads_strictly, cited, layout, members_layout

transformers = pytest.importorskip(
    "transformers",
    reason="transformers is not installed: pip install transformers==5.24.0 -c <torch pin>",
)
import safetensors.torch  # noqa: E402
import scipy.stats  # noqa: E402
import torch  # noqa: E402

RECIPE = "hf.mamba"

# --- configs -----------------------------------------------------------------------------------

TINY: dict[str, Any] = {"vocab_size": 100, "hidden_size": 64, "num_hidden_layers": 2,
                        "state_size": 8}  # fmt: skip
# every option off its default; initializer_range 0 reads as 0.02 (modeling_utils.py:2311); the
# floor clamps about 18% of dt (ln 2 / ln 50)
OPTIONS: dict[str, Any] = {
    "vocab_size": 96, "hidden_size": 48, "num_hidden_layers": 3, "state_size": 4, "expand": 3,
    "conv_kernel": 3, "use_bias": True, "use_conv_bias": False, "hidden_act": "gelu",
    "initializer_range": 0.0, "time_step_rank": 5, "time_step_scale": 0.5,
    "time_step_min": 0.01, "time_step_max": 0.5, "time_step_floor": 0.02,
    "rescale_prenorm_residual": True, "tie_word_embeddings": False, "dtype": "bfloat16",
    "pad_token_id": 3, "layer_norm_epsilon": 1e-6,
}  # fmt: skip
# dt_proj.weight constant, a given intermediate_size that is not expand·hidden_size, "auto"
CONSTANT: dict[str, Any] = {
    "vocab_size": 80, "hidden_size": 40, "num_hidden_layers": 2, "state_size": 16,
    "intermediate_size": 100, "time_step_rank": "auto", "time_step_init_scheme": "constant",
    "time_step_scale": 2.0, "initializer_range": 0.05,
}  # fmt: skip
# a scheme MambaMixer knows neither branch of: dt_proj.weight keeps the Linear's N(0, σ²)
OTHER: dict[str, Any] = {**TINY, "num_hidden_layers": 1, "time_step_init_scheme": "xavier"}
# state-spaces/mamba-130m-hf's config.json (written by transformers 4.39.0.dev0), small sizes
HUB: dict[str, Any] = {
    "architectures": ["MambaForCausalLM"], "bos_token_id": 0, "conv_kernel": 4, "d_inner": 128,
    "d_model": 64, "eos_token_id": 0, "expand": 2, "fused_add_norm": True, "hidden_act": "silu",
    "hidden_size": 64, "initializer_range": 0.1, "intermediate_size": 128,
    "layer_norm_epsilon": 1e-05, "model_type": "mamba", "n_layer": 2, "num_hidden_layers": 2,
    "pad_token_id": 0, "pad_vocab_size_multiple": 8, "rescale_prenorm_residual": False,
    "residual_in_fp32": True, "rms_norm": True, "ssm_cfg": {}, "state_size": 16,
    "time_step_floor": 0.0001, "time_step_init_scheme": "random", "time_step_max": 0.1,
    "time_step_min": 0.001, "time_step_rank": 4, "time_step_scale": 1.0,
    "torch_dtype": "float32", "transformers_version": "4.39.0.dev0", "use_bias": False,
    "use_cache": True, "use_conv_bias": True, "vocab_size": 120,
}  # fmt: skip
MAMBA_130M: dict[str, Any] = {"hidden_size": 768, "num_hidden_layers": 24}


def to_dict_config() -> dict[str, Any]:
    """The config.json the installed transformers writes (to_dict(), through JSON)."""
    cfg = transformers.MambaConfig(
        vocab_size=110, hidden_size=32, num_hidden_layers=2, state_size=6, dtype="float16",
        tie_word_embeddings=False, use_conv_bias=False,
    )  # fmt: skip
    out: dict[str, Any] = json.loads(json.dumps(cfg.to_dict()))
    return out


CONFIGS: Mapping[str, Mapping[str, Any]] = {
    "tiny": TINY,
    "options": OPTIONS,
    "constant": CONSTANT,
    "other": OTHER,
    "hub": HUB,
    "to_dict": to_dict_config(),
}
KINDS = tuple(CONFIGS)


def hf_config(given: Mapping[str, Any]) -> Any:
    return transformers.AutoConfig.for_model(
        "mamba", **{k: v for k, v in given.items() if k != "model_type"}
    )


def hf_model(given: Mapping[str, Any], device: str = "cpu") -> Any:
    with torch.device(device):
        return transformers.AutoModelForCausalLM.from_config(hf_config(given))


# --- the law table, read from transformers 5.24.0's source (not from service.recipes) ----------
# modeling_utils.py:2408-2415  smart_apply: children first, then the module itself
# modeling_utils.py:2311       std = config.initializer_range or 0.02
# modeling_utils.py:2320-24    nn.Linear, nn.Conv1d: weight normal_(0, std); bias zeros_
# modeling_utils.py:2331-32    nn.Embedding: normal_(0, std) (embeddings has no padding_idx, :620)
# modeling_utils.py:2341-48    *RMSNorm*: weight ones_
# mamba/modeling_mamba.py:542-567  MambaPreTrainedModel._init_weights on a MambaMixer:
#   init_mamba_weights (:337-356): A_log = log(arange(1, N + 1)) per row; D ones;
#     dt_init_std = time_step_rank**-0.5 * time_step_scale; "constant": constant_,
#     "random": uniform_(±dt_init_std), else nothing;
#     dt = exp(rand(E) * (log(max) - log(min)) + log(min)).clamp(min=floor);
#     bias = dt + log(-expm1(-dt))
#   conv1d.weight kaiming_uniform_(a=√5); conv1d.bias zeros_; out_proj.weight kaiming_uniform_(
#   a=√5), then /= √num_hidden_layers with rescale_prenorm_residual
# mamba/modeling_mamba.py:713  _tied_weights_keys: lm_head.weight -> backbone.embeddings.weight
Law = tuple[str, Any]  # kind, its number(s)


def kaiming_bound(fan_in: int) -> float:
    """torch kaiming_uniform_(a=√5)'s bound, by torch's own functions."""
    gain = torch.nn.init.calculate_gain("leaky_relu", math.sqrt(5))
    return math.sqrt(3.0) * (gain / math.sqrt(fan_in))


def expected_law(name: str, cfg: Any) -> Law:
    std = cfg.initializer_range or 0.02
    inner, rank = cfg.intermediate_size, cfg.time_step_rank
    if name == "lm_head.weight" and cfg.tie_word_embeddings:
        return "tied", None
    if name.endswith(("norm.weight", "norm_f.weight", ".D")):
        return "ones", None
    if name.endswith(".bias") and not name.endswith("dt_proj.bias"):
        return "zeros", None
    if name.endswith("A_log"):
        return "log_arange", None
    if name.endswith("conv1d.weight"):
        return "uniform", kaiming_bound(cfg.conv_kernel)
    if name.endswith("out_proj.weight"):
        scale = math.sqrt(cfg.num_hidden_layers) if cfg.rescale_prenorm_residual else 1.0
        return "uniform", kaiming_bound(inner) / scale
    if name.endswith("dt_proj.bias"):
        return "dt", (cfg.time_step_min, cfg.time_step_max, cfg.time_step_floor)
    if name.endswith("dt_proj.weight") and cfg.time_step_init_scheme in ("random", "constant"):
        kind = "uniform" if cfg.time_step_init_scheme == "random" else "constant"
        return kind, rank**-0.5 * cfg.time_step_scale
    return "normal", std


def law_of(m: Member) -> Law:
    """The recipe member's law, in the table's terms (its scheme resolved as planned)."""
    from service import schemes

    if m.tied_to is not None:
        return "tied", None
    plan = schemes.resolve(m.scheme, m.shape, m.convention, m.params)
    law = plan.law
    if m.scheme in ("zeros", "ones"):
        return m.scheme, None
    if law.kind == "constant":
        return "constant", law.loc
    if law.kind == "uniform":
        return "uniform", law.limit
    if law.kind == "normal":
        return "normal", law.stddev
    if law.kind == "inverse_softplus_log_uniform":
        return "dt", (m.params.low, m.params.high, m.params.floor)
    return law.kind, None


# --- names, shapes, order, counts ---------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_names_shapes_and_order_are_the_models_state_dict(kind: str) -> None:
    given = CONFIGS[kind]
    members, _ = recipes.members(RECIPE, given)
    model = hf_model(given, "meta")
    assert type(model).__name__ == recipes.lookup(RECIPE).model == "MambaForCausalLM"
    assert members_layout(members) == layout(model.state_dict())
    assert recipes.count(RECIPE, given) == len(members)


def test_defaults_are_mamba_configs_and_130m_has_its_size() -> None:
    """{} is MambaConfig's default (32 layers of width 768); mamba-130m's sizes (24 layers) have
    129,135,360 parameters, the tied embedding counted once."""
    for given, params in (({}, None), (MAMBA_130M, 129_135_360)):
        members, ignored = recipes.members(RECIPE, given)
        assert ignored == ()
        model = hf_model(given, "meta")
        assert members_layout(members) == layout(model.state_dict())
        ours = sum(math.prod(m.shape) for m in members if m.tied_to is None)
        assert ours == sum(p.numel() for p in model.parameters()) == (params or ours)


@pytest.mark.parametrize("layers", [0, 1, 5])
@pytest.mark.parametrize("flag", [False, True])
def test_count_is_the_expansion(layers: int, flag: bool) -> None:
    config = {"num_hidden_layers": layers, "use_bias": flag, "use_conv_bias": not flag,
              "tie_word_embeddings": flag, "rescale_prenorm_residual": flag}  # fmt: skip
    assert recipes.count(RECIPE, config) == len(recipes.members(RECIPE, config)[0])


def test_sizes_follow_mambaconfig() -> None:
    """intermediate_size given wins over expand·hidden_size; "auto" and null are ⌈d/16⌉; the
    model built from the same config agrees (x_proj's R + 2N rows, dt_proj's R columns)."""
    cases: list[dict[str, Any]] = [
        {"hidden_size": 40, "intermediate_size": 100}, {"hidden_size": 33, "expand": 3},
        {"hidden_size": 33, "time_step_rank": "auto"}, {"hidden_size": 33},
    ]  # fmt: skip
    for given in cases:
        config = {**given, "num_hidden_layers": 1, "vocab_size": 10, "state_size": 3}
        cfg = hf_config(config)
        shapes = dict(members_layout(recipes.members(RECIPE, config)[0]))
        assert shapes["backbone.layers.0.mixer.A_log"] == (cfg.intermediate_size, 3)
        assert shapes["backbone.layers.0.mixer.dt_proj.weight"] == (
            cfg.intermediate_size, cfg.time_step_rank)  # fmt: skip
        assert cfg.intermediate_size == given.get("intermediate_size", given["hidden_size"]
                                                  * given.get("expand", 2))  # fmt: skip
        assert cfg.time_step_rank == math.ceil(given["hidden_size"] / 16)


def test_the_fields_it_does_not_read_shape_no_tensor() -> None:
    """pad_token_id (the embedding has no padding_idx), layer_norm_epsilon, residual_in_fp32,
    use_cache, use_mambapy, use_associative_scan and the original repo's keys leave the real
    model's state dict as it is; so the recipe does not read them."""
    base = {**TINY, "num_hidden_layers": 1}
    others = {"pad_token_id": 5, "layer_norm_epsilon": 1e-3, "residual_in_fp32": False,
              "use_cache": False, "use_mambapy": True, "use_associative_scan": False,
              "d_model": 999, "n_layer": 7, "ssm_cfg": {"d_state": 3},
              "rms_norm": False}  # fmt: skip
    model = hf_model(base, "meta")
    assert model.backbone.embeddings.padding_idx is None
    for key, value in others.items():
        other = hf_model({**base, key: value}, "meta").state_dict()
        assert layout(other) == layout(model.state_dict()), key
        members, ignored = recipes.members(RECIPE, {**base, key: value})
        assert ignored == (key,)
        assert members == recipes.members(RECIPE, base)[0]


# --- laws ------------------------------------------------------------------------------------


def test_mamba_has_an_init_of_its_own_after_the_generic_one() -> None:
    from transformers.models.mamba import modeling_mamba

    own = modeling_mamba.MambaPreTrainedModel._init_weights
    assert own is not transformers.PreTrainedModel._init_weights
    assert "super()._init_weights(module)" in Path(modeling_mamba.__file__).read_text()


def test_rank_to_the_minus_half_is_transformers_float_in_float32() -> None:
    """`time_step_rank**-0.5` (MambaMixer, the platform's pow) and the recipe's correctly rounded
    R^-½ (decimal, the same on every machine) are the same float32, what the model stores, for
    every rank below 2^16; as float64 they differ only where this pow is an ulp off the
    correctly rounded value (1769, 2397, 2614, 2903 below 4097 here)."""
    with localcontext() as ctx:
        ctx.prec = 80
        for r in range(1, 1 << 16):
            ours, theirs = rank_inverse_sqrt(r), r**-0.5
            assert np.float32(ours) == np.float32(theirs), r
            if ours != theirs and r < 4097:
                exact = 1 / Decimal(r).sqrt()
                assert abs(Decimal(ours) - exact) < abs(Decimal(theirs) - exact), r


@pytest.mark.parametrize("kind", KINDS)
def test_each_law_is_what_init_weights_applies(kind: str) -> None:
    """The recipe's law of every tensor equals the table read from transformers' source, and the
    table holds for the model transformers initializes (bounds, constants, the tie)."""
    given = CONFIGS[kind]
    cfg = hf_config(given)
    torch.manual_seed(0)
    model = hf_model(given)
    state = model.state_dict()
    for m in recipes.members(RECIPE, given)[0]:
        law, number = expected_law(m.name, cfg)
        assert m.convention == "torch"
        got = law_of(m)
        assert got[0] == law, m.name
        if isinstance(number, float):
            assert got[1] == pytest.approx(number, rel=1e-15, abs=0.0), m.name
        else:
            assert got[1] == number, m.name
        real = state[m.name]
        if law == "uniform":
            top = float(real.double().abs().max())
            assert 0.9 * number < top <= number * (1 + torch.finfo(real.dtype).eps), m.name
        elif law in ("zeros", "ones", "constant"):
            value = {"zeros": 0.0, "ones": 1.0}.get(law, number)
            assert torch.all(real == torch.tensor(value, dtype=real.dtype)), m.name
        elif law == "tied":
            assert model.lm_head.weight is model.backbone.embeddings.weight
            assert m.tied_to == "backbone.embeddings.weight"


@pytest.mark.parametrize("kind", KINDS)
def test_ignored_fields_are_those_it_does_not_read(kind: str) -> None:
    given = CONFIGS[kind]
    found = recipes.lookup(RECIPE).configure(given)
    read = {f["name"] for f in recipes.lookup(RECIPE).fields()} | {"model_type"}
    assert set(found.ignored) == set(given) - read
    dtype = {"options": "bfloat16", "hub": "float32", "to_dict": "float16"}
    assert found.dtype == dtype.get(kind)


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


def correctly_rounded_logs(n: int) -> torch.Tensor:
    """ln(1 … n) rounded once to float32 (decimal arithmetic, 60 digits, then the nearer of the
    two float32 neighbours)."""
    out = []
    with localcontext() as ctx:
        ctx.prec = 60
        for j in range(1, n + 1):
            exact = Decimal(j).ln()
            near = np.float32(float(exact))
            candidates = (np.nextafter(near, np.float32(-1)), near, np.nextafter(near, np.inf))
            out.append(min(candidates, key=lambda c: abs(Decimal(float(c)) - exact)))
    return torch.tensor(np.array(out, dtype=np.float32))


def check_a_log(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    """Ours is ln(1 … N) correctly rounded (in the dtype, from float32); the model's is torch's
    float32 log: equal but where that log is off by one float32 ulp."""
    n = ours.shape[1]
    exact = correctly_rounded_logs(n)
    assert torch.equal(ours, exact.to(ours.dtype).expand_as(ours))
    torch_log = torch.log(torch.arange(1, n + 1, dtype=torch.float32))
    off = torch_log != exact
    assert torch.equal(theirs[:, ~off], ours[:, ~off])
    ulps = (torch_log[off].view(torch.int32) - exact[off].view(torch.int32)).abs()
    assert bool((ulps == 1).all())


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
    assert_loads_strictly(hf_model(config), bundles[0], theirs)
    for t in described[0]["tensors"]:
        name, (law, _) = t["name"], expected_law(t["name"], cfg)
        assert (t["tied_to"] is not None) == (law == "tied"), name
        if law in ("zeros", "ones", "constant"):
            assert torch.equal(bundles[0][name], theirs[name]), name  # exact, in the dtype
        elif law == "tied":
            assert member_bytes(blobs[0], name) == member_bytes(blobs[0], t["tied_to"])
        elif law == "log_arange":
            assert t["plan"]["kind"] == "log_arange"
            check_a_log(bundles[0][name], theirs[name])
        else:
            n = 1 if theirs[name].numel() >= SMALL else len(SEEDS)
            p = ks_p([b[name] for b in bundles[:n]], [m[name] for m in models[:n]])
            assert p > 1e-4, (name, p)


def test_the_dt_bias_is_planned_as_the_new_law(client: TestClient) -> None:
    d = describe(client, {"seed": 1, "recipe": RECIPE, "config": OPTIONS})
    (t,) = [t for t in d["tensors"] if t["name"] == "backbone.layers.2.mixer.dt_proj.bias"]
    assert t["plan"]["kind"] == "inverse_softplus_log_uniform"
    assert (t["request"]["low"], t["request"]["high"], t["request"]["floor"]) == (0.01, 0.5, 0.02)
    floor = math.log(math.expm1(0.02))  # softplus⁻¹ of the floor: the least value
    assert t["plan"]["low"] == pytest.approx(floor, rel=1e-14)
    values = safetensors.torch.load(client.get(d["url"]).content)[t["name"]].double()
    assert float(values.min()) == pytest.approx(floor, rel=1e-2)  # bfloat16
    assert float((values <= floor + 1e-2).double().mean()) > 0.08  # the clamped share


def test_the_describe_answer_lists_the_ignored_fields(client: TestClient) -> None:
    d = describe(client, {"seed": 0, "recipe": RECIPE, "config": HUB})
    assert d["ignored_config"] == [
        "architectures", "bos_token_id", "d_inner", "d_model", "eos_token_id", "fused_add_norm",
        "layer_norm_epsilon", "n_layer", "pad_token_id", "pad_vocab_size_multiple",
        "residual_in_fp32", "rms_norm", "ssm_cfg", "transformers_version", "use_cache",
    ]  # fmt: skip
    assert {t["dtype"] for t in d["tensors"]} == {"float32"}  # its torch_dtype


def test_the_ks_check_tells_a_wrong_dt_range_apart(client: TestClient) -> None:
    """The test above has power on dt_proj.bias: dt_max 0.1 against 0.3, over 4 seeds."""
    config = {**TINY, "hidden_size": 256, "num_hidden_layers": 1}
    name = "backbone.layers.0.mixer.dt_proj.bias"
    ours, default, wider = [], [], []
    for s in SEEDS:
        d = describe(client, {"seed": s, "recipe": RECIPE, "config": config})
        ours.append(safetensors.torch.load(client.get(d["url"]).content)[name])
        torch.manual_seed(s)
        default.append(hf_model(config).state_dict()[name])
        torch.manual_seed(s)
        wider.append(hf_model({**config, "time_step_max": 0.3}).state_dict()[name])
    assert ks_p(ours, default) > 1e-4
    assert ks_p(ours, wider) < 1e-4


@pytest.mark.parametrize(
    ("config", "text"),
    [
        ({"hidden_size": 0}, "hf.mamba config needs hidden_size >= 1"),
        ({"state_size": 0}, "state_size >= 1 and <= 65536"),
        ({"time_step_min": 0.0}, "needs time_step_min >= 1e-30 and <= 1000000"),
        ({"time_step_max": 1e7}, "needs time_step_max >= 1e-30 and <= 1000000"),
        ({"time_step_floor": -1e-4}, "needs time_step_floor >= 0"),
        ({"time_step_scale": -1.0}, "needs time_step_scale >= 0"),
        ({"time_step_rank": "big"},
         "hf.mamba config argument time_step_rank must be an integer or null; received 'big'"),
        ({"time_step_rank": 0}, "time_step_rank >= 1"),
        ({"time_step_init_scheme": 5},
         "hf.mamba config argument time_step_init_scheme must be a string"),
        ({"expand": 1.5}, "hf.mamba config argument expand must be an integer"),
        ({"intermediate_size": 0}, "intermediate_size >= 1"),
        ({"conv_kernel": 0}, "conv_kernel >= 1"),
        ({"hidden_act": "prelu"}, "unknown hf.mamba config argument hidden_act 'prelu'"),
        ({"initializer_range": -0.1}, "initializer_range >= 0"),
        ({"num_hidden_layers": 10001}, "num_hidden_layers >= 0 and <= 10000"),
        ({"use_bias": "no"}, "use_bias must be true or false"),
        ({"rescale_prenorm_residual": 1}, "rescale_prenorm_residual must be true or false"),
        ({"torch_dtype": "int8"}, "unknown hf.mamba config argument torch_dtype"),
        ({"model_type": "mamba2"}, "model_type must be 'mamba'"),
        ({"hidden_size": 2**39, "expand": 4}, "(the intermediate size) is more than"),
    ],
)  # fmt: skip
def test_bad_values_are_422s_naming_the_field(
    client: TestClient, config: dict[str, Any], text: str
) -> None:
    r = client.post("/v1/bundles/describe", json={"recipe": RECIPE, "config": config})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert text in r.json()["detail"]


# --- the catalogue and its sources ------------------------------------------------------------


def test_the_catalogue_lists_the_recipe_with_its_fields_and_laws(client: TestClient) -> None:
    rows = {r["name"]: r for r in client.get("/v1/recipes").json()["recipes"]}
    row = rows[RECIPE]
    assert (row["stack"], row["version"], row["model"], row["model_type"]) == (
        "transformers", "5.24.0", "MambaForCausalLM", "mamba")  # fmt: skip
    defaults = {f["name"]: f.get("default") for f in row["config"]}
    reference = transformers.MambaConfig()
    for name in ("vocab_size", "hidden_size", "state_size", "num_hidden_layers", "expand",
                 "conv_kernel", "use_bias", "use_conv_bias", "hidden_act", "initializer_range",
                 "time_step_scale", "time_step_min", "time_step_max", "time_step_init_scheme",
                 "time_step_floor", "rescale_prenorm_residual", "tie_word_embeddings"):  # fmt: skip
        assert defaults[name] == getattr(reference, name), name
    assert defaults["time_step_rank"] is None  # "auto"
    assert defaults["intermediate_size"] is None  # expand·hidden_size
    laws = {g["law"] for g in row["groups"]}
    assert {"inverse_softplus_log_uniform", "log_arange", "uniform", "normal"} <= laws
    assert all(g["formula"] and ":" in g["source"] for g in row["groups"])


# what each group's cited lines must say (a group is found by a piece of its `tensors`)
SAYS = {
    "embeddings.weight (vocab": ["self.embeddings = nn.Embedding(config.vocab_size, "
                                "config.hidden_size)", "init.normal_(module.weight, mean=0.0",
                                "initializer_range: float = 0.1"],
    "in_proj.weight": ["self.in_proj = nn.Linear(self.hidden_size, self.intermediate_size * 2",
                       "self.x_proj = nn.Linear(self.intermediate_size, self.time_step_rank + "
                       "self.ssm_state_size * 2, bias=False)", "init.normal_(module.weight"],
    "conv1d.weight": ["groups=self.intermediate_size",
                      "init.kaiming_uniform_(module.conv1d.weight, a=math.sqrt(5))",
                      "for child in module.children():"],
    "out_proj.weight": ["self.out_proj = nn.Linear(self.intermediate_size, self.hidden_size",
                        "init.kaiming_uniform_(module.out_proj.weight, a=math.sqrt(5))",
                        "if self.config.rescale_prenorm_residual:",
                        "p /= math.sqrt(self.config.num_hidden_layers)"],
    "dt_proj.weight": ["dt_init_std = self.config.time_step_rank**-0.5 * "
                       "self.config.time_step_scale",
                       "init.constant_(self.dt_proj.weight, dt_init_std)",
                       "init.uniform_(self.dt_proj.weight, -dt_init_std, dt_init_std)"],
    "dt_proj.bias": ["dt = torch.exp(", ".clamp(min=self.config.time_step_floor)",
                     "inv_dt = dt + torch.log(-torch.expm1(-dt))",
                     "init.copy_(self.dt_proj.bias, inv_dt)"],
    "A_log": ["A = torch.arange(1, self.ssm_state_size + 1, dtype=torch.float32",
              "init.copy_(self.A_log, torch.log(A))"],
    "mixer.D": ["init.ones_(self.D)"],
    "conv1d.bias": ["init.zeros_(module.conv1d.bias)", "init.zeros_(module.bias)"],
    "norm.weight": ["init.ones_(module.weight)", "MambaRMSNorm(config.hidden_size"],
    "(tie_word_embeddings": ['{"lm_head.weight": "backbone.embeddings.weight"}',
                             "tie_word_embeddings: bool = True"],
    "(untied)": ["self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)"],
}  # fmt: skip


def test_the_cited_sources_say_what_the_groups_say() -> None:
    root = Path(transformers.__file__).parent.parent
    found = recipes.lookup(RECIPE)
    assert (found.version, found.model_type) == (transformers.__version__, "mamba")
    texts = {g.tensors: cited(g.source, root) for g in found.groups}
    for piece, says in SAYS.items():
        (text,) = [t for tensors, t in texts.items() if piece in tensors]
        for said in says:
            assert said in text, (piece, said)
