"""Shared setup for proxy tests and the proxy benchmark: a pool YAML whose slots point at the
loopback stub, and the real app served by uvicorn in a thread.

Slot prices rise with the label column's RouterBench strength, so the cheapest slot is usually not
the best; tests still never assume particular probabilities.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from router.pool import PROJECT_ROOT

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


def write_pool(folder: Path, base_url: str, *, policy: str = POLICY, key_env: str | None = None,
               audit_query_text: str = "store", default_tolerance: float = 0.2) -> Path:
    models = []
    for name, label, cin, cout in SLOTS:
        slot = {"name": name, "display_name": name.title(), "model": dest(name), "api_base": base_url,
                "cost_per_m_input_tokens": cin, "cost_per_m_output_tokens": cout, "trained_as": label}
        if key_env:
            slot["api_key_env"] = key_env
        else:
            slot["local"] = True
        models.append(slot)
    cfg = {"policy": policy, "description": "test pool on the loopback stub", "checkpoint": CHECKPOINT,
           "default_tolerance": default_tolerance, "baseline": "best", "audit_query_text": audit_query_text,
           "models": models}
    path = Path(folder) / f"{policy}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def make_registry(*paths: Path):
    from router.registry import RouterRegistry

    return RouterRegistry.from_paths(list(paths), default_path=paths[0])


def serve_api(registry, **kwargs) -> ServerThread:
    """Start create_api(registry, **kwargs) under uvicorn on a free port; call .stop() when done."""
    from router.server import create_api

    return ServerThread(create_api(registry, **kwargs)).start()
