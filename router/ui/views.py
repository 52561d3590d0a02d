"""Text and tables of the playground: RoutingResult, answers, stats and records -> HTML/rows.

Pure formatting; the numbers come from `core`, `costs` and `playground`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from router.routing.costs import Projection, SessionStats, session_stats
from router.routing.pool import Pool
from router.routing.router import RoutingResult
from router.routing.sweep import SweepResult

COST_HEADERS = ["Model", "P(correct)", "Exp. cost ($)", "$/M in", "$/M out", "Exp. out tok.", "Status"]
AUDIT_HEADERS = ["UTC", "Query", "Tol.", "Chosen", "p_max", "Thresh.", "Routed $", "Basis", "Baseline $", "Status"]
SWEEP_HEADERS = ["Tolerance", "Questions", "Mean P(correct)", "Mean est. cost ($)", "Most chosen"]


def usd(x: float | None, digits: int = 6) -> str:
    if x is None:
        return "–"
    sign = "-" if x < 0 else ""  # -$1.20, the way money is written, not $-1.20
    x = abs(x)
    return f"{sign}${x:,.{digits}f}" if x < 1 else f"{sign}${x:,.2f}"


def threshold_text(threshold: float) -> str:
    """Below 0 every model qualifies; a negative number there reads as a bug, so it is said in words."""
    return f"{threshold:.3f}" if threshold >= 0 else "below 0 (all qualify)"


def model_choices(pool: Pool) -> list[tuple[str, str]]:
    """(label, value) pairs for the per-model toggles: name, prices and the trained_as binding."""
    out = []
    for s in pool.models:
        label = f"{s.label} · ${s.cost_per_m_input_tokens:g} / ${s.cost_per_m_output_tokens:g} per M"
        if s.local:
            label += " · local"
        if s.trained_as:
            label += f" · scored as {s.trained_as}"
        out.append((label, s.name))
    return out


def enabled_names(pool: Pool) -> list[str]:
    return [s.name for s in pool.models if s.enabled]


def pool_html(pool: Pool) -> str:
    base = pool.baseline_slot
    return (f"<div class='pool-info'><p>{escape(pool.description)}</p>"
            f"<p><b>{len(pool.models)}</b> models · baseline <b>{escape(base.label)}</b> · "
            f"default tolerance <b>{pool.default_tolerance:g}</b></p></div>")


def decision_html(r: RoutingResult, window=None) -> str:
    """`window`: the explain.TextWindow of the query; a truncated read is said next to the token count."""
    chosen, best = r.score(r.chosen), r.score(r.best)
    t = r.timings_ms
    saved = r.baseline_expected_cost_usd - r.expected_cost_usd
    same = "" if r.best == r.chosen else f" · best: <b>{escape(best.display_name)}</b>"
    return (
        f"<div id='decision' class='decision' data-chosen='{escape(r.chosen)}' data-best='{escape(r.best)}'>"
        f"<div class='decision-main'>→ <span class='chosen-name'>{escape(chosen.display_name)}</span>"
        f"<span class='chosen-id'>{escape(r.chosen_model)}</span></div>"
        f"<div class='decision-line'>p_max <b>{r.p_max:.3f}</b> · threshold <b>{threshold_text(r.threshold)}</b> "
        f"(p_max − {r.tolerance:.2f}) · choice P <b>{chosen.p:.3f}</b>{same} · "
        f"{len(r.candidates)} candidate(s) · routing <b>{t.get('total_ms', 0):.1f} ms</b> "
        f"(encode {t.get('encode_ms', 0):.1f}, head {t.get('head_ms', 0):.1f}, select {t.get('select_ms', 0):.2f})</div>"
        f"<div class='decision-line'>expected cost {usd(r.expected_cost_usd)} vs {usd(r.baseline_expected_cost_usd)} "
        f"on {escape(r.score(r.baseline).display_name)} (saves {usd(saved)}, estimate) · "
        f"{r.input_tokens} input tokens{_window_note(window)} · output estimate "
        f"<b>{round(chosen.expected_output_tokens)}</b> tokens "
        f"(<span id='output-estimate'>{escape(chosen.output_estimate)}</span>)</div>"
        f"{governance_html(r.governance)}</div>")


def no_decision_html(reason: str) -> str:
    return f"<div id='decision' class='decision' data-chosen=''><div class='decision-line'>{escape(reason)}</div></div>"


def governance_html(gov: Mapping[str, Any] | None) -> str:
    """What the sensitivity rules and budgets did: names, places and counts, never the matched text."""
    if not gov:
        return ""
    parts = []
    sens = gov.get("sensitive")
    if sens:
        what = ("only local slots may answer" if sens.get("local_only") else
                "matched spans are masked before the call" if sens.get("redacted") else sens.get("action") or "")
        parts.append(f"<div class='decision-line governance' id='sensitive-notice' "
                     f"data-rules='{escape(','.join(sens.get('rules') or []))}'>🔒 sensitivity: <b>{escape(what)}</b>"
                     f" · {escape(sens.get('reason') or '')}</div>")
    bud = gov.get("budget")
    if bud and bud.get("removed"):
        parts.append(f"<div class='decision-line governance' id='budget-notice'>💰 budget: "
                     f"{escape(bud.get('reason') or '')}</div>")
    return "".join(parts)


def budgets_html(pool: Pool, governance) -> str:
    """The Session tab's budget table: every cap of the pool, spent vs cap, and when it resets."""
    if not pool.budgets:
        return "<div class='budgets' id='budgets'>This pool sets no budgets (add a budgets: block to its YAML).</div>"
    if governance is None:
        return "<div class='budgets' id='budgets'>Budgets are enforced by the proxy; none is attached here.</div>"
    now = governance.clock()
    rows = []
    for st in governance.caps(pool, "playground", now):
        d = st.to_dict(now)
        who = d["scope"] + (f" {d['name']}" if d["name"] else "")
        used = "reached" if d["reached"] else f"{100 * st.fraction:.0f}%"
        flying = f" (+{usd(d['in_flight_usd'])} in flight)" if d["in_flight_usd"] > 0 else ""
        rows.append(f"<tr data-scope='{escape(who)}'><td>{escape(who)}</td><td>{d['period']}</td><td>{d['mode']}</td>"
                    f"<td>{usd(d['spent_usd'])}{flying}</td><td>{usd(d['cap_usd'])}</td><td>{used}</td>"
                    f"<td>{d['resets_in_s'] // 3600} h {d['resets_in_s'] % 3600 // 60} min</td></tr>")
    return ("<div class='budgets' id='budgets'><b>Budgets</b> (this pool; client caps as the playground)"
            "<table><tr><th>scope</th><th>period</th><th>mode</th><th>spent</th><th>cap</th><th>used</th>"
            f"<th>resets in</th></tr>{''.join(rows)}</table></div>")


