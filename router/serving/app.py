"""The HTTP API: `create_api(registry)` -> FastAPI app (app.py mounts the UI on it; `python -m router
serve` runs it headless).

    POST /v1/route             RoutingResult as JSON (no upstream call)
    POST /v1/chat/completions  OpenAI chat, routed (model = policy) or pinned (model = slot)
    POST /v1/messages          Anthropic Messages, routed or pinned, translated to the upstream call
    POST /v1/messages/count_tokens   input-token estimate (Anthropic format; the router's tokenizer)
    POST /v1/responses         OpenAI Responses API, routed, sent upstream as a chat completion (or passed through)
    GET  /v1/models            policies and slots in OpenAI's (and Anthropic's) list format
    GET  /v1/models/{id}       one of them
    GET  /api/models           every pool: slots, prices, bindings, local flag, whether its key is set
    GET  /v1/budgets           every budget cap that concerns the caller: spend, cap, reset time
    GET  /health               liveness (and the state store: SQLite / Redis up or down); always open
    GET  /health/ready         readiness: encoders loaded and every slot's key present (503 otherwise)
    GET  /metrics              Prometheus text format (router/serving/metrics.py); keys like /v1/*

CORS is off unless `cors_origins` is given (router.serving.conventions).

FastAPI is imported here and only here (plus the modules this one wires together).
One `httpx.AsyncClient` (router.http_client) is created in the app's lifespan and shared by every
upstream call.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from router import __version__
from router.audit.log import AuditLog
from router.errors import InputError
from router.routing.registry import RouterRegistry
from router.serving import conventions
from router.serving import errors as http_errors
from router.serving import governance as gov_hooks
from router.serving.anthropic_api import count_tokens
from router.serving.anthropic_api import messages as anthropic_messages
from router.serving.auth import check_access, configured_keys, key_names
from router.serving.limits import BodyLimit, configured_max_body
from router.serving.openai_api import chat_completions
from router.serving.openapi_doc import document_errors
from router.serving.pipeline import ProxyState
from router.serving.responses_api import responses as responses_endpoint
from router.serving.schemas import (
    ChatCompletionRequest,
    CountTokensRequest,
    MessagesRequest,
    ResponsesRequest,
    RouteRequest,
)
from router.upstream.backends import Backend
from router.upstream.deadline import DEFAULT_DEADLINE_S

AUDIT_ENV = "ROUTER_AUDIT_LOG"


def _client():
    from router.upstream.client import upstream_client

    # Generous pool: each concurrent proxied request holds one upstream connection while it streams.
    return upstream_client(max_connections=1000)


def create_api(registry: RouterRegistry | None = None, *, audit_log: str | Path | None = None,
               api_keys: Sequence[str] | None = None, retries: int = 2, backoff: float = 0.25,
               timeout: float = 120.0, governance: gov_hooks.Governance | None = None, metrics: bool = True,
               tracing: Any = "env", cors_origins: Sequence[str] | None = None,
               deadline: float = DEFAULT_DEADLINE_S, max_body: int | None = None):
    """Build the API. Audit log: `audit_log`, else $ROUTER_AUDIT_LOG, else none.
    Access keys: `api_keys`, else $ROUTER_API_KEYS (comma-separated, `name:key` entries named), else open.
    Budget spend and sessions: `governance`, else SQLite next to the audit log (or in memory) and
    Redis when $ROUTER_REDIS_URL is set.
    `metrics`: serve /metrics (a registry of this app's own). `tracing`: a router.serving.tracing.Tracing,
    None (off), or "env" (on when an OTLP endpoint is set in the environment; see tracing.py).
    `timeout`: seconds per upstream try (connect + first byte, and between stream chunks);
    `deadline`: total seconds per request across retries and failover; `max_body`: bytes, else
    $ROUTER_MAX_BODY_BYTES, else 4 MB (413 beyond)."""
    registry = registry or RouterRegistry.from_paths()
    audit_path = audit_log or os.environ.get(AUDIT_ENV)
    if governance is None:
        governance = gov_hooks.Governance.create(audit_path, key_names=key_names())
    if tracing == "env":
        from router.serving.tracing import ENDPOINT_VARS

        tracing = None
        if any(os.environ.get(v) for v in ENDPOINT_VARS):  # the SDK is imported only when asked for
            from router.serving.tracing import Tracing

            tracing = Tracing.from_env()
    metrics_obj = None
    if metrics:
        from router.serving.metrics import Metrics

        metrics_obj = Metrics(scan_cache=governance.scans)
    state = ProxyState(registry=registry, api_keys=tuple(configured_keys() if api_keys is None else api_keys),
                       audit=AuditLog(audit_path) if audit_path else None, retries=retries, backoff=backoff,
                       timeout=timeout, governance=governance, metrics=metrics_obj, tracing=tracing,
                       deadline=deadline)

    @asynccontextmanager
    async def lifespan(app):
        async with _client() as client:
            state.backend = Backend(client, retries=state.retries, backoff=state.backoff, timeout=state.timeout)
            yield
            state.backend = None
            if state.tracing is not None:
                state.tracing.shutdown()

    app = FastAPI(title="Prefill Router", version=__version__,
                  description="OpenAI- and Anthropic-compatible router: cheapest model within `tolerance` "
                              "of the best predicted P(correct).", lifespan=lifespan)
    app.state.proxy = state
    http_errors.install(app)
    if metrics_obj is not None:
        from router.serving.metrics import HTTPMetricsMiddleware

        app.add_middleware(HTTPMetricsMiddleware, metrics=metrics_obj)
    conventions.add_cors(app, cors_origins)
    app.add_middleware(BodyLimit, max_bytes=configured_max_body(max_body))

    async def backend_ready() -> None:
        if state.backend is None:  # served without lifespan (e.g. some test clients): one client, lazily
            state.backend = Backend(_client(), retries=state.retries, backoff=state.backoff, timeout=state.timeout)

    async def access(request: Request) -> str | None:
        return check_access(request.headers, state.api_keys)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        out = {"status": "ok", "policies": registry.policies, "default": registry.default,
               "auth": bool(state.api_keys), "audit_log": str(state.audit.path) if state.audit else None,
               "state": governance.health()}
        if governance.link is not None and not governance.link.up:
            out["warnings"] = ["Redis is unreachable: budgets are enforced from this replica's counters "
                               "and sessions are sticky per replica until it is back"]
        return out

    @app.get("/v1/budgets")
    async def v1_budgets(token: str | None = Depends(access)) -> dict[str, Any]:
        return gov_hooks.budget_report(governance, [r.pool for r in registry], governance.client_name(token))

    if metrics_obj is not None:
        @app.get("/metrics", include_in_schema=False)
        async def prometheus_metrics(token: str | None = Depends(access)) -> Response:
            body, content_type = metrics_obj.exposition()
            return Response(body, media_type=content_type)

    @app.get("/health/ready")
    async def health_ready() -> JSONResponse:
        ok, body = conventions.readiness(registry, backend_ready=state.backend is not None)
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/api/models")
    async def api_models() -> dict[str, Any]:
        return {"default": registry.default, "policies": [_pool_info(r, registry.default) for r in registry]}

    @app.get("/v1/models")
    async def v1_models(token: str | None = Depends(access)) -> dict[str, Any]:
        data = []
        for r in registry:
            data.append(_model_entry(r.pool.policy, f"router policy: {r.pool.description or r.pool.policy}"))
        seen = set(registry.policies)
        for r in registry:
            for s in r.pool.models:
                if s.name not in seen:
                    seen.add(s.name)
                    data.append(_model_entry(s.name, s.label))
        return {"object": "list", "data": data, "has_more": False,
                "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None}

    @app.get("/v1/models/{model_id:path}")
    async def v1_model(model_id: str, token: str | None = Depends(access)) -> dict[str, Any]:
        return _model_entry(*conventions.find_model(registry, model_id))

    @app.post("/v1/route")
    async def route(body: RouteRequest, token: str | None = Depends(access)) -> JSONResponse:
        texts = [t for t in (body.question, body.prompt, body.query) if t is not None]
        if len(texts) + (body.messages is not None) != 1:
            raise InputError("send exactly one of question (a string; prompt and query are accepted as its "
                             "aliases) or messages (a chat conversation)")
        router = registry.get(body.policy or body.model)
        query = texts[0] if texts else [m.model_dump(exclude_unset=True)
                                                                 for m in body.messages]
        if isinstance(query, list):
            from router.serving.pipeline import routing_text

            query = routing_text(router, query)  # an agent turn ending in a tool result routes on what came before
        args = router.check_args(body.tolerance, body.models)  # cheap checks before the encoder pass
        text = router.query_text(query)
        g = gov_hooks.gate(governance, router.pool, scan_messages=query, pinned=None, models=body.models,
                           client=governance.client_name(token), session_key=None, routing_text=text)
        result = router.decide_checked(await state.score(router, text), g.narrow(router, args))
        result.governance = g.info()
        headers = {"X-Router-Selected": result.chosen, "X-Router-Tolerance": f"{result.tolerance:g}",
                   "X-Router-P-Max": f"{result.p_max:.6f}", "X-Router-Threshold": f"{result.threshold:.6f}",
                   **g.headers()}
        return JSONResponse({**result.to_dict(), **conventions.route_compat_fields(result, router.pool)},
                            headers=headers)

    @app.post("/v1/chat/completions")
    async def chat(body: ChatCompletionRequest, request: Request, token: str | None = Depends(access)):
        await backend_ready()
        return await chat_completions(state, body, token=token, session=request.headers.get("x-router-session"),
                                      request=request)

    @app.post("/v1/messages")
    async def messages(body: MessagesRequest, request: Request, token: str | None = Depends(access)):
        await backend_ready()
        return await anthropic_messages(state, body, token=token, session=request.headers.get("x-router-session"),
                                        request=request)

    @app.post("/v1/responses")
    async def responses(body: ResponsesRequest, request: Request, token: str | None = Depends(access)):
        await backend_ready()
        return await responses_endpoint(state, body, token=token, session=request.headers.get("x-router-session"),
                                        request=request)

    @app.post("/v1/messages/count_tokens")
    async def messages_count_tokens(body: CountTokensRequest, token: str | None = Depends(access)):
        return await count_tokens(state, body)

    @app.api_route("/v1/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"],
                   include_in_schema=False)
    async def v1_unknown(request: Request):
        # Registered last, before app.py mounts the UI at "/": an unknown /v1 path (or a known one with
        # the wrong method) answers in the API's error shape, not Gradio's.
        from starlette.exceptions import HTTPException
        from starlette.routing import Match

        allowed = sorted({m for r in app.router.routes if r is not v1_route and getattr(r, "methods", None)
                          and r.matches(request.scope)[0] != Match.NONE for m in r.methods})
        if allowed:
            raise HTTPException(405, headers={"Allow": ", ".join(allowed)})
        raise HTTPException(404)

    v1_route = app.router.routes[-1]
    document_errors(app)
    return app


def _model_entry(model_id: str, display: str) -> dict[str, Any]:
    # Both SDKs read this list: OpenAI wants id/object/created/owned_by, Anthropic id/type/display_name/created_at.
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "prefill-router", "type": "model",
            "display_name": display, "created_at": "1970-01-01T00:00:00Z"}


def _pool_info(router, default: str) -> dict[str, Any]:
    pool = router.pool
    slots = []
    for s in pool.models:
        slots.append({"name": s.name, "display_name": s.label, "model": s.model, "api_base": s.api_base,
                      "api_key_env": s.api_key_env, "key_set": bool(s.api_key_env and os.environ.get(s.api_key_env)),
                      "local": s.local, "enabled": s.enabled, "cost_per_m_input_tokens": s.cost_per_m_input_tokens,
                      "cost_per_m_output_tokens": s.cost_per_m_output_tokens, "trained_as": s.score_as,
                      "trained_as_reason": s.trained_as_reason})
    return {"policy": pool.policy, "default": pool.policy == default, "description": pool.description,
            "default_tolerance": pool.default_tolerance, "baseline": pool.baseline_slot.name,
            "checkpoint": pool.checkpoint_path, "audit_query_text": pool.audit_query_text, "models": slots,
            "sensitive": [{"name": r.name, "action": r.action, "detectors": r.detectors, "patterns": len(r.patterns),
                           "keywords": len(r.keywords), "presidio": r.presidio is not None} for r in pool.sensitive],
            "budgets": [r.model_dump() for r in pool.budgets]}
