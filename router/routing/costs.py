"""Money: what a call cost, what the baseline would have cost, session savings, projections.

Plain functions over plain data (decision records as dicts, numpy arrays), no UI and no I/O, so
that every number the playground shows is unit-tested here. Conventions:

- A call's cost uses the upstream's real usage when an answer came back (`basis = "actual"`),
  otherwise the router's estimate (`basis = "estimate"`): input tokens of the query × input price
  + the model's mean output tokens in the training data × output price.
- The baseline (the pool's `baseline_slot`, by default its most expensive model) is never called,
  so its cost is always an estimate; when real usage is known it uses the real prompt tokens.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from router.errors import InputError


def price_usd(prices: Any, input_tokens: float, output_tokens: float) -> float:
    """The one price function: tokens at a slot's (or ModelScore's) $/M input and output prices."""
    return (float(input_tokens) * prices.cost_per_m_input_tokens
            + float(output_tokens) * prices.cost_per_m_output_tokens) / 1e6


USAGE_DETAILS = (("prompt_tokens_details", "cached_tokens"), ("completion_tokens_details", "reasoning_tokens"),
                 ("output_tokens_details", "reasoning_tokens"))


MAX_USAGE_TOKENS = 100_000_000  # more than any context window: a count above it is garbage, not usage


def usage_count(value: Any) -> int | None:
    """One token count from an upstream: a non-negative whole number (int, integral float or digit
    string), else None. Upstreams are not trusted: a negative, fractional, NaN, boolean or absurd count
    would otherwise become a negative bill or crash the caller."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        # isdigit() alone takes "²"; the length check keeps int() under Python's digit limit
        if not (value.isascii() and value.isdecimal()) or len(value) > 12:
            return None
        value = int(value)
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            return None
        value = int(value)
    if not isinstance(value, int) or not 0 <= value <= MAX_USAGE_TOKENS:
        return None
    return value


def normalize_usage(usage: Mapping[str, Any] | None) -> dict[str, int] | None:
    """An upstream's usage (OpenAI shape, counts possibly missing or null) as plain ints.

    {prompt_tokens, completion_tokens} always; cached_tokens / reasoning_tokens when the upstream
    reported them. They are shares of prompt/completion tokens (OpenAI's convention, which
    OpenRouter, vLLM and Anthropic's output_tokens follow), never added on top: completion_tokens is
    what the slot bills as output, reasoning included. Idempotent. None in, None out.

    Usage that is not a mapping, or whose prompt/completion counts are not valid counts (see
    `usage_count`), is None: the call is then costed as an estimate instead of at a made-up price.
    A malformed detail count is dropped, and so is a detail larger than the count it is a share of.
    """
    if not usage or not isinstance(usage, Mapping):
        return None
    out: dict[str, int] = {}
    for key in ("prompt_tokens", "completion_tokens"):
        raw = usage.get(key)
        count = 0 if raw is None else usage_count(raw)
        if count is None:
            return None
        out[key] = count
    for (group, key), total in zip(USAGE_DETAILS, ("prompt_tokens", "completion_tokens", "completion_tokens")):
        details = usage.get(group)
        raw = details.get(key) if isinstance(details, Mapping) and details.get(key) is not None else usage.get(key)
        if raw is None or key in out:
            continue
        count = usage_count(raw)
        if count is not None and count <= out[total]:
            out[key] = count
    return out


