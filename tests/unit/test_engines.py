"""service.engines: numpy and torch agree bit for bit; slices stand alone; the values follow
their laws (KS tests); casts follow algorithm v1; golden hashes pin the algorithm."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import ml_dtypes
import numpy as np
import numpy.typing as npt
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from service import rng, schemes
from service.dtypes import DTYPES
from service.engines import Engines, Sampling, fast, structured
from service.engines.numpy_engine import NUMPY_DTYPES, NumpyEngine, NumpyOps
from service.engines.numpy_engine import cast as numpy_cast
from service.engines.torch_engine import TorchEngine
from service.plan import sampling as sampling_of
from service.schemes import Params
from service.slices import Slice

FLOATS = sorted(d for d, t in DTYPES.items() if not t.integer)

NUMPY = NumpyEngine()
TORCH = TorchEngine()
MILLION = (1000, 1000)


def sampling(
    scheme: str,
    shape: tuple[int, ...],
    convention: str = "keras",
    params: Params | None = None,
    seed: int = 7,
    name: str = "weight",
    dtype: str = "float32",
) -> Sampling:
    plan = schemes.resolve(scheme, shape, convention, params)
    return sampling_of(plan, seed, name, DTYPES[dtype])  # type: ignore[index]


def values(s: Sampling, engine: NumpyEngine | TorchEngine = NUMPY) -> npt.NDArray[np.float64]:
    raw = np.frombuffer(engine.generate(s, 0, s.numel, "cpu"), dtype=NUMPY_DTYPES[s.dtype.name])
    return raw.astype(np.float64)


LAWS = [
    ("he_normal", MILLION, "torch", Params()),  # untruncated normal
    ("he_normal", MILLION, "keras", Params()),  # truncated at ±2σ
    ("truncated_normal", MILLION, "torch", Params(a=0.5, b=3.0)),  # upper side, mirrored
    ("truncated_normal", MILLION, "jax", Params(std=0.5, a=-9.0, b=9.0)),  # wide
    ("he_uniform", MILLION, "keras", Params()),
    ("uniform", MILLION, "torch", Params(low=-3.0, high=5.0)),
]

KERNEL_CASES = [
    *LAWS,
    ("truncated_normal", (1000,), "torch", Params(a=-40.0, b=-37.5)),  # Φ⁻¹'s r > 5 branch
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(("scheme", "shape", "convention", "params"), LAWS)
@pytest.mark.parametrize(("seed", "name"), [(0, "weight"), (2**64 - 1, "blocks.3.attn.qkv.weight")])
def test_numpy_and_torch_cpu_give_identical_bytes(
    scheme: str,
    shape: tuple[int, ...],
    convention: str,
    params: Params,
    dtype: str,
    seed: int,
    name: str,
) -> None:
    s = sampling(scheme, shape, convention, params, seed, name, dtype)
    a = NUMPY.generate(s, 0, s.numel, "cpu")
    b = TORCH.generate(s, 0, s.numel, "cpu")
    assert a.nbytes == s.numel * s.dtype.itemsize
    assert a == b


@pytest.mark.parametrize(
    ("scheme", "shape", "convention", "params"),
    [
        ("identity", (7, 5), "keras", Params(gain=3.0)),
        ("dirac", (8, 4, 3, 3), "torch", Params(groups=2)),
        ("constant", (33,), "torch", Params(value=-1.25)),
        ("orthogonal", (12, 5, 2), "torch", Params()),
        ("delta_orthogonal", (3, 3, 4, 6), "jax", Params()),
    ],
)
def test_deterministic_and_structured_kinds_agree(
    scheme: str, shape: tuple[int, ...], convention: str, params: Params
) -> None:
    s = sampling(scheme, shape, convention, params)
    assert NUMPY.generate(s, 0, s.numel) == TORCH.generate(s, 0, s.numel)


def test_identity_and_dirac_equal_torchs_own() -> None:
    eye = values(sampling("identity", (7, 5), "torch"))
    assert np.array_equal(eye, torch.nn.init.eye_(torch.empty(7, 5)).numpy().ravel())
    s = sampling("dirac", (8, 4, 3, 5), "torch", Params(groups=2))
    expected = torch.nn.init.dirac_(torch.empty(8, 4, 3, 5), groups=2).numpy().ravel()
    assert np.array_equal(values(s), expected)


# --- slices -------------------------------------------------------------------------------

KINDS = ["he_normal", "glorot_uniform", "lecun_normal", "identity", "zeros"]


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(KINDS),
    st.lists(st.integers(1, 40), min_size=2, max_size=3),
    st.sampled_from(FLOATS),
    st.data(),
)
def test_any_slice_produced_alone_equals_the_slice_of_the_whole(
    scheme: str, shape: list[int], dtype: str, data: st.DataObject
) -> None:
    if scheme == "identity":
        shape = shape[:2]
    s = sampling(scheme, tuple(shape), dtype=dtype, seed=data.draw(st.integers(0, 2**64 - 1)))
    whole = bytes(NUMPY.generate(s, 0, s.numel))
    start = data.draw(st.integers(0, s.numel))
    stop = data.draw(st.integers(start, s.numel))
    chunk = data.draw(st.integers(1, 64))
    size = s.dtype.itemsize
    expected = whole[start * size : stop * size]
    assert bytes(NumpyEngine(chunk=chunk).generate(s, start, stop)) == expected
    assert bytes(NumpyEngine(chunk=chunk, fast=False).generate(s, start, stop)) == expected
    assert bytes(TorchEngine(chunk=chunk).generate(s, start, stop)) == expected


def test_output_does_not_depend_on_thread_count() -> None:
    s = sampling("he_normal", (512, 1024), "torch", dtype="bfloat16")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = TORCH.generate(s, 0, s.numel)
        torch.set_num_threads(2)
        two = TORCH.generate(s, 0, s.numel)
    finally:
        torch.set_num_threads(before)
    assert one == two


@pytest.mark.skipif(not fast.available(), reason="the fused kernel was not built")
@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float8_e4m3fn"])
def test_narrowed_blocks_stay_theirs_while_the_float32_buffer_is_reused(dtype: str) -> None:
    """The kernel's float32 values of a narrowed dtype go through a kept buffer (bfloat16's are
    made as bfloat16, into the pooled output buffers of engines/blocks.py): a block handed out
    must not change when the next ones are made in that buffer, from other threads too."""
    engine = NumpyEngine(threads=2)
    s = sampling("he_normal", (256, 4096), "torch", dtype=dtype)
    blocks = [(lo, lo + 131072) for lo in range(0, s.numel, 131072)]
    first = [bytes(engine.generate(s, lo, hi)) for lo, hi in blocks]
    views = [engine.generate(s, lo, hi) for lo, hi in blocks]
    made: list[bytes] = []
    workers = [threading.Thread(target=lambda: made.append(bytes(engine.generate(s, 0, 4096))))
               for _ in range(4)]  # fmt: skip
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert [bytes(v) for v in views] == first
    assert made == [first[0][: len(made[0])]] * 4
    assert len(engine.spare) >= (dtype != "bfloat16")
    whole = bytes(NumpyEngine(fast=False).generate(s, 0, s.numel))
    assert b"".join(first) == whole


# --- the values follow their laws ---------------------------------------------------------


def ks(sample: npt.NDArray[np.float64], law: schemes.Law) -> float:
    if law.kind == "normal":
        dist = stats.norm(law.loc, law.stddev)
    elif law.kind == "uniform":
        assert law.low is not None
        assert law.high is not None
        dist = stats.uniform(law.low, law.high - law.low)
    else:
        dist = stats.truncnorm(law.alpha, law.beta, loc=law.loc, scale=law.stddev)
    return float(stats.kstest(sample, dist.cdf).pvalue)


@pytest.mark.slow
@pytest.mark.parametrize(("scheme", "shape", "convention", "params"), LAWS)
def test_distributions_pass_ks_and_have_the_planned_std(
    scheme: str, shape: tuple[int, ...], convention: str, params: Params
) -> None:
    s = sampling(scheme, shape, convention, params, dtype="float64", seed=20261129)
    x = values(s)
    law = schemes.resolve(scheme, shape, convention, params).law
    assert ks(x, law) > 1e-4
    assert x.std() == pytest.approx(law.effective_std, rel=0.01)
    assert x.mean() == pytest.approx(law.mean, abs=0.01 * law.effective_std)
    if law.low is not None and law.high is not None:
        assert law.low <= x.min()
        assert x.max() <= law.high


def test_normal_tails_pass_five_sigma_and_stay_inside_the_extreme_words() -> None:
    # u = (w + 0.5)·2^-32, so the extreme words 0 and 2^32 - 1 give z = ∓Φ⁻¹(2^-33) = ∓6.34;
    # 8M values are expected to pass 5σ (~5 of them) and none can pass the extremes
    edge = -float(rng.normal_ppf(NumpyOps(), np.array([0.5 * rng.TWO_M32]))[0])
    assert edge == pytest.approx(6.3379, abs=1e-4)
    x = values(sampling("normal", (8, 1 << 20), "torch", seed=1))
    assert np.abs(x).max() > 5.0
    assert np.abs(x).max() <= np.float32(edge)  # rounding to float32 is monotonic


@pytest.mark.parametrize(
    ("convention", "shape", "kept"),
    [
        ("torch", (6, 4, 5), 0),
        ("keras", (4, 5, 6), 2),
        ("jax", (6, 3, 2), 0),
        ("torch", (3, 40), 0),
    ],
)
def test_orthogonal_is_orthogonal_with_the_gain(
    convention: str, shape: tuple[int, ...], kept: int
) -> None:
    params = Params(gain=1.5, column_axis=kept) if convention == "jax" else Params(gain=1.5)
    s = sampling("orthogonal", shape, convention, params, dtype="float64")
    w = np.moveaxis(values(s).reshape(shape), kept, -1).reshape(-1, shape[kept])
    gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    assert np.allclose(gram, 1.5**2 * np.eye(len(gram)), atol=1e-5)
    law = schemes.resolve("orthogonal", shape, convention, params).law
    assert values(s).std() == pytest.approx(law.effective_std, rel=0.05)


@pytest.mark.parametrize("engine", [NUMPY, TORCH], ids=["numpy", "torch"])
def test_orthogonal_with_gain_zero_is_zeros(engine: NumpyEngine | TorchEngine) -> None:
    """torch.nn.init.orthogonal_(w, gain=0) and Keras' Orthogonal(gain=0) give zeros."""
    s = sampling("orthogonal", (4, 6), "torch", Params(gain=0.0), dtype="float64")
    assert not values(s, engine).any()


