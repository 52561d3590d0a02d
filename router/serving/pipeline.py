"""One proxied request, API-agnostic: resolve `model`, route (off the event loop), apply session
stickiness, plan failover; afterwards describe what happened (response `router` object, X-Router-*
headers, audit line).

`ProxyState` is built once per app and read-only afterwards, except for its thread-safe parts
(session store, audit log). A `Decision` belongs to one request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from router.audit.log import AuditLog
from router.audit.provenance import provenance
from router.audit.record import DecisionRecord, client_id, new_request_id
from router.errors import GovernanceError, InputError, UpstreamError
from router.model.encoder import content_text
from router.routing.costs import price_usd, usage_cost
from router.routing.pool import Slot
from router.routing.registry import RouterRegistry
from router.routing.router import ModelScore, PrefillRouter, RoutingResult, Scores
from router.serving import governance as gov_hooks
from router.serving import telemetry
from router.serving.batching import ScoreBatcher
from router.serving.sessions import SessionStore, sticky_choice
from router.upstream.backends import Attempt, Backend
from router.upstream.deadline import DEFAULT_DEADLINE_S, Deadline
from router.upstream.failover import SlotSkipped, chat_with_failover, failover_plan


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
    governance: gov_hooks.Governance | None = None  # spend counters, shared sessions, clock
    metrics: Any = None  # router.serving.metrics.Metrics of this app, or None
    tracing: Any = None  # router.serving.tracing.Tracing of this app, or None (opt-in)

    def __post_init__(self):
        self.batchers = {r.pool.policy: ScoreBatcher(r, observer=self.metrics.batch_observer(r.pool.policy)
                                                     if self.metrics is not None else None) for r in self.registry}
        if self.governance is None:
            from router.serving.state import SqliteSpend

            self.governance = gov_hooks.Governance(spend=SqliteSpend(), sessions=self.sessions)
        self.sessions = self.governance.sessions
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
    gate: gov_hooks.Gate | None = None  # what the sensitivity rules and budgets did
    budget_client: str | None = None  # the client as budgets count it (key name or pseudonym)
    deadline: Deadline = field(default_factory=lambda: Deadline(None))
    max_output: int | None = None  # the request's output cap (max_tokens), which bounds what a budget hold counts

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
        placeholder = parts_placeholder(messages)
        if placeholder:
            return placeholder
        raise exc


def parts_placeholder(messages: Any) -> str | None:
    """What an image-only (or file-only) request with no text anywhere is routed on: one word per
    part, e.g. "[image]". Both APIs accept such a request; the encoder cannot see the image, so the
    decision is the router's for that kind of content, and the audit line shows what it read."""
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"] if isinstance(messages, list) else []
    content = users[-1].get("content") if users else None
    if not isinstance(content, list):
        return None
    kinds = [str(p.get("type") or "part") for p in content if isinstance(p, dict) and p.get("type") not in ("text", None)]
    words = ["[image]" if "image" in k else "[file]" if k in ("file", "input_file", "document") else f"[{k}]"
             for k in kinds]
    return " ".join(words) or None


