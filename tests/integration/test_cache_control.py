"""Cache-Control of payloads under WEIGHTGEN_CACHE_VISIBILITY: a keyed answer is `private` (a
shared cache must not replay it to a request without the key), an open one `public`, a seed the
service drew `no-store`; the same on GET, HEAD, 206, 304, tensors and bundles, route and fast
lane (docs/operations.md, "The nginx cache")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import pytest
from fastapi.testclient import TestClient

from service.api import create_app
from service.api.headers import visibility
from service.config import Settings

PINNED = "/v1/tensors/he_normal?shape=64,32&seed=4&format=raw"
DRAWN = "/v1/tensors/he_normal?shape=64,32&format=raw"
BUNDLE: dict[str, Any] = {
    "seed": 2,
    "layers": [{"preset": "torch.Linear", "name": "fc", "in_features": 8, "out_features": 4}],
}
KEY = {"Authorization": "Bearer k"}
PUBLIC = "public, max-age=31536000, immutable"
PRIVATE = "private, max-age=31536000, immutable"
CASES = [  # (cache_visibility, API keys set, the Cache-Control of a pinned answer)
    ("auto", False, PUBLIC),
    ("auto", True, PRIVATE),
    ("public", False, PUBLIC),
    ("public", True, PUBLIC),  # the operator's explicit choice (a cache that keys on the key)
    ("private", False, PRIVATE),
    ("private", True, PRIVATE),
]


@pytest.fixture
def make_client() -> Iterator[Any]:
    opened: list[TestClient] = []

    def make(mode: Literal["auto", "public", "private"], keyed: bool) -> TestClient:
        settings = Settings(cache_visibility=mode, api_keys=["k"] if keyed else [])
        c = TestClient(create_app(settings), raise_server_exceptions=False)
        if keyed:
            c.headers.update(KEY)
        opened.append(c.__enter__())
        return c

    yield make
    for c in opened:
        c.__exit__(None, None, None)


@pytest.mark.parametrize(("mode", "keyed", "expected"), CASES)
def test_visibility_resolves_auto_by_the_keys(
    mode: Literal["auto", "public", "private"], keyed: bool, expected: str
) -> None:
    settings = Settings(cache_visibility=mode, api_keys=["k"] if keyed else [])
    assert f"{visibility(settings)}, max-age=31536000, immutable" == expected


@pytest.mark.parametrize(("mode", "keyed", "expected"), CASES)
def test_pinned_tensors_carry_the_visibility_everywhere(
    make_client: Any, mode: Literal["auto", "public", "private"], keyed: bool, expected: str
) -> None:
    c: TestClient = make_client(mode, keyed)
    first = c.get(PINNED)  # the route
    again = c.get(PINNED)  # the fast lane (the plan cache)
    head = c.head(PINNED)
    part = c.get(PINNED, headers={"Range": "bytes=10-99"})
    etag = first.headers["etag"]
    same = c.get(PINNED, headers={"If-None-Match": etag})
    posted = c.post("/v1/tensors", json={"shape": [64, 32], "scheme": "he_normal", "seed": 4})
    assert [r.status_code for r in (first, again, head, part, same, posted)] == [
        200,
        200,
        200,
        206,
        304,
        200,
    ]
    for r in (first, again, head, part, same, posted):
        assert r.headers["cache-control"] == expected


@pytest.mark.parametrize(("mode", "keyed", "expected"), CASES)
def test_pinned_bundles_carry_the_visibility(
    make_client: Any, mode: Literal["auto", "public", "private"], keyed: bool, expected: str
) -> None:
    c: TestClient = make_client(mode, keyed)
    url = c.post("/v1/bundles/describe", json=BUNDLE).json()["url"]
    for r in (c.get(url), c.get(url), c.head(url), c.post("/v1/bundles", json=BUNDLE)):
        assert r.status_code == 200
        assert r.headers["cache-control"] == expected


@pytest.mark.parametrize(("mode", "keyed", "expected"), CASES)
def test_drawn_seeds_are_never_stored(
    make_client: Any, mode: Literal["auto", "public", "private"], keyed: bool, expected: str
) -> None:
    del expected
    c: TestClient = make_client(mode, keyed)
    unseeded = {**BUNDLE, "seed": None}
    for r in (c.get(DRAWN), c.head(DRAWN), c.post("/v1/bundles", json=unseeded)):
        assert r.status_code == 200
        assert r.headers["cache-control"] == "no-store"


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIGHTGEN_API_KEYS", '["k"]')
    assert visibility(Settings()) == "private"
    monkeypatch.setenv("WEIGHTGEN_CACHE_VISIBILITY", "public")
    assert visibility(Settings()) == "public"
    monkeypatch.delenv("WEIGHTGEN_API_KEYS")
    monkeypatch.setenv("WEIGHTGEN_CACHE_VISIBILITY", "private")
    assert visibility(Settings()) == "private"
