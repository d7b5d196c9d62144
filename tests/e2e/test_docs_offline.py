"""/docs (Swagger UI) and /redoc (ReDoc) offline: their pages reference only the service's own
assets (from the fastapi-offline package, service/api/docs.py), which answer with the right
types; and in headless Chromium (Debian's, driven by Playwright), with every request to another
host aborted, both render the operation list with no failed load."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import fastapi
import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Page, Route

from bench.live import Server, free_port, live_process
from service.api import app as factory
from service.api import docs
from service.config import Settings
from tests.e2e.browser import chromium

ROOT = Path(__file__).resolve().parents[2]
OPERATION = "/v1/tensors/{scheme}"
# the rendered operation list: Swagger UI's operation blocks, ReDoc's operation sections
PAGES = {
    "/docs": f'.opblock .opblock-summary-path[data-path="{OPERATION}"]',
    "/redoc": '[data-section-id*="operation/"]',
}
# ReDoc's sidebar logo, https://cdn.redoc.ly/redoc/logo-mini.svg: refused by the page's CSP
# before any request leaves (service/api/docs.py); the console and the failed load say so
LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
REFUSED_LOGO = re.compile(
    rf"^(failed: {re.escape(LOGO)} csp|Loading the image '{re.escape(LOGO)}' violates the "
    r"following Content Security Policy directive: .*The action has been blocked\.)$"
)
URL = re.compile(r"""(?:src|href|url)\s*[=:]\s*["']([^"']+)["']""")


def offline_app(settings: Settings | None = None) -> FastAPI:
    """create_app's app, whole (middleware, routes, mounts), with the offline docs: as it is
    once app.py makes `FastAPI(docs_url=None, redoc_url=None)` and calls docs.install; until
    then forced here."""

    def made(**kwargs: Any) -> FastAPI:
        return fastapi.FastAPI(**{**kwargs, "docs_url": None, "redoc_url": None})

    with mock.patch.object(factory, "FastAPI", made):
        app = factory.create_app(settings)
    if not any(getattr(r, "path", None) == docs.ASSETS for r in app.routes):
        docs.install(app)
    return app


def serve(argv: Sequence[str]) -> None:
    """`python -m service` (the bounded protocol, the JSON logs) with offline_app."""
    import service.api
    from service.cli import main

    with mock.patch.object(service.api, "create_app", offline_app):
        main(["serve", *argv])


def local_urls(html: str) -> list[str]:
    """The URLs a docs page loads; each one on this server, or the assertion fails."""
    urls = URL.findall(html)
    assert urls, html
    outside = [u for u in urls if urlsplit(u).netloc or not u.startswith("/")]
    assert outside == [], outside
    assert "googleapis" not in html
    assert "jsdelivr" not in html
    return urls


# in process


@pytest.fixture
def client() -> Iterator[TestClient]:
    # API keys on: the docs stay open, as health and metrics do (ApiKeys guards /v1 only)
    settings = Settings(api_keys=["secret-key-1234567890"])
    with TestClient(offline_app(settings), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("path", PAGES)
def test_the_pages_reference_only_local_assets_that_answer(client: TestClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    types = {
        ".js": {"text/javascript", "application/javascript"},
        ".css": {"text/css"},
        ".png": {"image/png"},
    }
    assets = [u for u in local_urls(page.text) if u.startswith(docs.ASSETS + "/")]
    expected = {".js", ".png"} | ({".css"} if path == "/docs" else set())  # ReDoc: CSS in JS
    assert {Path(u).suffix for u in assets} == expected
    for url in assets:
        r = client.get(url)
        assert r.status_code == 200, url
        kind = r.headers["content-type"].split(";")[0]
        assert kind in types[Path(url).suffix], (url, kind)
        assert len(r.content) > 1000
        assert "etag" in r.headers
        assert client.head(url).status_code == 200
    if path == "/redoc":  # its images only from here (the logo, see REFUSED_LOGO)
        assert page.headers["content-security-policy"] == "img-src 'self' data:"
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/v1/schemes").status_code == 401  # the keys still guard the API


def test_the_oauth2_redirect_page_and_the_proxy_prefix(client: TestClient) -> None:
    r = client.get("/docs/oauth2-redirect")
    assert r.status_code == 200
    assert "oauth2" in r.text
    assert "window.location.origin + '/docs/oauth2-redirect'" in client.get("/docs").text
    # behind a proxy that mounts the service under a prefix, the pages name prefixed URLs
    with TestClient(offline_app(), root_path="/weightgen") as behind:
        html = behind.get("/docs").text
    assert "/weightgen/docs/assets/swagger-ui-bundle.js" in html
    assert "/weightgen/openapi.json" in html


def test_install_refuses_an_app_with_cdn_docs() -> None:
    with pytest.raises(ValueError, match="docs_url=None"):
        docs.install(FastAPI())
    plain = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    docs.install(plain)  # no OpenAPI document: no docs pages
    assert not any(getattr(r, "path", "").startswith("/docs") for r in plain.routes)


# in the browser


@pytest.fixture
def page() -> Iterator[Page]:
    with chromium() as browser:
        # not test_playground's bypass_csp: /redoc's CSP is part of what is tested
        context = browser.new_context(viewport={"width": 1400, "height": 1300})
        yield context.new_page()


@pytest.fixture(scope="module")
def offline_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`python -m service` serving offline_app."""
    port = free_port()
    command = [
        sys.executable,
        "-c",
        "import sys; from tests.e2e.test_docs_offline import serve; serve(sys.argv[1:])",
        *("--host", "127.0.0.1", "--port", str(port)),
    ]
    with live_process(command, port, tmp_path_factory.mktemp("docs"), cwd=ROOT) as s:
        yield s


def render(page: Page, url: str, selector: str) -> None:
    """Load `url` with the network cut off at this host; wait for `selector` to render."""
    outside: list[str] = []
    errors: list[str] = []

    def only_here(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_here)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("requestfailed", lambda r: errors.append(f"failed: {r.url} {r.failure}"))
    page.on(
        "response", lambda r: errors.append(f"{r.status}: {r.url}") if r.status >= 400 else None
    )
    page.goto(url)
    page.wait_for_selector(selector, timeout=30_000)
    assert OPERATION in page.inner_text("body")
    page.wait_for_load_state("networkidle")
    assert outside == []
    assert [e for e in errors if not REFUSED_LOGO.match(e)] == []


@pytest.mark.parametrize("path", PAGES)
def test_the_pages_render_the_operations_offline(
    page: Page, offline_server: Server, path: str
) -> None:
    render(page, offline_server.url + path, PAGES[path])
    if path == "/docs":  # every operation, not just the first
        schema = httpx.get(offline_server.url + "/openapi.json").json()
        operations = sum(len(methods) for methods in schema["paths"].values())
        assert page.locator(".opblock").count() == operations


@pytest.mark.parametrize("path", PAGES)
def test_the_service_serves_the_offline_pages(page: Page, server: Server, path: str) -> None:
    local_urls(httpx.get(server.url + path).text)
    render(page, server.url + path, PAGES[path])
