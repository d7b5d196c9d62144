"""Output buffers for the fused kernel's blocks, used again once nothing refers to them.

A block's values leave the engine in a new array that the stream sends (through the event
loop's transport, which may hold it until the socket takes it). A fresh buffer per block means
fresh pages per block, which the kernel must fault in and zero: on the 2-core machine of
docs/benchmarks.md, 0.72 s of system time per 2.2 GB (1,100 arrays of 2 MiB, filled and
dropped; 0.00 s from this pool: `python -m bench.budget`'s last lines). glibc would hand
freed heap memory out again if its mmap threshold were dynamic, but `serve` pins it so that
freed stream buffers go back to the system (docs/decisions.md).

So a block's array is laid over an anonymous mmap kept in a small pool: the array's owner is a
ctypes view of the mmap, every numpy view and memoryview of the array keeps that owner alive,
and a finalizer puts the mmap back in the pool only when the owner is collected, i.e. when the
stream, the transport and everything else have let go of every view of it. At most KEEP
bytes of buffers wait in the pool (what stays resident after a burst), the oldest are
unmapped first.
"""

from __future__ import annotations

import ctypes
import mmap
import threading
import weakref
from collections import deque
from typing import Any

import numpy as np
import numpy.typing as npt

KEEP = 16 << 20  # bytes kept for reuse: 8 bfloat16 or 4 float32 blocks of the default 1M
SMALLEST = 256 << 10  # below this, numpy's own allocation (few pages to fault in)


class Blocks:
    """A pool of output buffers, by size; safe from several threads."""

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep  # bytes
        self._free: list[mmap.mmap] = []
        self._kept = 0  # bytes in _free
        self._lock = threading.Lock()
        # let-go buffers, appended by finalizers without the lock: the garbage collector may run
        # one on a thread that holds the lock already (an allocation inside `_take`)
        self._returned: deque[mmap.mmap] = deque()

    def empty(self, n: int, dtype: Any) -> npt.NDArray[Any]:
        """An uninitialized array of `n` values of `dtype`, over a kept buffer when one of that
        size is free."""
        dt = np.dtype(dtype)
        size = n * dt.itemsize
        if size < SMALLEST:
            return np.empty(n, dt)
        buffer = self._take(size)
        owner = (ctypes.c_ubyte * size).from_buffer(buffer)
        weakref.finalize(owner, self._back, buffer).atexit = False
        return np.frombuffer(owner, dt, count=n)

    def _take(self, size: int) -> mmap.mmap:
        with self._lock:
            self._settle()
            for i, kept in enumerate(self._free):
                if len(kept) == size:
                    self._kept -= size
                    return self._free.pop(i)
        return mmap.mmap(-1, size)

    def _back(self, buffer: mmap.mmap) -> None:
        """A buffer whose every view is gone (a finalizer): kept, the oldest ones unmapped to
        make room; settled now unless the lock is held (then by the next `_take` or `_back`)."""
        self._returned.append(buffer)
        if self._lock.acquire(blocking=False):
            try:
                self._settle()
            finally:
                self._lock.release()

    def _settle(self) -> None:
        """The returned buffers into the pool, within `keep` bytes (the lock held)."""
        while self._returned:
            buffer = self._returned.popleft()
            self._free.append(buffer)
            self._kept += len(buffer)
        while self._kept > self.keep:
            self._kept -= len(self._free.pop(0))

    def __len__(self) -> int:
        with self._lock:
            self._settle()
            return len(self._free)
