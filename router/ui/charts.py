"""Plotly figures of the playground: the decision, the session mix, the sweep, the projection.

Each function takes library objects (RoutingResult, SweepResult, ...) and returns a figure;
nothing here computes a probability or a cost.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import plotly.graph_objects as go

from router.routing.costs import Projection
from router.routing.router import RoutingResult
from router.routing.sweep import SweepResult
from router.ui.views import threshold_text

# Okabe-Ito: distinguishable with every common colour-vision deficiency. The decision chart's
# categories differ in more than hue as well: fill pattern and outline (see BAR_STYLE).
COLORS = {
    "chosen": "#009E73",
    "best": "#0072B2",
    "candidate": "#56B4E9",
    "below": "#B3B3B3",
    "off": "#F2F2F2",
    "threshold": "#D55E00",
    "baseline": "#E69F00",
}
# category -> (plotly pattern shape, outline colour, outline width)
BAR_STYLE = {
    "chosen": ("", "#000000", 3),
    "best": ("/", "#003F63", 2),
    "candidate": (".", "#1F5F80", 1),
    "below": ("x", "#595959", 1),
    "off": ("-", "#8C8C8C", 1),
}
PALETTE = ["#0072B2", "#009E73", "#E69F00", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442", "#000000",
           "#999999", "#882255", "#44AA99", "#117733"]
# Noto Sans CJK for Japanese/Chinese model names and queries (CI installs fonts-noto-cjk).
FONT_STACK = "Inter, 'Noto Sans', 'Noto Sans CJK JP', 'Noto Sans CJK SC', ui-sans-serif, system-ui, sans-serif"
# Projector-sized: 15 px text, near-black on white.
FONT = dict(family=FONT_STACK, size=15, color="#111111")


LEGEND_ROW_PX = 21


def legend_below(entries: int, plot_px: int, top: int = 40, axis_px: int = 70) -> tuple[int, dict, dict]:
    """(figure height, margin, legend) for a legend listed one entry per line under the x axis: a legend on the
    right took most of a phone's width from the bars, and a wrapping one has a row count only the browser
    knows. Heights add up (the plot keeps `plot_px`), so no row can run off the figure at any width."""
    legend_px = LEGEND_ROW_PX * max(1, entries)
    height = top + plot_px + axis_px + legend_px
    return (height, {"l": 10, "r": 20, "t": top, "b": axis_px + legend_px},
            {"orientation": "v", "x": 0, "xanchor": "left", "yref": "container", "y": (legend_px + 4) / height,
             "yanchor": "top", "font": {"size": 13}})


def _layout(fig: go.Figure, height: int, **kw) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=20, t=40, b=40), font=FONT, plot_bgcolor="white",
                      paper_bgcolor="white", legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0), **kw)
    fig.update_xaxes(gridcolor="#e5e5e5", zeroline=False, tickfont=dict(size=14))
    fig.update_yaxes(gridcolor="#e5e5e5", tickfont=dict(size=14))
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
    return {"gridcolor": "#e5e5e5", "zeroline": False, **kw}


def _base_layout(height: int, **kw) -> dict:
    return {"height": height, "margin": {"l": 10, "r": 20, "t": 40, "b": 40}, "font": FONT,
            "plot_bgcolor": "white", "paper_bgcolor": "white",
            "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0}, **kw}


def _vline(x: float, color: str, dash: str, width: int) -> dict:
    return {"type": "line", "xref": "x", "yref": "paper", "x0": x, "x1": x, "y0": 0, "y1": 1,
            "line": {"color": color, "dash": dash, "width": width}}


# The decision chart puts each model's name on its own line above the bar instead of in a y-axis margin:
# the bars keep the full width at 390 px as at 1440 px, and a long name cannot push them off the figure.
ROW_PX = 46  # one model: its name line and its bar
LABEL_CHARS = 34  # a name line that fits a 390 px screen at 14 px (longer names end in "…", full on hover)


def short_label(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(1, limit - 1)].rstrip() + "…"


def name_line(y: str, text: str, hover: str, color: str = "#111111", key: str = "") -> dict:
    """An annotation that writes a bar's name on its own line just above the bar (category `y`)."""
    return {"xref": "paper", "x": 0, "y": y, "yref": "y", "xanchor": "left", "yanchor": "bottom", "yshift": 10,
            "showarrow": False, "align": "left", "text": text, "hovertext": hover, "captureevents": False,
            "font": {"color": color, "size": 14}, "name": key}


