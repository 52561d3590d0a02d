"""collect: every slot x every question over real loopback HTTP, resume, budget stop, judges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from router.commands.cli import main as cli_main
from router.errors import InputError, MissingKeyError
from router.routing.pool import parse_pool
from router.training.collect import Budget, CollectConfig, Item, collect, read_collected, read_questions, summarize
from router.training.data import read_labels
from router.training.judges import make_judge

QUESTIONS = [
    {"id": "q1", "question": "What is the capital of France?", "reference": "Paris"},
    {"id": "q2", "question": "What is 6 times 7?", "reference": "42"},
    {"id": "q3", "question": "Which letter? (A) cat (B) dog", "reference": "B"},
    {"id": "q4", "question": "Largest planet?", "reference": "Jupiter"},
]


def make_pool(base_url: str, models: dict[str, dict] | None = None, tmp: Path | None = None):
    models = models or {"good": {}, "bad": {}}
    raw = {"policy": "test-pool", "checkpoint": "assets/checkpoint", "models": [
        {"name": name, "model": f"dest-{name}", "api_base": opts.pop("api_base", base_url), "local": True,
         "cost_per_m_input_tokens": opts.pop("in_price", 0.0), "cost_per_m_output_tokens": opts.pop("out_price", 0.0),
         **opts}
        for name, opts in models.items()]}
    return parse_pool(raw, (tmp or Path("/nonexistent")) / "pool.yaml")


def items() -> list[Item]:
    return [Item(q["id"], q["question"], q["reference"]) for q in QUESTIONS]


def write_questions(tmp_path: Path) -> Path:
    path = tmp_path / "qs.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    return path


def test_read_questions_formats_and_errors(tmp_path):
    txt = tmp_path / "q.txt"
    txt.write_text("What is 2+2?\n\n  Name a color.  \nWhat is 2+2?\n")
    got = read_questions(txt)
    assert [i.question for i in got] == ["What is 2+2?", "Name a color."]  # blank skipped, repeat asked once
    assert all(i.reference is None and len(i.id) == 16 for i in got)
    jl = write_questions(tmp_path)
    assert [(i.id, i.reference) for i in read_questions(jl)][:2] == [("q1", "Paris"), ("q2", "42")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "x"}\n{"id": "b"}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2: expected a string or an object"):
        read_questions(bad)
    bad.write_text('{"id": "a", "question": "x"}\n{"id": "a", "question": "y"}\n')
    with pytest.raises(InputError, match="id 'a' is used for two different questions"):
        read_questions(bad)
    bad.write_text('{"id": "a", "question": "x", "reference": "1"}\n{"id": "a", "question": "x", "reference": "2"}\n')
    with pytest.raises(InputError, match="id 'a' appears twice with different references"):
        read_questions(bad)
    bad.write_text("not json\n")
    with pytest.raises(InputError, match=r"bad.jsonl:1: not valid JSON"):
        read_questions(bad)
    (tmp_path / "q.csv").write_text("id,question,reference\nc1,x,7\n")
    assert read_questions(tmp_path / "q.csv") == [Item("c1", "x", "7")]
    (tmp_path / "q.csv").write_text("text\nx\n")
    with pytest.raises(InputError, match="needs a 'question' column"):
        read_questions(tmp_path / "q.csv")
    (tmp_path / "q.md").write_text("x\n")
    with pytest.raises(InputError, match=r"\.txt .*\.jsonl or \.csv"):
        read_questions(tmp_path / "q.md")


def test_collect_writes_labels_train_can_read(stub, tmp_path):
    stub.behave("dest-good", answer="Paris")
    stub.behave("dest-bad", answer="Rome", delay=0.05)
    pool = make_pool(stub.base_url, {"good": {"in_price": 1.0, "out_price": 2.0}, "bad": {}})
    out = tmp_path / "labels.jsonl"
    rep = collect(pool, items(), out, make_judge("reference"), CollectConfig(concurrency=2, max_tokens=16),
                  progress=False)
    assert (rep.pending, rep.written, rep.failed, rep.skipped) == (8, 8, 0, 0)
    rows = read_collected(out)
    assert len(rows) == 8 and {r["model"] for r in rows} == {"good", "bad"}
    by = {(r["id"], r["model"]): r for r in rows}
    assert by["q1", "good"]["correct"] == 1.0 and by["q1", "bad"]["correct"] == 0.0
    assert by["q2", "good"]["correct"] == 0.0  # "Paris" is not 42
    g = by["q1", "good"]
    assert g["output_tokens"] == 1 and g["input_tokens"] > 0 and g["latency_ms"] > 0
    assert g["cost_usd"] == pytest.approx((g["input_tokens"] * 1.0 + g["output_tokens"] * 2.0) / 1e6)
    assert by["q1", "bad"]["latency_ms"] >= 50 and by["q1", "bad"]["cost_usd"] == 0
    assert g["destination"] == "dest-good" and g["response"] == "Paris" and g["reference"] == "Paris"
    assert rep.spent_usd == pytest.approx(sum(r["cost_usd"] for r in rows))
    assert all(c["body"]["max_tokens"] == 16 and "temperature" not in c["body"] for c in stub.calls())
    table = read_labels(out)  # the format train reads
    assert table.Y.shape == (4, 2) and set(table.models) == {"good", "bad"}
    s = {x["model"]: x for x in summarize(out)}
    assert s["good"]["accuracy"] == 0.25 and s["bad"]["accuracy"] == 0.0


def test_rerun_skips_done_pairs_and_survives_a_torn_line(stub, tmp_path):
    pool = make_pool(stub.base_url)
    out = tmp_path / "labels.jsonl"
    first = collect(pool, items()[:2], out, make_judge("reference"), progress=False)
    assert first.written == 4 and len(stub.calls()) == 4
    with open(out, "a") as fh:  # a run killed halfway through writing a row
        fh.write('{"id": "q3", "question": "Which')
    size = out.stat().st_size
    assert len(read_collected(out)) == 4 and out.stat().st_size == size  # reading never edits the file
    second = collect(pool, items(), out, make_judge("reference"), progress=False)
    assert (second.skipped, second.written) == (4, 4)
    assert len(stub.calls()) == 8  # only the 4 new pairs were asked
    rows = read_collected(out)
    assert sorted((r["id"], r["model"]) for r in rows) == sorted((q["id"], m) for q in QUESTIONS for m in ("good", "bad"))
    third = collect(pool, items(), out, make_judge("reference"), progress=False)
    assert (third.pending, third.written) == (0, 0) and len(stub.calls()) == 8


def test_budget_stop_never_passes_the_cap_and_rerun_continues(stub, tmp_path):
    # each call costs (prompt words x 1000 + 1 x 1000) / 1e6 ~ $0.006-0.01; the cap allows a few
    pool = make_pool(stub.base_url, {"pricey": {"in_price": 1000.0, "out_price": 1000.0}})
    out = tmp_path / "labels.jsonl"
    cfg = CollectConfig(concurrency=4, max_usd=0.02, max_tokens=1)
    rep = collect(pool, items(), out, make_judge("reference"), cfg, progress=False)
    assert rep.stopped_by_budget and 0 < rep.written < 4
    assert rep.spent_usd <= 0.02
    assert len(read_collected(out)) == rep.written == len(stub.calls())
    rest = collect(pool, items(), out, make_judge("reference"), CollectConfig(max_usd=1.0, max_tokens=1),
                   progress=False)
    assert not rest.stopped_by_budget and rest.written == 4 - rep.written
    zero = collect(pool, [Item("new", "new question?", "x")], out, make_judge("reference"),
                   CollectConfig(max_usd=0.0), progress=False)
    assert zero.stopped_by_budget and zero.written == 0


def test_budget_reservations():
    b = Budget(1.0)
    assert b.reserve(0.6) and not b.reserve(0.6)  # in-flight reservations count
    b.settle(0.6, 0.5)
    assert b.reserve(0.4) and not Budget(None).exhausted and Budget(None).reserve(1e9)


def test_failed_calls_are_not_written_and_are_retried_next_run(stub, tmp_path):
    stub.behave("dest-bad", fail_status=500, fail_times=-1)
    pool = make_pool(stub.base_url)
    out = tmp_path / "labels.jsonl"
    rep = collect(pool, items()[:2], out, make_judge("reference"), CollectConfig(retries=1, backoff=0),
                  progress=False)
    assert (rep.written, rep.failed) == (2, 2) and "500" in rep.errors[0]
    assert len(stub.calls("dest-bad")) == 4  # 2 questions x (1 try + 1 retry)
    stub.behave("dest-bad", answer="Paris")
    again = collect(pool, items()[:2], out, make_judge("reference"), progress=False)
    assert (again.written, again.failed) == (2, 0)


def test_concurrency_is_bounded_per_endpoint(stub, tmp_path):
    delay = 0.3
    stub.behave("dest-a", answer="x", delay=delay)
    many = [Item(f"q{i}", f"question {i}?", "x") for i in range(8)]
    pool = make_pool(stub.base_url, {"a": {}})
    collect(pool, many, tmp_path / "l.jsonl", make_judge("reference"), CollectConfig(concurrency=2), progress=False)
    t = sorted(c["t"] for c in stub.calls("dest-a"))
    overlap = max(sum(1 for u in t if ti - delay + 0.05 < u <= ti) for ti in t)
    assert overlap <= 2
    stub.reset()
    stub.behave("dest-a", answer="x", delay=delay)
    collect(pool, many, tmp_path / "l2.jsonl", make_judge("reference"), CollectConfig(concurrency=8), progress=False)
    t = sorted(c["t"] for c in stub.calls("dest-a"))
    # more than two in flight at once (all eight on a quiet machine; a loaded one may start them later)
    assert max(sum(1 for u in t if ti - delay + 0.05 < u <= ti) for ti in t) > 2


def test_vote_judge_through_collect(stub, tmp_path):
    stub.behave("dest-a", answer="Paris")
    stub.behave("dest-b", answer="paris.")
    stub.behave("dest-c", answer="Rome")
    pool = make_pool(stub.base_url, {"a": {}, "b": {}, "c": {}})
    out = tmp_path / "labels.jsonl"
    collect(pool, [Item("q", "Capital of France?")], out, make_judge("vote"), progress=False)
    got = {r["model"]: r["correct"] for r in read_collected(out)}
    assert got == {"a": 1.0, "b": 1.0, "c": 0.0}


def test_llm_judge_through_collect_unparseable_is_unknown(stub, tmp_path):
    import asyncio

    import httpx

    from router.training.collect import collect_async
    from router.upstream.backends import Backend

    stub.behave("dest-a", answer="Paris")
    stub.behave("dest-b", answer="Rome")
    stub.behave("dest-judge", answer='{"correct": true}')
    pool = make_pool(stub.base_url, {"a": {}, "b": {}, "judge": {"enabled": False, "in_price": 1, "out_price": 1}})

    async def go(out):
        async with httpx.AsyncClient() as client:
            judge = make_judge("llm", backend=Backend(client, retries=0), slot=pool.slot("judge"))
            return await collect_async(pool, [Item("q", "Capital of France?", "Paris")], out, judge, progress=False)

    rep = asyncio.run(go(tmp_path / "a.jsonl"))
    assert rep.written == 2 and rep.judge_usd > 0 and rep.spent_usd >= rep.judge_usd
    assert len(stub.calls("dest-judge")) == 2 and not stub.calls("dest-judge")[0]["body"].get("stream")
    assert {r["correct"] for r in read_collected(tmp_path / "a.jsonl")} == {1.0}
    stub.behave("dest-judge", answer="I would say it's probably right")
    asyncio.run(go(tmp_path / "b.jsonl"))
    rows = read_collected(tmp_path / "b.jsonl")
    assert [r["correct"] for r in rows] == [None, None]  # unknown, never wrong
    assert np_isnan_all(read_labels(tmp_path / "b.jsonl").Y)


def np_isnan_all(a) -> bool:
    import numpy as np

    return bool(np.isnan(a).all())


def test_models_option_picks_slots_including_disabled(stub, tmp_path):
    from router.errors import UnknownModelError

    pool = make_pool(stub.base_url, {"on": {}, "off": {"enabled": False}})
    out = tmp_path / "l.jsonl"
    collect(pool, items()[:1], out, make_judge("reference"), progress=False)
    assert [r["model"] for r in read_collected(out)] == ["on"]
    collect(pool, items()[:1], out, make_judge("reference"), CollectConfig(models=("off",), temperature=0.3),
            progress=False)
    assert [r["model"] for r in read_collected(out)] == ["on", "off"]
    assert stub.calls("dest-off")[0]["body"]["temperature"] == 0.3
    with pytest.raises(UnknownModelError, match="known slots: on, off"):
        collect(pool, items(), out, make_judge("reference"), CollectConfig(models=("nope",)), progress=False)
    with pytest.raises(InputError, match="no enabled slots"):
        collect(make_pool(stub.base_url, {"off": {"enabled": False}}), items(), out, make_judge("reference"),
                progress=False)


def test_missing_key_fails_before_any_call(stub, tmp_path):
    pool = make_pool(stub.base_url, {"cloud": {"local": False, "api_key_env": "SOME_TEST_KEY"}, "other": {}})
    with pytest.raises(MissingKeyError, match="slot 'cloud' needs SOME_TEST_KEY"):
        collect(pool, items(), tmp_path / "l.jsonl", make_judge("reference"), progress=False)
    assert stub.calls() == []


def test_cli_collect(stub, tmp_path, capsys):
    stub.behave("dest-good", answer="Paris")
    stub.behave("dest-bad", answer="Rome")
    pool_yaml = tmp_path / "pool.yaml"
    pool_yaml.write_text(json.dumps({"policy": "p", "checkpoint": str(Path("assets/checkpoint").resolve()),
                                     "models": [{"name": n, "model": f"dest-{n}", "api_base": stub.base_url,
                                                 "local": True, "cost_per_m_input_tokens": 0,
                                                 "cost_per_m_output_tokens": 0} for n in ("good", "bad")]}))
    qs = write_questions(tmp_path)
    out = tmp_path / "labels.jsonl"
    args = ["collect", "--config", str(pool_yaml), "--questions", str(qs), "--out", str(out), "--no-progress"]
    assert cli_main(args) == 0
    text = capsys.readouterr().out
    assert "4 questions x 2 slots: 0 already in" in text and "wrote 8 rows" in text
    assert "good: 4 rows, accuracy 0.250" in text
    assert cli_main(args) == 0
    assert "8 already in" in capsys.readouterr().out
    # the llm judge through the CLI: a disabled slot of the same pool grades, and is never asked questions
    raw = json.loads(pool_yaml.read_text())
    raw["models"].append({"name": "judge", "model": "dest-judge", "api_base": stub.base_url, "local": True,
                          "enabled": False, "cost_per_m_input_tokens": 0, "cost_per_m_output_tokens": 0})
    pool_yaml.write_text(json.dumps(raw))
    stub.behave("dest-judge", answer='{"correct": false, "reason": "strict judge"}')
    judged = tmp_path / "judged.jsonl"
    assert cli_main(["collect", "--config", str(pool_yaml), "--questions", str(qs), "--out", str(judged),
                     "--judge", "llm", "--judge-slot", "judge", "--no-progress"]) == 0
    capsys.readouterr()
    rows = read_collected(judged)
    assert len(rows) == 8 and {(r["judge"], r["correct"]) for r in rows} == {("llm", 0.0)}
    assert len(stub.calls("dest-judge")) == 8
    txt = tmp_path / "q.txt"
    txt.write_text("no references here\n")
    assert cli_main(["collect", "--config", str(pool_yaml), "--questions", str(txt), "--out", str(out)]) == 1
    assert "needs a 'reference'" in capsys.readouterr().err
    assert cli_main(args[:-3] + ["--out", str(tmp_path / "x.csv")]) == 1
    assert "must be a .jsonl file" in capsys.readouterr().err
