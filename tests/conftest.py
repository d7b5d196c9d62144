"""Shared fixtures: an app built from explicit settings, and a client for it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings

from service.api import create_app
from service.config import Settings

# The gate must not flake: fixed example generation, and no wall-clock deadline on a shared,
# noisy machine. `HYPOTHESIS_PROFILE=explore` searches afresh.
hypothesis_settings.register_profile("gate", derandomize=True, deadline=None)
hypothesis_settings.register_profile("explore", deadline=None, max_examples=1000)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "gate"))


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("WEIGHTGEN_"):
            monkeypatch.delenv(key)


@pytest.fixture
def settings() -> Settings:
    return Settings(max_elements=2**24, max_bytes=2**26)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c
