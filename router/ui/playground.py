"""What the playground does, without the UI: per-session state, routing, sending, sweeps.

The Gradio handlers in `ui.py` unpack widgets, call one function here and format the result.
A `Session` lives in `gr.State` (one per browser tab, never shared); it caches the current
query's `Scores` so that moving the tolerance slider or toggling models re-decides without a
new encoder pass, and keeps the session's decision records (the audit-log format).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from router.errors import GovernanceError, InputError, MissingKeyError, UpstreamError
from router.paths import ASSETS_DIR
from router.routing import costs
from router.routing import sweep as tolerance_sweep
from router.routing.router import PrefillRouter, RoutingResult, Scores

SAMPLES_PATH = ASSETS_DIR / "samples.json"
MAX_SWEEP_QUESTIONS = 5000
PLAYGROUND_CLIENT = "playground"  # what client budgets call the playground's own calls


@dataclass
class Session:
    policy: str | None = None
    query: str = ""
    scores: Scores | None = None
    result: RoutingResult | None = None
    request_id: str | None = None
    sent: bool = False  # the current record already carries an answer: a new decision gets a new id
    sending: str | None = None  # request_id of the answer streaming now: a re-decision meanwhile is a new record
    records: list[dict[str, Any]] = field(default_factory=list)
    sweep: tolerance_sweep.SweepResult | None = None
    gate: Any = None  # what the pool's sensitivity rules (and budgets) did to the current query
    sweep_texts: list[str] | None = None  # the set the last sweep ran on: a pool design re-sweeps it
    design: Any = None  # a router.ui.pool_design Pool designed in this session (never written anywhere)
    design_base: str | None = None  # the policy the design started from

    @property
    def audit_query(self) -> str:
        """The query as the audit record may hold it: matched spans masked."""
        if self.gate is not None and self.gate.audit_text is not None:
            return self.gate.audit_text
        return self.query

    def reset(self) -> None:
        """Forget the session's records; the decision on screen stays (and is re-recorded if used)."""
        self.records.clear()


def _new_id() -> str:
    from router.audit.record import new_request_id

    return new_request_id()


# ---- routing ---------------------------------------------------------------------------------

def route(router: PrefillRouter, session: Session, query: str, tolerance: float,
          enabled: Sequence[str] | None, governance=None) -> RoutingResult:
    """A new query: the sensitivity rules and budgets (which may refuse it or restrict the pool), one
    encoder pass, then the decision; starts a new record."""
    from router.serving.governance import gate

    enabled = _check_enabled(router, enabled)
    # Nothing is written to the session until the gate and the encoder pass succeed: a refused or
    # failed query must leave the previous query together with its own restriction, never the old
    # query without it (a re-decision or a send would then treat sensitive text as unrestricted).
    g = gate(governance, router.pool, scan_messages=query, pinned=None, models=enabled, client=PLAYGROUND_CLIENT,
             session_key=None, routing_text=query)
    scores = router.score(query)
    session.gate, session.result = g, None
    session.policy, session.query, session.scores = router.pool.policy, query, scores
    session.request_id, session.sent = _new_id(), False
    return _decide(router, session, tolerance, enabled)


def redecide(router: PrefillRouter, session: Session, tolerance: float,
             enabled: Sequence[str] | None) -> RoutingResult | None:
    """Same query, new tolerance or model set: no encoder pass. None when nothing was routed yet."""
    if session.scores is None or session.policy != router.pool.policy or len(session.scores.p) != len(router.pool.models):
        return None
    enabled = _check_enabled(router, enabled)
    if session.sent or session.request_id is None or session.sending == session.request_id:
        session.request_id, session.sent = _new_id(), False
    return _decide(router, session, tolerance, enabled)


def _check_enabled(router: PrefillRouter, enabled: Sequence[str] | None) -> list[str]:
    names = router.pool.names
    if enabled is None:
        return [s.name for s in router.pool.models if s.enabled]
    unknown = [n for n in enabled if n not in names]
    if unknown:
        raise InputError(f"models: {', '.join(map(repr, unknown))} not in pool {router.pool.policy!r}; "
                         f"its slots: {', '.join(names)}")
    enabled = [n for n in names if n in set(enabled)]
    if not enabled:
        raise InputError("no model is enabled: switch on at least one model of the pool")
    return enabled


