"""Judges: turn a model's answer into a correctness label in [0, 1], or None for unknown.

    reference  compares with the question's reference answer: a multiple-choice letter when the
               reference is a letter, a number when it is numeric, else normalized exact match
               (of the whole answer, its "answer is ..." span, its first line, or a short answer
               containing the reference as whole words)
    llm        asks a judge endpoint for a JSON verdict; an unparseable verdict or a failed call
               is unknown (masked in training), never wrong
    vote       the majority answer across the models of one question counts as correct

None always means "unknown": it is written as an empty `correct` and masked in training.
Judges live in the name -> factory dict `JUDGES`; `make_judge(name, **context)` builds one.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from router.errors import InputError, UpstreamError


@dataclass(frozen=True)
class Verdict:
    score: float | None  # 0..1, None = unknown
    note: str = ""  # why, for people reading the label file
    cost_usd: float = 0.0  # what judging cost (LLM judge calls)
    failed: bool = False  # the judge could not grade (call failed, verdict unreadable): grade again on resume


# ---- answer normalization and extraction ---------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)
_MARKER = re.compile(r"\banswer\s*(?:is|:)\s*[:\-]?\s*(.+)", re.IGNORECASE | re.DOTALL)
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?|[-+]?\.\d+")
_LETTER_REF = re.compile(r"^\s*\(?([A-Ja-j])\)?[.)]?\s*$")
_LETTER_PATTERNS = [
    re.compile(r"answer\s*(?:is|:)\s*:?\s*\(?([A-J])\b\)?", re.IGNORECASE),  # "the answer is (B)"
    re.compile(r"^\s*\(?([A-J])\)?\s*(?:[.):\-]|$)"),  # "B." / "(B)" / "B) Paris" at the start
    re.compile(r"\(([A-J])\)"),  # "(B)" anywhere
    re.compile(r"\b(?:option|choice)\s+\(?([A-J])\b", re.IGNORECASE),
    re.compile(r"(?:^|\s)\(?([A-J])\)?[.!]?\s*$"),  # "... it is C." at the very end
]
SHORT_ANSWER_WORDS = 20  # containment only counts in answers this short, so essays don't match by accident


def normalize_answer(text: str) -> str:
    """Lowercase, drop punctuation, articles and extra whitespace (SQuAD-style)."""
    text = (text or "").lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _strip_markup(text: str) -> str:
    return re.sub(r"[*_`#]+", "", text or "").strip()


def _marker_span(text: str) -> str | None:
    matches = list(_MARKER.finditer(text))
    return matches[-1].group(1).strip() if matches else None


def final_span(text: str) -> str:
    """The part after the last "answer is"/"answer:" marker, else the whole (stripped) text."""
    text = _strip_markup(text)
    span = _marker_span(text)
    return text if span is None else span


def extract_choice(text: str) -> str | None:
    """The multiple-choice letter an answer commits to, or None if it names none."""
    for candidate in (final_span(text), _strip_markup(text)):
        for pattern in _LETTER_PATTERNS:
            m = pattern.search(candidate)
            if m:
                return m.group(1).upper()
    return None


def parse_number(text: str) -> float | None:
    """A number written as 1,234.5, -3, .5 or 3/4; None if `text` is not one."""
    s = text.strip().rstrip(".").replace(",", "").replace("$", "").replace("%", "")
    try:
        if "/" in s:
            num, den = s.split("/", 1)
            return float(num) / float(den)
        return float(s)
    except (ValueError, ZeroDivisionError):
        return None


_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
          "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]
_NUMBER_WORD = re.compile(r"\b(" + "|".join(_WORDS) + r")\b", re.IGNORECASE)


def extract_number(text: str) -> float | None:
    """The answer's number: the first one after an answer marker, else the last one in the text.

    Small numbers written as words ("eight legs") count when the text has no digits.
    """
    text = _strip_markup(text)
    span = _marker_span(text)
    if span is not None:
        m = _NUMBER.search(span)
        if m:
            return parse_number(m.group(0))
    found = _NUMBER.findall(text)
    if found:
        return parse_number(found[-1])
    words = _NUMBER_WORD.findall(text)
    return float(_WORDS.index(words[-1].lower())) if words else None


def numbers_match(a: float, b: float, rel: float = 1e-6, abs_tol: float = 1e-9) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_tol)


def reference_kind(reference: str) -> str:
    """How a reference is compared: 'choice', 'number' or 'text'."""
    if _LETTER_REF.match(reference):
        return "choice"
    if parse_number(reference) is not None:
        return "number"
    return "text"


def _contains_words(haystack: str, needle: str) -> bool:
    return bool(needle) and re.search(rf"(?:^|\s){re.escape(needle)}(?:\s|$)", haystack) is not None


def grade_reference(answer: str, reference: str | None) -> Verdict:
    """Compare one answer with a reference answer (pure; no I/O)."""
    if reference is None or not str(reference).strip():
        return Verdict(None, "no reference")
    reference = str(reference).strip()
    kind = reference_kind(reference)
    if kind == "choice":
        want = _LETTER_REF.match(reference).group(1).upper()
        got = extract_choice(answer)
        return Verdict(float(got == want), f"choice {got or '-'} vs {want}")
    if kind == "number":
        want_n = parse_number(reference)
        got_n = extract_number(answer)
        ok = got_n is not None and numbers_match(got_n, want_n)
        return Verdict(float(ok), f"number {got_n if got_n is not None else '-'} vs {want_n}")
    want = normalize_answer(reference)
    text = _strip_markup(answer)
    spans = {normalize_answer(text), normalize_answer(final_span(text)),
             normalize_answer(text.splitlines()[0] if text else "")}
    if want in spans:
        return Verdict(1.0, "exact match")
    full = normalize_answer(text)
    if len(full.split()) <= SHORT_ANSWER_WORDS and _contains_words(full, want):
        return Verdict(1.0, "short answer contains the reference")
    return Verdict(0.0, "no match")


def canonical_answer(answer: str) -> str | None:
    """A comparable form of an answer for voting: letter, number, or normalized final span."""
    span = final_span(answer)
    first = span.splitlines()[0] if span else ""
    if _LETTER_REF.match(first) or re.match(r"^\s*\(?[A-J]\)?[.):]\s", first):
        return "choice:" + extract_choice(first)
    n = extract_number(first) if _NUMBER.fullmatch(first.strip().rstrip(".").replace("$", "")) else None
    if n is not None:
        return f"number:{n:.9g}"
    norm = normalize_answer(first)
    return ("text:" + norm) if norm else None


def majority_vote(answers: dict[str, str]) -> dict[str, float | None]:
    """1.0 for models giving the majority answer, 0.0 for the others; None when there is no strict majority."""
    canon = {m: canonical_answer(a) for m, a in answers.items()}
    counts = Counter(c for c in canon.values() if c is not None)
    if sum(counts.values()) < 2:
        return {m: None for m in answers}
    (top, n_top), *rest = counts.most_common()
    if rest and rest[0][1] == n_top:
        return {m: None for m in answers}  # a tie says nothing about who is right
    return {m: (None if c is None else float(c == top)) for m, c in canon.items()}


# ---- LLM judge: messages and verdict parsing ------------------------------------------------

JUDGE_SYSTEM = (
    "You grade answers to questions. Decide whether the candidate answer is correct"
    " (matches the reference answer when one is given). Reply with JSON only, exactly like"
    ' {"correct": true} or {"correct": false}; you may add "score" (0 to 1) and a short "reason".'
)


def judge_messages(question: str, answer: str, reference: str | None = None) -> list[dict[str, str]]:
    parts = [f"Question:\n{question.strip()}"]
    if reference is not None and str(reference).strip():
        parts.append(f"Reference answer:\n{str(reference).strip()}")
    parts.append(f"Candidate answer:\n{(answer or '').strip() or '(empty)'}")
    parts.append('Is the candidate answer correct? Reply with JSON only: {"correct": true} or {"correct": false}.')
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]


_TRUE = {"true", "yes", "correct", "right", "1", "pass"}
_FALSE = {"false", "no", "incorrect", "wrong", "0", "fail"}


def _as_score(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        x = float(value)
        return x if 0.0 <= x <= 1.0 else None
    if isinstance(value, str):
        v = value.strip().lower()
        if v in _TRUE:
            return 1.0
        if v in _FALSE:
            return 0.0
    return None


def _json_objects(text: str):
    """Every JSON object embedded in `text` (code fences and chatter around it are skipped)."""
    decoder = json.JSONDecoder()
    i = text.find("{")
    while i != -1:
        try:
            obj, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            i = text.find("{", i + 1)
            continue
        if isinstance(obj, dict):
            yield obj
        i = text.find("{", end)


def parse_verdict(text: str) -> float | None:
    """Score in [0, 1] from a judge's JSON reply; None when no usable verdict is in it.

    Accepts {"correct": true|false|0|1|"yes"|"no"}, {"score": 0..1} or {"verdict": "correct"}.
    "correct" wins over "score" when both are present and valid.
    """
    if not isinstance(text, str):
        return None
    for obj in _json_objects(text):
        for key in ("correct", "is_correct", "score", "verdict"):
            if key in obj:
                score = _as_score(obj[key])
                if score is not None:
                    return score
    return None


# ---- the judges --------------------------------------------------------------------------------

class Judge:
    """Grades answers. Per-answer judges implement `grade`; group judges implement `grade_group`."""

    name = "judge"
    needs_all_answers = False  # True: labels are known only once every model answered
    model: str | None = None  # the grading model, for judges that call one (recorded per row)
    slot = None  # the pool slot a calling judge uses (its API key is checked before the first call)

    async def grade(self, question: str, answer: str, reference: str | None) -> Verdict:
        raise NotImplementedError

    def grade_group(self, answers: dict[str, str], reference: str | None = None) -> dict[str, Verdict]:
        raise NotImplementedError


class ReferenceJudge(Judge):
    name = "reference"

    def __init__(self, **_context):
        pass

    async def grade(self, question: str, answer: str, reference: str | None) -> Verdict:
        return grade_reference(answer, reference)


class VoteJudge(Judge):
    name = "vote"
    needs_all_answers = True

    def __init__(self, **_context):
        pass

    def grade_group(self, answers: dict[str, str], reference: str | None = None) -> dict[str, Verdict]:
        votes = majority_vote(answers)
        return {m: Verdict(v, "majority" if v == 1.0 else "minority" if v == 0.0 else "no majority")
                for m, v in votes.items()}


class LLMJudge(Judge):
    """Asks `slot` (any OpenAI-compatible endpoint) through `backend` for a JSON verdict."""

    name = "llm"

    def __init__(self, backend=None, slot=None, max_tokens: int = 128, **_context):
        if backend is None or slot is None:
            raise InputError("the llm judge needs a judge endpoint: pass --judge-slot NAME "
                             "(a slot of the pool, or of --judge-config)")
        self.backend = backend
        self.slot = slot
        self.model = slot.model
        self.max_tokens = max_tokens

    async def grade(self, question: str, answer: str, reference: str | None) -> Verdict:
        try:
            res = await self.backend.chat(self.slot, judge_messages(question, answer, reference),
                                          max_tokens=self.max_tokens, temperature=0.0)
        except UpstreamError as exc:
            return Verdict(None, f"judge call failed: {str(exc)[:120]}", failed=True)
        cost = self.slot.cost_usd(res.usage.get("prompt_tokens", 0), res.usage.get("completion_tokens", 0))
        score = parse_verdict(res.text)
        if score is None:
            return Verdict(None, "unparseable verdict: " + " ".join(res.text.split())[:80], cost, failed=True)
        return Verdict(score, "judge verdict", cost)


JUDGES: dict[str, Callable[..., Judge]] = {
    "reference": ReferenceJudge,
    "llm": LLMJudge,
    "vote": VoteJudge,
}


def make_judge(name: str, **context) -> Judge:
    """Build a judge by name; `context` carries what some judges need (backend, slot)."""
    try:
        factory = JUDGES[name]
    except KeyError:
        raise InputError(f"unknown judge {name!r}; choose one of: {', '.join(JUDGES)}") from None
    return factory(**context)
