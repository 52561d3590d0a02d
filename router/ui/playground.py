"""What the playground does, without the UI: per-session state, routing, sending, sweeps.

The Gradio handlers in `ui.py` unpack widgets, call one function here and format the result.
A `Session` lives in `gr.State` (one per browser tab, never shared); it caches the current
query's `Scores` so that moving the tolerance slider or toggling models re-decides without a
new encoder pass, and keeps the session's decision records (the audit-log format).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

from router.routing import costs
from router.routing.router import PrefillRouter, RoutingResult, Scores
from router.paths import ASSETS_DIR
from router.errors import InputError, MissingKeyError, UpstreamError
from router.jsonl import parse_line

SAMPLES_PATH = ASSETS_DIR / "samples.json"
MAX_SWEEP_QUESTIONS = 5000


@dataclass
class Session:
    policy: str | None = None
    query: str = ""
    scores: Scores | None = None
    result: RoutingResult | None = None
    request_id: str | None = None
    sent: bool = False  # the current record already carries an answer: a new decision gets a new id
    records: list[dict[str, Any]] = field(default_factory=list)
    sweep: costs.SweepResult | None = None

    def reset(self) -> None:
        """Forget the session's records; the decision on screen stays (and is re-recorded if used)."""
        self.records.clear()


def _new_id() -> str:
    from router.audit.log import new_request_id

    return new_request_id()


# ---- routing ---------------------------------------------------------------------------------

def route(router: PrefillRouter, session: Session, query: str, tolerance: float,
          enabled: Sequence[str] | None) -> RoutingResult:
    """A new query: one encoder pass, then the decision; starts a new record."""
    enabled = _check_enabled(router, enabled)
    scores = router.score(query)
    session.policy, session.query, session.scores = router.pool.policy, query, scores
    session.request_id, session.sent = _new_id(), False
    return _decide(router, session, tolerance, enabled)


def redecide(router: PrefillRouter, session: Session, tolerance: float,
             enabled: Sequence[str] | None) -> RoutingResult | None:
    """Same query, new tolerance or model set: no encoder pass. None when nothing was routed yet."""
    if session.scores is None or session.policy != router.pool.policy:
        return None
    enabled = _check_enabled(router, enabled)
    if session.sent or session.request_id is None:
        session.request_id, session.sent = _new_id(), False
    return _decide(router, session, tolerance, enabled)


def _check_enabled(router: PrefillRouter, enabled: Sequence[str] | None) -> list[str]:
    names = router.pool.names
    if enabled is None:
        return [s.name for s in router.pool.models if s.enabled]
    enabled = [n for n in names if n in set(enabled)]
    if not enabled:
        raise InputError("no model is enabled: switch on at least one model of the pool")
    return enabled


def _decide(router: PrefillRouter, session: Session, tolerance: float, enabled: list[str]) -> RoutingResult:
    result = router.decide(session.scores, tolerance, enabled)
    session.result = result
    _upsert(session, decision_record(result, session.query, session.request_id,
                                     router.pool.audit_query_text))
    return result


def _upsert(session: Session, record: dict[str, Any]) -> None:
    if session.records and session.records[-1]["request_id"] == record["request_id"]:
        session.records[-1] = record
    else:
        session.records.append(record)


def decision_record(result: RoutingResult, query: str, request_id: str, query_mode: str = "store",
                    ts: float | None = None, ans: "Answer | None" = None, attempts: Sequence = ()) -> dict[str, Any]:
    """One decision in the proxy's audit-log format (`router.audit.decision_record`), tagged api="playground".

    `cost_basis` says whether `actual_cost_usd` came from real usage; without it the routed cost
    is the router's estimate (`expected_cost_usd`).
    """
    from router.audit.log import decision_record as audit_record

    routing_ms = result.timings_ms.get("total_ms") or 0.0
    kw: dict[str, Any] = {"latency_ms": routing_ms}
    if ans is not None:
        kw = dict(selected=None if ans.error else ans.slot, model=None if ans.error else result.chosen_model,
                  attempts=attempts, usage=ans.usage, latency_ms=routing_ms + (ans.latency_ms or 0.0),
                  status="error" if ans.error else "ok", error=ans.error, stream=True)
    rec = audit_record(result, request_id=request_id, ts=ts, api="playground", query_text=query,
                       query_mode=query_mode, **kw)
    rec["cost_basis"] = "actual" if rec.get("actual_cost_usd") is not None else "estimate"
    return rec


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


