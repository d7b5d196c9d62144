"""torch sparse_ (issue 18, point 1): the plan, exactly k zeros per column by the written rule,
normal values elsewhere (KS), torch's own zero count, the same bytes on every engine, and every
part equal to that part of the whole."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from service import rng
from service.distributions import Normal, Sparse
from service.dtypes import DTYPES
from service.engines import Engines, Sampling, sparse
from service.engines.numpy_engine import NUMPY_DTYPES, NumpyEngine, NumpyOps
from service.engines.torch_engine import TorchEngine
from service.errors import LimitExceeded, SchemeError, ShapeError
from service.plan import (
    MAX_SPARSE_COLUMNS,
    MAX_SPARSE_ELEMENTS,
    MAX_SPARSE_ROWS,
    Limits,
    TensorSpec,
    plan,
    sampling,
)
from service.schemes import Params, resolve
from service.slices import Slice

FAST, REFERENCE, TORCH = NumpyEngine(), NumpyEngine(fast=False), TorchEngine()
ENGINES: list[NumpyEngine | TorchEngine] = [FAST, REFERENCE, TORCH]


def draw(
    shape: tuple[int, int],
    sparsity: float,
    std: float = 0.01,
    seed: int = 7,
    dtype: str = "float32",
    name: str = "weight",
) -> Sampling:
    p = resolve("sparse", shape, "torch", Params(sparsity=sparsity, std=std))
    return sampling(p, seed, name, DTYPES[dtype])  # type: ignore[index]


def tensor(s: Sampling, engine: NumpyEngine | TorchEngine = FAST) -> npt.NDArray[np.float64]:
    raw = engine.generate(s, 0, s.numel, "cpu")
    return np.frombuffer(raw, dtype=NUMPY_DTYPES[s.dtype.name]).astype(np.float64).reshape(s.shape)


# --- the plan --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "sparsity", "zeros"), [(300, 0.1, 30), (10, 0.15, 2), (7, 0.0, 0), (7, 1.0, 7)]
)
def test_the_plan_has_torchs_zero_count_and_the_effective_std(
    rows: int, sparsity: float, zeros: int
) -> None:
    p = resolve("sparse", (rows, 5), "torch", Params(sparsity=sparsity, std=0.5))
    assert zeros == math.ceil(sparsity * rows)
    assert (p.law.kind, p.law.mean, p.law.stddev) == ("sparse", 0.0, 0.5)
    assert p.law.effective_std == pytest.approx(0.5 * math.sqrt(1 - zeros / rows), rel=1e-15)
    assert f"= {zeros} zeros in each column" in p.formula
    assert (p.fan_in, p.fan_out, p.mode) == (5.0, float(rows), None)  # torch's fans, reported
    assert p.rule.startswith("torch.nn.init.sparse_(sparsity, std)")


def test_std_defaults_to_torchs_and_sparsity_is_required() -> None:
    assert resolve("sparse", (4, 4), "torch", Params(sparsity=0.5)).law.stddev == 0.01
    with pytest.raises(SchemeError, match="needs sparsity"):
        resolve("sparse", (4, 4), "torch")


@pytest.mark.parametrize(
    ("shape", "convention", "params", "error", "match"),
    [
        ((4, 4, 4), "torch", {"sparsity": 0.5}, ShapeError, "sparse needs a rank 2 shape"),
        ((4,), "torch", {"sparsity": 0.5}, ShapeError, "received rank 1 shape"),
        ((4, 4), "torch", {"sparsity": 1.5}, SchemeError, "sparsity must be >= 0 and <= 1"),
        ((4, 4), "torch", {"sparsity": -0.1}, SchemeError, "received -0.1"),
        ((4, 4), "keras", {"sparsity": 0.5}, SchemeError, "defined under torch"),
        ((4, 4), "torch", {"sparsity": 0.5, "mean": 1.0}, SchemeError, "takes sparsity, std"),
    ],
)
def test_refusals_say_what_was_received_and_what_is_allowed(
    shape: tuple[int, ...],
    convention: str,
    params: dict[str, float],
    error: type[Exception],
    match: str,
) -> None:
    with pytest.raises(error, match=match):
        resolve("sparse", shape, convention, Params(**params))  # type: ignore[arg-type]


def test_torch_refuses_the_same_ranks() -> None:
    for shape in [(4,), (4, 4, 4)]:
        with pytest.raises(ValueError, match="Only tensors with 2 dimensions"):
            torch.nn.init.sparse_(torch.empty(shape), 0.5)


@pytest.mark.parametrize(
    ("shape", "what", "bound"),
    [
        ((MAX_SPARSE_ROWS + 1, 1), "rows", MAX_SPARSE_ROWS),
        ((1, MAX_SPARSE_COLUMNS + 1), "columns", MAX_SPARSE_COLUMNS),
        ((MAX_SPARSE_ELEMENTS // 4096 + 1, 4096), "elements", MAX_SPARSE_ELEMENTS),
    ],
)
def test_shapes_beyond_the_services_bounds_are_a_limit(
    shape: tuple[int, int], what: str, bound: int
) -> None:
    """Rows bound the ranking's memory, columns the kept thresholds (so concurrent streams never
    evict each other's and rank them again), elements the cost of any part's first byte."""
    spec = TensorSpec(shape, "sparse", "torch", Params(sparsity=0.5), seed=1)
    with pytest.raises(LimitExceeded, match=f"{what}, this service does that for at most {bound}"):
        plan(spec, Limits(2**32, 2**34), Engines())
    at = tuple(min(n, b) for n, b in zip(shape, (MAX_SPARSE_ROWS, MAX_SPARSE_COLUMNS), strict=True))
    if at[0] * at[1] <= MAX_SPARSE_ELEMENTS:  # at the bounds: planned
        plan(
            TensorSpec(at, "sparse", "torch", Params(sparsity=0.5), seed=1),
            Limits(2**32, 2**34),
            Engines(),
        )


# --- the values -------------------------------------------------------------------------------


def expected_zeros(s: Sampling) -> npt.NDArray[np.bool_]:
    """The rule of docs/decisions.md, by brute force: each column's k smallest (key, row)."""
    rows, cols = s.shape
    d = s.distribution
    assert isinstance(d, Sparse)
    stream = rng.substream(s.stream, "sparse")
    words = rng.words(NumpyOps(), s.seed, stream, 0, rows * cols).reshape(rows, cols)
    out = np.zeros((rows, cols), dtype=bool)
    for j in range(cols):
        order = np.lexsort((np.arange(rows), words[:, j]))  # by word, then by row
        out[order[: d.zeros], j] = True
    return out


