"""The decision log: one JSON line per request, appended and flushed, so auditors can ask "why this model?".

Lines are `DecisionRecord.to_line()` (router/audit/record.py); the proxy writes them with
`AuditLog.write`, and the playground's audit download uses the same records.

Fields: request_id, time (ISO 8601 UTC), ts (epoch seconds), api, client, policy, tolerance, pinned,
session, sticky, query | query_sha256, input_tokens, models [{name, p, expected_cost_usd, candidate,
allowed}], p_max, threshold, candidates, best, chosen (the router's pick), expected_cost_usd,
baseline, baseline_cost_usd, selected (the slot that answered), model (its destination id),
attempts [{slot, model, status, latency_ms, error}], usage {prompt_tokens, completion_tokens},
actual_cost_usd, routing_ms (encoder + head + selection), routing_wall_ms (proxy only: from the
request's arrival to its decision, so it includes waiting for the encoder under load), latency_ms,
stream, status, error, cost_basis ("actual" | "estimate"), record_version; when a
sensitivity rule or budget acted: governance {sensitive {action, rules, matches [{message, rule,
detector, spans, action}], local_only, reason}, budget {removed, reason, caps}} (never the matched
text; the query is stored with matches masked), client_name (the ROUTER_API_KEYS name of the key,
when it has one). usage may carry reasoning_tokens and cached_tokens (shares of completion and
prompt tokens) when the upstream reported them; usage_estimated: usage counted by the proxy when the
upstream never sent it. status: "ok" | "error" | "client_closed"; "started" on the line a stream
writes when it opens, which readers join with its final line, or report as "interrupted" when the
process died mid-stream.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from router.audit.tail import repair_fd
from router.errors import InputError
from router.jsonl import parse_line

log = logging.getLogger("router.audit")


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


INTERRUPTED = "the stream's final audit line is missing: the server stopped while it was running"


def walk(path: str | Path, on_bad: Callable[[int, str], None],
         check: Callable[[dict[str, Any], str], None] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for each line of an audit file, the one JSONL walk of every reader.

    A line that is not a JSON object (torn by a crash mid-write, edited by hand), or that `check`
    refuses (it raises InputError, TypeError or ValueError; `where` names the line), goes to
    `on_bad(line number, message)`, which counts or reports it, and the walk goes on. A stream's
    "started" line is joined with its final line (only the final one is yielded); a started line
    with no end (the process died mid-stream) comes out last, as status "interrupted"."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: audit log not found")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; expected an audit log file (JSONL)")
    started: dict[str, tuple[int, dict[str, Any]]] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            where = f"{path}:{n}"
            try:
                rec = parse_line(line, where, "is this an audit log?")
                if check is not None:
                    check(rec, where)
            except (InputError, TypeError, ValueError) as exc:
                on_bad(n, str(exc))
                continue
            rid = rec.get("request_id")
            if rec.get("status") == "started" and rid:
                started[rid] = (n, rec)
                continue
            started.pop(rid, None)
            yield n, rec
    for n, rec in started.values():
        yield n, {**rec, "status": "interrupted", "error": INTERRUPTED}


def _has_ts(rec: dict[str, Any], where: str) -> None:
    if "ts" not in rec:
        raise InputError(f"{where}: not an audit record (no 'ts' field)")
    try:
        float(rec["ts"])
    except (TypeError, ValueError):
        raise InputError(f"{where}: field 'ts' must be epoch seconds, got {rec['ts']!r:.40}") from None


def read_records(path: str | Path, since: float | None = None,
                 problems: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Parse an audit file (see `walk`). A broken line (a crash mid-write, a stray edit) or one
    without a time is reported and skipped: appended to `problems` when given, else logged as a
    warning."""
    report = problems.append if problems is not None else (lambda m: log.warning("skipped %s", m))
    for _, rec in walk(path, lambda n, message: report(message), check=_has_ts):
        if since is None or float(rec["ts"]) >= since:
            yield rec
