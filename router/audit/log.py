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
stream, status ("ok" | "error"), error, cost_basis ("actual" | "estimate"), record_version.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Iterator, Mapping

from router.errors import InputError
from router.jsonl import parse_line


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
        line = json.dumps(record, ensure_ascii=False, default=str, separators=(",", ":")) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()


def read_records(path: str | Path, since: float | None = None) -> Iterator[dict[str, Any]]:
    """Parse an audit file; a broken line (e.g. a crash mid-write) is reported, not fatal."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: audit log not found")
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            rec = parse_line(line, f"{path}:{n}", "is this an audit log?")
            if "ts" not in rec:
                raise InputError(f"{path}:{n}: not an audit record (no 'ts' field)")
            if since is None or float(rec["ts"]) >= since:
                yield rec
