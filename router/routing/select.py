"""The selection rule of DESIGN.md, once: scalar for one query, vectorized for many.

p_max = max P over the allowed models, threshold = p_max - tolerance, candidates = allowed models
with P >= threshold, choice = the cheapest candidate (ties by pool order). Everything that picks a
model (the router, the sweep, the metrics, sticky sessions) calls this module, so they agree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from router.errors import InputError

# A hair of slack so that a P equal to the threshold in decimal is not lost to float rounding.
SLACK = 1e-12


@dataclass(frozen=True)
class Selection:
    chosen: int
    best: int
    p_max: float
    threshold: float
    candidates: tuple[int, ...]


def check_tolerance(tolerance: Any) -> float:
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)):
        raise InputError(f"tolerance must be a number in [0, 1], got {tolerance!r}")
    t = float(tolerance)
    if math.isnan(t) or not 0.0 <= t <= 1.0:
        raise InputError(f"tolerance must be in [0, 1] (0 = best model, 1 = cheapest), got {tolerance!r}")
    return t


def within(p: float, p_max: float, tolerance: float) -> bool:
    """Whether a model with P = p is a candidate when the best allowed P is p_max."""
    return p >= p_max - tolerance - SLACK


def select(p: Sequence[float], expected_cost: Sequence[float], tolerance: float,
           allowed: Sequence[bool] | None = None) -> Selection:
    """One query. `tolerance` must already be checked (check_tolerance): callers validate once."""
    n = len(p)
    if len(expected_cost) != n:
        raise InputError(f"select: {n} probabilities but {len(expected_cost)} costs")
    idx = list(range(n)) if allowed is None else [i for i in range(n) if allowed[i]]
    if not idx:
        raise InputError("no model is enabled: enable at least one model of the pool")
    best = min(idx, key=lambda i: (-p[i], i))
    p_max = float(p[best])
    cands = tuple(i for i in idx if within(p[i], p_max, tolerance))
    chosen = min(cands, key=lambda i: (expected_cost[i], i))
    return Selection(chosen=chosen, best=best, p_max=p_max, threshold=p_max - tolerance, candidates=cands)


def select_many(P: np.ndarray, expected_cost: np.ndarray, tolerance: float,
                allowed: Sequence[bool] | None = None) -> np.ndarray:
    """Many queries at once: P [n, m]; expected_cost [m] or [n, m]; returns the chosen column per row.

    Same rule and tie-breaks as `select` (argmin returns the first, i.e. lowest-index, minimum).
    """
    P = np.asarray(P, dtype=float)
    ec = np.broadcast_to(np.asarray(expected_cost, dtype=float), P.shape)
    if allowed is not None:
        mask = np.asarray(allowed, dtype=bool)
        if not mask.any():
            raise InputError("no model is enabled: enable at least one model of the pool")
        P = np.where(mask, P, -np.inf)
    cand = P >= P.max(axis=1, keepdims=True) - tolerance - SLACK
    return np.argmin(np.where(cand, ec, np.inf), axis=1)
