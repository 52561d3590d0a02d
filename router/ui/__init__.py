"""The Gradio playground: layout and handlers, per-session state and what it does (routing,
sending, sweeps), views, charts and the auto review of an answer.

May import: routing, model, upstream, audit, training.judges, serving's client-facing helpers. Nothing
imports ui but app.py.
"""