def sanitize_usage(usage: Any) -> dict[str, Any] | None:
    """An upstream's usage object made safe to pass on: the same dict (extra fields such as
    OpenRouter's `cost` kept) with every token count checked, or None when the prompt/completion
    counts are not valid counts. Applied where usage enters the router (router/upstream), so the
    proxy's clients, the audit log and the budgets never see a count the router could not bill."""
    if not isinstance(usage, Mapping) or not usage:
        return None
    norm = normalize_usage(usage)
    if norm is None:
        return None
    out = dict(usage)
    out["prompt_tokens"], out["completion_tokens"] = norm["prompt_tokens"], norm["completion_tokens"]
    if "total_tokens" in out:  # a valid total is the upstream's word (it may count more than the two)
        total = usage_count(out["total_tokens"])
        out["total_tokens"] = norm["prompt_tokens"] + norm["completion_tokens"] if total is None else total
    for key, value in usage.items():
        if key.endswith("_tokens_details"):
            if isinstance(value, Mapping):
                out[key] = {k: c for k, v in value.items() if (c := usage_count(v)) is not None}
            else:
                out.pop(key)
        elif key.endswith("_tokens") and key not in ("prompt_tokens", "completion_tokens", "total_tokens"):
            if (c := usage_count(value)) is None:
                out.pop(key)
            else:
                out[key] = c
    return out


def usage_cost(prices: Any, usage: Mapping[str, Any]) -> float:
    """Dollar cost of real usage at a slot's or ModelScore's prices."""
    u = normalize_usage(usage) or {"prompt_tokens": 0, "completion_tokens": 0}
    return price_usd(prices, u["prompt_tokens"], u["completion_tokens"])


def baseline_cost(prices: Any, expected_output_tokens: float, input_tokens: int,
                  usage: Mapping[str, Any] | None = None) -> float:
    """The baseline model's estimated cost for the same query.

    With real usage the real prompt tokens replace the encoder's count; the output is still the
    baseline's expected length, because the baseline never answered this query.
    """
    u = normalize_usage(usage)
    return price_usd(prices, u["prompt_tokens"] if u else input_tokens, expected_output_tokens)


def savings(routed_usd: float, baseline_usd: float) -> tuple[float, float | None]:
    """($ saved, % saved) against the baseline; % is None when the baseline cost is zero."""
    saved = baseline_usd - routed_usd
    return saved, (100.0 * saved / baseline_usd if baseline_usd > 0 else None)


# ---- the session ledger ----------------------------------------------------------------

@dataclass
class SessionStats:
    queries: int = 0
    routed_usd: float = 0.0
    baseline_usd: float = 0.0
    saved_usd: float = 0.0
    saved_pct: float | None = None
    actual: int = 0  # records whose cost comes from real usage
    estimated: int = 0  # records whose cost is the router's estimate
    distribution: dict[str, int] = field(default_factory=dict)  # chosen slot -> queries
    baseline: str | None = None
    review_usd: float = 0.0  # the auto reviews' judge calls, included in routed_usd

    @property
    def basis(self) -> str:
        if not self.queries:
            return "none"
        if not self.estimated:
            return "actual"
        return "estimate" if not self.actual else "mixed"


def record_cost(record: Mapping[str, Any]) -> tuple[float, str]:
    """(routed cost, basis) of one decision record."""
    if record.get("actual_cost_usd") is not None:
        return float(record["actual_cost_usd"]), "estimate" if record.get("usage_estimated") else "actual"
    return float(record["expected_cost_usd"]), "estimate"


