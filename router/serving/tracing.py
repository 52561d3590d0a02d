"""OpenTelemetry traces of proxied requests (opt-in: `pip install -r requirements-otel.txt`).

One trace per request that reached a decision:

    chat {policy}                 SERVER  the whole request, arrival to answer
    ├── router.route                      arrival to decision (waiting for the encoder included)
    │   ├── router.encode                 the encoder forward (its batch's time)
    │   ├── router.head                   the scoring head
    │   └── router.select                 the selection rule
    └── chat {destination model}  CLIENT  one per upstream attempt (retries and failovers included)

Attributes follow the OpenTelemetry GenAI semantic conventions (gen_ai.operation.name,
gen_ai.request.model, gen_ai.response.model, gen_ai.usage.input_tokens / output_tokens,
gen_ai.provider.name, server.address, error.type) plus `router.*` for the decision: router.p.<slot>
for every P, router.threshold, router.p_max, router.tolerance, router.candidates, router.chosen,
router.selected, costs, the checkpoint fingerprint. Langfuse reads session.id and user.id (the
client's pseudonym, never a key); the query goes out as input.value only when the pool's
audit_query_text is "store".

The spans are built when the request ends, from what the pipeline measured (timestamps are exact
for the request and each attempt; encode/head/select are placed back to back before the decision).
Export runs on the SDK's background thread through a BatchSpanProcessor with a bounded queue
(`max_queue_size`, default 2048 spans, about 300 requests): a request only appends to that queue,
so an OTLP endpoint that is slow or down never slows a request. When the queue is full the OLDEST
queued spans are dropped (the SDK's deque discards from its far end) and one warning per minute says so.

Enabled by `create_api(tracing=...)`, or from the environment: ROUTER_OTLP_ENDPOINT, else
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT (HTTP/protobuf; "/v1/traces"
is appended to a base URL); OTEL_EXPORTER_OTLP_HEADERS carries auth (Langfuse: Basic base64(pk:sk));
OTEL_SDK_DISABLED=true turns it off. Each app has its own TracerProvider (never the global one).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

ENDPOINT_VARS = ("ROUTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
DEFAULT_QUEUE = 2048

# Well-known hosts -> gen_ai.provider.name; anything else is an OpenAI-compatible server.
_PROVIDERS = {"openrouter.ai": "openrouter", "api.openai.com": "openai", "api.anthropic.com": "anthropic",
              "api.mistral.ai": "mistral_ai", "api.groq.com": "groq", "api.deepseek.com": "deepseek"}


class _OncePerMinute(logging.Filter):
    """The SDK warns once per dropped span; under a long outage that would flood the log."""

    def __init__(self) -> None:
        super().__init__()
        self._last = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        if "Queue full" not in record.getMessage():
            return True
        now = time.monotonic()
        if now - self._last < 60.0:
            return False
        self._last = now
        record.msg = f"{record.msg} (the oldest queued spans are dropped; is the OTLP endpoint down?)"
        return True


def _install_log_filter() -> None:
    log = logging.getLogger("opentelemetry.sdk._shared_internal")
    if not any(isinstance(f, _OncePerMinute) for f in log.filters):
        log.addFilter(_OncePerMinute())


def traces_url(endpoint: str) -> str:
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else base + "/v1/traces"


def provider_name(api_base: str | None) -> str:
    host = (urlsplit(api_base or "").hostname or "").lower()
    return _PROVIDERS.get(host, "openai_compatible")


class Tracing:
    """A TracerProvider of one app with its export pipeline; `request_done` turns a finished request
    into its spans. `exporter`: any SpanExporter (tests pass an InMemorySpanExporter)."""

    def __init__(self, exporter, *, service_name: str = "prefill-router", max_queue_size: int = DEFAULT_QUEUE,
                 max_export_batch_size: int = 512, schedule_delay_millis: int = 1000,
                 export_timeout_millis: int = 10000):
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from router import __version__

        _install_log_filter()
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name,
                                                                 "service.version": __version__}))
        self.processor = BatchSpanProcessor(exporter, max_queue_size=max_queue_size,
                                            max_export_batch_size=min(max_export_batch_size, max_queue_size),
                                            schedule_delay_millis=schedule_delay_millis,
                                            export_timeout_millis=export_timeout_millis)
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer("prefill-router", __version__)

    @classmethod
    def otlp(cls, endpoint: str, headers: Mapping[str, str] | None = None, timeout: float = 5.0,
             **kw: Any) -> Tracing:
        """OTLP over HTTP/protobuf (what Langfuse and every collector accept)."""
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            from router.errors import ConfigError

            raise ConfigError("tracing", ["OTLP export needs the extra: pip install -r requirements-otel.txt"]) from None
        # headers=None: the exporter reads OTEL_EXPORTER_OTLP(_TRACES)_HEADERS itself.
        exporter = OTLPSpanExporter(endpoint=traces_url(endpoint), headers=dict(headers) if headers else None,
                                    timeout=timeout)
        return cls(exporter, **kw)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Tracing | None:
        env = os.environ if environ is None else environ
        if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return None
        endpoint = next((env[v].strip() for v in ENDPOINT_VARS if env.get(v, "").strip()), None)
        return cls.otlp(endpoint) if endpoint else None

    def shutdown(self) -> None:
        """Flush what is queued (bounded by the export timeout) and stop the export thread."""
        self.provider.shutdown()

    # ---- spans -----------------------------------------------------------------------------
    def request_done(self, d, record: Mapping[str, Any], attempts: Iterable[Any], ended: float) -> None:
        """`d`: the pipeline's Decision; `ended`: perf_counter() when the answer went out."""
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        now_ns, now_perf = time.time_ns(), time.perf_counter()

        def ns(perf: float) -> int:
            return now_ns - int((now_perf - perf) * 1e9)

        start, end = ns(d.started), ns(ended)
        pool = d.pool
        requested = d.pinned.name if d.pinned is not None else pool.policy
        root = self.tracer.start_span(f"chat {requested}", kind=SpanKind.SERVER, start_time=start,
                                      attributes=_root_attributes(d, record, requested))
        if record.get("status") != "ok":
            root.set_status(Status(StatusCode.ERROR, str(record.get("error") or record.get("status"))[:300]))
            root.set_attribute("error.type", "upstream_error" if record.get("status") == "error"
                               else str(record.get("status")))
        ctx = trace.set_span_in_context(root)
        r = d.result
        if r is not None and d.routing_wall_ms is not None:
            decided = min(end, start + int(d.routing_wall_ms * 1e6))
            route = self.tracer.start_span("router.route", context=ctx, start_time=start,
                                           attributes={"router.routing_wall_ms": d.routing_wall_ms,
                                                       "router.routing_ms": r.timings_ms.get("total_ms", 0.0)})
            rctx = trace.set_span_in_context(route)
            t = decided
            for stage in ("select", "head", "encode"):  # back to back, ending at the decision
                dur = int(float(r.timings_ms.get(f"{stage}_ms") or 0.0) * 1e6)
                s0 = max(start, t - dur)
                span = self.tracer.start_span(f"router.{stage}", context=rctx, start_time=s0,
                                              attributes=_stage_attributes(stage, d))
                span.end(end_time=t)
                t = s0
            route.end(end_time=decided)
        slots = {s.name: s for s in pool.models}
        for a in attempts:
            a_end = getattr(a, "ended_ns", None) or end
            a_start = max(start, a_end - int(float(a.latency_ms or 0.0) * 1e6))
            slot = slots.get(a.slot)
            host = urlsplit(slot.api_base if slot else "")
            attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": a.model,
                     "gen_ai.provider.name": provider_name(slot.api_base if slot else None),
                     "server.address": host.hostname or "", "router.slot": a.slot,
                     "router.latency_ms": float(a.latency_ms or 0.0)}
            if host.port:
                attrs["server.port"] = host.port
            if a.status is not None:
                attrs["http.response.status_code"] = int(a.status)
            span = self.tracer.start_span(f"chat {a.model}", context=ctx, kind=SpanKind.CLIENT,
                                          start_time=a_start, attributes=attrs)
            if a.error or (a.status is not None and a.status != 200):
                from router.serving.metrics import failure_reason

                span.set_attribute("error.type", failure_reason(a.status, a.error))
                span.set_status(Status(StatusCode.ERROR, (a.error or str(a.status))[:300]))
            span.end(end_time=max(a_start, a_end))
        root.end(end_time=end)