async def decide(state: ProxyState, model: str | None, messages: Any, *, tolerance: Any = None,
                 models: Sequence[str] | None = None, session: str | None = None, token: str | None = None,
                 stream: bool = False, scan: Any = None, fields: dict | None = None,
                 api: str | None = None, max_output: Any = None) -> Decision:
    """`scan`: the messages as they will go upstream (system prompt included), for the sensitivity
    rules; default `messages`. `fields`: the request's other fields that go upstream as they are
    (scanned too). `api`: the endpoint, for the audit line of a request the rules or budgets refuse.
    `max_output`: the request's output cap in tokens (max_tokens), if any: a budget hold never counts
    more output than the upstream may bill."""
    t0 = time.perf_counter()
    deadline = Deadline(state.deadline)  # from the request's arrival: the encoder wait counts too
    router, pinned = state.registry.resolve(model)
    args = router.check_args(tolerance, models)
    text = routing_text(router, messages)  # validates messages before any work
    client = client_id(token)
    key = (client, router.pool.policy, session) if session else None
    budget_client = state.governance.client_name(token)
    cap = output_cap(max_output)
    common = dict(request_id=new_request_id(), router=router, text=text, client=client, stream=stream, started=t0,
                  budget_client=budget_client, deadline=deadline, max_output=cap)
    try:
        g = gov_hooks.gate(state.governance, router.pool, scan_messages=messages if scan is None else scan,
                           pinned=pinned, models=models, client=budget_client, session_key=key, routing_text=text,
                           scan_fields=fields, reservation=common["request_id"], estimate=call_estimate(router, text, cap))
    except GovernanceError as exc:  # refused before any call: still one audit line (what rule, which client)
        _audit_refusal(state, Decision(result=None, pinned=pinned, plan=[], gate=getattr(exc, "gate", None),
                                       **common), api, exc)
        raise
    common["gate"] = g
    if pinned is not None:
        return Decision(result=None, pinned=pinned, plan=[pinned], **common)
    scores = await state.score(router, text)
    result = router.decide_checked(scores, g.narrow(router, args))
    result.governance = g.info()
    first, sticky = result.chosen, False
    if session:
        first, sticky = sticky_choice(result, state.sessions.get(key))
    try:
        plan = gov_hooks.filter_plan(g, failover_plan(result, first, router.pool))
    except GovernanceError as exc:
        _audit_refusal(state, Decision(result=result, pinned=None, plan=[], **common), api, exc)
        raise
    if g.reservation is not None:  # the dearest allowed slot was held; now the one that will answer
        state.governance.reserve(router.pool, budget_client, g.reservation,
                                 held_cost(result.score(plan[0].name), cap), slot=plan[0].name)
    return Decision(result=result, pinned=None, plan=plan, sticky=sticky,
                    session_key=key, routing_wall_ms=round((time.perf_counter() - t0) * 1e3, 2), **common)


def output_cap(value: Any) -> int | None:
    """A request's max_tokens as a hold's bound: a positive int, else no bound (the schemas validate
    the fields they know; a pass-through `max_completion_tokens` is only trusted when it is sane)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def call_estimate(router: PrefillRouter, text: str, max_output: int | None = None):
    """estimate(slot) -> USD of one call on `slot` for `text`, before the encoder pass (what a
    budget reservation holds): ~4 characters per token in, the slot's expected output length out,
    at most `max_output`."""
    from router.training.data import approx_tokens

    tokens = approx_tokens(text) if text else 0
    ck = router.checkpoint

    def estimate(slot: Slot) -> float:
        out = int(round(ck.output_tokens(slot.score_as)))
        out = out if max_output is None else min(out, max_output)
        return usage_cost(slot, {"prompt_tokens": tokens, "completion_tokens": out})

    return estimate


def held_cost(score: ModelScore, max_output: int | None) -> float:
    """What a routed request holds on the slot that will answer: its expected cost, with the output
    bounded by the request's max_tokens."""
    if max_output is None or score.expected_output_tokens <= max_output:
        return score.expected_cost_usd
    return price_usd(score, score.expected_input_tokens, max_output)


def hold_mover(state: ProxyState, d: Decision):
    """before_try(slot) for the failover loops: a request that fails over moves its budget hold to
    the slot it calls next (a dearer fallback is counted as dear while it runs), and reads the caps
    again for it: a hard cap or that slot's cap reached since routing skips it (SlotSkipped). The
    hold keeps its place in line, so requests placed after this one do not count against it.
    None: nothing held."""
    if d.gate is None or d.gate.reservation is None or d.result is None or not d.plan:
        return None
    held = {"slot": d.plan[0].name}

    def move(slot: Slot) -> None:
        if slot.name == held["slot"]:
            return
        _, why = gov_hooks.hold_on(state.governance, d.pool, d.budget_client, d.gate.reservation, slot,
                                   held_cost(d.result.score(slot.name), d.max_output))
        held["slot"] = slot.name
        if why:
            raise SlotSkipped(f"budget cap reached since routing: {why}")

    return move