def _window_note(window) -> str:
    if window is None or not window.truncated:
        return ""
    part = "last" if window.side == "left" else "first"
    return (f" · <b class='window-short' id='window-short'>routing read only the {part} {window.read} of "
            f"{window.total} tokens</b>")


def _cost_status(r: RoutingResult, m) -> str:
    return ("chosen" if m.name == r.chosen else "best" if m.name == r.best else
            "off (local only)" if not m.allowed and (r.governance.get("sensitive") or {}).get("local_only")
            else "off (budget)" if not m.allowed and m.name in (r.governance.get("budget") or {}).get("removed", {})
            else "off" if not m.allowed else "candidate" if m.candidate else "below threshold")


def cost_rows(r: RoutingResult) -> list[list[Any]]:
    rows = []
    for m in sorted(r.models, key=lambda m: m.expected_cost_usd):
        rows.append([m.display_name, round(m.p, 3), f"{m.expected_cost_usd:.6f}", m.cost_per_m_input_tokens,
                     m.cost_per_m_output_tokens, round(m.expected_output_tokens), _cost_status(r, m)])
    return rows


def cost_table_html(r: RoutingResult) -> str:
    """The cost table as plain HTML: a table on a wide screen; on a phone the stylesheet turns each row into a
    card (name and status on top, the numbers under their `data-label`), so nothing scrolls sideways."""
    head = "".join(f"<th scope='col'>{escape(h)}</th>" for h in COST_HEADERS)
    rows = []
    for m, row in zip(sorted(r.models, key=lambda m: m.expected_cost_usd), cost_rows(r)):
        status = row[-1]
        shown = [f"{m.p:.3f}", row[2], f"{m.cost_per_m_input_tokens:g}", f"{m.cost_per_m_output_tokens:g}", row[5]]
        cells = "".join(f"<td class='num' data-label='{escape(h)}'>{escape(str(v))}</td>"
                        for h, v in zip(COST_HEADERS[1:-1], shown))
        rows.append(f"<tr data-slot='{escape(m.name)}' data-status='{escape(status)}' "
                    f"class='st-{escape(status.split(' ')[0])}'><th scope='row' class='name'>{escape(row[0])}</th>"
                    f"{cells}<td class='status' data-label='Status'>{escape(status)}</td></tr>")
    return (f"<div class='cost-table'><p class='cost-caption'>Expected cost of each model for this query "
            f"(cheapest first)</p><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def answer_html(ans) -> str:
    """The streamed answer's header: which model, and what it cost (or why it was not sent)."""
    who = f"<b>{escape(ans.display_name)}</b>"
    if ans.error:
        if ans.missing and ans.missing.startswith(("http://", "https://")):
            need = (f"<br>Nothing answered at <code>{escape(ans.missing)}</code>: start the server there, or "
                    f"change the slot's api_base")
        else:
            need = f"<br>Missing: <code>{escape(ans.missing)}</code>" if ans.missing else ""
        return (f"<div class='answer-meta error' id='answer-meta'>Not answered by {who}: "
                f"{escape(ans.error)}{need}<br>The decision above still stands.</div>")
    if not ans.done:
        return f"<div class='answer-meta' id='answer-meta'>Streaming from {who}…</div>"
    if ans.usage is None:
        cost = "the upstream reported no usage, so the cost stays an estimate"
    else:
        u = ans.usage
        cost = (f"actual cost <b id='actual-cost'>{usd(ans.cost_usd)}</b> "
                f"({u['prompt_tokens']} in + {u['completion_tokens']} out tokens, real usage)")
    return f"<div class='answer-meta done' id='answer-meta'>Answered by {who} in {ans.latency_ms:.0f} ms · {cost}</div>"


def review_html(rv) -> str:
    if rv is None:
        return ""
    score = "" if rv.score is None else f" (score {rv.score:.2f})"
    body = escape(rv.reason) if rv.reason else (f"raw reply: <code>{escape(rv.raw[:300])}</code>"
                                                if rv.verdict == "unparseable" else "")
    cost = f" · review cost {usd(rv.cost_usd)}" if rv.cost_usd is not None else ""
    return (f"<div class='review review-{rv.verdict.replace(' ', '-')}' id='review'>Review by "
            f"<b>{escape(rv.judge)}</b>: <b>{escape(rv.verdict)}</b>{score}{cost}<br>{body}</div>")


def stats_html(st: SessionStats, labels: Mapping[str, str]) -> str:
    if not st.queries:
        return "<div class='stats' id='stats'>No queries yet in this session.</div>"
    pct = "–" if st.saved_pct is None else f"{st.saved_pct:.1f}%"
    basis = {"actual": "real usage", "estimate": "estimates", "mixed":
             f"real usage for {st.actual}, estimates for {st.estimated}"}[st.basis]
    base = labels.get(st.baseline or "", st.baseline or "baseline")
    reviews = f" (incl. {usd(st.review_usd)} reviews)" if st.review_usd else ""
    return (f"<div class='stats' id='stats'><div class='stat'><span>{st.queries}</span>queries</div>"
            f"<div class='stat'><span>{usd(st.routed_usd)}</span>routed{reviews}</div>"
            f"<div class='stat'><span>{usd(st.baseline_usd)}</span>all {escape(base)}</div>"
            f"<div class='stat good'><span>{pct}</span>saved ({usd(st.saved_usd)})</div>"
            f"<p class='basis'>Costs: {basis}. The baseline is never called, so its cost is an estimate "
            f"(real prompt tokens where known).</p></div>")


def audit_rows(records: Sequence[Mapping[str, Any]], labels: Mapping[str, str]) -> list[list[Any]]:
    rows = []
    for r in records:
        q = r.get("query") or (f"sha256:{r['query_sha256'][:12]}" if r.get("query_sha256") else "(dropped)")
        routed = r["actual_cost_usd"] if r.get("actual_cost_usd") is not None else r["expected_cost_usd"]
        rows.append([r["time"][11:19], q[:80], r["tolerance"], labels.get(r["chosen"], r["chosen"]),
                     round(r["p_max"], 3), round(r["threshold"], 3), f"{routed:.6f}", r.get("cost_basis", "estimate"),
                     f"{r['baseline_cost_usd']:.6f}", _status(r)])
    return rows


def _status(r: Mapping[str, Any]) -> str:
    if r.get("status") == "error":
        return "not answered"
    return "answered" if r.get("selected") else "routed only"


def sweep_rows(sw: SweepResult, labels: Mapping[str, str]) -> list[list[Any]]:
    return [[t, n, round(p, 3), f"{c:.6f}", labels.get(top, top)] for t, n, p, c, top in sw.rows()]


def projection_html(p: Projection, source: str, baseline_label: str) -> str:
    pct = "–" if p.saved_pct is None else f"{p.saved_pct:.1f}%"
    return (f"<div class='stats' id='projection'><div class='stat'><span>{p.requests:,.0f}</span>requests / month</div>"
            f"<div class='stat'><span>{usd(p.baseline_usd)}</span>all {escape(baseline_label)}</div>"
            f"<div class='stat'><span>{usd(p.routed_usd)}</span>routed</div>"
            f"<div class='stat good'><span>{pct}</span>saved ({usd(p.saved_usd)})</div>"
            f"<p class='basis'>Model mix from {escape(source)}. Every request is assumed to have the average "
            f"input and output tokens given; prices from the pool config.</p></div>")


def labels_of(pool: Pool) -> dict[str, str]:
    return {s.name: s.label for s in pool.models}


def stats_for(records, pool: Pool) -> tuple[SessionStats, str]:
    """Totals of this pool's records only: another pool has another baseline and other slots."""
    mine = [r for r in records if r.get("policy") in (None, pool.policy)]
    st = session_stats(mine)
    html = stats_html(st, labels_of(pool))
    others = len(records) - len(mine)
    if others:
        note = (f"<p class='basis' id='other-pools'>Totals for pool <b>{escape(pool.policy)}</b> only; "
                f"{others} decision(s) made in other pools are not counted here (Audit lists all).</p>")
        html = html[: -len("</div>")] + note + "</div>"
    return st, html
