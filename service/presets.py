"""Layer presets: a framework's layer, expanded into its named tensors, each with that
framework's own default initialization (`shared/reference/initializers.md` §2.3, §3, §6, §8).

`torch.Linear` named `mlp.fc1` with in_features=768, out_features=3072 becomes
`mlp.fc1.weight` (3072, 768), kaiming_uniform(a=√5) = U(±1/√768), and `mlp.fc1.bias` (3072,),
U(±1/√768), exactly as `torch.nn.Linear.reset_parameters` draws them (distribution-wise).
Pure: no HTTP, no pydantic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from service.dtypes import DTypeName
from service.errors import SchemeError, ShapeError, one_of
from service.schemes import Convention, FanSpec, Params, Shape

ArgValue = int | float | bool | list[int] | None
ArgKind = Literal["int", "float", "bool", "ints", "optional_int"]
REQUIRED = object()  # marks an argument without a default
SQRT5 = math.sqrt(5.0)  # torch's Linear/Conv a=√5: kaiming bound becomes 1/√fan_in


@dataclass(frozen=True)
class Member:
    """One named tensor of a bundle; dtype None means the bundle's dtype."""

    name: str
    shape: Shape
    scheme: str
    convention: Convention
    params: Params = field(default_factory=Params)
    fans: FanSpec = field(default_factory=FanSpec)
    zero_rows: tuple[int, ...] = ()
    dtype: DTypeName | None = None


Args = Mapping[str, ArgValue]


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str
    args: Mapping[str, tuple[ArgKind, object]]  # name -> (kind, default or REQUIRED)
    expand: Callable[[str, Args], list[Member]] = field(repr=False)


# --- small builders ---------------------------------------------------------------------------


def _const(name: str, shape: Shape, value: float, dtype: DTypeName | None = None) -> Member:
    scheme = "zeros" if value == 0 else "ones" if value == 1 else "constant"
    params = Params(value=value) if scheme == "constant" else Params()
    return Member(name, shape, scheme, "torch", params, dtype=dtype)


def _uniform(name: str, shape: Shape, bound: float, convention: Convention = "torch") -> Member:
    return Member(name, shape, "uniform", convention, Params(low=-bound, high=bound))


def _torch_fan_in(shape: Shape) -> int:
    return shape[1] * math.prod(shape[2:])


def _torch_weight_and_bias(prefix: str, weight: Shape, bias: int | None) -> list[Member]:
    """torch Linear/Conv reset_parameters: kaiming_uniform_(W, a=√5); bias U(±1/√fan_in)."""
    out = [
        Member(f"{prefix}.weight", weight, "kaiming_uniform", "torch", Params(negative_slope=SQRT5))
    ]
    if bias is not None:
        fan_in = _torch_fan_in(weight)
        out.append(
            _uniform(f"{prefix}.bias", (bias,), 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0)
        )
    return out


def _kernel(args: Args, dims: int) -> tuple[int, ...]:
    k = args["kernel_size"]
    size = tuple(k) if isinstance(k, list) else (int(k),) * dims  # type: ignore[arg-type]
    if len(size) != dims:
        raise ShapeError(f"kernel_size {k} must have {dims} entries for a {dims}-d convolution")
    return size


def _groups(args: Args, *channels: str, key: str = "groups") -> int:
    groups = int(args.get(key, 1) or 1)  # type: ignore[arg-type]
    for c in channels:
        if int(args[c]) % groups:  # type: ignore[arg-type]
            raise ShapeError(f"{c}={args[c]} must be divisible by {key}={groups}")
    return groups


def _i(args: Args, key: str) -> int:
    return int(args[key])  # type: ignore[arg-type]


def _f(args: Args, key: str) -> float:
    return float(args[key])  # type: ignore[arg-type]


# --- torch ----------------------------------------------------------------------------------


def torch_linear(name: str, a: Args) -> list[Member]:
    return _torch_weight_and_bias(
        name,
        (_i(a, "out_features"), _i(a, "in_features")),
        _i(a, "out_features") if a["bias"] else None,
    )


