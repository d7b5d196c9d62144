"""service.presets: every preset's count against its expansion, a few expansions against the
frameworks' documented parameters and against torch's own modules, and the refusals."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import pytest
import torch
import torch.nn as nn

from service import arguments, presets
from service.errors import SchemeError, ShapeError
from service.presets import PRESETS, Member, count, expand
from service.schemes import FanSpec, Params

SQRT5 = math.sqrt(5.0)

# one representative argument set per preset (each boolean argument is flipped below too)
REPRESENTATIVE: Mapping[str, Mapping[str, object]] = {
    "torch.Linear": {"in_features": 4, "out_features": 3},
    "torch.Bilinear": {"in1_features": 4, "in2_features": 5, "out_features": 3},
    "torch.Embedding": {"num_embeddings": 10, "embedding_dim": 4, "padding_idx": 0},
    "torch.LayerNorm": {"normalized_shape": [3, 4]},
    "torch.RMSNorm": {"normalized_shape": 8},
    "torch.MultiheadAttention": {"embed_dim": 8, "num_heads": 2, "kdim": 4, "vdim": 6},
    "torch.RNN": {"input_size": 3, "hidden_size": 4, "num_layers": 3},
    "torch.LSTM": {"input_size": 3, "hidden_size": 4, "num_layers": 2},
    "torch.GRU": {"input_size": 3, "hidden_size": 4, "num_layers": 2},
    "torch.GroupNorm": {"num_groups": 2, "num_channels": 6},
    "torch.PReLU": {"num_parameters": 3, "init": 0.1},
    "torch.RNNCell": {"input_size": 3, "hidden_size": 4},
    "torch.LSTMCell": {"input_size": 3, "hidden_size": 4},
    "torch.GRUCell": {"input_size": 3, "hidden_size": 4},
    "torch.EmbeddingBag": {"num_embeddings": 10, "embedding_dim": 4, "padding_idx": -1},
    "torch.TransformerEncoderLayer": {"d_model": 8, "nhead": 2, "dim_feedforward": 16},
    "torch.TransformerDecoderLayer": {"d_model": 8, "nhead": 2, "dim_feedforward": 16},
    "torch.Transformer": {
        "d_model": 8,
        "nhead": 2,
        "num_encoder_layers": 2,
        "num_decoder_layers": 3,
    },
    **{f"torch.InstanceNorm{d}d": {"num_features": 6} for d in (1, 2, 3)},
    "keras.Dense": {"input_dim": 4, "units": 3},
    "keras.Embedding": {"input_dim": 10, "output_dim": 4},
    "flax.Dense": {"in_features": 4, "features": 3},
    "flax.Conv": {"in_features": 4, "features": 6, "kernel_size": [3, 3], "feature_group_count": 2},
    "flax.Embed": {"num_embeddings": 10, "features": 4},
    "gpt2.Linear": {"in_features": 4, "out_features": 3, "n_layers": 12},
    "gpt2.Embedding": {"num_embeddings": 10, "embedding_dim": 4},
    **{
        f"{prefix}{d}{suffix}": {"in_channels": 4, channels: 6, "kernel_size": 3, "groups": 2}
        for d in (1, 2, 3)
        for prefix, suffix, channels in (
            ("torch.Conv", "d", "out_channels"),
            ("torch.ConvTranspose", "d", "out_channels"),
            ("keras.Conv", "D", "filters"),
        )
    },
    **{f"torch.BatchNorm{d}d": {"num_features": 6} for d in (1, 2, 3)},
    **{
        f"keras.Conv{d}DTranspose": {"in_channels": 4, "filters": 6, "kernel_size": 3}
        for d in (1, 2, 3)
    },
    **{f"keras.DepthwiseConv{d}D": {"in_channels": 4, "kernel_size": 3} for d in (1, 2)},
    **{
        f"keras.SeparableConv{d}D": {"in_channels": 4, "filters": 6, "kernel_size": 3}
        for d in (1, 2)
    },
    "keras.LayerNormalization": {"shape": [3, 4]},
    "keras.BatchNormalization": {"features": 6},
    "keras.SimpleRNN": {"input_dim": 3, "units": 4},
    "keras.LSTM": {"input_dim": 3, "units": 4},
    "keras.GRU": {"input_dim": 3, "units": 4},
    "keras.MultiHeadAttention": {"query_dim": 8, "num_heads": 2, "key_dim": 4},
    "keras.EinsumDense": {
        "equation": "abc,cde->abde",
        "input_shape": [2, 5, 16],
        "output_shape": [5, 4, 8],
        "bias_axes": "de",
    },
    "flax.ConvTranspose": {"in_features": 4, "features": 6, "kernel_size": [3, 3]},
    "flax.DenseGeneral": {"in_features": [3, 4], "features": [2, 5], "batch_shape": [2]},
    "flax.MultiHeadDotProductAttention": {
        "num_heads": 2,
        "query_features": 8,
        "key_features": 6,
        "qkv_features": 4,
    },
    **{
        f"flax.{cell}": {"in_features": 3, "features": 4}
        for cell in ("LSTMCell", "OptimizedLSTMCell", "GRUCell")
    },
    "flax.LayerNorm": {"feature_shape": [3, 4]},
    "flax.RMSNorm": {"feature_shape": 8},
    "flax.BatchNorm": {"feature_shape": 6},
    "flax.GroupNorm": {"features": 6, "num_groups": 2},
}


def variants() -> list[tuple[str, dict[str, object]]]:
    """Each representative set, and it again with each boolean argument flipped."""
    out = []
    for preset, args in REPRESENTATIVE.items():
        out.append((preset, dict(args)))
        for d in arguments.declared(PRESETS[preset].args):
            if d.kind == "boolean":
                out.append((preset, {**args, d.name: not args.get(d.name, d.default)}))
    out.append(("torch.MultiheadAttention", {"embed_dim": 8, "num_heads": 2, "add_bias_kv": True}))
    out.append(("torch.MultiheadAttention", {"embed_dim": 8, "num_heads": 2, "kdim": 8}))
    out.append(("torch.LSTM", {"input_size": 3, "hidden_size": 4, "num_layers": 0}))
    out.append(("torch.LSTM", {"input_size": 3, "hidden_size": 4, "proj_size": 2}))
    return out


def test_every_preset_has_a_representative() -> None:
    assert set(REPRESENTATIVE) == set(PRESETS)


@pytest.mark.parametrize(("preset", "args"), variants(), ids=lambda v: str(v))
def test_count_is_the_number_expanded(preset: str, args: dict[str, object]) -> None:
    assert count(preset, args) == len(expand(preset, "x", args))


def test_the_registry_keeps_its_order() -> None:
    names = list(PRESETS)
    assert names[:3] == ["torch.Linear", "torch.Bilinear", "torch.Embedding"]
    assert names[-4:] == [
        "torch.Conv3d",
        "torch.ConvTranspose3d",
        "torch.BatchNorm3d",
        "keras.Conv3D",
    ]
    assert len(names) == 64


def _uniform(name: str, shape: tuple[int, ...], bound: float) -> Member:
    return Member(name, shape, "uniform", "torch", Params(low=-bound, high=bound))


def _lstm_expected() -> list[Member]:
    """nn.LSTM(3, 4, num_layers=2, bidirectional=True): 4·hidden rows, U(±1/√4)."""
    out = []
    for sfx, width in (("_l0", 3), ("_l0_reverse", 3), ("_l1", 8), ("_l1_reverse", 8)):
        out += [
            _uniform(f"lstm.weight_ih{sfx}", (16, width), 0.5),
            _uniform(f"lstm.weight_hh{sfx}", (16, 4), 0.5),
            _uniform(f"lstm.bias_ih{sfx}", (16,), 0.5),
            _uniform(f"lstm.bias_hh{sfx}", (16,), 0.5),
        ]
    return out


KAIMING = Params(negative_slope=SQRT5)
ZEROS = Params()

EXPECTED: list[tuple[str, str, dict[str, object], list[Member]]] = [
    (
        "torch.Linear",
        "fc",
        {"in_features": 4, "out_features": 3},
        [
            Member("fc.weight", (3, 4), "kaiming_uniform", "torch", KAIMING),
            _uniform("fc.bias", (3,), 0.5),
        ],
    ),
    (
        "torch.LSTM",
        "lstm",
        {"input_size": 3, "hidden_size": 4, "num_layers": 2, "bidirectional": True},
        _lstm_expected(),
    ),
    (
        "torch.MultiheadAttention",
        "attn",
        {"embed_dim": 8, "num_heads": 2, "kdim": 4, "vdim": 6},
        [
            Member("attn.q_proj_weight", (8, 8), "xavier_uniform", "torch"),
            Member("attn.k_proj_weight", (8, 4), "xavier_uniform", "torch"),
            Member("attn.v_proj_weight", (8, 6), "xavier_uniform", "torch"),
            Member("attn.out_proj.weight", (8, 8), "kaiming_uniform", "torch", KAIMING),
            Member("attn.in_proj_bias", (24,), "zeros", "torch", ZEROS),
            Member("attn.out_proj.bias", (8,), "zeros", "torch", ZEROS),
        ],
    ),
    (
        "keras.Conv2D",
        "conv",
        {"in_channels": 4, "filters": 6, "kernel_size": [3, 5], "groups": 2},
        [
            Member("conv.kernel", (3, 5, 2, 6), "glorot_uniform", "keras"),
            Member("conv.bias", (6,), "zeros", "torch", ZEROS),
        ],
    ),
    (
        "flax.Embed",
        "emb",
        {"num_embeddings": 10, "features": 4},
        [
            Member(
                "emb.embedding",
                (10, 4),
                "variance_scaling",
                "jax",
                Params(factor=1.0, mode="fan_in", distribution="normal"),
                FanSpec(out_axes=(0,)),
            )
        ],
    ),
    (
        "gpt2.Linear",
        "c_proj",
        {"in_features": 8, "out_features": 6, "residual": True, "n_layers": 2},
        [
            Member("c_proj.weight", (6, 8), "normal", "torch", Params(mean=0.0, std=0.01)),
            Member("c_proj.bias", (6,), "zeros", "torch", ZEROS),
        ],
    ),
    (
        "torch.BatchNorm2d",
        "bn",
        {"num_features": 3},
        [
            Member("bn.weight", (3,), "ones", "torch", ZEROS),
            Member("bn.bias", (3,), "zeros", "torch", ZEROS),
            Member("bn.running_mean", (3,), "zeros", "torch", ZEROS),
            Member("bn.running_var", (3,), "ones", "torch", ZEROS),
            Member("bn.num_batches_tracked", (), "zeros", "torch", ZEROS, dtype="int64"),
        ],
    ),
]


@pytest.mark.parametrize(("preset", "name", "args", "members"), EXPECTED, ids=lambda v: str(v))
def test_expansions_match_the_frameworks(
    preset: str, name: str, args: dict[str, object], members: list[Member]
) -> None:
    assert expand(preset, name, args) == members


BIG = 10**400  # 401 digits

REFUSED: list[tuple[str, dict[str, object], str]] = [
    ("torch.Linear", {"in_features": BIG, "out_features": 3}, "needs in_features >= 0 and <= "),
    ("torch.Linear", {"in_features": -1, "out_features": 3}, "needs in_features >= 0 and <= "),
    (
        "torch.LSTM",
        {"input_size": 3, "hidden_size": 4, "num_layers": 1_000_000},
        "torch.LSTM needs num_layers >= 0 and <= 10000; received 1000000",
    ),
    (
        "torch.Linear",
        {"in_features": True, "out_features": 3},
        "torch.Linear argument in_features must be an integer; received True",
    ),
    (
        "torch.Linear",
        {"in_features": 4.0, "out_features": 3},
        "torch.Linear argument in_features must be an integer; received 4.0",
    ),
    (
        "torch.Conv2d",
        {"in_channels": 4, "out_channels": 6, "kernel_size": [3, 3, 3, 3]},
        "torch.Conv2d argument kernel_size must have 1 … 3 items; received 4 items",
    ),
    (
        "torch.LayerNorm",
        {"normalized_shape": [1] * 9},
        "torch.LayerNorm argument normalized_shape must have 0 … 8 items; received 9 items",
    ),
    (
        "torch.Linear",
        {"in_features": 4, "out_features": 3, "foo": 1},
        "torch.Linear does not take foo; it takes in_features, out_features, bias",
    ),
    ("torch.Linear", {"in_features": 4}, "torch.Linear needs out_features"),
    (
        "torch.Linear",
        {"in_features": 4, "out_features": 3, "bias": "yes"},
        "torch.Linear argument bias must be true or false; received 'yes'",
    ),
    ("torch.Conv2d", {"in_channels": 4, "out_channels": 6, "kernel_size": 3, "groups": 0}, ">= 1"),
    (
        "torch.Embedding",
        {"num_embeddings": 4, "embedding_dim": 2, "padding_idx": -BIG},
        "needs padding_idx >= -",
    ),
    ("gpt2.Embedding", {"num_embeddings": 4, "embedding_dim": 2, "std": math.inf}, "finite"),
    ("gpt2.Embedding", {"num_embeddings": 4, "embedding_dim": 2, "std": -1.0}, "needs std >= 0"),
    ("flax.Conv", {"in_features": 4, "features": 6, "kernel_size": 3}, "a list of integers"),
    ("gpt2.Linear", {"in_features": 4, "out_features": 4, "n_layers": -2}, "needs n_layers >= 1"),
    ("torch.Linearr", {}, "unknown preset 'torch.Linearr'; expected one of torch.Linear, "),
]


@pytest.mark.parametrize(("preset", "args", "text"), REFUSED, ids=lambda v: str(v)[:40])
def test_refusals_name_the_argument(preset: str, args: dict[str, object], text: str) -> None:
    with pytest.raises(SchemeError) as expanded:
        expand(preset, "x", args)
    assert text in expanded.value.detail
    with pytest.raises(SchemeError) as counted:
        count(preset, args)
    assert counted.value.detail == expanded.value.detail


EXPANDER_REFUSED: list[tuple[str, dict[str, object], type[Exception], str]] = [
    (
        "torch.Conv2d",
        {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "groups": 2},
        ShapeError,
        "in_channels=3 must be divisible by groups=2",
    ),
    (
        "flax.Conv",
        {"in_features": 4, "features": 6, "kernel_size": [3], "feature_group_count": 4},
        ShapeError,
        "features=6 must be divisible by feature_group_count=4",
    ),
    (
        "torch.MultiheadAttention",
        {"embed_dim": 10, "num_heads": 4},
        ShapeError,
        "embed_dim=10 must be divisible by num_heads=4",
    ),
    (
        "torch.Conv3d",
        {"in_channels": 3, "out_channels": 4, "kernel_size": [3, 3]},
        ShapeError,
        "kernel_size [3, 3] must have 3 entries for a 3-d convolution",
    ),
    (
        "gpt2.Linear",
        {"in_features": 4, "out_features": 4, "residual": True},
        SchemeError,
        "gpt2.Linear with residual=true needs n_layers >= 1 (the std is std/√(2·n_layers)); "
        "received n_layers=None",
    ),
]


@pytest.mark.parametrize(
    ("preset", "args", "error", "text"), EXPANDER_REFUSED, ids=lambda v: str(v)[:40]
)
def test_combinations_are_checked_by_the_expander(
    preset: str, args: dict[str, object], error: type[Exception], text: str
) -> None:
    count(preset, args)  # the arguments each pass; only their combination is refused
    with pytest.raises(error) as refused:
        expand(preset, "x", args)
    assert str(refused.value) == text


def test_count_never_expands(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(_name: str, _args: object) -> list[Member]:
        raise AssertionError("count expanded")

    lstm = PRESETS["torch.LSTM"]
    monkeypatch.setitem(PRESETS, "torch.LSTM", dataclasses.replace(lstm, expand=boom))
    args = {"input_size": 8, "hidden_size": 8, "num_layers": 10_000, "bidirectional": True}
    assert count("torch.LSTM", args) == 80_000
    with pytest.raises(AssertionError, match="count expanded"):
        expand("torch.LSTM", "x", args)


def test_lookup_and_arguments() -> None:
    preset = presets.lookup("torch.Linear")
    assert preset.arguments({"in_features": 2, "out_features": 3}) == preset.args(
        in_features=2, out_features=3, bias=True
    )
    with pytest.raises(SchemeError, match="unknown preset 'nope'"):
        presets.lookup("nope")


def test_every_integer_argument_is_bounded() -> None:
    for preset in PRESETS.values():
        for d in arguments.declared(preset.args):
            if d.kind in ("integer", "integers", "integer_or_integers"):
                assert d.arg.le is not None, (preset.name, d.name)
                assert d.arg.ge is not None or d.arg.gt is not None, (preset.name, d.name)
            if d.kind in ("integers", "integer_or_integers"):
                assert d.arg.max_items is not None, (preset.name, d.name)


# --- against torch's own modules --------------------------------------------------------------

MODULES: list[tuple[str, dict[str, object], nn.Module]] = [
    (
        "torch.LSTM",
        {"input_size": 3, "hidden_size": 4, "num_layers": 2, "bidirectional": True},
        nn.LSTM(3, 4, num_layers=2, bidirectional=True),
    ),
    (
        "torch.GRU",
        {"input_size": 3, "hidden_size": 5, "num_layers": 2, "bias": False},
        nn.GRU(3, 5, num_layers=2, bias=False),
    ),
    (
        "torch.RNN",
        {"input_size": 3, "hidden_size": 5, "bidirectional": True},
        nn.RNN(3, 5, bidirectional=True),
    ),
    (
        "torch.Conv2d",
        {"in_channels": 4, "out_channels": 6, "kernel_size": [3, 5], "groups": 2},
        nn.Conv2d(4, 6, (3, 5), groups=2),
    ),
    (
        "torch.ConvTranspose2d",
        {"in_channels": 4, "out_channels": 6, "kernel_size": 3, "groups": 2},
        nn.ConvTranspose2d(4, 6, 3, groups=2),
    ),
    (
        "torch.MultiheadAttention",
        {"embed_dim": 8, "num_heads": 2, "kdim": 4, "vdim": 6, "add_bias_kv": True},
        nn.MultiheadAttention(8, 2, kdim=4, vdim=6, add_bias_kv=True),
    ),
    (
        "torch.MultiheadAttention",
        {"embed_dim": 8, "num_heads": 2, "bias": False},
        nn.MultiheadAttention(8, 2, bias=False),
    ),
    ("torch.BatchNorm2d", {"num_features": 6}, nn.BatchNorm2d(6)),
    (
        "torch.Embedding",
        {"num_embeddings": 10, "embedding_dim": 4, "padding_idx": 2},
        nn.Embedding(10, 4, padding_idx=2),
    ),
    ("torch.LayerNorm", {"normalized_shape": [3, 4]}, nn.LayerNorm([3, 4])),
    (
        "torch.Bilinear",
        {"in1_features": 3, "in2_features": 5, "out_features": 2},
        nn.Bilinear(3, 5, 2),
    ),
]


@pytest.mark.parametrize(("preset", "args", "module"), MODULES, ids=lambda v: str(v)[:40])
def test_expansions_match_torch_state_dicts(
    preset: str, args: dict[str, object], module: nn.Module
) -> None:
    state: dict[str, Any] = module.state_dict()
    members = expand(preset, "m", args)
    assert {m.name: m.shape for m in members} == {
        f"m.{k}": tuple(v.shape) for k, v in state.items()
    }
    for m in members:
        dtype = state[m.name.removeprefix("m.")].dtype
        assert (m.dtype == "int64") == (dtype == torch.int64), m.name


def test_embedding_padding_row_is_the_one_torch_zeroes() -> None:
    module = nn.Embedding(10, 4, padding_idx=-3)
    (member,) = expand(
        "torch.Embedding", "e", {"num_embeddings": 10, "embedding_dim": 4, "padding_idx": -3}
    )
    assert member.zero_rows == (-3,)
    assert not module.weight[member.zero_rows[0]].any()
