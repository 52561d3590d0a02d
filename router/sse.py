"""Server-sent events, written one way for every stream the project serves (proxy and serve-local).

FastAPI's own formatter does the wire format (multi-line data, the blank-line terminator); this
adds the JSON encoding all our streams use.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.sse import format_sse_event

DONE = "[DONE]"


def sse(data: Any, event: str | None = None) -> str:
    """One event: a dict is sent as compact JSON, a string (e.g. DONE) as is."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return format_sse_event(data_str=text, event=event).decode("utf-8")
