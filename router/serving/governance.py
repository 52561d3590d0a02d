"""The proxy's gate: sensitivity rules and budgets applied to one request, before and after the call.

`gate(...)` runs before routing: it scans every message, refuses what must be refused (block rule,
local-only request pinned to a cloud slot, hard cap reached) and otherwise returns the slot list the
router may choose from (local slots only for a local-only request; minus slots dropped by caps).
`filter_plan` re-checks the failover plan, so no later step can put a cloud slot back. `settle(...)`
adds a finished call's real cost to every counter it concerns.

Everything the gate did goes into `RoutingResult.governance`, the `router` object, `X-Router-*`
headers and the audit line (rule names, message indexes and span counts; never matched text).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from router.audit.record import client_id
from router.errors import GovernanceError
from router.routing import budgets, sensitivity
from router.routing.costs import usage_cost
from router.routing.pool import Pool, Slot
from router.routing.scan_cache import ScanCache
from router.serving.state import REDIS_ENV, session_local_key, state_backends
from router.upstream.deadline import DEFAULT_DEADLINE_S


@dataclass
class Governance:
    """Per-process: the spend store, the session store, the clock (injected in tests), key names."""

    spend: Any
    sessions: Any
    link: Any = None
    clock: Callable[[], float] = time.time
    key_names: dict[str, str] = field(default_factory=dict)  # API key -> its name (ROUTER_API_KEYS name:key)
    # How long a call's reservation holds at most: the proxy's default deadline and a margin. A
    # stream that outlives it is still billed at its end; it just stops holding budget before.
    reserve_ttl_s: float = DEFAULT_DEADLINE_S + 60.0
    # Per-message sensitivity results: an agent's resent history and tool definitions are scanned once.
    scans: ScanCache = field(default_factory=ScanCache)

    @classmethod
    def create(cls, audit_path=None, redis_url: str | None = None, clock: Callable[[], float] = time.time,
               key_names: dict[str, str] | None = None) -> Governance:
        redis_url = redis_url if redis_url is not None else os.environ.get(REDIS_ENV) or None
        spend, sessions, link = state_backends(audit_path, redis_url, clock=clock)
        return cls(spend=spend, sessions=sessions, link=link, clock=clock, key_names=dict(key_names or {}))

    def client_name(self, token: str | None) -> str | None:
        """What client budgets count by: the key's name when it has one, else its pseudonym."""
        if token is None:
            return None
        return self.key_names.get(token) or client_id(token)

    def health(self) -> dict[str, Any]:
        h = {"spend": self.spend.health()}
        if self.link is not None:
            h["redis"] = self.link.health()
        return h

    def caps(self, pool: Pool, client: str | None, now: float | None = None,
             asker: str | None = None) -> list[budgets.CapState]:
        """Every cap of `pool` that concerns `client`: settled spend and what is held in flight.
        `asker`: the request id asking; holds placed after its own (and its own) are not counted,
        so requests racing for a cap's last dollars get them first come, first served."""
        now = self.clock() if now is None else now
        counters = budgets.cap_counters(pool.budgets, pool.policy, client, now)
        keys = [k for _, k, _ in counters]
        values = self.spend.get_many(keys)
        flying = self.spend.in_flight_many(keys, asker)
        return budgets.cap_states(counters, lambda k: values.get(k, 0.0), lambda k: flying.get(k, 0.0))

    def budget_plan(self, pool: Pool, client: str | None, slots: Sequence[Slot],
                    asker: str | None = None) -> budgets.BudgetPlan:
        now = self.clock()
        if not pool.budgets:
            return budgets.BudgetPlan(now=now)
        return budgets.apply_caps(self.caps(pool, client, now, asker), slots, now)

    def reserve(self, pool: Pool, client: str | None, rid: str, usd: float, slot: str | None = None) -> None:
        """Hold a call's estimated cost on the counters it will add to, until `release(rid)` or the TTL."""
        now = self.clock()
        keys = [k for k, _ in budgets.spend_keys(pool.policy, slot, client, now)]
        self.spend.reserve(rid, keys, max(0.0, float(usd)), now + self.reserve_ttl_s)

    def release(self, rid: str) -> None:
        self.spend.release(rid)


