"""More Keras 3 layers with their default initializers, as Keras 3.15 builds them (paths under
`keras/src/layers/`; tensors named by their Keras weight paths with `.` for `/`):

- Conv{1,2,3}DTranspose (`convolutional/base_conv_transpose.py` 178-210): kernel
  (*kernel_size, filters, in_channels) glorot_uniform, bias (filters,) zeros. Keras'
  `compute_fans` reads the kernel as (*k, in, out), so it takes fan_in = filters·∏k and
  fan_out = in_channels·∏k (the layout trap of TF issue #31192); we reproduce that exactly
  (convention keras), and glorot's fan_avg makes the bound the same either way.
- DepthwiseConv{1,2}D (`base_depthwise_conv.py` 150-183): kernel (*k, in, depth_multiplier)
  glorot_uniform, bias (depth_multiplier·in,) zeros.
- SeparableConv{1,2}D (`base_separable_conv.py` 159-209): depthwise_kernel (*k, in, dm) and
  pointwise_kernel (1, …, dm·in, filters) glorot_uniform, bias (filters,) zeros.
- LayerNormalization (`normalization/layer_normalization.py` 153-182): gamma ones, beta zeros,
  shaped as the normalized axes.
- BatchNormalization (`normalization/batch_normalization.py` 242-275): gamma ones, beta zeros,
  moving_mean zeros, moving_variance ones.
- SimpleRNN, LSTM, GRU (`rnn/simple_rnn.py` 129-150, `rnn/lstm.py` 150-191, `rnn/gru.py`
  148-178): under `{simple_rnn,lstm,gru}_cell`, kernel (in, g·units) glorot_uniform,
  recurrent_kernel (units, g·units) orthogonal, bias zeros; LSTM's `unit_forget_bias` (default
  on) makes the bias concatenate(zeros(u), ones(u), zeros(2u)); GRU's `reset_after` (default
  on) makes it (2, 3·units).
- MultiHeadAttention (`attention/multi_head_attention.py` 290-360): EinsumDense sublayers
  query (q_in, heads, key_dim), key (k_in, heads, key_dim), value (v_in, heads, value_dim),
  attention_output (heads, value_dim, out), each kernel glorot_uniform and each bias zeros
  (query/key/value (heads, dim), output (out,)). EinsumDense hands VarianceScaling the einsum's
  input_axes/output_axes (`core/einsum_dense.py` 180-197, 1767-1775), so the fans are plain
  products over those axes, not `compute_fans`: query fan_in = q_in, fan_out = heads·key_dim.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.arguments import INFERRED, arg
from service.errors import ShapeError
from service.presets.base import MAX_KERNEL_DIMS, Member, Preset, constant, kernel, zero_bias
from service.schemes import FanSpec
from service.shapes import MAX_DIM, MAX_RANK

USE_BIAS = "learn an additive bias"
IN_CHANNELS = "channels of the input (input_shape[-1], channels_last)"
INPUT_DIM = "features of the input (input_shape[-1])"
KERNEL_SIZE = "size of the convolution window: one int for every dimension, or one per dimension"
DEPTH_MULTIPLIER = "depthwise output channels per input channel"
# unit_forget_bias's bias is `ones` with every other element in zero_rows: 3·units of them.
MAX_FORGET_UNITS = 4096


def _kernel_size() -> Any:
    return arg(KERNEL_SIZE, ge=0, le=MAX_DIM, min_items=1, max_items=MAX_KERNEL_DIMS)


@dataclass(frozen=True)
class ConvTransposeArgs:
    in_channels: int = arg(IN_CHANNELS, ge=0, le=MAX_DIM, framework=INFERRED)
    filters: int = arg("dimensionality of the output space (output channels)", ge=0, le=MAX_DIM)
    kernel_size: int | tuple[int, ...] = _kernel_size()
    use_bias: bool = arg(USE_BIAS, True)


@dataclass(frozen=True)
class DepthwiseArgs:
    in_channels: int = arg(IN_CHANNELS, ge=0, le=MAX_DIM, framework=INFERRED)
    kernel_size: int | tuple[int, ...] = _kernel_size()
    depth_multiplier: int = arg(DEPTH_MULTIPLIER, 1, ge=1, le=MAX_DIM)
    use_bias: bool = arg(USE_BIAS, True)


@dataclass(frozen=True)
class SeparableArgs:
    in_channels: int = arg(IN_CHANNELS, ge=0, le=MAX_DIM, framework=INFERRED)
    filters: int = arg("dimensionality of the output space (output channels)", ge=0, le=MAX_DIM)
    kernel_size: int | tuple[int, ...] = _kernel_size()
    depth_multiplier: int = arg(DEPTH_MULTIPLIER, 1, ge=1, le=MAX_DIM)
    use_bias: bool = arg(USE_BIAS, True)


@dataclass(frozen=True)
class LayerNormArgs:
    shape: int | tuple[int, ...] = arg(
        "sizes of the normalized axes (input_shape[axis]): one int, or one per axis",
        ge=0,
        le=MAX_DIM,
        min_items=1,
        max_items=MAX_RANK,
        framework=INFERRED,
    )
    center: bool = arg("learn the offset beta", True)
    scale: bool = arg("learn the scale gamma", True)


@dataclass(frozen=True)
class BatchNormArgs:
    features: int = arg(
        "size of the normalized axis (input_shape[axis])", ge=0, le=MAX_DIM, framework=INFERRED
    )
    center: bool = arg("learn the offset beta", True)
    scale: bool = arg("learn the scale gamma", True)


@dataclass(frozen=True)
class RNNArgs:
    input_dim: int = arg(INPUT_DIM, ge=0, le=MAX_DIM, framework=INFERRED)
    units: int = arg("dimensionality of the output space", ge=0, le=MAX_DIM)
    use_bias: bool = arg(USE_BIAS, True)


@dataclass(frozen=True)
class LSTMArgs:
    input_dim: int = arg(INPUT_DIM, ge=0, le=MAX_DIM, framework=INFERRED)
    units: int = arg("dimensionality of the output space", ge=0, le=MAX_DIM)
    use_bias: bool = arg(USE_BIAS, True)
    unit_forget_bias: bool = arg("add 1 to the forget gate's bias at initialization", True)


@dataclass(frozen=True)
class GRUArgs:
    input_dim: int = arg(INPUT_DIM, ge=0, le=MAX_DIM, framework=INFERRED)
    units: int = arg("dimensionality of the output space", ge=0, le=MAX_DIM)
    use_bias: bool = arg(USE_BIAS, True)
    reset_after: bool = arg("apply the reset gate after the matmul (separate biases)", True)


@dataclass(frozen=True)
class MHAArgs:
    query_dim: int = arg(
        "features of the query (query_shape[-1])", ge=0, le=MAX_DIM, framework=INFERRED
    )
    num_heads: int = arg("number of attention heads", ge=0, le=MAX_DIM)
    key_dim: int = arg("size of each head for query and key", ge=0, le=MAX_DIM)
    value_dim: int | None = arg(
        "size of each head for value (default key_dim)", None, ge=0, le=MAX_DIM
    )
    value_input_dim: int | None = arg(
        "features of the value (value_shape[-1]; default query_dim)",
        None,
        ge=0,
        le=MAX_DIM,
        framework=INFERRED,
    )
    key_input_dim: int | None = arg(
        "features of the key (key_shape[-1]; default value_input_dim)",
        None,
        ge=0,
        le=MAX_DIM,
        framework=INFERRED,
    )
    output_dim: int | None = arg(
        "output features (Keras output_shape as one int; default query_dim)",
        None,
        ge=0,
        le=MAX_DIM,
        framework="output_shape",
    )
    use_bias: bool = arg(USE_BIAS, True)


def _glorot(name: str, shape: tuple[int, ...], fans: FanSpec | None = None) -> Member:
    return Member(name, shape, "glorot_uniform", "keras", fans=fans or FanSpec())


def conv_transpose(dims: int) -> Callable[[str, ConvTransposeArgs], list[Member]]:
    def expand(name: str, a: ConvTransposeArgs) -> list[Member]:
        shape = (*kernel(a.kernel_size, dims), a.filters, a.in_channels)
        return [_glorot(f"{name}.kernel", shape), *zero_bias(name, a.filters, a.use_bias)]

    return expand


def depthwise(dims: int) -> Callable[[str, DepthwiseArgs], list[Member]]:
    def expand(name: str, a: DepthwiseArgs) -> list[Member]:
        shape = (*kernel(a.kernel_size, dims), a.in_channels, a.depth_multiplier)
        out = [_glorot(f"{name}.kernel", shape)]
        return out + zero_bias(name, a.in_channels * a.depth_multiplier, a.use_bias)

    return expand


def separable(dims: int) -> Callable[[str, SeparableArgs], list[Member]]:
    def expand(name: str, a: SeparableArgs) -> list[Member]:
        k = kernel(a.kernel_size, dims)
        middle = a.in_channels * a.depth_multiplier
        return [
            _glorot(f"{name}.depthwise_kernel", (*k, a.in_channels, a.depth_multiplier)),
            _glorot(f"{name}.pointwise_kernel", (*(1,) * dims, middle, a.filters)),
            *zero_bias(name, a.filters, a.use_bias),
        ]

    return expand


def layer_norm(name: str, a: LayerNormArgs) -> list[Member]:
    shape = (a.shape,) if isinstance(a.shape, int) else tuple(a.shape)
    out = [constant(f"{name}.gamma", shape, 1.0)] if a.scale else []
    return out + ([constant(f"{name}.beta", shape, 0.0)] if a.center else [])


def batch_norm(name: str, a: BatchNormArgs) -> list[Member]:
    n = (a.features,)
    out = [constant(f"{name}.gamma", n, 1.0)] if a.scale else []
    out += [constant(f"{name}.beta", n, 0.0)] if a.center else []
    stats = [constant(f"{name}.moving_mean", n, 0.0), constant(f"{name}.moving_variance", n, 1.0)]
    return out + stats


def _cell(name: str, a: RNNArgs | LSTMArgs | GRUArgs, gates: int) -> list[Member]:
    """kernel glorot_uniform, recurrent_kernel orthogonal (Keras Orthogonal: rows = ∏shape[:-1])."""
    return [
        _glorot(f"{name}.kernel", (a.input_dim, gates * a.units)),
        Member(f"{name}.recurrent_kernel", (a.units, gates * a.units), "orthogonal", "keras"),
    ]


def simple_rnn(name: str, a: RNNArgs) -> list[Member]:
    cell = f"{name}.simple_rnn_cell"
    return _cell(cell, a, 1) + zero_bias(cell, a.units, a.use_bias)


def _forget_bias(name: str, units: int) -> Member:
    """lstm.py 166-182: concatenate(zeros(u), ones(u), zeros(2u)) as ones with the rest zeroed."""
    if units > MAX_FORGET_UNITS:
        raise ShapeError(
            f"units={units} with unit_forget_bias must be <= {MAX_FORGET_UNITS}: its bias is sent "
            "as ones with 3·units zeroed elements; give unit_forget_bias false for larger layers"
        )
    rows = (*range(units), *range(2 * units, 4 * units))
    return Member(f"{name}.bias", (4 * units,), "ones", "torch", zero_rows=rows)


def lstm(name: str, a: LSTMArgs) -> list[Member]:
    cell = f"{name}.lstm_cell"
    out = _cell(cell, a, 4)
    if a.use_bias:
        forget = a.unit_forget_bias and a.units > 0
        zeros = constant(f"{cell}.bias", (4 * a.units,), 0.0)
        out.append(_forget_bias(cell, a.units) if forget else zeros)
    return out


def gru(name: str, a: GRUArgs) -> list[Member]:
    cell = f"{name}.gru_cell"
    out = _cell(cell, a, 3)
    if a.use_bias:
        shape = (2, 3 * a.units) if a.reset_after else (3 * a.units,)
        out.append(constant(f"{cell}.bias", shape, 0.0))
    return out


def _einsum(name: str, shape: tuple[int, ...], inputs: int, bias: bool) -> list[Member]:
    """An EinsumDense kernel whose first `inputs` axes are input units, and its bias."""
    fans = FanSpec(in_axes=tuple(range(inputs)), out_axes=tuple(range(inputs, len(shape))))
    out = [_glorot(f"{name}.kernel", shape, fans)]
    return out + ([constant(f"{name}.bias", shape[inputs:], 0.0)] if bias else [])


def multi_head_attention(name: str, a: MHAArgs) -> list[Member]:
    value_dim = a.key_dim if a.value_dim is None else a.value_dim
    value_in = a.query_dim if a.value_input_dim is None else a.value_input_dim
    key_in = value_in if a.key_input_dim is None else a.key_input_dim
    out_dim = a.query_dim if a.output_dim is None else a.output_dim
    heads, b = a.num_heads, a.use_bias
    return [
        *_einsum(f"{name}.query", (a.query_dim, heads, a.key_dim), 1, b),
        *_einsum(f"{name}.key", (key_in, heads, a.key_dim), 1, b),
        *_einsum(f"{name}.value", (value_in, heads, value_dim), 1, b),
        *_einsum(f"{name}.attention_output", (heads, value_dim, out_dim), 2, b),
    ]


def _with_bias(base: int) -> Callable[[Any], int]:
    return lambda a: base + bool(a.use_bias)


def _norm_count(a: LayerNormArgs | BatchNormArgs) -> int:
    return int(a.center) + int(a.scale) + (2 if isinstance(a, BatchNormArgs) else 0)


ROWS: tuple[Preset[Any], ...] = (
    Preset(
        "keras.LayerNormalization",
        "gamma ones, beta zeros (shaped as the normalized axes)",
        LayerNormArgs,
        layer_norm,
        _norm_count,
    ),
    Preset(
        "keras.BatchNormalization",
        "gamma ones, beta zeros, moving_mean zeros, moving_variance ones",
        BatchNormArgs,
        batch_norm,
        _norm_count,
    ),
    Preset(
        "keras.SimpleRNN",
        "simple_rnn_cell: kernel glorot_uniform, recurrent_kernel orthogonal, bias zeros",
        RNNArgs,
        simple_rnn,
        _with_bias(2),
    ),
    Preset(
        "keras.LSTM",
        "lstm_cell: kernel glorot_uniform, recurrent_kernel orthogonal, bias zeros with the "
        "forget gate's ones (unit_forget_bias)",
        LSTMArgs,
        lstm,
        _with_bias(2),
    ),
    Preset(
        "keras.GRU",
        "gru_cell: kernel glorot_uniform, recurrent_kernel orthogonal, bias zeros, (2, 3·units) "
        "with reset_after",
        GRUArgs,
        gru,
        _with_bias(2),
    ),
    Preset(
        "keras.MultiHeadAttention",
        "query/key/value/attention_output EinsumDense: kernel glorot_uniform with the einsum's "
        "input/output axes as fans, bias zeros",
        MHAArgs,
        multi_head_attention,
        lambda a: 4 * (1 + bool(a.use_bias)),
    ),
)


def spatial(dims: int) -> tuple[Preset[Any], ...]:
    """Conv{dims}DTranspose, and for 1-d and 2-d DepthwiseConv and SeparableConv."""
    rows: list[Preset[Any]] = [
        Preset(
            f"keras.Conv{dims}DTranspose",
            "kernel (*k, filters, in) glorot_uniform: Keras' compute_fans takes fan_in = "
            "filters·∏k, fan_out = in·∏k (TF #31192), reproduced; bias zeros",
            ConvTransposeArgs,
            conv_transpose(dims),
            _with_bias(1),
        )
    ]
    if dims < MAX_KERNEL_DIMS:
        rows.append(
            Preset(
                f"keras.DepthwiseConv{dims}D",
                "kernel (*k, in, depth_multiplier) glorot_uniform, bias zeros",
                DepthwiseArgs,
                depthwise(dims),
                _with_bias(1),
            )
        )
        rows.append(
            Preset(
                f"keras.SeparableConv{dims}D",
                "depthwise_kernel, pointwise_kernel glorot_uniform, bias zeros",
                SeparableArgs,
                separable(dims),
                _with_bias(2),
            )
        )
    return tuple(rows)
