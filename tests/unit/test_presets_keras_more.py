"""The Keras presets of service.presets.keras_more against the real Keras 3 layers (torch
backend): weight paths, shapes and dtypes exactly, the bundle (through `POST /v1/bundles/describe`
and its url) loaded with `layer.set_weights` in the layer's weight order, every random tensor
KS-compared with Keras' own initialization pooled over seeds, orthogonal tensors orthogonal,
constants exact, EinsumDense's kernel and bias shapes for every equation form, the transposed
kernels' fans as Keras' `compute_fans` takes them, counts, and
the refusals as 422s naming the argument."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy.stats import ks_2samp

from service.presets import count, expand
from tests.support import describe_layer, layer_arrays, refused_layer

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported (it reads it once)
keras = pytest.importorskip("keras", reason="keras 3 is a dev dependency (pyproject [dev])")
if keras.backend.backend() != "torch":
    pytest.skip("keras was imported earlier with another backend", allow_module_level=True)
L = keras.layers

SEEDS = range(6)  # bundles and Keras layers each pooled over these (deterministic)
P_MIN = 1e-4
RANDOM = ("glorot_uniform",)

Build = Callable[[], Any]


def _built(layer: Any, input_shape: tuple[int, ...]) -> Build:
    def build() -> Any:
        layer_ = layer()
        layer_.build(input_shape)
        return layer_

    return build


def _mha(shapes: tuple[tuple[int, ...], ...], **kw: Any) -> Build:
    def build() -> Any:
        layer = L.MultiHeadAttention(name="m", **kw)
        layer.build(*shapes)  # query, value[, key]
        return layer

    return build


CASES: list[tuple[str, dict[str, Any], Build]] = [
    (
        "keras.Conv1DTranspose",
        {"in_channels": 6, "filters": 16, "kernel_size": 5},
        _built(lambda: L.Conv1DTranspose(16, 5, name="m"), (1, 9, 6)),
    ),
    (
        "keras.Conv2DTranspose",
        {"in_channels": 8, "filters": 12, "kernel_size": [3, 2]},
        _built(lambda: L.Conv2DTranspose(12, (3, 2), name="m"), (1, 7, 7, 8)),
    ),
    (
        "keras.Conv3DTranspose",
        {"in_channels": 4, "filters": 6, "kernel_size": 3, "use_bias": False},
        _built(lambda: L.Conv3DTranspose(6, 3, use_bias=False, name="m"), (1, 5, 5, 5, 4)),
    ),
    (
        "keras.DepthwiseConv1D",
        {"in_channels": 8, "kernel_size": 5, "depth_multiplier": 3},
        _built(lambda: L.DepthwiseConv1D(5, depth_multiplier=3, name="m"), (1, 9, 8)),
    ),
    (
        "keras.DepthwiseConv2D",
        {"in_channels": 16, "kernel_size": 3},
        _built(lambda: L.DepthwiseConv2D(3, name="m"), (1, 7, 7, 16)),
    ),
    (
        "keras.SeparableConv1D",
        {"in_channels": 6, "filters": 10, "kernel_size": 3, "depth_multiplier": 2},
        _built(lambda: L.SeparableConv1D(10, 3, depth_multiplier=2, name="m"), (1, 9, 6)),
    ),
    (
        "keras.SeparableConv2D",
        {"in_channels": 8, "filters": 12, "kernel_size": [3, 3], "use_bias": False},
        _built(lambda: L.SeparableConv2D(12, 3, use_bias=False, name="m"), (1, 7, 7, 8)),
    ),
    (
        "keras.LayerNormalization",
        {"shape": 10},
        _built(lambda: L.LayerNormalization(name="m"), (2, 10)),
    ),
    (
        "keras.LayerNormalization",
        {"shape": [3, 4], "center": False},
        _built(lambda: L.LayerNormalization(axis=[-2, -1], center=False, name="m"), (2, 3, 4)),
    ),
    (
        "keras.BatchNormalization",
        {"features": 7},
        _built(lambda: L.BatchNormalization(name="m"), (2, 7)),
    ),
    (
        "keras.BatchNormalization",
        {"features": 5, "scale": False},
        _built(lambda: L.BatchNormalization(scale=False, name="m"), (2, 3, 5)),
    ),
    (
        "keras.SimpleRNN",
        {"input_dim": 12, "units": 16},
        _built(lambda: L.SimpleRNN(16, name="m"), (1, 3, 12)),
    ),
    (
        "keras.LSTM",
        {"input_dim": 10, "units": 8},
        _built(lambda: L.LSTM(8, name="m"), (1, 3, 10)),
    ),
    (
        "keras.LSTM",
        {"input_dim": 6, "units": 12, "unit_forget_bias": False},
        _built(lambda: L.LSTM(12, unit_forget_bias=False, name="m"), (1, 3, 6)),
    ),
    (
        "keras.GRU",
        {"input_dim": 10, "units": 8},
        _built(lambda: L.GRU(8, name="m"), (1, 3, 10)),
    ),
    (
        "keras.GRU",
        {"input_dim": 9, "units": 6, "reset_after": False},
        _built(lambda: L.GRU(6, reset_after=False, name="m"), (1, 3, 9)),
    ),
    (
        "keras.SimpleRNN",
        {"input_dim": 20, "units": 5, "use_bias": False},
        _built(lambda: L.SimpleRNN(5, use_bias=False, name="m"), (1, 3, 20)),
    ),
    (
        "keras.MultiHeadAttention",
        {"query_dim": 16, "num_heads": 4, "key_dim": 8},
        _mha(((1, 3, 16), (1, 3, 16)), num_heads=4, key_dim=8),
    ),
    (
        "keras.MultiHeadAttention",
        {
            "query_dim": 12,
            "num_heads": 2,
            "key_dim": 6,
            "value_dim": 10,
            "value_input_dim": 20,
            "key_input_dim": 9,
            "output_dim": 7,
        },
        _mha(
            ((1, 3, 12), (1, 4, 20), (1, 4, 9)),
            num_heads=2,
            key_dim=6,
            value_dim=10,
            output_shape=7,
        ),
    ),
    (
        "keras.MultiHeadAttention",
        {"query_dim": 8, "num_heads": 3, "key_dim": 5, "value_input_dim": 6, "use_bias": False},
        _mha(((1, 3, 8), (1, 4, 6)), num_heads=3, key_dim=5, use_bias=False),
    ),
    *[
        (
            "keras.EinsumDense",
            {"equation": eq, "input_shape": list(shape), "output_shape": out, "bias_axes": bias},
            _built(lambda eq=eq, out=out, bias=bias: _einsum(eq, out, bias), shape),
        )
        for eq, shape, out, bias in [
            ("ab,bc->ac", (2, 16), 8, "c"),
            ("abc,cde->abde", (2, 5, 16), [5, 4, 8], "de"),
            ("abc,cde->abde", (2, 5, 16), [5, 4, 8], "e"),
            ("abc,bcd->ad", (2, 3, 6), 9, None),
            ("...b,bc->...c", (2, 5, 7, 16), 8, "c"),
            ("ab...,bc->ac...", (2, 16, 3, 4), [8, 3, 4], "c"),
            ("abcd,cde->abe", (2, 4, 3, 5), [4, 6], "b"),
            ("...ab,bc->...ac", (8, 16), 32, "c"),  # an ellipsis standing for no axis
            ("ab...,bc->ac...", (8, 16), 32, "c"),
        ]
    ],
]


def _einsum(equation: str, output_shape: int | list[int], bias_axes: str | None) -> Any:
    return L.EinsumDense(equation, output_shape, bias_axes=bias_axes, name="m")


def _ids(case: object) -> str:
    return str(case)[:60]


def _path(weight: Any) -> str:
    return str(weight.path).replace("/", ".")


def _numpy(weight: Any) -> np.ndarray:
    """A copy of the weight's torch value: `Variable.numpy()` and `ops.convert_to_numpy` call
    `np.array` on an object whose `__array__` takes no `copy` (numpy 2 DeprecationWarning,
    keras/src/backend/common/variables.py:252, keras/src/backend/torch/core.py:276)."""
    return np.array(weight.value.detach().cpu().numpy())


@pytest.mark.parametrize(("preset", "args", "build"), CASES, ids=_ids)
def test_names_shapes_dtypes_and_count_match_keras(
    preset: str, args: dict[str, Any], build: Build
) -> None:
    weights = {_path(w): w for w in build().weights}
    members = expand(preset, "m", args)
    assert sorted(m.name for m in members) == sorted(weights)  # each name once
    for m in members:
        assert m.shape == tuple(weights[m.name].shape), m.name
        assert weights[m.name].dtype == "float32", m.name  # the bundle's dtype (dtype None)
        assert m.dtype is None, m.name
    assert count(preset, args) == len(members)


def _orthogonal(w: np.ndarray) -> bool:
    m = w.reshape(-1, w.shape[-1]).astype(np.float64)
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    return bool(np.allclose(gram, np.eye(len(gram)), atol=1e-5))


@pytest.mark.parametrize(("preset", "args", "build"), CASES, ids=_ids)
def test_bundles_load_with_keras_init(
    client: TestClient, preset: str, args: dict[str, Any], build: Build
) -> None:
    members = {m.name: m for m in expand(preset, "m", args)}
    ours: dict[str, list[np.ndarray]] = {name: [] for name in members}
    theirs: dict[str, list[np.ndarray]] = {name: [] for name in members}
    for seed in SEEDS:
        bundle = layer_arrays(client, preset, args, seed)
        keras.utils.set_random_seed(seed)
        layer = build()
        reference = {_path(w): _numpy(w) for w in layer.weights}
        layer.set_weights([bundle[_path(w)] for w in layer.weights])
        for w in layer.weights:
            name = _path(w)
            assert bundle[name].dtype == reference[name].dtype, name
            assert np.array_equal(_numpy(w), bundle[name]), name  # loaded as is
            if members[name].scheme == "orthogonal":
                assert _orthogonal(bundle[name]), name
                assert _orthogonal(reference[name]), name
            ours[name].append(bundle[name].astype(np.float64).ravel())
            theirs[name].append(reference[name].astype(np.float64).ravel())
    for name, m in members.items():
        a, b = np.concatenate(ours[name]), np.concatenate(theirs[name])
        if m.scheme not in (*RANDOM, "orthogonal"):
            assert np.array_equal(a, b), name  # constants exact (LSTM's forget gate ones too)
            continue
        assert a.std() > 0, name
        assert b.std() > 0, name
        if m.scheme == "glorot_uniform":  # Keras' limit √(6/(fan_in+fan_out)), compute_fans
            limit = np.sqrt(6.0 / sum(_keras_fans(m.shape, m.fans.in_axes, m.fans.out_axes)))
            assert max(np.abs(a).max(), np.abs(b).max()) <= limit * (1 + 1e-6), name
            assert np.abs(b).max() > 0.9 * limit, name
        p = ks_2samp(a, b).pvalue
        assert p > P_MIN, (name, p, a.size)


def _keras_fans(
    shape: tuple[int, ...], ins: tuple[int, ...] | None, outs: tuple[int, ...] | None
) -> tuple[int, int]:
    """keras/src/initializers/random_initializers.py `compute_fans` (663-700)."""
    if ins is not None and outs is not None:
        return int(np.prod([shape[i] for i in ins])), int(np.prod([shape[i] for i in outs]))
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


def test_lstm_forget_gate_bias_is_ones() -> None:
    (bias,) = [
        m for m in expand("keras.LSTM", "m", {"input_dim": 3, "units": 4}) if "bias" in m.name
    ]
    values = np.ones(16)
    values[list(bias.zero_rows)] = 0
    assert bias.scheme == "ones"
    assert values.tolist() == [0.0] * 4 + [1.0] * 4 + [0.0] * 8


def _fans(client: TestClient, preset: str, args: dict[str, Any], name: str) -> tuple[Any, Any]:
    (found,) = [
        t for t in describe_layer(client, preset, args, seed=0)["tensors"] if t["name"] == name
    ]
    return found["plan"]["fan_in"], found["plan"]["fan_out"]


def test_transposed_kernel_fans_are_keras_compute_fans(client: TestClient) -> None:
    """Kernel (*k, filters, in): Keras reads fan_in = filters·∏k (TF #31192), and so do we."""
    args = {"in_channels": 8, "filters": 12, "kernel_size": [3, 2]}
    fan_in, fan_out = _fans(client, "keras.Conv2DTranspose", args, "m.kernel")
    assert (fan_in, fan_out) == (12 * 6, 8 * 6)


def test_einsum_dense_fans_are_keras_input_and_output_axes(client: TestClient) -> None:
    """`build` hands glorot_uniform the weight spec's input and output axes (einsum_dense.py)."""
    args = {"equation": "abc,cde->abde", "input_shape": [2, 5, 16], "output_shape": [5, 4, 8]}
    assert _fans(client, "keras.EinsumDense", args, "m.kernel") == (16, 32)


def test_attention_kernel_fans_are_the_einsum_axes(client: TestClient) -> None:
    """EinsumDense gives VarianceScaling input_axes/output_axes (einsum_dense.py 190-197)."""
    args = {"query_dim": 12, "num_heads": 2, "key_dim": 6, "value_dim": 10, "output_dim": 7}
    assert _fans(client, "keras.MultiHeadAttention", args, "m.query.kernel") == (12, 12)
    assert _fans(client, "keras.MultiHeadAttention", args, "m.attention_output.kernel") == (20, 7)


EINSUM_REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"equation": "ab,bc", "input_shape": [2, 4]}, "argument equation must match ^"),
    ({"equation": "a.b,bc->ac", "input_shape": [2, 4]}, "must have the form"),
    ({"equation": "ab,bc->ac", "input_shape": [2, 4, 4]}, "needs rank 2"),
    ({"equation": "ab,bd->ac", "input_shape": [2, 4]}, "output axis 'c' is in neither"),
    ({"equation": "ab,bec->ac", "input_shape": [2, 4]}, "weight axis 'e'"),
    ({"equation": "ab,bc->ac", "input_shape": [2, 4], "bias_axes": "x"}, "bias axis 'x'"),
    ({"equation": "ab,bc->ac", "input_shape": [2, 4], "bias_axes": 3}, "must be a string"),
    ({"equation": "ab,bc->ac\n", "input_shape": [2, 4]}, "argument equation must match ^"),
    ({"equation": "a" * 300 + ",bc->ac", "input_shape": [2, 4]}, "at most 256 characters"),
    ({"equation": "abc,cd->abd", "input_shape": [2, 3, 4]}, "too short"),
    (
        {"equation": "abc,cd->abd", "input_shape": [2, 3, 4], "output_shape": [4, 8]},
        "differ at the shared axis 'b': input 3, output 4",
    ),
]
REFUSED: list[tuple[str, dict[str, Any], str]] = [
    *[("keras.EinsumDense", {"output_shape": 8, **args}, text) for args, text in EINSUM_REFUSED],
    (
        "keras.Conv2DTranspose",
        {"in_channels": 4, "filters": 2, "kernel_size": [3]},
        "kernel_size [3] must have 2 entries",
    ),
    (
        "keras.Conv1DTranspose",
        {"in_channels": 4, "filters": 2, "kernel_size": 3, "groups": 2},
        "keras.Conv1DTranspose does not take groups",
    ),
    (
        "keras.DepthwiseConv2D",
        {"in_channels": 4, "kernel_size": 3, "depth_multiplier": 0},
        "needs depth_multiplier >= 1",
    ),
    ("keras.SeparableConv1D", {"in_channels": 4, "kernel_size": 3}, "needs filters"),
    (
        "keras.LSTM",
        {"input_dim": 4, "units": 5000},
        "units=5000 with unit_forget_bias must be <= 4096",
    ),
    ("keras.BatchNormalization", {"features": 4, "renorm": True}, "does not take renorm"),
    (
        "keras.GRU",
        {"input_dim": 4, "units": 3, "reset_after": "no"},
        "argument reset_after must be true or false",
    ),
    (
        "keras.MultiHeadAttention",
        {"query_dim": 8, "num_heads": 2, "key_dim": 4, "use_gate": True},
        "keras.MultiHeadAttention does not take use_gate",
    ),
    ("keras.LayerNormalization", {"shape": -1}, "keras.LayerNormalization needs shape >= 0"),
    (
        "keras.LayerNormalization",
        {"shape": []},
        "keras.LayerNormalization argument shape must have 1",
    ),
]


@pytest.mark.parametrize(("preset", "args", "text"), REFUSED, ids=_ids)
def test_bad_arguments_are_422s_naming_them(
    client: TestClient, preset: str, args: dict[str, Any], text: str
) -> None:
    refused_layer(client, preset, args, text)


def test_a_large_lstm_without_forget_bias_is_counted() -> None:
    args = {"input_dim": 2**20, "units": 2**20, "unit_forget_bias": False}
    assert count("keras.LSTM", args) == len(expand("keras.LSTM", "m", args)) == 3
