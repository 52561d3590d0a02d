"""A decision in words: the threshold, the cheaper models it left out, the tolerances that would
have chosen otherwise, and the part of the text the encoder actually read.

Every number comes from the RoutingResult and the checkpoint's encoder spec; the "what tolerance
would pick X" answers re-apply `select` itself, so they cannot drift from the rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from router.routing.router import RoutingResult, select


@dataclass(frozen=True)
class TextWindow:
    """What the encoder read of a query: `read` of `total` tokens, cut from the `side` it drops."""

    read: int
    total: int
    max_tokens: int
    side: str  # "left": the start of the text is dropped (the end is read); "right": the end is dropped

    @property
    def truncated(self) -> bool:
        return self.total > self.read

    def sentence(self) -> str:
        if not self.truncated:
            return f"Routing read the whole text ({self.total} tokens; the encoder window is {self.max_tokens})."
        part = "last" if self.side == "left" else "first"
        dropped = "beginning" if self.side == "left" else "end"
        return (f"Routing read only the {part} {self.read} tokens of {self.total}: the encoder window is "
                f"{self.max_tokens} tokens (incl. special tokens), so the {dropped} of the text did not influence "
                f"the choice. Costs still count all {self.total} input tokens.")


def text_window(router, input_tokens: int) -> TextWindow:
    """The encoder window for a query of `input_tokens` (the count the RoutingResult carries)."""
    spec = router.checkpoint.encoder_spec
    enc = router.encoder
    # The tokenizer's own markers ([CLS] ... [SEP]) share the window with the text.
    special = len(getattr(enc, "_prefix", []) or []) + len(getattr(enc, "_suffix", []) or [])
    budget = max(1, int(spec.max_tokens) - special)
    return TextWindow(min(int(input_tokens), budget), int(input_tokens), int(spec.max_tokens), spec.truncation_side)


@dataclass(frozen=True)
class Alternative:
    tolerance: float  # the boundary tolerance
    name: str  # the slot that the boundary switches to
    label: str


def _arrays(r: RoutingResult):
    return [m.p for m in r.models], [m.expected_cost_usd for m in r.models], [m.allowed for m in r.models]


def next_cheaper(r: RoutingResult) -> Alternative | None:
    """The smallest tolerance at which a model cheaper than the choice wins, and which one wins there."""
    p, c, allowed = _arrays(r)
    ci = [m.name for m in r.models].index(r.chosen)
    cheaper = [i for i in range(len(p)) if allowed[i] and (c[i], i) < (c[ci], ci)]
    if not cheaper:
        return None
    t = min(r.p_max - p[i] for i in cheaper)
    if t > 1.0:
        return None
    sel = select(p, c, max(0.0, min(1.0, t)), allowed)
    m = r.models[sel.chosen]
    return Alternative(t, m.name, m.display_name)


def best_below(r: RoutingResult) -> float | None:
    """The best model is chosen at every tolerance strictly below this value (None: at none, a cheaper
    model ties its P)."""
    p, c, allowed = _arrays(r)
    bi = [m.name for m in r.models].index(r.best)
    cheaper = [p[i] for i in range(len(p)) if allowed[i] and (c[i], i) < (c[bi], bi)]
    if not cheaper:
        return 1.0 + 1e-9  # the best is also the cheapest: every tolerance picks it
    t = r.p_max - max(cheaper)
    return t if t > 1e-12 else None


def explain(r: RoutingResult, window: TextWindow | None = None) -> dict:
    """The explanation as data (what the HTML and the tests read)."""
    ms = {m.name: m for m in r.models}
    chosen = ms[r.chosen]
    below = sorted((m for m in r.models if m.allowed and m.expected_cost_usd < chosen.expected_cost_usd
                    and not m.candidate), key=lambda m: -m.expected_cost_usd)
    return {"threshold": r.threshold, "p_max": r.p_max, "tolerance": r.tolerance,
            "below": [(m.name, m.display_name, m.p, r.threshold - m.p) for m in below],
            "off": [m.display_name for m in r.models if not m.allowed],
            "next_cheaper": next_cheaper(r), "best_below": best_below(r), "window": window}


def explain_html(r: RoutingResult, window: TextWindow | None = None) -> str:
    e = explain(r, window)
    ms = {m.name: m for m in r.models}
    chosen, best = ms[r.chosen], ms[r.best]
    lines = [f"<b>Threshold {r.threshold:.3f}</b> = best P {r.p_max:.3f} ({escape(best.display_name)}) − "
             f"tolerance {r.tolerance:.2f}. Every enabled model at or above it is a candidate; the cheapest "
             f"candidate wins."]
    if r.chosen == r.best:
        lines.append(f"<b>{escape(chosen.display_name)}</b> is the best model and no cheaper model reaches the "
                     "threshold.")
    else:
        lines.append(f"<b>{escape(chosen.display_name)}</b> (P {chosen.p:.3f}) is the cheapest of "
                     f"{len(r.candidates)} candidates, at {chosen.expected_cost_usd / max(best.expected_cost_usd, 1e-30):.0%} "
                     f"of the best model's expected cost.")
    if e["below"]:
        items = ", ".join(f"{escape(label)} (P {p:.3f}, <b>{gap:.3f}</b> short)" for _n, label, p, gap in e["below"])
        lines.append(f"Cheaper, but below the threshold: {items}.")
    elif r.chosen != min((m for m in r.models if m.allowed), key=lambda m: m.expected_cost_usd).name:
        lines.append("Every cheaper enabled model is a candidate.")
    nc = e["next_cheaper"]
    if nc is None:
        lines.append(f"{escape(chosen.display_name)} is already the cheapest enabled model.")
    else:
        lines.append(f"A tolerance of <b id='next-cheaper-tol'>{nc.tolerance:.3f}</b> or more would pick "
                     f"<b>{escape(nc.label)}</b> (cheaper).")
    bb = e["best_below"]
    if r.chosen != r.best:
        if bb is None:
            lines.append(f"No tolerance picks {escape(best.display_name)}: a cheaper model ties its P.")
        else:
            lines.append(f"The best model, <b>{escape(best.display_name)}</b>, is picked at a tolerance below "
                         f"<b id='best-below-tol'>{bb:.3f}</b>.")
    if e["off"]:
        lines.append("Switched off (never chosen): " + ", ".join(escape(x) for x in e["off"]) + ".")
    if window is not None:
        cls = " truncated" if window.truncated else ""
        lines.append(f"<span class='window{cls}' id='window-note'>{escape(window.sentence())}</span>")
    body = "".join(f"<li>{x}</li>" for x in lines)
    return f"<div class='explain' id='explain'><h4>Why this model</h4><ul>{body}</ul></div>"
