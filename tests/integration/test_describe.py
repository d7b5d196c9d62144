"""POST /v1/tensors/describe, GET /v1/schemes and errors, through the ASGI app."""

from __future__ import annotations

import math

import pytest
from fastapi.testclient import TestClient

from service import schemes

PROBLEM = "application/problem+json"


def describe(client: TestClient, **body: object) -> dict[str, object]:
    r = client.post("/v1/tensors/describe", json=body)
    assert r.status_code == 200, r.text
    data: dict[str, object] = r.json()
    return data


def test_describe_keras_he_normal_worked_example(client: TestClient) -> None:
    data = describe(client, shape=[3, 3, 32, 64], scheme="he_normal", seed=7)
    plan = data["plan"]
    assert isinstance(plan, dict)
    assert (plan["fan_in"], plan["fan_out"]) == (288, 576)
    assert math.isclose(plan["stddev"], math.sqrt(2 / 288) / 0.87962566103423978, rel_tol=1e-12)
    assert math.isclose(plan["limit"], 0.189475, rel_tol=1e-5)
    assert math.isclose(plan["effective_std"], math.sqrt(2 / 288), rel_tol=1e-12)
    assert plan["kind"] == "truncated_normal"
    assert data["request"] == {
        "shape": [3, 3, 32, 64],
        "scheme": "he_normal",
        "convention": "keras",
        "seed": 7,
        "name": "weight",
        "dtype": "float32",
        "format": "npy",
    }
    assert (data["numel"], data["nbytes"], data["seed_source"]) == (18432, 73728, "request")


def test_describe_torch_linear_default(client: TestClient) -> None:
    data = describe(
        client,
        shape=[256, 128],
        scheme="kaiming_uniform",
        convention="torch",
        negative_slope=5**0.5,
    )
    plan = data["plan"]
    assert isinstance(plan, dict)
    assert math.isclose(plan["limit"], 1 / math.sqrt(128), rel_tol=1e-12)
    assert data["seed_source"] == "service"


def test_describe_tf1_default(client: TestClient) -> None:
    body = {"shape": [3, 3, 32, 64], "scheme": "variance_scaling", "convention": "tf1"}
    plan = describe(client, **body)["plan"]
    assert isinstance(plan, dict)
    assert math.isclose(plan["stddev"], math.sqrt(1.3 * 2 / 288), rel_tol=1e-12)


def test_a_seed_above_2_63_round_trips(client: TestClient) -> None:
    assert describe(client, shape=[2], scheme="zeros", seed=2**64 - 1)["seed"] == 2**64 - 1


@pytest.mark.parametrize(
    ("body", "pointer", "text"),
    [
        ({"shape": [4, 4], "scheme": "he_normal", "foo": 1}, "#/foo", "Extra inputs"),
        ({"shape": [4, -1], "scheme": "he_normal"}, "#/shape/1", "greater than or equal to 0"),
        ({"shape": [1.5], "scheme": "he_normal"}, "#/shape/0", "valid integer"),
        ({"shape": "4x4", "scheme": "he_normal"}, "#/shape", "valid list"),
        ({"shape": [1] * 9, "scheme": "he_normal"}, "#/shape", "at most 8"),
        ({"shape": [4], "scheme": "he_normal", "seed": 2**64}, "#/seed", "less than or equal"),
        ({"shape": [4], "scheme": "he_normal", "convention": "mx"}, "#/convention", "'keras'"),
        ({"shape": [4], "scheme": "he_normal", "dtype": "int8"}, "#/dtype", "'float32'"),
        ({"shape": [4], "scheme": "normal", "std": -1}, "#/std", "greater than or equal"),
        ({"shape": [4], "scheme": "he_normal", "name": "../etc"}, "#/name", "pattern"),
        ({"scheme": "he_normal"}, "#/shape", "Field required"),
    ],
)
def test_invalid_bodies_are_problems_with_pointers(
    client: TestClient, body: dict[str, object], pointer: str, text: str
) -> None:
    r = client.post("/v1/tensors/describe", json=body)
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    problem = r.json()
    assert problem["status"] == 422
    assert problem["type"] == "urn:weightgen:problem:invalid-request"
    assert any(e["pointer"] == pointer for e in problem["errors"]), problem
    assert text in problem["detail"]
    assert "received" in problem["detail"] or "required" in problem["detail"]