def _decide(router: PrefillRouter, session: Session, tolerance: float, enabled: list[str]) -> RoutingResult:
    g = session.gate
    if g is not None and g.models is not None:  # the rules' restriction holds for every re-decision too
        enabled = [n for n in enabled if n in g.models]
        if not enabled:
            raise InputError(f"only these slots may answer this query: {', '.join(g.models)} "
                             f"({g.local_reason or g.budget.reason()}); switch one of them on")
    result = router.decide(session.scores, tolerance, enabled)
    result.governance = g.info() if g is not None else {}
    session.result = result
    _upsert(session, decision_record(result, session.audit_query, session.request_id,
                                     router.pool.audit_query_text, router=router))
    return result


def _upsert(session: Session, record: dict[str, Any]) -> None:
    """The record replaces the one with its request_id (a re-decision, or a finished call where its
    decision was), else is appended (a new decision, or a call whose records were reset meanwhile)."""
    for i in range(len(session.records) - 1, -1, -1):
        if session.records[i]["request_id"] == record["request_id"]:
            session.records[i] = record
            return
    session.records.append(record)


def decision_record(result: RoutingResult, query: str, request_id: str, query_mode: str = "store",
                    ts: float | None = None, ans: Answer | None = None, attempts: Sequence = (),
                    router: PrefillRouter | None = None) -> dict[str, Any]:
    """One decision as an audit line (router/audit/record.py), tagged api="playground"; with
    `router`, the provenance fields that make it replayable (router/audit/provenance.py).

    `cost_basis` says whether `actual_cost_usd` came from real usage; without it the routed cost
    is the router's estimate (`expected_cost_usd`).
    """
    from router.audit.record import DecisionRecord

    routing_ms = result.timings_ms.get("total_ms") or 0.0
    kw: dict[str, Any] = {"latency_ms": routing_ms}
    if ans is not None:
        kw = dict(selected=None if ans.error else result.score(ans.slot), attempts=attempts, usage=ans.usage,
                  latency_ms=routing_ms + (ans.latency_ms or 0.0), status="error" if ans.error else "ok",
                  error=ans.error, stream=True)
    if router is not None:
        from router.audit.provenance import provenance

        kw.update(provenance(router))
    return DecisionRecord.build(result, request_id=request_id, ts=ts, api="playground", query_text=query,
                                query_mode=query_mode, **kw).to_line()


# ---- sending ---------------------------------------------------------------------------------

@dataclass
class Answer:
    slot: str
    display_name: str
    api_base: str
    text: str = ""
    usage: dict[str, int] | None = None
    cost_usd: float | None = None
    error: str | None = None
    missing: str | None = None  # env var or URL the user has to provide
    latency_ms: float | None = None
    done: bool = False
    request_id: str | None = None  # the decision this answers (the session may have moved on since)
    question: str = ""  # what was sent (masked where the rules mask it): what a review judges
    local_only: bool = False  # the rules kept this query on-prem: so must its review
    record: dict[str, Any] | None = None  # the finished call's decision record (what the audit log gets)


