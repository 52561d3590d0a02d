"""Issue 15 without a browser: explanations, text window, per-pool totals, comparison, pool design, self-calls.

Real router and checkpoint; expectations are relations re-derived with `select`, never stored numbers.
"""

from __future__ import annotations

import pytest
import yaml

from router.errors import InputError
from router.routing import sweep
from router.routing.pool import check_scorable, list_configs, load_pool
from router.routing.registry import RouterRegistry
from router.routing.router import select
from router.ui import compare as cmp
from router.ui import explain, playground, pool_design, review
from router.ui import views as V

QUERIES = ["What is 2 + 2?", "Prove that the square root of 2 is irrational.",
           "Write a Python decorator that retries a function three times.", "東京でおすすめの公園は？"]


@pytest.fixture(scope="module")
def registry():
    return RouterRegistry.from_paths()


def _pc(r):
    return [m.p for m in r.models], [m.expected_cost_usd for m in r.models], [m.allowed for m in r.models]


def test_explained_tolerances_really_switch_the_choice(registry):
    router = registry.get()
    scored = [router.score(q) for q in QUERIES]  # one encoder pass per query; each tolerance re-decides
    for sc, tolerance in ((sc, t) for sc in scored for t in (0.0, 0.05, 0.2)):
        r = router.decide(sc, tolerance)
        p, c, allowed = _pc(r)
        names = [m.name for m in r.models]
        nc = explain.next_cheaper(r)
        if nc is None:
            assert r.chosen == min(names, key=lambda n: (c[names.index(n)], names.index(n)))
        else:
            picked = names[select(p, c, nc.tolerance, allowed).chosen]
            assert picked == nc.name and c[names.index(picked)] < r.expected_cost_usd
            # Just below the boundary the choice is still this one (or no cheaper one).
            before = names[select(p, c, max(tolerance, nc.tolerance - 1e-6), allowed).chosen]
            assert c[names.index(before)] >= r.expected_cost_usd
        bb = explain.best_below(r)
        if r.chosen != r.best and bb is not None:
            assert names[select(p, c, max(0.0, bb - 1e-6), allowed).chosen] == r.best
            assert names[select(p, c, min(1.0, bb + 1e-6), allowed).chosen] != r.best
        e = explain.explain(r)
        for _name, _label, pm, gap in e["below"]:
            assert pm < r.threshold and gap == pytest.approx(r.threshold - pm)
        html = explain.explain_html(r, explain.text_window(router, r.input_tokens))
        assert f"Threshold {r.threshold:.3f}" in html and "Routing read the whole text" in html


def test_long_paste_says_what_part_was_read(registry):
    router = registry.get()
    spec = router.checkpoint.encoder_spec
    text = " ".join(f"word{i}" for i in range(3000))
    r = router.route(text, 0.2)
    w = explain.text_window(router, r.input_tokens)
    assert w.total == r.input_tokens > spec.max_tokens
    assert w.truncated and w.read < spec.max_tokens and w.side == spec.truncation_side
    # The read part is exactly the ids the encoder got, minus its special tokens.
    ids, _ = router.encoder.tokenize([text])
    assert len(ids[0]) == spec.max_tokens and w.read == spec.max_tokens - (len(ids[0]) - w.read)
    html = V.decision_html(r, w)
    assert f"routing read only the last {w.read} of {w.total} tokens" in html
    assert "window-short" not in V.decision_html(router.route("hi", 0.2), explain.text_window(router, 3))


def test_session_totals_count_the_current_pool_only(registry):
    a, b = registry.get("default"), registry.get("mixed-local")
    s = playground.Session()
    playground.route(a, s, QUERIES[0], 0.2, None)
    playground.route(a, s, QUERIES[1], 0.2, None)
    playground.route(b, s, QUERIES[2], 0.2, None)
    st_b, html_b = V.stats_for(s.records, b.pool)
    assert st_b.queries == 1 and st_b.baseline_usd == s.records[-1]["baseline_cost_usd"]
    assert "2 decision(s) made in other pools" in html_b
    st_a, html_a = V.stats_for(s.records, a.pool)
    assert st_a.queries == 2 and "1 decision(s)" in html_a


def test_compare_matches_the_sweep_and_the_article_layout(registry):
    texts = [s["question"] for s in playground.load_samples()][:6]
    routers = [registry.get(p) for p in cmp.ARTICLE_POOLS]
    rows = cmp.compare(routers, texts, cmp.ARTICLE_TOLERANCES)
    assert [r.tolerance for r in rows] == [None, 0.05, 0.1, 0.2] * 2
    for router in routers:
        mine = [r for r in rows if r.policy == router.pool.policy]
        sw = playground.run_sweep(router, texts, list(cmp.ARTICLE_TOLERANCES), None)
        ref = mine[0]
        assert ref.reduction_pct == 0.0 and ref.total_usd == pytest.approx(sw.baseline_mean_cost_usd * len(texts))
        for row, i in zip(mine[1:], range(3)):
            assert row.total_usd == pytest.approx(sw.mean_cost_usd[i] * len(texts))
            assert row.mean_p == pytest.approx(sw.mean_p[i])
            assert sum(row.mix.values()) == len(texts)
            assert row.reduction_pct == pytest.approx(100 * (1 - row.total_usd / ref.total_usd))
    html = cmp.compare_html(rows, "the sample set")
    assert html.count("<tr class=") == 8 and f"{len(texts)} questions" in html
    assert cmp.parse_tolerances("0.2, 0.05 0.1") == [0.05, 0.1, 0.2]
    with pytest.raises(InputError, match="in \\[0, 1\\]"):
        cmp.parse_tolerances("0.1, 2")
    with pytest.raises(InputError, match="numbers"):
        cmp.parse_tolerances("low")


