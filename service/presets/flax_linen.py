"""More Flax linen layers with their default initializers, as flax 0.12.8 builds them (paths under
`flax/linen/`; tensors named by their param paths under the layer's name, `.` for `/`):

- ConvTranspose (`linear.py` `ConvTranspose.__call__` 1004-1030): kernel (*k, in, features), or
  (*k, features, in) with `transpose_kernel`, lecun_normal with jax's default fans (in_axis=-2),
  so transpose_kernel makes fan_in = features·∏k; bias (features,) zeros. No groups.
- DenseGeneral (`linear.py` `DenseGeneral.__call__` 144-185): kernel batch_shape + in_features
  + features, drawn by `kernel_init_wrap` as the flat matrix (∏batch·∏in, ∏features) and
  reshaped: lecun_normal's fans are that matrix's (batch sizes count in fan_in); bias
  batch_shape + features zeros.
- MultiHeadDotProductAttention (`attention.py` `MultiHeadDotProductAttention.__call__`
  525-567, 675-688): DenseGeneral query/key/value, kernel (in, heads, head_dim) with fans
  (in, heads·head_dim), bias (heads, head_dim); DenseGeneral out (axis=(-2, -1)), kernel
  (heads, head_dim, out) with fans (heads·head_dim, out), bias (out,). `normalize_qk` adds
  LayerNorm(use_bias=False) query_ln.scale and key_ln.scale (head_dim,) ones. Jax's default
  fans of a 3-d kernel (in_axis=-2) would be others: the flattening matters.
- LSTMCell, OptimizedLSTMCell (`recurrent.py` `LSTMCell.__call__` 150-171,
  `OptimizedLSTMCell.__call__` 335-354, same params): i{i,f,g,o} Dense kernel (in, features)
  lecun_normal without bias, h{i,f,g,o} kernel (features, features) orthogonal with bias zeros.
- GRUCell (`recurrent.py` `GRUCell.__call__` 570-593): i{r,z,n} kernel (in, features)
  lecun_normal with bias zeros; h{r,z} kernel (features, features) orthogonal without bias,
  hn with bias zeros.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.arguments import INFERRED, SAME, arg
from service.errors import ShapeError
from service.presets.base import Member, Preset, constant, divisible, zero_bias
from service.schemes import FanSpec, Shape
from service.shapes import MAX_DIM, MAX_RANK

USE_BIAS = "learn an additive bias"
IN_FEATURES = "features of the input (inputs.shape[-1])"
LECUN = "lecun_normal"  # linear.py default_kernel_init = initializers.lecun_normal()


def _sizes(description: str, framework: str | None) -> Any:
    """One size, or one per axis (at least one, a kernel's rank stays within MAX_RANK)."""
    return arg(
        description, ge=0, le=MAX_DIM, min_items=1, max_items=MAX_RANK - 1, framework=framework
    )


@dataclass(frozen=True)
class ConvTransposeArgs:
    in_features: int = arg(IN_FEATURES, ge=0, le=MAX_DIM, framework=INFERRED)
    features: int = arg("number of convolution filters (output features)", ge=0, le=MAX_DIM)
    kernel_size: int | tuple[int, ...] = arg(
        "shape of the kernel: one int per spatial dimension (an int alone: 1-d)",
        ge=0,
        le=MAX_DIM,
        min_items=1,
        max_items=MAX_RANK - 2,  # the kernel adds (in, out): its rank stays within MAX_RANK
    )
    use_bias: bool = arg(USE_BIAS, True)
    transpose_kernel: bool = arg("kernel (*k, features, in) instead of (*k, in, features)", False)


@dataclass(frozen=True)
class DenseGeneralArgs:
    in_features: int | tuple[int, ...] = _sizes(
        "sizes of the contracted input axes (inputs.shape[ax] for ax in axis)", INFERRED
    )
    features: int | tuple[int, ...] = _sizes("output features: one int, or one per axis", SAME)
    batch_shape: tuple[int, ...] = arg(
        "sizes of the batch axes (inputs.shape[ax] for ax in batch_dims); none by default",
        (),
        ge=0,
        le=MAX_DIM,
        max_items=MAX_RANK - 2,
        framework=INFERRED,
    )
    use_bias: bool = arg(USE_BIAS, True)


@dataclass(frozen=True)
class AttentionArgs:
    num_heads: int = arg("number of attention heads", ge=1, le=MAX_DIM)
    query_features: int = arg(
        "features of inputs_q (shape[-1])", ge=0, le=MAX_DIM, framework=INFERRED
    )
    key_features: int | None = arg(
        "features of inputs_k (default query_features)", None, ge=0, le=MAX_DIM, framework=INFERRED
    )
    value_features: int | None = arg(
        "features of inputs_v (default key_features)", None, ge=0, le=MAX_DIM, framework=INFERRED
    )
    qkv_features: int | None = arg(
        "features of query, key and value, all heads (null or 0: query_features)",
        None,
        ge=0,
        le=MAX_DIM,
    )
    out_features: int | None = arg(
        "output features (null or 0: query_features)", None, ge=0, le=MAX_DIM
    )
    use_bias: bool = arg(USE_BIAS, True)
    normalize_qk: bool = arg("LayerNorm (scale only) on query and key per head", False)


@dataclass(frozen=True)
class CellArgs:
    in_features: int = arg(IN_FEATURES, ge=0, le=MAX_DIM, framework=INFERRED)
    features: int = arg("number of output (hidden) features", ge=0, le=MAX_DIM)


def _as_shape(size: int | tuple[int, ...]) -> Shape:
    return (size,) if isinstance(size, int) else tuple(size)


def flat_kernel(name: str, shape: Shape, inputs: int) -> Member:
    """DenseGeneral's `kernel_init_wrap`: lecun_normal on the matrix (∏shape[:inputs],
    ∏shape[inputs:]), reshaped to `shape`. The values are i.i.d., so only the fans tell it from
    a draw in `shape`: jax's fans with the first `inputs` axes as in_axes and the rest as
    out_axes (receptive field 1) are exactly that matrix's."""
    fans = FanSpec(in_axes=tuple(range(inputs)), out_axes=tuple(range(inputs, len(shape))))
    return Member(f"{name}.kernel", shape, LECUN, "jax", fans=fans)


def conv_transpose(name: str, a: ConvTransposeArgs) -> list[Member]:
    k = _as_shape(a.kernel_size)
    channels = (a.features, a.in_features) if a.transpose_kernel else (a.in_features, a.features)
    out = [Member(f"{name}.kernel", (*k, *channels), LECUN, "jax")]
    return out + zero_bias(name, a.features, a.use_bias)


def dense_general(name: str, a: DenseGeneralArgs) -> list[Member]:
    inputs = (*a.batch_shape, *_as_shape(a.in_features))
    features = _as_shape(a.features)
    if len(inputs) + len(features) > MAX_RANK:
        raise ShapeError(
            f"flax.DenseGeneral's kernel batch_shape + in_features + features has rank "
            f"{len(inputs) + len(features)}; at most {MAX_RANK} is served"
        )
    out = [flat_kernel(name, (*inputs, *features), len(inputs))]
    if a.use_bias:
        out.append(constant(f"{name}.bias", (*a.batch_shape, *features), 0.0))
    return out


def _projection(name: str, shape: Shape, inputs: int, bias: bool) -> list[Member]:
    """A DenseGeneral sublayer: its flattened kernel and its bias (shape[inputs:]) zeros."""
    out = [flat_kernel(name, shape, inputs)]
    return out + ([constant(f"{name}.bias", shape[inputs:], 0.0)] if bias else [])


def attention(name: str, a: AttentionArgs) -> list[Member]:
    key_in = a.query_features if a.key_features is None else a.key_features
    value_in = key_in if a.value_features is None else a.value_features
    qkv = a.qkv_features or a.query_features  # Flax's `or`: null and 0 both mean the default
    out_features = a.out_features or a.query_features
    divisible("num_heads", a.num_heads, qkv_features=qkv)
    heads = (a.num_heads, qkv // a.num_heads)
    b = a.use_bias
    out = [
        *_projection(f"{name}.query", (a.query_features, *heads), 1, b),
        *_projection(f"{name}.key", (key_in, *heads), 1, b),
        *_projection(f"{name}.value", (value_in, *heads), 1, b),
    ]
    if a.normalize_qk:
        out += [constant(f"{name}.{ln}.scale", heads[1:], 1.0) for ln in ("query_ln", "key_ln")]
    return out + _projection(f"{name}.out", (*heads, out_features), 2, b)


def _input(name: str, a: CellArgs, bias: bool) -> list[Member]:
    """An input Dense: kernel (in, features) lecun_normal, bias zeros when `bias`."""
    out = [Member(f"{name}.kernel", (a.in_features, a.features), LECUN, "jax")]
    return out + zero_bias(name, a.features, bias)


def _hidden(name: str, a: CellArgs, bias: bool) -> list[Member]:
    """A recurrent Dense: kernel (features, features) orthogonal(), bias zeros when `bias`."""
    out = [Member(f"{name}.kernel", (a.features, a.features), "orthogonal", "jax")]
    return out + zero_bias(name, a.features, bias)


def lstm_cell(name: str, a: CellArgs) -> list[Member]:
    """ii, hi, if, hf, ig, hg, io, ho: only the hidden Dense have a bias."""
    out: list[Member] = []
    for gate in "ifgo":
        out += _input(f"{name}.i{gate}", a, False) + _hidden(f"{name}.h{gate}", a, True)
    return out


def gru_cell(name: str, a: CellArgs) -> list[Member]:
    """ir, hr, iz, hz, in, hn: the input Dense have a bias, of the hidden ones only hn."""
    out: list[Member] = []
    for gate in "rzn":
        out += _input(f"{name}.i{gate}", a, True) + _hidden(f"{name}.h{gate}", a, gate == "n")
    return out


def _with_bias(base: int, per_bias: int = 1) -> Callable[[Any], int]:
    return lambda a: base + per_bias * bool(a.use_bias)


def _attention_count(a: AttentionArgs) -> int:
    return 4 * (1 + a.use_bias) + 2 * a.normalize_qk


ATTENTION = (
    "query/key/value/out DenseGeneral: kernel lecun_normal with the flattened matrix's fans, "
    "bias zeros; normalize_qk: query_ln/key_ln scale ones"
)

ROWS: tuple[Preset[Any], ...] = (
    Preset(
        "flax.ConvTranspose",
        "kernel (*k, in, features) lecun_normal (transpose_kernel: (*k, features, in)), bias zeros",
        ConvTransposeArgs,
        conv_transpose,
        _with_bias(1),
    ),
    Preset(
        "flax.DenseGeneral",
        "kernel lecun_normal on the flattened (∏batch·∏in, ∏features) matrix, bias zeros",
        DenseGeneralArgs,
        dense_general,
        _with_bias(1),
    ),
    Preset(
        "flax.MultiHeadDotProductAttention", ATTENTION, AttentionArgs, attention, _attention_count
    ),
    Preset(
        "flax.LSTMCell",
        "i{i,f,g,o} kernel lecun_normal; h{i,f,g,o} kernel orthogonal, bias zeros",
        CellArgs,
        lstm_cell,
        lambda _: 12,
    ),
    Preset(
        "flax.OptimizedLSTMCell",
        "as flax.LSTMCell (the same params, concatenated when applied)",
        CellArgs,
        lstm_cell,
        lambda _: 12,
    ),
    Preset(
        "flax.GRUCell",
        "i{r,z,n} kernel lecun_normal, bias zeros; h{r,z,n} kernel orthogonal, hn bias zeros",
        CellArgs,
        gru_cell,
        lambda _: 10,
    ),
)
