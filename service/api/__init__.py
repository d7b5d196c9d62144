"""The HTTP edge: the only package that knows FastAPI, pydantic models and status codes."""

from service.api.app import create_app

__all__ = ["create_app"]
