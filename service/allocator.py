"""The C allocator, tuned for a streaming server (glibc only; elsewhere nothing is changed).

A stream's blocks are buffers of MiBs. glibc maps such a buffer on its own and unmaps it when it
is freed, but after the first free it raises its mmap threshold to that size ("dynamic
threshold"), so later buffers come from the heap's arenas and stay resident after a burst:
bench.retention measured 146–190 MiB after bursts of aborted streams against 81 MiB idle, and
98–122 MiB with the threshold pinned at 128 KiB (docs/benchmarks.md, "Memory after bursts").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_MMAP_THRESHOLD = -3  # glibc's malloc.h; setting it also turns the dynamic threshold off


def pin_mmap_threshold(nbytes: int) -> bool:
    """Pin glibc's mmap threshold at `nbytes` (0: leave glibc's own); True when it was set. An
    operator's MALLOC_MMAP_THRESHOLD_ wins: glibc read it at start-up."""
    if nbytes <= 0 or not sys.platform.startswith("linux"):
        return False
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):  # no libc of that name, or one without mallopt (musl)
        return False
    return bool(mallopt and mallopt(M_MMAP_THRESHOLD, nbytes) == 1)
