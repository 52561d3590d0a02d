"""Issue 15 in a real browser (Playwright + Debian chromium): each visible defect, and the new views,
at 1440x900 and 390x844. One app start for the run (tests/ui_browser_env.py); rendered numbers and element sizes are compared
with the same router in-process, never pixels.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from router.routing import costs, sweep
from router.routing.pool import check_scorable, load_pool
from router.ui import compare as cmp
from router.ui import explain, playground, pool_design
from router.ui import views as V

from .ui_browser_env import DESKTOP, NO_CHROMIUM, PHONE, QUERY, RECT, have_chromium, open_page, screenshot
from .ui_browser_env import set_tolerance as _tolerance
from .ui_browser_env import wait_chosen as _wait_chosen

pytestmark = pytest.mark.browser
# The fixtures browser, ui_registry and app_url (one app start for the run, one chromium per module).
pytest_plugins = ["tests.ui_browser_fixtures"]

if not have_chromium():
    pytest.skip(NO_CHROMIUM, allow_module_level=True)

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


def _page(browser, url, viewport=DESKTOP, query: str = ""):
    return open_page(browser, url, viewport, query)


def _shot(page, name: str) -> None:
    screenshot(page, "playground2", name)


def _route(page, text: str) -> str:
    old = page.get_attribute("#decision", "data-chosen") if page.query_selector("#decision") else None
    page.fill("#query textarea", text)
    page.click("#route-btn")
    page.wait_for_function("() => document.querySelector('#decision[data-chosen]') && "
                           "document.querySelector('#p-chart .js-plotly-plot')")
    return page.get_attribute("#decision", "data-chosen") or old


def _pick(page, elem: str, option: str) -> None:
    page.click(f"{elem} input")
    page.get_by_role("option", name=option, exact=True).click()


def _cells_cut(page, elem: str) -> list[str]:
    """Texts of table cells whose content is wider than the cell (cut off or ellipsised)."""
    return page.evaluate("""sel => [...document.querySelectorAll(sel + ' .cell-wrap, ' + sel + ' th')].filter(td => {
        const r = td.getBoundingClientRect(); if (!r.width || td.closest('[aria-hidden=true]')) return false;
        return [td, ...td.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 1 &&
               getComputedStyle(e).overflowX !== 'visible'); }).map(td => td.innerText)""", elem)


def test_route_view_fixes_and_explanation(browser, app_url, ui_registry):
    router = ui_registry.get()
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


def test_baseline_chosen_saves_zero_and_totals_stay_per_pool(browser, app_url, ui_registry):
    router = ui_registry.get()
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
    assert ui_registry.get("mixed-local").pool.baseline_slot.label in html

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


def test_sweep_labels_progress_and_compare(browser, app_url, ui_registry, tmp_path):
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
    rows = cmp.compare([ui_registry.get(p) for p in cmp.ARTICLE_POOLS], texts, cmp.ARTICLE_TOLERANCES)
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


def test_pool_design_live_and_download(browser, app_url, ui_registry, tmp_path):
    base = ui_registry.get()
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
    # The pick clears the fields from the server; typing before that answer lands would be overwritten.
    page.wait_for_function("() => document.querySelector('#design-name textarea').value === ''")
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
        for sel in ("#stats-box .basis", ".pool-info p", ".app-header p"):
            ratios = page.evaluate(CONTRAST, sel)
            assert ratios and min(ratios) >= 3.0, (theme, sel, ratios)
        _shot(page, f"theme-{theme}.png")
        page.close()


def test_phone_layout(browser, app_url, ui_registry):
    page = _page(browser, app_url, viewport=PHONE)
    # The sidebar starts collapsed on a phone: the query box is the first thing on screen.
    page.wait_for_function("() => !document.querySelector('#sidebar').classList.contains('open')")
    page.wait_for_timeout(400)  # the slide-out transition
    assert page.evaluate(RECT, "#sidebar")["right"] <= 1
    q = page.evaluate(RECT, "#query")
    assert q["x"] >= 0 and q["right"] <= PHONE["width"]
    chosen = _route(page, QUERY)
    assert chosen == ui_registry.get().route(QUERY, ui_registry.get().pool.default_tolerance).chosen
    chart, expl = page.evaluate(RECT, "#p-chart"), page.evaluate(RECT, "#explain")
    assert chart["right"] <= PHONE["width"] + 1 and expl["y"] >= chart["bottom"] - 1  # stacked, not squeezed
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"] + 1
    # The threshold label is readable: Plotly's toolbar (shown on touch/hover) must not cover it.
    page.hover("#p-chart .js-plotly-plot")
    covered = page.evaluate("""() => {
      const label = [...document.querySelectorAll('#p-chart .annotation-text')]
        .find(e => e.textContent.startsWith('threshold'));
      const bar = document.querySelector('#p-chart .modebar');
      if (!label) return 'no threshold label';
      if (!bar || bar.getClientRects().length === 0) return false;
      const a = label.getBoundingClientRect(), b = bar.getBoundingClientRect();
      return !(a.right < b.left || b.right < a.left || a.bottom < b.top || b.bottom < a.top);
    }""")
    assert covered is False, covered
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


# What the decision chart and the cost table look like at a width: sizes of the drawn boxes, read from the DOM.
LAYOUT = """() => {
  const vw = window.innerWidth, box = e => { const r = e.getBoundingClientRect();
    return {x: r.x, y: r.y, right: r.right, bottom: r.bottom, w: r.width, h: r.height}; };
  // Elements sticking out of the viewport, unless a scrolling/clipping ancestor inside the viewport holds them.
  const wide = [...document.querySelectorAll('body *')].filter(e => {
    if (e.closest('#sidebar')) return false;
    const r = e.getBoundingClientRect(); if (!r.width || !r.height || (r.right <= vw + 1 && r.x >= -1)) return false;
    if (r.right <= 0) return false;  // wholly left of the page (plotly's text-measuring svg): never shown
    for (let p = e.parentElement; p; p = p.parentElement) { const s = getComputedStyle(p);
      if (s.overflowX !== 'visible' && p.getBoundingClientRect().right <= vw + 1) return false; }
    return true; }).map(e => e.tagName + '.' + String(e.className).slice(0, 40));
  const gd = document.querySelector('#p-chart .js-plotly-plot');
  const ann = gd._fullLayout.annotations;
  const labels = [...gd.querySelectorAll('g.annotation')].map(g => ({i: +g.dataset.index, g}))
    .filter(({i}) => (ann[i].name || '').startsWith('label:'))
    .map(({i, g}) => ({slot: ann[i].name.slice(6), text: g.textContent, ...box(g.querySelector('text'))}));
  const bars = [...gd.querySelectorAll('g.barlayer g.point path')].map(box).filter(b => b.w > 0);
  const thr = [...gd.querySelectorAll('.shapelayer path')].map(box);
  const table = document.querySelector('#cost-table .cost-table');
  const cut = [...table.querySelectorAll('th, td')].filter(c => c.getClientRects().length &&
    c.scrollWidth > c.clientWidth + 1).map(c => c.innerText);
  return {vw, scrollWidth: document.documentElement.scrollWidth, wide, labels, bars, thr,
          thrX: gd._fullLayout.shapes[0].x0, plot: box(gd.querySelector('.nsewdrag') || gd.querySelector('svg.main-svg')),
          svg: box(gd.querySelector('svg.main-svg')), chart: box(document.querySelector('#p-chart')),
          explain: box(document.querySelector('#explain')), table: box(table), tableScroll: table.scrollWidth,
          tableClient: table.clientWidth, cut, headVisible: !!table.querySelector('thead th').getClientRects().length,
          rows: [...table.querySelectorAll('tbody tr')].map(tr => ({slot: tr.dataset.slot, ...box(tr)}))};
}"""


def _overlap(a, b) -> bool:
    return a["x"] < b["right"] - 0.5 and b["x"] < a["right"] - 0.5 and a["y"] < b["bottom"] - 0.5 and \
        b["y"] < a["bottom"] - 0.5


@pytest.mark.parametrize("viewport,theme", [(PHONE, "dark"), (PHONE, "light"), ({"width": 1280, "height": 900}, "light")],
                         ids=["390-dark", "390-light", "1280-light"])
def test_decision_chart_and_cost_table_fit_the_screen(browser, app_url, ui_registry, viewport, theme):
    router = ui_registry.get()
    pool = router.pool
    page = _page(browser, app_url, viewport=viewport, query=f"?__theme={theme}")
    if viewport is PHONE:
        page.wait_for_function("() => !document.querySelector('#sidebar').classList.contains('open')")
        page.wait_for_timeout(400)
    _route(page, QUERY)
    page.wait_for_selector("#cost-table tr[data-slot]")
    page.wait_for_timeout(300)  # plotly's first layout pass
    r = router.route(QUERY, pool.default_tolerance)
    lay = page.evaluate(LAYOUT)
    vw = viewport["width"]
    # Nothing wider than the screen, no sideways scroll of the page.
    assert lay["scrollWidth"] <= vw and not lay["wide"], lay["wide"]
    # Every model's name is drawn, whole, inside the figure and the screen, and no two overlap;
    # no name sits on a bar.
    labels = lay["labels"]
    assert sorted(x["slot"] for x in labels) == sorted(pool.names)
    for lab in labels:
        assert lab["w"] > 0 and lab["x"] >= lay["svg"]["x"] - 1 and lab["right"] <= min(lay["svg"]["right"], vw) + 1, lab
        assert pool.slot(lab["slot"]).label[:12] in lab["text"]
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            assert not _overlap(a, b), (a, b)
        for bar in lay["bars"]:
            assert not _overlap(a, bar), (a, bar)
    assert len(lay["bars"]) == len(pool.names)
    # The threshold line is drawn at the rule's threshold, spanning the bars.
    assert lay["thrX"] == pytest.approx(max(r.threshold, 0.0))
    assert lay["thr"] and max(t["h"] for t in lay["thr"]) >= 0.8 * (max(b["bottom"] for b in lay["bars"]) -
                                                                     min(b["y"] for b in lay["bars"]))
    # The cost table fits its box: no sideways scroll inside, no cell cut, one row per model in cost order.
    assert lay["table"]["right"] <= vw and lay["tableScroll"] <= lay["tableClient"] + 1 and not lay["cut"], lay["cut"]
    assert [x["slot"] for x in lay["rows"]] == [m.name for m in sorted(r.models, key=lambda m: m.expected_cost_usd)]
    assert all(x["right"] <= lay["table"]["right"] + 1 for x in lay["rows"])
    if vw < 700:  # one block per model, stacked under the chart and the explanation
        assert not lay["headVisible"] and lay["explain"]["y"] >= lay["chart"]["bottom"] - 1
        assert all(x["h"] < 100 for x in lay["rows"]), [x["h"] for x in lay["rows"]]
    else:  # a table with its header; the explanation right of the chart, wide enough to read
        assert lay["headVisible"] and lay["explain"]["x"] >= lay["chart"]["right"] - 2 and lay["explain"]["w"] >= 280
    _shot(page, f"fit-{vw}-{theme}.png")
    page.close()


def _phone_tab(page, name: str) -> None:
    """Open a tab on a phone: the ones that do not fit sit in Gradio's "More tabs" menu."""
    tab = page.get_by_role("tab", name=name)
    if tab.count() and tab.first.is_visible():
        tab.first.click()
        return
    page.click("button[aria-label='More tabs']")
    page.click(f".overflow-dropdown button:has-text('{name}')")


