"""Prometheus /metrics and OpenTelemetry traces after real requests through both APIs, against the
real app and the loopback upstream stub; a real OTLP/HTTP receiver on 127.0.0.1 for the exporter.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .metrics_helpers import scrape, total
from .proxy_env import POLICY, SLOTS, dest, serve_api

PRICES = {name: (cin, cout) for name, _, cin, cout in SLOTS}
Q_OPENAI = "Write a Python function that returns the n-th Fibonacci number."
Q_ANTHROPIC = "Which planet in the solar system has the most moons?"


def wait_for(url: str, name: str, want: float, timeout: float = 20.0, **labels):
    """Metrics are recorded just after the answer went out (like the audit line): poll."""
    deadline = time.time() + timeout
    while True:
        samples = scrape(url)
        if total(samples, name, **labels) >= want or time.time() > deadline:
            return samples
        time.sleep(0.05)


def cost(slot: str, usage: dict) -> float:
    cin, cout = PRICES[slot]
    return (usage["prompt_tokens"] * cin + usage["completion_tokens"] * cout) / 1e6


@pytest.fixture
def proxy(registry):
    srv = serve_api(registry, api_keys=(), backoff=0.0, tracing=None)
    yield srv
    srv.stop()


def test_metrics_count_requests_spend_batches_and_failovers_through_both_apis(proxy, stub, registry):
    oa = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="unused", max_retries=0, timeout=60)
    an = anthropic.Anthropic(base_url=proxy.url, api_key="unused", max_retries=0, timeout=60)
    router = registry.get(POLICY)
    chosen_o = router.route(Q_OPENAI, tolerance=0.3).chosen
    chosen_a = router.route(Q_ANTHROPIC, tolerance=0.3).chosen

    spend: dict[str, float] = {}
    r1 = oa.chat.completions.create(model=POLICY, messages=[{"role": "user", "content": Q_OPENAI}],
                                    extra_body={"tolerance": 0.3})
    spend[r1.router["selected"]] = spend.get(r1.router["selected"], 0) + cost(r1.router["selected"], r1.usage.model_dump())
    chunks = list(oa.chat.completions.create(model=POLICY, messages=[{"role": "user", "content": Q_OPENAI}],
                                             stream=True, extra_body={"tolerance": 0.3}))
    last = chunks[-1].model_dump()
    spend[chosen_o] = spend.get(chosen_o, 0) + cost(chosen_o, last["usage"])
    m = an.messages.create(model=POLICY, max_tokens=32, messages=[{"role": "user", "content": Q_ANTHROPIC}],
                           extra_body={"tolerance": 0.3})
    assert m.router["selected"] == chosen_a
    spend[chosen_a] = spend.get(chosen_a, 0) + cost(chosen_a, {"prompt_tokens": m.usage.input_tokens,
                                                              "completion_tokens": m.usage.output_tokens})
    samples = wait_for(proxy.url, "router_requests_total", 3)

    assert total(samples, "router_requests_total", api="openai", policy=POLICY, chosen=chosen_o,
                 selected=chosen_o, status="ok") == 2
    assert total(samples, "router_requests_total", api="anthropic", policy=POLICY, chosen=chosen_a,
                 selected=chosen_a, status="ok") == 1
    for slot, usd in spend.items():
        assert total(samples, "router_spend_usd_total", policy=POLICY, slot=slot) == pytest.approx(usd, rel=1e-9)
    assert total(samples, "router_baseline_spend_usd_total", policy=POLICY) > 0
    # Every routed request went through the encoder batcher once and was timed at every stage.
    assert total(samples, "router_encoder_batch_size_sum", policy=POLICY) == 3
    assert total(samples, "router_encoder_queue_wait_seconds_count", policy=POLICY) == 3
    for stage in ("wall", "encode", "head", "select"):
        assert total(samples, "router_routing_seconds_count", policy=POLICY, stage=stage) == 3
    assert total(samples, "router_upstream_latency_seconds_count", policy=POLICY, outcome="ok") == 3
    assert total(samples, "router_http_responses_total", route="/v1/chat/completions", code="200") == 2
    assert total(samples, "router_tokens_total", policy=POLICY, kind="completion") > 0
    assert total(samples, "router_failovers_total") == 0

    # The chosen model fails for good (3 tries: retries=2), the next one answers: one failover.
    stub.behave(dest(chosen_o), fail_status=503, fail_times=-1)
    r2 = oa.chat.completions.create(model=POLICY, messages=[{"role": "user", "content": Q_OPENAI}],
                                    extra_body={"tolerance": 0.3})
    to = r2.router["selected"]
    assert to != chosen_o
    samples = wait_for(proxy.url, "router_failovers_total", 1)
    assert total(samples, "router_failovers_total", policy=POLICY, from_slot=chosen_o, to_slot=to,
                 reason="server_error") == 1
    assert total(samples, "router_upstream_latency_seconds_count", slot=chosen_o, outcome="server_error") == 3
    assert total(samples, "router_requests_total", api="openai", chosen=chosen_o, selected=to, status="ok") == 1

    # A bad request never reaches a decision but is still counted by status code.
    bad = httpx.post(f"{proxy.url}/v1/chat/completions", json={"model": POLICY, "messages": []}, timeout=10)
    assert bad.status_code == 400
    samples = scrape(proxy.url)
    assert total(samples, "router_http_responses_total", route="/v1/chat/completions", code="400") == 1
    stub.behave(dest("cheap"), fail_status=500, fail_times=-1)
    for s in ("mid", "strong", "best"):
        stub.behave(dest(s), fail_status=500, fail_times=-1)
    with pytest.raises(openai.APIStatusError):
        oa.chat.completions.create(model=POLICY, messages=[{"role": "user", "content": Q_OPENAI}])
    samples = wait_for(proxy.url, "router_requests_total", 1, status="error")
    assert total(samples, "router_requests_total", api="openai", selected="none", status="error") == 1


def test_governance_hooks_expose_rule_hits_and_budget_state(registry):
    from router.serving.metrics import Metrics

    m = Metrics()
    m.sensitivity_hit(POLICY, "pii-email", "pin_local")
    m.sensitivity_hit(POLICY, "pii-email", "pin_local")
    m.budget_state(POLICY, "team:ml", "warn")
    m.budget_state(POLICY, "team:ml", "hard_limit")
    fams = {f.name: f for f in text_string_to_metric_families(m.exposition()[0].decode())}
    hits = {tuple(sorted(s.labels.items())): s.value for s in fams["router_sensitivity_rule_hits"].samples
            if s.name.endswith("_total")}
    assert hits[(("action", "pin_local"), ("policy", POLICY), ("rule", "pii-email"))] == 2
    states = {s.labels["state"]: s.value for s in fams["router_budget_state"].samples}
    assert states == {"ok": 0, "warn": 0, "soft_limit": 0, "hard_limit": 1}


def test_metrics_need_a_key_when_keys_are_set_and_each_app_has_its_own_registry(registry, stub):
    with_keys = serve_api(registry, api_keys=("k-metrics",), tracing=None)
    other = serve_api(registry, api_keys=(), tracing=None)
    try:
        assert httpx.get(f"{with_keys.url}/metrics", timeout=10).status_code == 401
        assert httpx.get(f"{with_keys.url}/metrics", headers={"Authorization": "Bearer nope"},
                         timeout=10).status_code == 401
        oa = openai.OpenAI(base_url=f"{with_keys.url}/v1", api_key="k-metrics", max_retries=0, timeout=60)
        oa.chat.completions.create(model=POLICY, messages=[{"role": "user", "content": Q_OPENAI}])
        deadline = time.time() + 20
        while total(scrape(with_keys.url, headers={"Authorization": "Bearer k-metrics"}),
                    "router_requests_total") < 1 and time.time() < deadline:
            time.sleep(0.05)
        assert total(scrape(with_keys.url, headers={"x-api-key": "k-metrics"}), "router_requests_total") == 1
        assert total(scrape(other.url), "router_requests_total") == 0  # no shared global registry
        assert httpx.get(f"{with_keys.url}/health/ready", timeout=10).json()["status"] == "ready"
    finally:
        with_keys.stop()
        other.stop()


# ---- traces ----------------------------------------------------------------------------------

@pytest.fixture
def traced(registry):
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from router.serving.tracing import Tracing

    exporter = InMemorySpanExporter()
    tracing = Tracing(exporter, schedule_delay_millis=50)
    srv = serve_api(registry, api_keys=(), backoff=0.0, tracing=tracing)
    yield srv, exporter, tracing
    srv.stop()


def spans_of(exporter, tracing, n_roots: int, timeout: float = 20.0):
    deadline = time.time() + timeout
    while True:
        tracing.processor.force_flush()
        spans = exporter.get_finished_spans()
        if sum(1 for s in spans if s.parent is None) >= n_roots or time.time() > deadline:
            return spans
        time.sleep(0.05)


def test_a_routed_request_with_failover_is_one_trace_with_routing_and_attempt_spans(traced, stub, registry):
    srv, exporter, tracing = traced
    router = registry.get(POLICY)
    decision = router.route(Q_OPENAI, tolerance=0.3)
    stub.behave(dest(decision.chosen), fail_status=500, fail_times=1)  # one failed try, then ok (a retry)
    oa = openai.OpenAI(base_url=f"{srv.url}/v1", api_key="secret-token", max_retries=0, timeout=60)
    resp = oa.chat.completions.create(model=POLICY, messages=[{"role": "user", "content": Q_OPENAI}],
                                      extra_body={"tolerance": 0.3}, extra_headers={"X-Router-Session": "s-1"})
    spans = spans_of(exporter, tracing, 1)
    roots = [s for s in spans if s.parent is None]
    assert len(roots) == 1
    root = roots[0]
    tree = {s.name: s for s in spans}
    assert root.name == f"chat {POLICY}"
    assert {s.context.trace_id for s in spans} == {root.context.trace_id}
    by_parent: dict[int, list[str]] = {}
    for s in spans:
        if s.parent is not None:
            by_parent.setdefault(s.parent.span_id, []).append(s.name)
    route = tree["router.route"]
    assert sorted(by_parent[root.context.span_id]) == sorted(["router.route", f"chat {dest(decision.chosen)}",
                                                              f"chat {dest(decision.chosen)}"])
    assert sorted(by_parent[route.context.span_id]) == ["router.encode", "router.head", "router.select"]
    a = root.attributes
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.model"] == POLICY
    assert a["gen_ai.response.model"] == dest(decision.chosen) == resp.model
    assert a["gen_ai.usage.input_tokens"] == resp.usage.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == resp.usage.completion_tokens
    assert a["router.chosen"] == a["router.selected"] == decision.chosen
    assert list(a["router.candidates"]) == decision.candidates
    assert a["router.threshold"] == pytest.approx(decision.threshold, abs=1e-6)
    for m in decision.models:
        assert a[f"router.p.{m.name}"] == pytest.approx(m.p, abs=1e-6)
    assert a["session.id"] == "s-1" and a["user.id"].startswith("sha256:")
    assert "secret-token" not in repr(dict(a))
    assert a["router.checkpoint_fingerprint"] == router.checkpoint.fingerprint
    attempts = sorted((s for s in spans if s.name.startswith("chat stub/")), key=lambda s: s.start_time)
    assert [s.attributes.get("http.response.status_code") for s in attempts] == [500, 200]
    assert attempts[0].attributes["error.type"] == "server_error" and attempts[0].status.status_code.name == "ERROR"
    assert attempts[1].attributes["server.address"] == "127.0.0.1"
    for s in spans:  # children sit inside their parent's time window
        assert root.start_time <= s.start_time <= s.end_time <= root.end_time


def test_anthropic_stream_is_traced_too(traced, stub):
    srv, exporter, tracing = traced
    an = anthropic.Anthropic(base_url=srv.url, api_key="unused", max_retries=0, timeout=60)
    with an.messages.stream(model=POLICY, max_tokens=32, messages=[{"role": "user", "content": Q_ANTHROPIC}]) as st:
        text = "".join(st.text_stream)
    assert text
    spans = spans_of(exporter, tracing, 1)
    root = next(s for s in spans if s.parent is None)
    assert root.attributes["router.api"] == "anthropic" and root.attributes["router.stream"] is True
    assert root.attributes["gen_ai.usage.output_tokens"] > 0


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[bytes] = []
    stall = 0.0

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.stall:
            time.sleep(self.stall)
        type(self).bodies.append((self.path, self.headers.get("content-type"), self.headers.get("authorization"), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args):
        """Silent: the receiver's request log would interleave with pytest's output."""


def test_otlp_http_export_reaches_a_real_receiver(registry, stub):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from router.serving.tracing import Tracing

    handler = type("Recv", (_Receiver,), {"bodies": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        tracing = Tracing.otlp(f"http://127.0.0.1:{httpd.server_port}", headers={"Authorization": "Basic cGs6c2s="},
                               schedule_delay_millis=50)
        srv = serve_api(registry, api_keys=(), tracing=tracing)
        try:
            oa = openai.OpenAI(base_url=f"{srv.url}/v1", api_key="unused", max_retries=0, timeout=60)
            oa.chat.completions.create(model=POLICY, messages=[{"role": "user", "content": Q_OPENAI}])
            deadline = time.time() + 20
            while not handler.bodies and time.time() < deadline:
                tracing.processor.force_flush()
                time.sleep(0.05)
        finally:
            srv.stop()
        assert handler.bodies, "no OTLP export arrived"
        path, ctype, auth, body = handler.bodies[0]
        assert path == "/v1/traces" and ctype == "application/x-protobuf" and auth == "Basic cGs6c2s="
        req = ExportTraceServiceRequest.FromString(body)
        names = {s.name for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans}
        assert f"chat {POLICY}" in names and "router.encode" in names
        service = {kv.key: kv.value.string_value for kv in req.resource_spans[0].resource.attributes}
        assert service["service.name"] == "prefill-router"
    finally:
        httpd.shutdown()


def _requests(url: str, n: int) -> None:
    oa = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=30)
    for i in range(n):
        oa.chat.completions.create(model=POLICY, messages=[{"role": "user", "content": f"{Q_OPENAI} ({i})"}])


class BlockedExporter:
    """A SpanExporter whose export hangs until released: a backend that accepts and never answers."""

    def __init__(self):
        self.release = threading.Event()
        self.entered = threading.Event()
        self.exported = 0

    def export(self, spans):
        from opentelemetry.sdk.trace.export import SpanExportResult

        self.entered.set()
        self.release.wait(60)
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self):
        self.release.set()

    def force_flush(self, timeout_millis=30000):
        return True


def test_a_hung_export_never_blocks_requests_and_the_full_queue_drops_spans(registry, stub):
    from router.serving.tracing import Tracing

    exporter = BlockedExporter()
    tracing = Tracing(exporter, schedule_delay_millis=10, max_queue_size=8, max_export_batch_size=8)
    srv = serve_api(registry, api_keys=(), tracing=tracing)
    try:
        _requests(srv.url, 1)
        assert exporter.entered.wait(20)  # the export thread is now stuck inside export()
        _requests(srv.url, 5)  # would time out (30 s) if a request waited on the exporter
        exporter.release.set()
    finally:
        srv.stop()  # flushes what is still queued
    # 6 requests x 7 spans = 42; the first export took what was queued, then at most 8 waited.
    assert 0 < exporter.exported <= 7 + 8 + 7, exporter.exported


def test_a_dead_otlp_endpoint_costs_requests_nothing_but_lost_spans(registry, stub):
    from router.serving.tracing import Tracing

    from .serving import free_port

    # Nothing listens there: each export is refused and retried on the SDK's thread until its timeout.
    tracing = Tracing.otlp(f"http://127.0.0.1:{free_port()}", timeout=1.0, schedule_delay_millis=10)
    srv = serve_api(registry, api_keys=(), tracing=tracing)
    try:
        _requests(srv.url, 3)
        resp = httpx.get(f"{srv.url}/health/ready", timeout=10)
        assert resp.status_code == 200
    finally:
        t0 = time.perf_counter()
        srv.stop()
    assert time.perf_counter() - t0 < 10  # shutdown's flush is bounded by the export timeout


def test_encoder_cache_hits_are_exposed_after_a_resent_query(stub, tmp_path, monkeypatch):
    """Agents resend the same context: the second identical request is a cache hit, and /metrics says so."""
    import uuid

    from router.model import embed_cache

    from .proxy_env import make_registry, write_pool

    monkeypatch.setattr(embed_cache, "_CACHES", {})  # the process's caches, fresh and switched on for this test
    monkeypatch.setenv("ROUTER_EMBED_CACHE", "64")
    srv = serve_api(make_registry(write_pool(tmp_path, stub.base_url)), api_keys=(), backoff=0.0, tracing=None)
    try:
        text = f"Summarize the attached meeting notes in three bullet points. ({uuid.uuid4()})"
        before = scrape(srv.url)
        assert total(before, "router_encoder_cache_misses_total") == 0
        for _ in range(2):
            r = httpx.post(f"{srv.url}/v1/chat/completions", timeout=60,
                           json={"model": POLICY, "messages": [{"role": "user", "content": text}]})
            assert r.status_code == 200, r.text
        after = wait_for(srv.url, "router_requests_total", 2)
    finally:
        srv.stop()
    assert total(after, "router_encoder_cache_misses_total") == 1
    assert total(after, "router_encoder_cache_hits_total") == 1
    assert total(after, "router_encoder_cache_entries") == 1
    assert total(after, "router_encoder_cache_hit_ratio") == pytest.approx(0.5)
