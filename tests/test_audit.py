"""The audit log: record format, query-text modes, no keys, concurrent appends, and the
`audit summary` command (distribution, spend vs baseline, drift) on hand-computed logs.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from router.audit.log import AuditLog, read_records
from router.audit.record import DecisionRecord, client_id
from router.audit.summary import parse_time, summarize
from router.commands.cli import main
from router.errors import InputError
from router.routing.pool import load_pool
from router.routing.router import PrefillRouter, Scores

from .proxy_env import write_pool


@pytest.fixture(scope="module")
def router(tmp_path_factory):
    return PrefillRouter(load_pool(write_pool(tmp_path_factory.mktemp("pool"), "http://127.0.0.1:9/v1")))


@pytest.fixture(scope="module")
def result(router):
    return router.decide(Scores(np.array([0.5, 0.7, 0.8, 0.9]), 1000, 1.0, 0.1), 0.25)


def decision_record(result, **kw):
    return DecisionRecord.build(result, **kw).to_line()


def test_record_holds_the_decision_and_real_costs(result):
    rec = decision_record(result, request_id="r1", api="openai", client=client_id("secret-token"),
                          query_text="q?", selected="mid",
                          attempts=[{"slot": "mid", "model": "stub/mid", "status": 200, "latency_ms": 5.0,
                                     "error": None}],
                          usage={"prompt_tokens": 1000, "completion_tokens": 500}, latency_ms=12.345)
    assert rec["chosen"] == "mid" and rec["selected"] == "mid" and rec["p_max"] == 0.9
    assert [m["name"] for m in rec["models"]] == ["cheap", "mid", "strong", "best"]
    assert rec["actual_cost_usd"] == pytest.approx((1000 * 0.5 + 500 * 1.5) / 1e6)
    base = result.score("best")
    assert rec["baseline_cost_usd"] == pytest.approx((1000 * 10 + base.expected_output_tokens * 30) / 1e6)
    assert rec["client"].startswith("sha256:") and "secret-token" not in json.dumps(rec)
    assert rec["query"] == "q?" and rec["latency_ms"] == 12.35
    json.dumps(rec)  # serializable as is


@pytest.mark.parametrize("mode,present,absent", [("store", "query", "query_sha256"),
                                                  ("hash", "query_sha256", "query"), ("drop", None, "query")])
def test_query_text_store_hash_drop(result, mode, present, absent):
    rec = decision_record(result, query_text="my private question", query_mode=mode)
    if present:
        assert present in rec
    assert absent not in rec
    assert (mode == "store") == ("my private question" in json.dumps(rec))


def test_concurrent_appends_never_interleave(tmp_path, result):
    log = AuditLog(tmp_path / "sub" / "a.jsonl")
    rec = decision_record(result, query_text="x" * 5000)

    def work(k):
        for i in range(50):
            log.write({**rec, "request_id": f"{k}-{i}"})

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    recs = list(read_records(log.path))
    assert len(recs) == 400 and len({r["request_id"] for r in recs}) == 400


def test_read_records_reports_bad_lines_and_goes_on(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"ts": 1}\nnot json\n{"no": "ts"}\n{"ts": 2}\n')
    problems: list[str] = []
    assert [r["ts"] for r in read_records(p, problems=problems)] == [1, 2]
    assert len(problems) == 2 and "x.jsonl:2" in problems[0] and "x.jsonl:3" in problems[1]
    with pytest.raises(InputError, match="not found"):
        list(read_records(tmp_path / "none.jsonl"))


def _rec(ts, chosen, cost, base=1.0, status="ok"):
    return {"ts": ts, "chosen": chosen, "selected": chosen, "actual_cost_usd": cost, "expected_cost_usd": cost,
            "baseline_cost_usd": base, "baseline": "opus", "policy": "p", "status": status}


def test_summary_distribution_spend_and_drift():
    recs = [_rec(0, "a", 0.1), _rec(1, "a", 0.1), _rec(2, "b", 0.3), _rec(3, "b", 0.3),
            _rec(10, "b", 0.3), _rec(11, "b", 0.3), _rec(12, "b", 0.3), _rec(13, "c", 0.5, status="error")]
    s = summarize(recs, split=5)
    t = s["total"]
    assert t["requests"] == 8 and t["errors"] == 1
    assert t["counts"] == {"b": 5, "a": 2, "c": 1}
    # the error line's known cost is spend too, apart; savings compare the answered requests only
    assert t["spend_ok_usd"] == pytest.approx(1.7) and t["baseline_usd"] == pytest.approx(7.0)
    assert t["spend_not_ok_usd"] == pytest.approx(0.5) and t["spend_usd"] == pytest.approx(2.2)
    assert s["saved_pct"] == pytest.approx(100 * 5.3 / 7.0)
    d = s["windows"]["drift"]
    # before: a 50%, b 50%; after: b 75%, c 25%  -> TV = (0.5 + 0.25 + 0.25) / 2
    assert d["total_variation"] == pytest.approx(0.5)
    assert s["windows"]["before"]["cost_per_request_usd"] == pytest.approx(0.2)
    assert d["cost_per_request_change_usd"] == pytest.approx(0.1)


def test_summary_counts_what_failed_and_cancelled_requests_were_billed():
    """An upstream bills a stream cut midway: only "ok" lines used to count, so spend was under-reported."""
    recs = [_rec(0, "a", 0.1), _rec(1, "a", 0.2),
            {**_rec(2, "b", 0.3, status="client_closed"), "usage_estimated": True},  # cut stream, usage estimated
            _rec(3, "b", 0.4, status="error"),  # broke off midway after billed tokens
            {**_rec(4, "b", None, status="error"), "expected_cost_usd": 0.9},  # failed before any answer
            {**_rec(5, "b", None, status="interrupted"), "expected_cost_usd": 0.9}]  # the server died mid-stream
    t = summarize(recs)["total"]
    assert t["spend_ok_usd"] == pytest.approx(0.3) and t["spend_not_ok_usd"] == pytest.approx(0.7)
    assert t["spend_usd"] == pytest.approx(1.0)  # the router's estimate of a failed call is no bill
    assert (t["errors"], t["not_ok_billed"], t["not_ok_unknown"]) == (4, 2, 2)
    assert t["cost_per_request_usd"] == pytest.approx(0.15)  # per answered request, as before
    assert summarize(recs)["saved_usd"] == pytest.approx(2 * 1.0 - 0.3)  # baseline of the two answered ones


def test_cli_summary_prints_the_not_ok_spend(tmp_path, capsys):
    p = tmp_path / "audit.jsonl"
    recs = [_rec(1e9, "a", 0.25), _rec(1e9 + 1, "b", 0.5, status="client_closed"), _rec(1e9 + 2, "b", None, status="error")]
    p.write_text("".join(json.dumps({**r, "request_id": f"r{i}"}) + "\n" for i, r in enumerate(recs)))
    assert main(["audit", "summary", str(p)]) == 0
    out = capsys.readouterr().out
    assert "spend:     $0.750000" in out and "answered: $0.250000 on 1 requests" in out
    assert "not ok:  $0.500000" in out and "1 of 2; 1 more with no known usage" in out


def test_parse_time():
    assert parse_time("2h", now=10_000) == 10_000 - 7200
    assert parse_time("2026-11-30T00:00:00Z") == parse_time("2026-11-30")
    with pytest.raises(InputError, match="24h"):
        parse_time("yesterday")


def test_cli_audit_summary(tmp_path, capsys):
    p = tmp_path / "audit.jsonl"
    p.write_text("\n".join(json.dumps(_rec(ts, c, 0.01)) for ts, c in [(1e9, "a"), (1e9 + 10, "b")]) + "\n")
    assert main(["audit", "summary", str(p)]) == 0
    out = capsys.readouterr().out
    assert "routing distribution" in out and "a " in out and "saved:" in out and "drift:" in out
    assert main(["audit", "summary", str(p), "--since", "1h"]) == 0
    assert "no records" in capsys.readouterr().out
    assert main(["audit", "summary", str(p), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["requests"] == 2
    assert main(["audit", "summary", str(tmp_path / "missing.jsonl")]) == 1


def test_unwritable_audit_path_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot write the audit log"):
        AuditLog(blocker / "audit.jsonl")
