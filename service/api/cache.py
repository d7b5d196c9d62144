"""Planned URLs: a GET whose answer is a pure function of its URL and `Accept` (the seed pinned,
in the query or in a bundle's manifest; no `describe`) keeps its plan and headers here, and a
repeated URL is answered from them by `service.api.fastlane` before routing
(docs/decisions.md, "Plan cache and the fast lane")."""

from __future__ import annotations

from collections import OrderedDict

from starlette.types import Scope

from service.api.middleware import header
from service.plan import Payload

Key = tuple[str, str, str]  # path, query string as sent, Accept


PER_TENSOR = 4096  # bytes a plan holds besides its texts (spec, scheme, dicts): ~5 KB measured


def cost(key: Key, payload: Payload, headers: dict[str, str]) -> int:
    """Bytes an entry holds, estimated: a constant per tensor, and its texts four times over
    (the query and headers as strings, and again inside the plan's dicts and header)."""
    texts = sum(map(len, key)) + sum(len(k) + len(v) for k, v in headers.items())
    return PER_TENSOR * len(payload.plans) + 4 * (texts + len(payload.header))


class PlanCache:
    """Payloads and headers by URL and Accept, least recently used out, within a byte budget
    (WEIGHTGEN_PLAN_CACHE_BYTES, estimated by `cost`; the default 32 MiB holds some 4,000 small
    tensors' plans; an entry over a quarter of it, such as a bundle of more than ~2,000 members,
    is not kept): long queries (`zero_rows`) and big bundles count for what they hold."""

    def __init__(self, budget: int = 32 << 20) -> None:
        self.budget = budget
        self.held = 0
        self.entries: OrderedDict[Key, tuple[Payload, dict[str, str], int]] = OrderedDict()

    @staticmethod
    def key(scope: Scope) -> Key:
        """A describe=true URL has its own key, and is never put: its JSON never comes from here."""
        query: bytes = scope["query_string"]
        return scope["path"], query.decode("latin-1"), header(scope, b"accept") or ""

    def get(self, key: Key | None) -> tuple[Payload, dict[str, str]] | None:
        if key is None or key not in self.entries:
            return None
        self.entries.move_to_end(key)
        payload, headers, _ = self.entries[key]
        return payload, headers

    def put(self, key: Key | None, payload: Payload, headers: dict[str, str]) -> None:
        if key is None or payload.seed_source != "request" or key in self.entries:
            return  # a seed the service drew is a new answer each time
        size = cost(key, payload, headers)
        if size > self.budget // 4:  # one entry never pushes out most of the others
            return
        self.entries[key] = (payload, headers, size)
        self.held += size
        while self.held > self.budget:
            _, (_, _, old) = self.entries.popitem(last=False)
            self.held -= old
