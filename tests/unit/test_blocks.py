"""service.engines.blocks: a block's buffer is used again only once every view of its array is
gone (the stream's memoryview, a transport's slice), and the pool keeps at most KEEP."""

from __future__ import annotations

import gc
import threading
from typing import Any

import ml_dtypes
import numpy as np

from service.engines.blocks import SMALLEST, Blocks

N = SMALLEST // 2  # bfloat16 values filling the smallest pooled size


def address(a: np.ndarray) -> int:
    return int(a.ctypes.data)


def test_a_buffer_comes_back_only_when_every_view_of_it_is_gone() -> None:
    blocks = Blocks()
    first = blocks.empty(N, ml_dtypes.bfloat16)
    where = address(first)
    first.view(np.uint16)[:] = 7
    sent = first.view(np.uint8).data[200:300]  # as the engine returns it; a transport holds it
    part = first[5:9]
    del first
    gc.collect()
    assert len(blocks) == 0
    other = blocks.empty(N, ml_dtypes.bfloat16)  # a new buffer: the old one is still seen
    assert address(other) != where
    other.view(np.uint16)[:] = 9
    assert bytes(sent) == np.full(50, 7, np.uint16).tobytes()  # untouched
    del sent
    gc.collect()
    assert len(blocks) == 0  # `part` still holds it
    del part
    gc.collect()
    assert len(blocks) == 1
    again = blocks.empty(N, ml_dtypes.bfloat16)
    assert address(again) == where


def test_sizes_are_kept_apart_and_small_arrays_are_numpys_own() -> None:
    blocks = Blocks()
    a = blocks.empty(N, np.float32)  # twice the bytes of N bfloat16 values
    del a
    gc.collect()
    b = blocks.empty(N, ml_dtypes.bfloat16)
    assert len(blocks) == 1  # the float32 one: not of b's size
    assert b.nbytes == SMALLEST
    small = blocks.empty(10, np.float32)
    assert small.flags.owndata


def test_at_most_keep_bytes_wait() -> None:
    blocks = Blocks(keep=3 * SMALLEST + 1)
    arrays = [blocks.empty(N, np.uint16) for _ in range(5)]
    del arrays
    gc.collect()
    assert len(blocks) == 3
    big = blocks.empty(N, np.float32)  # twice the size: the oldest two make room for it
    del big
    gc.collect()
    assert len(blocks) == 2


def test_a_finalizer_run_by_the_collector_inside_the_lock_does_not_deadlock() -> None:
    """The cyclic collector may run a buffer's finalizer on the thread that holds the pool's
    lock (any allocation there can start it): the buffer is set aside, not waited for."""
    blocks = Blocks()

    class Collecting(list[object]):
        def __iter__(self) -> Any:
            gc.collect()  # what an allocation inside `_take` may set off
            return super().__iter__()

    blocks._free = Collecting()  # type: ignore[assignment]
    cycle: dict[str, object] = {"array": blocks.empty(N, np.uint16)}
    cycle["self"] = cycle  # freed only by the cyclic collector
    del cycle
    done = threading.Event()

    def take() -> None:
        blocks.empty(N, np.uint16)
        done.set()

    worker = threading.Thread(target=take, daemon=True)
    worker.start()
    assert done.wait(10), "Blocks.empty deadlocked"
    assert len(blocks) >= 1
