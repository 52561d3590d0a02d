"""Shared by the playground tests: a pool YAML whose slots are served by the loopback upstream stub."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

STUB_SLOTS = [
    # name, destination model id, $/M in, $/M out, checkpoint column
    ("stub-small", "stub/small-model", 0.5, 1.0, "mistralai/mistral-7b-chat"),
    ("stub-large", "stub/large-model", 3.0, 15.0, "gpt-4-1106-preview"),
]


def stub_pool_yaml(tmp_path: Path, base_url: str, policy: str = "stubpool", judge_key_env: str | None = None) -> Path:
    """A local pool (no keys needed) pointing every slot at `base_url`."""
    models = [{"name": n, "display_name": n.replace("-", " ").title(), "model": m, "api_base": base_url,
               "local": True, "cost_per_m_input_tokens": cin, "cost_per_m_output_tokens": cout, "trained_as": col}
              for n, m, cin, cout, col in STUB_SLOTS]
    if judge_key_env:
        models[-1]["local"] = False
        models[-1]["api_key_env"] = judge_key_env
    cfg = {"policy": policy, "description": "Test pool served by the loopback stub.",
           "checkpoint": str(ROOT / "assets" / "checkpoint"), "default_tolerance": 0.2, "models": models}
    path = tmp_path / f"{policy}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path