def test_delta_orthogonal_has_an_orthogonal_centre_tap() -> None:
    s = sampling("delta_orthogonal", (3, 3, 4, 6), "jax", Params(gain=2.0), dtype="float64")
    w = values(s).reshape(3, 3, 4, 6)
    centre = w[1, 1]
    assert np.allclose(centre @ centre.T, 4.0 * np.eye(4), atol=1e-5)
    w[1, 1] = 0
    assert not w.any()


def test_the_memo_builds_a_tensor_once_for_all_its_streams(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Streams of one orthogonal tensor share one QR, whoever asks first; more streams than the
    old count limit (2) keep theirs while they fit the byte budget."""

    memo = structured.Memo()
    ops = NumpyOps()
    _, release, built = gate_builds(monkeypatch)
    release.set()  # no waiting: only counting
    shapes = [(60 + i, 40) for i in range(6)]  # 6 tensors of ~20 KB: all fit in 64 MiB
    samplings = [sampling("orthogonal", sh, "torch", dtype="float64") for sh in shapes]
    got: list[list[npt.NDArray[np.float64]]] = [[] for _ in samplings]

    def stream(i: int) -> None:
        for _ in range(4):  # four blocks each
            got[i].append(memo.get(ops, samplings[i]))

    threads = [threading.Thread(target=stream, args=(i % 6,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 6
    for i, values_ in enumerate(got):
        assert all(v is values_[0] for v in values_)
        assert np.array_equal(values_[0], structured.tensor(ops, samplings[i]))
    assert memo.held == sum(v[0].nbytes for v in got)


def gate_builds(
    monkeypatch: pytest.MonkeyPatch, fail_first: bool = False
) -> tuple[threading.Event, threading.Event, list[int]]:
    """structured.tensor made to set `started` and wait for `release` on its first call (which
    raises MemoryError then, with `fail_first`); later calls build at once. The list grows by
    one per call (per build)."""
    started, release = threading.Event(), threading.Event()
    build = structured.tensor
    calls: list[int] = []

    def gated(
        o: rng.ArrayOps, x: Sampling, draw: structured.Normals | None = None
    ) -> npt.NDArray[np.float64]:
        calls.append(1)
        if len(calls) == 1:
            started.set()
            assert release.wait(10)
            if fail_first:
                raise MemoryError("the first build fails")
        return build(o, x, draw)

    monkeypatch.setattr(structured, "tensor", gated)
    return started, release, calls


def test_the_memo_keeps_to_its_byte_budget_and_never_waits_on_another_build(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ops = NumpyOps()
    small = sampling("orthogonal", (40, 30), "torch", dtype="float64")  # 9,600 bytes
    other = sampling("orthogonal", (41, 30), "torch", dtype="float64")
    memo = structured.Memo(budget=15_000)  # room for one of them
    first = memo.get(ops, small)
    started, release, _ = gate_builds(monkeypatch)
    builder = threading.Thread(target=memo.get, args=(ops, other))
    builder.start()
    assert started.wait(10)
    assert memo.get(ops, small) is first  # a hit, answered while the other is being built
    release.set()
    builder.join()
    assert list(memo.entries) == [structured.Memo.key(other)]  # over budget: the older one went
    assert memo.held == 41 * 30 * 8


def test_waiters_take_the_builders_value_even_when_it_is_not_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A tensor larger than the budget is not kept, yet the streams that waited for its build
    take that build's value instead of each redoing it."""

    ops = NumpyOps()
    s = sampling("orthogonal", (40, 30), "torch", dtype="float64")
    memo = structured.Memo(budget=100)  # smaller than any tensor
    waiting = threading.Semaphore(0)

    class Counted(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waiting.release()
            return super().wait(timeout)

    class Build(structured._Build):
        def __init__(self) -> None:
            super().__init__()
            self.done = Counted()

    started, release, built = gate_builds(monkeypatch)
    monkeypatch.setattr(structured, "_Build", Build)
    got: list[npt.NDArray[np.float64]] = []
    first = threading.Thread(target=lambda: got.append(memo.get(ops, s)))
    first.start()
    assert started.wait(10)
    waiters = [threading.Thread(target=lambda: got.append(memo.get(ops, s))) for _ in range(3)]
    for w in waiters:
        w.start()
    for _ in waiters:  # all three are waiting for the build
        assert waiting.acquire(timeout=10)
    release.set()
    for t in [first, *waiters]:
        t.join()
    assert len(got) == 4
    assert all(v is got[0] for v in got)
    assert len(built) == 1
    assert not memo.entries


def test_a_failed_build_lets_a_waiting_stream_build_it(monkeypatch: pytest.MonkeyPatch) -> None:
    ops = NumpyOps()
    s = sampling("orthogonal", (40, 30), "torch", dtype="float64")
    memo = structured.Memo()
    build = structured.tensor
    started, release, _ = gate_builds(monkeypatch, fail_first=True)
    errors: list[BaseException] = []

    def first() -> None:
        try:
            memo.get(ops, s)
        except MemoryError as exc:
            errors.append(exc)

    t = threading.Thread(target=first)
    t.start()
    assert started.wait(10)
    waiting: list[npt.NDArray[np.float64]] = []
    w = threading.Thread(target=lambda: waiting.append(memo.get(ops, s)))
    w.start()
    release.set()
    t.join()
    w.join()
    assert len(errors) == 1
    assert len(waiting) == 1
    assert np.array_equal(waiting[0], build(ops, s))
    assert not memo.building


# --- casts --------------------------------------------------------------------------------


def near_midpoints() -> Iterator[npt.NDArray[np.float64]]:
    """float64 values around the rounding midpoints of float16/bfloat16, and plain ones."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(200_000) * rng.choice([1e-6, 1e-2, 1.0, 100.0, 7e4], 200_000)
    yield x
    for small in (np.float16, ml_dtypes.bfloat16):
        with np.errstate(over="ignore", invalid="ignore"):
            rounded = x.astype(np.float32).astype(small)
            upper = np.nextafter(rounded, np.array(np.inf, dtype=small)).astype(np.float64)
            mid = (rounded.astype(np.float64) + upper) / 2
        mid = mid[np.isfinite(mid)]
        for eps in (-(2.0**-40), 0.0, 2.0**-40):
            yield mid * (1 + eps)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float8_e4m3fn", "float8_e5m2"])
def test_casts_agree_with_torch_to_dtype_from_float64(dtype: str) -> None:
    target = getattr(torch, dtype)
    for x in near_midpoints():
        ours = numpy_cast(x, DTYPES[dtype]).view(np.uint8)  # type: ignore[index]
        theirs = torch.from_numpy(x).to(target).view(torch.uint8).numpy()
        assert np.array_equal(ours, theirs)


def test_float8_e4m3fn_saturates_like_torch() -> None:
    x = np.array([500.0, -1e6, 448.0, 460.0])
    got = numpy_cast(x, DTYPES["float8_e4m3fn"]).astype(np.float32)
    assert list(got) == [448.0, -448.0, 448.0, 448.0]


# --- engines registry ---------------------------------------------------------------------


def test_registry_builds_torch_only_when_asked() -> None:
    assert set(Engines("numpy").by_name) == {"numpy"}
    torch_engines = Engines("torch")
    assert torch_engines.select("cpu")[0].name == "torch"
    assert torch_engines.select("auto")[1] == ("cuda" if torch.cuda.is_available() else "cpu")


# --- golden bytes: any change of algorithm v1 fails here ------------------------------------

GOLDEN = [
    # scheme, shape, convention, params, seed, name, dtype, sha256 of the bytes
    (
        "he_normal",
        (64, 32, 3, 3),
        "torch",
        Params(),
        0,
        "weight",
        "float32",
        "19f24a767c2a9a4a99a1cf96f1be2bdfb8b24322ef1a42478bff1b4197c72560",
    ),
    (
        "glorot_normal",
        (3, 3, 32, 64),
        "keras",
        Params(),
        42,
        "conv1.kernel",
        "float32",
        "fe047972ccb18d32ccf6df14a3be1952dc158e769aaff52097d07448c53b5def",
    ),
    (
        "glorot_uniform",
        (768, 3072),
        "keras",
        Params(),
        2**64 - 1,
        "mlp.fc1",
        "bfloat16",
        "e6b64c525089708631e5a2b5cd777defcb76524e2bbc3a07fbfb2479671dbd77",
    ),
    (
        "truncated_normal",
        (4096,),
        "torch",
        Params(std=0.02),
        1234,
        "wte",
        "float64",
        "568f379f6dd949d4407a47e20fe3259b9d04f7d6d8a53154879895718e88577f",
    ),
    (
        "lecun_normal",
        (256, 256),
        "jax",
        Params(),
        7,
        "dense",
        "float16",
        "ac74819f5ecab0f4b7b10a4aace2dc99ff06c4c13112ef404cdd4003b8fd4ad8",
    ),
    (
        "he_uniform",
        (128, 64),
        "keras",
        Params(),
        9,
        "weight",
        "float8_e4m3fn",
        "09033dd0cf987ad9c100e0e75c77a08bfe90449e855a2271e33b5312bf2c2b7d",
    ),
    (
        "normal",
        (1000,),
        "torch",
        Params(std=3.0),
        5,
        "weight",
        "float8_e5m2",
        "9b2eb99329638a409e792d69ab427064074eb706a481ba0debd821911d335cdb",
    ),
]


@pytest.mark.parametrize(
    ("scheme", "shape", "convention", "params", "seed", "name", "dtype", "digest"), GOLDEN
)
def test_golden_sha256(
    scheme: str,
    shape: tuple[int, ...],
    convention: str,
    params: Params,
    seed: int,
    name: str,
    dtype: str,
    digest: str,
) -> None:
    s = sampling(scheme, shape, convention, params, seed, name, dtype)
    assert hashlib.sha256(NUMPY.generate(s, 0, s.numel)).hexdigest() == digest


# --- CUDA (only where a device is present) -----------------------------------------------


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(("scheme", "shape", "convention", "params"), LAWS)
def test_cuda_gives_the_cpu_bytes(
    scheme: str, shape: tuple[int, ...], convention: str, params: Params, dtype: str
) -> None:
    s = sampling(scheme, shape, convention, params, 11, "weight", dtype)
    assert TORCH.generate(s, 0, s.numel, "cuda") == NUMPY.generate(s, 0, s.numel)


def test_the_cuda_benchmarks_identity_check_works_on_the_cpu() -> None:
    """bench.cuda is run once where a device is lent; its comparison is checked here, with the
    torch engine on the CPU in the device's place."""
    from bench.cuda import identity

    results = identity("cpu", 1 << 14)
    assert len(results) == 12
    assert all(equal for _, _, equal in results)


# --- the fused C kernel -------------------------------------------------------------------


def test_the_fused_kernel_is_built_here() -> None:
    """CI builds it (a compiler is there); elsewhere the reference path serves the same bytes."""
    assert fast.available()
    assert NumpyEngine().fast
    assert not NumpyEngine(fast=False).fast


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    ("scheme", "shape", "convention", "params"),
    KERNEL_CASES,
)
def test_the_fused_kernel_gives_the_reference_bytes(
    scheme: str, shape: tuple[int, ...], convention: str, params: Params, dtype: str
) -> None:
    s = sampling(scheme, shape, convention, params, 2**63 + 5, "kernel.check", dtype)
    reference = bytes(NumpyEngine(fast=False).generate(s, 0, s.numel))
    assert bytes(NumpyEngine(threads=1).generate(s, 0, s.numel)) == reference
    size = s.dtype.itemsize
    part = NumpyEngine(threads=3).generate(s, 17, s.numel - 3)
    assert bytes(part) == reference[17 * size : (s.numel - 3) * size]


def test_the_kernels_bfloat16_narrowing_is_ml_dtypes_cast() -> None:
    """`_fastcore.to_bfloat16` against ml_dtypes' float32 → bfloat16 cast (the reference path's):
    every sign and exponent with the low halves at and around the rounding midpoints (NaNs,
    infinities, subnormals, overflow to inf included), and 4M random bit patterns."""
    core = fast.CORE
    assert core is not None
    lows = np.array([0, 1, 0x3FFF, 0x7FFF, 0x8000, 0x8001, 0xBFFF, 0xFFFF], dtype=np.uint32)
    edges = ((np.arange(1 << 16, dtype=np.uint32) << 16)[:, None] | lows[None, :]).ravel()
    spread = np.random.default_rng(3).integers(0, 1 << 32, 1 << 22, dtype=np.uint32)
    values = np.concatenate([edges, spread]).view(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        expected = values.astype(ml_dtypes.bfloat16).view(np.uint16)
    out = np.empty(len(values), np.uint16)
    core.to_bfloat16(values, out)
    assert np.array_equal(out, expected)
    with pytest.raises(ValueError, match="room for as many"):
        core.to_bfloat16(values, out[:-1])


FAR = 2**40 + 3  # an element offset whose block counters fill both words (c0 and c1)


PARTS = {  # of a matrix: short runs (gathered by the kernel) and long ones, from odd offsets
    2: (Slice(((7, 300), (3, 5))), Slice(((7, 300), (100, 431)))),
    1: (Slice(((3, 997),)),),
}


def kernel_digests(engine: NumpyEngine | None = None) -> list[str]:
    """SHA-256 of every law of KERNEL_CASES in float32, float64 and bfloat16 over [3, n - 5)
    (the start not on a Philox block, the end not on a vector), over 2,997 values from FAR, and
    of the PARTS of its shape (the kernel's runs), from `engine` (default: the fused kernel, on
    one thread)."""
    engine = engine or NumpyEngine(threads=1)
    out = []
    for scheme, shape, convention, params in KERNEL_CASES:
        for dtype in ("float32", "float64", "bfloat16"):
            s = sampling(scheme, shape, convention, params, 99, "w", dtype)
            for start, stop in ((3, s.numel - 5), (FAR, FAR + 2997)):
                out.append(hashlib.sha256(engine.generate(s, start, stop)).hexdigest())
            for part in PARTS[len(shape)]:
                cut = replace(s, part=part)
                out.append(hashlib.sha256(engine.generate(cut, 0, part.numel)).hexdigest())
    return out


@pytest.mark.parametrize("value", ["AVX2", "sse9"])
def test_a_kernel_choice_it_cannot_take_is_said_not_ignored(value: str) -> None:
    import subprocess
    import sys

    if not fast.available():
        pytest.skip("the fused kernel was not built here")
    code = "from service.engines import fast; print(fast.isa())"
    env = {**os.environ, "WEIGHTGEN_KERNEL": value}
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, check=True
    )
    assert r.stdout.strip() == fast.isa()  # the best build runs
    assert f"WEIGHTGEN_KERNEL={value} is not portable, avx2 or avx512" in r.stderr


@pytest.mark.parametrize("build", ["avx2", "portable"])
def test_every_build_of_the_kernel_gives_the_same_bytes(build: str) -> None:
    """The kernel runs the best build the CPU has (AVX-512, AVX2, portable C); a lower one,
    chosen with WEIGHTGEN_KERNEL, must give the very same bytes, and all the reference's."""
    import json
    import subprocess
    import sys

    if not fast.available():
        pytest.skip("the fused kernel was not built here")
    if fast.BUILDS.index(build) > fast.BUILDS.index(str(fast.isa())):
        pytest.skip(f"this CPU has no {build}")
    code = (
        "import json, tests.unit.test_engines as t; from service.engines import fast; "
        "print(json.dumps([fast.isa(), t.kernel_digests()]))"
    )
    env = {**os.environ, "WEIGHTGEN_KERNEL": build}
    root = Path(__file__).resolve().parents[2]
    other = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, check=True
    )
    isa, digests = json.loads(other.stdout)
    assert isa == build
    expected = kernel_digests(NumpyEngine(fast=False))
    assert digests == expected
    assert kernel_digests() == expected  # and the build this process runs
