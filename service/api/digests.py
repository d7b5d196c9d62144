"""Representation digests (RFC 9530 `Repr-Digest`): what a client checks the bytes against.

The ETag hashes the canonical request, so it cannot tell a spliced or flipped download from a
good one; a SHA-256 of the representation (header + data, exactly the bytes of a 200) can. The
bytes of a payload never change under its strong ETag, so a digest computed once is kept here:
by a whole 200 as it streams (service.api.stream), or on demand for `Want-Repr-Digest`.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable

import anyio

from service.api.metrics import Metrics
from service.api.stream import generate
from service.plan import Payload

ALGORITHM = "sha-256"
ENTRIES = 100_000  # tens of MB when full: 16-byte keys, 32-byte digests, the OrderedDict's links
_MEMBER = re.compile(r"\s*([a-z*][a-z0-9_.*-]*)\s*(?:=\s*(-?\d{1,15}))?\s*(?:;.*)?\s*")


def key(payload: Payload) -> bytes:
    """The ETag and the format; a weak payload (QR kinds, equal to rounding only) also names the
    engines and devices that made it, whose bytes may differ under the same tag."""
    where = ""
    if not payload.strong:
        where = ",".join(sorted({f"{type(p.engine).__name__}@{p.device}" for p in payload.plans}))
    return hashlib.sha256(f"{payload.etag} {payload.format} {where}".encode()).digest()[:16]


class Digests:
    """Known SHA-256 digests of representations, least recently used out beyond `entries`.
    Thread-safe: streams store from the event loop, on-demand digests from worker threads."""

    def __init__(self, entries: int = ENTRIES) -> None:
        self.entries = entries
        self._known: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.finishing: dict[bytes, anyio.Event] = {}  # by key; in the event loop only (no lock)

    def keeper(self, payload: Payload) -> Keeper:
        """Where a stream of the whole representation leaves the digest it computes."""
        return Keeper(self, payload)

    async def settled(self, payload: Payload) -> bytes | None:
        """The digest, once a stream that has produced every byte of the representation has
        hashed the last of them (at once when none is finishing): a request that wants it
        then waits milliseconds instead of generating the whole representation again."""
        event = self.finishing.get(key(payload))
        if event is not None:
            await event.wait()
        return self.get(payload)

    def __len__(self) -> int:
        return len(self._known)

    def get(self, payload: Payload) -> bytes | None:
        k = key(payload)
        with self._lock:
            found = self._known.get(k)
            if found is not None:
                self._known.move_to_end(k)
            return found

    def put(self, payload: Payload, digest: bytes) -> None:
        with self._lock:
            self._known[key(payload)] = digest
            self._known.move_to_end(key(payload))
            while len(self._known) > self.entries:
                self._known.popitem(last=False)


class Keeper:
    """A whole representation's stream and its digest: `finishing` once every byte has been
    produced (requests for the digest wait from then on), `done` with the digest (kept) or
    None (cut short: the waiters find none and compute it themselves)."""

    def __init__(self, store: Digests, payload: Payload) -> None:
        self.store, self.payload, self.key = store, payload, key(payload)
        self.event = anyio.Event()

    def finishing(self) -> None:
        self.store.finishing[self.key] = self.event

    def done(self, digest: bytes | None) -> None:
        if digest is not None:
            self.store.put(self.payload, digest)
        if self.store.finishing.get(self.key) is self.event:
            del self.store.finishing[self.key]
        self.event.set()


def field(digest: bytes) -> str:
    """The `Repr-Digest` value: an RFC 8941 dictionary, the digest as a byte sequence."""
    return f"{ALGORITHM}=:{base64.b64encode(digest).decode('ascii')}:"


def wanted(values: Iterable[str]) -> bool:
    """Whether `Want-Repr-Digest` (RFC 9530 §4) asks for sha-256: a weight of 1 to 10. Unknown
    algorithms, `sha-256=0` and members that are not `key=integer` ask for nothing; a header
    that does not parse is ignored (never an error), and a repeated key's last value counts."""
    weight = 0
    for member in ",".join(values).lower().split(","):
        match = _MEMBER.fullmatch(member)
        if match is not None and match[1] == ALGORITHM:
            weight = int(match[2]) if match[2] is not None else 0
    return 1 <= weight <= 10


def compute(payload: Payload, block: int, metrics: Metrics) -> bytes:
    """SHA-256 of the whole representation, generated block by block as a stream would be:
    O(block) memory whatever the size (run in a worker thread: it takes as long as a GET)."""
    hasher = hashlib.sha256()
    for piece in payload.spans(0, payload.content_length, block):
        hasher.update(
            piece if isinstance(piece, bytes) else generate(piece, metrics, payload.format)
        )
    return hasher.digest()
