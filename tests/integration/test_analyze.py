"""POST /v1/analyze: the signal through depth, the reason these schemes exist."""

from __future__ import annotations

import tracemalloc

import anyio
import httpx
import pytest
from fastapi.testclient import TestClient

from service import analyze as analysis
from service.analyze import ACTIVATIONS, MAX_BYTES, Activation, AnalyzeSpec, cost
from service.api import create_app
from service.config import Settings
from service.engines import Engines
from service.plan import Limits

DEEP = [256] * 51  # 50 layers


def analyze(client: TestClient, **body: object) -> dict[str, object]:
    r = client.post("/v1/analyze", json={"widths": DEEP, "activation": "relu", **body})
    assert r.status_code == 200, r.text
    data: dict[str, object] = r.json()
    return data


def last(data: dict[str, object], key: str) -> float:
    layers = data["layers"]
    assert isinstance(layers, list)
    assert len(layers) == 50
    return float(layers[-1][key])


def test_he_keeps_a_relu_signal_through_50_layers(client: TestClient) -> None:
    data = analyze(client, scheme="he_normal", convention="torch")
    x = float(data["input_std"])  # type: ignore[arg-type]
    assert x / 2 <= last(data, "activation_std") <= 2 * x
    layers = data["layers"]
    assert isinstance(layers, list)
    assert 0.5 <= layers[0]["gradient_std"] <= 2
    assert layers[0]["weight_std"] == pytest.approx((2 / 256) ** 0.5)


def test_a_scale_ten_times_too_small_collapses_the_signal(client: TestClient) -> None:
    # std 10x below He's: variance scale 2/100
    data = analyze(client, scheme="variance_scaling", convention="torch", factor=0.02)
    assert last(data, "activation_std") < 1e-3
    layers = data["layers"]
    assert isinstance(layers, list)
    assert layers[0]["gradient_std"] < 1e-3


def test_too_large_explodes_and_glorot_fades_under_relu(client: TestClient) -> None:
    big = analyze(client, scheme="variance_scaling", convention="torch", factor=8.0)
    assert last(big, "activation_std") > 1e6
    glorot = analyze(client, scheme="glorot_normal", convention="torch")
    assert last(glorot, "activation_std") < 1e-3  # Glorot assumes a linear activation


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_runs_and_is_reproducible(client: TestClient, activation: str) -> None:
    body = {"widths": [64, 64, 32], "activation": activation, "scheme": "lecun_normal"}
    a = client.post("/v1/analyze", json=body).json()
    b = client.post("/v1/analyze", json=body).json()
    assert a == b
    assert len(a["layers"]) == 2


def test_analyze_refuses_what_it_cannot_do(client: TestClient) -> None:
    r = client.post(
        "/v1/analyze", json={"widths": [8192] * 3, "scheme": "he_normal", "batch": 4096}
    )
    assert r.status_code == 422
    assert "at most" in r.json()["detail"]
    r = client.post("/v1/analyze", json={"widths": [4], "scheme": "he_normal"})
    assert r.status_code == 422
    r = client.post(
        "/v1/analyze", json={"widths": [4, 4], "scheme": "he_normal", "activation": "swish"}
    )
    assert r.status_code == 422


@pytest.mark.parametrize(
    ("widths", "batch"), [([256] * 51, 256), ([1024] * 5, 1024), ([2048] * 3, 512), ([8, 64], 2)]
)
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_the_cost_estimate_covers_what_an_analysis_allocates(
    widths: list[int], batch: int, activation: Activation
) -> None:
    """The admission check refuses by an estimate; the estimate bounds the real peak."""
    spec = AnalyzeSpec(tuple(widths), activation, "he_normal", batch=batch)
    estimate, _ = cost(spec)
    tracemalloc.start()
    analysis.analyze(spec, Limits(2**32, 2**34), Engines("numpy", threads=1))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak <= estimate
    assert estimate <= MAX_BYTES


def test_an_analysis_beyond_its_share_is_refused_before_any_work(client: TestClient) -> None:
    """The issue's trigger (inside the field limits: +1.2 GiB and 16 s before) is a 422."""
    body = {
        "widths": [4096, 4096, 3900],
        "scheme": "he_normal",
        "batch": 4096,
        "activation": "gelu",
    }
    tracemalloc.start()
    r = client.post("/v1/analyze", json=body)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert r.status_code == 422
    assert "at most 256 MiB" in r.json()["detail"]
    assert peak < 8 << 20


def test_analyses_beyond_the_slots_wait_then_get_503(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every slot taken for longer than the wait, the next analysis is 503 + Retry-After."""
    from service.api import deps

    monkeypatch.setattr(deps, "ANALYSIS_WAIT", 0.2)
    app = create_app(Settings(max_analyses=1))
    services = app.state.services
    body = {"widths": [8, 8], "scheme": "he_normal"}

    async def hold_and_ask() -> int:
        async with services.analyses.slot():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                r = await c.post("/v1/analyze", json=body)
                assert r.headers["retry-after"] == "1"
                assert r.headers["content-type"] == "application/problem+json"
                return r.status_code

    assert anyio.run(hold_and_ask) == 503
    with TestClient(app) as c:  # the slot is free again
        assert c.post("/v1/analyze", json=body).status_code == 200
