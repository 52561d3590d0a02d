"""Plotly figures of the playground: the decision, the session mix, the sweep, the projection.

Each function takes library objects (RoutingResult, SweepResult, ...) and returns a figure;
nothing here computes a probability or a cost.
"""

from __future__ import annotations

import json
import math
from typing import Mapping

import plotly.graph_objects as go

from router.routing.router import RoutingResult
from router.routing.costs import Projection
from router.routing.sweep import SweepResult

COLORS = {
    "chosen": "#059669",
    "best": "#4f46e5",
    "candidate": "#a5b4fc",
    "below": "#94a3b8",
    "off": "#e5e7eb",
    "threshold": "#dc2626",
    "baseline": "#f59e0b",
}
PALETTE = ["#4f46e5", "#059669", "#f59e0b", "#dc2626", "#0891b2", "#7c3aed", "#db2777", "#65a30d",
           "#ea580c", "#475569", "#0d9488", "#9333ea"]
FONT = dict(family="Inter, ui-sans-serif, system-ui, sans-serif", size=13, color="#1f2937")


def _layout(fig: go.Figure, height: int, **kw) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=20, t=40, b=40), font=FONT, plot_bgcolor="white",
                      paper_bgcolor="white", legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0), **kw)
    fig.update_xaxes(gridcolor="#f1f5f9", zeroline=False)
    fig.update_yaxes(gridcolor="#f1f5f9")
    return fig


def _category(result: RoutingResult, m) -> str:
    if not m.allowed:
        return "off"
    if m.name == result.chosen:
        return "chosen"
    if m.name == result.best:
        return "best"
    return "candidate" if m.candidate else "below"


LEGEND = {"chosen": "chosen (cheapest candidate)", "best": "best P (p_max)", "candidate": "candidate (P ≥ threshold)",
          "below": "below threshold", "off": "switched off"}


class FigureJSON(dict):
    """A plotly figure as plain {"data", "layout"}: built in microseconds, where plotly's validating
    objects take 100+ ms. Gradio's Plot serializes anything with `to_json()` as plotly."""

    def to_json(self) -> str:
        return json.dumps(self, allow_nan=False)


def _axis(**kw) -> dict:
    return {"gridcolor": "#f1f5f9", "zeroline": False, **kw}


def _base_layout(height: int, **kw) -> dict:
    return {"height": height, "margin": {"l": 10, "r": 20, "t": 40, "b": 40}, "font": FONT,
            "plot_bgcolor": "white", "paper_bgcolor": "white",
            "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0}, **kw}


def _vline(x: float, color: str, dash: str, width: int) -> dict:
    return {"type": "line", "xref": "x", "yref": "paper", "x0": x, "x1": x, "y0": 0, "y1": 1,
            "line": {"color": color, "dash": dash, "width": width}}


def decision_figure(result: RoutingResult) -> FigureJSON:
    """Every model's P(correct) as a horizontal bar; threshold line; chosen and best marked."""
    labels = {m.name: (m.display_name + ("  (off)" if not m.allowed else "")) for m in result.models}
    traces = []
    for cat in ("chosen", "best", "candidate", "below", "off"):
        ms = [m for m in result.models if _category(result, m) == cat]
        if not ms and cat not in ("chosen", "below"):
            continue
        traces.append({
            "type": "bar", "name": LEGEND[cat], "orientation": "h", "x": [m.p for m in ms],
            "y": [labels[m.name] for m in ms],
            "marker": {"color": COLORS[cat], "line": {"color": "#cbd5e1" if cat == "off" else COLORS[cat], "width": 1},
                       "pattern": {"shape": "/" if cat == "off" else "", "fgcolor": "#cbd5e1"}},
            "text": [f"{m.p:.3f}" for m in ms], "textposition": "outside", "cliponaxis": False,
            "textfont": {"color": "#9ca3af" if cat == "off" else "#1f2937"},
            "customdata": [[m.name, m.expected_cost_usd, m.trained_as or "itself"] for m in ms],
            "hovertemplate": "<b>%{y}</b><br>P(correct) %{x:.3f}<br>expected cost $%{customdata[1]:.6f}"
                             "<br>scored as %{customdata[2]}<extra></extra>"})
    # Below 0 every model qualifies; the line is drawn at the axis start and says so.
    thr_x = max(result.threshold, 0.0)
    notes = [{"x": thr_x, "y": 1.0, "yref": "paper", "yanchor": "bottom", "showarrow": False,
              "text": f"threshold {result.threshold:.3f}" + (" (all qualify)" if result.threshold < 0 else ""),
              "font": {"color": COLORS["threshold"], "size": 12},
              "xanchor": "right" if result.threshold > 0.5 else "left"}]
    chosen = result.score(result.chosen)
    notes.append({"x": chosen.p, "y": labels[chosen.name], "text": "★ chosen", "showarrow": False,
                  "xanchor": "left", "xshift": 48, "font": {"color": COLORS["chosen"], "size": 13}})
    if result.best != result.chosen:
        best = result.score(result.best)
        notes.append({"x": best.p, "y": labels[best.name], "text": "▲ best", "showarrow": False,
                      "xanchor": "left", "xshift": 48, "font": {"color": COLORS["best"], "size": 12}})
    layout = _base_layout(
        70 + 34 * len(result.models), barmode="overlay", bargap=0.25,
        margin={"l": 10, "r": 70, "t": 60, "b": 40},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.08, "x": 0},
        shapes=[_vline(thr_x, COLORS["threshold"], "dash", 2), _vline(result.p_max, COLORS["best"], "dot", 1)],
        annotations=notes,
        xaxis=_axis(range=[0, 1.12], title={"text": "P(correct)"}, tickformat=".1f", dtick=0.1),
        yaxis=_axis(categoryorder="array", categoryarray=[labels[m.name] for m in result.models],
                    autorange="reversed", automargin=True))
    return FigureJSON(data=traces, layout=layout)