def _root_attributes(d, record: Mapping[str, Any], requested: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.request.model": requested,
                             "router.request_id": d.request_id, "router.policy": d.pool.policy,
                             "router.api": str(record.get("api")), "router.status": str(record.get("status")),
                             "router.pinned": d.pinned is not None, "router.stream": bool(d.stream)}
    if record.get("model"):
        attrs["gen_ai.response.model"] = record["model"]
    usage = record.get("usage") or {}
    if usage:
        attrs["gen_ai.usage.input_tokens"] = int(usage.get("prompt_tokens") or 0)
        attrs["gen_ai.usage.output_tokens"] = int(usage.get("completion_tokens") or 0)
    if record.get("selected"):
        attrs["router.selected"] = record["selected"]
    for key in ("actual_cost_usd", "baseline_cost_usd", "latency_ms", "checkpoint_fingerprint", "pool_hash"):
        if record.get(key) is not None:
            attrs[f"router.{key}"] = record[key]
    if d.session_key is not None:
        attrs["session.id"] = str(d.session_key[2])
    if d.client:
        attrs["user.id"] = d.client
    if d.pool.audit_query_text == "store":
        attrs["input.value"] = d.text
    r = d.result
    if r is not None:
        attrs.update({"router.tolerance": r.tolerance, "router.p_max": r.p_max, "router.threshold": r.threshold,
                      "router.chosen": r.chosen, "router.best": r.best, "router.candidates": list(r.candidates),
                      "router.expected_cost_usd": r.expected_cost_usd, "router.baseline": r.baseline,
                      "router.sticky": bool(d.sticky), "router.input_tokens": int(r.input_tokens),
                      "router.failover": bool(record.get("selected")) and record.get("selected") != d.plan[0].name})
        for m in r.models:
            attrs[f"router.p.{m.name}"] = float(m.p)
    return attrs


def _stage_attributes(stage: str, d) -> dict[str, Any]:
    if stage == "encode":
        spec = d.router.checkpoint.encoder_spec
        return {"router.encoder.source": spec.source, "router.encoder.max_tokens": int(spec.max_tokens),
                "router.input_tokens": int(d.result.input_tokens)}
    if stage == "head":
        return {"router.checkpoint_fingerprint": d.router.checkpoint.fingerprint}
    return {"router.tolerance": d.result.tolerance, "router.chosen": d.result.chosen}
