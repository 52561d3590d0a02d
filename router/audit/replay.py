"""Replay an audit log against a pool: re-score the logged queries, compare with what was decided.

    python -m router audit replay audit.jsonl [--config POOL] [--checkpoint DIR] [--tolerance T]
        [--out diffs.jsonl] [--engine local|ray] [--ray-address ADDR] [--workers N] [--json]

Two questions in one pass:

- **Reproduction** (a drift / nondeterminism check): lines whose `checkpoint_fingerprint` equals
  the checkpoint under test must get the same P back, every slot within `p_tolerance` (1e-4).
- **What if**: with another checkpoint or tolerance, which decisions change (a from -> to matrix of
  the logged `chosen` against the replayed one), and what the new decisions would have cost next to
  the logged real spend.

Replay needs the query text: only lines written under `audit_query_text: store` can be re-scored.
Everything else is counted, never fatal: torn or non-JSON lines, lines that are not audit records,
lines of another policy, requests the sensitivity rules or budgets refused (`status: refused`,
nothing was called), pinned requests (no decision was made), hash/drop lines, lines whose
chosen slot the pool no longer has. The log is read as `audit summary` reads it (router.audit.log.walk):
a stream's "started" line and its final line are one decision, replayed once. Lines of another pool config (`pool_hash`) or checkpoint are
replayed and counted.

Spend: `logged_real_usd` sums the logged actual cost of the replayed lines. Each replayed decision
is priced like the router's own estimate (the logged real prompt tokens when usage is known, else
the encoder's count; the slot's expected output tokens), except where the replay picks the slot that
really answered: there the real cost stands. `logged_estimated_usd` prices the logged decisions the
same way, so the two estimates compare like for like.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from router.audit.log import walk
from router.audit.provenance import pool_hash
from router.errors import InputError
from router.routing.costs import price_usd
from router.routing.router import PrefillRouter, Scores

P_TOLERANCE = 1e-4
SKIP_REASONS = ("torn", "not_a_record", "other_policy", "refused", "pinned", "no_query", "unknown_slot", "bad_fields")


@dataclass
class ReplayReport:
    file: str
    policy: str
    checkpoint_fingerprint: str
    pool_hash: str
    tolerance: float | None  # the override, or None = each line's logged tolerance
    p_tolerance: float
    lines: int = 0  # records read, bad lines included (a stream's started and final lines are one)
    replayed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    logged_fingerprints: dict[str, int] = field(default_factory=dict)
    other_pool_config: int = 0  # replayed lines logged under another pool_hash
    same_checkpoint: int = 0  # replayed lines whose fingerprint is the checkpoint under test
    reproduced: int = 0  # ... whose every P came back within p_tolerance
    drifted: int = 0  # ... whose P did not
    max_abs_dp: float = 0.0
    changed: int = 0
    matrix: dict[str, dict[str, int]] = field(default_factory=dict)  # logged chosen -> replayed chosen -> n
    logged_real_usd: float = 0.0
    logged_estimated_usd: float = 0.0
    replay_estimated_usd: float = 0.0
    baseline_estimated_usd: float = 0.0
    differences: str | None = None  # the JSONL written, if any

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def reproducible(self) -> bool:
        return self.drifted == 0


def _classify(rec: dict, router: PrefillRouter) -> str | None:
    """Why a record cannot be replayed, or None."""
    if "ts" not in rec or "request_id" not in rec:
        return "not_a_record"
    if rec.get("policy") != router.pool.policy:
        return "other_policy"
    if rec.get("status") == "refused":  # before "pinned": a gate refusal has no models either
        return "refused"
    if rec.get("pinned") or not rec.get("models"):
        return "pinned"
    if not isinstance(rec.get("query"), str) or not rec["query"].strip():
        return "no_query"
    models = rec["models"]
    if not isinstance(models, list) or not all(isinstance(m, dict) and isinstance(m.get("name"), str) for m in models):
        return "bad_fields"
    if rec.get("chosen") not in router.pool.names:
        return "unknown_slot"
    tol = rec.get("tolerance")
    if not isinstance(tol, (int, float)) or isinstance(tol, bool) or not 0 <= tol <= 1:
        return "bad_fields"
    return None


def _estimate(router: PrefillRouter, result, slot: str, tokens_in: int) -> float:
    m = result.score(slot)
    return price_usd(m, tokens_in, m.expected_output_tokens)


def replay(path: str | Path, router: PrefillRouter, *, tolerance: float | None = None,
           p_tolerance: float = P_TOLERANCE, out: str | Path | None = None, engine: str = "local",
           ray_address: str | None = None, workers: int = 2, batch_size: int = 32,
           progress: bool = True) -> ReplayReport:
    from router.routing.parallel import CheckpointScorer, score_texts
    from router.routing.router import check_tolerance

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: audit log not found")
    if tolerance is not None:
        tolerance = check_tolerance(tolerance)
    ckpt = router.checkpoint
    report = ReplayReport(file=str(path), policy=router.pool.policy, checkpoint_fingerprint=ckpt.fingerprint,
                          pool_hash=pool_hash(router.pool), tolerance=tolerance, p_tolerance=p_tolerance)
    skipped: Counter = Counter()
    fingerprints: Counter = Counter()
    work: list[tuple[int, dict]] = []

    def torn(n: int, message: str) -> None:  # a file cut mid-line is the normal case after a crash: counted
        report.lines += 1
        skipped["torn"] += 1

    for n, rec in walk(path, torn):
        report.lines += 1
        why = _classify(rec, router)
        if why is not None:
            skipped[why] += 1
            continue
        work.append((n, rec))
    report.skipped = {k: skipped[k] for k in SKIP_REASONS if skipped[k]}

    cols = [ckpt.slots.index(s.score_as) for s in router.pool.models]
    texts = [rec["query"] for _, rec in work]
    if texts:
        P, counts = score_texts(ckpt.path, texts, engine=engine, batch_size=batch_size, ray_address=ray_address,
                                workers=workers, progress=progress,
                                scorer=CheckpointScorer.loaded(ckpt, router.encoder) if engine == "local" else None)
    names = router.pool.names
    diffs = open(out, "w", encoding="utf-8") if out else None
    try:
        for j, (n, rec) in enumerate(work):
            fp = rec.get("checkpoint_fingerprint") or "(none)"
            fingerprints[fp] += 1
            if rec.get("pool_hash") and rec["pool_hash"] != report.pool_hash:
                report.other_pool_config += 1
            logged_p = {m["name"]: m.get("p") for m in rec["models"]}
            # A request that narrowed the pool (`models`) is replayed with the same narrowing.
            narrowed = any(m.get("allowed") is False for m in rec["models"])
            models = [m["name"] for m in rec["models"] if m.get("allowed", True) and m["name"] in names] \
                if narrowed else None
            scores = Scores(P[j, cols], int(counts[j]), 0.0, 0.0)
            tol = tolerance if tolerance is not None else float(rec["tolerance"])
            try:
                result = router.decide(scores, tol, models)
            except InputError:  # e.g. none of the logged allowed slots is in this pool any more
                skipped["unknown_slot"] += 1
                continue
            report.replayed += 1
            new_p = result.probabilities
            common = [s for s in new_p if isinstance(logged_p.get(s), (int, float))]
            dp = max((abs(new_p[s] - float(logged_p[s])) for s in common), default=math.nan)
            drift = False
            if fp == report.checkpoint_fingerprint:
                report.same_checkpoint += 1
                report.max_abs_dp = max(report.max_abs_dp, dp if not math.isnan(dp) else 0.0)
                drift = math.isnan(dp) or dp > p_tolerance
                report.drifted += drift
                report.reproduced += not drift
            before, after = rec["chosen"], result.chosen
            report.matrix.setdefault(before, {}).setdefault(after, 0)
            report.matrix[before][after] += 1
            usage = rec.get("usage") if isinstance(rec.get("usage"), dict) else None
            tokens_in = int(usage.get("prompt_tokens") or 0) if usage else result.input_tokens
            real = rec.get("actual_cost_usd")
            real = float(real) if isinstance(real, (int, float)) else None
            logged_est = _estimate(router, result, before, tokens_in)
            new_est = real if (real is not None and after == rec.get("selected")) else \
                _estimate(router, result, after, tokens_in)
            report.logged_real_usd += real or 0.0
            report.logged_estimated_usd += logged_est
            report.replay_estimated_usd += new_est
            report.baseline_estimated_usd += _estimate(router, result, result.baseline, tokens_in)
            changed = before != after
            report.changed += changed
            if diffs is not None and (changed or drift):
                diffs.write(json.dumps({
                    "line": n, "request_id": rec.get("request_id"), "time": rec.get("time"),
                    "reason": "p_drift" if drift and not changed else ("decision_changed+p_drift" if drift
                                                                        else "decision_changed"),
                    "from": before, "to": after, "selected": rec.get("selected"),
                    "logged_tolerance": rec.get("tolerance"), "tolerance": tol,
                    "logged_checkpoint": rec.get("checkpoint_fingerprint"), "max_abs_dp": None if math.isnan(dp) else dp,
                    "logged_p": logged_p, "p": new_p, "logged_real_usd": real,
                    "logged_estimated_usd": logged_est, "estimated_usd": new_est,
                }, ensure_ascii=False) + "\n")
    finally:
        if diffs is not None:
            diffs.close()
            report.differences = str(out)
    report.skipped = {k: skipped[k] for k in SKIP_REASONS if skipped[k]}
    report.logged_fingerprints = dict(fingerprints.most_common())
    return report


def format_report(r: ReplayReport) -> str:
    skipped = sum(r.skipped.values())
    out = [f"{r.file}: {r.lines} lines, {r.replayed} replayed against pool {r.policy!r} "
           f"(checkpoint {r.checkpoint_fingerprint}, pool {r.pool_hash})",
           f"tolerance: {'as logged' if r.tolerance is None else r.tolerance}"]
    if skipped:
        out.append("skipped: " + ", ".join(f"{k} {v}" for k, v in r.skipped.items())
                   + ("  (replay needs audit_query_text: store)" if r.skipped.get("no_query") else ""))
    if r.other_pool_config:
        out.append(f"{r.other_pool_config} replayed lines were logged under another pool config")
    fps = ", ".join(f"{fp} ×{n}" for fp, n in r.logged_fingerprints.items())
    out.append(f"logged checkpoints: {fps or 'none'}")
    if r.same_checkpoint:
        verdict = "reproduced" if r.reproducible else f"DRIFT on {r.drifted} lines"
        out.append(f"same checkpoint: {r.same_checkpoint} lines, {r.reproduced} reproduced within "
                   f"{r.p_tolerance:g} (max |ΔP| {r.max_abs_dp:.2e}): {verdict}")
    else:
        out.append("same checkpoint: no replayed line was scored by this checkpoint (what-if only)")
    out.append(f"decisions changed: {r.changed} of {r.replayed}")
    slots = sorted({s for row in r.matrix.values() for s in row} | set(r.matrix))
    if r.matrix:
        width = max(8, *(len(s) for s in slots))
        out.append("from \\ to".ljust(width) + "".join(s.rjust(width + 1) for s in slots))
        for a in slots:
            row = r.matrix.get(a, {})
            out.append(a.ljust(width) + "".join(str(row.get(b, 0) or ".").rjust(width + 1) for b in slots))
    out.append(f"spend: logged real ${r.logged_real_usd:.6f} · logged decisions estimated "
               f"${r.logged_estimated_usd:.6f} · replayed decisions estimated ${r.replay_estimated_usd:.6f} · "
               f"baseline estimated ${r.baseline_estimated_usd:.6f}")
    if r.differences:
        out.append(f"differences written to {r.differences}")
    return "\n".join(out)