@pytest.mark.parametrize(
    ("body", "slug", "text"),
    [
        (
            {"shape": [4], "scheme": "he_normal", "convention": "torch"},
            "invalid-shape",
            "fewer than 2",
        ),
        (
            {"shape": [4, 4], "scheme": "xavir"},
            "invalid-scheme",
            "unknown scheme 'xavir'; expected one of",
        ),
        (
            {"shape": [4, 4], "scheme": "he_normal", "gain": 2},
            "invalid-scheme",
            "does not take gain",
        ),
        (
            {"shape": [4, 4], "scheme": "zeros", "dtype": "bfloat16", "format": "npy"},
            "unsupported-combination",
            "safetensors",
        ),
        ({"shape": [2**13, 2**12], "scheme": "zeros"}, "limit-exceeded", "at most 16777216"),
    ],
)
def test_domain_errors_are_422_problems(
    client: TestClient, body: dict[str, object], slug: str, text: str
) -> None:
    r = client.post("/v1/tensors/describe", json=body)
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["type"] == f"urn:weightgen:problem:{slug}"
    assert text in r.json()["detail"]


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b"{not json", {"content-type": "application/json"}),
        (b"[1, 2]", {"content-type": "application/json"}),
        (b"", {"content-type": "application/json"}),
        (b"\xff\xfe", {"content-type": "application/json"}),
        (b'{"shape": [4], "scheme": "zeros"}', {"content-type": "text/plain"}),
    ],
)
def test_malformed_bodies_are_problems_not_500(
    client: TestClient, content: bytes, headers: dict[str, str]
) -> None:
    r = client.post("/v1/tensors/describe", content=content, headers=headers)
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM


def test_unknown_route_and_method_are_problems(client: TestClient) -> None:
    r = client.get("/v2/nothing")
    assert (r.status_code, r.headers["content-type"]) == (404, PROBLEM)
    r = client.delete("/v1/schemes")
    assert (r.status_code, r.headers["content-type"]) == (405, PROBLEM)
    assert "DELETE is not allowed" in r.json()["detail"]


def test_catalogue_lists_every_scheme_alias_and_convention(client: TestClient) -> None:
    r = client.get("/v1/schemes")
    assert r.status_code == 200
    data = r.json()
    assert {s["name"] for s in data["schemes"]} == set(schemes.SCHEMES)
    aliases = {a for s in data["schemes"] for a in s["aliases"]}
    assert aliases == set(schemes.ALIASES)
    assert [c["name"] for c in data["conventions"]] == list(schemes.CONVENTIONS)
    vs = next(s for s in data["schemes"] if s["name"] == "variance_scaling")
    tf1 = {p["name"]: p for p in vs["conventions"]["tf1"]["params"]}
    assert tf1["factor"]["default"] == 2.0
    assert tf1["factor"]["exclusive_minimum"] == 0.0
    constant = next(s for s in data["schemes"] if s["name"] == "constant")
    assert constant["conventions"]["torch"]["params"][0]["required"] is True


def test_openapi_documents_the_routes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/v1/tensors/describe" in spec["paths"]
    assert "/v1/schemes" in spec["paths"]
    body = spec["components"]["schemas"]["TensorRequest"]
    assert body["additionalProperties"] is False
    assert "he_normal" in body["properties"]["scheme"]["enum"]


