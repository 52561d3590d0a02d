"""Settings read from the environment, refused with the variable's name when they make no sense."""

from __future__ import annotations

import os
from collections.abc import Mapping

from router.errors import InputError


def whole_number(name: str, default: int, minimum: int = 0, env: Mapping[str, str] | None = None,
                 meaning: str = "") -> int:
    """`name`'s value as an int >= `minimum`, `default` when unset or blank. `meaning`: what the
    number counts, for the error ("entries; 0 turns the cache off")."""
    raw = (os.environ if env is None else env).get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < minimum:
        what = "a positive whole number" if minimum == 1 else f"a whole number >= {minimum}"
        raise InputError(f"{name}={raw!r}: expected {what}" + (f" of {meaning}" if meaning else ""))
    return value
