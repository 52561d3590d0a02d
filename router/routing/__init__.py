"""The routing decision: the selection rule, the router that scores a query and applies it,
the pool schema, the registry of pools, costs and the tolerance sweep.

May import: router.errors, router.paths, router.jsonl, router.model. Never serving, upstream, ui,
audit or training: a decision is pure and knows nothing of where it is used.
"""
