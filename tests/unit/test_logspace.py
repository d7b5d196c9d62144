"""service.logspace and the two schemes built on it (`inverse_softplus_log_uniform`, Mamba's
dt_proj.bias; `log_arange`, Mamba's A_log): exp, expm1 and 2^k against decimal arithmetic; the
same bits from numpy, torch and Python floats; the engines' bytes equal (fast numpy engine,
reference path, torch, any chunk) and any part equal to the slice of the whole; golden hashes;
the law against Mamba's own torch formula (KS, with power); the reported moments; ln(1 … n)
correctly rounded in float32; the refusals."""

from __future__ import annotations

import hashlib
import math
from dataclasses import replace
from decimal import Decimal, localcontext
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from scipy import stats

from service import logspace, schemes
from service.dtypes import DTYPES, DTypeName
from service.engines import Sampling
from service.engines.numpy_engine import NUMPY_DTYPES, NumpyEngine, NumpyOps
from service.engines.torch_engine import TorchEngine, TorchOps
from service.logspace import SCALARS
from service.plan import sampling as sampling_of
from service.schemes import Params
from service.slices import Slice

NUMPY, TORCH = NumpyOps(), TorchOps(torch.device("cpu"))
DT = "inverse_softplus_log_uniform"
FLOATS = sorted(d for d, t in DTYPES.items() if not t.integer)


def exact_expm1(x: float) -> Decimal:
    """e^x − 1 to 60 digits (the series where e^x − 1 would cancel)."""
    d = Decimal(x)
    if abs(d) >= Decimal("1e-3"):
        return d.exp() - 1
    term, total, n = d, d, 1
    while abs(term) > abs(d) * Decimal(10) ** -45:
        n += 1
        term = term * d / n
        total += term
    return total


def ulps(ours: Any, exact: list[Decimal], scale: Any = None) -> float:
    """The largest error in units of the last place of |exact| (or of `scale`)."""
    want = np.array([float(e) for e in exact])
    err = np.array([abs(Decimal(float(a)) - e) for a, e in zip(ours, exact, strict=True)])
    unit = np.spacing(np.abs(want) if scale is None else scale)
    return float(np.max(err.astype(np.float64) / unit))


# --- the functions ----------------------------------------------------------------------------


def test_pow2_is_exact_for_every_exponent_it_takes() -> None:
    k = np.arange(-1023, 1024, dtype=np.float64)
    want = np.array([math.ldexp(1.0, int(e)) for e in k])
    assert np.array_equal(logspace.pow2(NUMPY, k), want)
    assert np.array_equal(logspace.pow2(TORCH, torch.from_numpy(k)).numpy(), want)
    assert [logspace.pow2(SCALARS, float(e)) for e in k[::97]] == list(want[::97])


def test_exp_and_expm1_are_within_a_few_ulps() -> None:
    rng = np.random.default_rng(0)
    with localcontext() as ctx:
        ctx.prec = 60
        x = np.concatenate([rng.uniform(-700, 700, 2000), rng.uniform(-1, 1, 2000)])
        assert ulps(logspace.exp(NUMPY, x), [Decimal(v).exp() for v in x]) <= 1.5
        x = np.concatenate(
            [
                rng.uniform(-80, 0, 2000),
                rng.uniform(-1, 1, 2000),
                -(10.0 ** rng.uniform(-300, 0, 1000)),
            ]
        )
        assert ulps(logspace.expm1(NUMPY, x), [exact_expm1(v) for v in x]) <= 2.5


def test_the_inverse_softplus_is_within_three_ulps_of_its_larger_term() -> None:
    """dt + ln(−expm1(−dt)) for dt over the served 1e-30 … 1e6: |error| ≤ 3 ulps of max(|w|, dt)
    (the two terms cancel near dt = ln 2, where w = 0: the formula's, not the arithmetic's)."""
    rng = np.random.default_rng(1)
    dt = np.concatenate([10.0 ** rng.uniform(-30, 6, 3000), rng.uniform(0.6, 0.8, 1000)])
    with localcontext() as ctx:
        ctx.prec = 60
        exact = [Decimal(v) + (-exact_expm1(-v)).ln() for v in dt]
    ours = logspace.inverse_softplus(NUMPY, dt)
    scale = np.maximum(np.abs(np.array([float(e) for e in exact])), dt)
    assert ulps(ours, exact, scale) <= 3


