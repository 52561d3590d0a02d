"""Shared setup for proxy tests and the proxy benchmark: a pool YAML whose slots point at the
loopback stub, and the real app served by uvicorn in a thread.

Slot prices rise with the label column's RouterBench strength, so the cheapest slot is usually not
the best; tests still never assume particular probabilities.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from router.routing.pool import PROJECT_ROOT

try:
    from .serving import ServerThread
except ImportError:  # imported by benchmarks/ with tests/ on sys.path
    from serving import ServerThread

CHECKPOINT = str((PROJECT_ROOT / "assets" / "checkpoint").resolve())

# (slot name, label column of the checkpoint, $/M input, $/M output)
SLOTS = [
    ("cheap", "mistralai/mistral-7b-chat", 0.05, 0.2),
    ("mid", "gpt-3.5-turbo-1106", 0.5, 1.5),
    ("strong", "claude-v2", 3.0, 12.0),
    ("best", "gpt-4-1106-preview", 10.0, 30.0),
]
POLICY = "stubpool"


def dest(slot: str) -> str:
    """The destination model id the stub sees for a slot."""
    return f"stub/{slot}"


def write_pool(folder: Path, base_url: str, *, policy: str = POLICY, slots=None, key_env: str | None = None,
               judge_key_env: str | None = None, audit_query_text: str = "store", default_tolerance: float = 0.2,
               baseline: str | None = "best") -> Path:
    """A pool YAML whose slots all call `base_url` (the loopback stub). `slots`: (name, destination,
    $/M in, $/M out, checkpoint column) rows, default SLOTS. Local slots unless `key_env` names the
    key of every slot, or `judge_key_env` that of the last (most expensive) one only."""
    rows = slots or [(n, dest(n), cin, cout, label) for n, label, cin, cout in SLOTS]
    models = []
    for i, (name, model, cin, cout, label) in enumerate(rows):
        slot = {"name": name, "display_name": name.replace("-", " ").title(), "model": model, "api_base": base_url,
                "cost_per_m_input_tokens": cin, "cost_per_m_output_tokens": cout, "trained_as": label}
        env = key_env or (judge_key_env if i == len(rows) - 1 else None)
        if env:
            slot["api_key_env"] = env
        else:
            slot["local"] = True
        models.append(slot)
    cfg = {"policy": policy, "description": "test pool on the loopback stub", "checkpoint": CHECKPOINT,
           "default_tolerance": default_tolerance, "audit_query_text": audit_query_text, "models": models}
    if baseline:
        cfg["baseline"] = baseline
    path = Path(folder) / f"{policy}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def make_registry(*paths: Path):
    from router.routing.registry import RouterRegistry

    return RouterRegistry.from_paths(list(paths), default_path=paths[0])


def serve_api(registry, **kwargs) -> ServerThread:
    """Start create_api(registry, **kwargs) under uvicorn on a free port; call .stop() when done."""
    from router.serving.app import create_api

    return ServerThread(create_api(registry, **kwargs)).start()


def audit_lines(path: Path) -> list[dict]:
    """The complete lines of an audit log. Lines are appended by a background task after the response,
    so a poll can read one half-written (CI hit it once): what follows the last newline is left for
    the next poll, as the log's own readers skip a torn tail."""
    data = Path(path).read_bytes()  # bytes: a torn tail may also end inside a multi-byte character
    return [json.loads(x) for x in data[: data.rfind(b"\n") + 1].decode("utf-8").splitlines() if x.strip()]


def audit_for(path: Path, request_id: str, wait: float = 20.0) -> dict:
    """The audit line of a request. Lines are written just after the response (or a stream's last
    event) has gone out, so poll."""
    deadline = time.time() + wait
    while True:
        # A stream writes a "started" line when it opens and its final line when it ends: wait for the final one.
        line = next((r for r in audit_lines(path) if r["request_id"] == request_id and r["status"] != "started"),
                    None)
        if line is not None or time.time() > deadline:
            assert line is not None, f"no audit line for {request_id}"
            return line
        time.sleep(0.05)


def wait_audit_lines(path: Path, n: int, wait: float = 20.0) -> list[dict]:
    """The audit lines once there are at least `n` of them (or whatever is there after `wait` s)."""
    deadline = time.time() + wait
    while len(lines := audit_lines(path)) < n and time.time() < deadline:
        time.sleep(0.05)
    return lines
