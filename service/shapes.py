"""Shapes: the one definition of a tensor's shape, its element count and the served ranks."""

from __future__ import annotations

import math
from typing import TypeAlias

Shape: TypeAlias = tuple[int, ...]
MAX_RANK = 8
MAX_DIM = 2**40  # one dimension; the element and byte limits of a deployment bind far sooner


def numel(shape: Shape) -> int:
    """Elements of a tensor of `shape` (1 for rank 0, as numpy and torch count)."""
    return math.prod(shape)