def test_pool_design_edits_decide_and_download_as_a_valid_pool(registry, tmp_path):
    base = registry.get()
    ckpt = base.checkpoint.slots
    design = pool_design.start(base.pool)
    assert design.policy == "default-design" and design.names == base.pool.names
    q = QUERIES[1]
    before = pool_design.router_for(base, design).route(q, 0.2)
    # Make the chosen model expensive: the decision moves elsewhere.
    chosen = before.chosen
    d1 = pool_design.edit_slot(design, chosen, ckpt, cost_in=500, cost_out=5000)
    after = pool_design.router_for(base, d1).route(q, 0.2)
    assert after.chosen != chosen or after.candidates == [chosen]
    # Switch a binding: that slot now reads another label column.
    other = next(c for c in ckpt if c != base.pool.slot(base.pool.names[0]).score_as)
    d2 = pool_design.edit_slot(d1, base.pool.names[0], ckpt, trained_as=other)
    r2 = pool_design.router_for(base, d2).route(q, 0.2)
    ref = registry.get("routerbench-11").route(q, 0.2)
    assert r2.score(base.pool.names[0]).p == pytest.approx(ref.score(other).p, abs=1e-6)
    # Add a slot that borrows an existing column, with a new destination.
    d3 = pool_design.edit_slot(d2, pool_design.NEW_SLOT, ckpt, name="my-llama", display_name="My Llama",
                               model="meta/llama-3.3-70b", api_base="http://10.0.0.7:8100/v1", cost_in=0.01,
                               cost_out=0.02, trained_as="meta/llama-2-70b-chat")
    r3 = pool_design.router_for(base, d3).route(q, 0.2)
    assert len(r3.models) == len(base.pool.models) + 1
    assert r3.score("my-llama").p == pytest.approx(ref.score("meta/llama-2-70b-chat").p, abs=1e-6)
    # The download is a pool YAML the configs/ loader accepts.
    path = tmp_path / "designed.yaml"
    path.write_text(pool_design.to_yaml(d3), encoding="utf-8")
    loaded = load_pool(path)
    check_scorable(loaded, ckpt)
    assert loaded.names == d3.names and loaded.slot("my-llama").api_base == "http://10.0.0.7:8100/v1"
    assert loaded.slot(chosen).cost_per_m_input_tokens == 500
    assert "base64," in pool_design.download_html(d3)


def test_pool_design_rejects_bad_edits_with_the_field(registry):
    base = registry.get()
    d = pool_design.start(base.pool)
    ckpt = base.checkpoint.slots
    with pytest.raises(InputError, match="cost_per_m_input_tokens"):
        pool_design.edit_slot(d, d.names[0], ckpt, cost_in=-1)
    with pytest.raises(InputError, match="duplicate slot name"):
        pool_design.edit_slot(d, pool_design.NEW_SLOT, ckpt, name=d.names[1], trained_as=ckpt[0])
    with pytest.raises(InputError, match="api_base"):
        pool_design.edit_slot(d, d.names[0], ckpt, api_base="localhost:9")
    with pytest.raises(InputError, match="give it a name"):
        pool_design.edit_slot(d, pool_design.NEW_SLOT, ckpt, name=" ")


def test_no_config_slot_points_at_the_proxy_and_the_judge_is_a_running_slot():
    for path in list_configs():
        pool = load_pool(path)
        for s in pool.models:
            assert not review.calls_itself(s.api_base), f"{path.name}: {s.name} at {s.api_base}"
        assert review.judge_slot(pool).enabled
    assert review.calls_itself("http://localhost:8000/v1")
    assert review.calls_itself("http://127.0.0.1:7860/v1", ["http://127.0.0.1:7860/gradio_api/queue/join"])
    assert not review.calls_itself("http://127.0.0.1:8001/v1", ["http://127.0.0.1:7860/"])


def test_review_never_calls_this_app(tmp_path):
    import asyncio

    raw = yaml.safe_load(open(list_configs()[0], encoding="utf-8"))
    raw["models"] = [dict(raw["models"][0], api_base="http://127.0.0.1:7861/v1", enabled=True)]
    raw.pop("baseline", None)
    path = tmp_path / "self.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    pool = load_pool(path)
    # backend=None: any call attempt would raise AttributeError; the guard must answer first.
    rv = asyncio.run(review.review(None, pool, "q", "a", own_urls=["http://localhost:7861/"]))
    assert rv.verdict == "not reviewed" and "this router itself" in rv.reason


def test_sweep_curve_labels_never_overlap(registry):
    from router.ui.charts import point_labels, sweep_figures

    router = registry.get()
    sw = playground.run_sweep(router, [s["question"] for s in playground.load_samples()], sweep.tolerance_grid(),
                              None)
    _mix, curve = sweep_figures(sw, V.labels_of(router.pool), "Opus")
    pts = [(x, y, t) for x, y, t in zip(curve.data[0].x, curve.data[0].y, curve.data[0].text) if t]
    assert len({(round(x, 12), round(y, 12)) for x, y, _ in pts}) == len(pts)
    assert point_labels(["0.30", "0.35", "0.40", "0.45"], [1, 0, 0, 0], [0.5, 0.4, 0.4, 0.4]) == \
        ["0.30", "0.35–0.45", "", ""]
