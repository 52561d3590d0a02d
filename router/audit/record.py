"""The decision record: one type for what was decided and what happened, built once per request.

The proxy's audit line, the response's `router` object, the playground's audit download and the
readers (`audit summary`) all go through `DecisionRecord`, so they cannot drift apart. The JSONL
line keeps the field names of record format 1 (every reader of format 1 reads format 2 unchanged);
format 2 adds `record_version` and `cost_basis` and writes `usage` through the one usage normalizer.

A record never holds a key: the client is a hash of its bearer token, and the query text is stored,
hashed or dropped according to the pool's `audit_query_text`.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from router.errors import InputError
from router.routing.costs import baseline_cost, normalize_usage, usage_cost
from router.routing.router import RoutingResult

RECORD_VERSION = 2
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


def iso_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _attempt_dicts(attempts: Iterable[Any]) -> list[dict[str, Any]]:
    return [a.to_dict() if hasattr(a, "to_dict") else dict(a) for a in attempts]


@dataclass
class DecisionRecord:
    """Field order is the JSONL line's key order (after `request_id`, `time`, `ts`)."""

    request_id: str
    ts: float
    api: str | None
    policy: str | None
    client: str | None = None
    tolerance: float | None = None
    query: str | None = None
    query_sha256: str | None = None
    # the decision (None for a pinned request: no encoder pass)
    input_tokens: int | None = None
    models: list[dict[str, Any]] | None = None
    p_max: float | None = None
    threshold: float | None = None
    candidates: list[str] | None = None
    best: str | None = None
    chosen: str | None = None  # the router's pick, or the pinned slot
    expected_cost_usd: float | None = None
    baseline: str | None = None
    routing_ms: float | None = None
    # what happened
    selected: str | None = None  # the slot that answered
    model: str | None = None  # its destination id
    attempts: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] | None = None
    usage_estimated: bool | None = None  # the proxy counted the usage: the upstream never sent it
    actual_cost_usd: float | None = None
    baseline_cost_usd: float | None = None
    latency_ms: float | None = None
    status: str = "ok"
    error: str | None = None
    pinned: bool = False
    session: str | None = None
    sticky: bool = False
    stream: bool = False
    routing_wall_ms: float | None = None  # proxy: arrival to decision, incl. waiting for the encoder
    timings_ms: dict[str, float] | None = None
    review: dict[str, Any] | None = None
    kind: str | None = None  # "review": an Auto review's judge call (review_of = the answer's request_id)
    review_of: str | None = None
    governance: dict[str, Any] | None = None  # what sensitivity rules and budgets did (never matched text)
    client_name: str | None = None  # the ROUTER_API_KEYS name of the client's key, when it has one
    # provenance (router/audit/provenance.py): what replay needs to tell which checkpoint decided
    checkpoint_fingerprint: str | None = None
    pool_hash: str | None = None
    router_version: str | None = None
    encoder: dict[str, Any] | None = None
    record_version: int = RECORD_VERSION

    # ---- building ----------------------------------------------------------------------------
    @classmethod
    def build(cls, result: RoutingResult | None, *, request_id: str | None = None, ts: float | None = None,
              api: str | None = None, policy: str | None = None, client: str | None = None,
              query_text: str | None = None, query_mode: str = "store", selected: Any = None,
              attempts: Iterable[Any] = (), usage: Mapping[str, Any] | None = None,
              baseline_prices: Any = None, baseline_output_tokens: float | None = None,
              latency_ms: float | None = None, status: str = "ok", error: str | None = None,
              **call: Any) -> DecisionRecord:
        """One record from a RoutingResult (or None when pinned) plus what happened at call time.

        `selected` is the Slot (or its ModelScore, or its name) that answered; its prices price
        the real usage. The baseline is
        never called: it is priced at the real prompt tokens (else the encoder's count) plus its
        expected output tokens; a pinned request passes `baseline_prices` and
        `baseline_output_tokens` since it has no RoutingResult.
        """
        ts = time.time() if ts is None else ts
        rec = cls(request_id=request_id or new_request_id(), ts=round(ts, 3), api=api,
                  policy=policy or (result.policy if result else None), client=client, **call)
        for k, v in query_fields(query_text, query_mode).items():
            setattr(rec, k, v)
        rec.usage = normalize_usage(usage)
        rec.attempts = _attempt_dicts(attempts)
        if isinstance(selected, str):  # a slot name: price it from the result's row
            selected = result.score(selected) if result is not None else None
        rec.selected = selected.name if selected is not None else None
        rec.model = selected.model if selected is not None else None
        rec.latency_ms = None if latency_ms is None else round(float(latency_ms), 2)
        rec.status, rec.error = status, error
        if result is not None:
            rec.tolerance = result.tolerance
            rec.input_tokens = result.input_tokens
            rec.models = [{"name": m.name, "p": m.p, "expected_cost_usd": m.expected_cost_usd,
                           "candidate": m.candidate, "allowed": m.allowed} for m in result.models]
            rec.p_max, rec.threshold, rec.candidates = result.p_max, result.threshold, list(result.candidates)
            rec.best, rec.chosen, rec.expected_cost_usd = result.best, result.chosen, result.expected_cost_usd
            rec.baseline, rec.routing_ms = result.baseline, result.timings_ms.get("total_ms")
            rec.timings_ms = dict(result.timings_ms)
            base = result.score(result.baseline)
            # Without real usage: the router's own estimate for the baseline, to the cent (recomputing it
            # from the rounded expected_output_tokens made an all-baseline session "save" -0.1%).
            rec.baseline_cost_usd = (baseline_cost(base, base.expected_output_tokens, base.expected_input_tokens,
                                                   rec.usage) if rec.usage else base.expected_cost_usd)
        elif baseline_prices is not None and rec.usage:
            rec.baseline = rec.baseline or getattr(baseline_prices, "name", None)
            rec.baseline_cost_usd = baseline_cost(baseline_prices, baseline_output_tokens or 0.0, 0, rec.usage)
        if rec.usage and selected is not None:
            rec.actual_cost_usd = usage_cost(selected, rec.usage)
        return rec

    # ---- views -------------------------------------------------------------------------------
    @property
    def cost_basis(self) -> str:
        # estimated usage (the upstream sent none) prices the call, but it is not a real bill
        return "actual" if self.actual_cost_usd is not None and not self.usage_estimated else "estimate"

    @property
    def failover(self) -> bool:
        first = self.attempts[0]["slot"] if self.attempts else self.selected
        return self.selected is not None and first is not None and self.selected != first

    def to_line(self) -> dict[str, Any]:
        """The audit JSONL line (format 1's keys, in its order, plus format 2's)."""
        line: dict[str, Any] = {"request_id": self.request_id, "time": iso_time(self.ts), "ts": self.ts}
        for f in fields(self):
            if f.name in ("request_id", "ts", "timings_ms"):
                continue
            v = getattr(self, f.name)
            if f.name in _OPTIONAL and v is None:
                continue
            if self.models is None and f.name in _DECISION_FIELDS:
                continue
            line[f.name] = v
        line["cost_basis"] = self.cost_basis
        return line

    def router_info(self) -> dict[str, Any]:
        """The `router` object that rides along in a response body."""
        info: dict[str, Any] = {"request_id": self.request_id, "policy": self.policy, "pinned": self.pinned,
                                "selected": self.selected, "model": self.model}
        if self.models is not None:
            info.update({"tolerance": self.tolerance, "chosen": self.chosen, "best": self.best,
                         "p_max": self.p_max, "threshold": self.threshold, "candidates": list(self.candidates or []),
                         "sticky": self.sticky, "failover": self.failover,
                         "probabilities": {m["name"]: m["p"] for m in self.models},
                         "expected_cost_usd": self.expected_cost_usd, "input_tokens": self.input_tokens,
                         "timings_ms": {**(self.timings_ms or {}), "routing_wall_ms": self.routing_wall_ms}})
        if self.governance:
            info["governance"] = self.governance
        info["attempts"] = list(self.attempts)
        return info

    @classmethod
    def from_line(cls, line: Mapping[str, Any]) -> DecisionRecord:
        """Read a line of either format; unknown keys are ignored, missing ones take defaults."""
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in line.items() if k in known}
        kw.setdefault("request_id", "")
        kw.setdefault("api", None)
        kw.setdefault("policy", None)
        kw["record_version"] = int(line.get("record_version") or 1)
        return cls(**kw)


# Keys a line carries only when set.
_OPTIONAL = ("query", "query_sha256", "review", "kind", "review_of", "usage_estimated", "governance", "client_name", "checkpoint_fingerprint", "pool_hash",
             "router_version", "encoder")
# Keys a pinned request's line leaves out (it had no RoutingResult); `chosen`, `baseline` stay.
_DECISION_FIELDS = ("input_tokens", "models", "p_max", "threshold", "candidates", "best", "expected_cost_usd",
                    "routing_ms")
