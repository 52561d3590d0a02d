"""Input widgets whose bad values are the visitor's error, not the server's.

Gradio checks a slider's or number box's bounds (and a checkbox group's choices) before a handler
runs, and raises an error that it also prints with a traceback in the server log: a stray API call
with tolerance -0.5 looked like a crash there. These subclasses keep Gradio's frontend
(`is_template`) and say what was wrong, naming the field, without the traceback.
"""

from __future__ import annotations

import gradio as gr
from gradio.exceptions import Error as GradioError


def _quiet(preprocess, label: str | None, payload):
    try:
        return preprocess(payload)
    except GradioError as exc:
        raise gr.Error(f"{label or 'value'}: {exc.message}", print_exception=False) from None


class Slider(gr.Slider):
    is_template = True

    def preprocess(self, payload):
        return _quiet(super().preprocess, self.label, payload)


class Number(gr.Number):
    is_template = True

    def preprocess(self, payload):
        return _quiet(super().preprocess, self.label, payload)


class PoolToggles(gr.CheckboxGroup):
    """The per-model toggles. Their choices are the pool on screen, but an API caller may route under
    any pool (`policy`), so the names are checked against that pool by the handler (which says which
    pool and which names), not against the default pool's choices by Gradio."""

    is_template = True

    def preprocess(self, payload):
        if payload is None:
            return []
        if not isinstance(payload, list) or not all(isinstance(v, str) for v in payload):
            raise gr.Error("models: expected a list of slot names", print_exception=False)
        return payload
