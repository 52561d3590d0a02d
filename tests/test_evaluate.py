"""`python -m router evaluate` end to end on a tiny labeled file, with the real MiniLM encoder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from router.commands.cli import main
from router.training.data import read_labels, write_labels

COUNTRIES = ["France", "Japan", "Peru", "Kenya", "Norway", "Chile", "Egypt", "Canada", "India", "Spain",
             "Italy", "Ghana", "Nepal", "Cuba", "Fiji", "Laos", "Mali", "Oman", "Chad", "Iran"]
TASKS = ["reverse a linked list", "merge two sorted arrays", "parse an ISO date", "compute a matrix inverse",
         "find the longest palindrome", "balance a binary tree", "solve a sudoku", "detect a cycle in a graph",
         "count inversions in an array", "implement an LRU cache", "tokenize an arithmetic expression",
         "schedule jobs with deadlines", "compress a string with run-length encoding", "rotate an image matrix",
         "find strongly connected components", "evaluate a postfix expression", "check a valid IP address",
         "multiply large integers", "compute edit distance", "serialize a binary tree"]
PRICE = {"small": 0.001, "mid": 0.01, "big": 0.1}


def _rows():
    rows = []
    for i, (country, task) in enumerate(zip(COUNTRIES, TASKS)):
        split = "test" if i % 4 == 0 else "train"
        easy = f"What is the capital of {country}?"
        hard = f"Write a Python function to {task}, with tests, handling every edge case."
        for q, labels in ((easy, {"small": 1, "mid": 1, "big": 1}), (hard, {"small": 0, "mid": i % 2, "big": 1})):
            for m, c in labels.items():
                rows.append({"question": q, "model": m, "correct": c, "cost_usd": PRICE[m], "split": split,
                             "task": "geo" if q == easy else "code"})
    return rows


@pytest.fixture(scope="module")
def labeled(tmp_path_factory):
    d = tmp_path_factory.mktemp("evaldata")
    path = d / "labels.jsonl"
    write_labels(_rows(), path)
    return path


@pytest.fixture(scope="module")
def checkpoint(labeled, tmp_path_factory):
    from router.training.train import TrainConfig, train

    out = tmp_path_factory.mktemp("ckpt")
    cfg = TrainConfig(pca_dim=8, hidden=(16,), members=2, epochs=60, patience=20)
    train(read_labels(labeled), out, cfg, progress=False)
    return out


def test_evaluate_end_to_end(labeled, checkpoint, tmp_path, capsys):
    out_json, out_html = tmp_path / "eval.json", tmp_path / "eval.html"
    rc = main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(labeled),
               "--json", str(out_json), "--plot", str(out_html), "--record"])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "best single model: big" in printed
    for name in ("router", "oracle", "random", "prior", "knn-40", "logistic"):
        assert f"\n{name} " in printed
    report = json.loads(out_json.read_text())
    assert report["n_questions"] == 10 and report["split"] == "test"
    assert report["n_train_for_baselines"] == 30 and report["overlap_with_training"] == 0
    assert set(report["results"]) == {"router", "oracle", "random", "prior", "knn-40", "logistic"}
    res = report["results"]
    for r in res.values():
        assert len(r["curve"]["tolerance"]) == 101 and len(r["distribution"]) == 101
        assert 0.0 <= r["aiq"] <= 1.0
        assert all(sum(d.values()) == pytest.approx(1.0) for d in r["distribution"])
        # The oracle answers every question some model can answer: nobody's best accuracy beats it.
        assert r["max_accuracy"] <= res["oracle"]["max_accuracy"] + 1e-9
    # Tolerance 1 sends everything to the cheapest model, whatever the router.
    assert all(r["distribution"][-1]["small"] == 1.0 for r in res.values())
    # Easy half -> small ($0.001), hard half -> big ($0.1; mid fails the even-numbered ones): 1 - 0.505 / 1.0.
    assert res["oracle"]["cost_save_at_parity"] == pytest.approx(0.495)
    assert 0.0 <= res["router"]["calibration"]["mean_auroc"] <= 1.0
    recorded = json.loads((checkpoint / "router.json").read_text())["metrics"]["test"]
    assert recorded["aiq"] == res["router"]["aiq"] and recorded["n_questions"] == 10
    assert set(recorded["baselines_aiq"]) == {"oracle", "random", "prior", "knn-40", "logistic"}
    html = out_html.read_text()
    assert "plotly" in html and "router at default tolerance" in html


def test_report_matches_metrics_on_the_checkpoint_predictions(labeled, checkpoint):
    from router.model.features import cached_features
    from router.model.head import load_checkpoint
    from router.training import metrics
    from router.training.evaluate import evaluate

    report = evaluate(checkpoint, labeled, baselines=False, progress=False)
    ck = load_checkpoint(checkpoint)
    test = read_labels(labeled).select_models(ck.slots).split("test")
    P = ck.head.predict(cached_features(ck.encoder_spec, test.questions, progress=False))
    price = np.array([PRICE[s] for s in ck.slots])
    want = metrics.summarize(P, test.Y, test.cost, price)
    assert report["results"]["router"]["aiq"] == pytest.approx(want["aiq"], abs=1e-6)
    assert set(report["results"]) == {"router"}
    # --models: the same predictions, only the chosen columns
    two = [s for s in ck.slots if s != "mid"]
    sub = evaluate(checkpoint, labeled, baselines=False, progress=False, models=two)
    cols = [ck.slots.index(s) for s in two]
    want2 = metrics.summarize(P[:, cols], test.select_models(two).Y, test.select_models(two).cost, price[cols])
    assert sub["slots"] == two and sub["results"]["router"]["aiq"] == pytest.approx(want2["aiq"], abs=1e-6)


def test_leakage_guard_refuses_training_questions(labeled, checkpoint, tmp_path, capsys):
    rc = main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(labeled), "--split", "train"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "30 of 30 evaluated questions were used to train this checkpoint" in err and "--allow-overlap" in err

    # The same questions without a split column: still refused, the hashes decide.
    rows = [{k: v for k, v in r.items() if k != "split"} for r in _rows()]
    plain = tmp_path / "nosplit.csv"
    write_labels(rows, plain)
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(plain)]) == 1
    assert "40 evaluated questions" in capsys.readouterr().err

    out = tmp_path / "overlap.json"
    rc = main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(labeled), "--split", "train",
               "--allow-overlap", "--no-baselines", "--json", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0 and "WARNING: 30 evaluated questions were in the training set" in printed
    assert json.loads(out.read_text())["overlap_with_training"] == 30


def test_held_out_file_without_split_gets_label_free_baselines(checkpoint, tmp_path, capsys):
    rows = [{k: v for k, v in r.items() if k != "split"} for r in _rows() if r["split"] == "test"]
    path = tmp_path / "heldout.jsonl"
    write_labels(rows, path)
    out = tmp_path / "r.json"
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(path), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["n_questions"] == 10 and report["n_train_for_baselines"] == 0
    assert set(report["results"]) == {"router", "oracle", "random"}
    assert "no trained baselines: the file has no other rows" in capsys.readouterr().out  # said, not just missing


def test_missing_model_and_bad_split_are_clear_errors(labeled, checkpoint, tmp_path, capsys):
    rows = [r for r in _rows() if r["model"] != "mid"]
    path = tmp_path / "two_models.jsonl"
    write_labels(rows, path)
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(path)]) == 1
    err = capsys.readouterr().err
    assert "no labels for mid, which the checkpoint scores" in err and "--models small,big" in err
    # --models routes among the models that have labels; a model the data has and the checkpoint lacks is named
    extra = tmp_path / "extra.jsonl"
    write_labels(rows + [{**r, "model": "newcomer"} for r in rows if r["model"] == "big"], extra)
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(extra), "--models", "small,big",
                 "--no-baselines"]) == 0
    out = capsys.readouterr().out
    assert "2 models" in out and "routing among small, big only (--models)" in out
    assert "the data also labels newcomer, which this checkpoint does not score" in out
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(extra), "--models", "small,nope"]) == 1
    assert "--models: the checkpoint does not score nope" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(labeled), "--json", str(labeled)]) == 1
    assert "is the --data file; writing there would replace the input" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(labeled), "--split", "dev"]) == 1
    assert "no rows with split='dev'" in capsys.readouterr().err