@pytest.mark.parametrize(
    ("shape", "sparsity"), [((300, 200), 0.1), ((10, 7), 0.15), ((1, 9), 0.5), ((64, 3), 0.9)]
)
def test_each_column_has_exactly_k_zeros_where_the_rule_puts_them(
    shape: tuple[int, int], sparsity: float
) -> None:
    s = draw(shape, sparsity)
    w = tensor(s)
    zeros = math.ceil(sparsity * shape[0])
    assert ((w == 0).sum(axis=0) == zeros).all()
    assert np.array_equal(w == 0, expected_zeros(s))


def test_the_other_values_are_the_plain_normals() -> None:
    s = draw((50, 40), 0.3, std=2.0, dtype="float64")
    plain = Sampling(Normal(0.0, 2.0), s.shape, s.seed, s.stream, s.dtype)
    w, normals = tensor(s), tensor(plain)
    kept = w != 0
    assert np.array_equal(w[kept], normals[kept])


@pytest.mark.slow
def test_the_nonzeros_pass_ks_against_n0std_and_the_std_is_the_planned_one() -> None:
    s = draw((1000, 1000), 0.25, std=0.02, dtype="float64", seed=20261129)
    w = tensor(s)
    nonzero = w[w != 0]
    assert nonzero.size == 750 * 1000
    assert stats.kstest(nonzero, stats.norm(0.0, 0.02).cdf).pvalue > 1e-4
    law = resolve("sparse", (1000, 1000), "torch", Params(sparsity=0.25, std=0.02)).law
    assert w.std() == pytest.approx(law.effective_std, rel=0.01)
    assert abs(w.mean()) < 0.01 * law.effective_std


