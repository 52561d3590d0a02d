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


PROXY_PORT = 8000  # the README's `router serve --port 8000`: a slot there would be the router itself
_LOOPBACK = {"127.0.0.1", "localhost", "0.0.0.0", "::1", "[::1]"}


def _host_port(url: str) -> tuple[str, int | None]:
    from urllib.parse import urlsplit

    u = urlsplit(url if "://" in url else f"http://{url}")
    host = (u.hostname or "").lower()
    port = u.port or {"http": 80, "https": 443}.get(u.scheme)
    return ("127.0.0.1" if host in _LOOPBACK else host), port


def calls_itself(api_base: str, own_urls=()) -> bool:
    """True when `api_base` is this app (the URL the page was served from) or the proxy's port on loopback."""
    host, port = _host_port(api_base)
    if host == "127.0.0.1" and port == PROXY_PORT:
        return True
    return any(_host_port(u) == (host, port) for u in own_urls if u)


def judge_slot(pool: Pool, local_only: bool = False) -> Slot | None:
    """The judge: the strongest switched-on slot (a switched-off one has no server behind it, like
    offline-demo's placeholders); for a query that must stay on-prem, the strongest local one (None:
    there is none)."""
    return pool.most_expensive(local_only, enabled_only=True)


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


async def review(backend, pool: Pool, question: str, answer: str, max_tokens: int = 300,
                 local_only: bool = False, own_urls=()) -> Review:
    """Ask the judge slot; a missing key or failed call comes back as 'not reviewed' with the reason.
    `local_only`: the query may not leave the premises, so only a local slot may judge it.
    `own_urls`: where this app is served; a judge pointing there (or at the proxy's port) is never
    called, since the router would be asked to judge itself."""
    from router.training.judges import judge_messages

    slot = judge_slot(pool, local_only)
    if slot is None:
        return Review("no judge", "not reviewed", reason="this query may only go to local slots and the pool "
                                                         "has none to judge it")
    if calls_itself(slot.api_base, own_urls):
        return Review(slot.label, "not reviewed",
                      reason=f"the judge slot's api_base {slot.api_base} is this router itself; point it at a model server")
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
