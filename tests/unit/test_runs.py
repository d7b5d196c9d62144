"""service.engines.runs and the engines on a part of a tensor: the runs are the slice's elements
of the full tensor, in order, as few as can be; every engine's bytes of a part are numpy's
slicing of the whole tensor's bytes; the fused kernel takes a part's runs in one call, and never
generates the rest of the tensor."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service import schemes
from service.dtypes import DTYPES, DTypeName
from service.engines import Sampling, fast, runs
from service.engines.numpy_engine import NumpyEngine
from service.engines.torch_engine import TorchEngine
from service.plan import sampling as sampling_of
from service.slices import Slice

FLOATS = sorted(d for d, t in DTYPES.items() if not t.integer)
SCHEMES = [  # random kinds the kernel draws, and the reference path's other kinds
    ("he_normal", "keras"),
    ("normal", "torch"),
    ("he_uniform", "keras"),
    ("ones", "torch"),
    ("dirac", "torch"),
    ("orthogonal", "torch"),
    ("inverse_softplus_log_uniform", "torch"),  # drawn by the reference path only
    ("log_arange", "torch"),
]


@st.composite
def parts(draw: st.DrawFn, max_rank: int = 4, max_dim: int = 9) -> tuple[tuple[int, ...], Slice]:
    """A shape and a slice of it (possibly empty, possibly the whole)."""
    shape = tuple(draw(st.lists(st.integers(0, max_dim), min_size=1, max_size=max_rank)))
    bounds = []
    for n in shape:
        a = draw(st.integers(0, n))
        bounds.append((a, draw(st.integers(a, n))))
    return shape, Slice(tuple(bounds))


def expected_positions(shape: tuple[int, ...], part: Slice) -> Any:
    full = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    return full[tuple(slice(a, b) for a, b in part.bounds)].reshape(-1)


def sampling(
    shape: tuple[int, ...], part: Slice | None = None, dtype: DTypeName = "float32"
) -> Sampling:
    s = sampling_of(schemes.resolve("normal", shape, "torch"), 7, "w", DTYPES[dtype])
    return replace(s, part=part)


@given(parts(), st.data())
def test_runs_are_the_slices_elements_in_order_and_as_few_as_can_be(
    case: tuple[tuple[int, ...], Slice], data: st.DataObject
) -> None:
    shape, part = case
    s = sampling(shape, part)
    lo = data.draw(st.integers(0, part.numel))
    hi = data.draw(st.integers(lo, part.numel))
    want = expected_positions(shape, part)[lo:hi]
    starts, lengths = runs.runs(s, lo, hi)
    assert (lengths > 0).all()
    expanded = [i for a, n in zip(starts, lengths, strict=True) for i in range(a, a + n)]
    assert expanded == want.tolist()
    assert not (starts[1:] == starts[:-1] + lengths[:-1]).any()  # no two runs could be one
    assert runs.positions(s, lo, hi).tolist() == want.tolist()


def test_batches_keep_the_run_arrays_bounded() -> None:
    s = sampling((300_000, 4), Slice(((0, 300_000), (1, 2))))  # runs of one element
    pieces = list(runs.batches(s, 5, 300_000))
    assert len(pieces) == 5
    assert [p[0] for p in pieces[1:]] == [p[1] for p in pieces[:-1]]  # contiguous, in order
    assert (pieces[0][0], pieces[-1][1]) == (5, 300_000)
    assert max(len(starts) for _, _, starts, _ in pieces) == runs.MAX_RUNS


@settings(max_examples=60, deadline=None)
@given(
    parts(max_rank=3, max_dim=11),
    st.sampled_from(SCHEMES),
    st.sampled_from(FLOATS),
    st.integers(0, 2**64 - 1),
    st.data(),
)
def test_every_engine_gives_numpys_slice_of_the_whole(
    case: tuple[tuple[int, ...], Slice],
    scheme: tuple[str, str],
    dtype: DTypeName,
    seed: int,
    data: st.DataObject,
) -> None:
    shape, part = case
    name, convention = scheme
    if name in ("dirac", "orthogonal") and len(shape) < 3:  # dirac: a convolution's kernel
        shape, part = (*shape, 2, 3)[:3], Slice((*part.bounds, (0, 2), (1, 3))[:3])
    plan = schemes.resolve(name, shape, convention)
    whole = sampling_of(plan, seed, "p", DTYPES[dtype], (0,) if shape[0] else ())
    cut = replace(whole, part=part)
    reference = NumpyEngine(fast=False)
    size = DTYPES[dtype].itemsize
    full = np.frombuffer(reference.generate(whole, 0, whole.numel), np.uint8).reshape(*shape, size)
    expected = full[tuple(slice(a, b) for a, b in part.bounds)].tobytes()
    lo = data.draw(st.integers(0, part.numel))
    hi = data.draw(st.integers(lo, part.numel))
    for engine in (
        NumpyEngine(threads=2),
        reference,
        TorchEngine(chunk=data.draw(st.integers(1, 9))),
    ):
        assert bytes(engine.generate(cut, lo, hi)) == expected[lo * size : hi * size], engine


def test_zero_rows_stay_zero_in_a_slice() -> None:
    s = replace(sampling((10, 6)), zero_rows=(2, 7))
    part = Slice(((1, 9), (2, 5)))
    values = np.frombuffer(NumpyEngine().generate(replace(s, part=part), 0, part.numel), "<f4")
    rows = values.reshape(8, 3)
    assert (rows[1] == 0).all()
    assert (rows[6] == 0).all()
    assert (rows[[0, 2, 3, 4, 5, 7]] != 0).all()


def test_a_column_shard_is_one_kernel_call_of_its_own_elements(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """1/8 of the columns of a 4096 x 4096 tensor: 4096 runs, drawn in one kernel call (per
    thread), of exactly the shard's elements; the range call, which a whole tensor would take,
    is never made."""
    if not fast.available():
        pytest.skip("the fused kernel was not built here")
    calls: list[int] = []
    real = fast.Draw.generate_runs

    def counted(draw: fast.Draw, out: Any, starts: Any, lengths: Any) -> None:
        calls.append(int(lengths.sum()))
        real(draw, out, starts, lengths)

    def never(*_: Any, **__: Any) -> None:
        raise AssertionError("the whole range was generated")

    monkeypatch.setattr(fast.Draw, "generate_runs", counted)
    monkeypatch.setattr(fast.Draw, "generate", never)
    part = Slice(((0, 4096), (1536, 2048)))
    s = sampling((4096, 4096), part)
    data = NumpyEngine(threads=1).generate(s, 0, part.numel)
    assert calls == [part.numel]
    reference = NumpyEngine(fast=False).generate(s, 0, 8192)  # the first 16 rows of it
    assert bytes(data[: 8192 * 4]) == bytes(reference)


def test_a_part_is_split_across_threads_by_elements() -> None:
    s = sampling((257, 1000), Slice(((3, 250), (17, 990))), "float64")
    one = NumpyEngine(threads=1).generate(s, 11, s.produced - 5)
    assert NumpyEngine(threads=3).generate(s, 11, s.produced - 5) == one
