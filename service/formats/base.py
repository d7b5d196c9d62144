"""The writer seam: a format is a header before the tensor's little-endian bytes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from service.dtypes import DType


@dataclass(frozen=True)
class TensorInfo:
    """What a header describes; never an array, never a torch tensor."""

    name: str
    shape: tuple[int, ...]
    dtype: DType
    metadata: Mapping[str, str]


class Writer(Protocol):
    name: str
    media_type: str
    extension: str
    revision: int  # of its header's layout: a new one changes the bytes, so the ETags too

    def header(self, tensor: TensorInfo) -> bytes:
        """The bytes before the data; the data follows immediately, unpadded."""
        ...
