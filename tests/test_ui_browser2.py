"""Issue 15 in a real browser (Playwright + Debian chromium): each visible defect, and the new views,
at 1440x900 and 390x844. One app start for the module; rendered numbers and element sizes are compared
with the same router in-process, never pixels.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from router.routing import costs, sweep
from router.routing.pool import check_scorable, load_pool
from router.routing.registry import RouterRegistry
from router.ui import compare as cmp
from router.ui import explain, playground, pool_design
from router.ui import views as V

from .serving import ServerThread

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("ROUTER_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]
SHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "playground2"
QUERY = "Prove that the square root of 2 is irrational."
DESKTOP, PHONE = {"width": 1440, "height": 900}, {"width": 390, "height": 844}

if not Path(CHROMIUM).exists():
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

RECT = "sel => { const e = document.querySelector(sel); const r = e.getBoundingClientRect(); " \
       "return {x: r.x, y: r.y, w: r.width, h: r.height, right: r.right, bottom: r.bottom}; }"
# WCAG contrast of an element's text against the first opaque background behind it.
CONTRAST = """sel => [...document.querySelectorAll(sel)].filter(e => e.offsetParent !== null).map(e => {
  const rgb = s => { const m = s.match(/[\\d.]+/g).map(Number); return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1}; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
                     return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  let bg = null, n = e;
  while (n && n.nodeType === 1) { const s = getComputedStyle(n);
    if (s.backgroundImage && s.backgroundImage.includes('gradient')) { const m = s.backgroundImage.match(/rgba?\\([^)]+\\)/g);
      if (m) { bg = m.map(rgb).reduce((a, c) => lum(c) < lum(a) === (lum(rgb(getComputedStyle(e).color)) > 0.5) ? c : a); break; } }
    const c = rgb(s.backgroundColor); if (c.a > 0.9) { bg = c; break; } n = n.parentElement; }
  bg = bg || {r: 255, g: 255, b: 255};
  const L1 = lum(rgb(getComputedStyle(e).color)), L2 = lum(bg);
  return (Math.max(L1, L2) + 0.05) / (Math.min(L1, L2) + 0.05); })"""


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


def _page(browser, url, viewport=DESKTOP, query: str = ""):
    page = browser.new_page(viewport=viewport)
    page.set_default_timeout(60_000)
    page.goto(url + "/" + query)
    page.wait_for_selector("#query textarea")
    return page


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def _route(page, text: str) -> str:
    old = page.get_attribute("#decision", "data-chosen") if page.query_selector("#decision") else None
    page.fill("#query textarea", text)
    page.click("#route-btn")
    page.wait_for_function("() => document.querySelector('#decision[data-chosen]') && "
                           "document.querySelector('#p-chart .js-plotly-plot')")
    return page.get_attribute("#decision", "data-chosen") or old


def _wait_chosen(page, expected: str) -> None:
    page.wait_for_function("v => document.querySelector('#decision')?.dataset.chosen === v", arg=expected)


def _tolerance(page, value: float) -> None:
    box = page.locator("#tolerance input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def _pick(page, elem: str, option: str) -> None:
    page.click(f"{elem} input")
    page.get_by_role("option", name=option, exact=True).click()


def _cells_cut(page, elem: str) -> list[str]:
    """Texts of table cells whose content is wider than the cell (cut off or ellipsised)."""
    return page.evaluate("""sel => [...document.querySelectorAll(sel + ' .cell-wrap, ' + sel + ' th')].filter(td => {
        const r = td.getBoundingClientRect(); if (!r.width || td.closest('[aria-hidden=true]')) return false;
        return [td, ...td.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 1 &&
               getComputedStyle(e).overflowX !== 'visible'); }).map(td => td.innerText)""", elem)


def test_route_view_fixes_and_explanation(browser, app_url, registry):
    router = registry.get()
    pool = router.pool
    page = _page(browser, app_url)
    chosen = _route(page, QUERY)
    r = router.route(QUERY, pool.default_tolerance)
    assert chosen == r.chosen
    # The explanation sits next to the chart (right of it at 1440 px) and states the rule's numbers.
    chart, expl = page.evaluate(RECT, "#p-chart"), page.evaluate(RECT, "#explain")
    assert expl["x"] >= chart["right"] - 2 and expl["y"] < chart["bottom"]
    text = page.inner_text("#explain")
    assert f"Threshold {r.threshold:.3f}" in text and "Routing read the whole text" in text
    nc = explain.next_cheaper(r)
    if nc is not None:
        assert page.inner_text("#next-cheaper-tol") == f"{nc.tolerance:.3f}"
    # The axis is a probability: it stops at 1.0; the value labels still fit inside the figure.
    fig = page.evaluate("""() => { const gd = document.querySelector('#p-chart .js-plotly-plot');
        const svg = gd.querySelector('svg.main-svg').getBoundingClientRect();
        const texts = [...gd.querySelectorAll('g.textpoint text, g.annotation text')].map(t => t.getBoundingClientRect().right);
        return {range: gd._fullLayout.xaxis.range, font: gd._fullLayout.font.size, right: svg.right, texts,
                styles: gd.data.map(t => [t.name, t.marker.pattern.shape, t.marker.line.width, t.marker.color])}; }""")
    assert fig["range"] == [0, 1] and fig["font"] >= 14
    assert fig["texts"] and max(fig["texts"]) <= fig["right"] + 1
    styles = {name: (shape, width) for name, shape, width, _c in fig["styles"]}
    # chosen / best / candidate / below threshold differ in pattern or outline, not only in hue
    kinds = [v for k, v in styles.items() if k != "switched off"]
    assert len(set(kinds)) == len(kinds)
    # Cost table: full names, nothing cut off.
    table = page.inner_text("#cost-table")
    for m in pool.models:
        assert m.label in table
    assert "Exp. out tok." in table and not _cells_cut(page, "#cost-table")
    _shot(page, "route-1440.png")

    # A long paste: the page says which part routing read.
    long_text = " ".join(["The committee reviewed the quarterly numbers and the plan for next year."] * 250)
    _route(page, long_text)
    page.wait_for_selector("#window-short")
    lr = router.route(long_text, pool.default_tolerance)
    w = explain.text_window(router, lr.input_tokens)
    assert w.truncated
    assert page.inner_text("#window-short") == f"routing read only the last {w.read} of {w.total} tokens"
    assert f"only the last {w.read} tokens of {w.total}" in page.inner_text("#window-note")

    # Japanese renders with Noto Sans CJK (the declared font stack; CI installs fonts-noto-cjk).
    jp = next(x["question"] for x in playground.load_samples() if x["label"] == "Japanese chitchat")
    n_jp = router.route(jp, pool.default_tolerance).input_tokens
    page.get_by_role("button", name="Japanese chitchat").click()
    page.wait_for_function("n => document.querySelector('#decision')?.innerText.includes(n + ' input tokens')",
                           arg=n_jp)
    page.wait_for_function("() => /[\\u3040-\\u30ff\\u4e00-\\u9fff]/.test(document.querySelector('#query textarea').value)")
    page.get_by_role("tab", name="Audit").click()  # the audit table prints the query as page text
    page.wait_for_function("""() => { const c = [...document.querySelectorAll('#audit-table .cell-wrap span')].find(
        e => !e.closest('[aria-hidden=true]') && /[\\u3040-\\u30ff]/.test(e.textContent));
        if (c) c.setAttribute('data-cjk', '1'); return !!c; }""")
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "[data-cjk]"})["nodeId"]
    fonts = [f["familyName"] for f in cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]]
    assert any("Noto Sans CJK" in f for f in fonts), fonts
    page.close()


def test_baseline_chosen_saves_zero_and_totals_stay_per_pool(browser, app_url, registry):
    router = registry.get()
    pool = router.pool
    base = pool.baseline_slot
    page = _page(browser, app_url)
    _route(page, QUERY)
    for name in pool.names:
        if name != base.name:
            page.locator(f"#models input[name='{name}']").click()
    _tolerance(page, 0.0)
    _wait_chosen(page, base.name)
    page.wait_for_function("() => document.querySelector('#stats-box').innerText.includes('saved')")
    stats = page.inner_text("#stats-box")
    assert "0.0%" in stats and "$0.000000" in stats and "-" not in stats.split("saved")[0].split("\n")[-2]

    # Switch pools: the query is routed again in the new pool; the cards count that pool's decisions only.
    _pick(page, "#pool", "mixed-local")
    page.wait_for_selector("#other-pools")
    html = page.inner_html("#stats-box")
    assert ">1</span>queries" in html and "1 decision(s) made in other pools" in html
    assert registry.get("mixed-local").pool.baseline_slot.label in html

    # Audit at 1440 px: every column visible, none cut off.
    page.get_by_role("tab", name="Audit").click()
    page.wait_for_function("() => document.querySelector('#audit-table').innerText.includes('routed only')")
    box = page.evaluate(RECT, "#audit-table")
    assert box["right"] <= 1440
    heads = page.evaluate("""() => [...document.querySelectorAll('#audit-table th')].filter(t => t.getBoundingClientRect().width)
        .map(t => [t.innerText.trim(), t.getBoundingClientRect().right])""")
    assert [h for h, _ in heads if h] == V.AUDIT_HEADERS
    assert all(right <= box["right"] + 1 for _, right in heads)
    assert not _cells_cut(page, "#audit-table")
    _shot(page, "audit-1440.png")
    page.close()


def test_sweep_labels_progress_and_compare(browser, app_url, registry, tmp_path):
    page = _page(browser, app_url)
    page.get_by_role("tab", name="Tolerance sweep").click()
    # Record which output slots ever show a progress tracker while the sweep runs.
    page.evaluate("""() => { window.__progress = new Set();
      const ids = ['sweep-summary', 'sweep-mix', 'sweep-curve', 'sweep-table'];
      const look = () => ids.forEach(id => { const t = document.querySelector('#' + id + ' [data-testid=status-tracker]');
        if (t && !t.classList.contains('hide') && t.getBoundingClientRect().height > 0) window.__progress.add(id); });
      new MutationObserver(look).observe(document.body, {subtree: true, childList: true, attributes: true}); }""")
    page.click("#sweep-btn")
    page.wait_for_selector("#sweep-done")
    page.wait_for_selector("#sweep-curve .js-plotly-plot")
    shown = page.evaluate("() => [...window.__progress]")
    assert set(shown) <= {"sweep-summary"}, shown
    pts = page.evaluate("""() => { const t = document.querySelector('#sweep-curve .js-plotly-plot')._fullData[0];
        const ys = Array.from(t.y);  // plotly may hold typed arrays
        return Array.from(t.x).map((x, i) => [x, ys[i], t.text[i]]); }""")
    labelled = [(round(x, 12), round(y, 12)) for x, y, t in pts if t]
    assert len(labelled) == len(set(labelled))  # no two labels on one point
    _shot(page, "sweep-1440.png")

    # Compare: the article's comparison in one click.
    page.get_by_role("tab", name="Compare").click()
    page.click("#cmp-article-btn")
    page.wait_for_selector("#compare-done")
    texts = [s["question"] for s in playground.load_samples()]
    rows = cmp.compare([registry.get(p) for p in cmp.ARTICLE_POOLS], texts, cmp.ARTICLE_TOLERANCES)
    drawn = page.evaluate("""() => [...document.querySelectorAll('#compare-table tr[data-policy]')].map(tr =>
        [tr.dataset.policy, tr.dataset.tol, tr.querySelector('.total').innerText, tr.querySelector('.red').innerText,
         tr.querySelector('.meanp').innerText])""")
    assert drawn == [[r.policy, "" if r.tolerance is None else f"{r.tolerance:g}", cmp._usd(r.total_usd),
                      f"{r.reduction_pct:.1f}%", f"{r.mean_p:.3f}"] for r in rows]
    page.wait_for_selector("#compare-chart .js-plotly-plot")
    _shot(page, "compare-1440.png")
    f = tmp_path / "three.txt"
    f.write_text("What is 2 + 2?\nExplain quicksort.\nProve Fermat's little theorem.\n", encoding="utf-8")
    page.set_input_files("#cmp-file input[type=file]", str(f))
    page.wait_for_function("() => document.querySelector('#cmp-file').innerText.includes('three.txt')")
    page.click("#cmp-btn")
    page.wait_for_function("() => document.querySelector('#compare-done')?.innerText.includes('3 questions from file three.txt')")
    page.close()


def test_pool_design_live_and_download(browser, app_url, registry, tmp_path):
    base = registry.get()
    ckpt = base.checkpoint.slots
    page = _page(browser, app_url)
    chosen = _route(page, QUERY)
    page.get_by_role("tab", name="Pool design").click()
    _pick(page, "#design-slot", chosen)
    page.wait_for_function("v => document.querySelector('#design-name textarea').value === v", arg=chosen)
    page.fill("#design-in input", "500")
    page.fill("#design-out input", "5000")
    page.click("#design-apply")
    page.wait_for_selector("#design-state[data-active='1']")
    s = base.pool.slot(chosen)
    d1 = pool_design.edit_slot(pool_design.start(base.pool), chosen, ckpt, name=chosen, display_name=s.label,
                               model=s.model, api_base=s.api_base, cost_in=500, cost_out=5000,
                               trained_as=s.score_as, enabled=s.enabled)
    r1 = pool_design.router_for(base, d1)
    expected = r1.route(QUERY, base.pool.default_tolerance).chosen
    _wait_chosen(page, expected)
    # The other tabs already hold the design's sweep and projection (Gradio renders a tab when opened).
    page.get_by_role("tab", name="Tolerance sweep").click()
    page.wait_for_selector("#sweep-done[data-policy='default-design']")
    page.get_by_role("tab", name="Monthly projection").click()
    page.wait_for_selector("#projection")
    samples = [q["question"] for q in playground.load_samples()]
    mix = playground.run_sweep(r1, samples, sweep.tolerance_grid(), None).mix_at(base.pool.default_tolerance)
    proj = costs.monthly_projection(50, 600, 1500, 600, mix, costs.slot_prices(d1.models), d1.baseline_slot.name)
    assert V.usd(proj.routed_usd) in page.inner_text("#projection-box")
    page.get_by_role("tab", name="Pool design").click()
    assert V.usd(proj.routed_usd) in page.inner_text("#design-state")

    # Add a slot that borrows an existing label column.
    _pick(page, "#design-slot", pool_design.NEW_SLOT)
    page.fill("#design-name textarea", "my-llama")
    page.fill("#design-display textarea", "My Llama 70B")
    page.fill("#design-model textarea", "meta/llama-3.3-70b-instruct")
    page.fill("#design-base textarea", "http://10.0.0.7:8100/v1")
    page.fill("#design-in input", "0.01")
    page.fill("#design-out input", "0.02")
    _pick(page, "#design-trained", "meta/llama-2-70b-chat")
    page.click("#design-apply")
    n = len(base.pool.models) + 1
    page.wait_for_selector(f"#design-state[data-slots='{n}']")
    page.wait_for_function("n => document.querySelectorAll('#models input').length === n", arg=n)
    assert "My Llama 70B" in page.inner_text("#design-table")
    _shot(page, "design-1440.png")
    with page.expect_download() as dl:
        page.click("#design-download")
    path = tmp_path / "designed.yaml"
    path.write_bytes(Path(dl.value.path()).read_bytes())
    loaded = load_pool(path)  # the configs/ loader
    check_scorable(loaded, ckpt)
    assert loaded.slot("my-llama").trained_as == "meta/llama-2-70b-chat"
    assert loaded.slot(chosen).cost_per_m_output_tokens == 5000

    page.click("#design-discard")
    page.wait_for_selector("#design-state[data-active='0']")
    _wait_chosen(page, chosen)
    page.close()


def test_dark_and_light_themes_are_legible(browser, app_url):
    for theme in ("light", "dark"):
        page = _page(browser, app_url, query=f"?__theme={theme}")
        _route(page, QUERY)
        page.wait_for_selector("#explain")
        assert page.evaluate("() => document.body.classList.contains('dark')") == (theme == "dark")
        for sel in ("#stats-box .stat span", ".decision-line", ".decision-main .chosen-name", "#explain li",
                    "#cost-table td"):
            ratios = page.evaluate(CONTRAST, sel)
            assert ratios and min(ratios) >= 4.5, (theme, sel, ratios)
        for sel in ("#stats-box .basis", ".pool-info p"):
            ratios = page.evaluate(CONTRAST, sel)
            assert ratios and min(ratios) >= 3.0, (theme, sel, ratios)
        _shot(page, f"theme-{theme}.png")
        page.close()


def test_phone_layout(browser, app_url, registry):
    page = _page(browser, app_url, viewport=PHONE)
    # The sidebar starts collapsed on a phone: the query box is the first thing on screen.
    page.wait_for_function("() => !document.querySelector('#sidebar').classList.contains('open')")
    page.wait_for_timeout(400)  # the slide-out transition
    assert page.evaluate(RECT, "#sidebar")["right"] <= 1
    q = page.evaluate(RECT, "#query")
    assert q["x"] >= 0 and q["right"] <= PHONE["width"]
    chosen = _route(page, QUERY)
    assert chosen == registry.get().route(QUERY, registry.get().pool.default_tolerance).chosen
    chart, expl = page.evaluate(RECT, "#p-chart"), page.evaluate(RECT, "#explain")
    assert chart["right"] <= PHONE["width"] + 1 and expl["y"] >= chart["bottom"] - 1  # stacked, not squeezed
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"] + 1
    _shot(page, "route-390.png")
    # On a phone the tabs that do not fit sit in Gradio's "More tabs" menu.
    page.click("button[aria-label='More tabs']")
    page.click(".overflow-dropdown button:has-text('Compare')")
    page.click("#cmp-article-btn")
    page.wait_for_selector("#compare-done")
    assert page.evaluate(RECT, ".table-scroll")["right"] <= PHONE["width"] + 1
    _shot(page, "compare-390.png")
    # The toggle still opens it.
    page.click("#sidebar .toggle-button")
    page.wait_for_function("() => document.querySelector('#sidebar').classList.contains('open')")
    page.close()
