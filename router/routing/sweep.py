"""The tolerance sweep: the selection rule applied to a question set at every tolerance of a grid.

Scores are computed once (one encoder pass per question); each tolerance is a vectorized re-decision
(`select.select_many`), so a sweep of thousands of questions is cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from router.errors import InputError
from router.routing.select import select_many


def tolerance_grid(start: float = 0.0, stop: float = 0.5, step: float = 0.05) -> list[float]:
    """Inclusive grid, rounded to 4 decimals so 0.1 + 0.2 prints as 0.3."""
    vals = [start, stop, step]
    if any(v is None or not isinstance(v, (int, float)) or math.isnan(v) for v in vals):
        raise InputError(f"tolerance grid needs three numbers (start, stop, step), got {vals}")
    if not (0 <= start <= stop <= 1):
        raise InputError(f"tolerance grid: need 0 <= start <= stop <= 1, got start={start}, stop={stop}")
    if step <= 0:
        raise InputError(f"tolerance grid: step must be > 0, got {step}")
    n = int(math.floor((stop - start) / step + 1e-9)) + 1
    if n > 101:
        raise InputError(f"tolerance grid: {n} points is too many (at most 101); use a larger step")
    return [round(start + i * step, 4) for i in range(n)]


@dataclass
class SweepResult:
    tolerances: list[float]
    names: list[str]  # slot names, pool order
    counts: np.ndarray  # [T, slots]: questions routed to each slot at each tolerance
    mean_cost_usd: np.ndarray  # [T]: mean expected cost per question of the chosen models
    mean_p: np.ndarray  # [T]: mean P(correct) of the chosen models
    baseline_mean_cost_usd: float  # mean expected cost per question on the baseline model
    questions: int
    baseline: str = ""
    P: np.ndarray | None = None  # the scores and costs swept, kept so any other tolerance is exact
    costs: np.ndarray | None = None
    allowed: list[bool] | None = None

    def mix_at(self, tolerance: float) -> dict[str, int]:
        """The model mix at exactly `tolerance` (re-applies the rule; no encoder pass)."""
        if tolerance in self.tolerances or self.P is None:
            i = int(np.argmin(np.abs(np.asarray(self.tolerances) - tolerance)))
            counts = self.counts[i]
        else:
            counts = sweep(self.P, self.costs, [tolerance], self.names, self.allowed, self.baseline).counts[0]
        return {n: int(c) for n, c in zip(self.names, counts) if c > 0}

    def rows(self) -> list[list[Any]]:
        return [[t, int(self.counts[i].sum()), float(self.mean_p[i]), float(self.mean_cost_usd[i]),
                 self.names[int(np.argmax(self.counts[i]))]] for i, t in enumerate(self.tolerances)]


def sweep(P: np.ndarray, costs: np.ndarray, tolerances: Sequence[float], names: Sequence[str],
          allowed: Sequence[bool] | None, baseline: str) -> SweepResult:
    """Apply the selection rule to every question at every tolerance (scores computed once)."""
    P = np.asarray(P, dtype=float)
    costs = np.asarray(costs, dtype=float)
    if P.ndim != 2 or P.shape != costs.shape or P.shape[1] != len(names):
        raise InputError(f"sweep: P {P.shape} and costs {costs.shape} must both be [questions, {len(names)}]")
    if not len(P):
        raise InputError("sweep: no questions to route")
    T, n = len(tolerances), len(P)
    counts = np.zeros((T, len(names)), dtype=int)
    mean_cost, mean_p = np.zeros(T), np.zeros(T)
    for ti, t in enumerate(tolerances):
        chosen = select_many(P, costs, t, allowed)
        np.add.at(counts[ti], chosen, 1)
        mean_cost[ti] = costs[np.arange(n), chosen].mean()
        mean_p[ti] = P[np.arange(n), chosen].mean()
    if baseline not in names:
        raise InputError(f"sweep: baseline {baseline!r} is not one of {list(names)}")
    bi = list(names).index(baseline)
    return SweepResult(list(tolerances), list(names), counts, mean_cost, mean_p,
                       float(costs[:, bi].mean()), n, str(baseline), P, costs,
                       None if allowed is None else list(allowed))
