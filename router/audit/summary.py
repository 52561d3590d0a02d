"""Reading an audit log back: routing distribution, spend vs the baseline, drift between two windows.

Spend counts every known bill (requests that failed or were cut off after the upstream billed
tokens too, reported apart); savings compare only the answered requests with their baseline.

Plain functions over the records `router.audit.log.read_records` yields, read as DecisionRecords; `python -m router audit
summary` prints `format_summary(summarize(...))`.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from router.audit.record import DecisionRecord
from router.errors import InputError

_REL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(value: str, now: float | None = None) -> float:
    """'24h', '7d', '30m' (ago) or an ISO date/time ('2026-11-30', '2026-11-30T08:00Z') -> epoch seconds."""
    now = time.time() if now is None else now
    m = _REL.match(value)
    if m:
        return now - float(m.group(1)) * _UNIT_S[m.group(2)]
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"cannot read time {value!r}: use e.g. 24h, 7d, 30m or 2026-11-30T08:00Z") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _cost(r: DecisionRecord) -> float | None:
    """What an answered request cost: real usage when it had an answer, else the router's estimate."""
    if r.actual_cost_usd is not None:
        return float(r.actual_cost_usd)
    if r.expected_cost_usd is not None:
        return float(r.expected_cost_usd)
    return None


def _billed(r: DecisionRecord) -> float | None:
    """What a request that did not end "ok" cost: only known usage counts (a stream cut after the
    upstream billed tokens, counted or estimated by the proxy); the router's estimate is no bill."""
    return float(r.actual_cost_usd) if r.actual_cost_usd is not None else None


def _chosen(r: DecisionRecord) -> str:
    return str(r.chosen or r.selected or "?")


def records_of(records: Iterable[Mapping[str, Any] | DecisionRecord]) -> list[DecisionRecord]:
    """Audit lines (format 1 or 2) as DecisionRecords, oldest first."""
    recs = [r if isinstance(r, DecisionRecord) else DecisionRecord.from_line(r) for r in records]
    return sorted(recs, key=lambda r: float(r.ts))


def window_stats(records: Sequence[Mapping[str, Any] | DecisionRecord]) -> dict[str, Any]:
    records = records_of(records)
    dist = Counter(_chosen(r) for r in records)
    # Savings compare like with like: only answered requests, each with its baseline counterpart.
    # Spend is every bill: a stream that failed or was cancelled after the upstream billed tokens cost too.
    served = [r for r in records if r.status == "ok"]
    costs = [c for c in (_cost(r) for r in served) if c is not None]
    failed = [r for r in records if r.status != "ok"]
    billed = [c for c in (_billed(r) for r in failed) if c is not None]
    base = [float(r.baseline_cost_usd) for r in served if r.baseline_cost_usd is not None]
    n = len(records)
    return {
        "requests": n,
        "errors": len(failed),
        "failovers": sum(1 for r in records if r.selected and r.chosen and r.selected != r.chosen),
        "distribution": {k: v / n for k, v in dist.most_common()} if n else {},
        "counts": dict(dist.most_common()),
        "spend_usd": sum(costs) + sum(billed),
        "spend_ok_usd": sum(costs),
        "spend_not_ok_usd": sum(billed),
        "not_ok_billed": len(billed),  # not-ok lines with known usage (counted in spend_not_ok_usd)
        "not_ok_unknown": len(failed) - len(billed),  # not-ok lines with no usage: their cost is unknown
        "baseline_usd": sum(base),
        "cost_per_request_usd": (sum(costs) / len(costs)) if costs else None,
        "first": min((r.ts for r in records), default=None),
        "last": max((r.ts for r in records), default=None),
    }


