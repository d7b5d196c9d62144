"""Helpers the framework tests share: a layer's bundle through the live app (describe, then its
URL), and the text of a recipe group's cited `file:lines` in an installed stack."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import safetensors.numpy
from fastapi.testclient import TestClient


def describe_layer(client: TestClient, preset: str, args: dict[str, Any], seed: int) -> Any:
    """`POST /v1/bundles/describe` of one layer named `m`."""
    layer = {"preset": preset, "name": "m", **args}
    described = client.post("/v1/bundles/describe", json={"seed": seed, "layers": [layer]})
    assert described.status_code == 200, described.text
    return described.json()


def refused_layer(client: TestClient, preset: str, args: dict[str, Any], text: str) -> None:
    """Describing that layer is a 422 whose problem says `text`."""
    layer = {"preset": preset, "name": "m", **args}
    r = client.post("/v1/bundles/describe", json={"seed": 1, "layers": [layer]})
    assert r.status_code == 422, r.text
    assert text in r.text


def layer_bytes(client: TestClient, preset: str, args: dict[str, Any], seed: int) -> bytes:
    """The safetensors bytes of that layer's bundle, fetched from its URL."""
    got = client.get(describe_layer(client, preset, args, seed)["url"])
    assert got.status_code == 200, got.text
    return got.content


def layer_arrays(
    client: TestClient, preset: str, args: dict[str, Any], seed: int
) -> dict[str, Any]:
    """That bundle as numpy arrays by member name."""
    return dict(safetensors.numpy.load(layer_bytes(client, preset, args, seed)))


def cited(source: str, root: Path) -> str:
    """The text of every `file:lines` in `source` (lines: `a`, `a-b`, comma-separated)."""
    out = []
    for cite in source.split("; "):
        path, _, lines = cite.partition(":")
        text = (root / path).read_text().splitlines()
        for part in lines.split(", "):
            first, _, last = part.partition("-")
            assert 1 <= int(first) <= int(last or first) <= len(text), cite
            out += text[int(first) - 1 : int(last or first)]
    return "\n".join(out)


def layout(state: Mapping[str, Any]) -> list[tuple[str, tuple[int, ...]]]:
    """A state dict's names and shapes, in its order."""
    return [(k, tuple(v.shape)) for k, v in state.items()]


def members_layout(members: Sequence[Any]) -> list[tuple[str, tuple[int, ...]]]:
    """A recipe's members' names and shapes, in their order."""
    return [(m.name, tuple(m.shape)) for m in members]


def assert_loads_strictly(
    model: Any, bundle: Mapping[str, Any], reference: Mapping[str, Any]
) -> None:
    """The bundle has the reference state dict's dtypes and shapes, and `model` takes it with
    strict=True, holding exactly its values afterwards."""
    import torch

    assert {k: (v.dtype, v.shape) for k, v in bundle.items()} == {
        k: (v.dtype, v.shape) for k, v in reference.items()
    }
    model.load_state_dict(bundle, strict=True)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, bundle[name]), name
