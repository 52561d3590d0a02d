"""A LiteLLM `config.yaml` from a pool YAML, so a team can put the router in front of or behind
its LiteLLM proxy without retyping the pool.

`litellm_config(pool, ...)` returns the config as a dict:

- `model_list`: per enabled slot, one deployment named after the slot (what the pre-call hook
  rewrites `model` to) and one in the policy's model group with `model_info.prefill_slot` (what the
  routing strategy picks from). OpenRouter slots use LiteLLM's `openrouter/` provider, every other
  slot `openai/` (any OpenAI-compatible server) at the slot's api_base. Keys stay in the
  environment: `api_key: os.environ/VAR` (LiteLLM's syntax); local slots without a key get
  "none". Prices go in `model_info` per token; `extra_body` and the slot's system prompt are not
  LiteLLM parameters and are reported in a comment instead of being dropped silently.
- with `router_url` (the router "behind" LiteLLM): one more deployment, `<policy>-via-router`,
  that sends the policy name to the router's own OpenAI endpoint, which routes and calls upstream.
- with `hook=True`: `litellm_settings.callbacks` loads the pre-call hook
  (router.integrations.litellm_hook.proxy_handler_instance), which reads PREFILL_ROUTER_* variables.
"""

from __future__ import annotations

from typing import Any

from router.routing.pool import Pool, Slot

HOOK_CALLBACK = "router.integrations.litellm_hook.proxy_handler_instance"


def litellm_model(slot: Slot) -> str:
    if "openrouter.ai" in slot.api_base:
        return f"openrouter/{slot.model}"
    return f"openai/{slot.model}"


def _params(slot: Slot) -> dict[str, Any]:
    params: dict[str, Any] = {"model": litellm_model(slot)}
    if "openrouter.ai" not in slot.api_base:
        params["api_base"] = slot.api_base
    params["api_key"] = f"os.environ/{slot.api_key_env}" if slot.api_key_env else "none"
    return params


def _info(slot: Slot, **extra: Any) -> dict[str, Any]:
    # %.10g: $/M prices divided by 1e6 print as 5e-08, not 5.0000000000000004e-08
    return {"input_cost_per_token": float(f"{slot.cost_per_m_input_tokens / 1e6:.10g}"),
            "output_cost_per_token": float(f"{slot.cost_per_m_output_tokens / 1e6:.10g}"), **extra}


def litellm_config(pool: Pool, *, router_url: str | None = None, hook: bool = False) -> dict[str, Any]:
    slots = [s for s in pool.models if s.enabled]
    model_list: list[dict[str, Any]] = []
    for s in slots:
        model_list.append({"model_name": s.name, "litellm_params": _params(s), "model_info": _info(s)})
    for s in slots:
        model_list.append({"model_name": pool.policy, "litellm_params": _params(s),
                           "model_info": _info(s, id=f"{pool.policy}/{s.name}", prefill_slot=s.name)})
    if router_url:
        model_list.append({"model_name": f"{pool.policy}-via-router", "litellm_params": {
            "model": f"openai/{pool.policy}", "api_base": router_url.rstrip("/").removesuffix("/v1") + "/v1",
            "api_key": "os.environ/PREFILL_ROUTER_API_KEY"}})
    config: dict[str, Any] = {"model_list": model_list}
    if hook:
        config["litellm_settings"] = {"callbacks": [HOOK_CALLBACK]}
    return config


def not_carried(pool: Pool) -> list[str]:
    """Slot settings LiteLLM's model_list has no place for (said in the file, never dropped silently)."""
    notes = []
    for s in pool.models:
        if s.extra_body:
            notes.append(f"{s.name}: extra_body {sorted(s.extra_body)} (add them under litellm_params yourself)")
        if s.system_prompt:
            notes.append(f"{s.name}: system_prompt (LiteLLM has no per-deployment system prompt)")
        if not s.enabled:
            notes.append(f"{s.name}: disabled in the pool, left out")
    return notes
