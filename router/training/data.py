"""Labeled routing data: the long format (one row per question x model) and importers.

Long format, CSV or JSONL (optionally .gz): id (optional), question, model, correct (0..1;
empty = unknown, masked in training and never counted as 0), optional cost_usd,
input_tokens, output_tokens, task, split.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import math
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from router.errors import InputError
from router.files import atomic_write
from router.jsonl import iter_objects
from router.textfile import open_text

LONG_FIELDS = ["id", "question", "model", "correct", "cost_usd", "input_tokens", "output_tokens", "task", "split"]
REQUIRED = ("question", "model", "correct")  # `correct` is kept even when null (= unknown)
DATA_SUFFIXES = (".csv", ".jsonl", ".csv.gz", ".jsonl.gz")

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def question_id(question: str) -> str:
    return hashlib.sha256(question.encode("utf-8")).hexdigest()[:16]


def short_hash(question: str) -> str:
    """Short, non-reversible fingerprint of a question (what checkpoints keep of their training set)."""
    return hashlib.sha256(question.strip().encode("utf-8")).hexdigest()[:12]


def _num(value: Any, path: Path, where: str, field_name: str, lo: float | None = None,
         hi: float | None = None) -> float | None:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        value = value.strip().lower() == "true"  # as JSON true/false read; a CSV cannot say it otherwise
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{path}: {where}: field {field_name!r} must be a number, got {value!r}") from None
    if math.isnan(x):
        return None
    if math.isinf(x):
        raise InputError(f"{path}: {where}: field {field_name!r} must be a finite number, got {value!r}")
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        rng = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise InputError(f"{path}: {where}: field {field_name!r} must be in {rng}, got {value!r}")
    return x


def iter_rows(path: Path) -> Iterator[tuple[str, dict]]:
    """Raw rows of one CSV/JSONL file with a location string for error messages."""
    name = path.name
    if name.endswith((".jsonl", ".jsonl.gz")):
        with open_text(path) as fh:
            for n, row in iter_objects(fh, path):
                yield f"line {n}", row
    elif name.endswith((".csv", ".csv.gz")):
        with open_text(path) as fh:
            reader = csv.DictReader(fh)
            _check_header(path, reader.fieldnames)
            width = len(reader.fieldnames or [])
            for row in reader:
                # line_num is where the record ends: a quoted field may span lines
                where = f"line {reader.line_num}"
                if None in row or any(v is None for v in row.values()):
                    n = width + len(row.get(None) or []) if None in row else sum(v is not None for v in row.values())
                    raise InputError(f"{path}: {where}: {n} fields but the header has {width} (a comma or quote "
                                     "out of place?)")
                yield where, row
    else:
        raise InputError(f"{path}: unsupported data file; expected one of {', '.join(DATA_SUFFIXES)}")


def _check_header(path: Path, fields: list[str] | None) -> None:
    """A CSV lacking a required column is one mistake in its header, not one on every row."""
    if not fields:
        return  # an empty file: read_labels says "no labeled rows"
    missing = [f for f in REQUIRED if f not in fields]
    if not missing:
        return
    import difflib

    hints = []
    for f in missing:
        close = difflib.get_close_matches(f, fields, n=1, cutoff=0.6) or [c for c in fields if c.strip().lower() == f]
        if close:
            hints.append(f"{close[0]!r} for {f!r}?")
    raise InputError(f"{path}: line 1: the header lacks column(s) {', '.join(map(repr, missing))} "
                     f"(found: {', '.join(fields)}){'; did you mean ' + ' '.join(hints) if hints else ''}")


def data_files(path: str | Path) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith(DATA_SUFFIXES))
        if not files:
            raise InputError(f"{p}: folder holds no data files ({', '.join(DATA_SUFFIXES)})")
        return files
    if not p.exists():
        raise InputError(f"{p}: file not found")
    return [p]


def split_name(value) -> str:
    """A split as compared everywhere: " Test" and "TEST" are the test split (a spreadsheet's stray
    space once sent test questions into training while evaluate, matching exactly, never saw them)."""
    return str(value or "").strip().lower()


@dataclass
class LabelTable:
    """Questions x models. Y holds correctness in [0,1] or NaN for unknown."""

    ids: list[str]
    questions: list[str]
    models: list[str]
    Y: np.ndarray  # [n_questions, n_models] float, NaN = unknown
    cost: np.ndarray  # [n, m] USD per call, NaN = unknown
    output_tokens: np.ndarray  # [n, m], NaN = unknown
    input_tokens: np.ndarray  # [n, m], NaN = unknown
    tasks: list[str] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, idx: Iterable[int]) -> LabelTable:
        idx = np.asarray(list(idx), dtype=int)
        return LabelTable(
            ids=[self.ids[i] for i in idx], questions=[self.questions[i] for i in idx], models=list(self.models),
            Y=self.Y[idx], cost=self.cost[idx], output_tokens=self.output_tokens[idx],
            input_tokens=self.input_tokens[idx], tasks=[self.tasks[i] for i in idx],
            splits=[self.splits[i] for i in idx])

    def split(self, name: str) -> LabelTable:
        name = split_name(name)
        return self.subset(i for i, s in enumerate(self.splits) if s == name)

    def select_models(self, models: list[str]) -> LabelTable:
        missing = [m for m in models if m not in self.models]
        if missing:
            raise InputError(f"models not in the data: {missing}; the data has {self.models}")
        j = [self.models.index(m) for m in models]
        return LabelTable(self.ids, self.questions, list(models), self.Y[:, j], self.cost[:, j],
                          self.output_tokens[:, j], self.input_tokens[:, j], self.tasks, self.splits)

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for q in self.questions:
            h.update(q.encode("utf-8") + b"\0")
        h.update(json.dumps(self.models).encode())
        h.update(np.nan_to_num(self.Y, nan=-1).astype(np.float32).tobytes())
        return h.hexdigest()[:16]


def read_labels(path: str | Path) -> LabelTable:
    """Read long-format labels from a file or a folder of files."""
    ids: dict[str, int] = {}
    questions: list[str] = []
    tasks: list[str] = []
    splits: list[str] = []
    models: dict[str, int] = {}
    cells: list[list] = []
    seen: dict[tuple[int, int], tuple[int, str]] = {}  # (question, model) -> (index in cells, where)
    for f in data_files(path):
        for where, row in iter_rows(f):
            absent = [k for k in REQUIRED if k not in row]
            if absent:
                raise InputError(f"{f}: {where}: missing field(s) {', '.join(map(repr, absent))} "
                                 f"(found: {', '.join(map(str, row)) or 'none'}; expected question, model, "
                                 "correct (0..1, or empty for unknown))")
            q = row.get("question")
            if not isinstance(q, str) or not q.strip():
                raise InputError(f"{f}: {where}: field 'question' must be a non-empty string")
            m = row.get("model")
            if not isinstance(m, str) or not m.strip():
                raise InputError(f"{f}: {where}: field 'model' must be a non-empty string")
            qid = str(row.get("id") or "") or question_id(q)
            if qid not in ids:
                ids[qid] = len(questions)
                questions.append(q)
                tasks.append(str(row.get("task") or ""))
                splits.append(split_name(row.get("split")))
            elif questions[ids[qid]] != q:
                raise InputError(f"{f}: {where}: id {qid!r} is used for two different questions")
            # split and task belong to the question; any of its rows may carry them
            qi = ids[qid]
            for name, store in (("split", splits), ("task", tasks)):
                value = split_name(row.get(name)) if name == "split" else str(row.get(name) or "")
                if value and not store[qi]:
                    store[qi] = value
                elif value and store[qi] != value:
                    raise InputError(f"{f}: {where}: field {name!r} is {value!r} but another row of question "
                                     f"{qid!r} says {store[qi]!r}")
            if m not in models:
                models[m] = len(models)
            cell = [
                ids[qid], models[m],
                _num(row.get("correct"), f, where, "correct", 0, 1),
                _num(row.get("cost_usd"), f, where, "cost_usd", 0),
                _num(row.get("output_tokens"), f, where, "output_tokens", 0),
                _num(row.get("input_tokens"), f, where, "input_tokens", 0),
            ]
            key = (ids[qid], models[m])
            if key in seen:
                _merge_repeat(cells[seen[key][0]], cell, f"{f}: {where}", seen[key][1], qid, m)
            else:
                seen[key] = (len(cells), f"{f}: {where}")
                cells.append(cell)
    if not questions:
        raise InputError(f"{path}: no labeled rows found")
    shape = (len(questions), len(models))
    Y, C, O, I = (np.full(shape, np.nan) for _ in range(4))  # noqa: E741 (correct, cost, output, input)
    for qi, mi, y, c, o, i in cells:
        Y[qi, mi], C[qi, mi], O[qi, mi], I[qi, mi] = (np.nan if v is None else v for v in (y, c, o, i))
    return LabelTable(list(ids), questions, list(models), Y, C, O, I, tasks, splits)


def _labels_differ(a: float | None, b: float | None) -> bool:
    """Two labels of one (question, model) pair that cannot both be right (an unknown one never differs)."""
    return a is not None and b is not None and abs(a - b) > 1e-9


def _merge_repeat(first: list, again: list, where: str, first_where: str, qid: str, model: str) -> None:
    """A (question, model) pair given twice: the same label again is harmless (a re-import, two
    overlapping files); a different one is refused, since keeping either would be a silent guess.
    An unknown label or value in one of the rows is filled from the other, never erased by it."""
    y0, y1 = first[2], again[2]
    if _labels_differ(y0, y1):
        raise InputError(f"{where}: question {qid!r} x model {model!r} is labeled correct={y1:g} here but "
                         f"correct={y0:g} at {first_where}; keep one row per question and model")
    for i in range(2, len(first)):
        if first[i] is None:
            first[i] = again[i]


def write_labels(rows: Iterable[dict], path: str | Path) -> int:
    """Write long-format rows as JSONL or CSV (by suffix, .gz allowed). Returns the row count."""
    path = Path(path)
    n = 0
    with atomic_write(path) as fh:
        if path.name.endswith((".csv", ".csv.gz")):
            w = csv.DictWriter(fh, fieldnames=LONG_FIELDS, extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in LONG_FIELDS})
                n += 1
        else:
            for r in rows:
                keep = {k: r.get(k) for k in LONG_FIELDS if k in REQUIRED or r.get(k) not in (None, "")}
                fh.write(json.dumps(keep,
                                    ensure_ascii=False) + "\n")
                n += 1
    return n


# ---- RouterBench (wide) importer -------------------------------------------------------

def approx_tokens(text: str) -> int:
    """~4 characters per token, the usual rule for English BPE vocabularies."""
    return max(1, math.ceil(len(text) / 4))


def _literal_list_text(value: str) -> str:
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value
    if isinstance(parsed, (list, tuple)):
        return "\n\n".join(str(x) for x in parsed)
    return str(parsed)


def import_routerbench_file(path: Path, split: str | None = None) -> Iterator[dict]:
    with open_text(path) as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        for need in ("prompt",):
            if need not in cols:
                raise InputError(f"{path}: not a RouterBench wide CSV: missing column {need!r}")
        skip = {"", "sample_id", "prompt", "eval_name", "oracle_model_to_route_to"}
        models = [c for c in cols if c not in skip and "|" not in c]
        if not models:
            raise InputError(f"{path}: no model columns found (expected one column per model)")
        if split is None:
            stem = path.name.lower().removesuffix(".gz").removesuffix(".csv")
            split = "test" if stem.endswith("test") else "train" if stem.endswith("train") else ""
        for row in reader:
            n = reader.line_num  # where the record ends: RouterBench prompts span lines
            question = _literal_list_text(row["prompt"])
            # sample_id repeats within RouterBench files (other few-shot variants of one item):
            # split + sample_id + text hash keeps every prompt its own row.
            qid = f"{split or 'all'}/{row.get('sample_id') or 'q'}/{question_id(question)[:8]}"
            for m in models:
                correct = _num(row.get(m), path, f"line {n}", m, 0, 1)
                response = row.get(f"{m}|model_response")
                yield {
                    "id": qid, "question": question, "model": m, "correct": correct,
                    "cost_usd": _num(row.get(f"{m}|total_cost"), path, f"line {n}", f"{m}|total_cost", 0),
                    "input_tokens": approx_tokens(question),
                    "output_tokens": approx_tokens(_literal_list_text(response)) if response else None,
                    "task": row.get("eval_name") or "", "split": split,
                }


def import_routerbench(src: str | Path) -> Iterator[dict]:
    """Long rows of every wide CSV in `src`. A (question, model) pair repeated by another file (or
    variant) is written once; the same pair with another label is refused, as read_labels would."""
    src = Path(src)
    if not src.exists():
        raise InputError(f"{src}: file or folder not found")
    files = sorted(f for f in src.iterdir() if f.name.endswith((".csv", ".csv.gz"))) if src.is_dir() else [src]
    if not files:
        raise InputError(f"{src}: no .csv or .csv.gz files to import")
    seen: dict[tuple[str, str], tuple[float | None, str]] = {}
    repeats = 0
    for f in files:
        for row in import_routerbench_file(f):
            key = (row["id"], row["model"])
            if key in seen:
                y0, where = seen[key]
                if _labels_differ(y0, row["correct"]):
                    raise InputError(f"{f}: question {row['id']!r} x model {row['model']!r} is labeled "
                                     f"{row['correct']:g} here but {y0:g} in {where}")
                if y0 is not None or row["correct"] is None:
                    repeats += 1
                    continue
                # a label where the first row had none: written too; read_labels fills the gap with it
            seen[key] = (row["correct"], str(f))
            yield row
    if not seen:
        raise InputError(f"{src}: no question rows to import (only a header?)")
    if repeats:
        print(f"import-routerbench: {repeats} repeated (question, model) rows written once", file=sys.stderr)
