"""The per-message sensitivity cache: a cached scan is the scan (matches, spans, redaction), a resent
conversation scans only its new turn, other rules never reuse a result, the size is bounded, and
through the real proxy a cached match still keeps a conversation on-prem and shows in /metrics."""

from __future__ import annotations

import httpx
import pytest

from router.errors import InputError
from router.routing.scan_cache import ScanCache, configured_size
from router.routing.sensitivity import BUILTIN_NAMES, SensitiveRule, redact, scan

from .governance_env import CLOUD_KEY_ENV, LOCAL, POLICY, SSN, dest, write_pool
from .proxy_env import make_registry, serve_api
from .upstream_stub import UpstreamStub

RULES = [SensitiveRule(name="pii", detectors=BUILTIN_NAMES, keywords=["confidential"], action="local_only"),
         SensitiveRule(name="cards", detectors=["credit_card"], action="redact")]


def history(turns: int) -> list[dict]:
    msgs = [{"role": "system", "content": "You are a coding agent."}]
    for i in range(turns):
        msgs.append({"role": "user", "content": f"step {i}: card 4111 1111 1111 1111" if i == 1 else f"step {i}"})
        msgs.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": f"t{i}", "type": "function", "function": {"name": "grep", "arguments": f'{{"q": "x{i}"}}'}}]})
        msgs.append({"role": "tool", "tool_call_id": f"t{i}", "content": f"hit in a.py:{i}" + (f" ssn {SSN}" if i == 2 else "")})
    return msgs


def _same(a, b):
    return ([m.to_dict() for m in a.matches] == [m.to_dict() for m in b.matches]
            and a._all == b._all and a._redact == b._redact)


def test_a_cached_scan_is_the_scan_and_redacts_the_same():
    msgs, cache = history(4), ScanCache()
    plain = scan(RULES, msgs)
    assert {m.detector for m in plain.matches} >= {"credit_card", "us_ssn"}  # the case has something to find
    first, again = scan(RULES, msgs, cache), scan(RULES, msgs, cache)
    assert _same(plain, first) and _same(plain, again)
    assert cache.hits == len(msgs) and cache.misses == len(msgs)
    assert redact(msgs, again) == redact(msgs, plain)
    assert "4111" not in str(redact(msgs, again))


def test_a_resent_conversation_scans_only_its_new_turn():
    cache, msgs = ScanCache(), history(3)
    scan(RULES, msgs, cache)
    longer = history(4)  # the same history with one more step, as an agent resends it
    hits, misses = cache.hits, cache.misses
    res = scan(RULES, longer, cache)
    assert cache.hits - hits == len(msgs) and cache.misses - misses == len(longer) - len(msgs)
    assert _same(res, scan(RULES, longer))
    assert {m.message for m in res.matches if m.detector == "us_ssn"} == {9}  # indices are this request's


def test_other_rules_never_reuse_a_result():
    cache, msgs = ScanCache(), history(3)
    scan(RULES, msgs, cache)
    stricter = [SensitiveRule(name="pii", detectors=BUILTIN_NAMES, keywords=["step 0"], action="block")]
    res = scan(stricter, msgs, cache)
    assert res.blocked and _same(res, scan(stricter, msgs))
    assert cache.hits == 0  # same name, other rule: its own results


def test_the_cache_is_bounded_and_can_be_turned_off(monkeypatch):
    cache = ScanCache(maxsize=3)
    scan(RULES, history(3), cache)
    assert len(cache) == 3 and cache.evictions == len(history(3)) - 3
    off = ScanCache(maxsize=0)
    assert _same(scan(RULES, history(2), off), scan(RULES, history(2))) and len(off) == 0 and off.hits == 0
    monkeypatch.setenv("ROUTER_SCAN_CACHE", "12")
    assert configured_size() == 12
    monkeypatch.setenv("ROUTER_SCAN_CACHE", "lots")
    with pytest.raises(InputError, match="ROUTER_SCAN_CACHE='lots': expected a whole number >= 0 of entries"):
        ScanCache()


def test_the_spans_held_are_bounded_too():
    cache = ScanCache()
    cache.max_weight = 30
    logs = [{"role": "tool", "content": " ".join(f"10.0.{i}.{j}" for j in range(12))} for i in range(4)]
    for _ in range(2):
        res = scan(RULES, logs, cache)
        assert _same(res, scan(RULES, logs)) and sum(m.spans for m in res.matches) == 48
    assert len(cache) == 2 and cache.weight == 24  # 12 spans each: the oldest were dropped to stay <= 30
    huge = [{"role": "tool", "content": " ".join(f"10.1.0.{j}" for j in range(40))}]
    assert scan(RULES, huge, cache).local_only and cache.weight <= 30  # too big alone: not kept


def test_a_message_that_is_not_json_is_scanned_but_not_kept():
    cache = ScanCache()
    odd = [{"role": "user", "content": "ssn " + SSN, "extra": {1, 2}}]  # a set: not JSON
    assert scan(RULES, odd, cache).local_only and len(cache) == 0


def test_through_the_proxy_a_cached_match_still_keeps_the_conversation_local(tmp_path, monkeypatch):
    """Turn 2 resends turn 1's history (with the SSN in a tool result): those messages come from the
    cache, and the request must still stay on-prem. /metrics counts the hits."""
    monkeypatch.setenv(CLOUD_KEY_ENV, "cloud-test-key")
    with UpstreamStub() as local, UpstreamStub() as cloud:
        for stub in (local, cloud):
            for name in ("onprem-small", "onprem-big", "cloud-mid", "cloud-best"):
                stub.behave(dest(name), answer="ok")
        srv = serve_api(make_registry(write_pool(tmp_path, local.base_url, cloud.base_url)), backoff=0.01)
        try:
            with httpx.Client(base_url=srv.url, timeout=60) as http:
                tools = [{"type": "function", "function": {"name": "grep", "description": "search the repo",
                                                           "parameters": {"type": "object", "properties": {}}}}]
                msgs = [m for m in history(3) if m["role"] != "system"][:-1] + [
                    {"role": "tool", "tool_call_id": "t2", "content": f"ssn {SSN}"}]
                for turn in range(2):
                    if turn:
                        msgs = msgs + [{"role": "user", "content": "Now write a haiku about the sea."}]
                    r = http.post("/v1/chat/completions", json={"model": POLICY, "messages": msgs, "tools": tools,
                                                                "tolerance": 0})
                    assert r.status_code == 200, r.text
                    assert r.json()["router"]["selected"] in LOCAL and r.headers["x-router-restricted"] == "local-only"
                assert cloud.calls() == []
                metrics = http.get("/metrics").text
        finally:
            srv.stop()
    hits = next(float(x.split()[-1]) for x in metrics.splitlines() if x.startswith("router_scan_cache_hits_total"))
    assert hits >= len(msgs) - 1  # turn 2: every message but the new one, and the unchanged tools field
