"""The API docs, Swagger UI at /docs and ReDoc at /redoc, with their scripts, stylesheet and icon
served from the installed `fastapi-offline` package instead of a CDN and Google Fonts: the
service runs in air-gapped clusters, where CDN-loaded docs pages stay blank."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

DOCS = "/docs"
REDOC = "/redoc"
ASSETS = "/docs/assets"  # fastapi_offline/static, read-only
PACKAGE = ("fastapi_offline", "static")  # Swagger UI 5 dist, ReDoc 2 standalone, an icon
SWAGGER_JS, SWAGGER_CSS, REDOC_JS, FAVICON = (
    "swagger-ui-bundle.js",
    "swagger-ui.css",
    "redoc.standalone.js",
    "favicon.png",
)

# ReDoc 2.5's sidebar always shows Redocly's logo from https://cdn.redoc.ly (hidden when it
# fails to load): images only from here, so that the browser never tries to leave the cluster
REDOC_CSP = "img-src 'self' data:"


def _root(request: Request) -> str:
    """The prefix a proxy mounts the app under (as FastAPI's own docs pages use it)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


async def swagger_ui(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    root, redirect = _root(request), app.swagger_ui_oauth2_redirect_url
    # the validator badge would load an image from validator.swagger.io; unset, it does not
    parameters: dict[str, Any] = {"validatorUrl": None, **(app.swagger_ui_parameters or {})}
    return get_swagger_ui_html(
        openapi_url=f"{root}{app.openapi_url}",
        title=f"{app.title} - Swagger UI",
        swagger_js_url=f"{root}{ASSETS}/{SWAGGER_JS}",
        swagger_css_url=f"{root}{ASSETS}/{SWAGGER_CSS}",
        swagger_favicon_url=f"{root}{ASSETS}/{FAVICON}",
        oauth2_redirect_url=root + redirect if redirect else None,
        init_oauth=app.swagger_ui_init_oauth,
        swagger_ui_parameters=parameters,
    )


async def oauth2_redirect(request: Request) -> HTMLResponse:  # noqa: ARG001 - a route's
    return get_swagger_ui_oauth2_redirect_html()


async def redoc(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    root = _root(request)
    page = get_redoc_html(
        openapi_url=f"{root}{app.openapi_url}",
        title=f"{app.title} - ReDoc",
        redoc_js_url=f"{root}{ASSETS}/{REDOC_JS}",
        redoc_favicon_url=f"{root}{ASSETS}/{FAVICON}",
        with_google_fonts=False,
    )
    page.headers["Content-Security-Policy"] = REDOC_CSP
    return page


def install(app: FastAPI) -> None:
    """Add /docs (with its OAuth2 redirect page), /redoc and their assets to `app`, which must
    be made with `FastAPI(docs_url=None, redoc_url=None)`: FastAPI's own pages load from a CDN
    and, added first, would shadow these."""
    if app.docs_url is not None or app.redoc_url is not None:
        raise ValueError(
            "make the app with FastAPI(docs_url=None, redoc_url=None): its own docs pages "
            "load their assets from a CDN"
        )
    if app.openapi_url is None:  # no OpenAPI document, nothing to show
        return
    app.add_route(DOCS, swagger_ui, include_in_schema=False)
    if app.swagger_ui_oauth2_redirect_url:
        app.add_route(app.swagger_ui_oauth2_redirect_url, oauth2_redirect, include_in_schema=False)
    app.add_route(REDOC, redoc, include_in_schema=False)
    # packages=: the directory is found from the installed package, checked here at start-up
    app.mount(ASSETS, StaticFiles(packages=[PACKAGE]), name="docs-assets")
