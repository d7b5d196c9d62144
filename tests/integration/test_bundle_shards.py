"""Parts of a bundle's members: a `tensors` entry's slice or shard, the bundle's `shard` (every
member along its own axis) and `shards` (by name): each member's bytes are numpy's slicing
(torch.chunk's piece) of the member in the whole bundle; tied members follow their source;
what does not fit is a problem naming the member."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pytest
import safetensors.torch
import torch
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

MLP: dict[str, Any] = {
    "seed": 5,
    "convention": "torch",
    "layers": [
        {
            "preset": "torch.Embedding",
            "name": "emb",
            "num_embeddings": 11,
            "embedding_dim": 6,
            "padding_idx": 4,
        },
        {"preset": "torch.Linear", "name": "fc", "in_features": 6, "out_features": 7},
    ],
}
GPT2 = {
    "seed": 1,
    "recipe": "hf.gpt2",
    "config": {"n_layer": 1, "n_embd": 16, "n_head": 2, "vocab_size": 50, "n_positions": 8},
}


def state(client: TestClient, body: dict[str, Any]) -> dict[str, torch.Tensor]:
    r = client.post("/v1/bundles", json=body)
    assert r.status_code == 200, r.text
    assert int(r.headers["content-length"]) == len(r.content)
    return safetensors.torch.load(r.content)


def header(data: bytes) -> dict[str, Any]:
    (n,) = struct.unpack("<Q", data[:8])
    out: dict[str, Any] = json.loads(data[8 : 8 + n])
    return out


@pytest.mark.parametrize("dim", [0, -1])
@pytest.mark.parametrize("count", [2, 3, 4])
def test_the_bundles_shard_is_torch_chunk_of_every_member(
    client: TestClient, dim: int, count: int
) -> None:
    full = state(client, MLP)
    for index in range(count):
        body = {**MLP, "shard": {"dim": dim, "index": index, "count": count}}
        pieces = {name: torch.chunk(t, count, dim) for name, t in full.items()}
        got = state(client, body)
        assert set(got) == set(full)
        for name, tensor in got.items():
            if index < len(pieces[name]):
                assert torch.equal(tensor, pieces[name][index]), name
            else:  # past torch.chunk's pieces (fc.weight (7, 6) into 4 makes 4; into 3, …):
                # DTensor's rank holds an empty tensor there, and so does the bundle
                empty = list(full[name].shape)
                empty[dim] = 0
                assert list(tensor.shape) == empty, name


def test_shards_by_name_cut_only_those(client: TestClient) -> None:
    full = state(client, MLP)
    plan = {
        "fc.weight": {"dim": 1, "index": 1, "count": 2},
        "emb.weight": {"dim": 0, "index": 2, "count": 3},
    }
    r = client.post("/v1/bundles", json={**MLP, "shards": plan})
    got = safetensors.torch.load(r.content)
    assert torch.equal(got["fc.weight"], torch.chunk(full["fc.weight"], 2, 1)[1])
    assert torch.equal(got["emb.weight"], torch.chunk(full["emb.weight"], 3, 0)[2])
    assert torch.equal(got["fc.bias"], full["fc.bias"])
    meta = header(r.content)["__metadata__"]
    numbers = json.loads(meta["weightgen.plan.fc.weight"])
    assert (numbers["full_shape"], numbers["slice"]) == ("7,6", "0:7,3:6")
    unsharded = json.loads(state_meta(client, MLP)["weightgen.plan.fc.weight"])
    assert {k: v for k, v in numbers.items() if k not in ("full_shape", "slice")} == unsharded


def state_meta(client: TestClient, body: dict[str, Any]) -> dict[str, str]:
    meta: dict[str, str] = header(client.post("/v1/bundles", json=body).content)["__metadata__"]
    return meta


def test_padding_rows_stay_zero_in_a_sharded_bundle(client: TestClient) -> None:
    got = state(client, {**MLP, "shards": {"emb.weight": {"dim": 0, "index": 1, "count": 3}}})
    assert not got["emb.weight"][0].any()  # row 4 of the whole table: the padding row
    assert got["emb.weight"][1:].all()


def test_a_members_own_slice_and_shard(client: TestClient) -> None:
    member = {"name": "w", "shape": [12, 10], "scheme": "he_normal", "convention": "torch"}
    body = {
        "seed": 3,
        "tensors": [
            {**member, "slice": "2:9,:4"},
            {**member, "name": "v", "shard": {"dim": 1, "index": 2, "count": 3}},
        ],
    }
    r = client.post("/v1/bundles", json=body)
    assert r.status_code == 200, r.text
    got = safetensors.torch.load(r.content)
    for name, url, part in (
        ("w", "slice=2:9,:4", (slice(2, 9), slice(0, 4))),
        ("v", "shard=1:2:3", (slice(None), slice(8, 10))),
    ):
        single = client.get(
            f"/v1/tensors/he_normal?shape=12,10&seed=3&convention=torch&name={name}&format=raw&{url}"
        )
        assert got[name].numpy().tobytes() == single.content
        whole = client.get(
            f"/v1/tensors/he_normal?shape=12,10&seed=3&convention=torch&name={name}&format=raw"
        )
        assert single.content == np.frombuffer(whole.content, "<f4").reshape(12, 10)[part].tobytes()
    described = client.post("/v1/bundles/describe", json=body).json()
    by_name = {t["name"]: t for t in described["tensors"]}
    assert (by_name["w"]["shape"], by_name["w"]["request"]["slice"]) == ([7, 4], "2:9,0:4")
    again = client.get(described["url"])  # the GET URL keeps the parts, Range included
    assert again.content == r.content
    assert again.headers["etag"] == r.headers["etag"]
    ranged = client.get(described["url"], headers={"Range": "bytes=100-199"})
    assert (ranged.status_code, ranged.content) == (206, r.content[100:200])


def test_a_tied_member_takes_its_sources_part(client: TestClient) -> None:
    full = state(client, GPT2)
    wte = {"dim": 0, "index": 1, "count": 2}
    got = state(client, {**GPT2, "shards": {"transformer.wte.weight": wte}})
    piece = torch.chunk(full["transformer.wte.weight"], 2, 0)[1]
    assert torch.equal(got["transformer.wte.weight"], piece)
    assert torch.equal(got["lm_head.weight"], piece)
    both = {"transformer.wte.weight": wte, "lm_head.weight": wte}
    assert torch.equal(state(client, {**GPT2, "shards": both})["lm_head.weight"], piece)
    every = state(client, {**GPT2, "shard": {"dim": -1, "index": 0, "count": 2}})
    assert torch.equal(every["lm_head.weight"], every["transformer.wte.weight"])
    other = {**both, "lm_head.weight": {"dim": 1, "index": 0, "count": 2}}
    r = client.post("/v1/bundles", json={**GPT2, "shards": other})
    assert r.status_code == 422
    assert "lm_head.weight is tied to transformer.wte.weight" in r.json()["detail"]


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (
            {"shard": {"dim": 1, "index": 0, "count": 2}},
            "member fc.bias: shard dim 1 is outside shape [7]",
        ),
        ({"shards": {"nope": {"dim": 0, "index": 0, "count": 2}}}, "not members: nope"),
        (
            {"shard": {"dim": 0, "index": 0, "count": 2}, "shards": {}},
            "give shard (every member) or shards",
        ),
        (
            {"shards": {"fc.weight": {"dim": 0, "index": 8, "count": 8}}},
            "member fc.weight: shard '0:8:8' of shape [7, 6]: torch.chunk of 7 into 8 makes 7",
        ),
        (
            {
                "shard": {"dim": 0, "index": 0, "count": 2},
                "tensors": [{"name": "t", "shape": [4], "scheme": "zeros", "slice": ":2"}],
            },
            "t has its own slice or shard",
        ),
    ],
)
def test_bundle_parts_that_do_not_fit_are_problems(
    client: TestClient, change: dict[str, Any], detail: str
) -> None:
    r = client.post("/v1/bundles", json={**MLP, **change})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert detail in r.json()["detail"]


@st.composite
def members(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for i in range(draw(st.integers(1, 4))):
        shape = draw(st.lists(st.integers(0, 7), min_size=1, max_size=3))
        bounds = []
        for n in shape:
            a = draw(st.integers(0, n))
            bounds.append(f"{a}:{draw(st.integers(a, n))}")
        scheme = draw(st.sampled_from(["he_uniform", "glorot_normal", "ones"]))
        out.append({"name": f"m{i}", "shape": shape, "scheme": scheme, "slice": ",".join(bounds)})
    return out


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(members(), st.sampled_from(["float32", "float64", "bfloat16", "float16"]))
def test_bundle_members_are_numpys_slices_of_the_whole_members(
    client: TestClient, tensors: list[dict[str, Any]], dtype: str
) -> None:
    whole = [{k: v for k, v in t.items() if k != "slice"} for t in tensors]
    full = state(client, {"seed": 8, "dtype": dtype, "tensors": whole})
    got = state(client, {"seed": 8, "dtype": dtype, "tensors": tensors})
    for t in tensors:
        index = tuple(slice(*map(int, b.split(":"))) for b in t["slice"].split(","))
        expected = full[t["name"]][index]
        assert got[t["name"]].shape == expected.shape
        assert torch.equal(
            got[t["name"]].view(torch.uint8), expected.contiguous().view(torch.uint8)
        )
