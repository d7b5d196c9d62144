"""Keys, CORS, body limits, request ids, metrics and logs, through the ASGI app."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.api import create_app
from service.config import Settings
from service.engines import fast
from service.logs import JsonFormatter

PROBLEM = "application/problem+json"


@pytest.fixture
def keyed() -> Iterator[TestClient]:
    with TestClient(
        create_app(Settings(api_keys=["k-one", "k-two"])), raise_server_exceptions=False
    ) as c:
        yield c


def test_keys_guard_v1_and_leave_operations_open(keyed: TestClient) -> None:
    r = keyed.get("/v1/schemes")
    assert r.status_code == 401
    assert r.headers["content-type"] == PROBLEM
    assert r.headers["www-authenticate"] == 'Bearer realm="weightgen"'
    assert "needs an API key" in r.json()["detail"]
    wrong = keyed.get("/v1/schemes", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert "not valid" in wrong.json()["detail"]
    assert keyed.get("/v1/schemes", headers={"Authorization": "Basic k-one"}).status_code == 401
    for key in ("k-one", "k-two"):
        assert (
            keyed.get("/v1/schemes", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        )
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert keyed.get(path).status_code == 200


def test_keys_guard_planned_urls_too(keyed: TestClient) -> None:
    """A URL whose plan is cached is answered before routing (fastlane.CachedUrls), but inside
    the key check: without a key it is still a 401."""
    url = "/v1/tensors/he_normal?shape=4,4&seed=1"
    assert keyed.get(url, headers={"Authorization": "Bearer k-one"}).status_code == 200
    assert len(keyed.app.state.services.plans.entries) == 1  # type: ignore[attr-defined]
    assert keyed.get(url).status_code == 401
    assert keyed.head(url).status_code == 401
    assert keyed.get(url, headers={"Authorization": "Bearer k-two"}).status_code == 200


def test_cors_only_for_configured_origins() -> None:
    app = create_app(Settings(cors_origins=["https://app.example"]))
    with TestClient(app) as c:
        pre = c.options(
            "/v1/tensors/he_normal",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "range",
            },
        )
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == "https://app.example"
        r = c.get(
            "/v1/tensors/he_normal?shape=4,4&seed=1", headers={"Origin": "https://app.example"}
        )
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        exposed = r.headers["access-control-expose-headers"].lower()
        assert "etag" in exposed
        assert "x-init-effective-std" in exposed
        other = c.get("/v1/schemes", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
    with TestClient(create_app(Settings())) as c:
        r = c.get("/v1/schemes", headers={"Origin": "https://app.example"})
        assert "access-control-allow-origin" not in r.headers


def test_large_bodies_get_413_problems() -> None:
    with TestClient(create_app(Settings(max_body_bytes=2048))) as c:
        body = {"shape": [2], "scheme": "zeros", "name": "x" * 100}
        assert c.post("/v1/tensors/describe", json=body).status_code == 200  # small: served
        big = json.dumps({"shape": [2], "scheme": "zeros", "pad": "x" * 5000}).encode()
        r = c.post(
            "/v1/tensors/describe", content=big, headers={"content-type": "application/json"}
        )
        assert r.status_code == 413
        assert r.headers["content-type"] == PROBLEM
        assert "WEIGHTGEN_MAX_BODY_BYTES" in r.json()["detail"]

        def chunks() -> Iterator[bytes]:
            yield big[:1500]
            yield big[1500:]

        streamed = c.post(
            "/v1/tensors/describe", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413


def test_request_ids_are_echoed_or_made_and_name_problems(client: TestClient) -> None:
    r = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    problem = client.get("/v1/tensors/xavir?shape=2", headers={"X-Request-ID": "req-9"})
    assert problem.json()["instance"] == "urn:weightgen:request:req-9"


def test_metrics_have_low_cardinality_labels(client: TestClient) -> None:
    client.get("/v1/tensors/he_normal?shape=300,200&seed=1&format=raw")
    client.get("/v1/tensors/he_normal?shape=301,200&seed=2&format=safetensors&dtype=bfloat16")
    client.get("/v1/tensors/nope?shape=2")
    text = client.get("/metrics").text
    assert (
        'weightgen_requests_total{method="GET",route="/v1/tensors/{scheme}",status="200"} 2.0'
        in text
    )
    assert 'route="/v1/tensors/{scheme}",status="422"' in text
    assert f'weightgen_kernel_info{{build="{fast.isa() or "none"}"}} 1.0' in text
    with TestClient(create_app(Settings(engine="torch"))) as torch_cpu:
        assert 'weightgen_kernel_info{build="none"} 1.0' in torch_cpu.get("/metrics").text
    assert (
        'weightgen_generated_bytes_total{dtype="float32",engine="numpy",format="raw"} 240000.0'
        in text
    )
    assert 'dtype="bfloat16",engine="numpy",format="safetensors"' in text
    assert "weightgen_generation_seconds_bucket" in text
    assert "weightgen_streams_in_flight 0.0" in text
    assert "nope" not in text  # paths never become labels


def test_access_log_is_json_with_the_request_id(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="weightgen.access"):
        client.get("/v1/schemes", headers={"X-Request-ID": "log-1"})
    records = [r for r in caplog.records if r.name == "weightgen.access"]
    line = next(r.fields for r in records if r.fields["request_id"] == "log-1")  # type: ignore[attr-defined]
    formatted = json.loads(JsonFormatter().format(records[-1]))
    assert formatted["msg"] == "request"
    assert formatted["request_id"] == "log-1"
    assert formatted["level"] == "info"
    assert (line["route"], line["status"], line["method"]) == ("/v1/schemes", 200, "GET")
    assert line["bytes"] > 0


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v1/tensors/he_normal?shape=--5", {}),
        ("/v1/tensors/he_normal?shape=%C2%B2,3", {}),
        ("/v1/tensors/he_normal?shape=" + "9" * 5000, {}),
        ("/v1/tensors/kaiming_normal?shape=4,4&convention=torch&negative_slope=1e308", {}),
        ("/v1/tensors/orthogonal?shape=4096,4096&seed=1", {}),
    ],
)
def test_hostile_queries_are_4xx_problems(
    client: TestClient, path: str, headers: dict[str, str]
) -> None:
    r = client.get(path, headers=headers)
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"] == PROBLEM


HOSTILE_RANGES = [b"bytes=\xc2\xb2-", b"bytes=" + b"9" * 5000 + b"-", b"bytes=-" + b"1" * 40]


@pytest.mark.parametrize("value", HOSTILE_RANGES)
def test_hostile_ranges_are_ignored(client: TestClient, value: bytes) -> None:
    url = "/v1/tensors/he_normal?shape=8,8&seed=1"
    assert client.get(url, headers={"Range": value}).status_code == 200  # type: ignore[arg-type]


def test_a_deeply_nested_manifest_is_a_problem(client: TestClient) -> None:
    import base64
    import zlib

    deep = base64.urlsafe_b64encode(zlib.compress(b"[" * 100_000 + b"]" * 100_000)).decode()
    r = client.get("/v1/bundles/" + deep.rstrip("="))
    assert r.status_code == 422


def test_refused_types_stay_refused_behind_a_wildcard(client: TestClient) -> None:
    r = client.get(
        "/v1/tensors/he_normal?shape=8,8&seed=1", headers={"Accept": "application/x-npy;q=0, */*"}
    )
    assert r.status_code == 200
    assert r.headers["content-type"] != "application/x-npy"


def test_payloads_carry_no_service_version(client: TestClient) -> None:
    r = client.get("/v1/tensors/he_normal?shape=8,8&seed=1&format=safetensors")
    assert b"service_version" not in r.content
    assert r.headers["x-init-service-version"]


def test_cors_headers_on_401() -> None:
    app = create_app(Settings(api_keys=["k"], cors_origins=["http://x.example"]))
    with TestClient(app) as c:
        r = c.get("/v1/schemes", headers={"Origin": "http://x.example"})
        assert r.status_code == 401
        assert r.headers["access-control-allow-origin"] == "http://x.example"


def test_structured_tensors_build_once_per_stream() -> None:
    app = create_app(Settings(block_elements=1024))
    with TestClient(app) as c:
        url = "/v1/tensors/orthogonal?shape=300,200&seed=3&format=raw"
        first = c.get(url).content
        memo = app.state.services.engines.numpy.memo
        assert len(memo.entries) == 1  # 59 blocks, one QR
        assert c.get(url, headers={"Range": "bytes=1000-1999"}).content == first[1000:2000]
        assert len(memo.entries) == 1
