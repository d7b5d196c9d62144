"""Admission of bounded work: at most `limit` at once; a request waits a little for a slot
(the playground sends five analyses together), then gets 503 with Retry-After."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from service.errors import Overloaded


class Admission:
    def __init__(self, limit: int, wait: float, what: str) -> None:
        self.limit, self.wait, self.what = limit, wait, what
        self._slots: anyio.Semaphore | None = None

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._slots is None:  # made on first use, inside the event loop
            self._slots = anyio.Semaphore(self.limit)
        with anyio.move_on_after(self.wait) as waited:
            await self._slots.acquire()
        if waited.cancelled_caught:
            raise Overloaded(
                f"{self.limit} {self.what} are being computed and none finished within "
                f"{self.wait:g} s; retry"
            )
        try:
            yield
        finally:
            self._slots.release()
