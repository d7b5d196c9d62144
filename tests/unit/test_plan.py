"""service.plan: limits, dtype x format, seeds, the canonical request, and a part of a tensor."""

from __future__ import annotations

from dataclasses import replace

import pytest

from service.engines import Engines
from service.errors import LimitExceeded, ShapeError, Unavailable, UnsupportedCombination
from service.plan import Limits, TensorSpec
from service.plan import plan as make_plan
from service.schemes import Params
from service.slices import Shard, parse

LIMITS = Limits(max_elements=1000, max_bytes=2000)
BIG = Limits(max_elements=1 << 30, max_bytes=1 << 34)
ENGINES = Engines("numpy")


def plan(spec: TensorSpec, limits: Limits = LIMITS):  # type: ignore[no-untyped-def]
    return make_plan(spec, limits, ENGINES)


def test_plan_counts_elements_and_bytes() -> None:
    p = plan(TensorSpec((10, 20), "he_normal", dtype="float64", seed=3), Limits(10**6, 10**7))
    assert (p.numel, p.nbytes, p.seed, p.seed_source) == (200, 1600, 3, "request")


def test_the_service_picks_a_seed_when_none_is_given() -> None:
    seeds = {plan(TensorSpec((2, 2), "zeros"), LIMITS).seed for _ in range(8)}
    assert len(seeds) == 8
    assert all(0 <= s < 2**64 for s in seeds)
    assert plan(TensorSpec((2, 2), "zeros"), LIMITS).seed_source == "service"


def test_limits_name_the_setting() -> None:
    with pytest.raises(LimitExceeded, match=r"1001 elements.*at most 1000.*MAX_ELEMENTS"):
        plan(TensorSpec((7, 143), "zeros"), LIMITS)
    with pytest.raises(LimitExceeded, match=r"4000 bytes.*at most 2000.*MAX_BYTES"):
        plan(TensorSpec((500,), "zeros", dtype="float64"), LIMITS)


def test_rank_above_eight_is_refused() -> None:
    with pytest.raises(ShapeError, match="rank 9; ranks 0 … 8"):
        plan(TensorSpec((1,) * 9, "zeros"), LIMITS)


@pytest.mark.parametrize("dtype", ["bfloat16", "float8_e4m3fn", "float8_e5m2"])
def test_npy_refuses_dtypes_numpy_lacks(dtype: str) -> None:
    refused = TensorSpec((2,), "zeros", dtype=dtype, format="npy")  # type: ignore[arg-type]
    with pytest.raises(UnsupportedCombination, match=rf"{dtype} cannot .* npy.*safetensors"):
        plan(refused, LIMITS)
    accepted = TensorSpec((2,), "zeros", dtype=dtype, format="safetensors")  # type: ignore[arg-type]
    assert plan(accepted, LIMITS).nbytes > 0


def test_canonical_request_resolves_aliases_and_defaults() -> None:
    a = plan(TensorSpec((8, 4), "kaiming_uniform", "torch", seed=1), LIMITS).canonical()
    b = plan(
        TensorSpec(
            (8, 4),
            "he_uniform",
            "torch",
            Params(mode="fan_in", negative_slope=0.0, nonlinearity="leaky_relu"),
            seed=1,
        ),
        LIMITS,
    ).canonical()
    assert a == b
    assert a["scheme"] == "he_uniform"
    assert a["nonlinearity"] == "leaky_relu"


def test_the_numpy_deployment_serves_the_cpu_and_refuses_cuda() -> None:
    p = plan(TensorSpec((2, 2), "zeros", device="auto"))
    assert (p.engine.name, p.device) == ("numpy", "cpu")
    with pytest.raises(Unavailable, match=r"device 'cuda' is not available.*WEIGHTGEN_ENGINE"):
        plan(TensorSpec((2, 2), "zeros", device="cuda"))


# --- a part of the tensor (slice, shard) ------------------------------------------------------


def test_a_slice_has_its_own_shape_size_and_tag_and_the_whole_tensors_numbers() -> None:
    whole = plan(TensorSpec((40, 24), "he_normal", "torch", seed=5), BIG)
    part = plan(TensorSpec((40, 24), "he_normal", "torch", seed=5, part=parse("8:16,3:")), BIG)
    assert (part.shape, part.full_shape, part.numel, part.nbytes) == ((8, 21), (40, 24), 168, 672)
    assert part.scheme == whole.scheme  # fans, σ, the law: the whole tensor's
    assert part.canonical() == {**whole.canonical(), "slice": "8:16,3:24"}
    assert part.etag != whole.etag
    assert not part.etag.startswith("W/")
    meta = part.metadata()
    assert (meta["full_shape"], meta["slice"]) == ("40,24", "8:16,3:24")
    assert {k: v for k, v in meta.items() if k not in ("full_shape", "slice")} == whole.metadata()
    assert "full_shape" not in whole.metadata()


def test_a_shard_is_the_slice_it_names_and_the_whole_is_no_part() -> None:
    spec = TensorSpec((40, 24), "he_normal", "torch", seed=5)
    shard = plan(replace(spec, part=Shard(1, 1, 5)), BIG)  # torch.chunk: 5, 5, 5, 5, 4
    sliced = plan(replace(spec, part=parse(":,5:10")), BIG)
    assert (shard.etag, shard.canonical()) == (sliced.etag, sliced.canonical())
    for whole in (Shard(0, 0, 1), parse(":"), parse("0:40,0:24")):
        p, w = plan(replace(spec, part=whole), BIG), plan(spec, BIG)
        assert (p.part, p.etag, p.header) == (None, w.etag, w.header)


def test_structured_kinds_are_sliced_within_their_cap_with_a_weak_tag() -> None:
    p = plan(TensorSpec((40, 24), "orthogonal", "torch", seed=5, part=parse(":8")), BIG)
    assert p.etag.startswith("W/")
    assert p.shape == (8, 24)
    with pytest.raises(LimitExceeded, match="QR"):
        plan(TensorSpec((4096, 2048), "orthogonal", seed=5, part=parse(":1")), BIG)


def test_limits_are_the_whole_tensors() -> None:
    with pytest.raises(LimitExceeded, match=r"1001 elements"):
        plan(TensorSpec((7, 143), "zeros", part=parse(":1")), LIMITS)
