"""One proxied request, API-agnostic: resolve `model`, route (off the event loop), apply session
stickiness, plan failover; afterwards describe what happened (response `router` object, X-Router-*
headers, audit line).

`ProxyState` is built once per app and read-only afterwards, except for its thread-safe parts
(session store, audit log). A `Decision` belongs to one request.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from router.audit.log import AuditLog, client_id, decision_record, new_request_id
from router.upstream.backends import Attempt, Backend
from router.serving.batching import ScoreBatcher
from router.routing.router import PrefillRouter, RoutingResult, Scores, check_tolerance
from router.routing.costs import price_usd, usage_cost
from router.model.encoder import content_text
from router.errors import InputError
from router.upstream.deadline import DEFAULT_DEADLINE_S, Deadline
from router.upstream.failover import failover_plan
from router.routing.pool import Slot
from router.routing.registry import RouterRegistry
from router.serving.sessions import SessionStore, sticky_choice


@dataclass
class ProxyState:
    registry: RouterRegistry
    api_keys: tuple[str, ...] = ()
    audit: AuditLog | None = None
    sessions: SessionStore = field(default_factory=SessionStore)
    backend: Backend | None = None  # set in the app's lifespan, when the shared client exists
    retries: int = 2
    backoff: float = 0.25
    timeout: float = 120.0
    deadline: float = DEFAULT_DEADLINE_S  # total seconds per request, across retries and failover
    batchers: dict[str, ScoreBatcher] = field(default_factory=dict)

    def __post_init__(self):
        self.batchers = {r.pool.policy: ScoreBatcher(r) for r in self.registry}

    async def score(self, router: PrefillRouter, text: str) -> Scores:
        """The encoder pass, on the torch thread (off the event loop), batched with whatever else is waiting."""
        return await asyncio.wrap_future(self.batchers[router.pool.policy].submit(text))


@dataclass
class Decision:
    request_id: str
    router: PrefillRouter
    text: str
    result: RoutingResult | None
    pinned: Slot | None
    plan: list[Slot]
    sticky: bool = False
    session_key: tuple | None = None
    client: str | None = None
    stream: bool = False
    started: float = field(default_factory=time.perf_counter)
    ts: float = field(default_factory=time.time)
    routing_wall_ms: float | None = None  # arrival to decision: the forward plus any wait for the encoder
    deadline: Deadline = field(default_factory=lambda: Deadline(None))

    @property
    def pool(self):
        return self.router.pool


def routing_text(router: PrefillRouter, messages: Any) -> str:
    """The text the encoder reads. An agent turn whose last user message has no text (an empty tool
    result, only an image) is routed on the conversation before it instead of being refused."""
    try:
        return router.query_text(messages)
    except InputError as exc:
        msgs = list(messages) if isinstance(messages, list) else []
        while msgs:
            users = [i for i, m in enumerate(msgs) if isinstance(m, dict) and m.get("role") == "user"]
            if not users or content_text(msgs[users[-1]].get("content")).strip():
                break
            msgs = msgs[: users[-1]]
            try:
                return router.query_text(msgs)
            except InputError:
                continue
        raise exc


async def decide(state: ProxyState, model: str | None, messages: Any, *, tolerance: Any = None,
                 models: Sequence[str] | None = None, session: str | None = None, token: str | None = None,
                 stream: bool = False) -> Decision:
    t0 = time.perf_counter()
    deadline = Deadline(state.deadline)  # from the request's arrival: the encoder wait counts too
    router, pinned = state.registry.resolve(model)
    if tolerance is not None:
        tolerance = check_tolerance(tolerance)
    text = routing_text(router, messages)  # validates messages before any work
    client = client_id(token)
    common = dict(request_id=new_request_id(), router=router, text=text, client=client, stream=stream, started=t0,
                  deadline=deadline)
    if pinned is not None:
        return Decision(result=None, pinned=pinned, plan=[pinned], **common)
    router.allowed_mask(models)
    scores = await state.score(router, text)
    result = router.decide(scores, tolerance, models)
    first, sticky, key = result.chosen, False, None
    if session:
        key = (client, router.pool.policy, session)
        first, sticky = sticky_choice(result, state.sessions.get(key))
    return Decision(result=result, pinned=None, plan=failover_plan(result, first, router.pool), sticky=sticky,
                    session_key=key, routing_wall_ms=round((time.perf_counter() - t0) * 1e3, 2), **common)


def remember(state: ProxyState, d: Decision, selected: Slot | None) -> None:
    if d.session_key is not None and selected is not None:
        state.sessions.set(d.session_key, selected.name)


def router_info(d: Decision, selected: Slot | None, attempts: Sequence[Attempt]) -> dict[str, Any]:
    """The `router` object that rides along in the response body."""
    info: dict[str, Any] = {"request_id": d.request_id, "policy": d.pool.policy, "pinned": d.pinned is not None,
                            "selected": selected.name if selected else None,
                            "model": selected.model if selected else None}
    r = d.result
    if r is not None:
        info.update({"tolerance": r.tolerance, "chosen": r.chosen, "best": r.best, "p_max": r.p_max,
                     "threshold": r.threshold, "candidates": list(r.candidates), "sticky": d.sticky,
                     "failover": selected is not None and selected.name != d.plan[0].name,
                     "probabilities": r.probabilities, "expected_cost_usd": r.expected_cost_usd,
                     "input_tokens": r.input_tokens,
                     "timings_ms": {**r.timings_ms, "routing_wall_ms": d.routing_wall_ms}})
    info["attempts"] = [a.to_dict() for a in attempts]
    return info


def router_headers(d: Decision, selected: Slot | None) -> dict[str, str]:
    h = {"X-Router-Request-Id": d.request_id, "X-Router-Policy": d.pool.policy}
    if selected is not None:
        h["X-Router-Selected"] = selected.name
        h["X-Router-Model"] = selected.model
    if d.pinned is not None:
        h["X-Router-Pinned"] = "true"
    if d.result is not None:
        h["X-Router-Tolerance"] = f"{d.result.tolerance:g}"
        h["X-Router-P-Max"] = f"{d.result.p_max:.6f}"
        h["X-Router-Threshold"] = f"{d.result.threshold:.6f}"
    return h


def audit_line(d: Decision, *, api: str, selected: Slot | None, attempts: Sequence[Attempt],
               usage: dict | None, status: str = "ok", error: str | None = None,
               ended: float | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """`ended`: perf_counter() when the request was answered (default: now)."""
    end = time.perf_counter() if ended is None else ended
    pool = d.pool
    actual = baseline = None
    if d.result is None:  # pinned: no RoutingResult, so price the slot and the baseline directly
        if usage and selected is not None:
            actual = usage_cost(selected, usage)
        base = pool.baseline_slot
        if usage:
            baseline = price_usd(int(usage.get("prompt_tokens") or 0), d.router.checkpoint.output_tokens(base.score_as),
                                 base.cost_per_m_input_tokens, base.cost_per_m_output_tokens)
    extra = {"routing_wall_ms": d.routing_wall_ms, **(extra or {})}
    if d.result is None:
        extra.update(chosen=d.pinned.name if d.pinned else None, baseline=pool.baseline_slot.name)
    return decision_record(
        d.result, request_id=d.request_id, ts=d.ts, api=api, client=d.client, policy=pool.policy,
        query_text=d.text, query_mode=pool.audit_query_text, selected=selected.name if selected else None,
        model=selected.model if selected else None, attempts=attempts, usage=usage, actual_cost_usd=actual,
        baseline_cost_usd=baseline, latency_ms=(end - d.started) * 1e3, status=status, error=error,
        pinned=d.pinned is not None, session=d.session_key[2] if d.session_key else None, sticky=d.sticky,
        stream=d.stream, **extra)


def write_audit(state: ProxyState, d: Decision, **kw: Any) -> None:
    if state.audit is not None:
        state.audit.write(audit_line(d, **kw))


def audit_after_response(state: ProxyState, d: Decision, **kw: Any):
    """A background task (for the response) that writes the audit line once the answer is out, so
    that the client does not wait for the record to be built and appended; the latency it records
    still ends now. None when there is no audit log."""
    if state.audit is None:
        return None
    from starlette.background import BackgroundTask

    ended = time.perf_counter()

    async def write() -> None:  # async: runs on the event loop, no thread hop for a short append
        write_audit(state, d, ended=ended, **kw)

    return BackgroundTask(write)