def test_health_probes(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {
        "status": "ready",
        "engine": "numpy",
        "devices": ["cpu"],
        "fast_kernel": True,
        "threads": client.app.state.services.settings.threads,  # type: ignore[attr-defined]
    }


def test_cuda_on_a_cpu_deployment_is_a_503_problem(client: TestClient) -> None:
    r = client.post(
        "/v1/tensors/describe", json={"shape": [2], "scheme": "zeros", "device": "cuda"}
    )
    assert r.status_code == 503
    assert r.headers["content-type"] == PROBLEM
    assert int(r.headers["retry-after"]) > 0
    assert "not available" in r.json()["detail"]


@pytest.mark.parametrize("accept", ["application/json", "application/vnd.safetensors", "*/*"])
def test_describe_answers_json_whatever_accept_names(client: TestClient, accept: str) -> None:
    """Describe does not negotiate the tensor's format: it answers JSON and its URL pins the
    request's format, or the dtype's default (an Accept of JSON was a 500)."""
    body = {"shape": [4, 4], "scheme": "he_normal", "seed": 1}
    posted = client.post("/v1/tensors/describe", json=body, headers={"Accept": accept})
    got = client.get(
        "/v1/tensors/he_normal?shape=4,4&seed=1&describe=true", headers={"Accept": accept}
    )
    for r in (posted, got):
        assert r.status_code == 200, r.text
        assert r.json()["format"] == "npy"


def test_the_scheme_catalogue_and_the_openapi_schema_agree(client: TestClient) -> None:
    """Scheme parameters' bounds, choices and meaning come from one declaration."""
    props = client.get("/openapi.json").json()["components"]["schemas"]["TensorRequest"]
    props = props["properties"]
    seen = 0
    for scheme in client.get("/v1/schemes").json()["schemes"]:
        for conv in scheme["conventions"].values():
            for p in conv["params"]:
                (typed,) = [t for t in props[p["name"]]["anyOf"] if t.get("type") != "null"]
                assert props[p["name"]]["description"] == p["description"]
                for key, schema_key in (("minimum", "minimum"), ("maximum", "maximum")):
                    assert float(typed.get(schema_key, math.nan)) == pytest.approx(
                        float(p.get(key, math.nan)), nan_ok=True
                    )
                assert typed.get("enum", []) == p.get("choices", [])
                seen += 1
    assert seen > 50


def test_describe_gives_the_repr_digest_once_it_is_known(client: TestClient) -> None:
    import base64
    import hashlib

    body = {"shape": [300, 200], "scheme": "he_normal", "seed": 11}
    assert client.post("/v1/tensors/describe", json=body).json()["repr_digest"] is None
    content = client.post("/v1/tensors", json=body).content  # streamed whole: the digest is kept
    digest = base64.b64encode(hashlib.sha256(content).digest()).decode()
    described = client.post("/v1/tensors/describe", json=body).json()
    assert described["repr_digest"] == f"sha-256=:{digest}:"


# Issue 18, point 2: every plan reports its tensor's fans; the bytes, ETags and X-Init headers
# stay those the service gave before (sha-256 and ETags recorded from it, seed 3).
PINNED = [
    (
        {"shape": [4, 6], "scheme": "normal", "convention": "torch", "format": "safetensors"},
        '"5b5d700813618a313ca32e573ec0165f"',
        "4c16ca8b9e13964176267c8fe81406f6a1434e0fd0df00b1d727eebc89e9bd6a",
    ),
    (
        {"shape": [5], "scheme": "zeros", "convention": "torch", "format": "safetensors"},
        '"220f36061df2161905c62bf1f9be3db2"',
        "e65c468748daf6dbffaf2d8b45985197a0eeb39f49b1a43152a3b09b4b518d37",
    ),
    (
        {"shape": [2, 3, 4, 5], "scheme": "truncated_normal", "convention": "jax"}
        | {"format": "safetensors"},
        '"287375d54210db67145e63ec66d8f024"',
        "f38186145a26d7b474b7156e185e5c933b6acd20b2e2299a9290e2e543f4b028",
    ),
    (
        {"shape": [4, 6], "scheme": "identity", "convention": "keras", "format": "npy"},
        '"699b905d94d761d33208731a94b3c0b2"',
        "5ac900e4c8555086ce20a4fac8439abb6154062445fa19d771eb2f99184a2b32",
    ),
    (
        {"shape": [3, 4, 5], "scheme": "dirac", "convention": "torch", "format": "safetensors"},
        '"393fe56a677aea14bb9d1c0f1456e00a"',
        "6869cb3a15c97ae6c2c5fc79399aef5a1e473bce40efe5990355da6671378245",
    ),
    (
        {"shape": [3, 4, 5], "scheme": "he_normal", "convention": "keras", "format": "safetensors"},
        '"414a3226c7ec484f7194bfa8e3f2fd30"',
        "b9b95d72d6f486977e34e290dc882ed54569d0f0468e1eb950a222332fae914b",
    ),
    (
        {"shape": [3, 4, 5], "scheme": "normal", "convention": "jax", "format": "safetensors"}
        | {"in_axes": [0], "out_axes": [-1]},
        '"5650d1f77fb2094004fd0ed533303414"',
        "9c5a80b2118236ee82bf8c2c5b2aa7f9150448b40ad8fb5b704c5155c241765f",
    ),
]


@pytest.mark.parametrize(("body", "etag", "sha256"), PINNED)
def test_reported_fans_change_no_byte_and_no_etag(
    client: TestClient, body: dict[str, object], etag: str, sha256: str
) -> None:
    import hashlib

    body = {**body, "seed": 3}
    r = client.post("/v1/tensors", json=body)
    assert r.status_code == 200, r.text
    assert (r.headers["etag"], hashlib.sha256(r.content).hexdigest()) == (etag, sha256)
    plan = describe(client, **body)["plan"]
    assert isinstance(plan, dict)
    if plan["mode"] is None:  # the fans are description: not in the header bytes, nor X-Init-*
        assert "x-init-fan-in" not in r.headers
        assert b'"fan_in"' not in r.content
    assert describe(client, **body)["etag"] == etag


def test_describe_reports_fans_of_schemes_that_do_not_use_them(client: TestClient) -> None:
    body = {"shape": [64, 32, 3, 3], "scheme": "trunc_normal", "convention": "torch", "seed": 1}
    plan = describe(client, **body)["plan"]
    assert isinstance(plan, dict)
    assert (plan["fan_in"], plan["fan_out"], plan["mode"], plan["n"]) == (288, 576, None, None)
    query = "shape=3,3,32,64&convention=keras&seed=1&describe=true"
    got = client.get(f"/v1/tensors/orthogonal?{query}").json()["plan"]
    assert (got["fan_in"], got["fan_out"], got["mode"]) == (288, 576, None)
    rank1 = describe(client, shape=[5], scheme="zeros", convention="torch")["plan"]
    assert isinstance(rank1, dict)  # torch raises for rank < 2: none, and a note says why
    assert (rank1["fan_in"], rank1["fan_out"]) == (None, None)
    assert any("fewer than 2 dimensions" in n for n in rank1["notes"])


def test_bundle_describe_reports_every_members_fans(client: TestClient) -> None:
    import hashlib

    body: dict[str, object] = {
        "seed": 1,
        "convention": "jax",
        "tensors": [
            {"name": "w", "shape": [3, 3, 32, 64], "scheme": "normal"},
            {"name": "b", "shape": [64], "scheme": "zeros"},
        ],
    }
    r = client.post("/v1/bundles/describe", json=body)
    assert r.status_code == 200, r.text
    plans = {t["name"]: t["plan"] for t in r.json()["tensors"]}
    assert (plans["w"]["fan_in"], plans["w"]["fan_out"], plans["w"]["mode"]) == (288, 576, None)
    assert (plans["b"]["fan_in"], plans["b"]["fan_out"]) == (None, None)  # jax raises, rank 1
    got = client.post("/v1/bundles", json=body)  # bytes and ETag as the service gave before
    assert got.headers["etag"] == '"36f6242c4805fac8dd8825d8e43426d7"' == r.json()["etag"]
    digest = "bd7d5a7e4e8a7c45516a40f952bc040be8ed1352910bcba6c107180b1c3fe1c7"
    assert hashlib.sha256(got.content).hexdigest() == digest
