"""The application factory."""

from __future__ import annotations

from fastapi import FastAPI

from service import __version__
from service.api import problems
from service.api.routes import router
from service.api.stream import Capacity, Work
from service.config import Settings
from service.engines import Engines
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
    app.state.work = Work()
    problems.install(app)
    app.include_router(router)
    return app
