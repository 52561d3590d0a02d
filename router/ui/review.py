"""Auto review: the pool's strongest model judges an answer and returns a JSON verdict.

"Strongest" is the pool's most expensive model (input + output price per million tokens; ties
go to the later slot, pools list models by capability): a fixed, explainable choice that does not
depend on the query or on borrowed (`trained_as`) probabilities. The prompt and the tolerant
verdict parser are shared with the LLM judge of `judges.py`; an unparseable reply is shown as
such, never guessed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from router.errors import MissingKeyError, UpstreamError
from router.routing.pool import Pool, Slot


@dataclass
class Review:
    judge: str  # display name of the judging slot
    verdict: str  # "correct" | "incorrect" | "partly correct" | "unparseable" | "not reviewed"
    score: float | None = None
    reason: str = ""
    raw: str = ""
    cost_usd: float | None = None
    usage: dict | None = None  # the judge call's tokens (for the audit line)

    def to_dict(self) -> dict:
        return {"judge": self.judge, "verdict": self.verdict, "score": self.score, "reason": self.reason,
                "cost_usd": self.cost_usd}


def judge_slot(pool: Pool) -> Slot:
    ranked = sorted(enumerate(pool.models),
                    key=lambda im: (im[1].cost_per_m_input_tokens + im[1].cost_per_m_output_tokens, im[0]))
    return ranked[-1][1]


def parse_review(text: str) -> tuple[float | None, str]:
    """(score in [0, 1] or None, reason) from a judge's reply; tolerant of fences and chatter."""
    from router.training.judges import parse_verdict

    score = parse_verdict(text or "")
    reason = ""
    start = (text or "").find("{")
    while start != -1 and not reason:
        try:
            obj, _ = json.JSONDecoder().raw_decode(text, start)
            if isinstance(obj, dict) and isinstance(obj.get("reason"), str):
                reason = obj["reason"].strip()
        except json.JSONDecodeError:
            pass
        start = text.find("{", start + 1)
    return score, reason


def verdict_word(score: float | None) -> str:
    if score is None:
        return "unparseable"
    return "correct" if score >= 0.75 else "incorrect" if score <= 0.25 else "partly correct"


async def review(backend, pool: Pool, question: str, answer: str, max_tokens: int = 300) -> Review:
    """Ask the judge slot; a missing key or failed call comes back as 'not reviewed' with the reason."""
    from router.training.judges import judge_messages

    slot = judge_slot(pool)
    messages = judge_messages(question, answer)
    messages[-1]["content"] += ' Add a one-sentence "reason".'
    try:
        res = await backend.chat(slot, messages, max_tokens=max_tokens, temperature=0.0)
    except MissingKeyError as exc:
        return Review(slot.label, "not reviewed", reason=f"set {exc.env_var} to let the judge run")
    except UpstreamError as exc:
        return Review(slot.label, "not reviewed", reason=f"judge call failed: {str(exc)[:200]}")
    score, reason = parse_review(res.text)
    return Review(slot.label, verdict_word(score), score, reason, raw=res.text[:2000],
                  cost_usd=slot.cost_usd(res.usage.get("prompt_tokens", 0), res.usage.get("completion_tokens", 0)),
                  usage=dict(res.usage))