def _name_line(m, category: str, y: str) -> dict:
    """Model m's name line over its bar, whose category on the y axis is `y`."""
    mark = {"chosen": "  ★ chosen", "best": "  ▲ best", "off": "  (off)"}.get(category, "")
    name = short_label(m.display_name, LABEL_CHARS - len(mark))
    text = (f"<b>{name}</b>" if category == "chosen" else name) + mark
    color = {"chosen": "#00664A", "best": "#004B75", "off": "#595959"}.get(category, "#111111")
    return name_line(y, text, f"{m.display_name} ({m.name}): P {m.p:.3f}", color, f"label:{m.name}")


def decision_figure(result: RoutingResult) -> FigureJSON:
    """Every model's P(correct) as a horizontal bar under its name; threshold line; chosen and best marked."""
    labels = {m.name: (m.display_name + ("  (off)" if not m.allowed else "")) for m in result.models}
    traces = []
    for cat in ("chosen", "best", "candidate", "below", "off"):
        ms = [m for m in result.models if _category(result, m) == cat]
        if not ms and cat not in ("chosen", "below"):
            continue
        traces.append({
            "type": "bar", "name": LEGEND[cat], "orientation": "h", "x": [m.p for m in ms],
            "y": [labels[m.name] for m in ms], "width": 0.42,
            "marker": {"color": COLORS[cat], "line": {"color": BAR_STYLE[cat][1], "width": BAR_STYLE[cat][2]},
                       "pattern": {"shape": BAR_STYLE[cat][0], "fgcolor": BAR_STYLE[cat][1], "size": 8,
                                   "solidity": 0.25}},
            "text": [f"{m.p:.3f}" for m in ms], "textposition": "outside", "cliponaxis": False,
            "textfont": {"color": "#595959" if cat == "off" else "#111111", "size": 14},
            "customdata": [[m.name, m.expected_cost_usd, m.trained_as or "itself"] for m in ms],
            "hovertemplate": "<b>%{y}</b><br>P(correct) %{x:.3f}<br>expected cost $%{customdata[1]:.6f}"
                             "<br>scored as %{customdata[2]}<extra></extra>"})
    # Below 0 every model qualifies; the line is drawn at the axis start and says so.
    thr_x = max(result.threshold, 0.0)
    notes = [{"x": thr_x, "y": 1.0, "yref": "paper", "yanchor": "bottom", "showarrow": False,
              "text": f"threshold {threshold_text(result.threshold)}",
              "font": {"color": "#A63F00", "size": 14}, "name": "threshold",
              "xanchor": "right" if result.threshold > 0.5 else "left"}]
    notes += [_name_line(m, _category(result, m), labels[m.name]) for m in result.models]
    # The names sit above the bars, so the figure needs no left margin for them; its height follows the
    # number of models, and the legend lists one category per line under the axis (the same at any width).
    height, margin, legend = legend_below(len(traces), ROW_PX * len(result.models), top=36, axis_px=58)
    # l: room for half of the "0.0" tick label; r: the values print right of the bars (the axis stops at 1.0)
    margin.update(l=22, r=52)
    layout = _base_layout(
        height, barmode="overlay", margin=margin, legend={**legend, "traceorder": "normal"},
        shapes=[_vline(thr_x, COLORS["threshold"], "dash", 2), _vline(result.p_max, COLORS["best"], "dot", 2)],
        annotations=notes,
        xaxis=_axis(range=[0, 1.0], title={"text": "P(correct)"}, tickformat=".1f", tick0=0, dtick=0.2,
                    tickfont={"size": 14}, minor={"dtick": 0.1, "showgrid": True, "gridcolor": "#f0f0f0"}),
        yaxis=_axis(categoryorder="array", categoryarray=[labels[m.name] for m in result.models],
                    # reversed (first model on top), with a little headroom over the first name line
                    range=[len(result.models) - 0.5, -0.75], showticklabels=False, showgrid=False))
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
    height, margin, legend = legend_below(len(mix.data), 280, axis_px=80)
    _layout(mix, height, barmode="stack", title=dict(text="Chosen model per tolerance", font=dict(size=14)))
    mix.update_layout(margin=margin, legend=legend)
    mix.update_xaxes(title_text="tolerance", type="category")
    mix.update_yaxes(title_text=f"questions (of {sw.questions})")

    curve = go.Figure()
    per_k = [c * 1000 for c in sw.mean_cost_usd]
    curve.add_scatter(x=per_k, y=sw.mean_p, mode="lines+markers+text", text=point_labels(ticks, per_k, sw.mean_p),
                      textposition="top center", customdata=ticks, cliponaxis=False,  # the top label was cut
                      line=dict(color=COLORS["best"], width=2), marker=dict(size=8), name="router",
                      hovertemplate="tolerance %{customdata}<br>$%{x:.4f} per 1k queries<br>mean P %{y:.3f}<extra></extra>")
    curve.add_vline(x=sw.baseline_mean_cost_usd * 1000, line=dict(color=COLORS["baseline"], dash="dash"))
    log = min(per_k) > 0 and sw.baseline_mean_cost_usd > 0  # a free model's $0 has no place on a log axis
    base_k = sw.baseline_mean_cost_usd * 1000
    curve.add_annotation(x=math.log10(base_k) if log else base_k, y=0, yref="paper",
                         showarrow=False, xanchor="right", yanchor="bottom",
                         text=f"all {baseline_label} ", font=dict(color=COLORS["baseline"]))
    _layout(curve, 380, title=dict(text="Estimated cost vs mean P(correct)", font=dict(size=14)), showlegend=False)
    # Log scale: routed costs sit orders of magnitude below the baseline's.
    curve.update_xaxes(title_text="est. $ per 1,000 queries" + (" (log)" if log else ""),  # fits 390 px
                       type="log" if log else "linear")
    curve.update_yaxes(title_text="mean P(correct) of the chosen model")
    return mix, curve


