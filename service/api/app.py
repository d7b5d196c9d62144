"""The application factory."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.staticfiles import StaticFiles

from service import __version__
from service.api import contract, docs, problems, recipes_route
from service.api.deps import Services
from service.api.fastlane import CachedUrls
from service.api.headers import EXPOSED
from service.api.middleware import ApiKeys, BodyLimit, RequestIds, cors_headers
from service.api.routes import STATIC, router
from service.config import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """A weightgen app for `settings` (read from the environment when None)."""
    settings = settings or Settings()
    app = FastAPI(
        title="weightgen",
        version=__version__,
        summary="Initialized neural-network weight tensors over HTTP, reproducibly.",
        docs_url=None,  # docs.install: Swagger UI and ReDoc from the fastapi-offline package
        redoc_url=None,
    )
    routes = {  # for the fast lane's metrics labels
        prefix: next(r for r in router.routes if getattr(r, "path", "") == f"{prefix}{{{param}}}")
        for prefix, param in CachedUrls.PREFIXES.items()
    }
    app.state.services = services = Services.build(settings, routes)
    problems.install(app)
    contract.install(app)  # the OpenAPI document's headers, statuses, problems, security
    app.include_router(router)
    app.include_router(recipes_route.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    docs.install(app)
    # outermost last: request ids wrap everything, so 401s and 413s carry one too; the
    # fast lane of planned tensor and bundle URLs first, innermost
    app.add_middleware(CachedUrls)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(ApiKeys, keys=settings.api_keys)
    if settings.cors_origins:  # outside the key and body checks, so their problems carry CORS
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, **cors_headers(EXPOSED)
        )
    app.add_middleware(RequestIds, metrics=services.metrics)
    return app