def drift(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Change from window a to window b: total variation distance of the chosen-model shares and cost/request."""
    names = sorted(set(a["distribution"]) | set(b["distribution"]))
    delta = {k: b["distribution"].get(k, 0.0) - a["distribution"].get(k, 0.0) for k in names}
    ca, cb = a["cost_per_request_usd"], b["cost_per_request_usd"]
    return {
        "total_variation": 0.5 * sum(abs(v) for v in delta.values()),
        "share_change": dict(sorted(delta.items(), key=lambda kv: -abs(kv[1]))),
        "cost_per_request_change_usd": (cb - ca) if ca is not None and cb is not None else None,
        "cost_per_request_change_pct": (100.0 * (cb - ca) / ca) if ca and cb is not None else None,
    }


def summarize(records: Iterable[Mapping[str, Any]], split: float | None = None) -> dict[str, Any]:
    """Totals, plus drift between [first, split) and [split, last]; split defaults to the midpoint in time."""
    recs = records_of(records)
    total = window_stats(recs)
    baselines = Counter(r.baseline for r in recs if r.baseline)
    policies = Counter(r.policy for r in recs if r.policy)
    out: dict[str, Any] = {"total": total, "baseline": baselines.most_common(1)[0][0] if baselines else None,
                           "policies": dict(policies)}
    saved = total["baseline_usd"] - total["spend_ok_usd"]  # like with like: the answered requests
    out["saved_usd"] = saved
    out["saved_pct"] = 100.0 * saved / total["baseline_usd"] if total["baseline_usd"] > 0 else None
    if len(recs) >= 2:
        cut = split if split is not None else (float(recs[0].ts) + float(recs[-1].ts)) / 2
        a = [r for r in recs if float(r.ts) < cut]
        b = [r for r in recs if float(r.ts) >= cut]
        if a and b:
            wa, wb = window_stats(a), window_stats(b)
            out["windows"] = {"split": cut, "before": wa, "after": wb, "drift": drift(wa, wb)}
    return out


def _t(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _usd(x: float | None) -> str:
    return "-" if x is None else f"${x:,.6f}"


def format_summary(s: Mapping[str, Any]) -> str:
    t = s["total"]
    lines = [f"requests: {t['requests']} ({t['errors']} errors, {t['failovers']} failovers) "
             f"from {_t(t['first'])} to {_t(t['last'])} UTC",
             f"policies: {', '.join(f'{k} ({v})' for k, v in s['policies'].items()) or '-'}",
             "", "routing distribution (chosen model):"]
    width = max([len(k) for k in t["counts"]] + [5])
    for name, n in t["counts"].items():
        share = t["distribution"][name]
        lines.append(f"  {name:<{width}}  {n:>6}  {100 * share:5.1f}%  {'#' * round(30 * share)}")
    pct = "-" if s["saved_pct"] is None else f"{s['saved_pct']:.1f}%"
    answered = t["requests"] - t["errors"]
    unknown = f"; {t['not_ok_unknown']} more with no known usage" if t["not_ok_unknown"] else ""
    lines += ["", f"spend:     {_usd(t['spend_usd'])}  (answered: {_usd(t['spend_ok_usd'])} on {answered} requests, "
                  f"{_usd(t['cost_per_request_usd'])} per request)",
              f"  not ok:  {_usd(t['spend_not_ok_usd'])}  (failed, cancelled or cut off after the upstream billed: "
              f"{t['not_ok_billed']} of {t['errors']}{unknown})",
              f"baseline:  {_usd(t['baseline_usd'])}  (every request on {s['baseline'] or 'the baseline'})",
              f"saved:     {_usd(s['saved_usd'])}  ({pct}, answered requests against the baseline)"]
    w = s.get("windows")
    if w:
        d = w["drift"]
        lines += ["", f"drift: before {_t(w['split'])} ({w['before']['requests']} requests) vs after "
                      f"({w['after']['requests']} requests)",
                  f"  chosen-model shift (total variation): {d['total_variation']:.3f}"]
        for name, dv in list(d["share_change"].items())[:8]:
            if abs(dv) > 0:
                lines.append(f"    {name:<{width}}  {100 * dv:+6.1f} pp")
        chg = d["cost_per_request_change_usd"]
        pc = d["cost_per_request_change_pct"]
        lines.append(f"  cost per request: {_usd(w['before']['cost_per_request_usd'])} -> "
                     f"{_usd(w['after']['cost_per_request_usd'])}"
                     + ("" if chg is None else f" ({'+' if chg >= 0 else '-'}{_usd(abs(chg))}"
                        + ("" if pc is None else f", {pc:+.1f}%") + ")"))
    else:
        lines += ["", "drift: needs requests in two time windows"]
    return "\n".join(lines)
