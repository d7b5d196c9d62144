"""service.client.files: a download's parts, written with O_DIRECT where the filesystem allows
and plainly elsewhere, make exactly the bytes sent, whatever the split, the chunk sizes and the
order the parts interleave in; the in-stream digest exists only for bytes that came in order."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.client import files
from service.client.files import ALIGN, BUFFER, FileSink, sha256


def new_file(path: Path, length: int) -> None:
    """An empty file of `length` bytes, as `Client.download` makes its `.part`."""
    path.write_bytes(b"")
    os.truncate(path, length)


def new_sink(path: Path, length: int) -> FileSink:
    new_file(path, length)
    return FileSink(path, length)


def write(path: Path, data: bytes, cuts: list[int], chunk: int, seed: int) -> tuple[FileSink, bool]:
    """Parts [cuts[i], cuts[i+1]) of `data`, each in chunks of `chunk`, interleaved at random;
    and whether the chunks happened to come in the file's order."""
    sink = new_sink(path, len(data))
    edges = [0, *sorted(cuts), len(data)]
    pending = [
        [(a, min(a + chunk, hi)) for a in range(lo, hi, chunk)]
        for lo, hi in itertools.pairwise(edges)
        if hi > lo
    ]
    rng = random.Random(seed)
    at, in_order = 0, True
    while any(pending):
        part = rng.choice([p for p in pending if p])
        a, b = part.pop(0)
        in_order, at = in_order and a == at, b
        sink[a:b] = memoryview(data)[a:b]
    sink.close()
    return sink, in_order


