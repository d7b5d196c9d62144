"""The playground page in headless Chromium (Debian's), driven by Playwright, each test in a
1,400 px and a 420 px window: the plan and the histogram follow the scheme; a late answer for a
previous choice is aborted, never drawn; a refused request clears the plan and the sample and
says why; nothing is wider than the window; copy says what it did without the Clipboard API;
"this scheme" is drawn last and dashed; the page says when it waits and when it is ready; its
CSP holds. The depth plot draws; a screenshot is saved."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import APIResponse, Browser, Page, Request, Route

from bench.live import Server
from tests.e2e.browser import chromium

# read at import: tests/conftest.py removes every WEIGHTGEN_ variable before each test
ARTIFACTS = os.environ.get("WEIGHTGEN_ARTIFACTS")
WIDTHS = [1400, 420]
PLAN_FIELDS = [
    "plan-rule",
    "plan-formula",
    "plan-fan-in",
    "plan-fan-out",
    "plan-stddev",
    "plan-limit",
    "plan-effective-std",
    "plan-notes",
]
# when <body data-ready> appears: what the selects hold and whether a sample is drawn
RECORD_AT_READY = """
new MutationObserver((_, observer) => {
  const body = document.body;
  if (!body || !body.dataset.ready) return;
  const options = (id) => [...document.getElementById(id).options].map((o) => o.value);
  window.__atReady = {
    ready: body.dataset.ready,
    conventions: options("convention"),
    schemes: options("scheme"),
    scheme: document.getElementById("scheme").value,
    histogram: Number(document.getElementById("histogram").dataset.version),
  };
  observer.disconnect();
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-ready"] });
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture(params=WIDTHS, ids=lambda w: f"{w}px")
def width(request: pytest.FixtureRequest) -> int:
    w: int = request.param
    return w


@pytest.fixture
def page(browser: Browser, width: int) -> Iterator[Page]:
    # bypass_csp: Playwright's waits evaluate code, which the page's CSP rightly forbids
    # (test_the_page_keeps_its_csp runs without it)
    context = browser.new_context(viewport={"width": width, "height": 1300}, bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert errors == []


def version(page: Page, canvas: str) -> int:
    return int(page.get_attribute(f"#{canvas}", "data-version") or 0)


def until(page: Page, check: Callable[[], bool], timeout: float = 15) -> None:
    """Wait for a condition on this side (route handlers and events run while Playwright waits)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        page.wait_for_timeout(20)


def open_ready(page: Page, server: Server, depth: bool = True) -> None:
    if not depth:  # tests about the tensor part spare the server the five analyses
        page.route("**/v1/analyze", lambda route: route.abort())
    page.goto(server.url + "/")
    page.wait_for_function("document.body.dataset.ready === '1'")


def drawn(page: Page, scheme: str) -> None:
    page.wait_for_function(f"document.getElementById('histogram').dataset.scheme === '{scheme}'")


def no_overflow(page: Page) -> None:
    wide, window = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert wide <= window, f"the page is {wide} px wide in a {window} px window"


def test_the_page_follows_the_scheme_and_plots_depth(
    page: Page, server: Server, tmp_path: Path, width: int
) -> None:
    p = page
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
    assert p.get_attribute("#histogram", "data-scheme") == "glorot_uniform"
    sample_std = float(p.get_attribute("#histogram", "data-std") or "nan")
    assert sample_std == pytest.approx(plan["effective_std"], rel=0.03)
    assert "xavier_uniform_" in p.inner_text("#plan-rule")
    assert "glorot_uniform?shape=256,128" in p.inner_text("#curl")

    p.wait_for_function("document.getElementById('forward').dataset.version > 0", timeout=60_000)
    assert "He normal" in p.inner_text("#legend")
    p.wait_for_selector("#status", state="hidden")  # nothing is pending any more
    shot = tmp_path / "playground.png"
    p.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    if ARTIFACTS:
        name = "playground.png" if width == 1400 else f"playground-{width}.png"
        shutil.copy(shot, Path(ARTIFACTS) / name)
    print(f"screenshot: {shot}")


@pytest.mark.parametrize("late", ["describe=true", "format=raw"])
def test_a_late_answer_for_the_previous_scheme_is_aborted_not_drawn(
    page: Page, server: Server, late: str
) -> None:
    """The server answers the orthogonal request (the plan's or the sample's) only after the
    user has moved on to glorot_uniform: the page aborts it and shows glorot_uniform."""
    p = page
    open_ready(p, server, depth=False)
    held: list[tuple[Route, APIResponse]] = []

    def slow(route: Route) -> None:
        held.append((route, route.fetch()))  # the real answer, delivered when the test says

    p.route(lambda url: "/v1/tensors/orthogonal?" in url and late in url, slow)
    failed: list[Request] = []

    def note(r: Request) -> None:  # other requests may be cut too (a slow analyze, under load)
        if "/v1/tensors/orthogonal?" in r.url:
            failed.append(r)

    p.on("requestfailed", note)

    p.select_option("#scheme", "orthogonal")
    until(p, lambda: bool(held))
    assert p.is_visible("#status")
    assert p.inner_text("#status") == "loading the orthogonal tensor…"
    p.select_option("#scheme", "glorot_uniform")
    drawn(p, "glorot_uniform")
    until(p, lambda: bool(failed))

    route, response = held[0]
    assert failed[0].url == route.request.url
    assert failed[0].failure == "net::ERR_ABORTED"
    assert int(p.get_attribute("body", "data-aborted") or 0) >= 1
    route.fulfill(response=response)  # the old answer arrives now; the page has let go of it
    p.wait_for_timeout(300)
    assert p.get_attribute("#histogram", "data-scheme") == "glorot_uniform"
    assert p.get_attribute("#plan", "data-scheme") == "glorot_uniform"
    assert "xavier_uniform_" in p.inner_text("#plan-rule")
    assert p.inner_text("#sample-stats").startswith("glorot_uniform: 32768 values")
    assert "glorot_uniform?" in p.inner_text("#curl")


@pytest.mark.parametrize(
    ("field", "bad", "query"),
    [
        ("#shape", "256,abc", "shape=256,abc"),
        ("[data-param=negative_slope]", "steep", "shape=256,128&negative_slope=steep"),
    ],
    ids=["shape", "param"],
)
def test_a_refused_request_clears_the_plan_and_says_why(
    page: Page, server: Server, field: str, bad: str, query: str
) -> None:
    p = page
    open_ready(p, server, depth=False)
    drawn(p, "he_normal")
    assert p.inner_text("#plan-rule") != ""
    before = version(p, "histogram")

    p.fill(field, bad)
    p.dispatch_event(field, "change")
    p.wait_for_function(f"document.getElementById('histogram').dataset.version > {before}")
    answer = httpx.get(f"{server.url}/v1/tensors/he_normal?{query}&seed=7&describe=true")
    assert answer.status_code == 422
    assert p.inner_text("#plan-problem") == answer.json()["detail"]
    assert p.is_visible("#plan-problem")
    assert [p.inner_text(f"#{f}") for f in PLAN_FIELDS] == [""] * len(PLAN_FIELDS)
    assert p.inner_text("#curl") == p.inner_text("#python") == ""
    assert p.get_attribute("#histogram", "data-scheme") == ""
    assert p.get_attribute("#histogram", "data-count") == "0"
    blank = "(() => { const c = document.getElementById('histogram'); return c.getContext('2d')"
    blank += ".getImageData(0, 0, c.width, c.height).data.every((v) => v === 0); })()"
    assert p.evaluate(blank)
    assert p.get_attribute(field, "aria-invalid") == "true"
    no_overflow(p)

    p.fill(field, "256,128" if field == "#shape" else "0.1")  # and it recovers
    p.dispatch_event(field, "change")
    drawn(p, "he_normal")
    assert not p.is_visible("#plan-problem")
    assert p.inner_text("#plan-rule") != ""
    assert p.get_attribute(field, "aria-invalid") is None


def test_nothing_is_wider_than_the_window(page: Page, server: Server) -> None:
    p = page
    open_ready(p, server)
    p.wait_for_function("document.getElementById('forward').dataset.version > 0", timeout=60_000)
    assert p.inner_text("#legend").count(":") == 5
    no_overflow(p)
    p.select_option("#convention", "jax")  # the longest names: delta_orthogonal, column_axis
    p.select_option("#scheme", "delta_orthogonal")
    p.fill("#shape", "3,3,64,64")
    p.dispatch_event("#shape", "change")
    drawn(p, "delta_orthogonal")
    no_overflow(p)


def test_copy_without_the_clipboard_api_says_what_happened(page: Page, server: Server) -> None:
    """Plain HTTP on a host other than localhost has no navigator.clipboard."""
    p = page
    p.add_init_script("delete Navigator.prototype.clipboard")
    open_ready(p, server, depth=False)
    assert p.evaluate("navigator.clipboard === undefined")
    for snippet in ["curl", "python"]:
        assert p.inner_text(f"#{snippet}-copied") == ""
        p.click(f"button[data-copy={snippet}]")
        p.wait_for_function(f"document.getElementById('{snippet}-copied').textContent !== ''")
        said = p.inner_text(f"#{snippet}-copied")
        assert said in {
            "copied (no clipboard API here: used the copy command)",
            "selected: press Ctrl+C (⌘C) to copy",
        }
        assert p.is_visible(f"#{snippet}-copied")
        selected = p.evaluate("getSelection().toString()")
        assert selected == p.eval_on_selector(f"#{snippet}", "e => e.textContent") != ""


def test_copy_with_the_clipboard_api(page: Page, server: Server) -> None:
    p = page
    p.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    open_ready(p, server, depth=False)
    p.click("button[data-copy=curl]")
    p.wait_for_function("document.getElementById('curl-copied').textContent !== ''")
    assert p.inner_text("#curl-copied") == "copied"
    assert p.evaluate("navigator.clipboard.readText()") == p.inner_text("#curl")


COUNT_COLOR = """([id, rgb]) => {
  const c = document.getElementById(id);
  const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < data.length; i += 4) {
    const [r, g, b, a] = data.slice(i, i + 4);
    if (Math.abs(r - rgb[0]) + Math.abs(g - rgb[1]) + Math.abs(b - rgb[2]) < 24 && a > 200) n++;
  }
  return n;
}"""


def test_this_scheme_is_drawn_last_and_dashed(page: Page, server: Server) -> None:
    """By default "this scheme" is torch he_normal, the same line as "He normal": it is drawn
    on top, dashed, and both colors show."""
    p = page
    open_ready(p, server)
    p.wait_for_function("document.getElementById('backward').dataset.version > 0", timeout=60_000)
    for canvas in ["forward", "backward"]:
        order = (p.get_attribute(f"#{canvas}", "data-order") or "").split("|")
        assert order[-1] == "this scheme"
        assert sorted(order) == sorted(
            ["this scheme", "He normal", "Glorot normal", "10× too small", "2× too large"]
        )
        assert p.get_attribute(f"#{canvas}", "data-dashed") == "this scheme"
        blue: Any = p.evaluate(COUNT_COLOR, [canvas, [0x1F, 0x6F, 0xEB]])  # this scheme
        red: Any = p.evaluate(COUNT_COLOR, [canvas, [0xD1, 0x24, 0x2F]])  # He normal, under it
        assert blue > 300, blue
        assert red > 100, red
    assert p.inner_text("#legend").startswith("╍ this scheme (he_normal, torch)")


def test_the_page_says_when_it_waits_and_when_it_is_ready(page: Page, server: Server) -> None:
    p = page
    p.add_init_script(RECORD_AT_READY)
    held: list[Route] = []
    p.route("**/v1/analyze", lambda route: route.abort())  # not about depth
    p.route("**/v1/schemes", lambda r: held.append(r))
    p.goto(server.url + "/")
    until(p, lambda: bool(held))
    # the catalogue is late: the page says so; its selects say so too, never blank
    assert p.is_visible("#status")
    assert p.inner_text("#status") == "loading the catalogue…"
    for select in ["#convention", "#scheme"]:
        assert p.eval_on_selector(select, "s => [...s.options].map((o) => o.text)") == ["loading…"]
        assert p.is_disabled(select)
    assert p.get_attribute("body", "data-ready") is None
    held[0].continue_()

    p.wait_for_function("document.body.dataset.ready === '1'")
    at_ready: dict[str, Any] = p.evaluate("window.__atReady")
    assert at_ready["ready"] == "1"
    assert "torch" in at_ready["conventions"]
    assert len(at_ready["conventions"]) >= 5
    assert "glorot_uniform" in at_ready["schemes"]
    assert len(at_ready["schemes"]) >= 10
    assert at_ready["scheme"] == "he_normal"
    assert at_ready["histogram"] >= 1  # the first sample is drawn when it says ready
    assert not p.is_disabled("#scheme")

    # an answer is late: the badge and the sections that wait say so, until it comes
    p.wait_for_selector("#status", state="hidden")
    slow: list[Route] = []
    p.route("**/v1/tensors/glorot_uniform?*", lambda r: slow.append(r))
    p.select_option("#scheme", "glorot_uniform")
    until(p, lambda: bool(slow))
    assert p.is_visible("#status")
    assert p.inner_text("#status") == "loading the glorot_uniform tensor…"
    assert p.get_attribute("body", "data-busy") == "tensor"
    assert p.get_attribute("#sample", "aria-busy") == "true"
    slow[0].continue_()
    p.unroute("**/v1/tensors/glorot_uniform?*")
    drawn(p, "glorot_uniform")
    p.wait_for_selector("#status", state="hidden")
    assert p.get_attribute("#sample", "aria-busy") == "false"
    assert p.get_attribute("body", "data-busy") == ""


def test_the_page_keeps_its_csp(browser: Browser, server: Server, width: int) -> None:
    """Without bypass_csp: the page loads, draws and reports no violation of its policy."""
    context = browser.new_context(viewport={"width": width, "height": 1300})
    p = context.new_page()
    violations: list[str] = []
    p.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else None)
    p.add_init_script(
        "document.addEventListener('securitypolicyviolation', (e) =>"
        " document.documentElement.dataset.csp = e.violatedDirective)"
    )
    p.goto(server.url + "/")
    p.locator("#forward:not([data-version='0'])").wait_for(timeout=60_000)
    p.locator("body[data-ready='1']").wait_for()
    assert p.get_attribute("html", "data-csp") is None
    assert violations == []
    assert "csp" not in p.evaluate("Object.keys(document.documentElement.dataset)")
    context.close()