def torch_bilinear(name: str, a: Args) -> list[Member]:
    bound = 1 / math.sqrt(_i(a, "in1_features")) if _i(a, "in1_features") > 0 else 0.0
    out = [
        _uniform(
            f"{name}.weight",
            (_i(a, "out_features"), _i(a, "in1_features"), _i(a, "in2_features")),
            bound,
        )
    ]
    if a["bias"]:
        out.append(_uniform(f"{name}.bias", (_i(a, "out_features"),), bound))
    return out


def torch_conv(dims: int, transposed: bool) -> Callable[[str, Args], list[Member]]:
    def expand(name: str, a: Args) -> list[Member]:
        groups = _groups(a, "in_channels", "out_channels")
        cin, cout, k = _i(a, "in_channels"), _i(a, "out_channels"), _kernel(a, dims)
        weight = (cin, cout // groups, *k) if transposed else (cout, cin // groups, *k)
        return _torch_weight_and_bias(name, weight, cout if a["bias"] else None)

    return expand


def torch_embedding(name: str, a: Args) -> list[Member]:
    pad = a.get("padding_idx")
    rows = () if pad is None else (int(pad),)  # type: ignore[arg-type]
    shape = (_i(a, "num_embeddings"), _i(a, "embedding_dim"))
    return [
        Member(
            f"{name}.weight", shape, "normal", "torch", Params(mean=0.0, std=1.0), zero_rows=rows
        )
    ]


def _normalized(a: Args) -> Shape:
    n = a["normalized_shape"]
    return tuple(n) if isinstance(n, list) else (int(n),)  # type: ignore[arg-type]


def torch_layer_norm(name: str, a: Args) -> list[Member]:
    if not a["elementwise_affine"]:
        return []
    out = [_const(f"{name}.weight", _normalized(a), 1.0)]
    if a["bias"]:
        out.append(_const(f"{name}.bias", _normalized(a), 0.0))
    return out


def torch_rms_norm(name: str, a: Args) -> list[Member]:
    return [_const(f"{name}.weight", _normalized(a), 1.0)] if a["elementwise_affine"] else []


def torch_batch_norm(name: str, a: Args) -> list[Member]:
    n = (_i(a, "num_features"),)
    out = [_const(f"{name}.weight", n, 1.0), _const(f"{name}.bias", n, 0.0)] if a["affine"] else []
    if a["track_running_stats"]:
        out += [
            _const(f"{name}.running_mean", n, 0.0),
            _const(f"{name}.running_var", n, 1.0),
            _const(f"{name}.num_batches_tracked", (), 0.0, dtype="int64"),
        ]
    return out


def torch_mha(name: str, a: Args) -> list[Member]:
    """MultiheadAttention._reset_parameters: xavier_uniform_ on in_proj (or on separate q/k/v
    projections when kdim or vdim differ from embed_dim), zero biases, bias_k/bias_v
    xavier_normal_; out_proj keeps nn.Linear's kaiming_uniform_(a=√5)."""
    e, heads = _i(a, "embed_dim"), _i(a, "num_heads")
    if heads < 1 or e % heads:
        raise ShapeError(f"embed_dim={e} must be divisible by num_heads={heads}")
    kdim = _i(a, "kdim") if a.get("kdim") else e
    vdim = _i(a, "vdim") if a.get("vdim") else e
    if kdim == e and vdim == e:
        out = [Member(f"{name}.in_proj_weight", (3 * e, e), "xavier_uniform", "torch")]
    else:
        out = [
            Member(f"{name}.{p}_proj_weight", (e, d), "xavier_uniform", "torch")
            for p, d in (("q", e), ("k", kdim), ("v", vdim))
        ]
    if a["add_bias_kv"]:
        out += [Member(f"{name}.bias_{p}", (1, 1, e), "xavier_normal", "torch") for p in "kv"]
    out += _torch_weight_and_bias(f"{name}.out_proj", (e, e), None)
    if a["bias"]:
        out += [
            _const(f"{name}.in_proj_bias", (3 * e,), 0.0),
            _const(f"{name}.out_proj.bias", (e,), 0.0),
        ]
    return out


def torch_rnn(gates: int) -> Callable[[str, Args], list[Member]]:
    """RNN/LSTM/GRU reset_parameters: every parameter U(±1/√hidden_size)."""

    def expand(name: str, a: Args) -> list[Member]:
        hidden, layers = _i(a, "hidden_size"), _i(a, "num_layers")
        bound = 1 / math.sqrt(hidden) if hidden > 0 else 0.0
        directions = 2 if a["bidirectional"] else 1
        out = []
        for layer in range(layers):
            width = _i(a, "input_size") if layer == 0 else hidden * directions
            for d in range(directions):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                out += [
                    _uniform(f"{name}.weight_ih{sfx}", (gates * hidden, width), bound),
                    _uniform(f"{name}.weight_hh{sfx}", (gates * hidden, hidden), bound),
                ]
                if a["bias"]:
                    out += [
                        _uniform(f"{name}.bias_ih{sfx}", (gates * hidden,), bound),
                        _uniform(f"{name}.bias_hh{sfx}", (gates * hidden,), bound),
                    ]
        return out

    return expand


# --- keras, flax ----------------------------------------------------------------------------


def keras_dense(name: str, a: Args) -> list[Member]:
    units = _i(a, "units")
    out = [Member(f"{name}.kernel", (_i(a, "input_dim"), units), "glorot_uniform", "keras")]
    return out + ([_const(f"{name}.bias", (units,), 0.0)] if a["use_bias"] else [])


def keras_conv(dims: int) -> Callable[[str, Args], list[Member]]:
    def expand(name: str, a: Args) -> list[Member]:
        groups = _groups(a, "in_channels", "filters")
        filters = _i(a, "filters")
        kernel = (*_kernel(a, dims), _i(a, "in_channels") // groups, filters)
        out = [Member(f"{name}.kernel", kernel, "glorot_uniform", "keras")]
        return out + ([_const(f"{name}.bias", (filters,), 0.0)] if a["use_bias"] else [])

    return expand


def keras_embedding(name: str, a: Args) -> list[Member]:
    shape = (_i(a, "input_dim"), _i(a, "output_dim"))
    return [Member(f"{name}.embeddings", shape, "uniform", "keras")]  # RandomUniform(±0.05)


def flax_dense(name: str, a: Args) -> list[Member]:
    features = _i(a, "features")
    out = [Member(f"{name}.kernel", (_i(a, "in_features"), features), "lecun_normal", "jax")]
    return out + ([_const(f"{name}.bias", (features,), 0.0)] if a["use_bias"] else [])


def flax_conv(name: str, a: Args) -> list[Member]:
    groups = _groups(a, "in_features", "features", key="feature_group_count")
    k = a["kernel_size"]
    if not isinstance(k, list) or not k:
        raise ShapeError(f"flax Conv kernel_size must be a list of ints; received {k!r}")
    features = _i(a, "features")
    kernel = (*k, _i(a, "in_features") // groups, features)
    out = [Member(f"{name}.kernel", kernel, "lecun_normal", "jax")]
    return out + ([_const(f"{name}.bias", (features,), 0.0)] if a["use_bias"] else [])


def flax_embed(name: str, a: Args) -> list[Member]:
    """Embed: variance_scaling(1, 'fan_in', 'normal', out_axis=0) = N(0, 1/features)."""
    shape = (_i(a, "num_embeddings"), _i(a, "features"))
    params = Params(factor=1.0, mode="fan_in", distribution="normal")
    return [
        Member(
            f"{name}.embedding", shape, "variance_scaling", "jax", params, FanSpec(out_axes=(0,))
        )
    ]


# --- LLM-style ------------------------------------------------------------------------------


def gpt2_linear(name: str, a: Args) -> list[Member]:
    """GPT-2 / Megatron: N(0, std²); residual output projections std/√(2·n_layers)."""
    std = _f(a, "std")
    if a["residual"]:
        layers = a.get("n_layers")
        if not isinstance(layers, int) or layers < 1:
            raise SchemeError(
                "gpt2.Linear with residual=true needs n_layers >= 1 (the std is "
                f"std/√(2·n_layers)); received n_layers={layers!r}"
            )
        std /= math.sqrt(2 * _i(a, "n_layers"))
    out_f = _i(a, "out_features")
    out = [
        Member(
            f"{name}.weight",
            (out_f, _i(a, "in_features")),
            "normal",
            "torch",
            Params(mean=0.0, std=std),
        )
    ]
    return out + ([_const(f"{name}.bias", (out_f,), 0.0)] if a["bias"] else [])


def gpt2_embedding(name: str, a: Args) -> list[Member]:
    shape = (_i(a, "num_embeddings"), _i(a, "embedding_dim"))
    return [Member(f"{name}.weight", shape, "normal", "torch", Params(mean=0.0, std=_f(a, "std")))]


# --- the table ------------------------------------------------------------------------------

ArgSpec = tuple[ArgKind, object]


def need(kind: ArgKind) -> ArgSpec:
    return (kind, REQUIRED)


def opt(kind: ArgKind, default: ArgValue) -> ArgSpec:
    return (kind, default)


def spec(**args: ArgSpec) -> dict[str, ArgSpec]:
    return args


_CONV = spec(
    in_channels=need("int"),
    out_channels=need("int"),
    kernel_size=need("ints"),
    groups=opt("int", 1),
    bias=opt("bool", True),
)
_KCONV = spec(
    in_channels=need("int"),
    filters=need("int"),
    kernel_size=need("ints"),
    groups=opt("int", 1),
    use_bias=opt("bool", True),
)
_RNN = spec(
    input_size=need("int"),
    hidden_size=need("int"),
    num_layers=opt("int", 1),
    bias=opt("bool", True),
    bidirectional=opt("bool", False),
)
_NORM = spec(normalized_shape=need("ints"), elementwise_affine=opt("bool", True))
_BN = spec(
    num_features=need("int"), affine=opt("bool", True), track_running_stats=opt("bool", True)
)
_UNIT = "every parameter U(±1/√hidden_size)"


def _table() -> list[Preset]:
    rows = [
        Preset(
            "torch.Linear",
            "weight kaiming_uniform(a=√5) = U(±1/√in), bias U(±1/√in)",
            spec(in_features=need("int"), out_features=need("int"), bias=opt("bool", True)),
            torch_linear,
        ),
        Preset(
            "torch.Bilinear",
            "weight and bias U(±1/√in1_features)",
            spec(
                in1_features=need("int"),
                in2_features=need("int"),
                out_features=need("int"),
                bias=opt("bool", True),
            ),
            torch_bilinear,
        ),
        Preset(
            "torch.Embedding",
            "N(0, 1); the padding_idx row zero",
            spec(
                num_embeddings=need("int"),
                embedding_dim=need("int"),
                padding_idx=opt("optional_int", None),
            ),
            torch_embedding,
        ),
        Preset(
            "torch.LayerNorm",
            "weight ones, bias zeros",
            {**_NORM, "bias": opt("bool", True)},
            torch_layer_norm,
        ),
        Preset("torch.RMSNorm", "weight ones", _NORM, torch_rms_norm),
        Preset(
            "torch.MultiheadAttention",
            "in_proj (or q/k/v) xavier_uniform, out_proj Linear default, biases zero",
            spec(
                embed_dim=need("int"),
                num_heads=need("int"),
                bias=opt("bool", True),
                add_bias_kv=opt("bool", False),
                kdim=opt("optional_int", None),
                vdim=opt("optional_int", None),
            ),
            torch_mha,
        ),
        Preset("torch.RNN", _UNIT, _RNN, torch_rnn(1)),
        Preset("torch.LSTM", _UNIT, _RNN, torch_rnn(4)),
        Preset("torch.GRU", _UNIT, _RNN, torch_rnn(3)),
        Preset(
            "keras.Dense",
            "kernel glorot_uniform, bias zeros",
            spec(input_dim=need("int"), units=need("int"), use_bias=opt("bool", True)),
            keras_dense,
        ),
        Preset(
            "keras.Embedding",
            "embeddings RandomUniform(±0.05)",
            spec(input_dim=need("int"), output_dim=need("int")),
            keras_embedding,
        ),
        Preset(
            "flax.Dense",
            "kernel lecun_normal (truncated), bias zeros",
            spec(in_features=need("int"), features=need("int"), use_bias=opt("bool", True)),
            flax_dense,
        ),
        Preset(
            "flax.Conv",
            "kernel lecun_normal (truncated), bias zeros",
            spec(
                in_features=need("int"),
                features=need("int"),
                kernel_size=need("ints"),
                feature_group_count=opt("int", 1),
                use_bias=opt("bool", True),
            ),
            flax_conv,
        ),
        Preset(
            "flax.Embed",
            "N(0, 1/features)",
            spec(num_embeddings=need("int"), features=need("int")),
            flax_embed,
        ),
        Preset(
            "gpt2.Linear",
            "N(0, std²), std 0.02; residual projections std/√(2·n_layers); bias zeros",
            spec(
                in_features=need("int"),
                out_features=need("int"),
                bias=opt("bool", True),
                std=opt("float", 0.02),
                residual=opt("bool", False),
                n_layers=opt("optional_int", None),
            ),
            gpt2_linear,
        ),
        Preset(
            "gpt2.Embedding",
            "N(0, std²), std 0.02",
            spec(num_embeddings=need("int"), embedding_dim=need("int"), std=opt("float", 0.02)),
            gpt2_embedding,
        ),
    ]
    for d in (1, 2, 3):
        rows += [
            Preset(
                f"torch.Conv{d}d",
                "weight kaiming_uniform(a=√5), bias U(±1/√fan_in)",
                _CONV,
                torch_conv(d, False),
            ),
            Preset(
                f"torch.ConvTranspose{d}d",
                "as Conv; fans from the (in, out/groups, *k) weight",
                _CONV,
                torch_conv(d, True),
            ),
            Preset(
                f"torch.BatchNorm{d}d",
                "weight ones, bias zeros; running mean 0, var 1",
                _BN,
                torch_batch_norm,
            ),
            Preset(f"keras.Conv{d}D", "kernel glorot_uniform, bias zeros", _KCONV, keras_conv(d)),
        ]
    return rows


PRESETS: Mapping[str, Preset] = {p.name: p for p in _table()}


def _check(preset: Preset, key: str, kind: ArgKind, value: ArgValue) -> None:
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool) and value >= 0,
        "optional_int": value is None or (isinstance(value, int) and not isinstance(value, bool)),
        "float": isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value),
        "bool": isinstance(value, bool),
        "ints": (isinstance(value, int) and not isinstance(value, bool) and value >= 0)
        or (isinstance(value, list) and all(isinstance(v, int) and v >= 0 for v in value)),
    }[kind]
    if not ok:
        wanted = {
            "int": "an integer >= 0",
            "optional_int": "an integer or null",
            "float": "a finite number",
            "bool": "true or false",
            "ints": "an integer >= 0 or a list of them",
        }[kind]
        raise SchemeError(f"{preset.name} argument {key} must be {wanted}; received {value!r}")


def expand(preset: str, name: str, args: Args) -> list[Member]:
    """The named tensors of one layer; unknown presets and arguments say what is allowed."""
    found = PRESETS.get(preset)
    if found is None:
        raise SchemeError(f"unknown preset {preset!r}; expected one of {one_of(PRESETS)}")
    unknown = [k for k in args if k not in found.args]
    if unknown:
        raise SchemeError(
            f"{preset} does not take {one_of(unknown)}; it takes {one_of(found.args)}"
        )
    resolved: dict[str, ArgValue] = {}
    for key, (kind, default) in found.args.items():
        if key not in args and default is REQUIRED:
            raise SchemeError(f"{preset} needs {key}")
        value: ArgValue = args.get(key, default)  # type: ignore[arg-type]
        _check(found, key, kind, value)
        resolved[key] = value
    return found.expand(name, resolved)
