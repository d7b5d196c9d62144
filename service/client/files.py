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

The bytes are also hashed as they are written when they arrive in order from offset 0 (one
connection): the digest of the file is then known without reading it back. Hashing and the
full buffers' writes run on two threads of their own, so the receiving thread goes straight
back to the socket (they and it overlap: hashlib and the writes release the GIL).
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
    writes them); `close()` writes what is still gathered. Safe from several threads. The
    hashing and the full buffers' writes run on two threads of their own, in order, at most
    LAG bytes behind the receiving thread (each a few buffers of memory): `data` is hashed
    after the call returns, so it must not change (received chunks are `bytes`)."""

    def __init__(self, path: Path, length: int) -> None:
        self.length = length
        self.fd = os.open(path, os.O_WRONLY)
        self.direct = _open_direct(path)
        self.parts: dict[int, _Part] = {}  # by the offset their next byte goes to
        self.lock = threading.Lock()
        self._hash = hashlib.sha256()
        self._hashed = 0  # bytes hashed in order from 0; -1 once they came out of order
        self._hashing = _Lane("weightgen-hash", LAG)
        self._writing = _Lane("weightgen-write", LAG)
        self._free: list[mmap.mmap] = []  # buffers written out, to gather in again

    def __setitem__(self, where: slice, data: memoryview, /) -> None:
        at = where.start
        self._digest(at, data)
        if self.direct is None:
            self._plain(at, data)
            return
        with self.lock:
            part = self.parts.pop(at, None)
        part = part or _Part(at, self._buffer())
        if part.used == 0 and part.start % ALIGN:  # up to the part's first aligned offset
            head = min(len(data), -part.start % ALIGN)
            self._plain(part.start, data[:head])
            part.start, data = part.start + head, data[head:]
        while data:
            n = min(len(data), BUFFER - part.used)
            part.buffer[part.used : part.used + n] = data[:n]
            part.used, data = part.used + n, data[n:]
            if part.used == BUFFER:  # written on the writing lane; gather on in another
                work = functools.partial(self._write_full, part.buffer, part.start)
                self._writing.submit(work, BUFFER)
                part.start, part.used, part.buffer = part.start + BUFFER, 0, self._buffer()
        with self.lock:
            self.parts[part.start + part.used] = part

    def _buffer(self) -> mmap.mmap:
        with self.lock:
            return self._free.pop() if self._free else mmap.mmap(-1, BUFFER)

    def _write_full(self, buffer: mmap.mmap, offset: int) -> None:
        try:
            self._write_direct(memoryview(buffer), offset)
        finally:
            with self.lock:
                self._free.append(buffer)

    def _digest(self, at: int, data: memoryview) -> None:
        with self.lock:  # the order decided and handed over together: the lane keeps it
            if self._hashed == at:
                self._hashing.submit(functools.partial(self._hash.update, data), len(data))
                self._hashed += len(data)
            elif self._hashed >= 0:
                self._hashed = -1

    def digest(self) -> bytes | None:
        """The SHA-256 of the whole file when every byte was hashed in order, else None."""
        self._hashing.drain()
        return self._hash.digest() if self._hashed == self.length else None

    def _write_direct(self, view: memoryview, offset: int) -> None:
        """Write the aligned `view` (its length a multiple of ALIGN) at `offset`; a filesystem
        that opened the file with O_DIRECT but refuses the write (EINVAL: a block larger than
        ALIGN, some FUSE or network ones) has it, and every later write, go plainly."""
        done, n = 0, len(view)
        try:
            while done < n and self.direct is not None:
                try:
                    done += os.pwritev(self.direct, [view[done:]], offset + done)
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise
                    self._plain_from_now()
            self._plain(offset + done, view[done:])
        finally:
            view.release()

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
        """Wait for the lanes, then write every part's gathered bytes (aligned ones directly, a
        tail plainly); the buffers, threads and descriptors are released whatever fails."""
        try:
            self._writing.drain()
            self._hashing.drain()
            for part in self.parts.values():
                aligned = part.used - part.used % ALIGN
                if aligned:
                    self._write_direct(memoryview(part.buffer)[:aligned], part.start)
                tail = memoryview(part.buffer)[aligned : part.used]
                self._plain(part.start + aligned, tail)
                tail.release()
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
