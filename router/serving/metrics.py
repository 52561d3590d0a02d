"""Prometheus metrics of one app: `Metrics()` owns its own CollectorRegistry (two apps in one
process, as in the tests, never share counters); `GET /metrics` serves it in the text format.

What is counted (all names start with `router_`):

    requests_total{api,policy,chosen,selected,status}   one per proxied request that reached a decision
    http_responses_total{route,code}                    every /v1/* answer, errors before a decision included
    routing_seconds{policy,stage}                       stage = wall (arrival to decision, encoder queue
                                                        included), encode, head, select
    upstream_latency_seconds{policy,slot,outcome}       each upstream attempt (outcome = ok or a failure reason)
    encoder_batch_size{policy}                          texts per encoder forward (the micro-batcher)
    encoder_queue_wait_seconds{policy}                  from submit to the start of its forward
    failovers_total{policy,from_slot,to_slot,reason}    each switch to the next model of the plan
    spend_usd_total{policy,slot}                        real cost (real usage × the slot's prices)
    baseline_spend_usd_total{policy,slot}               what the baseline would have cost for the same
                                                        requests (slot = the slot that answered)
    tokens_total{policy,slot,kind}                      kind = prompt | completion
    sensitivity_rule_hits_total{policy,rule,action}     call `sensitivity_hit()` (governance)
    budget_state{policy,scope,state}                    call `budget_state()` (governance): 1 for the
                                                        scope's current state, 0 for the others
    encoder_cache_{hits,misses,evictions}_total         the encoder-output cache (router/model/embed_cache.py),
    encoder_cache_entries, encoder_cache_hit_ratio      read at scrape time; the cache is per process, so
                                                        every app of one process reports the same numbers
    scan_cache_{hits,misses,evictions}_total            the per-message sensitivity results of this app's
    scan_cache_entries, scan_cache_hit_ratio            governance (router/routing/scan_cache.py), read at scrape time

Labels are bounded by the pools' slot names and a fixed set of reasons, never by client input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

# Milliseconds matter for routing (a forward is ~2-20 ms on CPU); upstream calls take seconds.
ROUTING_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
UPSTREAM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
BUDGET_STATES = ("ok", "warn", "soft_limit", "hard_limit")
# The /v1 routes by name; anything else is "other", so a scanner cannot grow the label set.
ROUTES = ("/v1/chat/completions", "/v1/messages", "/v1/messages/count_tokens", "/v1/route", "/v1/models",
          "/v1/responses", "/metrics")


def failure_reason(status: int | None, error: str | None) -> str:
    """A bounded label for why an attempt failed."""
    if status is None:
        return "missing_key" if error and error.startswith("missing API key") else "connection"
    if status == 200:
        return "invalid_body" if error else "ok"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    return "client_error"


class EmbedCacheCollector:
    """The encoder-output cache's own counters, read when /metrics is scraped (the cache counts
    hits under its lock; mirroring each one into a prometheus Counter would add a second lock per text)."""

    def collect(self):
        from router.model import embed_cache

        s = embed_cache.stats()
        for name, help_ in (("hits", "Routed texts whose features came from the cache"),
                            ("misses", "Routed texts the encoder had to read"),
                            ("evictions", "Cache entries dropped to stay within ROUTER_EMBED_CACHE")):
            yield CounterMetricFamily(f"router_encoder_cache_{name}", help_, value=s[name])
        yield GaugeMetricFamily("router_encoder_cache_entries", "Entries held, over every encoder's cache",
                                value=s["entries"])
        yield GaugeMetricFamily("router_encoder_cache_hit_ratio", "hits / (hits + misses) since start",
                                value=s["hit_rate"])


class ScanCacheCollector:
    """The sensitivity scan cache's counters (one cache per app's Governance), read at scrape time."""

    def __init__(self, cache) -> None:
        self.cache = cache

    def collect(self):
        s = self.cache.stats()
        for name, help_ in (("hits", "Messages (and request fields) whose sensitivity scan came from the cache"),
                            ("misses", "Messages (and request fields) the sensitivity rules had to read"),
                            ("evictions", "Cache entries dropped to stay within ROUTER_SCAN_CACHE")):
            yield CounterMetricFamily(f"router_scan_cache_{name}", help_, value=s[name])
        yield GaugeMetricFamily("router_scan_cache_entries", "Per-message scan results held", value=s["entries"])
        yield GaugeMetricFamily("router_scan_cache_hit_ratio", "hits / (hits + misses) since start",
                                value=s["hit_rate"])


class Metrics:
    def __init__(self, scan_cache=None) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        r.register(EmbedCacheCollector())
        if scan_cache is not None:
            r.register(ScanCacheCollector(scan_cache))
        self.requests = Counter("router_requests", "Proxied requests that reached a decision",
                                ["api", "policy", "chosen", "selected", "status"], registry=r)
        self.http = Counter("router_http_responses", "HTTP answers of /v1/* by route and status code",
                            ["route", "code"], registry=r)
        self.routing = Histogram("router_routing_seconds", "Routing time per request, by stage",
                                 ["policy", "stage"], buckets=ROUTING_BUCKETS, registry=r)
        self.upstream = Histogram("router_upstream_latency_seconds", "Latency of each upstream attempt",
                                  ["policy", "slot", "outcome"], buckets=UPSTREAM_BUCKETS, registry=r)
        self.batch_size = Histogram("router_encoder_batch_size", "Texts per encoder forward",
                                    ["policy"], buckets=BATCH_BUCKETS, registry=r)
        self.queue_wait = Histogram("router_encoder_queue_wait_seconds", "Wait from submit to the forward",
                                    ["policy"], buckets=ROUTING_BUCKETS, registry=r)
        self.failovers = Counter("router_failovers", "Switches to the next model of the failover plan",
                                 ["policy", "from_slot", "to_slot", "reason"], registry=r)
        self.spend = Counter("router_spend_usd", "Real spend: real usage at the answering slot's prices",
                             ["policy", "slot"], registry=r)
        self.baseline_spend = Counter("router_baseline_spend_usd",
                                      "Baseline model's estimated cost for the same requests",
                                      ["policy", "slot"], registry=r)
        self.tokens = Counter("router_tokens", "Upstream tokens by kind", ["policy", "slot", "kind"], registry=r)
        self.sensitivity = Counter("router_sensitivity_rule_hits", "Sensitivity rules that matched a request",
                                   ["policy", "rule", "action"], registry=r)
        self.budget = Gauge("router_budget_state", "Budget state per scope (1 = current state)",
                            ["policy", "scope", "state"], registry=r)

    # ---- exposition ------------------------------------------------------------------------
    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    # ---- hooks -----------------------------------------------------------------------------
    def batch_observer(self, policy: str):
        """For the ScoreBatcher: called on the torch thread with each batch's queue waits (seconds)."""
        size, wait = self.batch_size.labels(policy), self.queue_wait.labels(policy)

        def observe(waits: Sequence[float]) -> None:
            size.observe(len(waits))
            for w in waits:
                wait.observe(max(0.0, w))
        return observe

    def request_done(self, record: Mapping[str, Any], timings_ms: Mapping[str, float] | None,
                     attempts: Iterable[Any]) -> None:
        """One finished proxied request, from its audit record (built whether or not a log is kept)."""
        policy = str(record.get("policy"))
        selected = record.get("selected") or "none"
        self.requests.labels(record.get("api") or "unknown", policy, record.get("chosen") or "none", selected,
                             record.get("status") or "unknown").inc()
        if record.get("routing_wall_ms") is not None:
            self.routing.labels(policy, "wall").observe(record["routing_wall_ms"] / 1e3)
        for stage in ("encode", "head", "select"):
            ms = (timings_ms or {}).get(f"{stage}_ms")
            if ms is not None:
                self.routing.labels(policy, stage).observe(ms / 1e3)
        prev = None
        for a in attempts:
            reason = failure_reason(a.status, a.error)
            self.upstream.labels(policy, a.slot, reason).observe(max(0.0, a.latency_ms) / 1e3)
            if prev is not None and a.slot != prev.slot:
                self.failovers.labels(policy, prev.slot, a.slot, failure_reason(prev.status, prev.error)).inc()
            prev = a
        if record.get("actual_cost_usd") is not None:
            self.spend.labels(policy, selected).inc(max(0.0, float(record["actual_cost_usd"])))
        if record.get("baseline_cost_usd") is not None and record.get("usage"):
            self.baseline_spend.labels(policy, selected).inc(max(0.0, float(record["baseline_cost_usd"])))
        usage = record.get("usage") or {}
        for kind in ("prompt", "completion"):
            n = usage.get(f"{kind}_tokens")
            if n:
                self.tokens.labels(policy, selected, kind).inc(int(n))

    def http_response(self, path: str, code: int) -> None:
        self.http.labels(path if path in ROUTES else "other", str(code)).inc()

    # ---- for the governance helper (issue 13): sensitivity rules and budgets --------------
    def sensitivity_hit(self, policy: str, rule: str, action: str) -> None:
        """A sensitivity rule matched a request; `action` e.g. "pin_local", "block", "redact"."""
        self.sensitivity.labels(policy, rule, action).inc()

    def budget_state(self, policy: str, scope: str, state: str) -> None:
        """The current state of a budget scope (e.g. "team:ml", "client:sha256:..."): one-hot over states."""
        for s in dict.fromkeys((*BUDGET_STATES, state)):
            self.budget.labels(policy, scope, s).set(1.0 if s == state else 0.0)


class HTTPMetricsMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware: that buffers streams): counts each /v1/* answer's status."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope.get("path", "").startswith("/v1/"):
            return await self.app(scope, receive, send)
        path = scope["path"]

        async def send_status(message):
            if message["type"] == "http.response.start":
                self.metrics.http_response(path, int(message["status"]))
            await send(message)

        await self.app(scope, receive, send_status)
