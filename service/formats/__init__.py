"""Formats: a registry keyed by the API's names, and the media types they answer to."""

from __future__ import annotations

from collections.abc import Mapping

from service.dtypes import FormatName
from service.errors import UnsupportedCombination, one_of
from service.formats.base import TensorInfo, Writer
from service.formats.npy import NpyWriter
from service.formats.raw import RawWriter
from service.formats.safetensors import SafetensorsWriter

WRITERS: Mapping[FormatName, Writer] = {
    "npy": NpyWriter(),
    "safetensors": SafetensorsWriter(),
    "raw": RawWriter(),
}
BY_MEDIA_TYPE: Mapping[str, FormatName] = {w.media_type: name for name, w in WRITERS.items()}

__all__ = ["BY_MEDIA_TYPE", "WRITERS", "TensorInfo", "Writer", "writer"]


def writer(name: str) -> Writer:
    found = WRITERS.get(name)  # type: ignore[call-overload]
    if found is None:
        raise UnsupportedCombination(f"unknown format {name!r}; expected one of {one_of(WRITERS)}")
    return found  # type: ignore[no-any-return]