async def send(router: PrefillRouter, session: Session, client, max_tokens: int | None = None,
               governance=None) -> AsyncIterator[Answer]:
    """Stream the current query to the chosen model; yields the growing `Answer`, then the final one.
    A query the rules keep on-prem is never sent to a cloud slot; its spend counts against the budgets."""
    from router.serving.governance import hold, settle
    from router.upstream.backends import Attempt, Backend, chunk_text, resolve_key

    if session.result is None:
        raise InputError("route a query first")
    # The decision being sent, fixed now: the slider, the toggles or a new query may change the
    # session while the answer streams, and the record must describe the call that was made.
    result, request_id, query, audit_query, g = (session.result, session.request_id, session.query,
                                                 session.audit_query, session.gate)
    slot = router.pool.slot(result.chosen)
    outgoing = g.outgoing if g is not None and g.outgoing is not None else query
    ans = Answer(slot.name, slot.label, slot.api_base, request_id=request_id, question=outgoing,
                 local_only=g is not None and g.local_only)
    if g is not None and g.local_only and not slot.local:  # fail closed, whatever the screen says
        raise GovernanceError(f"{slot.name} is a cloud slot and this query may only be answered on-prem "
                              f"({g.local_reason})", status=403, code="sensitive_data_local_only")
    # Caps may have been reached since the route (or by a send in another tab): read them again and
    # hold this call's estimate while it streams, as the proxy does.
    held = hold(governance, router.pool, PLAYGROUND_CLIENT, request_id, slot, result.score(slot.name).expected_cost_usd)
    record = record_of(session, request_id)
    if record is None:
        record = decision_record(result, audit_query, request_id, router.pool.audit_query_text, router=router)
        _upsert(session, record)
    attempts: list[Attempt] = []
    t0 = time.perf_counter()
    session.sending = request_id
    try:
        resolve_key(slot)
        backend = Backend(client, retries=1, backoff=0.2, timeout=120)
        messages = [{"role": "user", "content": outgoing}]
        async for chunk in backend.stream(slot, messages, max_tokens=max_tokens, attempts=attempts):
            ans.text += chunk_text(chunk)
            if chunk.get("usage"):
                ans.usage = costs.normalize_usage(chunk["usage"])
            yield ans
    except MissingKeyError as exc:
        ans.error, ans.missing = str(exc), exc.env_var
    except UpstreamError as exc:
        ans.error = f"{exc} (endpoint {slot.api_base})"
        if exc.status is None:
            ans.missing = slot.api_base
    except BaseException:  # the page went away mid-stream (generator closed, task cancelled): let go
        if held:
            governance.release(request_id)
        raise
    finally:
        if session.sending == request_id:
            session.sending = None
    ans.latency_ms = round((time.perf_counter() - t0) * 1e3, 1)
    ans.done = True
    if ans.usage is not None:
        ans.cost_usd = costs.usage_cost(slot, ans.usage)
    settle(governance, router.pool, PLAYGROUND_CLIENT, slot, ans.usage, reservation=request_id if held else None)
    final = decision_record(result, audit_query, request_id, router.pool.audit_query_text, ts=record["ts"], ans=ans,
                            attempts=attempts, router=router)
    ans.record = final
    _upsert(session, final)
    if session.request_id == request_id:
        session.sent = ans.error is None
    yield ans


def record_of(session: Session, request_id: str | None) -> dict[str, Any] | None:
    return next((r for r in reversed(session.records) if r["request_id"] == request_id), None)


async def review_answer(router: PrefillRouter, session: Session, client, ans: Answer, own_urls=(),
                        max_tokens: int = 300):
    """Auto review of a finished answer by the pool's judge slot; stored on the session's record."""
    from router.ui.review import review
    from router.upstream.backends import Backend

    if ans.error is not None or not ans.done:
        return None
    rv = await review(Backend(client, retries=1, backoff=0.2, timeout=120), router.pool, ans.question, ans.text,
                      local_only=ans.local_only, own_urls=own_urls, max_tokens=max_tokens)
    record = record_of(session, ans.request_id)
    if record is not None:
        record["review"] = rv.to_dict()
    return rv


def export_jsonl(records: Sequence[dict[str, Any]]) -> str:
    """Write the session's records to a fresh temp .jsonl file (what the Audit tab downloads)."""
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", prefix="router-decisions-", delete=False,
                                     encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    return f.name


# ---- question sets (sweep) -------------------------------------------------------------------

def load_samples(path: Path = SAMPLES_PATH) -> list[dict[str, str]]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return [{"label": s["label"], "question": s["question"]} for s in data["samples"]]


def load_questions(path: str | Path) -> list[str]:
    """An uploaded question file (router/training/questions.py: .txt, .jsonl or .csv)."""
    from router.training.questions import read_questions

    return [q.question for q in read_questions(path, limit=MAX_SWEEP_QUESTIONS)]


def run_sweep(router: PrefillRouter, texts: Sequence[str], tolerances: Sequence[float],
              enabled: Sequence[str] | None) -> tolerance_sweep.SweepResult:
    """Score the set once (one batched encoder pass), then apply the rule at every tolerance."""
    enabled = _check_enabled(router, enabled)
    P = router.score_batch(list(texts), progress=len(texts) > 64)
    _, counts = router.encoder.tokenize(list(texts))
    C = [router.expected_costs(n) for n in counts]
    allowed = router.allowed_mask(enabled)
    return tolerance_sweep.sweep(P, C, tolerances, router.pool.names, allowed, router.pool.baseline_slot.name)