def _audit_refusal(state: ProxyState, d: Decision, api: str | None, exc: GovernanceError) -> None:
    if d.gate is None:  # without the gate the query could not be masked: no line rather than a leak
        return
    write_audit(state, d, api=api, selected=None, attempts=[], usage=None, status="refused", error=str(exc))
    exc.audited = True  # type: ignore[attr-defined]


def outgoing(d: Decision, messages: Any) -> Any:
    """The messages as they may leave the router: with `redact` rules' spans masked."""
    return d.gate.outgoing if d.gate is not None and d.gate.outgoing is not None else messages


def remember(state: ProxyState, d: Decision, selected: Slot | None) -> None:
    if d.session_key is not None and selected is not None:
        state.sessions.set(d.session_key, selected.name)


def record_of(d: Decision, *, api: str | None = None, selected: Slot | None = None,
              attempts: Sequence[Attempt] = (), usage: dict | None = None, status: str = "ok",
              error: str | None = None, ended: float | None = None,
              extra: dict[str, Any] | None = None) -> DecisionRecord:
    """The request's DecisionRecord. `ended`: perf_counter() when it was answered (default: now).
    `extra`: more DecisionRecord fields (e.g. usage_estimated for a stream cut before its usage)."""
    end = time.perf_counter() if ended is None else ended
    pool = d.pool
    base = pool.baseline_slot
    gate = d.gate
    # Never the matched text: rule, message index and span count only; the query text masked.
    query_text = gate.audit_text if gate is not None and gate.audit_text is not None else d.text
    named = d.budget_client if d.budget_client and not d.budget_client.startswith("sha256:") else None
    return DecisionRecord.build(
        d.result, request_id=d.request_id, ts=d.ts, api=api, client=d.client, policy=pool.policy,
        query_text=query_text, query_mode=pool.audit_query_text, selected=selected, attempts=attempts, usage=usage,
        baseline_prices=base, baseline_output_tokens=d.router.checkpoint.output_tokens(base.score_as),
        latency_ms=(end - d.started) * 1e3, status=status, error=error,
        chosen=d.pinned.name if d.pinned else None, baseline=base.name, pinned=d.pinned is not None,
        session=d.session_key[2] if d.session_key else None, sticky=d.sticky, stream=d.stream,
        routing_wall_ms=d.routing_wall_ms, governance=(gate.info() or None) if gate is not None else None,
        client_name=named, **provenance(d.router), **(extra or {}))


def prompt_tokens(d: Decision) -> int:
    """The prompt's tokens as the proxy knows them, for usage the upstream did not report: the
    encoder's count of the routed text, or ~4 characters per token for a pinned request (which
    never went through the encoder; tokenizing here would wait on its lock on the event loop)."""
    from router.training.data import approx_tokens

    if d.result is not None:
        return int(d.result.input_tokens)
    return approx_tokens(d.text) if d.text else 0


def estimated_usage(d: Decision, text: str) -> dict[str, int]:
    """Usage for an answer whose upstream sent none (a server without `usage`): estimated, never $0."""
    from router.training.data import approx_tokens

    return {"prompt_tokens": prompt_tokens(d), "completion_tokens": approx_tokens(text) if text else 0}


def router_info(d: Decision, selected: Slot | None, attempts: Sequence[Attempt]) -> dict[str, Any]:
    """The `router` object that rides along in the response body."""
    return record_of(d, selected=selected, attempts=attempts).router_info()


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
    if d.gate is not None:
        h.update(d.gate.headers())
    return h


def audit_line(d: Decision, **kw: Any) -> dict[str, Any]:
    return record_of(d, **kw).to_line()


def settle(state: ProxyState, d: Decision, kw: dict) -> None:
    """Count a finished call's real cost against the budgets (once per request, with or without an audit log)."""
    gov_hooks.settle(state.governance, d.pool, d.budget_client, kw.get("selected"), kw.get("usage"),
                     reservation=d.gate.reservation if d.gate is not None else None)


