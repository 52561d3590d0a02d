"""Adapters that let other tools use the router: LiteLLM (a routing strategy and a proxy pre-call
hook in litellm_hook, a config.yaml generator in litellm_config).

May import router.routing (pool, router) and router.errors; litellm itself is imported lazily, only
by the code that needs it, so `python -m router` works without it (requirements-litellm.txt).
"""
