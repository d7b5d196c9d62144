"""The app's dependencies: built once by `create_app`, read by the routes through `services`.
The only module that touches `app.state`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import HTTPConnection

from service.api.admission import Admission
from service.api.cache import PlanCache
from service.api.digests import Digests
from service.api.metrics import Metrics
from service.api.stream import Capacity
from service.config import Settings
from service.engines import Engines, fast
from service.plan import Limits

ANALYSIS_WAIT = 10.0  # seconds an analysis may wait for a slot (each takes ~0.5 s at most)


@dataclass(frozen=True)
class Services:
    settings: Settings
    limits: Limits
    engines: Engines
    capacity: Capacity
    metrics: Metrics
    plans: PlanCache
    routes: dict[str, Any]  # path prefix -> its route, for the fast lane's metrics labels
    analyses: Admission
    digests: Digests = field(default_factory=Digests)  # known Repr-Digests (api/digests.py)

    @classmethod
    def build(cls, settings: Settings, routes: dict[str, Any]) -> Services:
        engines = Engines(settings.engine, settings.devices, settings.threads)
        metrics = Metrics()
        kernel = engines.cpu is engines.numpy and engines.numpy.fast
        metrics.kernel_in_use(fast.isa() if kernel else None)
        metrics.threads_in_use(settings.threads)
        return cls(
            settings,
            Limits(settings.max_elements, settings.max_bytes),
            engines,
            Capacity(settings.max_streams),
            metrics,
            PlanCache(settings.plan_cache_bytes),
            routes,
            Admission(settings.max_analyses, ANALYSIS_WAIT, "analyses"),
        )


def services(conn: HTTPConnection) -> Services:
    """The services of the app answering `conn` (a Request, or a scope wrapped as one)."""
    found: Services = conn.app.state.services
    return found
