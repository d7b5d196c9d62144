"""NumPy .npy v1.0: the header made by numpy.lib.format itself, data 64-byte aligned."""

from __future__ import annotations

import io

from numpy.lib import format as npformat

from service.errors import UnsupportedCombination
from service.formats.base import TensorInfo


class NpyWriter:
    name = "npy"
    media_type = "application/x-npy"
    extension = "npy"
    revision = 1

    def header(self, tensor: TensorInfo) -> bytes:
        if tensor.dtype.npy is None:
            raise UnsupportedCombination(
                f"dtype {tensor.dtype.name} has no .npy type; use format safetensors or raw"
            )
        out = io.BytesIO()
        npformat.write_array_header_1_0(
            out, {"descr": tensor.dtype.npy, "fortran_order": False, "shape": tensor.shape}
        )
        return out.getvalue()
