"""When the client tries a request again, and how long it waits first."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import httpx

from .errors import UnreachableError, problem

RETRY_STATUSES = frozenset({502, 503, 504})


def delay(attempt: int, backoff: float, response: httpx.Response | None) -> float:
    """Seconds before the next attempt: `backoff·2^attempt`, or the server's longer
    `Retry-After`, at most a minute."""
    wait: float = backoff * 2**attempt
    if response is not None:
        with contextlib.suppress(ValueError):
            wait = max(wait, float(response.headers.get("retry-after", 0)))
    return min(wait, 60.0)


@dataclass(frozen=True)
class Retry:
    """When to try again: connection errors and 502/503/504, `retries` times, waiting
    `backoff·2^attempt` seconds or the server's longer `Retry-After`."""

    retries: int
    backoff: float
    base_url: str

    def settle(self, attempt: int, outcome: httpx.Response | Exception) -> httpx.Response | float:
        """The final response (a problem raised as ProblemError), or seconds to wait first."""
        last = attempt >= self.retries
        if isinstance(outcome, Exception):
            if last:
                raise UnreachableError(f"cannot reach {self.base_url}: {outcome}") from outcome
            return delay(attempt, self.backoff, None)
        if outcome.status_code in RETRY_STATUSES and not last:
            return delay(attempt, self.backoff, outcome)
        if outcome.status_code >= 400:
            raise problem(outcome)
        return outcome
