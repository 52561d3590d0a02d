"""Make an existing LiteLLM Router or proxy route with the prefill router.

Two ways in, one decision source (`RouteSource`):

- `PrefillRoutingStrategy`: a LiteLLM custom routing strategy. Register it on a `litellm.Router`
  (`router.register_plugin(strategy)`); for the model groups it serves, it picks the deployment
  whose `model_info.prefill_slot` (or model_name, or litellm_params.model) is the router's choice.
- `PrefillPreCallHook`: a proxy `CustomLogger` whose `async_pre_call_hook` rewrites
  `data["model"]` from a routed name (default: the policy) to the chosen slot's model_name.
  The LiteLLM proxy loads it from config.yaml (`litellm_settings.callbacks`, see docs/litellm.md);
  `proxy_handler_instance` below is built from PREFILL_ROUTER_* environment variables for that.
  Its `async_post_call_response_headers_hook` puts the decision in x-prefill-router-* headers.

Decisions come from the router's `/v1/route` sidecar (`HttpRoute`: timeout 2 s by default) or
in-process from a `PrefillRouter` (`LocalRoute`). Both sit behind a circuit breaker: after
`failure_threshold` consecutive failures the sidecar is not called for `reset_after_s` seconds
and the `fallback_model` is used (then one trial call decides whether it closes again). A failed
or skipped decision never fails the user's request: it falls back.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

try:  # subclass LiteLLM's bases when it is installed; the module stays importable without it
    from litellm.integrations.custom_logger import CustomLogger as _HookBase
    from litellm.types.router import CustomRoutingStrategyBase as _StrategyBase
except ImportError:  # pragma: no cover - exercised only where litellm is absent
    _HookBase = object  # type: ignore[assignment,misc]
    _StrategyBase = object  # type: ignore[assignment,misc]


@dataclass
class CircuitBreaker:
    """closed -> (failure_threshold consecutive failures) -> open for reset_after_s -> half-open: one
    trial call; success closes, failure opens again. Thread-safe (LiteLLM may call from threads)."""

    failure_threshold: int = 3
    reset_after_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def state(self) -> str:
        with self._lock:
            if self.opened_at is None:
                return "closed"
            return "half_open" if self.clock() - self.opened_at >= self.reset_after_s else "open"

    def allow(self) -> bool:
        return self.state != "open"

    def success(self) -> None:
        with self._lock:
            self.failures, self.opened_at = 0, None

    def failure(self) -> None:
        with self._lock:
            self.failures += 1
            if self.failures >= self.failure_threshold or self.opened_at is not None:
                self.opened_at = self.clock()


class HttpRoute:
    """POST {url}/v1/route with the conversation; returns the chosen slot name."""

    def __init__(self, url: str, *, api_key: str | None = None, policy: str | None = None,
                 tolerance: float | None = None, timeout: float = 2.0):
        self.url = url.rstrip("/").removesuffix("/v1") + "/v1/route"
        self.api_key, self.policy, self.tolerance, self.timeout = api_key, policy, tolerance, timeout

    def _body(self, messages: list[dict]) -> dict:
        body: dict[str, Any] = {"messages": messages}
        if self.policy:
            body["policy"] = self.policy
        if self.tolerance is not None:
            body["tolerance"] = self.tolerance
        return body

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    async def choose(self, messages: list[dict]) -> str:
        import httpx

        async with httpx.AsyncClient(timeout=self.timeout) as client:
            resp = await client.post(self.url, json=self._body(messages), headers=self._headers())
        resp.raise_for_status()
        return str(resp.json()["selected_model"])

    def choose_sync(self, messages: list[dict]) -> str:
        import httpx

        resp = httpx.post(self.url, json=self._body(messages), headers=self._headers(), timeout=self.timeout)
        resp.raise_for_status()
        return str(resp.json()["selected_model"])


class LocalRoute:
    """In-process: a loaded `PrefillRouter` decides (no sidecar; the encoder runs in this process)."""

    def __init__(self, router, tolerance: float | None = None, timeout: float = 2.0):
        self.router, self.tolerance, self.timeout = router, tolerance, timeout

    def choose_sync(self, messages: list[dict]) -> str:
        return self.router.route(messages, tolerance=self.tolerance).chosen

    async def choose(self, messages: list[dict]) -> str:
        return await asyncio.wait_for(asyncio.to_thread(self.choose_sync, messages), self.timeout)


class RouteSource:
    """A decision source behind a circuit breaker, with a fallback model."""

    def __init__(self, backend, *, fallback_model: str | None = None, breaker: CircuitBreaker | None = None):
        self.backend = backend
        self.fallback_model = fallback_model
        self.breaker = breaker or CircuitBreaker()
        self.last_error: str | None = None

    async def choose(self, messages: list[dict]) -> str | None:
        return (await self.decide(messages))[0]

    async def decide(self, messages: list[dict]) -> tuple[str | None, str | None]:
        """(model, why it is the fallback: "circuit_open" or "route_error"; None when the router chose).
        Returned, not stored, because one source serves concurrent proxy requests."""
        if not self.breaker.allow():
            return self.fallback_model, "circuit_open"
        try:
            name = await self.backend.choose(_plain(messages))
        except Exception as exc:  # any failure (timeout, refused, 5xx, bad body) falls back; never fails the call
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.breaker.failure()
            return self.fallback_model, "route_error"
        self.breaker.success()
        return name, None

    def choose_sync(self, messages: list[dict]) -> str | None:
        if not self.breaker.allow():
            return self.fallback_model
        try:
            name = self.backend.choose_sync(_plain(messages))
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.breaker.failure()
            return self.fallback_model
        self.breaker.success()
        return name


def _plain(messages: Any) -> list[dict]:
    """LiteLLM may hand over pydantic message objects; /v1/route wants JSON."""
    out = []
    for m in messages or []:
        if hasattr(m, "model_dump"):
            m = m.model_dump(exclude_none=True)
        out.append(dict(m))
    return out


def _deployments(router) -> list[dict]:
    registry = getattr(router, "registry", None)
    if callable(registry):
        items = registry().all()
    else:
        items = router.model_list
    return [d.model_dump() if hasattr(d, "model_dump") else dict(d) for d in items]


def _matches(dep: dict, name: str) -> bool:
    info = dep.get("model_info") or {}
    params = dep.get("litellm_params") or {}
    model = str(params.get("model") or "")
    return name in (info.get("prefill_slot"), info.get("id"), dep.get("model_name")) or model.endswith("/" + name)


class PrefillRoutingStrategy(_StrategyBase):
    """LiteLLM custom routing strategy: `router.register_plugin(PrefillRoutingStrategy(router, source))`.

    `groups`: the model groups it decides for (default: every group); other groups, and
    deployments the choice does not match, fall back to the group's `fallback_model` deployment
    or its first one.
    """

    def __init__(self, router, source: RouteSource, groups: set[str] | None = None):
        self.router, self.source, self.groups = router, source, groups

    def _pick(self, model: str, name: str | None) -> dict | None:
        deps = [d for d in _deployments(self.router) if d.get("model_name") == model]
        if not deps:
            return None
        for wanted in (name, self.source.fallback_model):
            if wanted:
                hit = next((d for d in deps if _matches(d, wanted)), None)
                if hit is not None:
                    return hit
        return deps[0]

    async def async_get_available_deployment(self, model: str, messages: list[dict] | None = None,
                                             input: Any = None, specific_deployment: bool | None = False,
                                             request_kwargs: dict | None = None):
        if self.groups is not None and model not in self.groups or not messages:
            return self._pick(model, None)
        return self._pick(model, await self.source.choose(messages))

    def get_available_deployment(self, model: str, messages: list[dict] | None = None, input: Any = None,
                                 specific_deployment: bool | None = False, request_kwargs: dict | None = None):
        if self.groups is not None and model not in self.groups or not messages:
            return self._pick(model, None)
        return self._pick(model, self.source.choose_sync(messages))


class PrefillPreCallHook(_HookBase):
    """LiteLLM proxy pre-call hook: a request for one of `route_models` (the policy name clients
    send) gets `data["model"]` replaced by the chosen slot's model_name (`names` maps slot names to
    other model_names when the proxy's config names them differently)."""

    def __init__(self, source: RouteSource, route_models: set[str], names: dict[str, str] | None = None):
        if _HookBase is not object:
            super().__init__()
        self.source, self.route_models, self.names = source, set(route_models), dict(names or {})

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: Any):
        if data.get("model") not in self.route_models or not data.get("messages"):
            return data
        name, fell_back = await self.source.decide(data["messages"])
        if name:
            metadata = data.setdefault("metadata", {})
            metadata["prefill_router"] = {"requested": data["model"], "selected": name,
                                          "fallback": fell_back is not None, "fallback_reason": fell_back}
            data["model"] = self.names.get(name, name)
        return data

    async def async_post_call_response_headers_hook(self, data: dict, user_api_key_dict: Any, response: Any,
                                                    request_headers: dict | None = None, **_: Any):
        """The proxy's response headers: the decision, so a client sees it without access to the
        request metadata (LiteLLM calls this on success and on failure)."""
        info = (data.get("metadata") or {}).get("prefill_router")
        if not info:
            return None
        headers = {"x-prefill-router-requested": str(info["requested"]),
                   "x-prefill-router-selected": str(info["selected"]),
                   "x-prefill-router-fallback": "true" if info["fallback"] else "false"}
        if info.get("fallback_reason"):
            headers["x-prefill-router-fallback-reason"] = info["fallback_reason"]
        return headers


