"""The Flax presets of service.presets.flax_linen and flax_norm against the real flax.linen layers
(CPU jax): param and batch_stats paths, shapes and dtypes exactly, the bundle (through
`POST /v1/bundles/describe` and its url) applied with `model.apply`, every random tensor
KS-compared with Flax's own `model.init` pooled over seeds, orthogonal tensors orthogonal,
constants exact, the fans describe reports those of the shape Flax hands `kernel_init`, counts,
and the refusals as 422s naming the argument (where Flax refuses the same layer, it does too)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy.stats import ks_2samp

from service.presets import count, expand
from tests.support import describe_layer, layer_arrays, refused_layer

os.environ.setdefault("JAX_PLATFORMS", "cpu")  # before jax is imported (it reads it once)
flax = pytest.importorskip("flax", reason="flax is a dev dependency (pyproject [dev])")
import jax  # noqa: E402  (after the platform is chosen)
import jax.numpy as jnp  # noqa: E402
from flax import linen as nn  # noqa: E402
from flax import traverse_util  # noqa: E402

# flax.traverse_util is untyped; these are its signatures as this file uses them
flatten_dict = cast(Callable[..., dict[str, Any]], traverse_util.flatten_dict)
unflatten_dict = cast(Callable[..., dict[str, Any]], traverse_util.unflatten_dict)

SEEDS = range(6)  # bundles and Flax inits each pooled over these (deterministic)
P_MIN = 1e-4
RANDOM = ("lecun_normal", "orthogonal")

# A layer and the inputs `init` and `apply` take; `kernel_init` reaches every lecun kernel.
Build = Callable[[dict[str, Any]], tuple[Any, tuple[Any, ...]]]


def _layer(make: Callable[..., Any], *shapes: tuple[int, ...]) -> Build:
    def build(kw: dict[str, Any]) -> tuple[Any, tuple[Any, ...]]:
        return make(**kw), tuple(jnp.ones(s) for s in shapes)

    return build


def _cell(make: Callable[..., Any], features: int, in_features: int) -> Build:
    def build(kw: dict[str, Any]) -> tuple[Any, tuple[Any, ...]]:
        cell, x = make(features, **kw), jnp.ones((2, in_features))
        return cell, (cell.initialize_carry(jax.random.key(0), x.shape), x)

    return build


def _norm(make: Callable[..., Any], shape: tuple[int, ...]) -> Build:
    """A normalization layer: it takes no kernel_init."""

    def build(_kw: dict[str, Any]) -> tuple[Any, tuple[Any, ...]]:
        return make(), (jnp.ones(shape),)

    return build


MHA = nn.MultiHeadDotProductAttention

CASES: list[tuple[str, dict[str, Any], Build]] = [
    (
        "flax.ConvTranspose",
        {"in_features": 6, "features": 8, "kernel_size": [3, 2]},
        _layer(lambda **kw: nn.ConvTranspose(8, (3, 2), **kw), (1, 5, 5, 6)),
    ),
    (
        "flax.ConvTranspose",
        {"in_features": 4, "features": 6, "kernel_size": 3, "transpose_kernel": True},
        _layer(lambda **kw: nn.ConvTranspose(6, 3, transpose_kernel=True, **kw), (1, 5, 4)),
    ),
    (
        "flax.DenseGeneral",
        {"in_features": [6, 7], "features": [4, 5], "batch_shape": [2]},
        _layer(
            lambda **kw: nn.DenseGeneral((4, 5), axis=(-2, -1), batch_dims=(0,), **kw),
            (2, 3, 6, 7),
        ),
    ),
    (
        "flax.DenseGeneral",
        {"in_features": 12, "features": [3, 4], "use_bias": False},
        _layer(lambda **kw: nn.DenseGeneral((3, 4), use_bias=False, **kw), (2, 12)),
    ),
    (
        "flax.MultiHeadDotProductAttention",
        {"num_heads": 4, "query_features": 16},
        _layer(lambda **kw: MHA(num_heads=4, **kw), (1, 3, 16)),
    ),
    (
        "flax.MultiHeadDotProductAttention",
        {
            "num_heads": 2,
            "query_features": 6,
            "key_features": 7,
            "value_features": 9,
            "qkv_features": 8,
            "out_features": 5,
            "normalize_qk": True,
        },
        _layer(
            lambda **kw: MHA(num_heads=2, qkv_features=8, out_features=5, normalize_qk=True, **kw),
            (1, 3, 6),
            (1, 4, 7),
            (1, 4, 9),
        ),
    ),
    (
        "flax.MultiHeadDotProductAttention",
        {"num_heads": 3, "query_features": 9, "key_features": 5, "use_bias": False},
        _layer(lambda **kw: MHA(num_heads=3, use_bias=False, **kw), (1, 3, 9), (1, 4, 5)),
    ),
    (  # 0 is Flax's default too (`self.qkv_features or inputs_q.shape[-1]`)
        "flax.MultiHeadDotProductAttention",
        {"num_heads": 2, "query_features": 8, "qkv_features": 0, "out_features": 0},
        _layer(lambda **kw: MHA(num_heads=2, qkv_features=0, out_features=0, **kw), (1, 3, 8)),
    ),
    ("flax.LSTMCell", {"in_features": 10, "features": 8}, _cell(nn.LSTMCell, 8, 10)),
    (
        "flax.OptimizedLSTMCell",
        {"in_features": 6, "features": 12},
        _cell(nn.OptimizedLSTMCell, 12, 6),
    ),
    ("flax.GRUCell", {"in_features": 10, "features": 8}, _cell(nn.GRUCell, 8, 10)),
    ("flax.LayerNorm", {"feature_shape": 10}, _norm(nn.LayerNorm, (2, 10))),
    (
        "flax.LayerNorm",
        {"feature_shape": [3, 4], "use_bias": False},
        _norm(
            lambda: nn.LayerNorm(reduction_axes=(-2, -1), feature_axes=(-2, -1), use_bias=False),
            (2, 3, 4),
        ),
    ),
    ("flax.RMSNorm", {"feature_shape": 7}, _norm(nn.RMSNorm, (2, 7))),
    (
        "flax.RMSNorm",
        {"feature_shape": 7, "use_scale": False},
        _norm(lambda: nn.RMSNorm(use_scale=False), (2, 7)),
    ),
    (
        "flax.BatchNorm",
        {"feature_shape": 7},
        _norm(lambda: nn.BatchNorm(use_running_average=True), (2, 7)),
    ),
    (
        "flax.BatchNorm",
        {"feature_shape": 5, "use_scale": False},
        _norm(lambda: nn.BatchNorm(use_running_average=True, use_scale=False), (2, 3, 5)),
    ),
    (
        "flax.GroupNorm",
        {"features": 8, "num_groups": 2},
        _norm(lambda: nn.GroupNorm(num_groups=2), (2, 3, 8)),
    ),
    (
        "flax.GroupNorm",
        {"features": 6, "num_groups": None, "group_size": 3, "use_bias": False},
        _norm(lambda: nn.GroupNorm(num_groups=None, group_size=3, use_bias=False), (2, 6)),
    ),
]


def _ids(case: object) -> str:
    return "" if callable(case) else str(case)[:60]  # no function addresses in test ids


BUNDLED = [c for c in CASES if expand(c[0], "m", c[1])]  # a bundle holds at least one tensor


def _flat(variables: Any) -> dict[str, dict[str, np.ndarray]]:
    """Each collection's arrays by path under the layer's name: {'params': {'m.kernel': …}}."""
    return {
        collection: {f"m.{k}": np.asarray(v) for k, v in flatten_dict(tree, sep=".").items()}
        for collection, tree in variables.items()
    }


def _init(build: Build, seed: int, **kw: Any) -> tuple[Any, tuple[Any, ...], Any]:
    model, inputs = build(kw)
    return model, inputs, model.init(jax.random.key(seed), *inputs)


@pytest.mark.parametrize(("preset", "args", "build"), CASES, ids=_ids)
def test_paths_shapes_dtypes_and_count_match_flax(
    preset: str, args: dict[str, Any], build: Build
) -> None:
    collections = _flat(_init(build, 0)[2])
    assert set(collections) <= {"params", "batch_stats"}
    variables = {k: v for c in collections.values() for k, v in c.items()}
    assert len(variables) == sum(map(len, collections.values()))  # no name in two collections
    members = expand(preset, "m", args)
    assert sorted(m.name for m in members) == sorted(variables)  # each name once
    for m in members:
        assert m.shape == variables[m.name].shape, m.name
        assert variables[m.name].dtype == np.float32, m.name  # the bundle's dtype (dtype None)
        assert m.dtype is None, m.name
    assert count(preset, args) == len(members)


def _orthogonal(w: np.ndarray) -> bool:
    m = w.reshape(-1, w.shape[-1]).astype(np.float64)
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    return bool(np.allclose(gram, np.eye(len(gram)), atol=1e-5))


def _applied(model: Any, inputs: tuple[Any, ...], bundle: dict[str, Any], like: Any) -> None:
    """The bundle's arrays, in Flax's own collections and tree, go through `model.apply`."""
    variables = {
        collection: unflatten_dict({k[2:]: jnp.asarray(bundle[k]) for k in flat}, sep=".")
        for collection, flat in _flat(like).items()
    }
    got, want = model.apply(variables, *inputs), model.apply(like, *inputs)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want), strict=True):
        assert a.shape == b.shape
        assert bool(jnp.all(jnp.isfinite(a)))


@pytest.mark.parametrize(("preset", "args", "build"), BUNDLED, ids=_ids)
def test_bundles_apply_and_match_flax_init(
    client: TestClient, preset: str, args: dict[str, Any], build: Build
) -> None:
    members = {m.name: m for m in expand(preset, "m", args)}
    ours: dict[str, list[np.ndarray]] = {name: [] for name in members}
    theirs: dict[str, list[np.ndarray]] = {name: [] for name in members}
    for seed in SEEDS:
        bundle = layer_arrays(client, preset, args, seed)
        model, inputs, variables = _init(build, seed)
        _applied(model, inputs, bundle, variables)
        reference = {k: v for c in _flat(variables).values() for k, v in c.items()}
        for name, m in members.items():
            assert bundle[name].dtype == reference[name].dtype, name
            if m.scheme == "orthogonal":
                assert _orthogonal(bundle[name]), name
                assert _orthogonal(reference[name]), name
            if m.scheme not in RANDOM:
                assert np.array_equal(bundle[name], reference[name]), name  # constants exact
            ours[name].append(bundle[name].astype(np.float64).ravel())
            theirs[name].append(reference[name].astype(np.float64).ravel())
    for name, m in members.items():
        if m.scheme in RANDOM:
            a, b = np.concatenate(ours[name]), np.concatenate(theirs[name])
            assert a.std() > 0, name
            assert b.std() > 0, name
            p = ks_2samp(a, b).pvalue
            assert p > P_MIN, (name, p, a.size)


def _compute_fans(shape: tuple[int, ...]) -> tuple[float, float]:
    """jax's own `_compute_fans` with variance_scaling's defaults (in_axis=-2, out_axis=-1)."""
    from jax._src.nn.initializers import _compute_fans

    fan_in, fan_out = _compute_fans(shape)
    return float(fan_in), float(fan_out)


KERNEL_INIT = [c for c in CASES if c[0].split(".")[1] in ("ConvTranspose", "DenseGeneral")]
KERNEL_INIT += [c for c in CASES if c[0] == "flax.MultiHeadDotProductAttention"]


@pytest.mark.parametrize(("preset", "args", "build"), KERNEL_INIT, ids=_ids)
def test_reported_fans_are_those_of_the_shape_flax_hands_kernel_init(
    client: TestClient, preset: str, args: dict[str, Any], build: Build
) -> None:
    """DenseGeneral draws the flattened matrix (linear.py 144-154): its fans, not the kernel's."""
    seen: list[tuple[int, ...]] = []
    lecun = nn.initializers.lecun_normal()

    def recording(key: Any, shape: tuple[int, ...], dtype: Any = jnp.float32) -> Any:
        seen.append(tuple(shape))
        return lecun(key, shape, dtype)

    _init(build, 0, kernel_init=recording)  # query, key, value, out: in Flax's call order
    tensors = describe_layer(client, preset, args, seed=0)["tensors"]
    reported = {t["name"]: (t["plan"]["fan_in"], t["plan"]["fan_out"]) for t in tensors}
    kernels = [m.name for m in expand(preset, "m", args) if m.scheme == "lecun_normal"]
    assert len(kernels) == len(seen)
    for name, shape in zip(kernels, seen, strict=True):
        assert tuple(reported[name]) == _compute_fans(shape), (name, shape)