@dataclass
class Gate:
    scan: sensitivity.Scan
    local_only: bool = False
    local_reason: str = ""
    session_local: bool = False  # the conversation was marked local-only by an earlier turn
    models: list[str] | None = None  # slot names the router may pick from (None: as requested)
    budget: budgets.BudgetPlan | None = None
    outgoing: Any = None  # the messages as they may leave (redacted), None: unchanged
    audit_text: str | None = None
    reservation: str | None = None  # the request id whose estimated cost is held in flight (budgets.py)

    def info(self) -> dict[str, Any]:
        """What the gate did, for RoutingResult.governance / the router object / the audit line."""
        out: dict[str, Any] = {}
        if self.scan.matches or self.session_local:
            out["sensitive"] = {**self.scan.to_dict(), "local_only": self.local_only, "reason": self.local_reason,
                                "redacted": bool(self.scan.redacts), "session_local": self.session_local,
                                "scan_ms": round(self.scan.ms, 3)}
        if self.budget is not None and (self.budget.states or self.budget.removed):
            out["budget"] = self.budget.to_dict()
        return out

    def narrow(self, router, args):
        """The request's checked RouteArgs, with the allowed mask cut to the slots the gate left."""
        if self.models is None:
            return args
        return type(args)(args.tolerance, router.allowed_mask(self.models))

    def headers(self) -> dict[str, str]:
        h = {}
        if self.local_only:
            h["X-Router-Restricted"] = "local-only"
            h["X-Router-Sensitive-Rules"] = ",".join(self.scan.rules("local_only")) or "session"
        elif self.scan.redacts:
            h["X-Router-Redacted"] = ",".join(self.scan.rules("redact"))
        if self.budget is not None and self.budget.removed:
            h["X-Router-Budget"] = "narrowed"
        return h


def _forbidden(message: str, code: str, g: Gate) -> GovernanceError:
    return GovernanceError(message, status=403, code=code, governance=g.info())


def gate(gov: Governance | None, pool: Pool, *, scan_messages: Any, pinned: Slot | None,
         models: Sequence[str] | None, client: str | None, session_key: tuple | None,
         routing_text: str, scan_fields: dict | None = None, reservation: str | None = None,
         estimate: Callable[[Slot], float] | None = None) -> Gate:
    """Everything that must happen before the encoder pass; raises GovernanceError to refuse.

    `scan_fields`: the request's other fields that go upstream as they are (`user`, `metadata`,
    tool descriptions...): scanned too; a match there keeps the request on-prem even for a redact
    rule, since nothing masks those fields.

    `reservation` (a request id) and `estimate(slot)` (its call's estimated USD there): on a pool
    with budgets, the dearest allowed slot's estimate is held in flight before the caps are read
    (hold first, then read the holds placed before it: of two requests racing for a cap's last
    dollars, the one placed first gets them and the other sees them taken); the caller narrows it to
    the chosen slot, keeping its place, and `settle` releases it. A refusal releases it here."""
    cache = gov.scans if gov is not None else None
    res = sensitivity.scan(pool.sensitive, scan_messages, cache)
    if scan_fields:
        # One unit per field: a `tools` list resent unchanged stays cached while `metadata` varies.
        units = [{k: v} for k, v in scan_fields.items()]
        res = sensitivity.with_fields(res, sensitivity.scan(pool.sensitive, units, cache))
    g = Gate(scan=res)
    if res.matches:  # before any refusal: a refused request is audited too, with this text
        g.audit_text = sensitivity.redact_text(pool.sensitive, routing_text)
    try:
        return _gate(g, gov, pool, res, scan_messages, pinned, models, client, session_key, reservation, estimate)
    except GovernanceError as exc:
        exc.gate = g  # what the refusal's audit line needs (the masked query text, the rules)
        if g.reservation is not None:
            gov.release(g.reservation)
            g.reservation = None
        raise


def _gate(g: Gate, gov, pool: Pool, res, scan_messages, pinned, models, client, session_key,
          reservation, estimate) -> Gate:
    if res.blocked:
        raise _forbidden(f"request refused: it matches sensitivity rule(s) {', '.join(res.rules('block'))} "
                         f"(action block: {res.reason()}); remove the sensitive data and retry",
                         "sensitive_data_blocked", g)
    sessions = gov.sessions if gov is not None else None
    if session_key is not None and sessions is not None:
        if res.local_only:
            sessions.set(session_local_key(session_key), ",".join(res.rules("local_only")))
        else:
            earlier = sessions.get(session_local_key(session_key))
            if earlier:
                g.session_local = True
                g.local_reason = (f"an earlier turn of session {session_key[2]!r} matched rule(s) {earlier}: "
                                  f"the whole conversation stays on local slots")
    g.local_only = res.local_only or g.session_local
    if res.local_only:
        g.local_reason = (f"matched {res.reason()}: only local slots may answer")
    if res.redacts:
        g.outgoing = sensitivity.redact(scan_messages, res)
    # The slots this request may use, before budgets.
    if pinned is not None:
        if g.local_only and not pinned.local:
            raise _forbidden(f"slot {pinned.name!r} is a cloud slot and this request may only be answered on-prem "
                             f"({g.local_reason}); pin a local slot or send the policy name to route",
                             "sensitive_data_local_only", g)
        allowed = [pinned]
    else:
        wanted = None if models is None else set(models)
        allowed = [s for s in pool.models if (s.enabled if wanted is None else s.name in wanted)]
        if g.local_only:
            allowed = [s for s in allowed if s.local]
            if not allowed:
                local = [s.name for s in pool.models if s.local]
                why = ("no local slot of this pool is enabled" if not local or wanted is None
                       else f"none of the requested models is local (local slots: {', '.join(local)})")
                raise GovernanceError(f"this request may only be answered by a local slot ({g.local_reason}), "
                                      f"and {why}; it was not sent anywhere", status=503,
                                      code="no_local_slot", governance=g.info())
    if gov is not None and pool.budgets:
        if reservation is not None:
            gov.reserve(pool, client, reservation, max((estimate(s) for s in allowed), default=0.0) if estimate else 0.0,
                        slot=pinned.name if pinned is not None else None)
            g.reservation = reservation
        bp = gov.budget_plan(pool, client, allowed, asker=g.reservation)
        g.budget = bp
        if bp.refused is not None:
            st = bp.refused
            raise GovernanceError(f"budget cap reached: {st.rule.label()} ({st.spent_text()} spent); "
                                  f"requests resume when the {st.rule.period} resets in {bp.retry_after_s} s",
                                  status=429, code="budget_exceeded", retry_after=bp.retry_after_s,
                                  governance=g.info())
        kept = [s for s in allowed if s.name not in bp.removed]
        if not kept:
            wait = bp.first_reset_s
            raise GovernanceError(f"budget cap reached for every slot this request may use ({bp.reason()}); "
                                  f"retry in {wait} s", status=429, code="budget_exceeded", retry_after=wait,
                                  governance=g.info())
        allowed = kept
    if pinned is None and (g.local_only or (g.budget is not None and g.budget.removed)):
        g.models = [s.name for s in allowed]
    elif pinned is None:
        g.models = None if models is None else list(models)
    return g


