"""Bundles: whole models' initial weights as one safetensors stream."""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import struct
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import pytest
import safetensors
import safetensors.torch
import torch
from fastapi.testclient import TestClient
from torch import nn

MLP: dict[str, Any] = {
    "seed": 7,
    "convention": "torch",
    "layers": [
        {
            "preset": "torch.Embedding",
            "name": "0",
            "num_embeddings": 100,
            "embedding_dim": 32,
            "padding_idx": 0,
        },
        {"preset": "torch.Linear", "name": "1", "in_features": 32, "out_features": 256},
        {"preset": "torch.Linear", "name": "3", "in_features": 256, "out_features": 10},
    ],
}  # nn.Sequential(Embedding, Linear, ReLU, Linear)
CNN: dict[str, Any] = {
    "seed": 8,
    "layers": [
        {
            "preset": "torch.Conv2d",
            "name": "0",
            "in_channels": 3,
            "out_channels": 16,
            "kernel_size": 3,
        },
        {"preset": "torch.BatchNorm2d", "name": "1", "num_features": 16},
        {
            "preset": "torch.Conv2d",
            "name": "3",
            "in_channels": 16,
            "out_channels": 32,
            "kernel_size": [3, 3],
            "groups": 2,
        },
        {"preset": "torch.Linear", "name": "6", "in_features": 32, "out_features": 10},
    ],
}
BLOCK: dict[str, Any] = {
    "seed": 9,
    "layers": [
        {
            "preset": "torch.MultiheadAttention",
            "name": "self_attn",
            "embed_dim": 64,
            "num_heads": 4,
        },
        {"preset": "torch.Linear", "name": "linear1", "in_features": 64, "out_features": 256},
        {"preset": "torch.Linear", "name": "linear2", "in_features": 256, "out_features": 64},
        {"preset": "torch.LayerNorm", "name": "norm1", "normalized_shape": 64},
        {"preset": "torch.LayerNorm", "name": "norm2", "normalized_shape": 64},
    ],
}


def models() -> list[tuple[dict[str, Any], nn.Module]]:
    return [
        (
            MLP,
            nn.Sequential(
                nn.Embedding(100, 32, padding_idx=0),
                nn.Linear(32, 256),
                nn.ReLU(),
                nn.Linear(256, 10),
            ),
        ),
        (
            CNN,
            nn.Sequential(
                nn.Conv2d(3, 16, 3),
                nn.BatchNorm2d(16),
                nn.ReLU(),
                nn.Conv2d(16, 32, 3, groups=2),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
                nn.Linear(32, 10),
            ),
        ),
        (BLOCK, nn.TransformerEncoderLayer(64, 4, dim_feedforward=256, batch_first=True)),
    ]


def fetch(client: TestClient, manifest: dict[str, Any]) -> bytes:
    r = client.post("/v1/bundles", json=manifest)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.safetensors"
    assert int(r.headers["content-length"]) == len(r.content)
    return r.content


@pytest.mark.parametrize("index", [0, 1, 2], ids=["mlp", "cnn", "transformer-block"])
def test_torch_models_load_bundles_strictly_with_the_planned_std(
    client: TestClient, index: int, tmp_path: Path
) -> None:
    manifest, model = models()[index]
    data = fetch(client, manifest)
    state = safetensors.torch.load(data)
    model.load_state_dict(state, strict=True)
    path = tmp_path / "init.safetensors"
    path.write_bytes(data)
    with safetensors.safe_open(str(path), framework="pt") as f:
        assert set(f.keys()) == set(model.state_dict())
        meta = f.metadata()
    assert meta["format"] == "pt"
    assert meta["weightgen.seed"] == str(manifest["seed"])
    for name, tensor in state.items():
        plan = json.loads(meta[f"weightgen.plan.{name}"])
        values = tensor.double().flatten()
        if name.endswith("num_batches_tracked"):
            assert tensor.dtype == torch.int64
            continue
        if plan["kind"] == "constant":
            assert torch.all(values == float(plan["mean"]))
            continue
        if "high" in plan:
            assert float(plan["low"]) <= float(values.min())
            assert float(values.max()) <= float(plan["high"])
        n = values.numel()
        if n < 48:
            continue
        std = float(plan["effective_std"])
        if "zero_rows" in plan:  # the padding row is zero: compare the other rows
            values = tensor[1:].double().flatten()
        assert float(values.std()) == pytest.approx(std, rel=6 / math.sqrt(n) + 0.02), name


