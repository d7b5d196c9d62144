"""Checking a download against the server's `Repr-Digest` (RFC 9530): the SHA-256 of the whole
representation, which a splice or a flipped byte cannot match.

Content-Length and the ETag (a hash of the request, not of the bytes) pass a body that a proxy
spliced from two slices, or a resume that appended the right tail to a shifted head; a digest
of the bytes received does not.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import threading

import httpx

from .errors import IntegrityError

ALGORITHM = "sha-256"
WANT = {"Want-Repr-Digest": f"{ALGORITHM}=10"}  # RFC 9530 §4: sha-256 only, and wanted
log = logging.getLogger("weightgen.client")


def field(digest: bytes) -> str:
    """A digest as RFC 9530 writes it: `sha-256=:<base64>:`."""
    return f"{ALGORITHM}=:{base64.b64encode(digest).decode('ascii')}:"


def parse(value: str | None) -> bytes | None:
    """The sha-256 member of a `Repr-Digest` field; None if absent or not a 32-byte sequence
    (other algorithms are ignored, as RFC 9530 asks)."""
    for member in (value or "").split(","):
        name, sep, rest = member.partition("=")
        item = rest.split(";", 1)[0].strip()  # parameters, if any, are not ours to read
        if name.strip().lower() != ALGORITHM or not sep or len(item) < 2:
            continue
        if not (item[0] == item[-1] == ":"):
            return None
        try:
            raw = base64.b64decode(item[1:-1], validate=True)
        except (binascii.Error, ValueError):
            return None
        return raw if len(raw) == hashlib.sha256().digest_size else None
    return None


class Seen:
    """The `Repr-Digest` that the responses of one download carried: they must all agree (the
    parts of a parallel or resumed download are one representation)."""

    def __init__(self) -> None:
        self.digest: bytes | None = None
        self._lock = threading.Lock()  # parts arrive from several threads

    def add(self, response: httpx.Response) -> None:
        got = parse(response.headers.get("repr-digest"))
        if got is None:
            return
        with self._lock:
            if self.digest is None:
                self.digest = got
            elif got != self.digest:
                raise IntegrityError(
                    f"the parts carry different digests: {field(self.digest)} and {field(got)}",
                    expected=self.digest,
                    received=got,
                )


def check(url: str, expected: bytes | None, received: bytes) -> None:
    """Raise IntegrityError when the bytes received are not those the server digested. A server
    that gives no digest even when asked (an old one, or a proxy that drops the header) cannot
    be checked: that is logged, not refused."""
    if expected is None:
        log.warning("%s: no Repr-Digest from the server, the download is not verified", url)
        return
    if expected != received:
        raise IntegrityError(
            f"{url}: the bytes received have {field(received)}, "
            f"the server's Repr-Digest is {field(expected)}",
            expected=expected,
            received=received,
        )
