"""torch.nn's transformer layers as composites of the presets they are built from, named as
their state_dict (torch 2.13, `torch/nn/modules/transformer.py`):

- TransformerEncoderLayer: self_attn (MultiheadAttention(d_model, nhead, bias=bias): in_proj
  xavier_uniform_, out_proj Linear default, biases zero), linear1 (d_model → dim_feedforward) and
  linear2 (back), Linear's kaiming_uniform_(a=√5) and U(±1/√fan_in) biases, norm1 and norm2
  (LayerNorm(d_model, bias=bias): ones, zeros). No `reset_parameters` of its own.
- TransformerDecoderLayer: the same with multihead_attn (cross-attention) and norm3.
- Transformer: encoder.layers.{i}, encoder.norm, decoder.layers.{i}, decoder.norm, then
  `Transformer._reset_parameters`: xavier_uniform_ on every parameter with dim > 1 (the Linear
  and out_proj weights too). The layers are `copy.deepcopy`s of one layer (`_get_clones`), so
  the 1-d tensors it leaves alone are the same in every layer: linear1.bias and linear2.bias of
  layer i > 0 are tied to layer 0's (the zero and one constants are equal anyway).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from service.arguments import arg
from service.presets.base import (
    MAX_COUNT,
    Member,
    Preset,
    constant,
    divisible,
    torch_weight_and_bias,
)
from service.presets.torch_sequence import AttentionArgs, attention
from service.shapes import MAX_DIM

D_MODEL = "features of the input and output (a multiple of nhead)"
NHEAD = "heads of each attention"
FEEDFORWARD = "features of the feedforward network's hidden layer"
BIAS = "learn the Linear, attention and LayerNorm biases"


@dataclass(frozen=True)
class LayerArgs:
    d_model: int = arg(D_MODEL, ge=0, le=MAX_DIM)
    nhead: int = arg(NHEAD, ge=1, le=MAX_DIM)
    dim_feedforward: int = arg(FEEDFORWARD, 2048, ge=0, le=MAX_DIM)
    bias: bool = arg(BIAS, True)


@dataclass(frozen=True)
class TransformerArgs:
    d_model: int = arg(D_MODEL, 512, ge=0, le=MAX_DIM)
    nhead: int = arg(NHEAD, 8, ge=1, le=MAX_DIM)
    num_encoder_layers: int = arg("encoder layers", 6, ge=0, le=MAX_COUNT)
    num_decoder_layers: int = arg("decoder layers", 6, ge=0, le=MAX_COUNT)
    dim_feedforward: int = arg(FEEDFORWARD, 2048, ge=0, le=MAX_DIM)
    bias: bool = arg(BIAS, True)


def _norm(name: str, d: int, bias: bool) -> list[Member]:
    out = [constant(f"{name}.weight", (d,), 1.0)]
    return out + ([constant(f"{name}.bias", (d,), 0.0)] if bias else [])


def _layer(name: str, a: LayerArgs, decoder: bool) -> list[Member]:
    """One encoder or decoder layer in state_dict order, each tensor its submodule's init."""
    d, ff = a.d_model, a.dim_feedforward
    divisible("nhead", a.nhead, d_model=d)  # named as the layer names them, not embed_dim
    attn = AttentionArgs(embed_dim=d, num_heads=a.nhead, bias=a.bias)
    out = attention(f"{name}.self_attn", attn)
    if decoder:
        out += attention(f"{name}.multihead_attn", attn)
    out += torch_weight_and_bias(f"{name}.linear1", (ff, d), ff if a.bias else None)
    out += torch_weight_and_bias(f"{name}.linear2", (d, ff), d if a.bias else None)
    for norm in ("norm1", "norm2", "norm3") if decoder else ("norm1", "norm2"):
        out += _norm(f"{name}.{norm}", d, a.bias)
    return out


def encoder_layer(name: str, a: LayerArgs) -> list[Member]:
    return _layer(name, a, decoder=False)


def decoder_layer(name: str, a: LayerArgs) -> list[Member]:
    return _layer(name, a, decoder=True)


def _layer_count(bias: bool, decoder: bool) -> int:
    attentions, norms = (2, 3) if decoder else (1, 2)
    return attentions * (2 + 2 * bias) + 2 * (1 + bias) + norms * (1 + bias)


def _xavier(m: Member) -> Member:
    """`Transformer._reset_parameters`: xavier_uniform_ on every parameter with dim > 1."""
    if len(m.shape) < 2:
        return m
    return Member(m.name, m.shape, "xavier_uniform", "torch")


def _stack(name: str, a: TransformerArgs, layers: int, decoder: bool) -> list[Member]:
    """`_get_clones`: layer i > 0 a deep copy of layer 0, its 1-d Linear biases tied to 0's."""
    args = LayerArgs(a.d_model, a.nhead, a.dim_feedforward, a.bias)
    first = [_xavier(m) for m in _layer(f"{name}.layers.0", args, decoder)]
    out = list(first)
    for i in range(1, layers):
        for m in first:
            clone = m.name.replace(f"{name}.layers.0.", f"{name}.layers.{i}.", 1)
            tied = m.scheme == "uniform"  # the Linear biases: the only random 1-d tensors
            out.append(replace(m, name=clone, tied_to=m.name if tied else None))
    return out + _norm(f"{name}.norm", a.d_model, a.bias)


def transformer(name: str, a: TransformerArgs) -> list[Member]:
    encoder = _stack(f"{name}.encoder", a, a.num_encoder_layers, decoder=False)
    return encoder + _stack(f"{name}.decoder", a, a.num_decoder_layers, decoder=True)


def transformer_count(a: TransformerArgs) -> int:
    norm = 1 + a.bias
    encoder = a.num_encoder_layers * _layer_count(a.bias, decoder=False) + norm
    return encoder + a.num_decoder_layers * _layer_count(a.bias, decoder=True) + norm


ROWS: tuple[Preset[Any], ...] = (
    Preset(
        "torch.TransformerEncoderLayer",
        "self_attn as MultiheadAttention, linear1/2 as Linear, norm1/2 as LayerNorm",
        LayerArgs,
        encoder_layer,
        lambda a: _layer_count(a.bias, decoder=False),
    ),
    Preset(
        "torch.TransformerDecoderLayer",
        "as the encoder layer, with multihead_attn and norm3",
        LayerArgs,
        decoder_layer,
        lambda a: _layer_count(a.bias, decoder=True),
    ),
    Preset(
        "torch.Transformer",
        "every matrix xavier_uniform; Linear biases U(±1/√fan_in), equal in every layer",
        TransformerArgs,
        transformer,
        transformer_count,
    ),
)
