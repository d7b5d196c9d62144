"""A described resource and the byte ranges it is fetched in.

Every fetch goes through the resource's GET URL, so a part can resume with `Range` + `If-Range`
after a dropped connection, and a body can be split into parallel ranges.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from .errors import IntegrityError


@dataclass(frozen=True)
class Resource:
    """What describe says about an answer: its GET URL, length and validator."""

    url: str
    length: int
    etag: str
    info: Mapping[str, Any]


def part_headers(r: Resource, at: int, stop: int) -> dict[str, str]:
    """Range for bytes [at, stop) and, for a strong ETag, If-Range so a changed resource
    answers 200 instead of splicing two versions."""
    headers = {"If-Range": r.etag} if r.etag and not r.etag.startswith("W/") else {}
    if at > 0 or stop < r.length:
        headers["Range"] = f"bytes={at}-{stop - 1}"
    return headers


def same_etag(response: httpx.Response, r: Resource) -> None:
    """An answer with an ETag other than the described one is about another representation."""
    etag = response.headers.get("etag", "")
    if etag != r.etag:
        raise IntegrityError(f"ETag changed from {r.etag} to {etag}: not the resource described")


def part_start(response: httpx.Response, r: Resource, at: int) -> int:
    """Where the body of a part's response starts: `at` for a 206, 0 when the server sent the
    whole representation; an ETag other than the described one, or a whole representation of
    another length, is an IntegrityError."""
    same_etag(response, r)
    if response.status_code != 200:
        return at
    length = response.headers.get("content-length")
    if length is not None and length.strip().isdigit() and int(length) != r.length:
        raise IntegrityError(
            f"the whole representation came with {int(length)} bytes; {r.length} were described"
        )
    return 0


def split(length: int, parts: int) -> list[tuple[int, int]]:
    """[start, stop) byte ranges covering [0, length) in `parts` nearly equal pieces."""
    parts = max(1, min(parts, length)) if length else 1
    edges = [length * i // parts for i in range(parts + 1)]
    return [(edges[i], edges[i + 1]) for i in range(parts)]


class Sink(Protocol):
    """Where a download's bytes go: `out[start:stop] = data` (a memoryview, or a file); `data`
    is valid during the call only. A sink may also take them straight from the response with
    `fill(at, stop, readinto, advance)` (files.FileSink)."""

    def __setitem__(self, where: slice, data: memoryview, /) -> None: ...


def receive(
    out: Sink,
    at: int,
    stop: int,
    readinto: Callable[[memoryview], int],
    advance: Callable[[int], None],
) -> int:
    """Bytes [at, stop) of a response body (`readinto`, wire.READINTO) into `out`: straight
    into a memoryview or a sink that can `fill`, else through one reused buffer. Where the next
    byte goes: `stop`, or less if the body ended first."""
    fill = getattr(out, "fill", None)
    if fill is not None:
        got: int = fill(at, stop, readinto, advance)
        return got
    buffer = out if isinstance(out, memoryview) else memoryview(bytearray(min(stop - at, 1 << 20)))
    while at < stop:
        into = buffer[at:stop] if buffer is out else buffer[: stop - at]
        n = readinto(into)
        if n == 0:
            break
        if buffer is not out:
            out[at : at + n] = into[:n]
        at += n
        advance(n)
    return at
