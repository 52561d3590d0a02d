"""Option parsing the commands share."""

from __future__ import annotations


def comma_list(text: str) -> list[str]:
    """`--models a, b,,c` -> ["a", "b", "c"]: items stripped, empty ones dropped."""
    return [x.strip() for x in text.split(",") if x.strip()]