@pytest.mark.parametrize(("shape", "sparsity"), [((300, 200), 0.1), ((33, 5), 0.37), ((8, 8), 1.0)])
def test_the_zero_count_matches_torchs_own_sparse(shape: tuple[int, int], sparsity: float) -> None:
    torch.manual_seed(0)
    theirs = torch.nn.init.sparse_(torch.empty(shape), sparsity, std=0.01).numpy()
    ours = tensor(draw(shape, sparsity))
    assert np.array_equal((theirs == 0).sum(axis=0), (ours == 0).sum(axis=0))


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16", "float16"])
@pytest.mark.parametrize(("seed", "name"), [(0, "weight"), (2**64 - 1, "layers.3.mlp.w1")])
def test_numpy_fast_reference_and_torch_give_the_same_bytes(
    dtype: str, seed: int, name: str
) -> None:
    s = draw((257, 129), 0.3, seed=seed, dtype=dtype, name=name)
    full = FAST.generate(s, 0, s.numel)
    assert full == REFERENCE.generate(s, 0, s.numel)
    assert full == TORCH.generate(s, 0, s.numel, "cpu")


def test_the_mask_stream_is_not_the_values_stream() -> None:
    s = draw((4, 4), 0.5)
    assert rng.substream(s.stream, "sparse") not in (s.stream, rng.stream_id("weight"))


# --- parts ------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 60), st.integers(1, 60), st.floats(0.0, 1.0), st.data())
def test_any_part_and_any_range_equal_the_whole(
    rows: int, cols: int, sparsity: float, data: st.DataObject
) -> None:
    s = draw((rows, cols), sparsity, seed=data.draw(st.integers(0, 2**64 - 1)))
    whole = tensor(s)
    r0 = data.draw(st.integers(0, rows - 1))
    r1 = data.draw(st.integers(r0 + 1, rows))
    c0 = data.draw(st.integers(0, cols - 1))
    c1 = data.draw(st.integers(c0 + 1, cols))
    part = Slice(((r0, r1), (c0, c1)))
    sliced = Sampling(s.distribution, s.shape, s.seed, s.stream, s.dtype, part=part)
    engine = data.draw(st.sampled_from(ENGINES))
    assert np.array_equal(tensor_part(sliced, engine), whole[r0:r1, c0:c1])
    start = data.draw(st.integers(0, s.numel))
    stop = data.draw(st.integers(start, s.numel))
    piece = np.frombuffer(engine.generate(s, start, stop, "cpu"), dtype="<f4")
    assert np.array_equal(piece, whole.reshape(-1)[start:stop].astype(np.float32))


def tensor_part(s: Sampling, engine: NumpyEngine | TorchEngine) -> npt.NDArray[np.float64]:
    assert s.part is not None
    raw = engine.generate(s, 0, s.produced, "cpu")
    return np.frombuffer(raw, dtype="<f4").astype(np.float64).reshape(s.part.shape)


def test_a_column_shard_and_a_row_shard_equal_the_whole() -> None:
    s = draw((512, 384), 0.2)
    whole = tensor(s)
    for part, expected in [
        (Slice(((0, 512), (48, 96))), whole[:, 48:96]),
        (Slice(((64, 128), (0, 384))), whole[64:128]),
    ]:
        sliced = Sampling(s.distribution, s.shape, s.seed, s.stream, s.dtype, part=part)
        assert np.array_equal(tensor_part(sliced, FAST), expected)


def test_a_tiny_threshold_memo_gives_the_same_bytes() -> None:
    """Groups evicted and ranked again (a budget of one group) change nothing."""
    s = draw((64, 9000), 0.5)  # width 4096: three groups
    engine = NumpyEngine()
    engine.thresholds = sparse.Thresholds(budget=4096 * 8)
    assert engine.generate(s, 0, s.numel) == FAST.generate(s, 0, s.numel)
    assert engine.thresholds.held <= 4096 * 8


def test_std_zero_gives_zeros_like_torch() -> None:
    assert not tensor(draw((6, 4), 0.5, std=0.0)).any()
    assert not torch.nn.init.sparse_(torch.empty(6, 4), 0.5, std=0.0).any()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_gives_the_cpu_bytes() -> None:
    s = draw((1000, 300), 0.4)
    assert TORCH.generate(s, 0, s.numel, "cuda") == FAST.generate(s, 0, s.numel)
