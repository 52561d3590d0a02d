"""Calls to the models: the shared HTTP client, one backend per slot (OpenAI-compatible chat
completions, streamed or not), and failover across slots.

May import: router.errors, router.routing (the pool and the result it fails over along).
"""