def distribution_figure(distribution: Mapping[str, int], labels: Mapping[str, str]) -> FigureJSON:
    names = list(distribution)
    trace = {"type": "bar", "orientation": "h", "x": [distribution[n] for n in names],
             "y": [labels.get(n, n) for n in names], "marker": {"color": COLORS["chosen"]},
             "text": [distribution[n] for n in names], "textposition": "outside", "cliponaxis": False}
    layout = _base_layout(80 + 30 * max(1, len(names)),
                          title={"text": "Chosen models this session", "font": {"size": 14}},
                          xaxis=_axis(title={"text": "queries"}, dtick=1, rangemode="tozero"),
                          yaxis=_axis(autorange="reversed", automargin=True))
    return FigureJSON(data=[trace], layout=layout)


def sweep_figures(sw: SweepResult, labels: Mapping[str, str], baseline_label: str) -> tuple[go.Figure, go.Figure]:
    """(stacked bar of chosen models per tolerance, estimated cost vs mean P(correct))."""
    ticks = [f"{t:.2f}" for t in sw.tolerances]
    mix = go.Figure()
    for j, name in enumerate(sw.names):
        col = sw.counts[:, j]
        if col.sum() == 0:
            continue
        mix.add_bar(name=labels.get(name, name), x=ticks, y=col, marker_color=PALETTE[j % len(PALETTE)],
                    hovertemplate="tolerance %{x}<br>%{y} questions<extra>" + labels.get(name, name) + "</extra>")
    _layout(mix, 380, barmode="stack", title=dict(text="Chosen model per tolerance", font=dict(size=14)))
    mix.update_layout(legend=dict(orientation="v", x=1.02, y=1, yanchor="top"))
    mix.update_xaxes(title_text="tolerance", type="category")
    mix.update_yaxes(title_text=f"questions (of {sw.questions})")

    curve = go.Figure()
    per_k = [c * 1000 for c in sw.mean_cost_usd]
    curve.add_scatter(x=per_k, y=sw.mean_p, mode="lines+markers+text", text=ticks, textposition="top center",
                      line=dict(color=COLORS["best"], width=2), marker=dict(size=8), name="router",
                      hovertemplate="tolerance %{text}<br>$%{x:.4f} per 1k queries<br>mean P %{y:.3f}<extra></extra>")
    curve.add_vline(x=sw.baseline_mean_cost_usd * 1000, line=dict(color=COLORS["baseline"], dash="dash"))
    log = min(per_k) > 0 and sw.baseline_mean_cost_usd > 0  # a free model's $0 has no place on a log axis
    base_k = sw.baseline_mean_cost_usd * 1000
    curve.add_annotation(x=math.log10(base_k) if log else base_k, y=0, yref="paper",
                         showarrow=False, xanchor="right", yanchor="bottom",
                         text=f"all {baseline_label} ", font=dict(color=COLORS["baseline"]))
    _layout(curve, 380, title=dict(text="Estimated cost vs mean P(correct)", font=dict(size=14)), showlegend=False)
    # Log scale: routed costs sit orders of magnitude below the baseline's.
    curve.update_xaxes(title_text="estimated $ per 1,000 queries" + (" (log scale)" if log else ""),
                       type="log" if log else "linear")
    curve.update_yaxes(title_text="mean P(correct) of the chosen model")
    return mix, curve


def projection_figure(proj: Projection, labels: Mapping[str, str], baseline_label: str) -> go.Figure:
    fig = go.Figure()
    for j, (name, usd) in enumerate(sorted(proj.per_model_usd.items(), key=lambda kv: -kv[1])):
        fig.add_bar(name=labels.get(name, name), x=["routed"], y=[usd], marker_color=PALETTE[j % len(PALETTE)])
    fig.add_bar(name=f"all {baseline_label}", x=[f"all {baseline_label}"], y=[proj.baseline_usd],
                marker_color=COLORS["baseline"], text=[f"${proj.baseline_usd:,.0f}"], textposition="outside")
    fig.add_annotation(x="routed", y=proj.routed_usd, text=f"${proj.routed_usd:,.0f}", showarrow=False, yanchor="bottom")
    _layout(fig, 380, barmode="stack", title=dict(text="Monthly cost", font=dict(size=14)))
    fig.update_layout(legend=dict(orientation="v", x=1.02, y=1, yanchor="top"))
    fig.update_yaxes(title_text="USD per month", tickprefix="$", rangemode="tozero")
    return fig
