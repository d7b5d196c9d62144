"""safetensors: u64 little-endian header length, JSON header padded with spaces to 8 bytes.

`__metadata__` comes first and holds strings only, as the format requires. Several tensors are
ordered as the reference writer orders them (`prepare()` in safetensors/src/tensor.rs): by dtype
alignment, largest first, then by name; offsets follow contiguously, so each tensor is aligned.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

from service.dtypes import DType
from service.formats.base import TensorInfo

ALIGN = 8  # the reference writer pads the header so the data starts 8-aligned
# position in the reference `Dtype` enum, which is declared in increasing alignment order
DTYPE_RANK = {"F8_E5M2": 6, "F8_E4M3": 7, "F16": 13, "BF16": 14, "F32": 17, "F64": 19, "I64": 20}


@dataclass(frozen=True)
class Entry:
    name: str
    shape: tuple[int, ...]
    dtype: DType

    @cached_property
    def nbytes(self) -> int:
        n = self.dtype.itemsize
        for d in self.shape:
            n *= d
        return n


def order(entries: Sequence[Entry]) -> list[Entry]:
    """The reference writer's order: dtype alignment descending, then name."""
    return sorted(entries, key=lambda e: (-DTYPE_RANK[e.dtype.safetensors], e.name))


def header(entries: Sequence[Entry], metadata: Mapping[str, str]) -> bytes:
    """The header of `entries`, laid out in the order given (see `order`)."""
    body: dict[str, object] = {}
    if metadata:
        body["__metadata__"] = dict(metadata)
    offset = 0
    for e in entries:
        body[e.name] = {
            "dtype": e.dtype.safetensors,
            "shape": list(e.shape),
            "data_offsets": [offset, offset + e.nbytes],
        }
        offset += e.nbytes
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % ALIGN)
    return struct.pack("<Q", len(text)) + text


class SafetensorsWriter:
    name = "safetensors"
    media_type = "application/vnd.safetensors"
    extension = "safetensors"
    revision = 2  # 2: `format: pt` in `__metadata__`, as bundles and transformers' files have

    def header(self, tensor: TensorInfo) -> bytes:
        metadata = {"format": "pt", **tensor.metadata}
        return header([Entry(tensor.name, tensor.shape, tensor.dtype)], metadata)
