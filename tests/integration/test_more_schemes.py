"""Issue 18, point 1, through the app: sparse, uniform_unit_scaling, stft and delta_orthogonal's
column_axis in the catalogue, described, served, sliced and refused; complex dtypes refused."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from fastapi.testclient import TestClient

PROBLEM = "application/problem+json"


def described(client: TestClient, **body: object) -> dict[str, object]:
    r = client.post("/v1/tensors/describe", json=body)
    assert r.status_code == 200, r.text
    data: dict[str, object] = r.json()
    return data


def test_the_catalogue_lists_them_with_their_parameters(client: TestClient) -> None:
    rows = {s["name"]: s for s in client.get("/v1/schemes").json()["schemes"]}
    sparse = {p["name"]: p for p in rows["sparse"]["conventions"]["torch"]["params"]}
    assert sparse["sparsity"]["required"] is True
    assert (sparse["sparsity"]["minimum"], sparse["sparsity"]["maximum"]) == (0.0, 1.0)
    assert sparse["std"]["default"] == 0.01
    assert "torch/nn/init.py::sparse_" in rows["sparse"]["source"]
    stft = {p["name"]: p for p in rows["stft"]["conventions"]["keras"]["params"]}
    assert stft["window"]["default"] == "hann"
    assert "tukey" not in stft["window"]["choices"]
    assert stft["scaling"]["choices"] == ["density", "spectrum", "none"]
    assert (stft["periodic"]["type"], stft["periodic"]["default"]) == ("boolean", False)
    assert list(rows["uniform_unit_scaling"]["conventions"]) == ["tf1"]
    jax = {p["name"]: p for p in rows["delta_orthogonal"]["conventions"]["jax"]["params"]}
    assert jax["column_axis"]["default"] == -1
    for name in ("sparse", "uniform_unit_scaling", "stft"):
        assert rows[name]["summary"]
        assert rows[name]["formula"]


def test_sparse_is_described_and_served_with_a_strong_etag(client: TestClient) -> None:
    body = {"shape": [40, 30], "scheme": "sparse", "convention": "torch", "sparsity": 0.25}
    data = described(client, **body, seed=5, std=0.5)
    plan = data["plan"]
    assert isinstance(plan, dict)
    assert (plan["kind"], plan["stddev"], plan["mean"]) == ("sparse", 0.5, 0.0)
    assert math.isclose(plan["effective_std"], 0.5 * math.sqrt(1 - 10 / 40), rel_tol=1e-15)
    assert (plan["fan_in"], plan["fan_out"], plan["mode"]) == (30, 40, None)
    assert not str(data["etag"]).startswith("W/")
    full = np.load(io.BytesIO(client.get(str(data["url"])).content))
    assert ((full == 0).sum(axis=0) == 10).all()
    part = client.get(str(data["url"]) + "&slice=5:25,7:19")
    assert part.status_code == 200
    assert np.array_equal(np.load(io.BytesIO(part.content)), full[5:25, 7:19])
    shard = client.get(str(data["url"]) + "&shard=1:2:3")
    assert np.array_equal(np.load(io.BytesIO(shard.content)), full[:, 20:30])


def test_uniform_unit_scaling_is_described(client: TestClient) -> None:
    body = {"shape": [3, 3, 32, 64], "scheme": "uniform_unit_scaling", "convention": "tf1"}
    plan = described(client, **body, factor=1.43)["plan"]
    assert isinstance(plan, dict)
    assert plan["limit"] == math.sqrt(3 / 288) * 1.43
    assert (plan["kind"], plan["fan_in"], plan["fan_out"]) == ("uniform", 288, 576)
    assert plan["rule"] == "tf.compat.v1.uniform_unit_scaling_initializer(factor=1.43)"


def test_stft_is_deterministic_strong_and_its_url_round_trips(client: TestClient) -> None:
    data = described(client, shape=[64, 1, 33], scheme="stft", window="hamming", periodic=True)
    assert not str(data["etag"]).startswith("W/")
    again = client.get(str(data["url"]) + "&describe=true").json()
    assert (again["etag"], again["request"]) == (data["etag"], data["request"])
    other_seed = described(client, shape=[64, 1, 33], scheme="stft", window="hamming", seed=9)
    a = client.get(str(data["url"])).content
    b = client.post("/v1/tensors", json={**other_seed["request"], "periodic": True}).content  # type: ignore[dict-item]
    assert a == b  # no randomness: the seed changes nothing but the ETag
    kernel = np.load(io.BytesIO(a)).astype(np.float64)
    plan = data["plan"]
    assert isinstance(plan, dict)
    assert plan["mean"] == pytest.approx(kernel.mean(), abs=1e-7)
    assert plan["effective_std"] == pytest.approx(kernel.std(), rel=1e-6)


def test_delta_orthogonal_takes_column_axis_under_jax(client: TestClient) -> None:
    url = "/v1/tensors/delta_orthogonal?shape=3,3,4,4&convention=jax&seed=2&format=raw"
    w = np.frombuffer(client.get(url).content, dtype="<f4").reshape(3, 3, 4, 4)
    t = np.frombuffer(client.get(url + "&column_axis=0").content, dtype="<f4").reshape(w.shape)
    np.testing.assert_allclose(t[1, 1], w[1, 1].T, atol=1e-7)


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({"shape": [4, 4, 4], "scheme": "sparse", "convention": "torch", "sparsity": 0.1}, 422,
         "sparse needs a rank 2 shape (torch sparse_ supports only 2-d tensors (rows, columns)); "
         "received rank 3 shape [4, 4, 4]"),
        ({"shape": [4, 4], "scheme": "sparse", "convention": "torch"}, 422, "needs sparsity"),
        ({"shape": [4, 4], "scheme": "sparse", "convention": "torch", "sparsity": 2}, 422,
         "less than or equal to 1 (received 2)"),
        ({"shape": [8, 3, 5], "scheme": "stft"}, 422, "stft needs shape[1] = 1"),
        ({"shape": [8, 1, 5], "scheme": "stft", "window": "tukey"}, 422,
         "Input should be 'hann', 'hamming'"),
        ({"shape": [3, 4, 4], "scheme": "delta_orthogonal", "convention": "jax",
          "column_axis": 2}, 422, "expected one of -2, -1, 0, 1; received 2"),
        ({"shape": [4, 4], "scheme": "uniform_unit_scaling"}, 422, "defined under tf1"),
    ],
)  # fmt: skip
def test_bad_input_is_a_problem_saying_what_was_received_and_allowed(
    client: TestClient, body: dict[str, object], status: int, text: str
) -> None:
    r = client.post("/v1/tensors/describe", json=body)
    assert (r.status_code, r.headers["content-type"]) == (status, PROBLEM)
    assert text in r.json()["detail"]


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_complex_dtypes_are_refused_naming_the_served_ones(client: TestClient, dtype: str) -> None:
    """docs/decisions.md: no complex dtypes (JAX's complex variance_scaling and orthogonal)."""
    r = client.get(f"/v1/tensors/orthogonal?shape=4,4&convention=jax&dtype={dtype}")
    assert (r.status_code, r.headers["content-type"]) == (422, PROBLEM)
    detail = r.json()["detail"]
    assert f"received '{dtype}'" in detail
    for served in ("'float32'", "'float64'", "'bfloat16'", "'float8_e4m3fn'"):
        assert served in detail
