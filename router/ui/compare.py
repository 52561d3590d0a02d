"""Side-by-side comparison: several pools x several tolerances on one question set.

Each row is one setting (a pool at a tolerance, or a pool's all-baseline reference): the chosen-model
mix, the total estimated cost, the reduction against that pool's baseline, and the mean P(correct) of
the choices. Pools that share a checkpoint share one encoder pass (the features are computed once
per checkpoint and each pool reads its own label columns).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape

import numpy as np

from router.errors import InputError
from router.routing import costs, sweep

ARTICLE_POOLS = ("default", "mixed-local")
ARTICLE_TOLERANCES = (0.05, 0.10, 0.20)


@dataclass
class Row:
    policy: str
    tolerance: float | None  # None: every question on the pool's baseline model
    label: str
    mix: dict[str, int] = field(default_factory=dict)  # display name -> questions
    total_usd: float = 0.0
    baseline_usd: float = 0.0
    mean_p: float = 0.0
    questions: int = 0

    @property
    def reduction_pct(self) -> float | None:
        return costs.savings(self.total_usd, self.baseline_usd)[1]


def parse_tolerances(text: str | Sequence[float]) -> list[float]:
    """'0.05, 0.1 0.2' -> [0.05, 0.1, 0.2]; each in [0, 1], at most 12."""
    if isinstance(text, str):
        parts = [p for p in text.replace(",", " ").split() if p]
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            raise InputError(f"tolerances: expected numbers separated by commas, got {text!r}") from None
    else:
        vals = [float(v) for v in text]
    if not vals:
        raise InputError("tolerances: give at least one tolerance, e.g. 0.05, 0.10, 0.20")
    bad = [v for v in vals if not 0 <= v <= 1]
    if bad:
        raise InputError(f"tolerances must be in [0, 1], got {bad}")
    if len(vals) > 12:
        raise InputError(f"tolerances: at most 12 at once, got {len(vals)}")
    return sorted(set(round(v, 4) for v in vals))


def _scores(router, texts: list[str], feature_cache: dict) -> tuple[np.ndarray, np.ndarray]:
    key = id(router.checkpoint)
    if key not in feature_cache:
        X = router.encoder.features(texts, progress=len(texts) > 64)
        feature_cache[key] = (X, router.encoder.tokenize(texts)[1])
    X, counts = feature_cache[key]
    # The pool's label columns in slot order: the same columns PrefillRouter.score_batch reads.
    cols = [router.checkpoint.slots.index(s.score_as) for s in router.pool.models]
    P = router.checkpoint.head.predict(X)[:, cols].astype(float)
    C = np.array([router.expected_costs(n) for n in counts])
    return P, C


def compare(routers: Sequence, texts: Sequence[str], tolerances: Sequence[float],
            enabled: Mapping[str, Sequence[str]] | None = None) -> list[Row]:
    """Rows for every router: its all-baseline reference, then one row per tolerance."""
    texts = list(texts)
    if not texts:
        raise InputError("compare: no questions")
    if not routers:
        raise InputError("compare: pick at least one pool")
    cache: dict = {}
    rows: list[Row] = []
    for router in routers:
        pool = router.pool
        on = (enabled or {}).get(pool.policy)
        allowed = router.allowed_mask(list(on) if on else None)
        P, C = _scores(router, texts, cache)
        sw = sweep.sweep(P, C, list(tolerances), pool.names, allowed, pool.baseline_slot.name)
        labels = {s.name: s.label for s in pool.models}
        bi = pool.names.index(pool.baseline_slot.name)
        n = len(texts)
        base_total = float(C[:, bi].sum())
        rows.append(Row(pool.policy, None, f"{pool.policy}: all {pool.baseline_slot.label}",
                        {pool.baseline_slot.label: n}, base_total, base_total, float(P[:, bi].mean()), n))
        for ti, t in enumerate(sw.tolerances):
            mix = {labels[nm]: int(k) for nm, k in zip(sw.names, sw.counts[ti]) if k > 0}
            rows.append(Row(pool.policy, t, f"{pool.policy} @ {t:.2f}", dict(sorted(mix.items(), key=lambda kv: -kv[1])),
                            float(sw.mean_cost_usd[ti]) * n, base_total, float(sw.mean_p[ti]), n))
    return rows


def _usd(x: float) -> str:
    return f"${x:,.4f}" if abs(x) < 10 else f"${x:,.2f}"


def compare_html(rows: Sequence[Row], source: str) -> str:
    head = ("<tr><th>Setting</th><th>Chosen-model mix</th><th>Total est. cost</th><th>Reduction vs baseline</th>"
            "<th>Mean P(correct)</th></tr>")
    body = []
    for r in rows:
        mix = "<br>".join(f"{escape(k)} <b>{v / r.questions:.0%}</b>" for k, v in r.mix.items())
        red = "–" if r.reduction_pct is None else f"{r.reduction_pct:.1f}%"
        cls = "ref" if r.tolerance is None else "routed"
        body.append(f"<tr class='{cls}' data-policy='{escape(r.policy)}' data-tol='{'' if r.tolerance is None else r.tolerance}'>"
                    f"<td>{escape(r.label)}</td><td class='mix'>{mix}</td><td class='num total'>{_usd(r.total_usd)}</td>"
                    f"<td class='num red'>{red}</td><td class='num meanp'>{r.mean_p:.3f}</td></tr>")
    n = rows[0].questions if rows else 0
    return (f"<div class='compare' id='compare'><p class='basis' id='compare-done'>{n} questions from {escape(source)} · "
            f"estimated costs (input tokens × price + each model's mean output tokens × price) · each pool with its "
            f"configured models switched on.</p><div class='table-scroll'><table id='compare-table'>{head}{''.join(body)}"
            f"</table></div></div>")


def compare_figure(rows: Sequence[Row]):
    """The mix of every setting as 100% stacked horizontal bars (one colour per model, Okabe-Ito)."""
    from router.ui.charts import FONT, LABEL_CHARS, PALETTE, ROW_PX, FigureJSON, legend_below, name_line, short_label

    settings = [r.label for r in rows]
    models: list[str] = []
    for r in rows:
        models += [m for m in r.mix if m not in models]
    traces = []
    for j, m in enumerate(models):
        traces.append({"type": "bar", "orientation": "h", "name": m, "y": settings, "width": 0.42,
                       "x": [r.mix.get(m, 0) / r.questions for r in rows],
                       "marker": {"color": PALETTE[j % len(PALETTE)], "line": {"color": "#000000", "width": 0.5}},
                       "hovertemplate": "%{y}<br>" + m.replace("%", "%%") + ": %{x:.0%}<extra></extra>"})
    # Setting names above their bars (as in the decision chart; no marks, so 6 more characters), so a phone
    # keeps the bars' full width; the legend lists one model per line under the axis (charts.legend_below).
    notes = [name_line(r.label, short_label(r.label, LABEL_CHARS + 6), r.label, key=f"label:{r.label}") for r in rows]
    height, margin, legend = legend_below(len(models), ROW_PX * len(rows) + 20, top=44, axis_px=40)
    margin.update(l=22, r=24)  # room for half of the "0%" and "100%" tick labels
    layout = {"height": height, "barmode": "stack", "font": FONT, "plot_bgcolor": "white", "paper_bgcolor": "white",
              "margin": margin, "legend": legend, "annotations": notes,
              "title": {"text": "Chosen-model mix per setting", "font": {"size": 16}},
              "xaxis": {"range": [0, 1], "tickformat": ".0%", "gridcolor": "#e5e5e5", "dtick": 0.25},
              "yaxis": {"range": [len(rows) - 0.5, -0.75], "showticklabels": False, "showgrid": False}}
    return FigureJSON(data=traces, layout=layout)