async def send(router: PrefillRouter, session: Session, client, max_tokens: int | None = None,
               ) -> AsyncIterator[Answer]:
    """Stream the current query to the chosen model; yields the growing `Answer`, then the final one."""
    from router.upstream.backends import Attempt, Backend, chunk_text, resolve_key

    if session.result is None:
        raise InputError("route a query first")
    slot = router.pool.slot(session.result.chosen)
    ans = Answer(slot.name, slot.label, slot.api_base)
    if not session.records or session.records[-1]["request_id"] != session.request_id:
        _upsert(session, decision_record(session.result, session.query, session.request_id,
                                         router.pool.audit_query_text))
    record = session.records[-1]
    attempts: list[Attempt] = []
    t0 = time.perf_counter()
    try:
        resolve_key(slot)
        backend = Backend(client, retries=1, backoff=0.2, timeout=120)
        messages = [{"role": "user", "content": session.query}]
        async for chunk in backend.stream(slot, messages, max_tokens=max_tokens, attempts=attempts):
            ans.text += chunk_text(chunk)
            if chunk.get("usage"):
                u = chunk["usage"]
                ans.usage = {"prompt_tokens": int(u.get("prompt_tokens") or 0),
                             "completion_tokens": int(u.get("completion_tokens") or 0)}
            yield ans
    except MissingKeyError as exc:
        ans.error, ans.missing = str(exc), exc.env_var
    except UpstreamError as exc:
        ans.error = f"{exc} (endpoint {slot.api_base})"
        if exc.status is None:
            ans.missing = slot.api_base
    ans.latency_ms = round((time.perf_counter() - t0) * 1e3, 1)
    ans.done = True
    if ans.usage is not None:
        ans.cost_usd = costs.usage_cost(slot, ans.usage)
    session.records[-1] = decision_record(session.result, session.query, session.request_id,
                                          router.pool.audit_query_text, ts=record["ts"], ans=ans, attempts=attempts)
    session.sent = ans.error is None
    yield ans


async def review_answer(router: PrefillRouter, session: Session, client, ans: Answer, max_tokens: int = 300):
    """Auto review of a finished answer by the pool's judge slot; stored on the session's record."""
    from router.upstream.backends import Backend
    from router.ui.review import review

    if ans.error is not None or not ans.done:
        return None
    rv = await review(Backend(client, retries=1, backoff=0.2, timeout=120), router.pool, session.query, ans.text,
                      max_tokens=max_tokens)
    if session.records and session.records[-1]["request_id"] == session.request_id:
        session.records[-1]["review"] = rv.to_dict()
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
    """Questions from a .txt (one per line) or .jsonl (strings, or objects with question/prompt/messages)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".txt", ".jsonl"):
        raise InputError(f"{path.name}: expected a .txt (one question per line) or .jsonl file")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    out: list[str] = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        out.append(line.strip() if suffix == ".txt" else _jsonl_question(line, f"{path.name}:{i}"))
    if not out:
        raise InputError(f"{path.name}: no questions in the file")
    if len(out) > MAX_SWEEP_QUESTIONS:
        raise InputError(f"{path.name}: {len(out)} questions; the playground sweeps at most {MAX_SWEEP_QUESTIONS}")
    return out


def _jsonl_question(line: str, where: str) -> str:
    from router.model.encoder import messages_to_text

    obj = parse_line(line, where, objects_only=False)
    if isinstance(obj, str) and obj.strip():
        return obj
    if isinstance(obj, dict):
        for key in ("question", "prompt", "query", "text"):
            if isinstance(obj.get(key), str) and obj[key].strip():
                return obj[key]
        if isinstance(obj.get("messages"), list) and obj["messages"]:
            return messages_to_text(obj["messages"])
    raise InputError(f"{where}: expected a string or an object with a non-empty "
                     "'question', 'prompt', 'query', 'text' or 'messages' field")


def run_sweep(router: PrefillRouter, texts: Sequence[str], tolerances: Sequence[float],
              enabled: Sequence[str] | None) -> costs.SweepResult:
    """Score the set once (one batched encoder pass), then apply the rule at every tolerance."""
    enabled = _check_enabled(router, enabled)
    P = router.score_batch(list(texts), progress=len(texts) > 64)
    _, counts = router.encoder.tokenize(list(texts))
    C = [router.expected_costs(n) for n in counts]
    allowed = router.allowed_mask(enabled)
    return costs.sweep(P, C, tolerances, router.pool.names, allowed, router.pool.baseline_slot.name)
