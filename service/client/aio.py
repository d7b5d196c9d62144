"""The asynchronous client: describe and fetch, parallel ranges with gather, checked as the
synchronous `Client` checks them."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

import httpx

from .bodies import tensor_body
from .errors import IntegrityError, UnreachableError
from .ranges import Resource, part_headers, part_start, same_etag, split
from .retry import Retry, delay
from .verify import WANT, Seen, check, parse


class AsyncClient:
    """The asynchronous twin of `Client` (describe, fetch; parallel ranges with gather)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 4,
        backoff: float = 0.25,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=timeout, transport=transport
        )
        self._policy = Retry(retries, backoff, base_url)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self._policy.retries + 1):
            try:
                response = await self.http.request(method, url, **kwargs)
                outcome = self._policy.settle(attempt, response)
            except httpx.TransportError as exc:
                outcome = self._policy.settle(attempt, exc)
            if isinstance(outcome, httpx.Response):
                return outcome
            await asyncio.sleep(outcome)
        raise AssertionError("unreachable")  # settle() returns or raises on the last attempt

    async def describe(self, scheme: str, shape: Sequence[int], **params: Any) -> dict[str, Any]:
        response = await self._send(
            "POST", "/v1/tensors/describe", json=tensor_body(scheme, shape, params)
        )
        data: dict[str, Any] = response.json()
        return data

    async def resource(self, scheme: str, shape: Sequence[int], **params: Any) -> Resource:
        d = await self.describe(scheme, shape, **params)
        return Resource(d["url"], d["content_length"], d["etag"], d)

    async def fetch(self, r: Resource, *, connections: int = 1, verify: bool = True) -> bytes:
        """All bytes of a resource, checked as `Client.fetch` checks them."""
        out, seen = bytearray(r.length), Seen()
        parts = split(r.length, connections)
        await asyncio.gather(*(self._range(r, a, b, out, seen) for a, b in parts))
        if verify:
            expected = seen.digest or await self.repr_digest(r)
            check(r.url, expected, hashlib.sha256(out).digest())
        return bytes(out)

    async def repr_digest(self, r: Resource) -> bytes | None:
        response = await self._send("HEAD", r.url, headers=WANT)
        same_etag(response, r)
        return parse(response.headers.get("repr-digest"))

    async def _range(self, r: Resource, start: int, stop: int, out: bytearray, seen: Seen) -> None:
        at, attempt = start, 0
        while at < stop:
            headers = part_headers(r, at, stop)
            try:
                async with self.http.stream("GET", r.url, headers=headers) as response:
                    if response.status_code >= 400:
                        await response.aread()  # a problem body, read for settle()
                    wait = self._policy.settle(attempt, response)
                    if not isinstance(wait, httpx.Response):
                        await asyncio.sleep(wait)
                        attempt += 1
                        continue
                    at = part_start(response, r, at)
                    seen.add(response)
                    async for chunk in response.aiter_raw():
                        n = min(len(chunk), stop - at)
                        out[at : at + n] = chunk[:n]
                        at += n
                        if at >= stop:
                            break
            except httpx.TransportError as exc:
                if attempt >= self._policy.retries:
                    raise UnreachableError(
                        f"download of {r.url} failed at byte {at}: {exc}"
                    ) from exc
                await asyncio.sleep(delay(attempt, self._policy.backoff, None))
                attempt += 1
        if at != stop:
            raise IntegrityError(f"received up to byte {at} of {stop}")
