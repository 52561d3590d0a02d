"""The playground's figures and texts: valid plotly, every model drawn, the decision marked (real router)."""

from __future__ import annotations

import json
import re

import plotly.graph_objects as go
import pytest

from router.routing import costs, sweep
from router.ui import playground
from router.ui import views as ui_views
from router.ui.charts import (
    LABEL_CHARS,
    decision_figure,
    distribution_figure,
    projection_figure,
    short_label,
    sweep_figures,
)

QUERY = "Discuss the Chinese Room argument in 100 words."


def _decision(router, tolerance, enabled=None):
    return playground.route(router, playground.Session(), QUERY, tolerance, enabled)


def test_decision_figure_is_valid_plotly_and_marks_the_decision(default_router):
    names = default_router.pool.names
    r = _decision(default_router, 0.2, names[1:])
    fig = decision_figure(r)
    go.Figure(fig)  # raises on anything plotly's schema rejects
    json.loads(fig.to_json())
    by_name = {t["name"]: t for t in fig["data"]}
    drawn = sorted(y for t in fig["data"] for y in t["y"])
    assert len(drawn) == len(names)
    chosen = r.score(r.chosen)
    assert by_name["chosen (cheapest candidate)"]["y"] == [chosen.display_name]
    off = r.score(names[0])
    assert by_name["switched off"]["y"] == [off.display_name + "  (off)"]
    thr = fig["layout"]["shapes"][0]
    assert thr["x0"] == max(r.threshold, 0.0)
    # Every model has one name line above its bar (no y-axis labels, which a phone cut off); the chosen
    # and best ones say so.
    lines = {a["name"][len("label:"):]: a for a in fig["layout"]["annotations"] if a.get("name", "").startswith("label:")}
    assert sorted(lines) == sorted(names) and not fig["layout"]["yaxis"]["showticklabels"]
    assert "★ chosen" in lines[r.chosen]["text"] and chosen.display_name in lines[r.chosen]["text"]
    if r.best != r.chosen:
        assert lines[r.best]["text"].endswith("▲ best")
    assert lines[names[0]]["text"].endswith("(off)")
    # The figure grows with the pool: one row per model.
    assert fig["layout"]["height"] >= 46 * len(names)


def test_long_model_names_are_shortened_with_the_full_name_on_hover(default_router):
    from dataclasses import replace

    r = _decision(default_router, 0.2)
    long = "An Extremely Long Model Display Name That Goes On (preview, 2026 edition)"
    m0 = replace(r.models[0], display_name=long)
    r2 = replace(r, models=[m0, *r.models[1:]])
    line = next(a for a in decision_figure(r2)["layout"]["annotations"] if a.get("name") == f"label:{m0.name}")
    shown = line["text"].replace("<b>", "").replace("</b>", "")
    assert len(shown) <= LABEL_CHARS and shown.split("  ")[0].endswith("…")
    assert long in line["hovertext"]
    assert short_label("GPT-5.2 (high)", LABEL_CHARS) == "GPT-5.2 (high)"


def test_cost_table_html_has_one_row_per_model_cheapest_first(default_router):
    r = _decision(default_router, 0.2, default_router.pool.names[1:])
    html = ui_views.cost_table_html(r)
    slots = re.findall(r"<tr data-slot='([^']+)' data-status='([^']+)'", html)
    assert [s for s, _ in slots] == [m.name for m in sorted(r.models, key=lambda m: m.expected_cost_usd)]
    status = dict(slots)
    assert status[r.chosen] == "chosen" and status[default_router.pool.names[0]] == "off"
    for h in ui_views.COST_HEADERS[1:]:
        assert f"data-label='{h}'" in html  # the phone layout labels every number


def test_decision_texts_say_choice_threshold_and_time(default_router):
    r = _decision(default_router, 0.3)
    html = ui_views.decision_html(r)
    assert f"data-chosen='{r.chosen}'" in html
    assert f"{r.p_max:.3f}" in html and f"{r.threshold:.3f}" in html and " ms</b>" in html
    rows = ui_views.cost_rows(r)
    assert len(rows) == len(r.models)
    assert [float(x[2]) for x in rows] == sorted(float(x[2]) for x in rows)  # cheapest first
    assert sum(x[-1] == "chosen" for x in rows) == 1


def test_other_figures_are_valid_plotly(default_router):
    labels = ui_views.labels_of(default_router.pool)
    go.Figure(distribution_figure({default_router.pool.names[0]: 3}, labels))
    sw = playground.run_sweep(default_router, ["What is 2 + 2?", "Prove Fermat's last theorem."],
                              sweep.tolerance_grid(), None)
    mix, curve = sweep_figures(sw, labels, "Opus")
    assert sum(sum(t.y) for t in mix.data) == 2 * len(sw.tolerances)
    prices = {s.name: (s.cost_per_m_input_tokens, s.cost_per_m_output_tokens) for s in default_router.pool.models}
    proj = costs.monthly_projection(10, 10, 100, 100, sw.mix_at(0.2), prices, default_router.pool.baseline_slot.name)
    fig = projection_figure(proj, labels, "Opus")
    routed = [t for t in fig.data if t.x == ("routed",)]
    assert sum(t.y[0] for t in routed) == pytest.approx(proj.routed_usd)
    [base] = [t for t in fig.data if t.x == ("all<br>Opus",)]
    assert base.y[0] == pytest.approx(proj.baseline_usd) and base.text[0] == f"${proj.baseline_usd:,.0f}"
    assert {t.name for t in routed} == {labels.get(n, n) for n in proj.per_model_usd}
    # The baseline's colour is its own, however many models the routed mix holds.
    wide = {n: 1 for n in default_router.pool.names if n != default_router.pool.baseline_slot.name}
    proj = costs.monthly_projection(10, 10, 100, 100, wide, prices, default_router.pool.baseline_slot.name)
    fig = projection_figure(proj, labels, "Opus")
    routed = [t for t in fig.data if t.x == ("routed",)]
    [base] = [t for t in fig.data if t.x == ("all<br>Opus",)]
    assert len(routed) == len(wide) and base.marker.color not in {t.marker.color for t in routed}
