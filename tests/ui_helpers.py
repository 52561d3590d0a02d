"""Shared by the playground tests: a pool YAML whose slots are served by the loopback upstream stub."""

from __future__ import annotations

from pathlib import Path

from router.paths import PROJECT_ROOT

from .proxy_env import write_pool

ROOT = PROJECT_ROOT

STUB_SLOTS = [
    # name, destination model id, $/M in, $/M out, checkpoint column
    ("stub-small", "stub/small-model", 0.5, 1.0, "mistralai/mistral-7b-chat"),
    ("stub-large", "stub/large-model", 3.0, 15.0, "gpt-4-1106-preview"),
]


def stub_pool_yaml(tmp_path: Path, base_url: str, policy: str = "stubpool", judge_key_env: str | None = None) -> Path:
    """A local pool (no keys needed, unless `judge_key_env` names the judge's) pointing every slot at `base_url`."""
    return write_pool(tmp_path, base_url, policy=policy, slots=STUB_SLOTS, judge_key_env=judge_key_env, baseline=None)
