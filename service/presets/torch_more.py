"""More of torch.nn, each parameter and buffer with its `reset_parameters` init, named as the
module's state_dict (torch 2.13):

- GroupNorm: weight ones, bias zeros (`torch/nn/modules/normalization.py`,
  `GroupNorm.reset_parameters`); num_channels must divide by num_groups, as torch's ValueError.
- InstanceNorm{1,2,3}d: `_NormBase` (`torch/nn/modules/batchnorm.py`): with `affine` (off by
  default, `torch/nn/modules/instancenorm.py`, `_InstanceNorm.__init__`) weight ones and bias
  zeros; with `track_running_stats` (off by default) running_mean 0, running_var 1 and
  num_batches_tracked 0 as int64, the buffers `_NormBase.__init__` registers.
- PReLU: weight (num_parameters,) constant `init` (`torch/nn/modules/activation.py`,
  `PReLU.reset_parameters`).
- RNNCell, LSTMCell, GRUCell: weight_ih (gates·hidden, input), weight_hh (gates·hidden, hidden),
  bias_ih/bias_hh, every one U(±1/√hidden_size) (`torch/nn/modules/rnn.py`,
  `RNNCellBase.reset_parameters`).
- EmbeddingBag: weight N(0, 1), the padding_idx row zeroed (`torch/nn/modules/sparse.py`,
  `EmbeddingBag.reset_parameters`); padding_idx within ±num_embeddings, as torch asserts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from service.arguments import arg
from service.errors import ShapeError
from service.presets.base import Member, Preset, constant, divisible, uniform
from service.presets.torch_norm import running_stats
from service.schemes import Params
from service.shapes import MAX_DIM

AFFINE = "learn the per-channel weight (and bias)"
BIAS = "learn the per-channel bias (with affine)"


@dataclass(frozen=True)
class GroupNormArgs:
    num_groups: int = arg("groups the channels are split into", ge=1, le=MAX_DIM)
    num_channels: int = arg("channels of the input (a multiple of num_groups)", ge=0, le=MAX_DIM)
    affine: bool = arg(AFFINE, True)
    bias: bool = arg(BIAS, True)


@dataclass(frozen=True)
class InstanceNormArgs:
    num_features: int = arg("channels of the input", ge=0, le=MAX_DIM)
    affine: bool = arg(AFFINE, False)
    track_running_stats: bool = arg("keep running_mean, running_var, num_batches_tracked", False)
    bias: bool = arg(BIAS, True)


@dataclass(frozen=True)
class PReLUArgs:
    num_parameters: int = arg(
        "slopes to learn: 1, or the channels of the input", 1, ge=0, le=MAX_DIM
    )
    init: float = arg("the initial slope", 0.25)


@dataclass(frozen=True)
class CellArgs:
    input_size: int = arg("features of the input", ge=0, le=MAX_DIM)
    hidden_size: int = arg("features of the hidden state", ge=0, le=MAX_DIM)
    bias: bool = arg("learn bias_ih and bias_hh", True)


@dataclass(frozen=True)
class EmbeddingBagArgs:
    num_embeddings: int = arg("size of the dictionary of embeddings", ge=0, le=MAX_DIM)
    embedding_dim: int = arg("size of each embedding vector", ge=0, le=MAX_DIM)
    mode: Literal["sum", "mean", "max"] = arg(
        "how a bag is reduced (no effect on the weight)", "mean"
    )
    padding_idx: int | None = arg(
        "the row left zero (negative counts from the end)", None, ge=-MAX_DIM, le=MAX_DIM
    )


def group_norm(name: str, a: GroupNormArgs) -> list[Member]:
    divisible("num_groups", a.num_groups, num_channels=a.num_channels)
    return _affine(name, a.num_channels, a.affine, a.bias)


def _affine(name: str, n: int, affine: bool, bias: bool) -> list[Member]:
    """weight ones and (with `bias`) bias zeros, when `affine`: `_NormBase`, `GroupNorm`."""
    if not affine:
        return []
    out = [constant(f"{name}.weight", (n,), 1.0)]
    if bias:
        out.append(constant(f"{name}.bias", (n,), 0.0))
    return out


def instance_norm(name: str, a: InstanceNormArgs) -> list[Member]:
    out = _affine(name, a.num_features, a.affine, a.bias)
    if a.track_running_stats:
        out += running_stats(name, a.num_features)
    return out


def instance_norm_count(a: InstanceNormArgs) -> int:
    return a.affine * (1 + a.bias) + 3 * a.track_running_stats


def prelu(name: str, a: PReLUArgs) -> list[Member]:
    return [constant(f"{name}.weight", (a.num_parameters,), a.init)]


def cell(gates: int) -> Callable[[str, CellArgs], list[Member]]:
    """RNNCell (1 gate), LSTMCell (4), GRUCell (3): weight_ih, weight_hh, bias_ih, bias_hh."""

    def expand(name: str, a: CellArgs) -> list[Member]:
        hidden, rows = a.hidden_size, gates * a.hidden_size
        bound = 1 / math.sqrt(hidden) if hidden > 0 else 0.0
        out = [
            uniform(f"{name}.weight_ih", (rows, a.input_size), bound),
            uniform(f"{name}.weight_hh", (rows, hidden), bound),
        ]
        if a.bias:
            out += [
                uniform(f"{name}.bias_ih", (rows,), bound),
                uniform(f"{name}.bias_hh", (rows,), bound),
            ]
        return out

    return expand


def embedding_bag(name: str, a: EmbeddingBagArgs) -> list[Member]:
    n, pad = a.num_embeddings, a.padding_idx
    if pad is not None and not -n <= pad < n:
        raise ShapeError(f"padding_idx={pad} must be within num_embeddings={n} (-{n} … {n - 1})")
    rows = () if pad is None else (pad,)
    shape = (n, a.embedding_dim)
    params = Params(mean=0.0, std=1.0)
    return [Member(f"{name}.weight", shape, "normal", "torch", params, zero_rows=rows)]


UNIT = "every parameter U(±1/√hidden_size)"

ROWS: tuple[Preset[Any], ...] = (
    Preset(
        "torch.GroupNorm",
        "weight ones, bias zeros",
        GroupNormArgs,
        group_norm,
        lambda a: a.affine * (1 + a.bias),
    ),
    Preset("torch.PReLU", "weight constant init (0.25)", PReLUArgs, prelu, lambda _: 1),
    Preset("torch.RNNCell", UNIT, CellArgs, cell(1), lambda a: 2 + 2 * a.bias),
    Preset("torch.LSTMCell", UNIT, CellArgs, cell(4), lambda a: 2 + 2 * a.bias),
    Preset("torch.GRUCell", UNIT, CellArgs, cell(3), lambda a: 2 + 2 * a.bias),
    Preset(
        "torch.EmbeddingBag",
        "N(0, 1); the padding_idx row zero",
        EmbeddingBagArgs,
        embedding_bag,
        lambda _: 1,
    ),
)


def instance_norm_preset(dims: int) -> Preset[InstanceNormArgs]:
    """InstanceNorm{dims}d: the same tensors for every rank of input."""
    return Preset(
        f"torch.InstanceNorm{dims}d",
        "affine: weight ones, bias zeros; running stats: mean 0, var 1",
        InstanceNormArgs,
        instance_norm,
        instance_norm_count,
    )


ROWS += tuple(instance_norm_preset(dims) for dims in (1, 2, 3))
