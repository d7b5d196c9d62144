"""schemathesis against the OpenAPI contract, in process, over 2,000 cases: no 5xx for anything
it can send but a device the deployment lacks (503 with Retry-After, by design),
answers conform to the schema (status codes, content types, bodies), and every refusal is a
problem. `positive_data_acceptance` is left out: a schema-valid body may still ask for what a
scheme refuses (a parameter it does not take, a rank its convention forbids), and those are
422 problems by design (docs/schemes.md); and a 413 (body too large) is a refusal schemathesis
does not list among the negative-data answers."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from service.api import create_app
from service.config import Settings

KEY = "schemathesis-key"  # the contract declares bearer keys: a keyed deployment, then
app = create_app(Settings(max_elements=1 << 16, max_bytes=1 << 20, api_keys=[KEY]))
EXAMPLES = (
    230  # per operation with inputs (9 of them): over 2,000 cases, GET query parameters included
)
AUTH = {"auth": {"openapi": {"bearer": {"bearer": KEY}}}}  # sent; its absence checked (401)
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", app, config=schemathesis.Config.from_dict(AUTH)
)


def unavailable_device(response: Any) -> bool:
    if response.status_code != 503:
        return False
    if not response.content:  # a HEAD: the problem is not sent, the request says it all
        return "device=cuda" in str(response.request.url)
    problem = response.json()
    return bool(problem["type"].endswith(":unavailable") and "device" in problem["detail"])


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_holds_its_contract(case: schemathesis.Case[Any]) -> None:
    response = case.call()
    excluded: list[Any] = [positive_data_acceptance]
    if response.status_code == 413:  # a refusal, but not one schemathesis counts as such
        excluded.append(negative_data_rejection)
    device = unavailable_device(response)
    if device:  # `device: cuda` on a CPU deployment: 503 by design (docs/http.md), not a fault
        excluded += [not_a_server_error, negative_data_rejection]
    case.validate_response(response, excluded_checks=excluded)
    assert response.status_code < 500 or device, response.text
    if response.status_code >= 400:
        content_type = response.headers["content-type"]  # a list in schemathesis' Response
        assert "application/problem+json" in content_type, response.text


BEARER = {"Authorization": f"Bearer {KEY}"}
TENSOR = {"shape": "64,32", "seed": "7", "format": "raw"}
BUNDLE = {"tensors": [{"name": "w", "scheme": "he_normal", "shape": [8, 4]}], "seed": 3}
UNDECLARED = {"content-type"}  # declared by each answer's `content`, not as a header
FRAMING = {"content-length"}  # declared where it is the payload's (200, 206), not on problems


def answers() -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, the Case's data) of an answer of every status and header variant that
    random cases seldom reach: ranges, validators, digests, zero rows, refusals."""
    client = TestClient(app, headers=BEARER)
    bundle = client.post("/v1/bundles/describe", json=BUNDLE).json()
    etag = client.head("/v1/tensors/he_normal", params=TENSOR).headers["etag"]
    body = {"scheme": "he_normal", "shape": [6, 2], "zero_rows": [0, -1], "seed": 1}
    posted = client.post("/v1/tensors/describe", json=body).json()["etag"]
    tensors: list[tuple[dict[str, str], dict[str, str]]] = [  # (headers, query)
        ({}, TENSOR),  # 200
        ({"Range": "bytes=0-9"}, TENSOR),  # 206
        ({"Range": "bytes=99999999-"}, TENSOR),  # 416
        ({"If-None-Match": etag}, TENSOR),  # 304
        ({"Want-Repr-Digest": "sha-256=10"}, TENSOR),  # Repr-Digest
        ({}, {**TENSOR, "format": "npy", "zero_rows": "0,-1"}),  # X-Init-Zero-Rows, no Vary
        ({}, {"shape": "4", "seed": "1"}),  # negotiated: Vary
        ({}, {"shape": "4", "device": "cuda"}),  # 503 on a CPU deployment
        ({}, {**TENSOR, "describe": "true"}),  # the JSON description
        ({"Authorization": "Bearer wrong"}, TENSOR),  # 401
        ({"Accept": "text/csv"}, {"shape": "4", "seed": "1"}),  # 406
    ]
    manifest = {"manifest": bundle["url"].rsplit("/", 1)[1]}
    bundles: list[dict[str, str]] = [{}, {"Range": "bytes=-5"}, {"If-None-Match": bundle["etag"]}]
    out: list[tuple[str, str, dict[str, Any]]] = []
    for method in ("GET", "HEAD"):
        scheme = {"scheme": "he_normal"}
        out += [
            (method, "/v1/tensors/{scheme}", {"path_parameters": scheme, "headers": h, "query": q})
            for h, q in tensors
        ]
        out += [
            (method, "/v1/bundles/{manifest}", {"path_parameters": manifest, "headers": h})
            for h in bundles
        ]
    return [
        *out,
        ("POST", "/v1/tensors", {"body": body}),
        ("POST", "/v1/tensors", {"body": body, "headers": {"If-None-Match": posted}}),  # 412
        ("POST", "/v1/bundles", {"body": BUNDLE}),
        ("POST", "/v1/bundles", {"body": BUNDLE, "headers": {"If-None-Match": bundle["etag"]}}),
    ]


@pytest.mark.parametrize(("method", "path", "data"), answers())
def test_every_header_an_answer_carries_is_declared(
    method: str, path: str, data: dict[str, Any]
) -> None:
    """Each answer conforms (statuses, media types, declared headers and their values, bodies),
    and every header it carries is in the contract: none missing from the document."""
    data = {**data, "headers": {**BEARER, **data.get("headers", {})}}
    case = schema[path][method].Case(**data)
    response = case.call()
    device = [not_a_server_error] if unavailable_device(response) else []
    case.validate_response(response, excluded_checks=[positive_data_acceptance, *device])
    declared = schema.raw_schema["paths"][path][method.lower()]["responses"]
    headers = declared[str(response.status_code)].get("headers", {})
    sent = {name.lower() for name in response.headers} - UNDECLARED
    if response.status_code >= 400:
        sent -= FRAMING
    assert sent <= {name.lower() for name in headers}, (response.status_code, sent)


def test_every_parameter_is_described() -> None:
    undescribed = [
        (method, path, p["name"])
        for path, item in schema.raw_schema["paths"].items()
        for method, operation in item.items()
        for p in operation.get("parameters", [])
        if not p.get("description")
    ]
    assert undescribed == []
