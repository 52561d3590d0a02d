"""Money: what a call cost, what the baseline would have cost, session savings, projections, sweeps.

Plain functions over plain data (decision records as dicts, numpy arrays), no UI and no I/O, so
that every number the playground shows is unit-tested here. Conventions:

- A call's cost uses the upstream's real usage when an answer came back (`basis = "actual"`),
  otherwise the router's estimate (`basis = "estimate"`): input tokens of the query × input price
  + the model's mean output tokens in the training data × output price.
- The baseline (the pool's `baseline_slot`, by default its most expensive model) is never called,
  so its cost is always an estimate; when real usage is known it uses the real prompt tokens.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from router.routing.router import select
from router.errors import InputError


def price_usd(input_tokens: float, output_tokens: float, in_per_m: float, out_per_m: float) -> float:
    return (float(input_tokens) * in_per_m + float(output_tokens) * out_per_m) / 1e6


def usage_cost(model: Any, usage: Mapping[str, Any]) -> float:
    """Dollar cost of real usage ({prompt_tokens, completion_tokens}) at a slot's or ModelScore's prices."""
    return price_usd(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0),
                     model.cost_per_m_input_tokens, model.cost_per_m_output_tokens)


def baseline_cost(baseline: Any, usage: Mapping[str, Any] | None) -> float:
    """The baseline model's estimated cost for the same query (a ModelScore of the RoutingResult).

    With real usage the real prompt tokens replace the encoder's count; the output is still the
    baseline's expected length, because the baseline never answered this query.
    """
    if not usage:
        # The router's own estimate, to the cent: recomputing it from the rounded expected_output_tokens
        # made an all-baseline session "save" -0.1%.
        return float(baseline.expected_cost_usd)
    tokens_in = int(usage.get("prompt_tokens") or 0)
    return price_usd(tokens_in, baseline.expected_output_tokens,
                     baseline.cost_per_m_input_tokens, baseline.cost_per_m_output_tokens)


def savings(routed_usd: float, baseline_usd: float) -> tuple[float, float | None]:
    """($ saved, % saved) against the baseline; % is None when the baseline cost is zero."""
    saved = baseline_usd - routed_usd
    return saved, (100.0 * saved / baseline_usd if baseline_usd > 0 else None)


# ---- the session ledger ----------------------------------------------------------------

@dataclass
class SessionStats:
    queries: int = 0
    routed_usd: float = 0.0
    baseline_usd: float = 0.0
    saved_usd: float = 0.0
    saved_pct: float | None = None
    actual: int = 0  # records whose cost comes from real usage
    estimated: int = 0  # records whose cost is the router's estimate
    distribution: dict[str, int] = field(default_factory=dict)  # chosen slot -> queries
    baseline: str | None = None

    @property
    def basis(self) -> str:
        if not self.queries:
            return "none"
        if not self.estimated:
            return "actual"
        return "estimate" if not self.actual else "mixed"


def record_cost(record: Mapping[str, Any]) -> tuple[float, str]:
    """(routed cost, basis) of one decision record."""
    if record.get("actual_cost_usd") is not None:
        return float(record["actual_cost_usd"]), "actual"
    return float(record["expected_cost_usd"]), "estimate"


def session_stats(records: Sequence[Mapping[str, Any]]) -> SessionStats:
    """Totals over a session's decision records (the audit-format dicts the playground keeps)."""
    st = SessionStats()
    dist: Counter[str] = Counter()
    for r in records:
        cost, basis = record_cost(r)
        st.queries += 1
        st.routed_usd += cost
        st.baseline_usd += float(r["baseline_cost_usd"])
        st.actual += basis == "actual"
        st.estimated += basis == "estimate"
        dist[r["chosen"]] += 1
        st.baseline = r.get("baseline") or st.baseline
    st.saved_usd, st.saved_pct = savings(st.routed_usd, st.baseline_usd)
    st.distribution = dict(dist.most_common())
    return st


def mix_from_counts(counts: Mapping[str, float]) -> dict[str, float]:
    """Counts per slot -> shares summing to 1 (empty in, empty out)."""
    total = float(sum(counts.values()))
    return {k: v / total for k, v in counts.items() if v > 0} if total > 0 else {}