@pytest.mark.parametrize(
    ("low", "high", "floor"),
    [(0.001, 0.1, 1e-4), (0.01, 0.5, 0.02), (1e-30, 1e6, 0.0), (2.0, 0.5, 1.0)],
)
def test_numpy_torch_and_python_floats_give_the_same_bits(
    low: float, high: float, floor: float
) -> None:
    u = (np.arange(5000, dtype=np.float64) + 0.5) / 5000
    a = logspace.inverse_softplus_log_uniform(NUMPY, u, low, high, floor)
    b = logspace.inverse_softplus_log_uniform(TORCH, torch.from_numpy(u), low, high, floor)
    assert np.array_equal(a, b.numpy())
    c = [
        logspace.inverse_softplus_log_uniform(SCALARS, float(v), low, high, floor) for v in u[::50]
    ]
    assert list(a[::50]) == c
    index = np.arange(1000, dtype=np.int64)
    assert np.array_equal(
        logspace.log_arange(NUMPY, index.astype(np.uint64), 37),
        logspace.log_arange(TORCH, torch.from_numpy(index), 37).numpy(),
    )


def test_the_host_logs_are_correctly_rounded() -> None:
    ln_low, width = logspace.log_bounds(0.001, 0.1)
    assert ln_low == math.log(0.001)  # glibc's log is correctly rounded for these
    assert width == math.log(0.1) - math.log(0.001)  # Mamba's own expression


# --- the engines ------------------------------------------------------------------------------

CASES = [
    (DT, (1536,), Params()),
    (DT, (7, 33), Params(low=0.01, high=0.5, floor=0.02)),
    ("log_arange", (64, 16), Params()),
    ("log_arange", (3, 5, 40), Params()),
]


def sampling(
    scheme: str, shape: tuple[int, ...], params: Params, dtype: str, seed: int = 5
) -> Sampling:
    plan = schemes.resolve(scheme, shape, "torch", params)
    name = "backbone.layers.0.mixer.dt_proj.bias"
    return sampling_of(plan, seed, name, DTYPES[dtype])  # type: ignore[index]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(("scheme", "shape", "params"), CASES)
def test_every_engine_gives_the_same_bytes(
    scheme: str, shape: tuple[int, ...], params: Params, dtype: str
) -> None:
    s = sampling(scheme, shape, params, dtype)
    reference = NumpyEngine(fast=False).generate(s, 0, s.numel)
    assert NumpyEngine(threads=2).generate(s, 0, s.numel) == reference
    assert TorchEngine(chunk=100).generate(s, 0, s.numel) == reference
    lo, hi = s.numel // 3, s.numel - 5
    assert (
        NumpyEngine().generate(s, lo, hi)
        == reference[lo * s.dtype.itemsize : hi * s.dtype.itemsize]
    )


