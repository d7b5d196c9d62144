"""Output dtypes: sizes and how each file format names them. No numpy, no torch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast, get_args

from service.errors import UnsupportedCombination, one_of

DTypeName = Literal[
    "float32", "float64", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2", "int64"
]
FormatName = Literal["npy", "safetensors", "raw"]
DTYPE_NAMES: tuple[DTypeName, ...] = get_args(DTypeName)
FORMAT_NAMES: tuple[FormatName, ...] = get_args(FormatName)


@dataclass(frozen=True)
class DType:
    name: DTypeName
    itemsize: int
    words: int  # 32-bit generator words per element (float64 needs 53 bits)
    safetensors: str  # the dtype string of the safetensors header
    npy: str | None  # the numpy descr, None where .npy has no such type
    integer: bool = False  # holds only constant schemes (BatchNorm's num_batches_tracked)

    def formats(self) -> tuple[FormatName, ...]:
        return FORMAT_NAMES if self.npy else ("safetensors", "raw")

    @property
    def default_format(self) -> FormatName:
        """npy where numpy has the dtype, safetensors otherwise (the one place it is decided)."""
        return "npy" if self.npy else "safetensors"


DTYPES: Mapping[DTypeName, DType] = {
    "float32": DType("float32", 4, 1, "F32", "<f4"),
    "float64": DType("float64", 8, 2, "F64", "<f8"),
    "float16": DType("float16", 2, 1, "F16", "<f2"),
    "bfloat16": DType("bfloat16", 2, 1, "BF16", None),
    "float8_e4m3fn": DType("float8_e4m3fn", 1, 1, "F8_E4M3", None),
    "float8_e5m2": DType("float8_e5m2", 1, 1, "F8_E5M2", None),
    "int64": DType("int64", 8, 1, "I64", "<i8", integer=True),
}


def dtype(name: str, fmt: str | None = None) -> DType:
    """The dtype called `name`, checked against the format `fmt` when one is given."""
    found = DTYPES.get(cast(DTypeName, name))
    if found is None:
        raise UnsupportedCombination(
            f"unknown dtype {name!r}; expected one of {one_of(DTYPE_NAMES)}"
        )
    if fmt is not None and fmt not in found.formats():
        raise UnsupportedCombination(
            f"dtype {name} cannot be written as {fmt} (numpy's .npy has no {name}); "
            f"use format {' or '.join(found.formats())}"
        )
    return found
