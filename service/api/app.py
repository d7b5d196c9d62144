"""The application factory."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.staticfiles import StaticFiles

from service import __version__
from service.api import problems
from service.api.cache import CachedUrls, PlanCache
from service.api.metrics import Metrics
from service.api.middleware import ApiKeys, BodyLimit, RequestIds, cors_headers
from service.api.routes import STATIC, router
from service.api.stream import Capacity
from service.api.tensors import HEADER_NAMES
from service.config import Settings
from service.engines import Engines, fast
from service.plan import Limits


def create_app(settings: Settings | None = None) -> FastAPI:
    """A weightgen app for `settings` (read from the environment when None)."""
    settings = settings or Settings()
    app = FastAPI(
        title="weightgen",
        version=__version__,
        summary="Initialized neural-network weight tensors over HTTP, reproducibly.",
    )
    app.state.settings = settings
    app.state.limits = Limits(settings.max_elements, settings.max_bytes)
    app.state.engines = Engines(settings.engine, settings.devices, settings.threads)
    app.state.capacity = Capacity(settings.max_streams)
    app.state.metrics = Metrics()
    engines: Engines = app.state.engines
    kernel = engines.cpu is engines.numpy and engines.numpy.fast
    app.state.metrics.kernel_in_use(fast.isa() if kernel else None)
    app.state.plans = PlanCache(settings.plan_cache_bytes)
    problems.install(app)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.state.routes = {  # for the fast lane's metrics labels
        prefix: next(r for r in router.routes if getattr(r, "path", "") == f"{prefix}{{{param}}}")
        for prefix, param in CachedUrls.PREFIXES.items()
    }
    # outermost last: request ids wrap everything, so 401s and 413s carry one too; the
    # fast lane of planned tensor and bundle URLs first, innermost
    app.add_middleware(CachedUrls)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(ApiKeys, keys=settings.api_keys)
    if settings.cors_origins:  # outside the key and body checks, so their problems carry CORS
        extra = sorted(
            {
                *HEADER_NAMES.values(),
                "X-Init-Shape",
                "X-Init-Dtype",
                "X-Init-Format",
                "X-Init-Tensors",
                "X-Init-Header-Bytes",
                "X-Init-Service-Version",
            }
        )
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, **cors_headers(extra)
        )
    app.add_middleware(RequestIds, metrics=app.state.metrics)
    return app