@pytest.mark.parametrize(("scheme", "shape", "params"), CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
def test_a_part_is_the_slice_of_the_whole(
    scheme: str, shape: tuple[int, ...], params: Params, dtype: DTypeName
) -> None:
    s = sampling(scheme, shape, params, dtype)
    size = DTYPES[dtype].itemsize
    whole = np.frombuffer(NumpyEngine(fast=False).generate(s, 0, s.numel), np.uint8)
    whole = whole.reshape(*shape, size)
    bounds = tuple((n // 4, n - n // 3) for n in shape)
    part = Slice(bounds)
    want = whole[tuple(slice(a, b) for a, b in bounds)].tobytes()
    cut = replace(s, part=part)
    for engine in (NumpyEngine(), TorchEngine(chunk=7)):
        assert bytes(engine.generate(cut, 0, part.numel)) == want


GOLDEN = [  # scheme, shape, params, dtype, sha256 of the bytes (name and seed of `sampling`)
    (DT, (1536,), Params(), "float32",
     "37c35f087a68c7d115db825ba5d0466b41d04629389ba4ca063c0b32042fff6a"),
    (DT, (4, 100), Params(low=0.01, high=0.5, floor=0.02), "float64",
     "b373930fd93c9ed678bb6dece9853aa0362abaca8c2fe991dad6a1a58f1f2d82"),
    ("log_arange", (8, 16), Params(), "float32",
     "5262b5fcda348f99adb0e76af68922c4ee64268c47b2c83d3eae89fd921f3946"),
    ("log_arange", (2, 1000), Params(), "float64",
     "87a74175c442cba9abf81286b07effd5b0c98a2cfae8f0249d9745a63b8cb7d2"),
]  # fmt: skip


@pytest.mark.parametrize(("scheme", "shape", "params", "dtype", "digest"), GOLDEN)
def test_golden_sha256(
    scheme: str, shape: tuple[int, ...], params: Params, dtype: str, digest: str
) -> None:
    s = sampling(scheme, shape, params, dtype)
    assert hashlib.sha256(NumpyEngine().generate(s, 0, s.numel)).hexdigest() == digest


# --- the law ----------------------------------------------------------------------------------


def mamba_formula(
    n: int, low: float, high: float, floor: float, dtype: torch.dtype
) -> np.ndarray[Any, Any]:
    """modeling_mamba.py:349-355 as written, on torch's own uniforms (float32 there; float64 for
    a float64 tensor, whose clamped atom sits where the float64 law puts it)."""
    g = torch.Generator().manual_seed(0)
    u = torch.rand(n, generator=g, dtype=dtype)
    dt = torch.exp(u * (math.log(high) - math.log(low)) + math.log(low)).clamp(min=floor)
    out: np.ndarray[Any, Any] = (dt + torch.log(-torch.expm1(-dt))).double().numpy()
    return out


def ours(n: int, params: Params, dtype: str = "float32", seed: int = 3) -> np.ndarray[Any, Any]:
    s = sampling(DT, (n,), params, dtype, seed)
    raw = np.frombuffer(NumpyEngine().generate(s, 0, n), NUMPY_DTYPES[dtype])
    out: np.ndarray[Any, Any] = raw.astype(np.float64)
    return out


@pytest.mark.parametrize(("low", "high", "floor"), [(0.001, 0.1, 1e-4), (0.01, 0.5, 0.02)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_values_follow_mambas_formula(
    low: float, high: float, floor: float, dtype: str
) -> None:
    n = 200_000
    a = ours(n, Params(low=low, high=high, floor=floor), dtype)
    wide = torch.float64 if dtype == "float64" else torch.float32
    assert stats.ks_2samp(a, mamba_formula(n, low, high, floor, wide)).pvalue > 1e-4
    power = stats.ks_2samp(a, mamba_formula(n, low, high * 1.05, floor, wide)).pvalue
    assert power < 1e-4
    least = math.log(math.expm1(max(low, floor)))
    assert a.min() >= least - 1e-6 * abs(least)
    if floor > low:  # the clamped share: ln(floor/low)/ln(high/low)
        share = float(np.mean(a <= least * (1 - 1e-7)))
        assert share == pytest.approx(math.log(floor / low) / math.log(high / low), abs=0.005)


@pytest.mark.parametrize(
    ("low", "high", "floor"), [(0.001, 0.1, 1e-4), (0.01, 0.5, 0.02), (0.5, 0.5, 0.0)]
)
def test_the_reported_moments_are_the_laws(low: float, high: float, floor: float) -> None:
    """Simpson over ln dt in the catalogue against a million-point midpoint rule in numpy."""
    law = schemes.resolve(DT, (10,), "torch", Params(low=low, high=high, floor=floor)).law
    u = (np.arange(1_000_000) + 0.5) / 1_000_000
    dt = np.maximum(floor, np.exp(u * (math.log(high) - math.log(low)) + math.log(low)))
    w = dt + np.log(-np.expm1(-dt))
    assert law.mean == pytest.approx(float(w.mean()), rel=1e-8, abs=1e-12)
    assert law.effective_std == pytest.approx(float(w.std()), rel=1e-6, abs=1e-12)
    ends = np.maximum(floor, np.array([low, high]))
    assert (law.low, law.high) == pytest.approx(tuple(ends + np.log(-np.expm1(-ends))), rel=1e-14)


def test_log_arange_is_correctly_rounded_in_float32_up_to_its_cap() -> None:
    """Every ln j, j ≤ 65,536 (the cap), rounds to the float32 nearest the exact value; in float64
    within an ulp of it."""
    n = 1 << 16
    s = sampling("log_arange", (n,), Params(), "float64")
    values = np.frombuffer(NumpyEngine().generate(s, 0, n), "<f8")
    with localcontext() as ctx:
        ctx.prec = 40
        exact = [Decimal(j).ln() for j in range(1, n + 1)]
    assert ulps(values[1:], exact[1:]) <= 1
    f32 = values.astype(np.float32)
    for j in range(1, n):  # the neighbours of the float32 are no nearer
        x = float(f32[j])
        e = exact[j]
        here = abs(Decimal(x) - e)
        for other in (np.nextafter(f32[j], np.float32(0)), np.nextafter(f32[j], np.float32(99))):
            assert here <= abs(Decimal(float(other)) - e), j + 1


def test_log_arange_reports_its_exact_moments() -> None:
    law = schemes.resolve("log_arange", (5, 16), "torch").law
    logs = np.log(np.arange(1, 17))
    assert law.mean == pytest.approx(logs.mean(), rel=1e-15)
    assert law.effective_std == pytest.approx(logs.std(), rel=1e-14)
    assert law.low == 0.0
    assert law.high == pytest.approx(math.log(16), rel=1e-15)
    empty = schemes.resolve("log_arange", (0, 16), "torch").law
    assert (empty.mean, empty.effective_std) == (0.0, 0.0)


# --- over HTTP --------------------------------------------------------------------------------


def test_the_catalogue_lists_both_under_torch(client: TestClient) -> None:
    rows = {s["name"]: s for s in client.get("/v1/schemes").json()["schemes"]}
    params = {p["name"]: p["default"] for p in rows[DT]["conventions"]["torch"]["params"]}
    assert params == {"low": 0.001, "high": 0.1, "floor": 0.0001}
    assert set(rows[DT]["conventions"]) == {"torch"} == set(rows["log_arange"]["conventions"])


def test_a_tensor_request_answers_the_engines_bytes(client: TestClient) -> None:
    body = {"shape": [48], "scheme": DT, "convention": "torch", "seed": 5, "format": "raw",
            "name": "backbone.layers.0.mixer.dt_proj.bias"}  # fmt: skip
    r = client.post("/v1/tensors", json=body)
    assert r.status_code == 200, r.text
    s = sampling(DT, (48,), Params(), "float32")
    assert r.content == NumpyEngine().generate(s, 0, 48)
    assert r.headers["x-init-kind"] == DT
    assert r.headers["etag"].startswith('"')  # strong: exact on every engine


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"scheme": DT, "convention": "keras"}, "is not defined under convention keras"),
        ({"scheme": DT, "low": 0.0}, "needs low (a bound of dt) within [1e-30, 1e+06]"),
        ({"scheme": DT, "high": 2e6}, "needs high (a bound of dt) within"),
        ({"scheme": DT, "floor": -1.0}, "floor: Input should be greater than or equal to 0"),
        ({"scheme": "log_arange", "shape": []}, "log_arange needs a rank 1 … 8 shape"),
        ({"scheme": "log_arange", "shape": [65537]}, "for a last axis of up to 65536"),
        ({"scheme": "log_arange", "floor": 1.0}, "does not take floor"),
    ],
)
def test_refusals_are_422s(client: TestClient, body: dict[str, Any], text: str) -> None:
    r = client.post("/v1/tensors/describe", json={"shape": [4, 4], "convention": "torch", **body})
    assert r.status_code == 422, r.text
    assert text in r.json()["detail"]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize(("scheme", "shape", "params"), CASES)
def test_cuda_gives_the_cpu_bytes(scheme: str, shape: tuple[int, ...], params: Params) -> None:
    for dtype in ("float32", "float64", "bfloat16"):
        s = sampling(scheme, shape, params, dtype)
        assert TorchEngine().generate(s, 0, s.numel, "cuda") == NumpyEngine().generate(
            s, 0, s.numel
        )
