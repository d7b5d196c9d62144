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
connection): the digest of the file is then known without reading it back.
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
import threading
from pathlib import Path

ALIGN = 4096  # O_DIRECT's alignment of offsets, lengths and buffers (a page; 512 on some disks)
BUFFER = 8 << 20


class _Part:
    """The bytes of one part gathered from `start` in an aligned buffer, until written."""

    def __init__(self, start: int) -> None:
        self.start = start  # file offset of buffer[0]
        self.used = 0
        self.buffer = mmap.mmap(-1, BUFFER)  # page-aligned, as O_DIRECT needs


class FileSink:
    """`out[at:at + n] = data` into a file, each part's bytes in order (as `Client._range`
    writes them); `close()` writes what is still gathered. Safe from several threads."""

    def __init__(self, path: Path, length: int) -> None:
        self.length = length
        self.fd = os.open(path, os.O_WRONLY)
        self.direct = _open_direct(path)
        self.parts: dict[int, _Part] = {}  # by the offset their next byte goes to
        self.lock = threading.Lock()
        self._hash = hashlib.sha256()
        self._hashed = 0  # bytes hashed in order from 0; -1 once they came out of order

    def __setitem__(self, where: slice, data: memoryview, /) -> None:
        at = where.start
        self._digest(at, data)
        if self.direct is None:
            self._plain(at, data)
            return
        with self.lock:
            part = self.parts.pop(at, None)
        part = part or _Part(at)
        if part.used == 0 and part.start % ALIGN:  # up to the part's first aligned offset
            head = min(len(data), -part.start % ALIGN)
            self._plain(part.start, data[:head])
            part.start, data = part.start + head, data[head:]
        while data:
            n = min(len(data), BUFFER - part.used)
            part.buffer[part.used : part.used + n] = data[:n]
            part.used, data = part.used + n, data[n:]
            if part.used == BUFFER:
                self._write_direct(part, BUFFER)
        with self.lock:
            self.parts[part.start + part.used] = part

    def _digest(self, at: int, data: memoryview) -> None:
        with self.lock:
            if self._hashed == at:
                self._hash.update(data)
                self._hashed += len(data)
            elif self._hashed >= 0:
                self._hashed = -1

    def digest(self) -> bytes | None:
        """The SHA-256 of the whole file when every byte was hashed in order, else None."""
        return self._hash.digest() if self._hashed == self.length else None

    def _write_direct(self, part: _Part, n: int) -> None:
        """Write the aligned first `n` bytes of the buffer (n a multiple of ALIGN); a filesystem
        that opened the file with O_DIRECT but refuses the write (EINVAL: a block larger than
        ALIGN, some FUSE or network ones) has it, and every later write, go plainly."""
        view = memoryview(part.buffer)[:n]
        done = 0
        try:
            while done < n and self.direct is not None:
                try:
                    done += os.pwritev(self.direct, [view[done:]], part.start + done)
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise
                    os.close(self.direct)
                    self.direct = None
            self._plain(part.start + done, view[done:])
        finally:
            view.release()
        part.start += n
        part.buffer[: part.used - n] = part.buffer[n : part.used]
        part.used -= n

    def _plain(self, at: int, data: memoryview) -> None:
        while data:
            written = os.pwrite(self.fd, data, at)
            data, at = data[written:], at + written

    def close(self) -> None:
        """Write every part's gathered bytes (aligned ones directly, a tail plainly); the
        buffers and descriptors are released whatever fails."""
        try:
            for part in self.parts.values():
                aligned = part.used - part.used % ALIGN
                if aligned:
                    self._write_direct(part, aligned)
                self._plain(part.start, memoryview(part.buffer)[: part.used])
        finally:
            for part in self.parts.values():
                part.buffer.close()
            self.parts.clear()
            os.close(self.fd)
            if self.direct is not None:
                os.close(self.direct)


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
