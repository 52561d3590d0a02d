"""Reading the audit log for governance: spend per client / policy / slot against the pool's caps,
and output-length calibration (observed output and reasoning tokens per slot vs the router's estimate).

    python -m router audit summary audit.jsonl --by client|policy|slot [--config POOL]
    python -m router audit calibrate-costs audit.jsonl --config POOL [--write COPY.yaml]

Plain functions over audit records; the pool is read with `load_pool` and its checkpoint's
router.json (no encoder, no torch).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from router.errors import InputError
from router.routing.budgets import BudgetRule, period_bounds
from router.routing.pool import Pool

BY = ("client", "policy", "slot")


NO_SLOT = "(no slot answered)"


def group_of(rec: Mapping[str, Any], by: str) -> str | None:
    if by == "client":
        return rec.get("client_name") or rec.get("client") or "(no key)"
    if by == "policy":
        return rec.get("policy")
    # a request no slot answered still counts: a log of failures is not "no requests"
    return rec.get("selected") or NO_SLOT


def spend_by(records: Iterable[Mapping[str, Any]], by: str, now: float | None = None,
             pool: Pool | None = None) -> list[dict[str, Any]]:
    """Rows per group: requests, spend (all time, this UTC day, this UTC month), and each cap's use."""
    if by not in BY:
        raise InputError(f"--by must be one of {', '.join(BY)}, got {by!r}")
    now = time.time() if now is None else now
    _, day0, _ = period_bounds("day", now)
    _, month0, _ = period_bounds("month", now)
    rows: dict[str, dict[str, Any]] = {}
    for r in records:
        g = group_of(r, by)
        if g is None or (pool is not None and r.get("policy") != pool.policy):
            continue
        row = rows.setdefault(g, {"group": g, "requests": 0, "spend_usd": 0.0, "day_usd": 0.0, "month_usd": 0.0})
        row["requests"] += 1
        cost = float(r.get("actual_cost_usd") or 0.0)  # real usage only: what the budgets count
        ts = float(r.get("ts") or 0.0)
        row["spend_usd"] += cost
        if ts >= day0:
            row["day_usd"] += cost
        if ts >= month0:
            row["month_usd"] += cost
    out = sorted(rows.values(), key=lambda x: -x["spend_usd"])
    for row in out:
        row["caps"] = [_cap_use(rule, row) for rule in (pool.budgets if pool else []) if _applies(rule, by, row["group"])]
    return out


def _applies(rule: BudgetRule, by: str, group: str) -> bool:
    if rule.scope != by:
        return False
    return rule.scope == "policy" or rule.name is None or rule.name == group


def _cap_use(rule: BudgetRule, row: Mapping[str, Any]) -> dict[str, Any]:
    spent = row["day_usd"] if rule.period == "day" else row["month_usd"]
    return {"cap": rule.label(), "cap_usd": rule.usd, "spent_usd": spent,
            "used_pct": (100.0 * spent / rule.usd) if rule.usd else None, "reached": spent >= rule.usd}


def _used(cap: Mapping[str, Any]) -> str:
    if cap["reached"]:
        return "REACHED"
    return "-" if cap["used_pct"] is None else f"{cap['used_pct']:.0f}%"


def format_spend(rows: Sequence[Mapping[str, Any]], by: str) -> str:
    if not rows:
        return "no requests"
    w = max(len(str(r["group"])) for r in rows + [{"group": by}])
    lines = [f"{by:<{w}}  {'requests':>8}  {'all time':>12}  {'today':>12}  {'this month':>12}  caps"]
    for r in rows:
        caps = "; ".join(f"{c['cap']}: {_used(c)}" for c in r["caps"]) or "-"
        lines.append(f"{r['group']:<{w}}  {r['requests']:>8}  ${r['spend_usd']:>11.6f}  ${r['day_usd']:>11.6f}  "
                     f"${r['month_usd']:>11.6f}  {caps}")
    return "\n".join(lines)


# ---- output-length calibration --------------------------------------------------------------------

