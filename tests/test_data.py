"""Long-format labels and the RouterBench importer."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from router.errors import InputError
from router.training.data import import_routerbench, read_labels, write_labels


def test_read_jsonl_and_csv_agree(tmp_path):
    rows = [{"id": "q1", "question": "2+2?", "model": "a", "correct": 1, "cost_usd": 0.001, "output_tokens": 3},
            {"id": "q1", "question": "2+2?", "model": "b", "correct": None},
            {"id": "q2", "question": "Prove it.", "model": "a", "correct": 0.5, "split": "test"}]
    write_labels(rows, tmp_path / "l.jsonl")
    write_labels(rows, tmp_path / "l.csv.gz")
    for name in ("l.jsonl", "l.csv.gz"):
        t = read_labels(tmp_path / name)
        assert t.ids == ["q1", "q2"] and t.models == ["a", "b"]
        assert t.Y[0, 0] == 1 and np.isnan(t.Y[0, 1]) and t.Y[1, 0] == 0.5 and np.isnan(t.Y[1, 1])
        assert t.output_tokens[0, 0] == 3 and t.splits == ["", "test"]


def test_id_defaults_to_question_hash(tmp_path):
    p = tmp_path / "l.jsonl"
    p.write_text('{"question": "hi", "model": "a", "correct": 1}\n{"question": "hi", "model": "b", "correct": 0}\n')
    t = read_labels(p)
    assert len(t) == 1 and len(t.ids[0]) == 16


@pytest.mark.parametrize("line,match", [
    ('{"question": "q", "model": "a", "correct": 2}', r"line 1: field 'correct' must be in \[0, 1\]"),
    ('{"question": "q", "model": "a", "correct": "yes"}', "field 'correct' must be a number"),
    ('{"question": "", "model": "a", "correct": 1}', "field 'question' must be a non-empty string"),
    ('{"question": "q", "correct": 1}', r"missing field\(s\) 'model' \(found: question, correct"),
    ('{"question": "q", "model": "a"}', r"missing field\(s\) 'correct'"),
    ('{"question": "q", "model": "a", "correct": Infinity}', "field 'correct' must be"),
    ('{"question": "q", "model": "a", "correct": 1, "cost_usd": Infinity}', "'cost_usd' must be a finite number"),
    ("not json", "line 1: not valid JSON"),
])
def test_bad_rows_name_file_line_and_field(tmp_path, line, match):
    p = tmp_path / "bad.jsonl"
    p.write_text(line + "\n")
    with pytest.raises(InputError, match=match) as e:
        read_labels(p)
    assert str(p) in str(e.value)


def test_unsupported_and_missing_files(tmp_path):
    (tmp_path / "x.parquet").write_text("")
    with pytest.raises(InputError, match="unsupported data file"):
        read_labels(tmp_path / "x.parquet")
    with pytest.raises(InputError, match="file not found"):
        read_labels(tmp_path / "nope.jsonl")


def test_routerbench_importer(tmp_path):
    src = tmp_path / "arc_test.csv"
    with open(src, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["", "sample_id", "prompt", "eval_name", "m1", "m2", "m1|model_response", "m2|model_response",
                    "m1|total_cost", "m2|total_cost", "oracle_model_to_route_to"])
        w.writerow([0, "s1", "['example A\\nAnswer: B', 'Real question?']", "arc", "1.0", "", "['B']", "['C is it']",
                    "0.001", "0.002", "m1"])
    rows = list(import_routerbench(src))
    assert [r["model"] for r in rows] == ["m1", "m2"]
    assert rows[0]["question"].endswith("Real question?") and rows[0]["split"] == "test"
    assert rows[0]["correct"] == 1.0 and rows[1]["correct"] is None and rows[1]["cost_usd"] == 0.002
    write_labels(rows, tmp_path / "out.jsonl")
    t = read_labels(tmp_path / "out.jsonl")
    assert t.models == ["m1", "m2"] and np.isnan(t.Y[0, 1])
    assert json.loads((tmp_path / "out.jsonl").read_text().splitlines()[1])["correct"] is None


def test_bundled_data_matches_provenance():
    from router.routing.pool import PROJECT_ROOT

    t = read_labels(PROJECT_ROOT / "assets" / "data" / "routerbench.jsonl.gz")
    assert len(t) == 3178 and len(t.models) == 11
    assert len(t.split("test")) == 953 and len(t.split("train")) == 2225


def test_split_values_are_compared_without_case_or_stray_spaces(tmp_path):
    """' test' (a spreadsheet's stray space) was trained on, and evaluate never evaluated 'TEST'."""
    from router.training.train import training_rows

    rows = [{"question": f"question {i}?", "model": m, "correct": i % 2, "split": split}
            for i, split in enumerate(["test", " test", "TEST", "Test ", "train", "", "Train"]) for m in ("a", "b")]
    write_labels(rows, tmp_path / "l.jsonl")
    table = read_labels(tmp_path / "l.jsonl")
    assert len(table.split("test")) == 4 == len(table.split(" TEST"))
    assert len(training_rows(table)) == 3
