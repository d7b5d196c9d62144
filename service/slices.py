"""Parts of a tensor: a `slice` (numpy's basic slicing of the leading axes, `start:stop` per axis,
either end omittable, no negatives, no steps) or a `shard` (piece `index` of `torch.chunk(full,
count, dim)`), resolved against the full shape into one `Slice`: a [start, stop) on every axis.

A part of a tensor is exactly those elements of the full tensor, the full tensor's law and
numbers unchanged: element i of the full tensor draws word i whatever else is produced
(docs/shards.md). Pure: the standard library only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property

from service.errors import ShapeError

Bound = tuple[int | None, int | None]  # start, stop as written; None: the axis's end
_AXIS = re.compile(r"([0-9]{0,19})\s*:\s*([0-9]{0,19})")
_SHARD = re.compile(r"(-?[0-9]{1,19}):([0-9]{1,19}):([0-9]{1,19})")
ALLOWED = (
    "start:stop per leading axis, either end omittable, no negatives or steps (e.g. 0:4096,2048:)"
)


@dataclass(frozen=True)
class Bounds:
    """A `slice` as a client wrote it, for its leading axes (the others whole)."""

    axes: tuple[Bound, ...]

    @property
    def text(self) -> str:
        return ",".join(f"{_end(a)}:{_end(b)}" for a, b in self.axes)


@dataclass(frozen=True)
class Shard:
    """torch.chunk(full, count, dim)[index]; a negative dim counts from the last, as torch's."""

    dim: int
    index: int
    count: int

    @property
    def text(self) -> str:
        return f"{self.dim}:{self.index}:{self.count}"


Part = Bounds | Shard


@dataclass(frozen=True)
class Slice:
    """A resolved part: [start, stop) on every axis of the full tensor, never all of it."""

    bounds: tuple[tuple[int, int], ...]

    @cached_property
    def shape(self) -> tuple[int, ...]:
        return tuple(b - a for a, b in self.bounds)

    @cached_property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def text(self) -> str:
        """The canonical form: every axis, both ends (what the ETag and the URL hold)."""
        return ",".join(f"{a}:{b}" for a, b in self.bounds)


def _end(value: int | None) -> str:
    return "" if value is None else str(value)


def parse(text: str) -> Bounds:
    """`0:4096,2048:4096` → Bounds; `:4`, `2:` and `:` leave an end open; "" names no axis."""
    items = [item.strip() for item in text.split(",")] if text.strip() else []
    axes: list[Bound] = []
    for item in items:
        found = _AXIS.fullmatch(item)
        if found is None:
            raise ShapeError(f"slice {text!r} is not {ALLOWED}; received {item!r} for an axis")
        start, stop = (int(v) if v else None for v in found.groups())
        axes.append((start, stop))
    return Bounds(tuple(axes))


def parse_shard(text: str) -> Shard:
    """The query form `dim:index:count` (`1:0:8`) of a shard."""
    found = _SHARD.fullmatch(text)
    if found is None:
        raise ShapeError(
            f"shard {text!r} is not dim:index:count (e.g. 1:0:8: the first eighth of the columns)"
        )
    dim, index, count = (int(v) for v in found.groups())
    return Shard(dim, index, count)


def resolve(part: Part | None, shape: tuple[int, ...]) -> Slice | None:
    """The slice of `shape` that `part` names; None for the whole tensor (then the answer is the
    whole tensor's, bytes and ETag alike). A part that does not fit raises ShapeError."""
    if part is None:
        return None
    bounds = _bounds(part, shape) if isinstance(part, Bounds) else _shard(part, shape)
    if all(a == 0 and b == n for (a, b), n in zip(bounds, shape, strict=True)):
        return None
    return Slice(bounds)


def _bounds(part: Bounds, shape: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    if len(part.axes) > len(shape):
        raise ShapeError(
            f"slice {part.text!r} names {len(part.axes)} axes; shape {list(shape)} has "
            f"{len(shape)} (name at most that many, the others are whole)"
        )
    out = []
    for axis, n in enumerate(shape):
        start, stop = part.axes[axis] if axis < len(part.axes) else (None, None)
        a, b = 0 if start is None else start, n if stop is None else stop
        if max(a, b) > n:
            raise ShapeError(
                f"slice {part.text!r} does not fit shape {list(shape)}: axis {axis} takes "
                f"start:stop with 0 <= start <= stop <= {n}; received {a}:{b}"
            )
        if b < a:
            raise ShapeError(
                f"slice {part.text!r}: stop {b} < start {a} on axis {axis}; a slice goes forward "
                "(start <= stop, no steps)"
            )
        out.append((a, b))
    return tuple(out)


def pieces(size: int, count: int) -> int:
    """How many pieces torch.chunk makes of an axis of `size`: ceil(size/count) elements each,
    the last smaller, fewer than `count` where they run out; `count` empty ones when size is 0
    (aten's `chunk` then calls split_with_sizes so that the number of pieces is kept)."""
    if size == 0:
        return count
    step = -(-size // count)
    return -(-size // step)


def placed(part: Shard, shape: tuple[int, ...]) -> Part:
    """`part` as DTensor's `Shard(dim)` places rank `index` of `count` (FSDP2, tensor parallel):
    torch.chunk's piece, or for a rank past the pieces torch.chunk makes, an empty piece at the
    end of the axis (`fill_empty_tensor_to_shards`, torch/distributed/tensor/placement_types.py).
    What no rank of `count` could hold is left to `resolve` to refuse."""
    rank = len(shape)
    if not (-rank <= part.dim < rank and 0 <= part.index < part.count):
        return part
    dim = part.dim % rank
    if part.index < pieces(shape[dim], part.count):
        return part
    size = shape[dim]
    return Bounds(tuple((size, size) if i == dim else (None, None) for i in range(dim + 1)))


def piece(size: int, count: int, index: int) -> tuple[int, int]:
    """[start, stop) of torch.chunk's piece `index` (< pieces(size, count)) along the axis."""
    step = -(-size // count)
    return min(index * step, size), min((index + 1) * step, size)


def _shard(part: Shard, shape: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    rank = len(shape)
    if not -rank <= part.dim < rank:
        allowed = f"-{rank} … {rank - 1}" if rank else "none: a rank-0 tensor has no axis"
        raise ShapeError(
            f"shard dim {part.dim} is outside shape {list(shape)} (rank {rank}; dims {allowed})"
        )
    if part.count < 1:
        raise ShapeError(f"shard count must be at least 1; received {part.count}")
    dim = part.dim % rank
    made = pieces(shape[dim], part.count)
    if not 0 <= part.index < made:
        raise ShapeError(
            f"shard {part.text!r} of shape {list(shape)}: torch.chunk of {shape[dim]} into "
            f"{part.count} makes {made} pieces (index 0 … {made - 1}); received index {part.index}"
        )
    cut = piece(shape[dim], part.count, part.index)
    return tuple(cut if i == dim else (0, n) for i, n in enumerate(shape))