def write_audit(state: ProxyState, d: Decision, _settled: bool = False, **kw: Any) -> None:
    if kw.get("status") == "started":  # a stream's placeholder line: counted, traced and billed at its end
        if state.audit is not None:
            state.audit.write(audit_line(d, **kw))
        return
    if not _settled:
        settle(state, d, kw)
    if state.audit is None and not telemetry.enabled(state):
        return
    kw["ended"] = time.perf_counter() if kw.get("ended") is None else kw["ended"]
    rec = audit_line(d, **kw)
    telemetry.request_done(state, d, rec, kw.get("attempts", ()), kw["ended"])
    if state.audit is not None:
        state.audit.write(rec)


def audit_after_response(state: ProxyState, d: Decision, **kw: Any):
    """A background task (for the response) that writes the audit line once the answer is out, so
    that the client does not wait for the record to be built and appended; the latency it records
    still ends now. None when there is no audit log nor telemetry. The call's spend is counted now."""
    settle(state, d, kw)
    if state.audit is None and not telemetry.enabled(state):
        return None
    from starlette.background import BackgroundTask

    ended = time.perf_counter()

    async def write() -> None:  # async: runs on the event loop, no thread hop for a short append
        write_audit(state, d, ended=ended, _settled=True, **kw)

    return BackgroundTask(write)


def fail(state: ProxyState, d: Decision, exc: UpstreamError, api: str) -> UpstreamError:
    """Audit a request that failed upstream; attach the decision so the error body can show it."""
    if d.gate is not None and d.gate.local_only:  # say why no cloud slot was tried
        exc.args = (f"{exc}; this request may only be answered by local slots ({d.gate.local_reason}), "
                    f"so no cloud slot was tried",)
    write_audit(state, d, api=api, selected=None, attempts=exc.attempts, usage=None, status="error", error=str(exc))
    exc.audited = True
    exc.router = router_info(d, None, exc.attempts)
    exc.headers = router_headers(d, None)
    return exc


def untranslatable(state: ProxyState, d: Decision, api: str, slot: Slot, attempts: Sequence[Attempt],
                   usage: dict | None, exc: Exception, settled: bool = False) -> UpstreamError:
    """An upstream answer that the API could not translate: a 502 for the client (not a 500: the
    answer was malformed), audited once as an error with the usage the upstream billed for it.
    `settled`: its spend was counted already (by `complete`)."""
    import logging

    logging.getLogger("router.serving").warning("request %s: the answer of %s could not be translated: %r",
                                                d.request_id, slot.name, exc)
    err = UpstreamError(f"{slot.name} ({slot.model}): its answer could not be translated for this API: "
                        f"{type(exc).__name__}: {exc}", status=502, attempts=list(attempts))
    write_audit(state, d, settled, api=api, selected=slot, attempts=attempts, usage=usage, status="error",
                error=str(err))
    err.audited = True
    err.router = router_info(d, slot, attempts)
    err.headers = router_headers(d, slot)
    return err


async def complete(state: ProxyState, d: Decision, messages: list[dict], api: str, request=None, **params):
    """Non-streaming call down the failover plan, remembered for session stickiness. Returns the
    slot, result, attempts and the audit task to attach to the response (see audit_after_response).
    A client that hangs up cancels the call (ClientClosed, audited by the caller's audit_on_error)."""
    from router.serving.guard import unless_disconnected

    try:
        slot, res, attempts = await unless_disconnected(
            request, chat_with_failover(state.backend, d.plan, messages, deadline=d.deadline,
                                        before_try=hold_mover(state, d), **params))
    except UpstreamError as exc:
        raise fail(state, d, exc, api) from None
    remember(state, d, slot)
    extra = None
    if not res.usage_reported:
        # the client's body carries the same estimate (Anthropic's usage is required; OpenAI SDKs read it)
        res.usage, extra = estimated_usage(d, res.text), {"usage_estimated": True}
        res.raw = {**res.raw, "usage": {**res.usage, "total_tokens": sum(res.usage.values())}}
    audit = audit_after_response(state, d, api=api, selected=slot, attempts=attempts, usage=res.usage, extra=extra)
    return slot, res, attempts, audit