def from_env(environ: dict[str, str] | None = None) -> PrefillPreCallHook:
    """The hook as the LiteLLM proxy loads it: PREFILL_ROUTER_URL (default http://127.0.0.1:8000),
    PREFILL_ROUTER_MODELS (comma-separated routed names; default: PREFILL_ROUTER_POLICY or
    'prefill-router'), PREFILL_ROUTER_POLICY, PREFILL_ROUTER_TOLERANCE, PREFILL_ROUTER_TIMEOUT
    (seconds, default 2), PREFILL_ROUTER_FALLBACK_MODEL, PREFILL_ROUTER_FAILURES (breaker threshold,
    default 3), PREFILL_ROUTER_RESET_S (default 30), PREFILL_ROUTER_API_KEY (if the router needs one)."""
    env = os.environ if environ is None else environ
    policy = env.get("PREFILL_ROUTER_POLICY") or None
    tol = env.get("PREFILL_ROUTER_TOLERANCE")
    backend = HttpRoute(env.get("PREFILL_ROUTER_URL", "http://127.0.0.1:8000"),
                        api_key=env.get("PREFILL_ROUTER_API_KEY") or None, policy=policy,
                        tolerance=float(tol) if tol else None, timeout=float(env.get("PREFILL_ROUTER_TIMEOUT", "2")))
    breaker = CircuitBreaker(int(env.get("PREFILL_ROUTER_FAILURES", "3")),
                             float(env.get("PREFILL_ROUTER_RESET_S", "30")))
    source = RouteSource(backend, fallback_model=env.get("PREFILL_ROUTER_FALLBACK_MODEL") or None, breaker=breaker)
    models = env.get("PREFILL_ROUTER_MODELS") or policy or "prefill-router"
    return PrefillPreCallHook(source, {m.strip() for m in models.split(",") if m.strip()})


def __getattr__(name: str):
    # Built on first access, not at import: the proxy's config names this attribute.
    if name == "proxy_handler_instance":
        value = from_env()
        globals()[name] = value
        return value
    raise AttributeError(name)
