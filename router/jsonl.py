"""One JSON object per line: the parsing and error wording shared by every JSONL reader."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from router.errors import InputError


def parse_line(line: str, where: str, hint: str = "", objects_only: bool = True) -> Any:
    """Parse one line; `where` locates it (`file: line 3`) and `hint` says what was expected."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not valid JSON ({exc.msg}){'; ' + hint if hint else ''}") from None
    if objects_only and not isinstance(value, dict):
        raise InputError(f"{where}: expected a JSON object per line{': ' + hint if hint else ''}")
    return value


def iter_objects(lines: Iterable[str], path: Any, hint: str = "") -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line."""
    for n, line in enumerate(lines, 1):
        if line.strip():
            yield n, parse_line(line, f"{path}: line {n}", hint)