@dataclass
class Calibration:
    slot: str
    calls: int
    observed_output: float | None  # mean completion tokens (reasoning included)
    observed_reasoning: float | None
    estimate: float  # what the router assumes today
    source: str

    @property
    def ratio(self) -> float | None:
        if self.observed_output is None or not self.estimate:
            return None
        return self.observed_output / self.estimate


def checkpoint_output_tokens(pool: Pool) -> dict[str, float]:
    """Mean output tokens per label column, read from the checkpoint's router.json (no torch)."""
    path = Path(pool.checkpoint_path or pool.checkpoint) / "router.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read the checkpoint's router.json ({exc})") from None
    default = float(meta.get("default_output_tokens", 256))
    stats = meta.get("output_tokens", {})
    return {s.name: float((stats.get(s.score_as) or {}).get("mean", default)) for s in pool.models}


def calibrate(records: Iterable[Mapping[str, Any]], pool: Pool) -> list[Calibration]:
    trained = checkpoint_output_tokens(pool)
    outs: dict[str, list[int]] = defaultdict(list)
    reas: dict[str, list[int]] = defaultdict(list)
    for r in records:
        usage = r.get("usage") or None
        if r.get("policy") not in (None, pool.policy) or r.get("status") != "ok" or not usage:
            continue
        slot = r.get("selected")
        outs[slot].append(int(usage.get("completion_tokens") or 0))
        reas[slot].append(int(usage.get("reasoning_tokens") or 0))
    out = []
    for s in pool.models:
        base, source = (s.expected_output_tokens, "config") if s.expected_output_tokens is not None else (
            trained[s.name], "training mean")
        if s.reasoning_tokens:
            base, source = base + s.reasoning_tokens, source + " + reasoning (config)"
        n = len(outs.get(s.name, []))
        out.append(Calibration(s.name, n, sum(outs[s.name]) / n if n else None,
                               sum(reas[s.name]) / n if n else None, float(base), source))
    return out


def format_calibration(rows: Sequence[Calibration]) -> str:
    w = max([len(r.slot) for r in rows] + [4])
    lines = [f"{'slot':<{w}}  {'calls':>6}  {'observed out':>12}  {'of it reasoning':>15}  {'estimate':>9}  "
             f"{'obs/est':>7}  estimate source"]
    for r in rows:
        obs = "-" if r.observed_output is None else f"{r.observed_output:.1f}"
        rea = "-" if r.observed_reasoning is None else f"{r.observed_reasoning:.1f}"
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}x"
        lines.append(f"{r.slot:<{w}}  {r.calls:>6}  {obs:>12}  {rea:>15}  {r.estimate:>9.1f}  {ratio:>7}  {r.source}")
    return "\n".join(lines)


def write_calibrated(pool: Pool, rows: Sequence[Calibration], out: str | Path, min_calls: int = 5) -> list[str]:
    """A copy of the pool YAML with expected_output_tokens / reasoning_tokens set from the observations
    (slots with at least `min_calls` calls); the original is never touched. Returns the slots written."""
    src = Path(pool.source_path or "")
    out = Path(out)
    if src.exists() and out.resolve() == src.resolve():
        raise InputError(f"--write {out}: that is the pool file itself; write to a copy and review it first")
    raw = yaml.safe_load(src.read_text(encoding="utf-8"))
    by_name = {r.slot: r for r in rows}
    written = []
    for m in raw.get("models", []):
        r = by_name.get(m.get("name"))
        if r is None or r.calls < min_calls or r.observed_output is None:
            continue
        reasoning = r.observed_reasoning or 0.0
        m["expected_output_tokens"] = round(r.observed_output - reasoning, 1)
        if reasoning:
            m["reasoning_tokens"] = round(reasoning, 1)
        else:
            m.pop("reasoning_tokens", None)
        written.append(r.slot)
    if "checkpoint" in raw and not Path(raw["checkpoint"]).is_absolute() and pool.checkpoint_path:
        raw["checkpoint"] = pool.checkpoint_path  # the copy may live elsewhere: keep it loadable
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("# calibrated by `python -m router audit calibrate-costs` from " + str(src.name) + "\n"
                   + yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    tmp.replace(out)
    return written
