"""Prefill router: a small encoder reads the query, a trained head predicts P(correct) per model,
and the router picks the cheapest model within `tolerance` of the best.

Nothing heavy is imported here; `from router.routing.router import PrefillRouter` is the entry point.
"""

__version__ = "0.1.0"
