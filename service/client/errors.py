"""The errors of the Python client (`service.client`), all `ClientError`s.

These are the client's own, apart from the service's domain errors (`service.errors`): the
client runs without the server's code, and sees a refusal only as the problem (RFC 9457) it
was answered with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx


class ClientError(Exception):
    """Base of the client's errors."""


class ProblemError(ClientError):
    """The server answered with a problem (RFC 9457); `problem` holds its fields."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem = dict(problem)
        self.title = str(problem.get("title", "error"))
        self.detail = str(problem.get("detail", ""))
        super().__init__(f"{status} {self.title}: {self.detail}")


class UnreachableError(ClientError):
    """The server could not be reached (after the retries)."""


class IntegrityError(ClientError):
    """The bytes received do not add up: wrong length, the resource changed (ETag), or their
    SHA-256 is not the server's `Repr-Digest` (then `expected` and `received` hold both)."""

    def __init__(
        self, message: str, *, expected: bytes | None = None, received: bytes | None = None
    ) -> None:
        super().__init__(message)
        self.expected, self.received = expected, received


def problem(response: httpx.Response) -> ProblemError:
    """The error of a refused request; a proxy in front of the service may answer with a body
    that is not a problem at all, so that falls back to the status line and the text."""
    try:
        body = response.json()
    except ValueError:
        body = {"title": response.reason_phrase, "detail": response.text[:200]}
    if not isinstance(body, dict):
        body = {"title": response.reason_phrase, "detail": str(body)[:200]}
    return ProblemError(response.status_code, body)
