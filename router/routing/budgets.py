"""Budgets: daily and monthly USD caps per policy, per client key and per slot.

The pool's `budgets:` block lists caps. `scope` says what a cap counts: `policy` (every request of
this pool), `client` (each API key on its own, or only the key named by `name`, see ROUTER_API_KEYS
`name:key`), `slot` (spend on the slot named by `name`). Periods are UTC calendar days and months.

Modes:
    hard  once spend reaches the cap, refuse (429 with Retry-After = seconds to the period's end);
          for a slot cap only that slot leaves the pool
    soft  from `soft_at` x cap on, narrow the pool to cheaper slots, down to the cheapest one at
          the cap; never refuses

In flight: a call that has started but not finished holds a reservation of its estimated cost on
the counters it will add to; every other request reads spend as settled + others' reservations, so
a burst of concurrent requests cannot all pass a cap that none of them has reached yet.

Pure: the counters live elsewhere (router.serving.state); `plan()` takes a `spent(key)` callable
(and optionally `in_flight(key)`) and a clock value, so tests drive it across a period boundary
without waiting.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class BudgetRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: Literal["policy", "client", "slot"]
    name: str | None = None  # slot name (scope slot), client key name (scope client; None: every client)
    period: Literal["day", "month"]
    usd: float
    mode: Literal["hard", "soft"] = "hard"
    soft_at: float = Field(default=0.8, gt=0, le=1)  # soft mode: fraction of the cap where narrowing starts

    @field_validator("usd", mode="before")
    @classmethod
    def _money(cls, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or math.isinf(v):
            raise ValueError(f"must be a number of US dollars, got {v!r}; write e.g. usd: 5.00 (no $ sign, no quotes)")
        if v < 0:
            raise ValueError(f"must be >= 0, got {v!r}; a cap is a positive amount of US dollars (0 = nothing may be spent)")
        return float(v)

    @model_validator(mode="after")
    def _slot_needs_name(self):
        if self.scope == "slot" and not self.name:
            raise ValueError("scope: slot needs name: SLOT (the slot whose spend this cap limits)")
        if self.scope == "policy" and self.name:
            raise ValueError("scope: policy takes no name (the cap counts this pool's policy); remove name")
        return self

    def label(self) -> str:
        who = {"policy": "policy", "client": f"client {self.name}" if self.name else "each client",
               "slot": f"slot {self.name}"}[self.scope]
        return f"{who} {self.period} ${self.usd:g} {self.mode}"


def pool_problems(rules: Sequence[BudgetRule], slot_names: Sequence[str]) -> list[str]:
    problems = []
    for i, r in enumerate(rules):
        if r.scope == "slot" and r.name not in slot_names:
            problems.append(f"budgets[{i}].name: {r.name!r} is not a slot of this pool; use one of "
                            f"{', '.join(slot_names)}")
    return problems


# ---- periods -----------------------------------------------------------------------------------

def period_bounds(period: str, now: float) -> tuple[str, float, float]:
    """(period id, start, end) in epoch seconds for the UTC day or month holding `now`."""
    dt = datetime.fromtimestamp(now, tz=UTC)
    if period == "day":
        start = dt.replace(hour=0, minute=0, second=0, microsecond=0)
        pid = start.strftime("%Y-%m-%d")
        end = start.timestamp() + 86400
    else:
        start = dt.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        pid = start.strftime("%Y-%m")
        nxt = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        end = nxt.timestamp()
    return pid, start.timestamp(), end


def counter_key(policy: str, rule: BudgetRule, client: str | None, period_id: str) -> str | None:
    """The counter a rule reads, e.g. `policy:mixed:day:2026-12-01`; None when the rule does not apply."""
    if rule.scope == "policy":
        return f"policy:{policy}:{rule.period}:{period_id}"
    if rule.scope == "slot":
        return f"slot:{policy}:{rule.name}:{rule.period}:{period_id}"
    if client is None or (rule.name is not None and rule.name != client):
        return None
    return f"client:{policy}:{client}:{rule.period}:{period_id}"


def spend_keys(policy: str, slot: str | None, client: str | None, now: float) -> list[tuple[str, float]]:
    """Every counter one call's spend adds to, with the time it may expire (end of period + a day).
    `slot` None: the policy and client counters only (a reservation made before the slot is known)."""
    keys = []
    for period in ("day", "month"):
        pid, _, end = period_bounds(period, now)
        keys.append((f"policy:{policy}:{period}:{pid}", end + 86400))
        if slot is not None:
            keys.append((f"slot:{policy}:{slot}:{period}:{pid}", end + 86400))
        if client is not None:
            keys.append((f"client:{policy}:{client}:{period}:{pid}", end + 86400))
    return keys


# ---- the decision ------------------------------------------------------------------------------

@dataclass
class CapState:
    rule: BudgetRule
    key: str
    spent: float  # settled: calls that finished
    resets_at: float
    in_flight: float = 0.0  # reserved by other requests' calls that have not finished yet

    @property
    def total(self) -> float:
        return self.spent + self.in_flight

    @property
    def fraction(self) -> float:
        return math.inf if self.rule.usd <= 0 and self.total >= 0 else self.total / self.rule.usd

    @property
    def reached(self) -> bool:
        return self.total >= self.rule.usd

    def spent_text(self) -> str:
        flying = f" + ${self.in_flight:.4f} in flight" if self.in_flight > 0 else ""
        return f"${self.spent:.4f}{flying} of ${self.rule.usd:g}"

    def to_dict(self, now: float) -> dict[str, Any]:
        return {"scope": self.rule.scope, "name": self.rule.name, "period": self.rule.period, "mode": self.rule.mode,
                "cap_usd": self.rule.usd, "spent_usd": round(self.spent, 8), "in_flight_usd": round(self.in_flight, 8),
                "remaining_usd": round(max(0.0, self.rule.usd - self.total), 8), "reached": self.reached,
                "resets_at": self.resets_at, "resets_in_s": max(0, int(math.ceil(self.resets_at - now)))}


@dataclass
class BudgetPlan:
    """What the caps do to one request: refuse it, drop slots, or nothing."""

    refused: CapState | None = None  # a hard cap that refuses the request
    removed: dict[str, str] = field(default_factory=dict)  # slot -> why it left the pool
    states: list[CapState] = field(default_factory=list)
    now: float = 0.0

    @property
    def retry_after_s(self) -> int:
        return 0 if self.refused is None else max(1, int(math.ceil(self.refused.resets_at - self.now)))

    @property
    def first_reset_s(self) -> int:
        """Seconds until the first reached cap resets (at least 1): when a dropped slot may return."""
        resets = [s.resets_at for s in self.states if s.reached] or [self.now + 1]
        return max(1, int(min(resets) - self.now))

    def reason(self) -> str:
        return "; ".join(dict.fromkeys(self.removed.values()))

    def to_dict(self) -> dict[str, Any]:
        return {"refused": self.refused.rule.label() if self.refused else None, "removed": dict(self.removed),
                "reason": self.reason(), "caps": [s.to_dict(self.now) for s in self.states]}


def blended_price(slot: Any) -> float:
    return float(slot.cost_per_m_input_tokens) + float(slot.cost_per_m_output_tokens)


def cap_counters(rules: Sequence[BudgetRule], policy: str, client: str | None,
                 now: float) -> list[tuple[BudgetRule, str, float]]:
    """(rule, counter key of the period at `now`, that period's end) for each rule that concerns `client`."""
    out = []
    for r in rules:
        pid, _, end = period_bounds(r.period, now)
        key = counter_key(policy, r, client, pid)
        if key is not None:
            out.append((r, key, end))
    return out


def cap_states(counters: Sequence[tuple[BudgetRule, str, float]], spent: Callable[[str], float],
               in_flight: Callable[[str], float] | None = None) -> list[CapState]:
    """The states of `cap_counters(...)`, from each counter's settled spend and what is in flight."""
    return [CapState(r, key, float(spent(key)), end, float(in_flight(key)) if in_flight else 0.0)
            for r, key, end in counters]


def plan(rules: Sequence[BudgetRule], policy: str, client: str | None, slots: Sequence[Any], now: float,
         spent: Callable[[str], float], in_flight: Callable[[str], float] | None = None) -> BudgetPlan:
    """Apply every cap that concerns this request to the pool's (enabled) `slots`."""
    if not rules:
        return BudgetPlan(now=now)
    return apply_caps(cap_states(cap_counters(rules, policy, client, now), spent, in_flight), slots, now)


def apply_caps(states: Sequence[CapState], slots: Sequence[Any], now: float) -> BudgetPlan:
    """What the caps' current states do to a request that may use `slots`."""
    bp = BudgetPlan(now=now, states=list(states))
    names = [s.name for s in slots]
    for st in bp.states:
        r = st.rule
        if r.scope == "slot":
            if r.name in names and st.reached:
                bp.removed.setdefault(r.name, f"slot {r.name} reached its {r.period} cap "
                                              f"({st.spent_text()}, {r.mode})")
            continue
        if r.mode == "hard":
            if st.reached and (bp.refused is None or st.resets_at > bp.refused.resets_at):
                bp.refused = st
            continue
        start = r.soft_at * r.usd
        if st.total < start:
            continue
        # Soft: keep a share of the slots, cheapest first, that shrinks from all (at soft_at x cap) to one (at the cap).
        level = 1.0 if r.usd <= start else min(1.0, (st.total - start) / (r.usd - start))
        ranked = sorted(slots, key=lambda s: (blended_price(s), names.index(s.name)))
        keep = max(1, math.ceil(len(ranked) * (1.0 - level))) if level < 1.0 else 1
        keep = min(keep, len(ranked) - 1) if len(ranked) > 1 else 1  # nearing the cap always drops the dearest
        for s in ranked[keep:]:
            bp.removed.setdefault(s.name, f"{r.label()} cap near: {st.spent_text()} spent "
                                          f"({100 * st.total / r.usd if r.usd else 100:.0f}%), so only the "
                                          f"{keep} cheapest slot(s) stay")
    return bp
