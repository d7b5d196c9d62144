"""Recipe bundles over HTTP: a whole transformers model's state dict from its config.json, loaded
strictly into the real model (transformers 5.x), with the laws its `_init_weights` applies."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, cast, get_args

import pytest
from fastapi.testclient import TestClient

from service import recipes
from service.api import create_app
from service.config import Settings
from service.presets.base import Member
from service.recipes.base import Law
from tests.integration.test_bundles import member_bytes
from tests.unit.test_recipes import CASES, HF_CAUSAL, config_of, expected_law, hf_config, hf_model

transformers = pytest.importorskip(
    "transformers",
    reason="transformers is not installed: pip install transformers==5.24.0 -c <torch pin>",
)
import safetensors.torch  # noqa: E402
import torch  # noqa: E402


def describe(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/bundles/describe", json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def check_law(t: dict[str, Any], law: tuple[str, float, tuple[int, ...]]) -> None:
    """A member's plan (describe) is the law transformers applies: scheme, std, no truncation."""
    kind, std, rows = law
    plan, request = t["plan"], t["request"]
    if kind == "tied":
        assert t["tied_to"] is not None
        return
    assert t["tied_to"] is None
    if kind in ("zeros", "ones"):
        assert (plan["kind"], plan["mean"]) == ("constant", 1 if kind == "ones" else 0)
        return
    assert (plan["kind"], plan["mean"], request["convention"]) == ("normal", 0, "torch")
    assert plan["stddev"] == pytest.approx(std, rel=1e-15), t["name"]
    assert (plan["alpha"], plan["beta"], plan["limit"]) == (None, None, None), t["name"]
    assert tuple(request.get("zero_rows", ())) == rows, t["name"]


def check_values(name: str, tensor: torch.Tensor, law: tuple[str, float, tuple[int, ...]]) -> None:
    kind, std, rows = law
    values = tensor.double()
    if kind in ("zeros", "ones"):
        assert torch.all(values == (kind == "ones")), name
        return
    for row in rows:
        assert not values[row].any(), name
    kept = torch.cat([values[r] for r in range(values.shape[0]) if r not in rows]).flatten()
    n = kept.numel()
    if kind == "normal" and n >= 1000:
        assert float(kept.std()) == pytest.approx(std, rel=6 / math.sqrt(n) + 0.02), name
        assert abs(float(kept.mean())) < 6 * std / math.sqrt(n), name


@pytest.mark.parametrize(("recipe", "kind"), CASES)
def test_a_recipe_bundle_loads_strictly_into_the_real_model(
    client: TestClient, recipe: str, kind: str
) -> None:
    config = config_of(recipe, kind)
    d = describe(client, {"seed": 11, "recipe": recipe, "config": config})
    data = client.get(d["url"]).content
    assert len(data) == d["content_length"]
    assert data == client.post("/v1/bundles", json={"seed": 11, "recipe": recipe,
                                                    "config": config}).content  # fmt: skip
    state = safetensors.torch.load(data)
    model = hf_model(recipe, config)
    theirs = model.state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == {
        k: tuple(v.shape) for k, v in theirs.items()
    }
    model.load_state_dict(state, strict=True)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[name].to(tensor.dtype)), name
    dtype = (config.get("dtype") or "float32") if kind == "real" else "float32"
    cfg = hf_config(recipe, config)
    for t in d["tensors"]:
        assert t["dtype"] == dtype
        law = expected_law(recipe, t["name"], cfg)
        check_law(t, law)
        if law[0] == "tied":
            assert member_bytes(data, t["name"]) == member_bytes(data, t["tied_to"])
            assert t["request"]["name"] == t["tied_to"]
        else:
            check_values(t["name"], state[t["name"]], law)


@pytest.mark.parametrize("recipe", HF_CAUSAL)
def test_the_config_fields_it_does_not_read_are_listed_not_refused(
    client: TestClient, recipe: str
) -> None:
    config = config_of(recipe, "real")
    d = describe(client, {"recipe": recipe, "config": config})
    read = {f["name"] for f in recipes.lookup(recipe).fields()} | {"model_type"}
    assert d["ignored_config"] == sorted(set(config) - read)
    assert "architectures" in d["ignored_config"]
    plain = describe(client, {"tensors": [{"name": "a", "shape": [2], "scheme": "zeros"}]})
    assert plain["ignored_config"] == []
    assert plain["tensors"][0]["tied_to"] is None


