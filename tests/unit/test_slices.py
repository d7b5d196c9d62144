"""service.slices: a slice as numpy slices, a shard as torch.chunk cuts, refusals that say what
was received and what is allowed."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from service.errors import ShapeError
from service.slices import Bounds, Shard, Slice, parse, parse_shard, pieces, resolve


@pytest.mark.parametrize(
    ("text", "axes"),
    [
        ("0:4096,2048:4096", ((0, 4096), (2048, 4096))),
        (":4", ((None, 4),)),
        ("2:", ((2, None),)),
        (":", ((None, None),)),
        (" 1 : 3 , : ", ((1, 3), (None, None))),
        ("", ()),
    ],
)
def test_a_slice_is_read_as_written(text: str, axes: tuple[tuple[int | None, int | None]]) -> None:
    assert parse(text) == Bounds(axes)


@pytest.mark.parametrize(
    ("text", "received"),
    [("1", "'1'"), ("-1:", "'-1:'"), ("0:4:2", "'0:4:2'"), ("a:b", "'a:b'"), ("0:4,", "''")],
)
def test_a_slice_that_is_not_start_stop_is_refused(text: str, received: str) -> None:
    with pytest.raises(ShapeError, match="is not start:stop per leading axis") as caught:
        parse(text)
    assert f"received {received} for an axis" in caught.value.detail


@given(
    st.lists(st.integers(0, 6), min_size=1, max_size=4).flatmap(
        lambda shape: st.tuples(
            st.just(tuple(shape)),
            st.lists(
                st.tuples(st.none() | st.integers(0, 6), st.none() | st.integers(0, 6)),
                max_size=len(shape),
            ),
        )
    )
)
def test_a_resolved_slice_is_numpys_basic_slicing(
    case: tuple[tuple[int, ...], list[tuple[int | None, int | None]]],
) -> None:
    shape, axes = case
    full = np.arange(int(np.prod(shape))).reshape(shape)
    part = Bounds(tuple(axes))
    fits = all(
        (a or 0) <= (n if b is None else b) <= n for (a, b), n in zip(axes, shape, strict=False)
    )
    if not fits:
        with pytest.raises(ShapeError):
            resolve(part, shape)
        return
    expected = full[tuple(slice(a, b) for a, b in axes)]
    found = resolve(part, shape)
    if found is None:
        assert expected.shape == full.shape
        return
    assert found.shape == expected.shape
    assert found.numel == expected.size
    cut = full[tuple(slice(a, b) for a, b in found.bounds)]
    assert np.array_equal(cut, expected)
    assert resolve(parse(found.text), shape) == found  # the canonical text reads back


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0:9", "axis 0 takes start:stop with 0 <= start <= stop <= 8; received 0:9"),
        ("4:2", "stop 2 < start 4 on axis 0"),
        (":,:,:", "names 3 axes; shape [8, 6] has 2"),
        (":,2:7", "axis 1 takes start:stop with 0 <= start <= stop <= 6; received 2:7"),
    ],
)
def test_a_slice_that_does_not_fit_says_why(text: str, message: str) -> None:
    with pytest.raises(ShapeError, match=re.escape(message)):
        resolve(parse(text), (8, 6))


def test_the_whole_tensor_is_no_slice() -> None:
    assert resolve(parse(":,0:6"), (8, 6)) is None
    assert resolve(Shard(1, 0, 1), (8, 6)) is None
    assert resolve(parse(""), ()) is None
    assert resolve(parse("2:3"), (8, 6)) == Slice(((2, 3), (0, 6)))


@given(st.integers(0, 40), st.integers(1, 12), st.integers(0, 14), st.integers(-2, 1))
def test_a_shard_is_torch_chunk(size: int, count: int, index: int, dim: int) -> None:
    """Uneven sizes, fewer pieces than asked, empty axes: torch.chunk's own pieces."""
    shape = (size, 3) if dim in (0, -2) else (3, size)
    full = torch.arange(int(np.prod(shape))).reshape(shape)
    chunks = torch.chunk(full, count, dim)
    assert pieces(size, count) == len(chunks)
    if index >= len(chunks):
        with pytest.raises(ShapeError, match=f"makes {len(chunks)} pieces"):
            resolve(Shard(dim, index, count), shape)
        return
    found = resolve(Shard(dim, index, count), shape)
    bounds = found.bounds if found is not None else tuple((0, n) for n in shape)
    cut = full[tuple(slice(a, b) for a, b in bounds)]
    assert torch.equal(cut, chunks[index])


@pytest.mark.parametrize(
    ("shard", "shape", "message"),
    [
        (Shard(2, 0, 2), (4, 4), r"shard dim 2 is outside shape \[4, 4\] \(rank 2; dims -2 … 1\)"),
        (Shard(0, 0, 2), (), "a rank-0 tensor has no axis"),
        (Shard(0, 3, 4), (6,), "torch.chunk of 6 into 4 makes 3 pieces .* received index 3"),
    ],
)
def test_a_shard_that_does_not_fit_says_why(
    shard: Shard, shape: tuple[int, ...], message: str
) -> None:
    with pytest.raises(ShapeError, match=message):
        resolve(shard, shape)


def test_the_query_form_of_a_shard() -> None:
    assert parse_shard("1:0:8") == Shard(1, 0, 8)
    assert parse_shard("-1:2:3") == Shard(-1, 2, 3)
    assert Shard(-1, 2, 3).text == "-1:2:3"
    for bad in ("1:0", "a:b:c", " 1:0:8", "1:-1:8"):
        with pytest.raises(ShapeError, match="is not dim:index:count"):
            parse_shard(bad)


@given(st.integers(0, 40), st.integers(1, 12))
def test_a_shard_is_dtensors_local_piece_and_the_ranks_past_it_hold_none(
    size: int, count: int
) -> None:
    """DTensor's Shard(d) gives rank r torch.chunk's piece r, and the ranks past the pieces an
    empty tensor (torch/distributed/tensor/placement_types.py, torch 2.13): docs/shards.md."""
    from torch.distributed.tensor.placement_types import Shard as DTensorShard

    for rank in range(count):
        length, offset = DTensorShard.local_shard_size_and_offset(size, count, rank)
        if rank < pieces(size, count):
            whole = (offset, length) == (0, size)  # the only piece: the whole tensor
            expected = None if whole else Slice(((offset, offset + length), (0, 2)))
            assert resolve(Shard(0, rank, count), (size, 2)) == expected
        else:
            assert length == 0


def test_a_start_beyond_the_axis_is_out_of_the_shape_not_backwards() -> None:
    with pytest.raises(ShapeError, match=re.escape("stop <= 2; received 4:2")):
        resolve(parse("4:"), (2,))
