"""Question files: one reader for every command and the playground, so they accept the same formats.

- `.txt`: one question per line (blank lines skipped).
- `.jsonl` (or `.jsonl.gz`): one JSON value per line: a string, or an object with the text in
  `question`, `prompt`, `query`, `text` or `messages` (a chat conversation), and optional `id`,
  `reference`, `task`, `split`.
- `.csv` (or `.csv.gz`): a header row with a `question` column and the same optional columns.

Ids default to a hash of the question. An id used for two different questions is an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router.errors import InputError
from router.jsonl import parse_line

TEXT_KEYS = ("question", "prompt", "query", "text")
FORMATS = ".txt (one question per line), .jsonl or .csv (a 'question' field)"


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    reference: str | None = None
    task: str = ""
    split: str = ""


def _kind(path: Path) -> str:
    name = path.name.lower()
    for kind in ("txt", "jsonl", "csv"):
        if name.endswith((f".{kind}", f".{kind}.gz")):
            return kind
    raise InputError(f"{path.name}: questions must be a {FORMATS} file")


def _text_of(obj: Any, where: str) -> str:
    from router.model.encoder import messages_to_text

    if isinstance(obj, str) and obj.strip():
        return obj
    if isinstance(obj, dict):
        for key in TEXT_KEYS:
            if isinstance(obj.get(key), str) and obj[key].strip():
                return obj[key]
        if isinstance(obj.get("messages"), list) and obj["messages"]:
            return messages_to_text(obj["messages"])
    raise InputError(f"{where}: expected a string or an object with a non-empty "
                     f"{', '.join(repr(k) for k in TEXT_KEYS)} or 'messages' field")


def _question(obj: Any, where: str) -> Question:
    from router.training.data import question_id

    text = _text_of(obj, where)
    row = obj if isinstance(obj, dict) else {}
    ref = row.get("reference")
    if ref is not None and ref != "" and not isinstance(ref, (str, int, float)):
        raise InputError(f"{where}: field 'reference' must be a string or number")
    return Question(str(row.get("id") or question_id(text)), text, None if ref in (None, "") else str(ref),
                    str(row.get("task") or ""), str(row.get("split") or ""))


def iter_questions(path: str | Path) -> Iterator[Question]:
    from router.textfile import open_text

    path = Path(path)
    kind = _kind(path)
    if not path.exists():
        raise InputError(f"{path}: questions file not found")
    with open_text(path) as fh:
        if kind == "csv":
            import csv

            reader = csv.DictReader(fh)
            if "question" not in (reader.fieldnames or []):
                raise InputError(f"{path.name}: a CSV of questions needs a 'question' column "
                                 f"(found: {', '.join(reader.fieldnames or []) or 'no header'})")
            for row in reader:
                n = reader.line_num  # where the record ends: a quoted question may span lines
                yield _question(row, f"{path.name}:{n}")
            return
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            if kind == "txt":
                yield _question(line.strip(), f"{path.name}:{n}")
            else:
                yield _question(parse_line(line, f"{path.name}:{n}", objects_only=False), f"{path.name}:{n}")


def read_questions(path: str | Path, *, unique: bool = False, limit: int | None = None) -> list[Question]:
    """Every question of a file, in order. `unique`: a repeated question is kept once.
    `limit`: refuse files with more questions (the playground's sweep is CPU-bound)."""
    path = Path(path)
    items = list(iter_questions(path))
    if not items:
        raise InputError(f"{path.name}: no questions in the file")
    if limit is not None and len(items) > limit:
        raise InputError(f"{path.name}: {len(items)} questions; at most {limit} here")
    seen: dict[str, Question] = {}
    for it in items:
        first = seen.setdefault(it.id, it)
        if first.question != it.question:
            raise InputError(f"{path.name}: id {it.id!r} is used for two different questions")
        if first.reference != it.reference:  # which one grades the answers? the file must say
            raise InputError(f"{path.name}: id {it.id!r} appears twice with different references "
                             f"({first.reference!r} and {it.reference!r}); keep one")
    return list({it.id: it for it in items}.values()) if unique else items
