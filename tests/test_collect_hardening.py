"""collect under a budget, a failing judge, empty answers and a changed pool, over real loopback HTTP."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from router.commands.cli import main as cli_main
from router.errors import ConfigError, InputError, MissingKeyError
from router.routing.pool import parse_pool
from router.training.collect import CollectConfig, Item, collect, collect_async, read_collected
from router.training.judges import make_judge
from router.upstream.backends import Backend

from .test_collect import items, make_pool, write_questions


def many(n: int) -> list[Item]:
    return [Item(f"q{i}", f"question number {i}?", "x") for i in range(n)]


def test_budget_cap_waits_for_in_flight_calls_instead_of_stopping(stub, tmp_path):
    """The first calls reserve a 256-token guess each; with 4 in flight that guess alone passed the
    cap and the whole run stopped after one call (2% of the cap spent). Waiting for the guesses to
    settle at their real one-token cost lets every call that fits be made."""
    stub.behave("dest-a", answer="x", delay=0.05)
    pool = make_pool(stub.base_url, {"a": {"in_price": 0.0, "out_price": 1000.0}})  # $0.001 per 1-token answer
    rep = collect(pool, many(20), tmp_path / "l.jsonl", make_judge("reference"),
                  CollectConfig(concurrency=4, max_usd=0.3), progress=False)
    assert (rep.written, rep.stopped_by_budget, rep.over_budget) == (20, False, 0)
    assert rep.spent_usd == pytest.approx(0.020)
    # a cap that fits about ten calls: it is used up, never passed
    tight = collect(pool, many(20), tmp_path / "t.jsonl", make_judge("reference"),
                    CollectConfig(concurrency=4, max_usd=0.0105), progress=False)
    assert tight.stopped_by_budget and tight.spent_usd <= 0.0105
    assert tight.written >= 8 and tight.written + tight.over_budget == 20
    assert len(read_collected(tmp_path / "t.jsonl")) == tight.written == len(stub.calls("dest-a")) - 20


def llm_judge_pool(stub, judge_opts=None):
    return make_pool(stub.base_url, {"a": {}, "judge": {"enabled": False, "in_price": 1, "out_price": 1,
                                                        **(judge_opts or {})}})


async def _collect_with_llm_judge(pool, out, judge_slot="judge"):
    async with httpx.AsyncClient() as client:
        judge = make_judge("llm", backend=Backend(client, retries=0), slot=pool.slot(judge_slot))
        return await collect_async(pool, [Item("q1", "Capital of France?", "Paris"),
                                          Item("q2", "Capital of Italy?", "Rome")], out, judge, progress=False)


def test_llm_judge_without_its_key_fails_before_any_call(stub, tmp_path, monkeypatch):
    monkeypatch.delenv("JUDGE_TEST_KEY", raising=False)
    pool = llm_judge_pool(stub, {"local": False, "api_key_env": "JUDGE_TEST_KEY"})
    with pytest.raises(MissingKeyError, match="judge slot 'judge' needs JUDGE_TEST_KEY"):
        asyncio.run(_collect_with_llm_judge(pool, tmp_path / "l.jsonl"))
    assert stub.calls() == []


def test_failed_verdicts_are_counted_and_judged_again_on_resume(stub, tmp_path):
    stub.behave("dest-a", answer="Paris")
    stub.behave("dest-judge", fail_status=500, fail_times=-1)
    pool = llm_judge_pool(stub)
    out = tmp_path / "l.jsonl"
    rep = asyncio.run(_collect_with_llm_judge(pool, out))
    assert (rep.written, rep.judge_failed) == (2, 2)
    rows = read_collected(out)
    assert [r["correct"] for r in rows] == [None, None] and all(r["judge_failed"] for r in rows)
    asked = len(stub.calls("dest-a"))
    stub.behave("dest-judge", answer='{"correct": true}')
    again = asyncio.run(_collect_with_llm_judge(pool, out))
    assert (again.written, again.rejudged, again.judge_failed) == (0, 2, 0)
    assert len(stub.calls("dest-a")) == asked  # the stored answers were judged; no model was asked again
    rows = read_collected(out)
    assert [r["correct"] for r in rows] == [1.0, 1.0] and not any("judge_failed" in r for r in rows)
    assert all(r["judge_model"] == "dest-judge" for r in rows)


def test_empty_answer_is_unknown_not_wrong(stub, tmp_path):
    stub.behave("dest-a", answer="")
    pool = make_pool(stub.base_url, {"a": {}})
    out = tmp_path / "l.jsonl"
    collect(pool, items()[:1], out, make_judge("reference"), progress=False)
    (row,) = read_collected(out)
    assert row["correct"] is None and row["judge_note"].startswith("empty answer (finish_reason")


def test_rows_without_upstream_usage_are_marked_estimated(stub, tmp_path):
    stub.behave("dest-a", answer="Paris", no_usage=True)
    stub.behave("dest-b", answer="Paris")
    pool = make_pool(stub.base_url, {"a": {"in_price": 1, "out_price": 1}, "b": {"in_price": 1, "out_price": 1}})
    out = tmp_path / "l.jsonl"
    collect(pool, items()[:1], out, make_judge("reference"), CollectConfig(system="Answer briefly. " * 20),
            progress=False)
    by = {r["model"]: r for r in read_collected(out)}
    assert by["a"]["usage_estimated"] is True and "usage_estimated" not in by["b"]
    assert by["a"]["input_tokens"] > 20  # the estimate counts the system message too


def test_resume_refuses_a_changed_destination_or_judge(stub, tmp_path):
    stub.behave("dest-a", answer="Paris")
    out = tmp_path / "l.jsonl"
    collect(make_pool(stub.base_url, {"a": {}}), items()[:1], out, make_judge("reference"), progress=False)
    moved = parse_pool({"policy": "test-pool", "checkpoint": "assets/checkpoint", "models": [
        {"name": "a", "model": "another-model", "api_base": stub.base_url, "local": True,
         "cost_per_m_input_tokens": 0, "cost_per_m_output_tokens": 0}]}, Path("/nonexistent/pool.yaml"))
    with pytest.raises(InputError, match="answered by model dest-a, the pool now sends this slot to another-model"):
        collect(moved, items(), out, make_judge("reference"), progress=False)
    with pytest.raises(InputError, match="labels were judged by reference; this run judges with vote"):
        collect(make_pool(stub.base_url, {"a": {}}), items(), out, make_judge("vote"), progress=False)
    assert len(read_collected(out)) == 1  # nothing appended by the refused runs


@pytest.mark.parametrize("value", ["sk-or-v1-0123456789abcdef0123456789abcdef",
                                   "hf_AbCdEfGh1234IjKl5678MnOp", "abc def", "Xy7kP2mQ9rT4vW8zL3nB6cD1"])
def test_an_api_key_pasted_into_api_key_env_is_refused_without_echo(value):
    raw = {"policy": "p", "checkpoint": "assets/checkpoint", "models": [
        {"name": "a", "model": "m", "api_key_env": value, "cost_per_m_input_tokens": 0,
         "cost_per_m_output_tokens": 0}]}
    with pytest.raises(ConfigError) as err:
        parse_pool(raw, Path("/nonexistent/pool.yaml"))
    assert "models[0].api_key_env (slot 'a')" in str(err.value) and value not in str(err.value)
    for name in ("MY_VENDOR_API_KEY", "HF_TOKEN", "GSK_API_KEY", "SK_LIVE", "hf_token",
                 "together_api_key_for_llama3_70b_2024"):
        raw["models"][0]["api_key_env"] = name
        assert parse_pool(raw, Path("/nonexistent/pool.yaml")).models[0].api_key_env == name


def _pool_yaml(tmp_path, base_url, names=("good", "bad")) -> Path:
    path = tmp_path / "pool.yaml"
    path.write_text(json.dumps({"policy": "p", "checkpoint": str(Path("assets/checkpoint").resolve()),
                                "models": [{"name": n, "model": f"dest-{n}", "api_base": base_url, "local": True,
                                            "cost_per_m_input_tokens": 0, "cost_per_m_output_tokens": 0}
                                           for n in names]}))
    return path


def test_cli_collect_reports_every_failure_and_names_dead_slots(stub, tmp_path, capsys):
    stub.behave("dest-good", answer="Paris")
    stub.behave("dest-bad", fail_status=500, fail_times=-1)
    pool_yaml, qs = _pool_yaml(tmp_path, stub.base_url), write_questions(tmp_path)
    many_qs = tmp_path / "many.jsonl"
    many_qs.write_text("".join(json.dumps({"id": f"m{i}", "question": f"q {i}?", "reference": "x"}) + "\n"
                               for i in range(7)))
    args = ["collect", "--config", str(pool_yaml), "--questions", str(many_qs), "--out", str(tmp_path / "l.jsonl"),
            "--no-progress", "--retries", "0"]
    assert cli_main(args) == 1
    text = capsys.readouterr().out
    assert "... and 2 more failed calls" in text and "slot bad: 7 calls failed" in text
    assert "bad: no rows (every call failed)" in text
    base = ["collect", "--config", str(pool_yaml), "--questions", str(qs), "--out", str(tmp_path / "x.jsonl")]
    assert cli_main(base + ["--judge-slot", "good"]) == 1
    assert "--judge-slot and --judge-config are for --judge llm" in capsys.readouterr().err
    assert cli_main(base + ["--judge", "llm", "--judge-slot", "nope"]) == 1
    assert "--judge-slot 'nope' is not a slot of" in capsys.readouterr().err


def test_cli_collect_exits_non_zero_when_the_judge_failed(stub, tmp_path, capsys):
    stub.behave("dest-good", answer="Paris")
    stub.behave("dest-judge", fail_status=500, fail_times=-1)
    pool_yaml, qs = _pool_yaml(tmp_path, stub.base_url, ("good", "judge")), write_questions(tmp_path)
    args = ["collect", "--config", str(pool_yaml), "--questions", str(qs), "--out", str(tmp_path / "l.jsonl"),
            "--models", "good", "--judge", "llm", "--judge-slot", "judge", "--no-progress", "--retries", "0"]
    assert cli_main(args) == 1
    assert "4 labels are unknown because the judge could not grade them" in capsys.readouterr().out


def test_limit_holds_for_calls_that_waited_on_the_budget(stub, tmp_path):
    """Workers that passed the --limit check and then waited for the budget all started afterwards."""
    stub.behave("dest-a", answer="x", delay=0.05)
    pool = make_pool(stub.base_url, {"a": {"in_price": 0.0, "out_price": 1000.0}})
    rep = collect(pool, many(10), tmp_path / "l.jsonl", make_judge("reference"),
                  CollectConfig(concurrency=4, max_usd=0.3, limit=3), progress=False)
    assert rep.stopped_by_limit and rep.written == 3 == len(stub.calls("dest-a"))


def test_budget_counts_calls_in_flight_not_float_residue():
    from router.training.collect import Budget

    b = Budget(10.0)
    ests = [0.1, 0.2, 0.7, 0.3, 0.6]
    for e in ests:
        assert b.reserve(e)
    for e in ests:
        b.settle(e, e)
    assert not b.in_flight and b.reserved == 0.0 and b.spent == pytest.approx(1.9)
