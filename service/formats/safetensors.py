"""safetensors: u64 little-endian header length, JSON header padded with spaces to 8 bytes.

`__metadata__` comes first and holds strings only, as the format requires.
"""

from __future__ import annotations

import json
import struct

from service.formats.base import TensorInfo

ALIGN = 8  # the reference writer pads the header so the data starts 8-aligned


class SafetensorsWriter:
    name = "safetensors"
    media_type = "application/vnd.safetensors"
    extension = "safetensors"

    def header(self, tensor: TensorInfo) -> bytes:
        nbytes = tensor.dtype.itemsize
        for d in tensor.shape:
            nbytes *= d
        entries: dict[str, object] = {}
        if tensor.metadata:
            entries["__metadata__"] = dict(tensor.metadata)
        entries[tensor.name] = {
            "dtype": tensor.dtype.safetensors,
            "shape": list(tensor.shape),
            "data_offsets": [0, nbytes],
        }
        text = json.dumps(entries, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        text += b" " * (-len(text) % ALIGN)
        return struct.pack("<Q", len(text)) + text
