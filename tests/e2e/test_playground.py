"""The playground page in headless Chromium (Debian's), driven by Playwright: the plan and the
histogram follow the scheme; the depth plot draws; a screenshot is saved."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, sync_playwright

from bench.live import Server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def page() -> Iterator[Page]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (make test installs it where apt-get can)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        # bypass_csp: Playwright's waits evaluate code, which the page's CSP rightly forbids
        context = browser.new_context(viewport={"width": 1400, "height": 1300}, bypass_csp=True)
        yield context.new_page()
        browser.close()


def version(page: Page, canvas: str) -> int:
    return int(page.get_attribute(f"#{canvas}", "data-version") or 0)


def test_the_page_follows_the_scheme_and_plots_depth(
    page: Page, server: Server, tmp_path: Path
) -> None:
    errors: list[str] = []
    p = page
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.goto(server.url + "/")
    p.wait_for_function("document.getElementById('histogram').dataset.version > 0")
    assert p.inner_text("#plan-effective-std") == "0.125000"  # torch he_normal, fan_in 128
    before = version(p, "histogram")

    p.select_option("#scheme", "glorot_uniform")
    p.wait_for_function(f"document.getElementById('histogram').dataset.version > {before}")
    plan = httpx.get(
        f"{server.url}/v1/tensors/glorot_uniform?shape=256,128&seed=7&convention=torch&describe=true"
    ).json()["plan"]
    assert float(p.inner_text("#plan-effective-std")) == pytest.approx(
        plan["effective_std"], rel=1e-5
    )
    assert float(p.inner_text("#plan-limit")) == pytest.approx(plan["limit"], rel=1e-5)
    assert int(p.get_attribute("#histogram", "data-count") or 0) == 256 * 128
    sample_std = float(p.get_attribute("#histogram", "data-std") or "nan")
    assert sample_std == pytest.approx(plan["effective_std"], rel=0.03)
    assert "xavier_uniform_" in p.inner_text("#plan-rule")
    assert "glorot_uniform?shape=256,128" in p.inner_text("#curl")

    p.wait_for_function("document.getElementById('forward').dataset.version > 0", timeout=60_000)
    assert "He normal" in p.inner_text("#legend")
    shot = tmp_path / "playground.png"
    p.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    if os.environ.get("WEIGHTGEN_ARTIFACTS"):
        shutil.copy(shot, Path(os.environ["WEIGHTGEN_ARTIFACTS"]) / "playground.png")
    print(f"screenshot: {shot}")
    assert errors == []
