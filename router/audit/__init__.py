"""The audit trail: the decision record every surface writes, the JSONL log, and summaries.

May import: router.errors, router.jsonl, router.routing.
"""
