"""The decision log: one JSON line per request, appended and flushed, so auditors can ask "why this model?".

`decision_record(...)` builds a line from a RoutingResult plus what happened at call time; the
proxy writes it with `AuditLog.write`, and the playground reuses it for its audit download so both
share one format. A line never holds a key: the client is a hash of its bearer token, and the query
text is stored, hashed or dropped according to the pool's `audit_query_text`.

Fields: request_id, time (ISO 8601 UTC), ts (epoch seconds), api, client, policy, tolerance, pinned,
session, sticky, query | query_sha256, input_tokens, models [{name, p, expected_cost_usd, candidate,
allowed}], p_max, threshold, candidates, best, chosen (the router's pick), expected_cost_usd,
baseline, baseline_cost_usd, selected (the slot that answered), model (its destination id),
attempts [{slot, model, status, latency_ms, error}], usage {prompt_tokens, completion_tokens},
actual_cost_usd, routing_ms (encoder + head + selection), routing_wall_ms (proxy only: from the
request's arrival to its decision, so it includes waiting for the encoder under load), latency_ms,
stream, status ("ok" | "error" | "client_closed"; "started" on the line a stream writes when it
opens, which readers join with its final line, or report as "interrupted" when the process died
mid-stream), error, usage_estimated (usage counted by the proxy when the upstream never sent it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from router.routing.router import RoutingResult
from router.routing.costs import baseline_cost, usage_cost
from router.errors import InputError
from router.jsonl import parse_line
from router.audit.tail import repair_fd

log = logging.getLogger("router.audit")

QUERY_MODES = ("store", "hash", "drop")


def new_request_id() -> str:
    return "req_" + uuid.uuid4().hex[:24]


def client_id(token: str | None) -> str | None:
    """A stable pseudonym for a bearer token: enough to tell clients apart, useless as a credential."""
    if not token:
        return None
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


def query_fields(text: str | None, mode: str) -> dict[str, Any]:
    if mode not in QUERY_MODES:
        raise InputError(f"audit_query_text must be one of {', '.join(QUERY_MODES)}, got {mode!r}")
    if text is None or mode == "drop":
        return {}
    if mode == "hash":
        return {"query_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}
    return {"query": text}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def decision_record(result: RoutingResult | None = None, *, request_id: str | None = None,
                    ts: float | None = None, api: str | None = None, client: str | None = None,
                    policy: str | None = None, tolerance: float | None = None, query_text: str | None = None,
                    query_mode: str = "store", selected: str | None = None, model: str | None = None,
                    attempts: Iterable[Any] = (), usage: Mapping[str, Any] | None = None,
                    actual_cost_usd: float | None = None, baseline_cost_usd: float | None = None,
                    latency_ms: float | None = None, status: str = "ok", error: str | None = None,
                    **extra: Any) -> dict[str, Any]:
    """One audit line as a dict. With a RoutingResult and real `usage` the costs are filled in.

    Costs follow router/costs.py: the selected model's price × real usage; the baseline (never
    called) at the real prompt tokens plus its expected output tokens.
    """
    ts = time.time() if ts is None else ts
    rec: dict[str, Any] = {"request_id": request_id or new_request_id(), "time": _iso(ts), "ts": round(ts, 3),
                           "api": api, "client": client}
    rec["policy"] = policy or (result.policy if result else None)
    rec["tolerance"] = tolerance if tolerance is not None else (result.tolerance if result else None)
    rec.update(query_fields(query_text, query_mode))
    if result is not None:
        rec.update({
            "input_tokens": result.input_tokens,
            "models": [{"name": m.name, "p": m.p, "expected_cost_usd": m.expected_cost_usd,
                        "candidate": m.candidate, "allowed": m.allowed} for m in result.models],
            "p_max": result.p_max, "threshold": result.threshold, "candidates": list(result.candidates),
            "best": result.best, "chosen": result.chosen, "expected_cost_usd": result.expected_cost_usd,
            "baseline": result.baseline, "routing_ms": result.timings_ms.get("total_ms"),
        })
    rec["selected"] = selected
    rec["model"] = model
    rec["attempts"] = [a.to_dict() if hasattr(a, "to_dict") else dict(a) for a in attempts]
    rec["usage"] = ({"prompt_tokens": int(usage.get("prompt_tokens") or 0),
                     "completion_tokens": int(usage.get("completion_tokens") or 0)} if usage else None)
    if result is not None and usage and selected:
        sel = next((m for m in result.models if m.name == selected), None)
        if sel is not None and actual_cost_usd is None:
            actual_cost_usd = usage_cost(sel, rec["usage"])
    if result is not None and baseline_cost_usd is None:
        baseline_cost_usd = baseline_cost(result.score(result.baseline), rec["usage"])
    rec["actual_cost_usd"] = actual_cost_usd
    rec["baseline_cost_usd"] = baseline_cost_usd
    rec["latency_ms"] = None if latency_ms is None else round(float(latency_ms), 2)
    rec["status"] = status
    rec["error"] = error
    for k, v in extra.items():
        rec.setdefault(k, v)
    return rec


class AuditLog:
    """Append-only JSONL; one lock per log so lines from concurrent requests never interleave."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        # Touch now so that a bad path fails at startup, not on the first request.
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8"):
                pass
        except OSError as exc:
            raise InputError(f"cannot write the audit log {self.path}: {exc.strerror or exc}; "
                             f"pick a writable path (--audit-log / ROUTER_AUDIT_LOG)") from None

    def write(self, record: Mapping[str, Any]) -> None:
        data = encode_line(record)
        with self._lock:
            # One write() per line on an O_APPEND descriptor: whole lines even with other writers; and
            # a torn tail left by a killed process is ended first, so this line is not glued onto it.
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                repair_fd(fd, keep=True)
                os.write(fd, data)
            finally:
                os.close(fd)


def encode_line(record: Mapping[str, Any]) -> bytes:
    """Strict JSON (a non-finite number becomes null, never `Infinity`), valid UTF-8, newline-terminated."""
    try:
        text = json.dumps(record, ensure_ascii=False, default=str, separators=(",", ":"), allow_nan=False)
    except ValueError:
        text = json.dumps(_finite(record), ensure_ascii=False, default=str, separators=(",", ":"))
    return (text + "\n").encode("utf-8", errors="backslashreplace")


def _finite(v: Any) -> Any:
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, Mapping):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


def read_records(path: str | Path, since: float | None = None,
                 problems: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Parse an audit file. A broken line (a crash mid-write, a stray edit) is reported and skipped:
    appended to `problems` when given, else logged as a warning. A stream's "started" line is joined
    with its final line (only the final one is yielded); a started line with no end (the process
    died mid-stream) comes out last, as status "interrupted"."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: audit log not found")
    report = problems.append if problems is not None else (lambda m: log.warning("skipped %s", m))
    started: dict[str, dict[str, Any]] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = parse_line(line, f"{path}:{n}", "is this an audit log?")
                if "ts" not in rec:
                    raise InputError(f"{path}:{n}: not an audit record (no 'ts' field)")
                ts = float(rec["ts"])
            except (InputError, TypeError, ValueError) as exc:
                report(str(exc))
                continue
            rid = rec.get("request_id")
            if rec.get("status") == "started" and rid:
                started[rid] = rec
                continue
            started.pop(rid, None)
            if since is None or ts >= since:
                yield rec
    for rec in started.values():
        if since is None or float(rec["ts"]) >= since:
            yield {**rec, "status": "interrupted",
                   "error": "the stream's final audit line is missing: the server stopped while it was running"}
