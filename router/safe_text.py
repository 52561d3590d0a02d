"""Values that cannot be sent on: lone UTF-16 surrogates and non-finite numbers.

Python's `json` reads `"\\ud800"` (what a JavaScript client sends when it cuts a string inside an
emoji) into a str that no UTF-8 encoder, tokenizer or upstream accepts, and reads `NaN`,
`Infinity` and `1e999` into floats that strict JSON cannot carry. The proxy *validates* (it does
not silently repair): such a request is refused with a 400 that names the field, before any
encoder pass or upstream call.
"""

from __future__ import annotations

import json
import math
from typing import Any

from router.errors import InputError


def lone_surrogate(text: str) -> int | None:
    """Index of the first lone surrogate code point in `text`, or None."""
    try:  # UTF-8 refuses exactly the surrogates, ~80x faster than a regex over an agent's history
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def check_text(text: str, where: str = "query") -> str:
    i = lone_surrogate(text)
    if i is not None:
        raise InputError(f"{where}: contains a lone UTF-16 surrogate (U+{ord(text[i]):04X}) at character {i}, "
                         "which is not valid Unicode; was a string cut inside an emoji? send valid UTF-8 text")
    return text


def check_value(value: Any, where: str = "body") -> Any:
    """Walk a parsed JSON value; InputError naming the first string or number that cannot be sent."""
    if _sendable(value):
        return value
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        v, at = stack.pop()
        if isinstance(v, str):
            check_text(v, at)
        elif isinstance(v, float):
            if not math.isfinite(v):
                raise InputError(f"{at}: must be a finite number, got {v!r} (NaN, Infinity or out of range)")
        elif isinstance(v, dict):
            for k, x in v.items():
                if isinstance(k, str):
                    check_text(k, f"{at} (a key)")
                stack.append((x, f"{at}.{k}"))
        elif isinstance(v, (list, tuple)):
            stack.extend((x, f"{at}[{i}]") for i, x in enumerate(v))
    return value


def _sendable(value: Any) -> bool:
    """One pass of the C JSON encoder: True when `value` holds no lone surrogate and no non-finite
    number. An agent's request holds tens of thousands of strings; walking them in Python, naming
    each one's path, cost ~10 ms per 100k tokens, so the walk runs only to name what failed here."""
    try:  # UTF-8 refuses a lone surrogate faster than a regex finds one
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError):  # non-finite, a surrogate (UnicodeEncodeError), not JSON: walk it
        return False
    return True