def counted_records(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The records a session's totals count: every answered call (each one was paid for), and for a
    query that was never answered only its latest decision. Re-deciding a query (the slider, the
    toggles, routing it again) makes new decision records but is still one query; records whose query
    text was dropped from the audit cannot be matched and each count."""
    def key(r: Mapping[str, Any]) -> str | None:
        return r.get("query") if r.get("query") is not None else r.get("query_sha256")

    answered_keys = {key(r) for r in records if r.get("selected") is not None}
    last: dict[str, int] = {}
    for i, r in enumerate(records):
        k = key(r)
        if k is not None and r.get("selected") is None:
            last[k] = i
    return [r for i, r in enumerate(records)
            if r.get("selected") is not None or key(r) is None
            or (key(r) not in answered_keys and last.get(key(r)) == i)]


def session_stats(records: Sequence[Mapping[str, Any]]) -> SessionStats:
    """Totals over a session's decision records (the audit-format dicts the playground keeps).

    The routed total includes what the auto reviews cost (the judge's calls are real spend, kept
    apart in `review_usd`); the baseline never includes them."""
    st = SessionStats()
    dist: Counter[str] = Counter()
    for r in counted_records(records):
        cost, basis = record_cost(r)
        st.queries += 1
        st.routed_usd += cost
        st.baseline_usd += float(r["baseline_cost_usd"])
        st.actual += basis == "actual"
        st.estimated += basis == "estimate"
        dist[r["chosen"]] += 1
        st.baseline = r.get("baseline") or st.baseline
    for r in records:  # a review belongs to the answer it reviewed, counted or not
        review = r.get("review") or {}
        if isinstance(review, Mapping) and review.get("cost_usd") is not None:
            st.review_usd += float(review["cost_usd"])
    st.routed_usd += st.review_usd
    st.saved_usd, st.saved_pct = savings(st.routed_usd, st.baseline_usd)
    st.distribution = dict(dist.most_common())
    return st


def mix_from_counts(counts: Mapping[str, float]) -> dict[str, float]:
    """Counts per slot -> shares summing to 1 (empty in, empty out)."""
    total = float(sum(counts.values()))
    return {k: v / total for k, v in counts.items() if v > 0} if total > 0 else {}


def slot_prices(slots) -> dict[str, tuple[float, float]]:
    """slot name -> ($/M input, $/M output) for the slots of a pool."""
    return {s.name: (s.cost_per_m_input_tokens, s.cost_per_m_output_tokens) for s in slots}


# ---- monthly projection ------------------------------------------------------------------

@dataclass
class Projection:
    requests: float
    routed_usd: float
    baseline_usd: float
    saved_usd: float
    saved_pct: float | None
    per_model_usd: dict[str, float]
    per_request_routed_usd: float
    per_request_baseline_usd: float


def monthly_projection(team_size: float, requests_per_person: float, input_tokens: float, output_tokens: float,
                       mix: Mapping[str, float], prices: Mapping[str, tuple[float, float]],
                       baseline: str) -> Projection:
    """Monthly spend routed (the given model mix) vs every request on the baseline model.

    `mix` maps slot -> share of requests (normalized here); `prices` maps slot -> ($/M in, $/M out).
    Every request is assumed to have the given average input and output tokens.
    """
    # Upper bounds far above any real team: past them the totals print float noise, not a forecast.
    for name, v, most in (("team size", team_size, 1e7), ("requests per person", requests_per_person, 1e6),
                          ("input tokens", input_tokens, 1e7), ("output tokens", output_tokens, 1e7)):
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or v < 0:
            raise InputError(f"{name} must be a number >= 0, got {v!r}")
        if v > most:
            raise InputError(f"{name} must be at most {most:,.0f}, got {v:,.0f}")
    if baseline not in prices:
        raise InputError(f"baseline {baseline!r} has no prices")
    shares = mix_from_counts(mix)
    unknown = [k for k in shares if k not in prices]
    if unknown:
        raise InputError(f"model mix names slots without prices: {', '.join(unknown)}")
    if not shares:
        raise InputError("the model mix is empty: route some queries or run the sweep first")
    requests = float(team_size) * float(requests_per_person)
    per_call = {k: _per_call(input_tokens, output_tokens, *prices[k]) for k in prices}
    per_model = {k: requests * s * per_call[k] for k, s in shares.items()}
    routed = sum(per_model.values())
    base = requests * per_call[baseline]
    saved, pct = savings(routed, base)
    return Projection(requests, routed, base, saved, pct, per_model,
                      sum(s * per_call[k] for k, s in shares.items()), per_call[baseline])


def _per_call(input_tokens: float, output_tokens: float, in_per_m: float, out_per_m: float) -> float:
    return (float(input_tokens) * in_per_m + float(output_tokens) * out_per_m) / 1e6
