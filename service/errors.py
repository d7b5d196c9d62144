"""Domain errors. They carry no HTTP status; `service.api.problems` maps them.

WeightgenError
├── InvalidRequest          the request cannot be served as asked
│   ├── ShapeError          rank / size rules of the chosen convention or scheme
│   ├── SchemeError         unknown scheme, mode, distribution; parameter not accepted
│   ├── UnsupportedCombination   dtype x format, device x engine, ...
│   └── LimitExceeded       more elements or bytes than this deployment serves
└── Unavailable             the deployment cannot serve it now (device absent)
    └── Overloaded          every generation slot is taken
"""

from __future__ import annotations

from collections.abc import Iterable


class WeightgenError(Exception):
    """Base of every error the service raises on purpose."""

    slug = "error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidRequest(WeightgenError):
    slug = "invalid-request"


class ShapeError(InvalidRequest):
    slug = "invalid-shape"


class SchemeError(InvalidRequest):
    slug = "invalid-scheme"


class UnsupportedCombination(InvalidRequest):
    slug = "unsupported-combination"


class LimitExceeded(InvalidRequest):
    slug = "limit-exceeded"


class Unavailable(WeightgenError):
    slug = "unavailable"

    def __init__(self, detail: str, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Overloaded(Unavailable):
    slug = "overloaded"


def one_of(values: Iterable[object]) -> str:
    """`a, b, c` for an error message listing what is allowed."""
    return ", ".join(str(v) for v in values)


def clip(text: str, limit: int = 80) -> str:
    """`text` cut to `limit` characters with '…': input echoed in a message stays small
    whatever size the client sent (a 900 KB scheme name is not sent back whole)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
