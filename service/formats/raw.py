"""Raw little-endian bytes in C order: no header; shape and dtype travel in HTTP headers."""

from __future__ import annotations

from service.formats.base import TensorInfo


class RawWriter:
    name = "raw"
    media_type = "application/octet-stream"
    extension = "bin"
    revision = 1

    def header(self, tensor: TensorInfo) -> bytes:  # noqa: ARG002 - raw has no header
        return b""
