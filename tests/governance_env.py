"""Shared setup for the governance tests: a pool with on-prem and cloud slots on two separate
loopback stubs (so "the cloud received nothing" is a plain fact about one server), sensitivity
rules and budgets, and a clock the tests move by hand."""

from __future__ import annotations

from pathlib import Path

import yaml

from .proxy_env import CHECKPOINT

POLICY = "govpool"
CLOUD_KEY_ENV = "GOV_TEST_CLOUD_KEY"
# (slot, label column, $/M in, $/M out, local)
SLOTS = [
    ("onprem-small", "mistralai/mistral-7b-chat", 0.0, 0.0, True),
    ("onprem-big", "claude-v2", 0.01, 0.02, True),
    ("cloud-mid", "gpt-3.5-turbo-1106", 0.5, 1.5, False),
    ("cloud-best", "gpt-4-1106-preview", 10.0, 30.0, False),
]
LOCAL = {s[0] for s in SLOTS if s[4]}
CLOUD = {s[0] for s in SLOTS if not s[4]}
SENSITIVE = [
    {"name": "pii", "detectors": ["us_ssn", "email"], "keywords": ["confidential"], "action": "local_only"},
    {"name": "secrets", "detectors": ["private_key"], "action": "block"},
    {"name": "cards", "detectors": ["credit_card"], "action": "redact"},
]
SSN = "123-45-6789"


def dest(slot: str) -> str:
    return f"gov/{slot}"


def write_pool(folder: Path, local_url: str, cloud_url: str, *, budgets: list | None = None,
               sensitive: list | None = None, policy: str = POLICY, audit_query_text: str = "store",
               extra_slot: dict | None = None) -> Path:
    models = []
    for name, label, cin, cout, local in SLOTS:
        slot = {"name": name, "model": dest(name), "api_base": local_url if local else cloud_url,
                "cost_per_m_input_tokens": cin, "cost_per_m_output_tokens": cout, "trained_as": label}
        if local:
            slot["local"] = True
        else:
            slot["api_key_env"] = CLOUD_KEY_ENV
        slot.update((extra_slot or {}).get(name, {}))
        models.append(slot)
    cfg = {"policy": policy, "checkpoint": CHECKPOINT, "default_tolerance": 0.0, "baseline": "cloud-best",
           "audit_query_text": audit_query_text, "models": models,
           "sensitive": SENSITIVE if sensitive is None else sensitive, "budgets": budgets or []}
    path = Path(folder) / f"{policy}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


class Clock:
    """An injectable clock: `now` in epoch seconds, moved by the test."""

    def __init__(self, now: float):
        self.now = float(now)

    def __call__(self) -> float:
        return self.now