@settings(max_examples=40, deadline=None)
@given(
    length=st.integers(0, 3 * BUFFER // 2),
    cuts=st.lists(st.integers(0, 3 * BUFFER // 2), max_size=4),
    chunk=st.sampled_from([1000, 4096, 65536, 1 << 20, 3_000_001]),
    seed=st.integers(0, 2**16),
)
def test_the_file_holds_exactly_the_bytes_sent(
    tmp_path_factory: pytest.TempPathFactory, length: int, cuts: list[int], chunk: int, seed: int
) -> None:
    data = random.Random(seed).randbytes(length)
    path = tmp_path_factory.mktemp("sink") / "f.part"
    cuts = [c for c in cuts if c < length]
    sink, in_order = write(path, data, cuts, chunk, seed)
    assert path.read_bytes() == data
    whole = hashlib.sha256(data).digest()
    assert sha256(path) == whole
    digest = sink.digest()  # hashed as written only while handed over in the file's order
    assert digest in (whole, None)
    if in_order and not set(cuts) - {0}:  # one part, in order: what a single connection sends
        assert digest == whole


def test_the_direct_path_is_taken_where_the_filesystem_allows_it(tmp_path: Path) -> None:
    data = random.Random(1).randbytes(2 * BUFFER + 3 * ALIGN + 17)
    sink, _ = write(tmp_path / "f.part", data, [ALIGN + 5, BUFFER + 1], 65536, 1)
    assert sink.direct is not None or not hasattr(os, "O_DIRECT")
    assert (tmp_path / "f.part").read_bytes() == data


def test_without_o_direct_everything_is_written_plainly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the OS or the filesystem refuses O_DIRECT (`_open_direct` answers None)."""
    monkeypatch.setattr(files, "_open_direct", lambda _: None)
    data = random.Random(2).randbytes(BUFFER + 12345)
    sink, _ = write(tmp_path / "f.part", data, [777, BUFFER], 100_000, 2)
    assert sink.direct is None
    assert (tmp_path / "f.part").read_bytes() == data
    assert sha256(tmp_path / "f.part") == hashlib.sha256(data).digest()


def test_a_filesystem_that_refuses_a_direct_write_gets_it_plainly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """O_DIRECT opened but refused at the first write (EINVAL): that write and every later one
    go through pwrite, and the file is whole."""
    calls: list[int] = []

    def refuse(fd: int, *_: object) -> int:
        calls.append(fd)
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "pwritev", refuse)
    data = random.Random(3).randbytes(3 * BUFFER + 5000)
    sink, _ = write(tmp_path / "f.part", data, [BUFFER + 100], 1 << 20, 3)
    assert len(calls) == 1
    assert sink.direct is None
    assert (tmp_path / "f.part").read_bytes() == data


def test_a_failed_background_write_raises_and_nothing_is_left_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full buffer is written on the writing thread: a disk error there (ENOSPC) reaches the
    caller, from a later write or from close(), and close() still ends both threads."""

    def full(*_: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwritev", full)
    data = random.Random(4).randbytes(8 * BUFFER)
    path = tmp_path / "f.part"
    sink = new_sink(path, len(data))
    if sink.direct is None:
        sink.close()
        pytest.skip("this filesystem takes no O_DIRECT: nothing is written in the background")

    def feed_and_close() -> None:
        try:
            for at in range(0, len(data), 1 << 20):
                sink[at : at + (1 << 20)] = memoryview(data)[at : at + (1 << 20)]
        finally:
            sink.close()

    with pytest.raises(OSError, match="No space left"):
        feed_and_close()
    assert sink._writing.pool._shutdown
    assert sink._hashing.pool._shutdown


def test_the_in_order_digest_waits_for_the_hashing_thread(tmp_path: Path) -> None:
    """close() and digest() while the hashing thread is still behind (held by a gate): they
    wait for it."""
    data = random.Random(5).randbytes(2 * BUFFER + 999)
    path = tmp_path / "f.part"
    sink = new_sink(path, len(data))
    gate = threading.Event()

    def held() -> None:
        gate.wait()

    sink._hashing.submit(held, 0)  # everything handed over queues behind it
    for at in range(0, len(data), 1 << 16):
        sink[at : at + (1 << 16)] = memoryview(data)[at : at + (1 << 16)]
    threading.Timer(0.2, gate.set).start()
    try:
        sink.close()
        assert sink.digest() == hashlib.sha256(data).digest()
    finally:
        gate.set()


@pytest.mark.parametrize("connections", [2, 3, 7])
def test_parts_written_from_several_threads_at_once_make_the_file(
    tmp_path: Path, connections: int
) -> None:
    """As `Client._into` writes parallel ranges: each part from a thread of its own, at once,
    with the background hashing and writing lanes shared by all of them."""
    data = random.Random(connections).randbytes(3 * BUFFER + 4321)
    path = tmp_path / "f.part"
    sink = new_sink(path, len(data))
    edges = [len(data) * i // connections for i in range(connections + 1)]

    def part(lo: int, hi: int) -> None:
        step = random.Random(lo).choice([1000, 65536, 1 << 20])
        for at in range(lo, hi, step):
            sink[at : min(at + step, hi)] = memoryview(data)[at : min(at + step, hi)]

    threads = [threading.Thread(target=part, args=pair) for pair in itertools.pairwise(edges)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sink.close()
    assert path.read_bytes() == data
    assert sha256(path) == hashlib.sha256(data).digest()


class Body:
    """A response body read with `readinto`, a random number of bytes per call (at most what
    the view holds); `fail_at`: the offset at which the connection drops once."""

    def __init__(self, data: bytes, at: int, seed: int, fail_at: int | None = None) -> None:
        self.data, self.at, self.rng, self.fail_at = data, at, random.Random(seed), fail_at

    def readinto(self, view: memoryview) -> int:
        if self.fail_at is not None and self.at >= self.fail_at:
            self.fail_at = None
            raise ConnectionResetError("dropped")
        n = min(len(view), len(self.data) - self.at, self.rng.choice([1, 4096, 70_000, 1 << 24]))
        view[:n] = self.data[self.at : self.at + n]
        self.at += n
        return n


def fill(sink: FileSink, data: bytes, lo: int, hi: int, seed: int, fail_at: int | None) -> int:
    """Part [lo, hi) through `fill`, resumed where a dropped connection left it, as
    `Client._range` does; the bytes counted by `advance`."""
    counted = [0]

    def advance(n: int) -> None:
        counted[0] += n

    at = lo
    body = Body(data, lo, seed, fail_at)
    while at < hi:
        with contextlib.suppress(ConnectionResetError):
            sink.fill(at, hi, body.readinto, advance)
        at = lo + counted[0]
        body = Body(data, at, seed + 1)
    return counted[0]


@settings(max_examples=30, deadline=None)
@given(
    length=st.integers(1, 3 * BUFFER // 2),
    cuts=st.lists(st.integers(1, 3 * BUFFER // 2), max_size=3),
    seed=st.integers(0, 2**16),
    drop=st.booleans(),
    direct=st.booleans(),
)
def test_bodies_received_straight_into_the_buffers_make_the_file(
    tmp_path_factory: pytest.TempPathFactory,
    length: int,
    cuts: list[int],
    seed: int,
    drop: bool,
    direct: bool,
) -> None:
    """`fill`: each part read with readinto into the sink's own buffers, parts one after the
    other, a connection dropped mid-part and resumed; with O_DIRECT and without it."""
    data = random.Random(seed).randbytes(length)
    path = tmp_path_factory.mktemp("fill") / "f.part"
    new_file(path, length)
    with pytest.MonkeyPatch.context() as patch:
        if not direct:
            patch.setattr(files, "_open_direct", lambda _: None)
        sink = FileSink(path, length)
        edges = [0, *sorted({c for c in cuts if c < length}), length]
        for lo, hi in itertools.pairwise(edges):
            fail = random.Random(seed).randrange(lo, hi) if drop else None
            assert fill(sink, data, lo, hi, seed, fail) == hi - lo
        sink.close()
    assert path.read_bytes() == data
    whole = hashlib.sha256(data).digest()
    assert sink.digest() in (whole, None)
    if len(edges) == 2:  # one part from 0, in order: hashed as it was written
        assert sink.digest() == whole


@pytest.mark.parametrize("direct", [True, False])
@pytest.mark.parametrize("start", [0, 100, ALIGN])
def test_a_body_that_ends_early_returns_where_it_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, direct: bool, start: int
) -> None:
    """`fill` of [start, N) from a body of fewer bytes: it stops where the body did (the caller
    asks again from there), and what came is in the file."""
    if not direct:
        monkeypatch.setattr(files, "_open_direct", lambda _: None)
    data = random.Random(6).randbytes(BUFFER + 5000)
    path = tmp_path / "f.part"
    sink = new_sink(path, len(data))
    short = start + 3000
    body = Body(data[:short], start, 6)
    assert sink.fill(start, len(data), body.readinto, lambda _: None) == short
    rest = Body(data, short, 7)
    assert sink.fill(short, len(data), rest.readinto, lambda _: None) == len(data)
    if start:
        sink[0:start] = memoryview(data)[:start]
    sink.close()
    assert path.read_bytes() == data


def test_parts_on_buffer_edges_keep_the_hashing_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two parts meeting on a buffer edge, each filled from its own thread; the first part's
    thread is held just after it handed its last buffer over, while the second part hands its
    first one over: the in-order digest (if any) is still the file's."""
    data = random.Random(8).randbytes(4 * BUFFER)
    path = tmp_path / "f.part"
    sink = new_sink(path, len(data))
    handed = threading.Event()
    digest = FileSink._digest

    def held(self: FileSink, at: int, view: memoryview, **kw: Any) -> bool:
        kept = digest(self, at, view, **kw)
        if at == BUFFER:
            handed.set()
            time.sleep(0.2)  # the second part's first buffer is handed over meanwhile
        return kept

    monkeypatch.setattr(FileSink, "_digest", held)

    def part(lo: int, hi: int, wait: threading.Event | None) -> None:
        if wait is not None:
            wait.wait(5)
        sink.fill(lo, hi, Body(data, lo, lo).readinto, lambda _: None)

    threads = [threading.Thread(target=part, args=(0, 2 * BUFFER, None)),
               threading.Thread(target=part, args=(2 * BUFFER, 4 * BUFFER, handed))]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sink.close()
    assert path.read_bytes() == data
    assert sink.digest() in (hashlib.sha256(data).digest(), None)
