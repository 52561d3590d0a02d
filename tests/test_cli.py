"""The CLI end to end on the real bundled encoder and checkpoint (subprocesses, no network)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from router.paths import PROJECT_ROOT

ROOT = PROJECT_ROOT


def cli(*args, check=True, env=None):
    e = {**os.environ, **(env or {})}
    r = subprocess.run([sys.executable, "-m", "router", *args], cwd=ROOT, capture_output=True, text=True,
                       timeout=600, env=e)
    if check and r.returncode != 0:
        raise AssertionError(f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}")
    return r


@pytest.mark.slow
def test_route_json_prints_full_routing_result_without_keys():
    r = cli("route", "What is the capital of France?", "--json")
    out = json.loads(r.stdout)
    assert out["policy"] == "default" and len(out["models"]) == 9
    names = [m["name"] for m in out["models"]]
    assert out["chosen"] in out["candidates"] and out["best"] in names
    assert out["threshold"] == pytest.approx(out["p_max"] - 0.2, abs=1e-6)
    best_p = max(m["p"] for m in out["models"])
    assert out["p_max"] == pytest.approx(best_p, abs=1e-6)
    cands = [m for m in out["models"] if m["name"] in out["candidates"]]
    assert all(m["p"] >= out["threshold"] - 1e-9 for m in cands)
    assert min(m["expected_cost_usd"] for m in cands) == out["expected_cost_usd"]
    assert {"encode_ms", "head_ms", "total_ms"} <= set(out["timings_ms"])
    assert all(m["trained_as"] and m["trained_as_reason"] for m in out["models"])


@pytest.mark.slow
def test_route_table_and_errors():
    r = cli("route", "Write a Python decorator that caches results.", "--tolerance", "1")
    assert "chosen: nemotron-3-super" in r.stdout  # the only $0 slot wins at tolerance 1
    bad = cli("route", "hi", "--tolerance", "1.5", check=False)
    assert bad.returncode == 1 and "tolerance must be in [0, 1]" in bad.stderr
    bad = cli("route", "hi", "--models", "gpt-5-4-high,nope", check=False)
    assert bad.returncode == 1 and "unknown model(s) ['nope']" in bad.stderr
    bad = cli("route", "   ", check=False)
    assert bad.returncode == 1 and "empty" in bad.stderr
    bad = cli("route", "hi", "--config", "configs/missing.yaml", check=False)
    assert bad.returncode == 2 and "file not found" in bad.stderr


@pytest.mark.slow
def test_import_train_score_round_trip(tmp_path):
    rows = []
    for i in range(40):
        q = f"{'Explain in depth' if i % 2 else 'Say'} thing number {i}"
        rows.append({"id": f"q{i}", "question": q, "model": "big", "correct": 1, "output_tokens": 50})
        rows.append({"id": f"q{i}", "question": q, "model": "small", "correct": int(i % 2 == 0),
                     "output_tokens": 10, "split": "test" if i >= 36 else "train"})
    data = tmp_path / "labels.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ck = tmp_path / "ck"
    r = cli("train", "--data", str(data), "--out", str(ck), "--members", "1", "--epochs", "20", "--pca-dim", "8",
            "--hidden", "16")
    assert "trained on" in r.stdout
    meta = json.loads((ck / "router.json").read_text())
    assert meta["slots"] == ["big", "small"] and meta["output_tokens"]["big"]["mean"] == 50
    assert meta["training"]["n_questions"] == 36  # the 4 test questions never reach training
    qs = tmp_path / "qs.jsonl"
    qs.write_text('{"id": "a", "question": "Say hello"}\n{"id": "b", "question": "Explain in depth the moon"}\n')
    cli("score", "--checkpoint", str(ck), "--input", str(qs), "--output", str(tmp_path / "p.jsonl"))
    preds = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [p["id"] for p in preds] == ["a", "b"]
    assert set(preds[0]["p"]) == {"big", "small"} and all(0 <= v <= 1 for v in preds[0]["p"].values())
    bad = cli("score", "--checkpoint", str(tmp_path / "nope"), "--input", str(qs), "--output", "x", check=False)
    assert bad.returncode == 1 and "router.json is missing" in bad.stderr
    pool = tmp_path / "pool.yaml"
    pool.write_text(json.dumps({"policy": "p", "checkpoint": str(tmp_path / "nope"), "models": [
        {"name": n, "model": n, "local": True, "api_base": "http://127.0.0.1:9/v1", "cost_per_m_input_tokens": 0,
         "cost_per_m_output_tokens": 0} for n in ("big", "small")]}))
    bad = cli("route", "--config", str(pool), "hello", check=False)
    assert bad.returncode == 1 and f"{pool}: checkpoint: '{tmp_path / 'nope'}' -> " in bad.stderr


@pytest.mark.slow
def test_score_reads_a_long_format_label_file_as_it_is_and_encodes_each_question_once(tmp_path, capsys):
    import csv

    from router.commands.cli import main

    qs = ["What is 2 + 2?", "Prove that sqrt(2) is irrational.", "Translate 'good morning' into Spanish."]
    labels = tmp_path / "test_half.csv"
    with open(labels, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, ["question", "model", "correct"])
        w.writeheader()
        for m in ("a", "b", "c"):  # model-major: a question's rows are not adjacent
            for q in qs:
                w.writerow({"question": q, "model": m, "correct": 1})
    distinct = tmp_path / "q.txt"
    distinct.write_text("\n".join(qs) + "\n", encoding="utf-8")
    assert main(["score", "--checkpoint", str(ROOT / "assets" / "checkpoint"), "--input", str(labels),
                 "--output", str(tmp_path / "long.jsonl"), "--batch-size", "2"]) == 0
    assert "wrote 9 rows (3 distinct questions" in capsys.readouterr().out
    assert main(["score", "--checkpoint", str(ROOT / "assets" / "checkpoint"), "--input", str(distinct),
                 "--output", str(tmp_path / "q.jsonl")]) == 0
    long = [json.loads(x) for x in (tmp_path / "long.jsonl").read_text().splitlines()]
    once = [json.loads(x) for x in (tmp_path / "q.jsonl").read_text().splitlines()]
    assert len(long) == 9 and [r["id"] for r in long] == [r["id"] for r in once] * 3
    for i, r in enumerate(long):  # the same question, in batches of 2 here and of 3 there: float rounding apart
        assert r["p"].keys() == once[i % 3]["p"].keys()
        assert max(abs(v - once[i % 3]["p"][k]) for k, v in r["p"].items()) <= 1e-5
        assert r["p"] == long[i % 3]["p"]  # a repeated row is the one encoding of its question