# A figure's plot area, legend and svg boxes (CSS px).
FIGURE = """sel => { const gd = document.querySelector(sel + ' .js-plotly-plot');
  const box = e => { if (!e) return null; const r = e.getBoundingClientRect();
    return {x: r.x, y: r.y, right: r.right, bottom: r.bottom, w: r.width, h: r.height}; };
  return {svg: box(gd.querySelector('svg.main-svg')), plot: box(gd.querySelector('.nsewdrag')),
          legend: box(gd.querySelector('g.legend')),
          texts: [...gd.querySelectorAll('g.annotation text, g.legend text, g.xtitle text')].map(box)}; }"""
HEADS = """sel => [...document.querySelectorAll(sel + ' th.header-cell')].filter(t => t.getClientRects().length)
  .map(t => { const s = t.querySelector('span') || t; const lh = parseFloat(getComputedStyle(s).lineHeight) || 16;
    return {text: t.innerText.trim(), w: t.getBoundingClientRect().width, lines: Math.round(s.getBoundingClientRect().height / lh)}; })"""


def _figure_fits(page, sel: str, min_plot_share: float) -> None:
    fig = page.evaluate(FIGURE, sel)
    svg = fig["svg"]
    assert svg["right"] <= PHONE["width"] + 1
    # the legend does not eat the bars' width, and nothing is drawn outside the figure
    assert fig["plot"]["w"] >= min_plot_share * svg["w"], (sel, fig["plot"], svg)
    for t in fig["texts"] + ([fig["legend"]] if fig["legend"] else []):
        assert t["x"] >= svg["x"] - 1 and t["right"] <= svg["right"] + 1 and t["bottom"] <= svg["bottom"] + 1, (sel, t)


