"""Writing a download to a file, and hashing it, without the page cache where Linux allows.

Every byte a process writes through the page cache costs the kernel a page to allocate and
fill: on the 2-core machine of docs/benchmarks.md, 2.3 s of system time per GB (dd, 1 MiB
blocks), a floor under any large download. `O_DIRECT` writes skip it (1.2 GB/s there, a sixth
of the CPU) and leave the cache to the programs that will read the file. So the parts of a
download are gathered, per part, in page-aligned 8 MiB buffers, and written with `O_DIRECT`
at aligned offsets; what cannot be aligned (the bytes before a part's first 4 KiB boundary,
its tail) is written with plain `pwrite`, never to a page an aligned write also covers (a
page holds bytes of one part, or of a part's edge only). Without `O_DIRECT` (another OS, a
filesystem that refuses it) everything goes through `pwrite`.

A response body can be received straight into those buffers (`fill`, with the transport's
`readinto`: wire.py), with no copy at all; bytes handed over as chunks are copied in.

The bytes are also hashed as they are written, buffer by buffer, when they come in order from
offset 0 (one part: one connection): the digest of the file is then known without reading it
back. Hashing and the writes run on two threads of their own, so the receiving thread goes
straight back to the socket (they and it overlap: hashlib and the writes release the GIL); a
buffer is gathered into again once both are done with it.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import mmap
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

ReadInto = Callable[[memoryview], int]  # a response body's next bytes into a buffer: how many
ALIGN = 4096  # O_DIRECT's alignment of offsets, lengths and buffers (a page; 512 on some disks)
BUFFER = 8 << 20
LAG = 4 * BUFFER  # bytes the hashing, and the writing, may be behind the receiving thread


class _Part:
    """The bytes of one part gathered from `start` in an aligned buffer, until written."""

    def __init__(self, start: int, buffer: mmap.mmap) -> None:
        self.start = start  # file offset of buffer[0]
        self.used = 0
        self.buffer = buffer  # page-aligned (an anonymous mmap), as O_DIRECT needs


class _Lane:
    """Work done in order on a thread of its own, at most `limit` bytes behind its callers: the
    receiving thread hands over hashing and disk writes and goes back to the socket (hashlib and
    `pwritev` release the GIL). A failed piece of work raises in the caller that next waits for
    it (a `submit` over the limit, or `drain`)."""

    def __init__(self, name: str, limit: int) -> None:
        self.pool = ThreadPoolExecutor(1, name)
        self.limit = limit
        self.backlog: deque[tuple[Future[None], int]] = deque()
        self.size = 0
        self.lock = threading.Lock()

    def submit(self, work: Callable[[], None], nbytes: int) -> None:
        with self.lock:
            while self.backlog and self.size + nbytes > self.limit:
                self._settle()
            self.backlog.append((self.pool.submit(work), nbytes))
            self.size += nbytes

    def drain(self) -> None:
        """Wait for all the work handed over; the first failure raises (after the rest ends)."""
        with self.lock:
            failure: BaseException | None = None
            while self.backlog:
                try:
                    self._settle()
                except BaseException as exc:  # raised below, once all the work has ended
                    failure = failure or exc
            if failure is not None:
                raise failure

    def _settle(self) -> None:
        done, nbytes = self.backlog.popleft()
        self.size -= nbytes
        done.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class FileSink:
    """`out[at:at + n] = data` into a file, each part's bytes in order (as `Client._range`
    writes them), or received straight into the sink's buffers (`fill`); `close()` writes what
    is still gathered. Safe from several threads. Each full buffer is hashed and written on two
    threads of their own (the hashing only while the bytes come in the file's order from 0),
    at most LAG bytes behind the receiving thread, and gathered into again once both are done
    with it."""

    def __init__(self, path: Path, length: int) -> None:
        self.length = length
        self.fd = os.open(path, os.O_WRONLY)
        self.direct = _open_direct(path)
        self.parts: dict[int, _Part] = {}  # by the offset their next byte goes to
        self.lock = threading.Lock()
        # the hashing order decided and its work handed to the lane together; never held with
        # `lock` taken inside it by the lanes' work, so a full lane can be waited for here
        self._order = threading.Lock()
        self._hash = hashlib.sha256()
        self._hashed = 0  # bytes hashed in order from 0; -1 once they came out of order
        self._hashing = _Lane("weightgen-hash", LAG)
        self._writing = _Lane("weightgen-write", LAG)
        self._free: list[mmap.mmap] = []  # buffers written out, to gather in again

    def __setitem__(self, where: slice, data: memoryview, /) -> None:
        at = where.start
        if self.direct is None:
            self._digest(at, data)
            self._plain(at, data)
            return
        part = self._part(at, data)
        data = data[part.start + part.used - at :]  # after the head written plainly, if any
        while data:
            n = min(len(data), BUFFER - part.used)
            part.buffer[part.used : part.used + n] = data[:n]
            part.used, data = part.used + n, data[n:]
            part = self._full(part)
        self._keep(part)

    def _keep(self, part: _Part) -> None:
        """A part to continue at its next byte; one with nothing gathered and no aligned start
        (its head not all received) is not kept: its next bytes start a part anew."""
        with self.lock:
            if part.used or part.start % ALIGN == 0:
                self.parts[part.start + part.used] = part
            else:
                self._free.append(part.buffer)

    def fill(self, at: int, stop: int, readinto: ReadInto, advance: Callable[[int], None]) -> int:
        """Receive bytes [at, stop) with `readinto` straight into the buffers (no copy); where
        the next byte goes: `stop`, or less where the body ended first (`readinto` gave 0).
        Without O_DIRECT, through one reused buffer and `pwrite`."""
        if self.direct is None:
            return self._fill_plain(at, stop, readinto, advance)
        if at % ALIGN and self._continues(at) is None:  # a new part's head, to its first page
            head = min(stop, at + -at % ALIGN)
            at = self._fill_plain(at, head, readinto, advance)
            if at < head or at == stop:
                return at
        part = self._part(at, memoryview(b""))
        try:
            while at < stop:
                with memoryview(part.buffer)[part.used : part.used + stop - at] as view:
                    n = readinto(view)
                if n == 0:
                    break
                part.used, at = part.used + n, at + n
                advance(n)
                part = self._full(part)
        finally:
            self._keep(part)
        return at

    def _fill_plain(
        self, at: int, stop: int, readinto: ReadInto, advance: Callable[[int], None]
    ) -> int:
        buffer = bytearray(min(BUFFER, stop - at))
        while at < stop:
            with memoryview(buffer)[: stop - at] as view:
                n = readinto(view)
                if n == 0:
                    break
                self[at : at + n] = view[:n]
            at += n
            advance(n)
        return at

    def _continues(self, at: int) -> _Part | None:
        with self.lock:
            return self.parts.get(at)

    def _part(self, at: int, data: memoryview) -> _Part:
        """The part whose next byte goes to `at`, or a new one; a new part's bytes before its
        first aligned offset (taken from `data`) are written plainly."""
        with self.lock:
            part = self.parts.pop(at, None)
        if part is not None:
            return part
        head = min(len(data), -at % ALIGN)
        if head:
            self._digest(at, data[:head])
            self._plain(at, data[:head])
        return _Part(at + head, self._buffer())

    def _full(self, part: _Part) -> _Part:
        """A full buffer handed to the lanes, and a new one to gather in; else `part`."""
        if part.used < BUFFER:
            return part
        self._hand_off(part.buffer, part.start, BUFFER)
        return _Part(part.start + BUFFER, self._buffer())

    def _hand_off(self, buffer: mmap.mmap, start: int, used: int) -> None:
        """`buffer[:used]` (file offset `start`) hashed, if in order, and written, each on its
        lane; the buffer is gathered into again once both are done with it."""
        view = memoryview(buffer)[:used]
        users = [2]

        def done() -> None:
            with self.lock:
                users[0] -= 1
                if users[0] == 0:
                    with contextlib.suppress(BufferError):  # a failed write's traceback
                        view.release()
                    self._free.append(buffer)

        if not self._digest(start, view, then=done):
            users[0] = 1  # no hashing work was handed over: the write alone frees it
        self._writing.submit(_then(functools.partial(self._write_out, view, start), done), used)

    def _buffer(self) -> mmap.mmap:
        with self.lock:
            return self._free.pop() if self._free else mmap.mmap(-1, BUFFER)

    def _write_out(self, view: memoryview, offset: int) -> None:
        """The aligned bytes of `view` directly, the rest (a part's tail) plainly."""
        aligned = len(view) - len(view) % ALIGN
        if aligned:
            self._write_direct(view[:aligned], offset)
        self._plain(offset + aligned, view[aligned:])

    def _digest(self, at: int, data: memoryview, *, then: Callable[[], None] | None = None) -> bool:
        """Hash `data` (file offset `at`) on the hashing lane if it continues the bytes hashed
        in order (True), then call `then`; out of order (False), never again. Without `then`
        the bytes are copied first unless they are received `bytes` (a reused buffer's)."""
        with self._order:  # the order decided and handed over together: the lane keeps it
            if self._hashed != at:
                self._hashed = -1
                return False
            self._hashed += len(data)
            if then is None:
                kept = data if isinstance(data.obj, bytes) else bytes(data)
                self._hashing.submit(functools.partial(self._hash.update, kept), len(data))
            else:
                work = _then(functools.partial(self._hash.update, data), then)
                self._hashing.submit(work, len(data))
            return True

    def digest(self) -> bytes | None:
        """After `close`: the SHA-256 of the whole file when every byte was hashed in order
        (one part, from 0), else None."""
        self._hashing.drain()
        return self._hash.digest() if self._hashed == self.length else None

    def _write_direct(self, view: memoryview, offset: int) -> None:
        """Write the aligned `view` (its length a multiple of ALIGN) at `offset`; a filesystem
        that opened the file with O_DIRECT but refuses the write (EINVAL: a block larger than
        ALIGN, some FUSE or network ones) has it, and every later write, go plainly."""
        done, n = 0, len(view)
        while done < n and self.direct is not None:
            try:
                done += os.pwritev(self.direct, [view[done:]], offset + done)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                self._plain_from_now()
        self._plain(offset + done, view[done:])

    def _plain_from_now(self) -> None:
        with self.lock:
            if self.direct is not None:
                os.close(self.direct)
                self.direct = None

    def _plain(self, at: int, data: memoryview) -> None:
        while data:
            written = os.pwrite(self.fd, data, at)
            data, at = data[written:], at + written

    def close(self) -> None:
        """Every part's gathered bytes handed over in the file's order, then the lanes waited
        for; the buffers, threads and descriptors are released whatever fails."""
        try:
            for at in sorted(self.parts, key=lambda a: self.parts[a].start):
                part = self.parts.pop(at)
                if part.used:
                    self._hand_off(part.buffer, part.start, part.used)
                else:
                    self._free.append(part.buffer)
            self._writing.drain()
            self._hashing.drain()
        finally:
            self._writing.close()
            self._hashing.close()
            for buffer in [*(p.buffer for p in self.parts.values()), *self._free]:
                _release(buffer)
            self.parts.clear()
            self._free.clear()
            os.close(self.fd)
            if self.direct is not None:
                os.close(self.direct)


def _then(work: Callable[[], None], after: Callable[[], None]) -> Callable[[], None]:
    def both() -> None:
        try:
            work()
        finally:
            after()

    return both


def _release(buffer: mmap.mmap) -> None:
    """Unmap a buffer now, or, where a failed write's traceback still holds a view of it, when
    that view is collected (mmap refuses to close under an exported view)."""
    with contextlib.suppress(BufferError):
        buffer.close()


def _open_direct(path: Path) -> int | None:
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return None
    try:
        return os.open(path, os.O_WRONLY | flag)
    except OSError:  # some filesystems refuse O_DIRECT (older tmpfs, some FUSE ones)
        return None


def sha256(path: Path) -> bytes:
    """SHA-256 of a file, read in 8 MiB pieces, with `O_DIRECT` where it is allowed (so a
    checkpoint read back for its digest does not fill the cache)."""
    flag = getattr(os, "O_DIRECT", 0)
    h = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | flag)
    except OSError:
        fd = os.open(path, os.O_RDONLY)
    buffer = mmap.mmap(-1, BUFFER)
    try:
        while True:
            n = os.readv(fd, [buffer])
            if not n:
                break
            h.update(memoryview(buffer)[:n])
    finally:
        os.close(fd)
        buffer.close()
    return h.digest()
