"""The playground's logic without the browser: routing, re-deciding, sending, review, sweeps, records.

Real encoder and checkpoint, real HTTP to the loopback upstream stub; no probability is hard-coded.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest

from router.errors import InputError
from router.routing import costs, sweep
from router.routing.pool import load_pool
from router.routing.router import PrefillRouter
from router.ui import playground, review

from .ui_helpers import stub_pool_yaml

QUERY = "Prove that the square root of 2 is irrational."


@pytest.fixture
def stub_router(tmp_path, stub):
    stub.reset()
    return PrefillRouter(load_pool(stub_pool_yaml(tmp_path, stub.base_url)))


def _cheapest_enabled(result):
    return min((m for m in result.models if m.allowed), key=lambda m: m.expected_cost_usd).name


def test_redecide_reuses_scores_without_an_encoder_pass(default_router, monkeypatch):
    s = playground.Session()
    first = playground.route(default_router, s, QUERY, 0.0, None)
    assert first.chosen == first.best

    def no_encoder(*_a, **_k):
        raise AssertionError("a slider move must not run the encoder")

    monkeypatch.setattr(default_router, "score", no_encoder)
    monkeypatch.setattr(default_router.encoder, "encode_ids", no_encoder)
    wide = playground.redecide(default_router, s, 1.0, None)
    assert wide.chosen == _cheapest_enabled(wide)
    assert wide.probabilities == first.probabilities
    assert len(s.records) == 1 and s.records[0]["tolerance"] == 1.0  # same query: one record, updated


def test_disabled_models_are_never_chosen(default_router):
    s = playground.Session()
    r = playground.route(default_router, s, QUERY, 0.2, None)
    off = {r.best, _cheapest_enabled(r)}
    enabled = [n for n in default_router.pool.names if n not in off]
    for t in sweep.tolerance_grid(0, 1, 0.1):
        res = playground.redecide(default_router, s, t, enabled)
        assert res.chosen not in off
        assert {m.name for m in res.models if not m.allowed} == off
    with pytest.raises(InputError, match="no model is enabled"):
        playground.redecide(default_router, s, 0.2, [])


def test_redecide_before_any_query_is_a_no_op(default_router):
    assert playground.redecide(default_router, playground.Session(), 0.5, None) is None


def test_record_has_the_audit_log_fields(default_router):
    from router.audit.record import DecisionRecord

    s = playground.Session()
    r = playground.route(default_router, s, QUERY, 0.3, None)
    rec = s.records[0]
    assert set(DecisionRecord.build(r).to_line()) <= set(rec)
    assert rec["api"] == "playground" and rec["query"] == QUERY and rec["cost_basis"] == "estimate"
    assert [m["name"] for m in rec["models"]] == default_router.pool.names
    assert rec["chosen"] == r.chosen and rec["actual_cost_usd"] is None
    json.dumps(rec)  # JSONL-ready


def _send(router, session, **kw):
    async def go():
        async with httpx.AsyncClient() as client:
            parts = [a.text async for a in playground.send(router, session, client, **kw)]
            return parts, session
    return asyncio.run(go())


def test_send_streams_from_a_local_slot_and_records_real_cost(stub_router, stub):
    stub.behave("stub/small-model", answer="The answer streams in word by word from the small model.")
    stub.behave("stub/large-model", answer="The answer streams in word by word from the large model.")
    s = playground.Session()
    r = playground.route(stub_router, s, "What is 2 + 2?", 1.0, None)
    parts, _ = _send(stub_router, s)
    assert len(parts) > 3 and parts[-1].startswith("The answer streams") and parts[1] != parts[-1]
    rec = s.records[-1]
    slot = stub_router.pool.slot(r.chosen)
    assert rec["selected"] == r.chosen and rec["status"] == "ok" and rec["cost_basis"] == "actual"
    assert rec["usage"]["completion_tokens"] > 0
    assert rec["actual_cost_usd"] == pytest.approx(costs.usage_cost(slot, rec["usage"]))
    assert stub.calls(slot.model), "the chosen slot's destination was called"
    # A slider move after an answer is a new decision with its own record.
    playground.redecide(stub_router, s, 0.0, None)
    assert len(s.records) == 2 and s.records[0]["request_id"] != s.records[1]["request_id"]


def test_send_without_key_names_the_env_var_and_keeps_the_decision(default_router):
    s = playground.Session()
    playground.route(default_router, s, "What is 2 + 2?", 0.2, None)
    parts, _ = _send(default_router, s)
    rec = s.records[-1]
    assert rec["status"] == "error" and "OPENROUTER_API_KEY" in rec["error"]
    assert rec["chosen"] and rec["cost_basis"] == "estimate"


def test_send_to_unreachable_local_endpoint_names_the_url(tmp_path):
    from tests.serving import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    router = PrefillRouter(load_pool(stub_pool_yaml(tmp_path, url)))
    s = playground.Session()
    playground.route(router, s, "hello", 0.2, None)

    async def go():
        async with httpx.AsyncClient() as client:
            return [a async for a in playground.send(router, s, client)][-1]
    ans = asyncio.run(go())
    assert ans.error and ans.missing == url


@pytest.mark.parametrize("reply, verdict", [
    ('```json\n{"correct": true, "reason": "Proof is complete."}\n```', "correct"),
    ('Sure! {"correct": false, "reason": "wrong step"} hope that helps', "incorrect"),
    ("I think it is fine.", "unparseable"),
])
def test_auto_review_verdicts(tmp_path, stub, reply, verdict):
    stub.reset()
    router = PrefillRouter(load_pool(stub_pool_yaml(tmp_path, stub.base_url)))
    judge = review.judge_slot(router.pool)
    assert judge.name == "stub-large"  # the most expensive slot judges
    stub.behave(judge.model, answer=reply)
    s = playground.Session()
    playground.route(router, s, "What is 2 + 2?", 1.0, None)

    async def go():
        async with httpx.AsyncClient() as client:
            ans = [a async for a in playground.send(router, s, client)][-1]
            return await playground.review_answer(router, s, client, ans)
    rv = asyncio.run(go())
    assert rv.verdict == verdict
    assert s.records[-1]["review"]["verdict"] == verdict
    assert rv.cost_usd > 0


def test_parse_review_edge_cases():
    assert review.parse_review('{"score": 0.5, "reason": "half"}') == (0.5, "half")
    assert review.parse_review("") == (None, "")
    assert review.parse_review("{not json") == (None, "")


def test_run_sweep_scores_once_and_matches_the_rule(default_router):
    texts = [s["question"] for s in playground.load_samples()]
    assert len(texts) >= 10
    grid = sweep.tolerance_grid()
    sw = playground.run_sweep(default_router, texts, grid, None)
    assert (sw.counts.sum(1) == len(texts)).all()
    P = default_router.score_batch(texts)
    assert sw.counts[0].tolist() == np.bincount(P.argmax(1), minlength=P.shape[1]).tolist()  # t=0: best model
    assert (np.diff(sw.mean_cost_usd) <= 1e-12).all()


def test_load_questions_txt_jsonl_and_errors(tmp_path):
    (tmp_path / "q.txt").write_text("first?\n\n second? \n", encoding="utf-8")
    assert playground.load_questions(tmp_path / "q.txt") == ["first?", "second?"]
    (tmp_path / "q.jsonl").write_text('"plain"\n{"question": "q1"}\n{"prompt": "q2"}\n'
                                      '{"messages": [{"role": "user", "content": "hi"}]}\n', encoding="utf-8")
    got = playground.load_questions(tmp_path / "q.jsonl")
    assert got[:3] == ["plain", "q1", "q2"] and "hi" in got[3]
    (tmp_path / "bad.jsonl").write_text('{"question": "ok"}\n{"answer": 1}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.jsonl:2: expected"):
        playground.load_questions(tmp_path / "bad.jsonl")
    (tmp_path / "broken.jsonl").write_text("{oops\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"broken.jsonl:1: not valid JSON"):
        playground.load_questions(tmp_path / "broken.jsonl")
    (tmp_path / "q.csv").write_text("question\nfrom csv\n", encoding="utf-8")
    assert playground.load_questions(tmp_path / "q.csv") == ["from csv"]
    (tmp_path / "q.md").write_text("a\n", encoding="utf-8")
    with pytest.raises(InputError, match="questions must be a .txt"):
        playground.load_questions(tmp_path / "q.md")