def test_the_requests_dtype_wins_over_the_configs(client: TestClient) -> None:
    config = config_of("hf.llama", "real")  # dtype bfloat16
    assert {t["dtype"] for t in describe(client, {"recipe": "hf.llama", "config": config})[
        "tensors"]} == {"bfloat16"}  # fmt: skip
    for dtype in ("float32", "float16"):
        d = describe(client, {"seed": 1, "recipe": "hf.llama", "config": config, "dtype": dtype})
        assert {t["dtype"] for t in d["tensors"]} == {dtype}
        again = client.get(d["url"] + "?describe=true").json()  # the URL keeps the dtype
        assert {t["dtype"] for t in again["tensors"]} == {dtype}
        assert again["etag"] == d["etag"]
    torch_dtype = {**config, "dtype": None, "torch_dtype": "float16"}  # a 4.x config.json
    d = describe(client, {"recipe": "hf.llama", "config": torch_dtype})
    assert {t["dtype"] for t in d["tensors"]} == {"float16"}


def test_a_recipe_goes_with_tensors_and_layers(client: TestClient) -> None:
    config = config_of("hf.gpt2", "tiny")
    extra = {"name": "value_head.weight", "shape": [1, 48], "scheme": "zeros"}
    layer = {"preset": "torch.Linear", "name": "probe", "in_features": 48, "out_features": 2}
    body = {"seed": 2, "recipe": "hf.gpt2", "config": config, "tensors": [extra],
            "layers": [layer]}  # fmt: skip
    d = describe(client, body)
    names = {t["name"] for t in d["tensors"]}
    assert {"value_head.weight", "probe.weight", "probe.bias", "lm_head.weight"} <= names
    alone = describe(client, {"seed": 2, "recipe": "hf.gpt2", "config": config})
    both = client.get(d["url"]).content
    for t in alone["tensors"]:  # a member's bytes never depend on the others
        assert member_bytes(both, t["name"]) == member_bytes(client.get(alone["url"]).content,
                                                             t["name"])  # fmt: skip
    clash = {**body, "tensors": [{**extra, "name": "lm_head.weight"}]}
    r = client.post("/v1/bundles/describe", json=clash)
    assert r.status_code == 422
    assert "more than once: lm_head.weight" in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"config": {"n_layer": 2}}, "config needs a recipe"),
        ({"recipe": "hf.gpt3"}, "unknown recipe 'hf.gpt3'; expected one of hf.gpt2"),
        ({"recipe": "hf.llama", "config": {"num_hidden_layers": "2"}},
         "hf.llama config argument num_hidden_layers must be an integer"),
        ({"recipe": "hf.llama", "config": {"hidden_size": 0}},
         "hf.llama config needs hidden_size >= 1"),
        ({"recipe": "hf.qwen2", "config": {"model_type": "llama"}}, "model_type must be 'qwen2'"),
        ({"recipe": "hf.gpt2", "config": {"n_embd": 10}}, "divisible by n_head"),
        ({"recipe": "hf.llama", "config": {"num_hidden_layers": 2000}},
         "at most 10000 tensors; the tensors, layers and recipe of this request name 18003"),
        ({"recipe": "hf.llama", "config": []}, "dictionary"),
    ],
)  # fmt: skip
def test_bad_recipe_requests_are_problems(
    client: TestClient, body: dict[str, Any], text: str
) -> None:
    r = client.post("/v1/bundles", json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert text in r.json()["detail"]


def test_a_recipe_is_counted_before_it_is_expanded(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(_: object) -> list[Member]:
        raise AssertionError("expanded before counting")

    found = recipes.lookup("hf.llama")
    table = cast(dict[str, Any], recipes.RECIPES)
    monkeypatch.setitem(table, "hf.llama", dataclasses.replace(found, expand=refuse))
    body = {"recipe": "hf.llama", "config": {"num_hidden_layers": 1200}, "tensors": [
        {"name": "x", "shape": [1], "scheme": "zeros"}]}  # fmt: skip
    r = client.post("/v1/bundles/describe", json=body)
    assert r.status_code == 422
    assert "name 10804" in r.json()["detail"]


def test_an_8b_llama_plans_without_a_byte() -> None:
    """Llama-3-8B's shapes (the settings here cap a tensor at 2**24 elements, so a bigger app)."""
    big = create_app(Settings(max_elements=2**32, max_bytes=2**35))
    config = {"vocab_size": 128256, "hidden_size": 4096, "intermediate_size": 14336,
              "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
              "rope_theta": 500000.0, "dtype": "bfloat16"}  # fmt: skip
    with TestClient(big) as c:
        d = describe(c, {"seed": 0, "recipe": "hf.llama", "config": config})
    assert len(d["tensors"]) == 291
    assert d["content_length"] - d["header_bytes"] == 2 * 8_030_261_248
    assert d["ignored_config"] == ["rope_theta"]


def test_the_recipe_catalogue(client: TestClient) -> None:
    r = client.get("/v1/recipes")
    assert r.status_code == 200
    out = r.json()["recipes"]
    assert [x["name"] for x in out] == list(recipes.RECIPES)
    assert [x["name"] for x in out[:4]] == ["hf.gpt2", "hf.llama", "hf.mistral", "hf.qwen2"]
    for x in out:
        if x["stack"] == "transformers":
            assert x["version"] == transformers.__version__
        fields = {f["name"]: f for f in x["config"]}
        assert {"dtype", "torch_dtype"} <= set(fields)
        if x["name"] in HF_CAUSAL:
            assert fields["initializer_range"]["default"] == 0.02
            assert "tie_word_embeddings" in fields
        assert all(f["description"] for f in x["config"])
        for g in x["groups"]:
            assert g["formula"]
            assert g["law"] in get_args(Law)
            assert ".py:" in g["source"]
    gpt2 = {g["tensors"]: g for g in out[0]["groups"]}
    residual = next(g for k, g in gpt2.items() if "c_proj.weight" in k)
    assert residual["formula"] == "N(0, (initializer_range/√(2·n_layer))²)"
    assert residual["source"] == "transformers/models/gpt2/modeling_gpt2.py:446-449"
    llama = {f["name"]: f["default"] for f in out[1]["config"]}
    assert (llama["hidden_size"], llama["num_key_value_heads"], llama["vocab_size"]) == (
        4096, None, 32000)  # fmt: skip
    assert json.dumps(out)  # plain JSON


def test_select_sends_only_the_named_members_with_the_same_bytes(client: TestClient) -> None:
    """A checkpoint's shard: the members `select` names, in the bundle's order, each with the
    bytes it has in the whole bundle; the URL keeps the selection."""
    config = config_of("hf.gpt2", "real")  # tied lm_head
    whole_d = describe(client, {"seed": 5, "recipe": "hf.gpt2", "config": config})
    whole = client.get(whole_d["url"]).content
    names = [t["name"] for t in whole_d["tensors"]]
    chosen = [names[7], names[2], "lm_head.weight", "transformer.wte.weight"]
    body = {"seed": 5, "recipe": "hf.gpt2", "config": config, "select": chosen}
    part_d = describe(client, body)
    assert [t["name"] for t in part_d["tensors"]] == [n for n in names if n in chosen]
    part = client.get(part_d["url"]).content
    assert part == client.post("/v1/bundles", json=body).content
    assert len(part) == part_d["content_length"]
    assert set(safetensors.torch.load(part)) == set(chosen)
    for name in chosen:
        assert member_bytes(part, name) == member_bytes(whole, name), name
    assert part_d["etag"] != whole_d["etag"]
    tied = next(t for t in part_d["tensors"] if t["name"] == "lm_head.weight")
    assert tied["tied_to"] == "transformer.wte.weight"


@pytest.mark.parametrize(
    ("select", "text"),
    [
        ([], "at least 1 item"),
        (["transformer.wte.weight", "transformer.wte.weight"], "given more than once: "
         "transformer.wte.weight"),
        (["transformer.wte.weight", "nope", "nada"], "not members of the bundle: nada, nope"),
        (["lm_head.weight"], "tied to a member not selected: lm_head.weight (select "
         "transformer.wte.weight too)"),
        (["bad name"], "select/0: String should match pattern"),
    ],
)  # fmt: skip
def test_a_bad_select_is_a_problem(client: TestClient, select: list[str], text: str) -> None:
    body = {"recipe": "hf.gpt2", "config": config_of("hf.gpt2", "tiny") | {
        "tie_word_embeddings": True}, "select": select}  # fmt: skip
    r = client.post("/v1/bundles/describe", json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert text in r.text