def test_other_tabs_fit_a_phone(browser, app_url):
    page = _page(browser, app_url, viewport=PHONE, query="?__theme=dark")
    page.wait_for_function("() => !document.querySelector('#sidebar').classList.contains('open')")
    _route(page, QUERY)
    _route(page, "What is 2 + 2?")
    _phone_tab(page, "Tolerance sweep")
    page.click("#sweep-btn")
    page.wait_for_selector("#sweep-curve .js-plotly-plot")
    page.wait_for_timeout(300)
    _figure_fits(page, "#sweep-mix", 0.7)
    _figure_fits(page, "#sweep-curve", 0.6)
    _phone_tab(page, "Monthly projection")
    page.click("#project-btn")
    page.wait_for_selector("#projection-chart .js-plotly-plot")
    page.wait_for_timeout(300)
    _figure_fits(page, "#projection-chart", 0.6)
    _phone_tab(page, "Compare")
    page.click("#cmp-article-btn")
    page.wait_for_selector("#compare-chart .js-plotly-plot")
    page.wait_for_timeout(300)
    _figure_fits(page, "#compare-chart", 0.85)
    assert page.evaluate(RECT, ".table-scroll")["right"] <= PHONE["width"] + 1
    # Audit: readable columns (fixed widths that scroll inside the table's box), the page itself never scrolls.
    _phone_tab(page, "Audit")
    page.wait_for_function("() => document.querySelector('#audit-table').innerText.includes('routed only')")
    heads = page.evaluate(HEADS, "#audit-table")
    assert [h["text"] for h in heads] == V.AUDIT_HEADERS and min(h["w"] for h in heads) >= 45, heads
    assert page.evaluate(RECT, "#audit-table")["right"] <= PHONE["width"] + 1
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    _shot(page, "audit-390.png")
    page.close()


def test_audit_headers_stay_whole_at_1280(browser, app_url):
    page = _page(browser, app_url, viewport={"width": 1280, "height": 900})
    _route(page, QUERY)
    page.get_by_role("tab", name="Audit").click()
    page.wait_for_function("() => document.querySelector('#audit-table').innerText.includes('routed only')")
    heads = page.evaluate(HEADS, "#audit-table")
    assert [h["text"] for h in heads] == V.AUDIT_HEADERS
    assert all(h["lines"] == 1 for h in heads if " " not in h["text"]), heads  # no word broken in two
    page.close()