def _unknown(layer: Callable[..., Any], *args: Any, **fields: Any) -> Any:
    """A Flax layer made with fields it does not have (its dataclass raises TypeError)."""
    return layer(*args, **fields)


def _flax_refuses(build: Callable[[], Any], *shapes: tuple[int, ...]) -> None:
    """Flax refuses the layer too: when it is made (an unknown field) or when it is built."""

    def made_and_built() -> None:
        build().init(jax.random.key(0), *(jnp.ones(s) for s in shapes))

    with pytest.raises((ValueError, AssertionError, TypeError)):
        made_and_built()


REFUSED: list[tuple[str, dict[str, Any], str, Callable[[], None] | None]] = [
    (
        "flax.MultiHeadDotProductAttention",
        {"num_heads": 4, "query_features": 6},
        "qkv_features=6 must be divisible by num_heads=4",
        lambda: _flax_refuses(lambda: MHA(num_heads=4), (1, 3, 6)),
    ),
    (
        "flax.GroupNorm",
        {"features": 10},
        "flax.GroupNorm needs features=10 divisible by num_groups=32",
        lambda: _flax_refuses(nn.GroupNorm, (2, 10)),
    ),
    (
        "flax.GroupNorm",
        {"features": 8, "group_size": 4},
        "flax.GroupNorm needs exactly one of num_groups and group_size",
        lambda: _flax_refuses(lambda: nn.GroupNorm(group_size=4), (2, 8)),
    ),
    (
        "flax.GroupNorm",
        {"features": 8, "num_groups": None, "group_size": 3},
        "flax.GroupNorm needs features=8 divisible by group_size=3",
        lambda: _flax_refuses(lambda: nn.GroupNorm(num_groups=None, group_size=3), (2, 8)),
    ),
    (
        "flax.LSTMCell",
        {"in_features": 4, "features": 3, "use_bias": False},
        "flax.LSTMCell does not take use_bias",
        lambda: _flax_refuses(lambda: _unknown(nn.LSTMCell, 3, use_bias=False)),
    ),
    (
        "flax.RMSNorm",
        {"feature_shape": 4, "use_bias": True},
        "flax.RMSNorm does not take use_bias",
        lambda: _flax_refuses(lambda: _unknown(nn.RMSNorm, use_bias=True)),
    ),
    (
        "flax.ConvTranspose",
        {"in_features": 4, "features": 2, "kernel_size": 3, "feature_group_count": 2},
        "flax.ConvTranspose does not take feature_group_count",
        lambda: _flax_refuses(lambda: _unknown(nn.ConvTranspose, 2, 3, feature_group_count=2)),
    ),
    (
        "flax.DenseGeneral",
        {"in_features": [1, 1, 1, 1], "features": [1, 1, 1, 1], "batch_shape": [1]},
        "kernel batch_shape + in_features + features has rank 9; at most 8",
        None,  # Flax has no bound on rank; this deployment's shapes have one
    ),
    ("flax.BatchNorm", {"feature_shape": 4, "momentum": 0.9}, "does not take momentum", None),
    ("flax.LayerNorm", {"feature_shape": []}, "flax.LayerNorm argument feature_shape must", None),
    (
        "flax.MultiHeadDotProductAttention",
        {"num_heads": 0, "query_features": 8},
        "flax.MultiHeadDotProductAttention needs num_heads >= 1",
        None,
    ),
    ("flax.GRUCell", {"features": 4}, "flax.GRUCell needs in_features", None),
]


@pytest.mark.parametrize(("preset", "args", "text", "flax_too"), REFUSED, ids=_ids)
def test_bad_arguments_are_422s_naming_them(
    client: TestClient,
    preset: str,
    args: dict[str, Any],
    text: str,
    flax_too: Callable[[], None] | None,
) -> None:
    refused_layer(client, preset, args, text)
    if flax_too is not None:
        flax_too()


def test_huge_layers_are_counted_without_expanding() -> None:
    args = {"in_features": 2**40, "features": 2**40}
    assert count("flax.GRUCell", args) == len(expand("flax.GRUCell", "m", args)) == 10
    mha = {"num_heads": 2**20, "query_features": 2**40, "normalize_qk": True}
    assert count("flax.MultiHeadDotProductAttention", mha) == 10
