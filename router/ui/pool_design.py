"""Designing a pool in a browser session: edit a slot, add one that borrows a label column, download YAML.

A design is a `Pool` validated by the loader of `configs/` (`parse_pool` + `check_scorable`), kept in
the visitor's Session only: nothing is written on the server (the download is a data: URL). The
designed router reuses the base router's checkpoint and encoder, so applying a design costs no model
load.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path
from typing import Any

import yaml

from router.errors import ConfigError, InputError
from router.routing.pool import Pool, check_scorable, parse_pool
from router.routing.router import PrefillRouter

NEW_SLOT = "(new slot)"
DESIGN_SUFFIX = "-design"
HEADERS = ["Slot", "Display name", "Destination", "api_base", "$/M in", "$/M out", "Scored as", "On"]
_LOADER_ONLY = ("source_path", "checkpoint_path")


def pool_dict(pool: Pool) -> dict[str, Any]:
    """The pool as it would be written in configs/ (defaults left out, loader-set fields dropped)."""
    d = pool.model_dump(exclude_defaults=True, exclude=set(_LOADER_ONLY))
    d["checkpoint"] = pool.checkpoint
    d["models"] = [s.model_dump(exclude_defaults=True) for s in pool.models]
    order = ["policy", "description", "checkpoint", "default_tolerance", "baseline", "audit_query_text", "models"]
    return {k: d[k] for k in order if k in d}


def to_yaml(pool: Pool) -> str:
    head = (f"# Pool designed in the playground from {Path(pool.source_path or 'configs').name}.\n"
            "# Save it in configs/ (the checkpoint path is relative to that folder). Keys come from the env var\n"
            "# named by api_key_env, never from here. Schema: README 'Pool configs'.\n")
    return head + yaml.safe_dump(pool_dict(pool), sort_keys=False, allow_unicode=True, width=110)


def validate(raw: dict, base: Pool, checkpoint_slots: list[str]) -> Pool:
    """The loader's checks (schema, duplicate names, baseline, label columns); errors name the design.

    The checkpoint stays as written in the base file (relative to configs/) for the download, and
    resolves to the base pool's checkpoint for routing.
    """
    where = f"pool design {raw.get('policy', '?')}"
    resolved = dict(raw, checkpoint=base.checkpoint_path or raw.get("checkpoint"))
    pool = parse_pool(resolved, where)
    check_scorable(pool.model_copy(update={"source_path": where}), checkpoint_slots)
    return pool.model_copy(update={"checkpoint": raw.get("checkpoint", pool.checkpoint),
                                   "checkpoint_path": base.checkpoint_path, "source_path": base.source_path})


def start(base: Pool) -> Pool:
    """A fresh design: the base pool under its own policy name, so its records never mix with the base's."""
    raw = pool_dict(base)
    raw["policy"] = base.policy + DESIGN_SUFFIX
    raw["description"] = f"Designed in the playground from pool {base.policy}. " + (base.description or "")
    return validate(raw, base, [s.score_as for s in base.models])


def _number(v: Any, field: str) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise InputError(f"{field}: expected a price in $ per million tokens, got {v!r}") from None
    return x


def edit_slot(design: Pool, slot: str, checkpoint_slots: list[str], *, name: str | None = None,
              display_name: str | None = None, model: str | None = None, api_base: str | None = None,
              cost_in: Any = None, cost_out: Any = None, trained_as: str | None = None,
              enabled: bool | None = None) -> Pool:
    """Change one slot (or add one when `slot` is NEW_SLOT); the whole pool is re-validated."""
    raw = pool_dict(design)
    models = raw["models"]
    if slot == NEW_SLOT:
        if not (name or "").strip():
            raise InputError("new slot: give it a name (a slot name is what clients send to pin it)")
        entry: dict[str, Any] = {"name": name.strip(), "cost_per_m_input_tokens": 0.0, "cost_per_m_output_tokens": 0.0}
        models.append(entry)
        where = f"models[{len(models) - 1}]"
    else:
        idx = [m["name"] for m in models].index(slot) if slot in [m["name"] for m in models] else None
        if idx is None:
            raise InputError(f"no slot {slot!r} in the design; slots: {', '.join(m['name'] for m in models)}")
        entry, where = models[idx], f"models[{idx}]"
        if name and name.strip() and name.strip() != slot:
            entry["name"] = name.strip()
            if raw.get("baseline") == slot:
                raw["baseline"] = name.strip()
    if display_name is not None:
        entry["display_name"] = display_name.strip() or None
        if entry["display_name"] is None:
            entry.pop("display_name")
    if model is not None and model.strip():
        entry["model"] = model.strip()
    if api_base is not None and api_base.strip():
        entry["api_base"] = api_base.strip()
    if cost_in is not None:
        entry["cost_per_m_input_tokens"] = _number(cost_in, f"{where}.cost_per_m_input_tokens")
    if cost_out is not None:
        entry["cost_per_m_output_tokens"] = _number(cost_out, f"{where}.cost_per_m_output_tokens")
    if trained_as:
        if trained_as == entry["name"]:
            entry.pop("trained_as", None)
        else:
            entry["trained_as"] = trained_as
            entry["trained_as_reason"] = (f"Set in the playground: this slot borrows the P(correct) of {trained_as}. "
                                          "A proxy, not a measurement.")
    if enabled is not None:
        entry["enabled"] = bool(enabled)
    if slot == NEW_SLOT:
        entry.setdefault("model", entry["name"])
    try:
        return validate(raw, design, checkpoint_slots)
    except ConfigError as exc:
        raise InputError(f"the design is not a valid pool: {exc}") from None


def router_for(base: PrefillRouter, design: Pool) -> PrefillRouter:
    return PrefillRouter(design, checkpoint=base.checkpoint, encoder=base.encoder)


def rows(pool: Pool) -> list[list[Any]]:
    return [[s.name, s.label, s.model, s.api_base, s.cost_per_m_input_tokens, s.cost_per_m_output_tokens,
             s.score_as, "yes" if s.enabled else "no"] for s in pool.models]


def download_html(pool: Pool) -> str:
    """A link that downloads the design's YAML from the page itself (a data: URL: no file on the server)."""
    text = to_yaml(pool)
    b64 = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return (f"<a id='design-download' class='design-download' download='{escape(pool.policy)}.yaml' "
            f"href='data:application/yaml;base64,{b64}'>Download {escape(pool.policy)}.yaml</a>")