def test_embedding_padding_row_is_zero(client: TestClient) -> None:
    state = safetensors.torch.load(fetch(client, MLP))
    assert not state["0.weight"][0].any()
    assert state["0.weight"][1].abs().sum() > 0


def member_bytes(data: bytes, name: str) -> bytes:
    (n,) = struct.unpack("<Q", data[:8])
    begin, end = json.loads(data[8 : 8 + n])[name]["data_offsets"]
    return data[8 + n + begin : 8 + n + end]


def test_a_member_equals_the_single_tensor_request(client: TestClient) -> None:
    data = fetch(client, BLOCK)
    single = client.post(
        "/v1/tensors",
        json={
            "shape": [64, 256],
            "scheme": "kaiming_uniform",
            "convention": "torch",
            "negative_slope": math.sqrt(5),
            "seed": 9,
            "name": "linear2.weight",
            "format": "raw",
        },
    )
    assert member_bytes(data, "linear2.weight") == single.content


def test_reordering_and_adding_members_changes_no_member(client: TestClient) -> None:
    data = fetch(client, BLOCK)
    bigger = {
        **BLOCK,
        "layers": [
            *reversed(BLOCK["layers"]),
            {"preset": "torch.Linear", "name": "extra", "in_features": 3, "out_features": 3},
        ],
    }
    other = fetch(client, bigger)
    for name in safetensors.torch.load(data):
        assert member_bytes(other, name) == member_bytes(data, name)
    reordered = fetch(client, {**BLOCK, "layers": list(reversed(BLOCK["layers"]))})
    assert reordered == data


def test_header_order_is_the_reference_writers(client: TestClient) -> None:
    manifest = {
        "seed": 1,
        "tensors": [
            {"name": "b", "shape": [3], "scheme": "zeros", "dtype": "float16"},
            {"name": "a", "shape": [3], "scheme": "zeros", "dtype": "float16"},
            {"name": "c", "shape": [2], "scheme": "zeros", "dtype": "float64"},
            {"name": "d", "shape": [2], "scheme": "zeros", "dtype": "bfloat16"},
            {"name": "e", "shape": [], "scheme": "zeros", "dtype": "int64"},
        ],
    }
    data = fetch(client, manifest)
    ours = [
        k for k in json.loads(data[8 : 8 + struct.unpack("<Q", data[:8])[0]]) if k != "__metadata__"
    ]
    reference = safetensors.torch.save(
        {k: v.clone() for k, v in safetensors.torch.load(data).items()}
    )
    theirs = [
        k
        for k in json.loads(reference[8 : 8 + struct.unpack("<Q", reference[:8])[0]])
        if k != "__metadata__"
    ]
    assert ours == theirs


def test_describe_url_ranges_and_validators(client: TestClient) -> None:
    d = client.post("/v1/bundles/describe", json=BLOCK).json()
    url = d["url"]
    full = client.get(url)
    assert full.status_code == 200
    assert full.content == fetch(client, BLOCK)
    assert full.headers["etag"] == d["etag"]
    assert len(full.content) == d["content_length"]
    # the two-request way to read the header, then one tensor by range
    n = struct.unpack("<Q", client.get(url, headers={"Range": "bytes=0-7"}).content)[0]
    header = json.loads(client.get(url, headers={"Range": f"bytes=8-{7 + n}"}).content)
    begin, end = header["norm1.weight"]["data_offsets"]
    part = client.get(url, headers={"Range": f"bytes={8 + n + begin}-{8 + n + end - 1}"})
    assert part.status_code == 206
    assert part.content == member_bytes(full.content, "norm1.weight")
    member = next(t for t in d["tensors"] if t["name"] == "linear1.weight")
    assert member["data_offsets"] == header["linear1.weight"]["data_offsets"]
    single = client.post("/v1/tensors", json={**member["request"], "format": "raw"})
    assert single.content == member_bytes(full.content, "linear1.weight")
    assert client.get(url, headers={"If-None-Match": d["etag"]}).status_code == 304
    head = client.head(url)
    assert head.headers["content-length"] == str(d["content_length"])
    assert client.get(url + "?describe=true").json()["etag"] == d["etag"]


