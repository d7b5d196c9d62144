"""The routes of API v1 and the health probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from service.api.catalogue import catalogue
from service.api.models import DescribeResponse, TensorRequest
from service.engines import Engines
from service.plan import Limits, plan

router = APIRouter()

_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"description": "invalid request", **_PROBLEM},
    503: {"description": "device unavailable", **_PROBLEM},
}


def _limits(request: Request) -> Limits:
    limits: Limits = request.app.state.limits
    return limits


def _engines(request: Request) -> Engines:
    engines: Engines = request.app.state.engines
    return engines


@router.post("/v1/tensors/describe", responses=_ERRORS, tags=["tensors"])
def describe(body: TensorRequest, request: Request) -> DescribeResponse:
    """Fans, stddev, limit and effective std of a tensor, without sampling it."""
    return DescribeResponse.of(plan(body.to_spec(), _limits(request), _engines(request)))


@router.get("/v1/schemes", tags=["catalogue"])
def schemes_catalogue() -> dict[str, Any]:
    """Every scheme, alias and parameter with its default, per convention; fan rules; gains."""
    return catalogue()


@router.get("/healthz", tags=["operations"])
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", tags=["operations"])
def readyz(request: Request) -> dict[str, object]:
    """Readiness: the engines are built; lists the devices this deployment serves."""
    engines = _engines(request)
    return {"status": "ready", "engine": engines.cpu.name, "devices": list(engines.devices())}