def point_labels(ticks, xs, ys) -> list[str]:
    """One label per run of tolerances that land on the same point ("0.35–0.50"), blanks for the rest:
    several tolerances often pick the same models, and their labels would print on top of each other."""
    out = [""] * len(ticks)
    i = 0
    while i < len(ticks):
        j = i
        while j + 1 < len(ticks) and math.isclose(xs[j + 1], xs[i], rel_tol=1e-9, abs_tol=1e-12) and \
                math.isclose(ys[j + 1], ys[i], rel_tol=1e-9, abs_tol=1e-12):
            j += 1
        out[i] = ticks[i] if j == i else f"{ticks[i]}–{ticks[j]}"
        i = j + 1
    return out


def projection_figure(proj: Projection, labels: Mapping[str, str], baseline_label: str) -> go.Figure:
    fig = go.Figure()
    # Not the baseline's orange: a routed model drawn in it read as the baseline in the legend.
    colors = [c for c in PALETTE if c != COLORS["baseline"]]
    for j, (name, usd) in enumerate(sorted(proj.per_model_usd.items(), key=lambda kv: -kv[1])):
        fig.add_bar(name=labels.get(name, name), x=["routed"], y=[usd], marker_color=colors[j % len(colors)])
    # "all" and the label on two lines: one long category label was printed at 45° on a phone.
    fig.add_bar(name=f"all {baseline_label}", x=[f"all<br>{baseline_label}"], y=[proj.baseline_usd],
                marker_color=COLORS["baseline"], text=[f"${proj.baseline_usd:,.0f}"], textposition="outside",
                cliponaxis=False)
    fig.add_annotation(x="routed", y=proj.routed_usd, text=f"${proj.routed_usd:,.0f}", showarrow=False, yanchor="bottom")
    height, margin, legend = legend_below(len(fig.data), 280, axis_px=60)
    _layout(fig, height, barmode="stack", title=dict(text="Monthly cost", font=dict(size=14)))
    fig.update_layout(margin=margin, legend=legend)
    fig.update_xaxes(tickangle=0)
    fig.update_yaxes(title_text="USD per month", tickprefix="$", rangemode="tozero")
    return fig
