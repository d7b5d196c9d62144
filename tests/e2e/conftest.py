"""Live servers for the end-to-end tests: `python -m service` in a subprocess on a free
loopback port (bench/live.py starts them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.live import Server, live_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with live_server(tmp_path_factory.mktemp("server")) as s:
        yield s


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start another server with extra WEIGHTGEN_ settings; stopped after the test."""
    stack: list[object] = []

    def start(**settings: str) -> Server:
        cm = live_server(tmp_path, {f"WEIGHTGEN_{k.upper()}": v for k, v in settings.items()})
        stack.append(cm)
        return cm.__enter__()

    yield start
    for cm in reversed(stack):
        cm.__exit__(None, None, None)  # type: ignore[attr-defined]
