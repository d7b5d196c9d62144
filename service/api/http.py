"""HTTP semantics of a tensor resource: content negotiation, validators, byte ranges.

RFC 9110: §12 (negotiation), §13.1.2 If-None-Match (weak comparison), §13.1.5 If-Range (strong
comparison), §14 ranges. Pure functions of header strings; the routes apply them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.dtypes import FormatName
from service.formats import BY_MEDIA_TYPE, WRITERS

WILDCARDS = ("*/*", "application/*")
POSITION = re.compile(r"[0-9]{1,19}")
QVALUE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")  # not nan, inf, 1e3, 0.0001 or 2


class NotAcceptable(Exception):
    """No format the service writes matches the Accept header (406)."""


class PreconditionFailed(Exception):
    """An unsafe request's If-None-Match matches the answer's ETag (412)."""


class RangeNotSatisfiable(Exception):
    """A Range none of whose bytes lie within the answer's `length` (416)."""

    def __init__(self, header: str | None, length: int) -> None:
        super().__init__(f"Range {header!r} is outside the answer's {length} bytes")
        self.length = length


def negotiate(
    accept: str | None, default: FormatName, only: FormatName | None = None
) -> FormatName:
    """The format for an Accept header: the highest q among the types we write (or just `only`);
    ties keep the order of the header; `*/*` and `application/*` mean `default`."""
    if not accept:
        return default
    offers: list[tuple[str, float]] = []
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":  # RFC 9110 §12.4.2; anything else weighs nothing
                q = float(value) if QVALUE.fullmatch(value.strip()) else 0.0
        offers.append((media.lower(), q))
    refused = {BY_MEDIA_TYPE[m] for m, q in offers if q <= 0 and m in BY_MEDIA_TYPE}
    allowed = [f for f in ([only] if only else [default, *WRITERS]) if f not in refused]
    best: tuple[float, int, FormatName] | None = None
    for position, (media, q) in enumerate(offers):
        wildcard = allowed[0] if allowed else None
        fmt = wildcard if media in WILDCARDS else BY_MEDIA_TYPE.get(media)
        if fmt is None or q <= 0 or (only is not None and fmt != only):
            continue
        if best is None or q > best[0]:
            best = (q, position, fmt)
    if best is None:
        offered = [WRITERS[only]] if only else list(WRITERS.values())
        raise NotAcceptable(
            f"Accept {accept!r} matches no format; this resource is available as "
            + ", ".join(w.media_type for w in offered)
        )
    return best[2]


def _tags(header: str) -> list[str]:
    return [t.strip() for t in header.split(",") if t.strip()]


def _opaque(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag


def none_match(if_none_match: str | None, etag: str) -> bool:
    """True when If-None-Match matches `etag` (weak comparison), i.e. the client has it."""
    if if_none_match is None:
        return False
    tags = _tags(if_none_match)
    return "*" in tags or any(_opaque(t) == _opaque(etag) for t in tags)


def range_applies(if_range: str | None, etag: str) -> bool:
    """If-Range: the range is honoured only when the strong validator matches exactly."""
    if if_range is None:
        return True
    return not etag.startswith("W/") and if_range.strip() == etag


@dataclass(frozen=True)
class ByteRange:
    start: int
    stop: int  # exclusive


class Unsatisfiable(Exception):
    """A syntactically valid Range none of whose ranges overlaps the representation."""


def parse_range(header: str | None, length: int) -> ByteRange | None:
    """The single byte range asked for, or None to send the whole representation.

    Invalid syntax, another unit, or more than one range: None (RFC 9110 §14.2 lets a server
    ignore Range; several ranges get the full 200, see docs/http.md). A range that starts at
    or beyond the end, or an empty suffix: Unsatisfiable (416).
    """
    if header is None:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first or last):
        return None
    if not all(p == "" or POSITION.fullmatch(p) for p in (first, last)):
        return None  # not ASCII digits, or more than 19 of them: ignore the header
    if first == "":  # suffix: the last N bytes
        n = int(last)
        if n == 0 or length == 0:
            raise Unsatisfiable
        return ByteRange(max(length - n, 0), length)
    start = int(first)
    stop = length if last == "" else min(int(last) + 1, length)
    if last != "" and int(last) < start:
        return None  # invalid: last < first
    if start >= length:
        raise Unsatisfiable
    return ByteRange(start, stop)