def test_a_bundle_url_refuses_parameters_it_does_not_know(client: TestClient) -> None:
    url = client.post("/v1/bundles/describe", json=BLOCK).json()["url"]
    r = client.get(url + "?seed=3&describe=false")
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"pointer": "#/seed", "detail": "Extra inputs are not permitted", "received": "'3'"}
    ]
    assert client.get(url + "?describe=false").status_code == 200
    twice = client.get(url + "?describe=true&describe=false")  # refused, as on tensor URLs
    assert twice.status_code == 422
    assert "given more than once" in twice.json()["detail"]
    assert client.get(url + "?describe=maybe").status_code == 422


def test_a_bundle_url_is_planned_once(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bundle's GET URL pins its seed in the manifest: its plan is kept, and the ranges a
    parallel download sends are answered from it (service.api.cache), with the same bytes."""
    from service.api import bundles

    made: list[int] = []
    make = bundles.make

    def counted(body: Any, request: Any) -> Any:
        made.append(1)
        return make(body, request)

    monkeypatch.setattr(bundles, "make", counted)
    url = client.post("/v1/bundles/describe", json=BLOCK).json()["url"]
    assert made == [1]
    full = client.get(url)
    assert made == [1, 1]
    parts = [client.get(url, headers={"Range": f"bytes={a}-{a + 999}"}) for a in (0, 1000, 2000)]
    assert [p.status_code for p in parts] == [206] * 3
    assert b"".join(p.content for p in parts) == full.content[:3000]
    assert client.head(url).headers["content-length"] == str(len(full.content))
    assert made == [1, 1]
    assert client.get(url + "?describe=true").status_code == 200  # JSON: never from the cache
    assert made == [1, 1, 1]
    text = client.get("/metrics").text
    assert (
        'weightgen_requests_total{method="GET",route="/v1/bundles/{manifest}",status="206"} 3.0'
        in text
    )
    no_seed = {k: v for k, v in BLOCK.items() if k != "seed"}
    manifest = base64.urlsafe_b64encode(zlib.compress(json.dumps(no_seed).encode())).decode()
    first = client.get(f"/v1/bundles/{manifest.rstrip('=')}")
    again = client.get(f"/v1/bundles/{manifest.rstrip('=')}")
    assert first.headers["x-init-seed"] != again.headers["x-init-seed"]  # drawn each time
    assert first.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("manifest", "status", "text"),
    [
        (
            {"tensors": [{"name": "a", "shape": [2], "scheme": "zeros"}] * 2},
            422,
            "more than once: a",
        ),
        (
            {"layers": [{"preset": "torch.Linearr", "name": "x"}]},
            422,
            "unknown preset 'torch.Linearr'; expected one of",
        ),
        (
            {"layers": [{"preset": "torch.Linear", "name": "x", "in_features": 3}]},
            422,
            "needs out_features",
        ),
        (
            {
                "layers": [
                    {
                        "preset": "torch.Linear",
                        "name": "x",
                        "in_features": 3,
                        "out_features": 2,
                        "bias": "yes",
                    }
                ]
            },
            422,
            "must be true or false",
        ),
        (
            {
                "layers": [
                    {
                        "preset": "torch.Linear",
                        "name": "x",
                        "in_features": 3,
                        "out_features": 2,
                        "foo": 1,
                    }
                ]
            },
            422,
            "does not take foo",
        ),
        (
            {
                "layers": [
                    {
                        "preset": "torch.Conv2d",
                        "name": "x",
                        "in_channels": 3,
                        "out_channels": 4,
                        "kernel_size": 3,
                        "groups": 2,
                    }
                ]
            },
            422,
            "divisible by groups",
        ),
        ({}, 422, "at least one tensor"),
        (
            {
                "layers": [
                    {
                        "preset": "gpt2.Linear",
                        "name": "x",
                        "in_features": 4,
                        "out_features": 4,
                        "residual": True,
                        "n_layers": -2,
                    }
                ]
            },
            422,
            "needs n_layers >= 1",
        ),
        ({"tensors": [{"shape": [2], "scheme": "zeros"}]}, 422, "Field required"),
    ],
)
def test_bad_manifests_are_problems(
    client: TestClient, manifest: dict[str, Any], status: int, text: str
) -> None:
    r = client.post("/v1/bundles", json=manifest)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    assert text in r.json()["detail"]


def test_bad_manifest_urls_are_problems(client: TestClient) -> None:
    def pack(text: bytes) -> str:
        return base64.urlsafe_b64encode(zlib.compress(text)).decode().rstrip("=")

    bomb = pack(b"[" + b" " * (4 << 20) + b"]")
    for manifest in ("not-base64!", "AAAA", pack(b"{not json"), pack(b'{"tensors": 5}'), bomb):
        r = client.get(f"/v1/bundles/{manifest}")
        assert r.status_code == 422
        assert r.headers["content-type"] == "application/problem+json"


def test_bundles_answer_only_safetensors(client: TestClient) -> None:
    r = client.post("/v1/bundles", json=BLOCK, headers={"Accept": "application/x-npy"})
    assert r.status_code == 406


def test_presets_catalogue(client: TestClient) -> None:
    data = client.get("/v1/presets").json()
    linear = next(p for p in data["presets"] if p["name"] == "torch.Linear")
    assert {a["name"] for a in linear["args"]} == {"in_features", "out_features", "bias"}
    assert next(a for a in linear["args"] if a["name"] == "bias")["default"] is True


@pytest.mark.parametrize(
    ("kdim", "vdim", "add_bias_kv"), [(None, None, True), (32, 48, False), (32, 48, True)]
)
def test_multihead_attention_variants_load_strictly(
    client: TestClient, kdim: int | None, vdim: int | None, add_bias_kv: bool
) -> None:
    layer = {
        "preset": "torch.MultiheadAttention",
        "name": "attn",
        "embed_dim": 64,
        "num_heads": 4,
        "kdim": kdim,
        "vdim": vdim,
        "add_bias_kv": add_bias_kv,
    }
    model = nn.Module()
    model.attn = nn.MultiheadAttention(64, 4, kdim=kdim, vdim=vdim, add_bias_kv=add_bias_kv)
    state = safetensors.torch.load(fetch(client, {"seed": 3, "layers": [layer]}))
    model.load_state_dict(state, strict=True)
    if add_bias_kv:
        assert float(state["attn.bias_k"].std()) == pytest.approx(
            1 / 8, rel=0.3
        )  # xavier on (1,1,64)


HUGE = 10**400  # a 401-digit integer


def lstm_layer(**args: Any) -> dict[str, Any]:
    base = {"preset": "torch.LSTM", "name": "a", "input_size": 2, "hidden_size": 2}
    return {"seed": 1, "layers": [{**base, **args}]}


def manifest_url(body: dict[str, Any]) -> str:
    packed = zlib.compress(json.dumps(body).encode())
    return "/v1/bundles/" + base64.urlsafe_b64encode(packed).decode().rstrip("=")


@pytest.mark.parametrize(
    ("args", "text"),
    [
        ({"num_layers": HUGE}, "torch.LSTM needs num_layers >= 0 and <= 10000; received 1000"),
        ({"num_layers": -1}, "torch.LSTM needs num_layers >= 0 and <= 10000; received -1"),
        ({"num_layers": 1_000_000}, "needs num_layers >= 0 and <= 10000; received 1000000"),
        ({"hidden_size": HUGE}, "needs hidden_size >= 0 and <= 1099511627776"),
        ({"input_size": -3}, "needs input_size >= 0"),
        ({"bias": 1}, "argument bias must be true or false; received 1"),
    ],
)
@pytest.mark.parametrize("how", ["post", "get"])
def test_preset_arguments_are_checked_at_the_edge_with_their_bounds(
    client: TestClient, args: dict[str, Any], text: str, how: str
) -> None:
    """A preset argument is refused by its declaration (its name and bounds in the problem),
    in POST bodies and in GET manifests alike, before any member exists."""
    body = lstm_layer(**args)
    tracemalloc.start()
    r = (
        client.post("/v1/bundles/describe", json=body)
        if how == "post"
        else client.get(manifest_url(body))
    )
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert text in r.json()["detail"]
    assert r.json()["errors"][0]["pointer"].endswith("/layers/0")
    assert peak < 4 << 20  # nothing proportional to the number asked for


def test_a_bundle_counts_its_layers_before_expanding_them(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service import presets

    lstm = presets.lookup("torch.LSTM")

    def refuse(*_: Any) -> Any:
        raise AssertionError("expanded before it was counted")

    monkeypatch.setitem(
        presets.PRESETS,
        "torch.LSTM",
        dataclasses.replace(lstm, expand=refuse),
    )
    r = client.post("/v1/bundles/describe", json=lstm_layer(num_layers=2500, bidirectional=True))
    assert r.status_code == 422
    assert (
        "at most 10000 tensors; the tensors and layers of this request name 20000"
        in (r.json()["detail"])
    )


def test_the_openapi_schema_lists_each_presets_arguments_with_their_bounds(
    client: TestClient,
) -> None:
    components = client.get("/openapi.json").json()["components"]["schemas"]
    lstm = components["TorchLstmLayer"]["properties"]
    assert lstm["num_layers"]["maximum"] == 10_000
    assert lstm["num_layers"]["default"] == 1
    assert lstm["preset"]["const"] == "torch.LSTM"
    assert "hidden_size" in components["TorchLstmLayer"]["required"]


def _bounds(schema: dict[str, Any]) -> dict[str, float]:
    """minimum/maximum of a property, through `anyOf` (nullable) and array items."""
    found: dict[str, float] = {}
    for part in [schema, *schema.get("anyOf", [])]:
        for inner in (part, part.get("items", {})):
            found |= {k: float(inner[k]) for k in ("minimum", "maximum") if k in inner}
    return found


def test_the_preset_catalogue_and_the_openapi_schema_agree(client: TestClient) -> None:
    """Both are made from the presets' declarations: the same arguments, required ones,
    defaults and bounds, for every preset."""
    components = client.get("/openapi.json").json()["components"]["schemas"]
    models = {
        c["properties"]["preset"]["const"]: c
        for c in components.values()
        if "preset" in c.get("properties", {}) and "const" in c["properties"]["preset"]
    }
    catalogue = client.get("/v1/presets").json()["presets"]
    assert {p["name"] for p in catalogue} == set(models)
    for preset in catalogue:
        model = models[preset["name"]]
        assert set(model["properties"]) == {"preset", "name"} | {a["name"] for a in preset["args"]}
        required = {a["name"] for a in preset["args"] if a["required"]}
        assert set(model["required"]) == {"preset", "name"} | required
        for a in preset["args"]:
            prop = model["properties"][a["name"]]
            assert prop.get("default") == (None if a["required"] else a.get("default"))
            wanted = {k: float(a[k]) for k in ("minimum", "maximum") if k in a}
            assert _bounds(prop) == wanted, (preset["name"], a["name"])


def test_a_bad_layer_field_points_into_the_body(client: TestClient) -> None:
    """pydantic's path names the preset (its union's tag); the problem's pointer does not."""
    layer = {"preset": "torch.Linear", "name": "a b", "in_features": 2, "out_features": 2}
    r = client.post("/v1/bundles/describe", json={"seed": 1, "layers": [layer]})
    assert r.status_code == 422
    assert [e["pointer"] for e in r.json()["errors"]] == ["#/layers/0/name"]


@pytest.mark.parametrize("depth", [900, 950])
def test_deeply_nested_preset_arguments_are_a_problem(client: TestClient, depth: int) -> None:
    nested = "[" * depth + "1" + "]" * depth
    layer = '{"preset":"torch.Linear","name":"x","in_features":NESTED,"out_features":2}'
    body = '{"seed":1,"layers":[' + layer.replace("NESTED", nested) + "]}"
    for r in (
        client.post(
            "/v1/bundles/describe", content=body, headers={"content-type": "application/json"}
        ),
        client.get(manifest_url(json.loads(body))),
    ):
        assert r.status_code == 422
        assert r.headers["content-type"] == "application/problem+json"
