"""The playground in a real browser: Playwright drives Debian's headless chromium against app.create_app.

Screenshots land in artifacts/playground/ (gitignored). Expected choices come from the same
router in-process (relations, not hard-coded probabilities). Start-up shared with test_ui_browser2:
tests/ui_browser_env.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from router.routing.registry import RouterRegistry
from router.ui.charts import COLORS

from .serving import ServerThread
from .ui_browser_env import NO_CHROMIUM, QUERY, have_chromium, open_page, screenshot, set_tolerance, wait_chosen
from .ui_helpers import stub_pool_yaml
from .upstream_stub import UpstreamStub

pytestmark = pytest.mark.browser
# The fixtures browser, ui_registry and app_url (one app start for the run, one chromium per module).
pytest_plugins = ["tests.ui_browser_fixtures"]

if not have_chromium():
    pytest.skip(NO_CHROMIUM, allow_module_level=True)


def _page(browser, url):
    return open_page(browser, url, viewport={"width": 1440, "height": 1000})


_wait_chosen, _set_tolerance = wait_chosen, set_tolerance


def _traces(page, elem: str) -> list[dict]:
    return page.evaluate(f"""() => document.querySelector('{elem} .js-plotly-plot').data.map(
        t => ({{name: t.name, y: t.y, x: t.x, color: t.marker && t.marker.color}}))""")


def _shot(page, name: str) -> None:
    screenshot(page, "playground", name)


def test_route_slider_toggle_and_sweep(browser, app_url, ui_registry):
    router = ui_registry.get()
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
    other = ui_registry.get(next(p for p in ui_registry.policies if p != ui_registry.default))
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
            # The last streamed chunk already shows the actual cost; the session cards follow in the final
            # update, so wait for them rather than read them at once (it raced under load).
            page.wait_for_function("() => document.querySelector('#stats-box').innerText.includes('real usage')")
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