def slot_prices(slots) -> dict[str, tuple[float, float]]:
    """slot name -> ($/M input, $/M output) for the slots of a pool."""
    return {s.name: (s.cost_per_m_input_tokens, s.cost_per_m_output_tokens) for s in slots}


# ---- monthly projection ------------------------------------------------------------------

@dataclass
class Projection:
    requests: float
    routed_usd: float
    baseline_usd: float
    saved_usd: float
    saved_pct: float | None
    per_model_usd: dict[str, float]
    per_request_routed_usd: float
    per_request_baseline_usd: float


def monthly_projection(team_size: float, requests_per_person: float, input_tokens: float, output_tokens: float,
                       mix: Mapping[str, float], prices: Mapping[str, tuple[float, float]],
                       baseline: str) -> Projection:
    """Monthly spend routed (the given model mix) vs every request on the baseline model.

    `mix` maps slot -> share of requests (normalized here); `prices` maps slot -> ($/M in, $/M out).
    Every request is assumed to have the given average input and output tokens.
    """
    for name, v in (("team size", team_size), ("requests per person", requests_per_person),
                    ("input tokens", input_tokens), ("output tokens", output_tokens)):
        if v is None or not isinstance(v, (int, float)) or math.isnan(v) or v < 0:
            raise InputError(f"{name} must be a number >= 0, got {v!r}")
    if baseline not in prices:
        raise InputError(f"baseline {baseline!r} has no prices")
    shares = mix_from_counts(mix)
    unknown = [k for k in shares if k not in prices]
    if unknown:
        raise InputError(f"model mix names slots without prices: {', '.join(unknown)}")
    if not shares:
        raise InputError("the model mix is empty: route some queries or run the sweep first")
    requests = float(team_size) * float(requests_per_person)
    per_call = {k: price_usd(input_tokens, output_tokens, *prices[k]) for k in prices}
    per_model = {k: requests * s * per_call[k] for k, s in shares.items()}
    routed = sum(per_model.values())
    base = requests * per_call[baseline]
    saved, pct = savings(routed, base)
    return Projection(requests, routed, base, saved, pct, per_model,
                      sum(s * per_call[k] for k, s in shares.items()), per_call[baseline])


# ---- tolerance sweep ---------------------------------------------------------------------

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
    P: np.ndarray | None = None  # the scores and costs swept, kept so any other tolerance is exact
    costs: np.ndarray | None = None
    allowed: list[bool] | None = None

    def mix_at(self, tolerance: float) -> dict[str, int]:
        """The model mix at exactly `tolerance` (re-applies the rule; no encoder pass)."""
        if tolerance in self.tolerances or self.P is None:
            i = int(np.argmin(np.abs(np.asarray(self.tolerances) - tolerance)))
            counts = self.counts[i]
        else:
            counts = sweep(self.P, self.costs, [tolerance], self.names, self.allowed).counts[0]
        return {n: int(c) for n, c in zip(self.names, counts) if c > 0}

    def rows(self) -> list[list[Any]]:
        return [[t, int(self.counts[i].sum()), float(self.mean_p[i]), float(self.mean_cost_usd[i]),
                 self.names[int(np.argmax(self.counts[i]))]] for i, t in enumerate(self.tolerances)]


def sweep(P: np.ndarray, costs: np.ndarray, tolerances: Sequence[float], names: Sequence[str],
          allowed: Sequence[bool] | None = None, baseline: str | None = None) -> SweepResult:
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
        chosen = [select(P[i], costs[i], t, allowed).chosen for i in range(n)]
        np.add.at(counts[ti], chosen, 1)
        mean_cost[ti] = costs[np.arange(n), chosen].mean()
        mean_p[ti] = P[np.arange(n), chosen].mean()
    bi = list(names).index(baseline) if baseline in names else int(np.argmax(costs.sum(0)))
    return SweepResult(list(tolerances), list(names), counts, mean_cost, mean_p,
                       float(costs[:, bi].mean()), n, P, costs, None if allowed is None else list(allowed))
