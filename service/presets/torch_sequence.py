"""torch.nn's sequence layers: MultiheadAttention (`torch/nn/modules/activation.py`,
`MultiheadAttention._reset_parameters`) and RNN/LSTM/GRU (`torch/nn/modules/rnn.py`,
`RNNBase.reset_parameters`: every parameter U(±1/√hidden_size), LSTM's proj_size projections
weight_hr_l{k} too), named as their state_dict."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.arguments import arg
from service.errors import ShapeError
from service.presets.base import MAX_COUNT, Member, Preset, constant, torch_weight_and_bias, uniform
from service.shapes import MAX_DIM

BIAS = "learn additive biases"


@dataclass(frozen=True)
class AttentionArgs:
    embed_dim: int = arg("total dimension of the model", ge=0, le=MAX_DIM)
    num_heads: int = arg("parallel attention heads (embed_dim must divide by it)", ge=1, le=MAX_DIM)
    bias: bool = arg("learn in_proj and out_proj biases", True)
    add_bias_kv: bool = arg("learn bias_k and bias_v, added to the key and value", False)
    kdim: int | None = arg("features of the keys; null means embed_dim", None, ge=1, le=MAX_DIM)
    vdim: int | None = arg("features of the values; null means embed_dim", None, ge=1, le=MAX_DIM)


@dataclass(frozen=True)
class RecurrentArgs:
    input_size: int = arg("features of the input", ge=0, le=MAX_DIM)
    hidden_size: int = arg("features of the hidden state", ge=0, le=MAX_DIM)
    num_layers: int = arg("stacked recurrent layers", 1, ge=0, le=MAX_COUNT)
    bias: bool = arg("learn bias_ih and bias_hh", True)
    bidirectional: bool = arg("add a reverse direction to every layer", False)


@dataclass(frozen=True)
class LSTMArgs(RecurrentArgs):
    proj_size: int = arg(
        "project h to this size with weight_hr (0: none; < hidden_size)", 0, ge=0, le=MAX_DIM
    )


def _same_dims(a: AttentionArgs) -> bool:
    """torch's _qkv_same_embed_dim: one packed in_proj_weight, else q/k/v_proj_weight."""
    e = a.embed_dim
    return (a.kdim is None or a.kdim == e) and (a.vdim is None or a.vdim == e)


def attention(name: str, a: AttentionArgs) -> list[Member]:
    """xavier_uniform_ on in_proj (or on separate q/k/v projections when kdim or vdim differ
    from embed_dim), zero biases, bias_k/bias_v xavier_normal_; out_proj keeps nn.Linear's
    kaiming_uniform_(a=√5)."""
    e, heads = a.embed_dim, a.num_heads
    if heads < 1 or e % heads:
        raise ShapeError(f"embed_dim={e} must be divisible by num_heads={heads}")
    if _same_dims(a):
        out = [Member(f"{name}.in_proj_weight", (3 * e, e), "xavier_uniform", "torch")]
    else:
        kdim = e if a.kdim is None else a.kdim
        vdim = e if a.vdim is None else a.vdim
        out = [
            Member(f"{name}.{p}_proj_weight", (e, d), "xavier_uniform", "torch")
            for p, d in (("q", e), ("k", kdim), ("v", vdim))
        ]
    if a.add_bias_kv:
        out += [Member(f"{name}.bias_{p}", (1, 1, e), "xavier_normal", "torch") for p in "kv"]
    out += torch_weight_and_bias(f"{name}.out_proj", (e, e), None)
    if a.bias:
        out += [
            constant(f"{name}.in_proj_bias", (3 * e,), 0.0),
            constant(f"{name}.out_proj.bias", (e,), 0.0),
        ]
    return out


def attention_count(a: AttentionArgs) -> int:
    projections = 1 if _same_dims(a) else 3
    return projections + 2 * a.add_bias_kv + 1 + 2 * a.bias


def _proj(a: RecurrentArgs) -> int:
    """LSTM's proj_size (0 for RNN and GRU, which do not take it), checked as torch does."""
    proj = a.proj_size if isinstance(a, LSTMArgs) else 0
    if proj and proj >= a.hidden_size:
        raise ShapeError(f"proj_size={proj} must be smaller than hidden_size={a.hidden_size}")
    return proj


def recurrent(gates: int) -> Callable[[str, RecurrentArgs], list[Member]]:
    """RNN (1 gate), LSTM (4), GRU (3): weight_ih/hh_l{k}[_reverse], bias_ih/hh_l{k}[_reverse],
    and with LSTM's proj_size weight_hr_l{k}[_reverse] (proj_size, hidden_size), h then being
    proj_size wide (`RNNBase.__init__`); reset_parameters draws every one U(±1/√hidden_size)."""

    def expand(name: str, a: RecurrentArgs) -> list[Member]:
        hidden, rows, proj = a.hidden_size, gates * a.hidden_size, _proj(a)
        bound = 1 / math.sqrt(hidden) if hidden > 0 else 0.0
        directions, real = 2 if a.bidirectional else 1, proj or hidden
        out: list[Member] = []
        for layer in range(a.num_layers):
            width = a.input_size if layer == 0 else real * directions
            for d in range(directions):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                out += [
                    uniform(f"{name}.weight_ih{sfx}", (rows, width), bound),
                    uniform(f"{name}.weight_hh{sfx}", (rows, real), bound),
                ]
                if a.bias:
                    out += [
                        uniform(f"{name}.bias_ih{sfx}", (rows,), bound),
                        uniform(f"{name}.bias_hh{sfx}", (rows,), bound),
                    ]
                if proj:
                    out.append(uniform(f"{name}.weight_hr{sfx}", (proj, hidden), bound))
        return out

    return expand


def recurrent_count(a: RecurrentArgs) -> int:
    proj = bool(a.proj_size) if isinstance(a, LSTMArgs) else False
    return a.num_layers * (2 if a.bidirectional else 1) * (2 + 2 * a.bias + proj)


UNIT = "every parameter U(±1/√hidden_size)"

ROWS: tuple[Preset[Any], ...] = (
    Preset(
        "torch.MultiheadAttention",
        "in_proj (or q/k/v) xavier_uniform, out_proj Linear default, biases zero",
        AttentionArgs,
        attention,
        attention_count,
    ),
    Preset("torch.RNN", UNIT, RecurrentArgs, recurrent(1), recurrent_count),
    Preset("torch.LSTM", UNIT, LSTMArgs, recurrent(4), recurrent_count),
    Preset("torch.GRU", UNIT, RecurrentArgs, recurrent(3), recurrent_count),
)
