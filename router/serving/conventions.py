"""The small HTTP conventions clients expect: one model by id, readiness, CORS, and the field
names other routers' sidecar clients read from /v1/route.

- `GET /v1/models/{id}`: a policy or slot in the list format's entry shape (404 otherwise).
- `GET /health/ready`: 200 when every pool's encoder is loaded and every enabled slot can be
  called (its key variable is set, or it is local), else 503 naming what is missing. `/health`
  stays a plain liveness check.
- CORS: off unless origins are given (`--cors-origins`), since a browser page on another origin
  could otherwise spend the keys of whoever runs the proxy.
- /v1/route compatibility (`route_compat_fields`): `selected_model` and friends, for clients
  written against the reference router's sidecar (its LiteLLM pre-call hook and OpenClaw plugin
  read `selected_model`); see docs/litellm.md.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from router.errors import UnknownModelError


def model_ids(registry) -> list[tuple[str, str]]:
    """(id, display name) of every policy, then every slot not shadowed by an earlier id."""
    out = [(r.pool.policy, f"router policy: {r.pool.description or r.pool.policy}") for r in registry]
    seen = {i for i, _ in out}
    for r in registry:
        for s in r.pool.models:
            if s.name not in seen:
                seen.add(s.name)
                out.append((s.name, s.label))
    return out


def find_model(registry, model_id: str) -> tuple[str, str]:
    for i, label in model_ids(registry):
        if i == model_id:
            return i, label
    raise UnknownModelError(f"unknown model {model_id!r}: GET /v1/models lists the policies and slots")


def readiness(registry, backend_ready: bool = True) -> tuple[bool, dict[str, Any]]:
    pools = []
    ok = True
    for r in registry:
        enc = getattr(r, "encoder", None)
        encoder_ok = enc is not None and bool(getattr(enc, "loaded", False))
        missing = sorted({s.api_key_env or f"<{s.name}: api_key_env not set>" for s in r.pool.models
                          if s.enabled and not s.local and not (s.api_key_env and os.environ.get(s.api_key_env))})
        pool_ok = encoder_ok and not missing
        ok = ok and pool_ok
        pools.append({"policy": r.pool.policy, "ready": pool_ok, "encoder_loaded": encoder_ok,
                      "missing_keys": missing})
    ok = ok and backend_ready  # the upstream client exists once the app's lifespan has run
    return ok, {"status": "ready" if ok else "not_ready", "upstream_client": backend_ready, "pools": pools}


def add_cors(app, origins: Sequence[str] | None) -> None:
    if not origins:
        return
    from starlette.middleware.cors import CORSMiddleware

    origins = [o.strip() for o in origins if o and o.strip()]
    app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "OPTIONS"],
                       allow_headers=["*"], expose_headers=["*"], allow_credentials="*" not in origins,
                       max_age=600)


def route_compat_fields(result, pool) -> dict[str, Any]:
    """Extra names for the same decision, so reference-router sidecar clients read us unchanged."""
    chosen = pool.slot(result.chosen)
    return {"selected_model": result.chosen, "selected_model_id": chosen.model, "model": chosen.model,
            "confidence": result.score(result.chosen).p, "scores": result.probabilities,
            "routing_ms": round(sum(v for k, v in result.timings_ms.items() if k in ("encode_ms", "head_ms")), 3),
            "fallback": False}
