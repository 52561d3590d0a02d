"""Retraining: labeled data formats, collecting labels from a pool, judges, training the head,
evaluation, metrics and baselines.

May import: router.errors, router.jsonl, router.paths, router.model, router.routing, router.upstream
(collect calls the pool). Never serving or ui.
"""
