"""Every preset argument's framework name (`GET /v1/presets` `framework_name`) against the real
layer constructors: a name the catalogue gives is a parameter of the framework's layer (torch.nn
and Keras 3 signatures, Flax linen dataclass fields, GPT-2's config), and an argument the
catalogue says the layer infers is not one of them."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.arguments import declared
from service.presets import PRESETS

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported (it reads it once)

# where each preset family's layers live; gpt2's presets are torch layers under GPT2Config
FAMILIES: dict[str, tuple[str, ...]] = {
    "torch": ("torch.nn",),
    "keras": ("keras.layers",),
    "flax": ("flax.linen",),
    "gpt2": ("torch.nn", "transformers:GPT2Config"),
}


def _parameters(target: Any) -> set[str]:
    if dataclasses.is_dataclass(target):  # flax linen modules are dataclasses
        return {f.name for f in dataclasses.fields(target)}
    for cls in inspect.getmro(target):  # torch's RNN/LSTM/GRU take (*args, **kwargs) on to RNNBase
        init = vars(cls).get("__init__")
        if init is None:
            continue
        names = set(inspect.signature(init).parameters) - {"self", "args", "kwargs"}
        if names:
            return names
    raise AssertionError(f"{target} declares no parameters")


def _framework_parameters(preset: str) -> set[str]:
    family, layer = preset.split(".", 1)
    names: set[str] = set()
    for where in FAMILIES[family]:
        module_name, _, attribute = where.partition(":")
        module = pytest.importorskip(module_name.split(".")[0])
        module = importlib.import_module(module_name)
        names |= _parameters(getattr(module, attribute or layer))
    return names


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_framework_names_are_the_layers_own(preset: str) -> None:
    if preset.startswith("keras."):
        keras = pytest.importorskip("keras")
        if keras.backend.backend() != "torch":
            pytest.skip("keras was imported earlier with another backend")
    real = _framework_parameters(preset)
    for d in declared(PRESETS[preset].args):
        if d.framework_name is None:
            assert d.name not in real, f"{preset} {d.name}: the layer takes it, yet called inferred"
        else:
            assert d.framework_name in real, (
                f"{preset} {d.name} -> {d.framework_name} not in {real}"
            )


def test_catalogue_lists_every_arguments_framework_name(client: TestClient) -> None:
    listed = {p["name"]: p["args"] for p in client.get("/v1/presets").json()["presets"]}
    assert listed.keys() == PRESETS.keys()
    for name, args in listed.items():
        assert [a["framework_name"] for a in args] == [
            d.framework_name for d in declared(PRESETS[name].args)
        ]
    renamed = {a["name"]: a["framework_name"] for a in listed["keras.MultiHeadAttention"]}
    assert renamed["output_dim"] == "output_shape"
    assert renamed["query_dim"] is None
    assert {a["name"]: a["framework_name"] for a in listed["torch.Linear"]}["bias"] == "bias"
