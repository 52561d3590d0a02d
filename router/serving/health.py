"""GET /health/ready: 200 once the app can answer a proxied request, 503 before (container health
checks and load balancers poll it; /health stays the always-open liveness probe).

Ready means: every pool's router is built (checkpoint and encoder loaded, which create_api does
before serving) and the shared upstream client exists (the app's lifespan has run).
A minimal version for the Dockerfile's HEALTHCHECK; the governance work (issue 13) may extend it.
"""

from __future__ import annotations

from typing import Any


def readiness(state) -> tuple[int, dict[str, Any]]:
    problems = []
    if state.backend is None:
        problems.append("upstream client not started (lifespan has not run)")
    for r in state.registry:
        if r.encoder is None or r.checkpoint is None:
            problems.append(f"pool {r.pool.policy}: router not loaded")
    body: dict[str, Any] = {"status": "not ready" if problems else "ready", "policies": state.registry.policies}
    if problems:
        body["problems"] = problems
    return (503 if problems else 200), body
