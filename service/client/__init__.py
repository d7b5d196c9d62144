"""A Python client of weightgen: describe, fetch tensors and bundles, download files.

Every fetch goes through the resource's GET URL (from describe), so downloads can resume with
`Range` + `If-Range` after a dropped connection and can be split into parallel byte ranges. The
client checks `Content-Length`, that every part carries the same ETag, and (unless
`verify=False`) that the SHA-256 of the bytes is the server's `Repr-Digest` (RFC 9530); it
retries connection errors and 503s (honouring `Retry-After`) with exponential backoff, and
raises typed errors that carry the server's problem details.

    from service.client import Client
    with Client("http://127.0.0.1:8000") as c:
        w = c.numpy("he_normal", [256, 128], seed=7)               # numpy array
        big = c.resource("he_normal", [4096, 4096], seed=1, format="safetensors")
        c.save(big, "w.safetensors", connections=4)             # 4 parallel ranges
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from .aio import AsyncClient
from .bodies import tensor_body
from .dtypes import numpy_dtype
from .errors import ClientError, IntegrityError, ProblemError, UnreachableError
from .files import FileSink
from .files import sha256 as file_sha256
from .ranges import Resource, Sink, part_headers, part_start, receive, same_etag, split
from .retry import RETRY_STATUSES, Retry, delay
from .verify import WANT, Seen, check, parse
from .wire import READINTO, DirectTransport

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "RETRY_STATUSES",
    "AsyncClient",
    "Client",
    "ClientError",
    "IntegrityError",
    "ProblemError",
    "Progress",
    "Resource",
    "Retry",
    "UnreachableError",
    "part_headers",
    "part_start",
    "split",
    "tensor_body",
]

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


class Client:
    """Synchronous client. `transport` lets tests plug in an ASGI app or a mock; by default
    plain-HTTP bodies are received straight into the destination (`wire.DirectTransport`)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 4,
        backoff: float = 0.25,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(
            base_url=base_url,
            headers=headers,
            timeout=timeout,
            transport=transport if transport is not None else DirectTransport(),
        )
        self._policy = Retry(retries, backoff, base_url)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # --- requests with retries ------------------------------------------------------------

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self._policy.retries + 1):
            try:
                outcome = self._policy.settle(attempt, self.http.request(method, url, **kwargs))
            except httpx.TransportError as exc:
                outcome = self._policy.settle(attempt, exc)
            if isinstance(outcome, httpx.Response):
                return outcome
            time.sleep(outcome)
        raise AssertionError("unreachable")  # settle() returns or raises on the last attempt

    def schemes(self) -> dict[str, Any]:
        data: dict[str, Any] = self._send("GET", "/v1/schemes").json()
        return data

    def recipe(self, name: str) -> dict[str, Any]:
        """A recipe's catalogue entry (GET /v1/recipes): its stack, model, config fields, laws."""
        found: list[dict[str, Any]] = self._send("GET", "/v1/recipes").json()["recipes"]
        for r in found:
            if r["name"] == name:
                return r
        known = ", ".join(r["name"] for r in found)
        raise ClientError(f"unknown recipe {name!r}; the service has {known}")

    def describe(self, scheme: str, shape: Sequence[int], **params: Any) -> dict[str, Any]:
        """The plan of a tensor (fans, std, limit, …), its GET URL, length and ETag."""
        data: dict[str, Any] = self._send(
            "POST", "/v1/tensors/describe", json=tensor_body(scheme, shape, params)
        ).json()
        return data

    def describe_bundle(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = self._send(
            "POST", "/v1/bundles/describe", json=dict(manifest)
        ).json()
        return data

    def resource(self, scheme: str, shape: Sequence[int], **params: Any) -> Resource:
        d = self.describe(scheme, shape, **params)
        return Resource(d["url"], d["content_length"], d["etag"], d)

    def bundle_resource(self, manifest: Mapping[str, Any]) -> Resource:
        d = self.describe_bundle(manifest)
        return Resource(d["url"], d["content_length"], d["etag"], d)

    # --- downloads ------------------------------------------------------------------------

    def fetch(
        self,
        r: Resource,
        *,
        connections: int = 1,
        progress: Progress | None = None,
        verify: bool = True,
    ) -> bytes:
        """All bytes of a resource, in parallel ranges when `connections` > 1; with `verify`,
        checked against the server's Repr-Digest (IntegrityError if they differ)."""
        out = bytearray(r.length)
        self.fetch_into(r, memoryview(out), connections=connections, progress=progress,
                        verify=verify)  # fmt: skip
        return bytes(out)

    def fetch_into(
        self,
        r: Resource,
        out: memoryview,
        *,
        connections: int = 1,
        progress: Progress | None = None,
        verify: bool = True,
    ) -> None:
        """`fetch` into a buffer of the resource's length (no copy)."""
        if len(out) != r.length:
            raise ValueError(f"a buffer of {len(out)} bytes for a resource of {r.length}")
        seen = Seen()
        self._into(r, out, connections, progress, seen)
        if verify:
            check(r.url, seen.digest or self.repr_digest(r), hashlib.sha256(out).digest())

    def save(
        self,
        r: Resource,
        path: str | Path,
        *,
        connections: int = 1,
        progress: Progress | None = None,
        verify: bool = True,
    ) -> Path:
        """Write a resource to `path` through a temporary `.part` file, renamed only when whole
        and (with `verify`) its SHA-256 is the server's Repr-Digest; on any failure the `.part`
        is removed, so wrong bytes never lie under `path`."""
        self.download(r, path, connections=connections, progress=progress, verify=verify)
        return Path(path)

    def download(
        self,
        r: Resource,
        path: str | Path,
        *,
        connections: int = 1,
        progress: Progress | None = None,
        verify: bool = True,
    ) -> bytes | None:
        """`save`, returning the SHA-256 of the file as checked against the server's digest
        (None when not verified, or when the server gave no digest)."""
        path = Path(path)
        part = path.with_name(path.name + ".part")
        seen, digest = Seen(), None
        try:
            with part.open("wb") as f:
                f.truncate(r.length)
            sink = FileSink(part, r.length)
            try:
                self._into(r, sink, connections, progress, seen)
            finally:
                sink.close()
            if verify:  # the bytes written, hashed as they were (in order) or read back
                expected, digest = seen.digest or self.repr_digest(r), sink.digest()
                digest = digest or file_sha256(part)
                check(r.url, expected, digest)
                digest = digest if expected is not None else None
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        part.replace(path)
        return digest

    def repr_digest(self, r: Resource) -> bytes | None:
        """The server's SHA-256 of the resource (HEAD with Want-Repr-Digest: it computes it if
        it must); None when it gives none. An answer for another ETag is an IntegrityError."""
        response = self._send("HEAD", r.url, headers=WANT)
        same_etag(response, r)
        return parse(response.headers.get("repr-digest"))

    def _into(
        self,
        r: Resource,
        out: Sink,
        connections: int,
        progress: Progress | None,
        seen: Seen,
    ) -> None:
        done = [0]

        def advance(n: int) -> None:
            done[0] += n
            if progress is not None:
                progress(done[0], r.length)

        if r.length == 0:
            return
        ranges = split(r.length, connections)
        if len(ranges) == 1:
            self._range(r, (0, r.length), out, advance, seen)
            return
        with ThreadPoolExecutor(len(ranges)) as pool:
            for f in [pool.submit(self._range, r, part, out, advance, seen) for part in ranges]:
                f.result()

    def _range(
        self,
        r: Resource,
        part: tuple[int, int],
        out: Sink,
        advance: Callable[[int], None],
        seen: Seen,
    ) -> None:
        """Bytes [start, stop) into out[start:stop], resuming after dropped connections."""
        (start, stop), attempt = part, 0
        at = [start]  # where the next byte goes, moved by every byte received

        def moved(n: int) -> None:
            at[0] += n
            advance(n)

        while at[0] < stop:
            before = at[0]
            try:
                headers = part_headers(r, at[0], stop)
                with self.http.stream("GET", r.url, headers=headers) as response:
                    if response.status_code >= 400:
                        response.read()  # a problem body, read for settle()
                    wait = self._policy.settle(attempt, response)
                    if not isinstance(wait, httpx.Response):
                        time.sleep(wait)
                        attempt += 1
                        continue
                    at[0] = began = part_start(response, r, at[0])
                    seen.add(response)
                    self._body(response, out, began, stop, moved)
                    if at[0] <= before:  # no further than before: a short body, again
                        attempt += 1
                        if attempt > self._policy.retries:
                            raise IntegrityError(f"no bytes past {before} of {r.url} came")
            except httpx.TransportError as exc:
                if attempt >= self._policy.retries:
                    raise UnreachableError(
                        f"download of {r.url} failed at byte {at[0]}: {exc}"
                    ) from exc
                time.sleep(delay(attempt, self._policy.backoff, None))
                attempt += 1
        if at[0] != stop:
            raise IntegrityError(f"received up to byte {at[0]} of {stop}")

    @staticmethod
    def _body(
        response: httpx.Response, out: Sink, at: int, stop: int, moved: Callable[[int], None]
    ) -> None:
        """A part's response body into out[at:stop], `moved(n)` after every n bytes. A body
        longer than the part (a whole 200) is left unread past `stop`."""
        readinto = response.extensions.get(READINTO)
        if readinto is not None:
            receive(out, at, stop, readinto, moved)
            return
        for chunk in response.iter_raw():
            n = min(len(chunk), stop - at)
            if n:
                out[at : at + n] = memoryview(chunk)[:n]
                at += n
                moved(n)
            if n < len(chunk):
                break

    # --- conveniences -----------------------------------------------------------------------

    def numpy(self, scheme: str, shape: Sequence[int], **params: Any) -> npt.NDArray[Any]:
        """The tensor as a numpy array (.npy; bfloat16 and float8 need ml_dtypes, via raw)."""
        import numpy as np

        params.setdefault(
            "format",
            "npy" if params.get("dtype", "float32") in ("float32", "float64", "float16") else "raw",
        )
        connections = int(params.pop("connections", 1) or 1)  # the client's, not the request's
        r = self.resource(scheme, shape, **params)
        data = self.fetch(r, connections=connections)
        if params["format"] == "npy":
            return np.load(io.BytesIO(data), allow_pickle=False)  # type: ignore[no-any-return]
        return np.frombuffer(data, dtype=numpy_dtype(str(params["dtype"]))).reshape(
            r.info["shape"]
        )  # a part's, if sliced

    def torch(self, scheme: str, shape: Sequence[int], **params: Any) -> Any:
        """The tensor as a torch tensor (safetensors)."""
        import safetensors.torch

        name = str(params.setdefault("name", "weight"))
        r = self.resource(scheme, shape, **{**params, "format": "safetensors"})
        return safetensors.torch.load(self.fetch(r))[name]

    def state_dict(self, manifest: Mapping[str, Any], *, connections: int = 1) -> dict[str, Any]:
        """A bundle as a dict of torch tensors, ready for `load_state_dict`."""
        import safetensors.torch

        data = self.fetch(self.bundle_resource(manifest), connections=connections)
        return dict(safetensors.torch.load(data))
