"""service.formats: headers equal to the reference writers', round trips via reference readers."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest
import safetensors.numpy
import safetensors.torch
import torch
from hypothesis import given
from hypothesis import strategies as st

from service.dtypes import DTYPES
from service.errors import UnsupportedCombination
from service.formats import WRITERS, TensorInfo

shapes = st.lists(st.integers(0, 7), min_size=0, max_size=8).map(tuple)


@given(shapes, st.sampled_from(["float32", "float64", "float16"]))
def test_npy_header_is_numpys_own(shape: tuple[int, ...], dtype: str) -> None:
    array = np.zeros(shape, dtype=DTYPES[dtype].npy)  # type: ignore[index]
    out = io.BytesIO()
    np.save(out, array)
    header = WRITERS["npy"].header(TensorInfo("w", shape, DTYPES[dtype], {}))  # type: ignore[index]
    assert out.getvalue() == header + array.tobytes()
    assert len(header) % 64 == 0


@given(
    shapes,
    st.sampled_from(sorted(DTYPES)),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)
def test_safetensors_header_is_read_by_the_reference_reader(
    shape: tuple[int, ...], dtype: str, metadata: dict[str, str]
) -> None:
    info = TensorInfo("layer.0.weight", shape, DTYPES[dtype], metadata)  # type: ignore[index]
    header = WRITERS["safetensors"].header(info)
    (n,) = struct.unpack("<Q", header[:8])
    assert len(header) == 8 + n
    assert n % 8 == 0
    nbytes = int(np.prod(shape)) * DTYPES[dtype].itemsize  # type: ignore[index]
    parsed = json.loads(header[8:])
    assert parsed["layer.0.weight"]["data_offsets"] == [0, nbytes]
    if dtype in ("float32", "float64", "float16"):
        loaded = safetensors.numpy.load(header + bytes(nbytes))
        assert loaded["layer.0.weight"].shape == shape
    tensor = safetensors.torch.load(header + bytes(nbytes))["layer.0.weight"]
    assert tensor.dtype == getattr(torch, dtype)  # every dtype tag, bfloat16 and float8 too
    assert tuple(tensor.shape) == shape


def test_safetensors_metadata_comes_first_and_is_strings() -> None:
    info = TensorInfo("w", (2, 3), DTYPES["bfloat16"], {"seed": "7", "scheme": "he_normal"})
    header = WRITERS["safetensors"].header(info)
    parsed = json.loads(header[8:])
    assert next(iter(parsed)) == "__metadata__"
    assert parsed["__metadata__"] == {"format": "pt", "seed": "7", "scheme": "he_normal"}
    assert parsed["w"] == {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 12]}


def test_raw_has_no_header_and_npy_refuses_bfloat16() -> None:
    assert WRITERS["raw"].header(TensorInfo("w", (2,), DTYPES["float32"], {})) == b""
    with pytest.raises(UnsupportedCombination, match=r"no \.npy type"):
        WRITERS["npy"].header(TensorInfo("w", (2,), DTYPES["bfloat16"], {}))
