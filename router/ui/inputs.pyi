"""Input widgets whose bad values are the visitor's error, not the server's.

Gradio checks a slider's or number box's bounds (and a checkbox group's choices) before a handler
runs, and raises an error that it also prints with a traceback in the server log: a stray API call
with tolerance -0.5 looked like a crash there. These subclasses keep Gradio's frontend
(`is_template`) and say what was wrong, naming the field, without the traceback.
"""

from __future__ import annotations

import gradio as gr
from gradio.exceptions import Error as GradioError


def _quiet(component, payload):
    try:
        return super(type(component), component).preprocess(payload)
    except GradioError as exc:
        label = component.label or "value"
        raise gr.Error(f"{label}: {exc.message}", print_exception=False) from None

from gradio.events import Dependency

class Slider(gr.Slider):
    is_template = True

    def preprocess(self, payload):
        return _quiet(self, payload)
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


class Number(gr.Number):
    is_template = True

    def preprocess(self, payload):
        return _quiet(self, payload)
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


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
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component