"""service.allocator: the glibc mmap threshold is pinned, unless an operator set it or asks not."""

from __future__ import annotations

import ctypes.util
import sys

import pytest

from service import allocator

GLIBC = sys.platform.startswith("linux") and "libc.so.6" in (ctypes.util.find_library("c") or "")


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt only")
def test_the_threshold_is_pinned_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert allocator.pin_mmap_threshold(128 << 10)


def test_zero_or_an_operators_setting_leaves_glibc_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not allocator.pin_mmap_threshold(0)
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert not allocator.pin_mmap_threshold(128 << 10)
