"""Routing quality metrics, exactly as ../shared/DESIGN.md "Evaluation metrics" defines them.

Pure numpy on arrays: P (predicted P(correct)) [n, m], Y (true correctness, NaN = unknown)
[n, m], cost (actual USD per call) [n, m], expected_cost (what the router believes a call
costs; [m] or [n, m]). No encoder, no checkpoint: `evaluate` feeds these.

- sweep: for t in 0.00..1.00 route every question with the selection rule of routing.select;
  cost(t) = sum of the chosen models' actual costs, acc(t) = mean correctness of the chosen answers.
- best single model: highest accuracy on these rows; C_best its total cost, A_best its accuracy.
- cost_save_at(target): 1 - min{cost(t) : acc(t) >= target} / C_best, None if never reached.
- aiq: trapezoid integral over x in [0, 1] (201 points) of E(x) = max{acc(t) : cost(t)/C_best <= x}, 0 if none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from router.routing.select import SLACK, select_many

TOLERANCES = np.round(np.arange(101) / 100.0, 2)
AIQ_GRID = np.linspace(0.0, 1.0, 201)
_SLACK = SLACK  # the selection rule's float slack, reused for "reaches the target" comparisons


def choose(P: np.ndarray, expected_cost: np.ndarray, tolerance: float) -> np.ndarray:
    """Per row, the product's selection rule (routing.select.select_many)."""
    return select_many(P, expected_cost, tolerance)


def _take(A: np.ndarray, choice: np.ndarray) -> np.ndarray:
    return A[np.arange(len(choice)), choice]


def sweep(P: np.ndarray, Y: np.ndarray, cost: np.ndarray, expected_cost: np.ndarray,
          tolerances: Sequence[float] = TOLERANCES) -> dict[str, np.ndarray]:
    """cost(t), acc(t) and the choices [len(t), n] over the tolerance grid.

    An unknown label of a chosen answer is left out of acc(t) (never counted as wrong);
    an unknown cost counts as 0.
    """
    tol = np.asarray(tolerances, dtype=float)
    choices = np.stack([choose(P, expected_cost, t) for t in tol])
    costs, accs = totals(choices, Y, cost)
    return {"tolerance": tol, "cost": costs, "accuracy": accs, "choices": choices}


def totals(choices: np.ndarray, Y: np.ndarray, cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of `choices` ([k, n] slot indices): total cost and accuracy of those picks (sweep's rules)."""
    costs = np.array([np.nansum(_take(cost, c)) for c in choices])
    accs = np.array([_nanmean(_take(Y, c)) for c in choices])
    return costs, accs


def _nanmean(v: np.ndarray) -> float:
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else float("nan")


def best_single(Y: np.ndarray, cost: np.ndarray) -> tuple[int, float, float]:
    """(index, accuracy A_best, total cost C_best) of the most accurate single model (ties: cheaper)."""
    acc = np.array([_nanmean(Y[:, j]) for j in range(Y.shape[1])])
    total = np.nansum(cost, axis=0)
    j = int(min(range(len(acc)), key=lambda i: (-np.nan_to_num(acc[i], nan=-1.0), total[i], i)))
    return j, float(acc[j]), float(total[j])


def cost_save_at(costs: np.ndarray, accs: np.ndarray, target: float, c_best: float) -> float | None:
    ok = np.asarray(accs) >= target - _SLACK
    if not ok.any() or c_best <= 0:
        return None
    return float(1.0 - np.min(np.asarray(costs)[ok]) / c_best)


def envelope(costs: np.ndarray, accs: np.ndarray, c_best: float, grid: np.ndarray = AIQ_GRID) -> np.ndarray:
    """E(x) = best accuracy reachable for at most x * C_best (0 where nothing is that cheap)."""
    ratio = np.asarray(costs) / c_best
    accs = np.nan_to_num(np.asarray(accs), nan=0.0)
    return np.array([accs[ratio <= x + _SLACK].max() if (ratio <= x + _SLACK).any() else 0.0 for x in grid])


def aiq(costs: np.ndarray, accs: np.ndarray, c_best: float, grid: np.ndarray = AIQ_GRID) -> float:
    if c_best <= 0:
        return float("nan")
    return float(np.trapezoid(envelope(costs, accs, c_best, grid), grid))


def auroc(p: np.ndarray, y: np.ndarray) -> float | None:
    """AUROC of P against correctness >= 0.5 (scikit-learn; ties count half); None with one class."""
    from sklearn.metrics import roc_auc_score

    m = ~np.isnan(y)
    p, y = np.asarray(p)[m], np.asarray(y)[m] >= 0.5
    if y.all() or not y.any():
        return None
    return float(roc_auc_score(y, p))


def brier(p: np.ndarray, y: np.ndarray) -> float | None:
    """Mean squared error of P against correctness. By hand: labels may be fractional (a judge's
    0..1 score), which scikit-learn's brier_score_loss refuses."""
    m = ~np.isnan(y)
    return float(np.mean((np.asarray(p)[m] - np.asarray(y)[m]) ** 2)) if m.any() else None


def ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float | None:
    """Expected calibration error: |mean P - mean y| per equal-width bin of P, weighted by bin size."""
    m = ~np.isnan(y)
    p, y = np.asarray(p, float)[m], np.asarray(y, float)[m]
    if not p.size:
        return None
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            total += sel.sum() * abs(p[sel].mean() - y[sel].mean())
    return float(total / p.size)


def calibration(P: np.ndarray, Y: np.ndarray, slots: Sequence[str]) -> dict[str, Any]:
    """Per-slot AUROC, Brier score and ECE of P(correct), plus their means."""
    au = {s: auroc(P[:, j], Y[:, j]) for j, s in enumerate(slots)}
    br = {s: brier(P[:, j], Y[:, j]) for j, s in enumerate(slots)}
    ec = {s: ece(P[:, j], Y[:, j]) for j, s in enumerate(slots)}
    a = [v for v in au.values() if v is not None]
    b = [v for v in br.values() if v is not None]
    e = [v for v in ec.values() if v is not None]
    return {"auroc": au, "brier": br, "ece": ec, "mean_auroc": float(np.mean(a)) if a else None,
            "mean_brier": float(np.mean(b)) if b else None, "mean_ece": float(np.mean(e)) if e else None}


def distribution(choices: np.ndarray, slots: Sequence[str]) -> list[dict[str, float]]:
    """Share of questions routed to each slot, one dict per tolerance row of `choices`."""
    m = len(slots)
    return [{s: float(c) for s, c in zip(slots, np.bincount(row, minlength=m) / max(1, len(row)))}
            for row in choices]


def summarize(P: np.ndarray, Y: np.ndarray, cost: np.ndarray, expected_cost: np.ndarray,
              tolerances: Sequence[float] = TOLERANCES) -> dict[str, Any]:
    """Every curve metric of one router on one set of rows."""
    s = sweep(P, Y, cost, expected_cost, tolerances)
    j, a_best, c_best = best_single(Y, cost)
    return {
        "aiq": aiq(s["cost"], s["accuracy"], c_best),
        "cost_save_at_parity": cost_save_at(s["cost"], s["accuracy"], a_best, c_best),
        "cost_save_at_95": cost_save_at(s["cost"], s["accuracy"], 0.95 * a_best, c_best),
        "max_accuracy": float(np.nanmax(s["accuracy"])),
        "best_single": {"index": j, "accuracy": a_best, "cost": c_best},
        "tolerance": s["tolerance"], "cost": s["cost"], "accuracy": s["accuracy"], "choices": s["choices"],
    }
