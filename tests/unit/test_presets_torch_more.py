"""The torch presets of service.presets.torch_more and torch_transformer, and LSTM's proj_size,
against the real torch modules: state_dict names, shapes and dtypes exactly, the bundle (through
`POST /v1/bundles/describe` and its url) loaded with `load_state_dict(strict=True)`, every
random tensor KS-compared with torch's own init pooled over seeds, every constant exact, ties
as torch's deep copies make them, counts, and the refusals as 422s naming the argument."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest
import safetensors.torch
import torch
from fastapi.testclient import TestClient
from scipy.stats import ks_2samp
from torch import nn

from service.presets import count, expand
from tests.support import layer_bytes, refused_layer

SEEDS = range(6)  # bundles and torch modules each pooled over these (deterministic)
P_MIN = 1e-4
RANDOM = ("uniform", "normal", "kaiming_uniform", "xavier_uniform", "xavier_normal")


def _transformer(**kw: Any) -> nn.Module:
    with warnings.catch_warnings():  # enable_nested_tensor's note that batch_first is False
        warnings.filterwarnings("ignore", "enable_nested_tensor is True", UserWarning)
        return nn.Transformer(**kw)


CASES: list[tuple[str, dict[str, Any], Callable[[], nn.Module]]] = [
    ("torch.GroupNorm", {"num_groups": 4, "num_channels": 12}, lambda: nn.GroupNorm(4, 12)),
    (
        "torch.GroupNorm",
        {"num_groups": 2, "num_channels": 8, "bias": False},
        lambda: nn.GroupNorm(2, 8, bias=False),
    ),
    (
        "torch.InstanceNorm2d",
        {"num_features": 6, "affine": True, "track_running_stats": True},
        lambda: nn.InstanceNorm2d(6, affine=True, track_running_stats=True),
    ),
    (
        "torch.InstanceNorm3d",
        {"num_features": 5, "track_running_stats": True},
        lambda: nn.InstanceNorm3d(5, track_running_stats=True),
    ),
    (
        "torch.InstanceNorm1d",
        {"num_features": 4, "affine": True, "bias": False},
        lambda: nn.InstanceNorm1d(4, affine=True, bias=False),
    ),
    ("torch.PReLU", {}, lambda: nn.PReLU()),
    ("torch.PReLU", {"num_parameters": 8, "init": -0.1}, lambda: nn.PReLU(8, init=-0.1)),
    ("torch.PReLU", {"num_parameters": 3, "init": 1.0}, lambda: nn.PReLU(3, init=1.0)),
    ("torch.RNNCell", {"input_size": 10, "hidden_size": 20}, lambda: nn.RNNCell(10, 20)),
    (
        "torch.RNNCell",
        {"input_size": 5, "hidden_size": 16, "bias": False},
        lambda: nn.RNNCell(5, 16, bias=False),
    ),
    ("torch.LSTMCell", {"input_size": 10, "hidden_size": 16}, lambda: nn.LSTMCell(10, 16)),
    (
        "torch.GRUCell",
        {"input_size": 10, "hidden_size": 12, "bias": False},
        lambda: nn.GRUCell(10, 12, bias=False),
    ),
    ("torch.GRUCell", {"input_size": 7, "hidden_size": 9}, lambda: nn.GRUCell(7, 9)),
    (
        "torch.EmbeddingBag",
        {"num_embeddings": 50, "embedding_dim": 16, "padding_idx": 3},
        lambda: nn.EmbeddingBag(50, 16, padding_idx=3),
    ),
    (
        "torch.EmbeddingBag",
        {"num_embeddings": 40, "embedding_dim": 8, "mode": "sum", "padding_idx": -2},
        lambda: nn.EmbeddingBag(40, 8, mode="sum", padding_idx=-2),
    ),
    (
        "torch.EmbeddingBag",
        {"num_embeddings": 30, "embedding_dim": 8},
        lambda: nn.EmbeddingBag(30, 8),
    ),
    (
        "torch.LSTM",
        {
            "input_size": 8,
            "hidden_size": 16,
            "num_layers": 2,
            "bidirectional": True,
            "proj_size": 4,
        },
        lambda: nn.LSTM(8, 16, num_layers=2, bidirectional=True, proj_size=4),
    ),
    (
        "torch.LSTM",
        {"input_size": 6, "hidden_size": 12, "bias": False, "proj_size": 5},
        lambda: nn.LSTM(6, 12, bias=False, proj_size=5),
    ),
    (
        "torch.TransformerEncoderLayer",
        {"d_model": 32, "nhead": 4, "dim_feedforward": 64},
        lambda: nn.TransformerEncoderLayer(32, 4, dim_feedforward=64),
    ),
    (
        "torch.TransformerEncoderLayer",
        {"d_model": 16, "nhead": 2, "dim_feedforward": 32, "bias": False},
        lambda: nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, bias=False),
    ),
    (
        "torch.TransformerDecoderLayer",
        {"d_model": 32, "nhead": 4, "dim_feedforward": 64},
        lambda: nn.TransformerDecoderLayer(32, 4, dim_feedforward=64),
    ),
    (
        "torch.TransformerDecoderLayer",
        {"d_model": 16, "nhead": 4, "dim_feedforward": 24, "bias": False},
        lambda: nn.TransformerDecoderLayer(16, 4, dim_feedforward=24, bias=False),
    ),
    (
        "torch.Transformer",
        {
            "d_model": 16,
            "nhead": 2,
            "num_encoder_layers": 2,
            "num_decoder_layers": 2,
            "dim_feedforward": 32,
        },
        lambda: _transformer(
            d_model=16, nhead=2, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=32
        ),
    ),
    (
        "torch.Transformer",
        {
            "d_model": 8,
            "nhead": 2,
            "num_encoder_layers": 1,
            "num_decoder_layers": 3,
            "dim_feedforward": 16,
            "bias": False,
        },
        lambda: _transformer(
            d_model=8,
            nhead=2,
            num_encoder_layers=1,
            num_decoder_layers=3,
            dim_feedforward=16,
            bias=False,
        ),
    ),
]

NO_TENSORS: list[tuple[str, dict[str, Any], Callable[[], nn.Module]]] = [
    ("torch.InstanceNorm1d", {"num_features": 6}, lambda: nn.InstanceNorm1d(6)),
    (
        "torch.GroupNorm",
        {"num_groups": 3, "num_channels": 6, "affine": False},
        lambda: nn.GroupNorm(3, 6, affine=False),
    ),
]


def _ids(case: object) -> str:
    return str(case)[:60]


def _wrapped(module: nn.Module) -> nn.Module:
    outer = nn.Module()
    outer.m = module
    return outer


@pytest.mark.parametrize(("preset", "args", "build"), CASES + NO_TENSORS, ids=_ids)
def test_names_shapes_dtypes_and_count_match_torch(
    preset: str, args: dict[str, Any], build: Callable[[], nn.Module]
) -> None:
    state = _wrapped(build()).state_dict()
    members = expand(preset, "m", args)
    assert sorted(m.name for m in members) == sorted(state)  # each name once
    for m in members:
        assert m.shape == tuple(state[m.name].shape), m.name
        want = "int64" if state[m.name].dtype == torch.int64 else None
        assert m.dtype == want, m.name
    assert count(preset, args) == len(members)


@pytest.mark.parametrize(("preset", "args", "build"), CASES, ids=_ids)
def test_bundles_load_strictly_with_torchs_init(
    client: TestClient, preset: str, args: dict[str, Any], build: Callable[[], nn.Module]
) -> None:
    members = {m.name: m for m in expand(preset, "m", args)}
    ours: dict[str, list[torch.Tensor]] = {name: [] for name in members}
    theirs: dict[str, list[torch.Tensor]] = {name: [] for name in members}
    for seed in SEEDS:
        bundle = _torch_bundle(client, preset, args, seed)
        model = _wrapped(build())
        reference = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(bundle, strict=True)
        for name, tensor in bundle.items():
            assert tensor.dtype == reference[name].dtype, name
            ours[name].append(tensor.double().flatten())
            theirs[name].append(reference[name].double().flatten())
    for name, m in members.items():
        a, b = torch.cat(ours[name]), torch.cat(theirs[name])
        if m.scheme not in RANDOM:
            assert torch.equal(a, b), name  # constants exact
            continue
        assert a.std() > 0 or b.std() == 0, name
        if m.scheme == "uniform":  # torch's values fill exactly the declared interval
            high = m.params.high
            assert high is not None
            assert max(float(a.abs().max()), float(b.abs().max())) <= high, name
            assert float(b.abs().max()) > 0.9 * high, name
        p = ks_2samp(a.numpy(), b.numpy()).pvalue
        assert p > P_MIN, (name, p, a.numel())


@pytest.fixture(autouse=True)
def _torch_seed() -> None:
    torch.manual_seed(1234)  # each module built in a test draws from a fixed stream


def test_transformer_ties_the_biases_torchs_deep_copies_share(client: TestClient) -> None:
    """`_get_clones` deep-copies one layer and `_reset_parameters` redraws only dim > 1, so every
    layer's Linear biases equal layer 0's in torch, and are tied in the bundle."""
    args = {"d_model": 8, "nhead": 2, "num_encoder_layers": 3, "num_decoder_layers": 2}
    model = _transformer(**args, dim_feedforward=16)
    bundle = _torch_bundle(client, "torch.Transformer", {**args, "dim_feedforward": 16}, seed=5)
    for stack, layers in (("encoder", 3), ("decoder", 2)):
        for i in range(1, layers):
            for p in ("linear1.bias", "linear2.bias"):
                first, other = f"{stack}.layers.0.{p}", f"{stack}.layers.{i}.{p}"
                assert torch.equal(model.state_dict()[first], model.state_dict()[other])
                assert torch.equal(bundle[f"m.{first}"], bundle[f"m.{other}"])
            weight = f"m.{stack}.layers.{i}.linear1.weight"
            assert not torch.equal(bundle[weight], bundle[weight.replace(f".{i}.", ".0.")])


def test_embedding_bag_padding_row_is_zero(client: TestClient) -> None:
    args = {"num_embeddings": 12, "embedding_dim": 6, "padding_idx": -3}
    weight = _torch_bundle(client, "torch.EmbeddingBag", args, seed=1)["m.weight"]
    assert not weight[9].any()
    assert bool(weight[8].all())
    assert bool(weight[10].all())


def test_lstm_without_proj_size_is_unchanged() -> None:
    args: dict[str, Any] = {"input_size": 3, "hidden_size": 4}
    assert expand("torch.LSTM", "x", {**args, "proj_size": 0}) == expand("torch.LSTM", "x", args)


REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("torch.GroupNorm", {"num_groups": 0, "num_channels": 4}, "needs num_groups >= 1"),
    (
        "torch.GroupNorm",
        {"num_groups": 4, "num_channels": 6},
        "num_channels=6 must be divisible by num_groups=4",
    ),
    (
        "torch.InstanceNorm2d",
        {"num_features": 4, "affine": "yes"},
        "torch.InstanceNorm2d argument affine must be true or false",
    ),
    ("torch.InstanceNorm3d", {"num_features": -1}, "needs num_features >= 0"),
    ("torch.PReLU", {"num_parameters": -1}, "torch.PReLU needs num_parameters >= 0"),
    ("torch.PReLU", {"init": "0.25"}, "torch.PReLU argument init must be a number"),
    ("torch.PReLU", {"weight": 1}, "torch.PReLU does not take weight"),
    ("torch.RNNCell", {"input_size": 3}, "torch.RNNCell needs hidden_size"),
    ("torch.LSTMCell", {"input_size": 3, "hidden_size": 2.5}, "argument hidden_size must be"),
    ("torch.GRUCell", {"input_size": 3, "hidden_size": 4, "num_layers": 2}, "not take num_layers"),
    (
        "torch.EmbeddingBag",
        {"num_embeddings": 4, "embedding_dim": 2, "mode": "median"},
        "unknown torch.EmbeddingBag argument mode 'median'",
    ),
    (
        "torch.EmbeddingBag",
        {"num_embeddings": 10, "embedding_dim": 2, "padding_idx": 10},
        "padding_idx=10 must be within num_embeddings=10",
    ),
    (
        "torch.EmbeddingBag",
        {"num_embeddings": 10, "embedding_dim": 2, "padding_idx": -11},
        "padding_idx=-11 must be within num_embeddings=10",
    ),
    (
        "torch.LSTM",
        {"input_size": 3, "hidden_size": 4, "proj_size": 4},
        "proj_size=4 must be smaller than hidden_size=4",
    ),
    ("torch.LSTM", {"input_size": 3, "hidden_size": 4, "proj_size": -1}, "needs proj_size >= 0"),
    ("torch.GRU", {"input_size": 3, "hidden_size": 4, "proj_size": 2}, "not take proj_size"),
    ("torch.RNN", {"input_size": 3, "hidden_size": 4, "proj_size": 2}, "not take proj_size"),
    (
        "torch.TransformerEncoderLayer",
        {"d_model": 10, "nhead": 4},
        "d_model=10 must be divisible by nhead=4",
    ),
    ("torch.TransformerDecoderLayer", {"d_model": 8, "nhead": 0}, "needs nhead >= 1"),
    (
        "torch.Transformer",
        {"d_model": 12, "nhead": 5, "num_encoder_layers": 1, "num_decoder_layers": 0},
        "d_model=12 must be divisible by nhead=5",
    ),
    ("torch.Transformer", {"num_encoder_layers": 10_001}, "needs num_encoder_layers >= 0 and <="),
]


@pytest.mark.parametrize(("preset", "args", "text"), REFUSED, ids=_ids)
def test_bad_arguments_are_422s_naming_them(
    client: TestClient, preset: str, args: dict[str, Any], text: str
) -> None:
    refused_layer(client, preset, args, text)


def test_a_huge_transformer_is_counted_not_expanded() -> None:
    args = {"num_encoder_layers": 10_000, "num_decoder_layers": 10_000}
    assert count("torch.Transformer", args) == 10_000 * 12 + 2 + 10_000 * 18 + 2


def _torch_bundle(
    client: TestClient, preset: str, args: dict[str, Any], seed: int
) -> dict[str, Any]:
    return dict(safetensors.torch.load(layer_bytes(client, preset, args, seed)))