def hold_on(gov: Governance, pool: Pool, client: str | None, rid: str, slot: Slot,
            usd: float) -> tuple[budgets.BudgetPlan, str | None]:
    """Hold (or move) request `rid`'s estimate on `slot`, then read the caps again for that slot: the
    plan and why a hard cap or the slot's own cap forbids the call now (None: it may go)."""
    gov.reserve(pool, client, rid, usd, slot=slot.name)
    bp = gov.budget_plan(pool, client, [slot], asker=rid)
    why = (f"{bp.refused.rule.label()} ({bp.refused.spent_text()} spent)" if bp.refused is not None
           else bp.removed.get(slot.name))
    return bp, why


def hold(gov: Governance | None, pool: Pool, client: str | None, rid: str, slot: Slot, usd: float) -> bool:
    """Reserve one call on `slot` that was decided earlier (the playground sends a decision minutes
    after routing it): the caps are read again, with what is in flight, and a cap reached since
    refuses the call (429) and releases the hold. True when something is held (`settle` releases it)."""
    if gov is None or not pool.budgets:
        return False
    bp, why = hold_on(gov, pool, client, rid, slot, usd)
    if why:
        gov.release(rid)
        wait = bp.retry_after_s or bp.first_reset_s
        raise GovernanceError(f"budget cap reached since this query was routed: {why}; nothing was sent, "
                              f"retry in {wait} s", status=429, code="budget_exceeded", retry_after=wait,
                              governance={"budget": bp.to_dict()})
    return True


def filter_plan(g: Gate, plan: list[Slot]) -> list[Slot]:
    """The failover plan minus anything the gate forbids; a local-only plan never holds a cloud slot."""
    if g.local_only:
        plan = [s for s in plan if s.local]
    if g.models is not None:
        plan = [s for s in plan if s.name in g.models]
    if not plan:
        raise GovernanceError("no slot left to answer this request after the sensitivity and budget rules",
                              status=503, code="no_local_slot" if g.local_only else "no_slot", governance=g.info())
    return plan


def call_cost(slot: Slot, usage: dict | None) -> float:
    return usage_cost(slot, usage) if usage else 0.0


def settle(gov: Governance | None, pool: Pool, client: str | None, slot: Slot | None, usage: dict | None,
           reservation: str | None = None) -> float:
    """Add one finished call's real cost to its policy, slot and client counters (day and month),
    then drop its in-flight reservation (in that order: for a moment it counts twice, never zero times)."""
    usd = 0.0
    if gov is not None and slot is not None and usage and pool.budgets:  # no caps: no counter write
        usd = call_cost(slot, usage)
        if usd > 0:
            gov.spend.add(budgets.spend_keys(pool.policy, slot.name, client, gov.clock()), usd)
    if gov is not None and reservation is not None:
        gov.release(reservation)
    return usd


def budget_report(gov: Governance, pools: Sequence[Pool], client: str | None) -> dict[str, Any]:
    """/v1/budgets: every cap of every pool that concerns the caller, with spend and reset time."""
    now = gov.clock()
    out = []
    for pool in pools:
        for st in gov.caps(pool, client, now):
            out.append({"policy": pool.policy, **st.to_dict(now)})
        # caps on other named clients are not the caller's business
    return {"object": "list", "client": client, "now": now, "data": out, "state": gov.health()}
