"""POST /v1/analyze: the signal through depth, the reason these schemes exist."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.analyze import ACTIVATIONS

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
