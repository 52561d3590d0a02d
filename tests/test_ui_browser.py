"""The playground in a real browser: Playwright drives Debian's headless chromium against app.create_app.

Screenshots land in artifacts/playground/ (gitignored). Expected choices come from the same
router in-process (relations, not hard-coded probabilities).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from router.routing.registry import RouterRegistry
from router.ui.charts import COLORS

from .serving import ServerThread
from .ui_helpers import stub_pool_yaml
from .upstream_stub import UpstreamStub

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("ROUTER_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]
SHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "playground"
QUERY = "Prove that the square root of 2 is irrational."

if not Path(CHROMIUM).exists():
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def registry():
    return RouterRegistry.from_paths()


@pytest.fixture(scope="module")
def app_url(registry):
    import app

    with ServerThread(app.create_app(registry=registry)) as server:
        yield server.url


def _page(browser, url):
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.set_default_timeout(60_000)
    page.goto(url + "/")
    page.wait_for_selector("#query textarea")
    return page


def _wait_chosen(page, expected: str) -> None:
    page.wait_for_function("v => document.querySelector('#decision')?.dataset.chosen === v", arg=expected)


def _set_tolerance(page, value: float) -> None:
    box = page.locator("#tolerance input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def _traces(page, elem: str) -> list[dict]:
    return page.evaluate(f"""() => document.querySelector('{elem} .js-plotly-plot').data.map(
        t => ({{name: t.name, y: t.y, x: t.x, color: t.marker && t.marker.color}}))""")


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def test_route_slider_toggle_and_sweep(browser, app_url, registry):
    router = registry.get()
    labels = {s.name: s.label for s in router.pool.models}
    page = _page(browser, app_url)

    page.fill("#query textarea", QUERY)
    page.click("#route-btn")
    page.wait_for_selector("#decision[data-chosen]")
    chosen = page.get_attribute("#decision", "data-chosen")
    assert chosen == router.route(QUERY, router.pool.default_tolerance).chosen
    page.wait_for_selector("#p-chart .js-plotly-plot")
    drawn = [y for t in _traces(page, "#p-chart") for y in t["y"]]
    assert sorted(drawn) == sorted(labels.values())  # every model has a bar
    assert labels[chosen] in page.inner_text("#decision")
    _shot(page, "1-route.png")

    # Slider to 1.0: the cheapest enabled model, decided on the cached scores.
    cheapest = router.route(QUERY, 1.0).chosen
    _set_tolerance(page, 1.0)
    _wait_chosen(page, cheapest)
    _shot(page, "2-tolerance-1.png")

    # Switch the cheapest model off: greyed in the chart, and never chosen at any tolerance.
    page.locator(f"#models input[name='{cheapest}']").click()
    enabled = [n for n in router.pool.names if n != cheapest]
    _wait_chosen(page, router.route(QUERY, 1.0, enabled).chosen)
    off = [t for t in _traces(page, "#p-chart") if t["name"] == "switched off"]
    assert off and off[0]["y"] == [labels[cheapest] + "  (off)"] and off[0]["color"] == COLORS["off"]
    for t in (0.0, 0.5, 1.0):
        _set_tolerance(page, t)
        _wait_chosen(page, router.route(QUERY, t, enabled).chosen)
        assert page.get_attribute("#decision", "data-chosen") != cheapest
    _shot(page, "3-model-off.png")

    page.get_by_role("tab", name="Tolerance sweep").click()
    page.click("#sweep-btn")
    page.wait_for_selector("#sweep-done")
    page.wait_for_selector("#sweep-mix .js-plotly-plot")
    mix = _traces(page, "#sweep-mix")
    assert mix and all(labels[cheapest] != t["name"] for t in mix)  # the switched-off model gets no share
    assert len(mix[0]["x"]) == 11
    _shot(page, "4-sweep.png")

    page.get_by_role("tab", name="Monthly projection").click()
    page.click("#project-btn")
    page.wait_for_selector("#projection")
    _shot(page, "5-projection.png")

    # Another pool: its models replace the toggles and the query on screen is routed again within it.
    other = registry.get(next(p for p in registry.policies if p != registry.default))
    page.get_by_role("tab", name="Route").click()
    page.click("#pool input")
    page.get_by_role("option", name=other.pool.policy).click()
    page.wait_for_function("n => document.querySelectorAll('#models input').length === n", arg=len(other.pool.names))
    expected = other.route(QUERY, other.pool.default_tolerance).chosen
    _wait_chosen(page, expected)
    page.close()


def test_send_streams_answer_from_local_slot(browser, tmp_path):
    import app

    answer = "Two plus two is four. This answer came from the loopback stub, streamed word by word."
    with UpstreamStub() as stub:
        stub.behave("stub/small-model", answer=answer, chunk_words=1)
        stub.behave("stub/large-model", answer=answer, chunk_words=1)
        registry = RouterRegistry.from_paths([stub_pool_yaml(tmp_path, stub.base_url)])
        with ServerThread(app.create_app(registry=registry)) as server:
            page = _page(browser, server.url)
            page.locator("#send-toggle input").check()
            page.fill("#query textarea", "What is 2 + 2?")
            page.click("#route-btn")
            page.wait_for_selector("#actual-cost")
            assert page.inner_text("#answer").strip() == answer
            assert page.inner_text("#actual-cost").startswith("$")
            chosen = page.get_attribute("#decision", "data-chosen")
            assert stub.calls(registry.get().pool.slot(chosen).model)
            assert "real usage" in page.inner_text("#stats-box")
            _shot(page, "6-send.png")
            page.get_by_role("tab", name="Session").click()
            page.wait_for_selector("#dist-chart .js-plotly-plot")
            assert "real usage" in page.inner_text("#session-stats")
            _shot(page, "7-session.png")
            page.get_by_role("tab", name="Audit").click()
            page.wait_for_function("() => document.querySelector('#audit-table').innerText.includes('answered')")
            with page.expect_download() as dl:
                page.click("#download-btn")
            lines = Path(dl.value.path()).read_text(encoding="utf-8").splitlines()
            assert len(lines) == 1 and json.loads(lines[0])["selected"] == chosen
            _shot(page, "8-audit.png")
            page.close()
