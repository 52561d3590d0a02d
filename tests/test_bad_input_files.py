"""Files a user hands the CLI the way real tools write them (Excel's BOM, Latin-1, a wrong .gz name,
repeated rows) and paths that cannot be written: each gets a one-line error naming the file, the
line or field, and what was expected, before any long work starts; nothing is written on failure."""

from __future__ import annotations

import csv
import gzip
import json
import re
import shutil

import numpy as np
import pytest

from router.commands.cli import main
from router.errors import CheckpointError, InputError
from router.paths import PROJECT_ROOT
from router.training.data import import_routerbench, read_labels, write_labels
from router.training.questions import read_questions

ROWS = [{"id": "q1", "question": "2+2?", "model": "a", "correct": 1, "cost_usd": 0.001, "split": "test"},
        {"id": "q1", "question": "2+2?", "model": "b", "correct": 0, "cost_usd": 0.002, "split": "test"},
        {"id": "q2", "question": "Name a prime.", "model": "a", "correct": 1, "cost_usd": 0.001, "split": "train"}]


def _csv(path, header, rows, bom=False):
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_a_byte_order_mark_keeps_the_first_column(tmp_path):
    header = ["split", "id", "question", "model", "correct"]
    rows = [[r["split"], r["id"], r["question"], r["model"], r["correct"]] for r in ROWS]
    t = read_labels(_csv(tmp_path / "bom.csv", header, rows, bom=True))
    assert t.splits == ["test", "train"] and t.ids == ["q1", "q2"]
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + "\n".join(json.dumps(r) for r in ROWS).encode())
    assert read_labels(tmp_path / "bom.jsonl").splits == ["test", "train"]
    q = _csv(tmp_path / "q.csv", ["id", "question"], [["1", "hello"]], bom=True)
    assert [(x.id, x.question) for x in read_questions(q)] == [("1", "hello")]


def test_text_that_is_not_utf8_names_the_line(tmp_path):
    p = tmp_path / "latin1.csv"
    p.write_bytes(b"question,model,correct\nfine,a,1\ncaf\xe9,a,1\n")
    with pytest.raises(InputError, match=r"latin1\.csv: line 3: not UTF-8 text"):
        read_labels(p)
    q = tmp_path / "q.jsonl"
    q.write_bytes(b'{"question": "ok"}\n{"question": "caf\xe9"}\n')
    with pytest.raises(InputError, match=r"q\.jsonl: line 2: not UTF-8"):
        read_questions(q)


def test_a_gz_name_on_a_plain_file(tmp_path):
    for name in ("fake.csv.gz", "fake.jsonl.gz"):
        (tmp_path / name).write_text("not gzip at all")
        with pytest.raises(InputError, match=f"{name}: not a readable gzip file"):
            read_labels(tmp_path / name)
    with pytest.raises(InputError, match="not a readable gzip file"):
        read_questions(tmp_path / "fake.jsonl.gz")
    good = tmp_path / "real.jsonl.gz"
    with gzip.open(good, "wt", encoding="utf-8") as fh:
        fh.write(json.dumps(ROWS[0]) + "\n")
    assert read_labels(good).models == ["a"]


def test_repeated_rows_merge_or_refuse(tmp_path):
    p = tmp_path / "l.jsonl"
    same = [ROWS[0], ROWS[0], {**ROWS[1], "correct": None}, ROWS[1]]  # a re-import, then a gap filled later
    p.write_text("\n".join(json.dumps(r) for r in same) + "\n")
    t = read_labels(p)
    assert t.Y.tolist() == [[1.0, 0.0]] and t.cost[0, 1] == 0.002
    p.write_text("\n".join(json.dumps(r) for r in (ROWS[0], ROWS[1], {**ROWS[0], "correct": 0})) + "\n")
    with pytest.raises(InputError, match=r"l\.jsonl: line 3: question 'q1' x model 'a' is labeled correct=0 here "
                                         r"but correct=1 at .*l\.jsonl: line 1"):
        read_labels(p)


def test_csv_header_mistakes_are_one_error_with_a_hint(tmp_path):
    p = _csv(tmp_path / "h.csv", ["Question", "model", "corect"], [["q", "a", "1"]])
    with pytest.raises(InputError, match=r"h\.csv: line 1: the header lacks column\(s\) 'question', 'correct' "
                                         r"\(found: Question, model, corect\); did you mean 'Question' for "
                                         r"'question'\? 'corect' for 'correct'\?"):
        read_labels(p)


def test_true_false_and_infinite_values(tmp_path):
    p = _csv(tmp_path / "tf.csv", ["question", "model", "correct"], [["q", "a", "TRUE"], ["q", "b", "false"]])
    assert read_labels(p).Y.tolist() == [[1.0, 0.0]]
    p = _csv(tmp_path / "inf.csv", ["question", "model", "correct", "cost_usd"], [["q", "a", "1", "inf"]])
    with pytest.raises(InputError, match=r"inf\.csv: line 2: field 'cost_usd' must be a finite number"):
        read_labels(p)


def test_train_refuses_a_model_without_labels_and_warns_on_degenerate_data(tmp_path, capsys):
    from router.training.train import check_trainable, training_rows

    rows = [{"question": f"q{i}", "model": m, "correct": (1 if m == "a" else None) if m != "c" else i % 2}
            for i in range(12) for m in ("a", "b", "c")]
    write_labels(rows, tmp_path / "l.jsonl")
    t = training_rows(read_labels(tmp_path / "l.jsonl"))
    with pytest.raises(InputError, match=r"model\(s\) 'b' have no known labels outside split=test; .*--models a,c"):
        check_trainable(t)
    check_trainable(t.select_models(["a", "c"]))
    assert "every known label of 'a' is 1" in capsys.readouterr().out
    check_trainable(t.select_models(["c"]))
    assert "only one model ('c')" in capsys.readouterr().out


def test_evaluate_refuses_rows_without_labels(tmp_path):
    from router.training.evaluate import check_labels

    write_labels([{**r, "correct": None} if r["split"] == "test" else r for r in ROWS], tmp_path / "l.jsonl")
    t = read_labels(tmp_path / "l.jsonl")
    with pytest.raises(InputError, match=r"the split='test' rows .* have no known labels"):
        check_labels(t.split("test"), "l.jsonl", "test")
    check_labels(t, "l.jsonl", None)


def test_import_routerbench_bad_sources_and_repeats(tmp_path, capsys):
    with pytest.raises(InputError, match="nope.csv: file or folder not found"):
        list(import_routerbench(tmp_path / "nope.csv"))
    header = ["", "sample_id", "prompt", "eval_name", "m1", "m1|total_cost"]
    src = tmp_path / "src"
    src.mkdir()
    _csv(src / "empty_test.csv", header, [])
    with pytest.raises(InputError, match="no question rows to import"):
        list(import_routerbench(src / "empty_test.csv"))
    _csv(src / "a_test.csv", header, [[0, "s1", "Q one?", "arc", "1.0", "0.001"]])
    _csv(src / "b_test.csv", header, [[0, "s1", "Q one?", "arc", "1.0", "0.001"]])
    assert len(list(import_routerbench(src))) == 1
    assert "1 repeated (question, model) rows written once" in capsys.readouterr().err
    _csv(src / "b_test.csv", header, [[0, "s1", "Q one?", "arc", "0.0", "0.001"]])
    with pytest.raises(InputError, match=r"b_test\.csv: question .* is labeled 0 here but 1 in .*a_test\.csv"):
        list(import_routerbench(src))


def _cli(capsys, *argv):
    rc = main(list(argv))
    return rc, capsys.readouterr().err


def test_output_paths_are_checked_before_the_work(tmp_path, capsys):
    write_labels(ROWS, tmp_path / "l.jsonl")
    (tmp_path / "q.txt").write_text("hello\n")
    folder = tmp_path / "adir"
    folder.mkdir()
    a_file = tmp_path / "afile"
    a_file.write_text("keep me")
    ck = str(PROJECT_ROOT / "assets" / "checkpoint")
    cases = [
        (["score", "--checkpoint", ck, "--input", str(tmp_path / "q.txt"), "--output", str(folder)],
         "--output .*adir: is a folder"),
        (["train", "--data", str(tmp_path / "l.jsonl"), "--out", str(a_file)], "--out .*afile: is an existing file"),
        (["train", "--data", str(tmp_path / "l.jsonl"), "--out", str(a_file / "ck")], "afile is a file, not a folder"),
        (["evaluate", "--checkpoint", ck, "--data", str(tmp_path / "l.jsonl"), "--json", str(tmp_path / "r.json"),
          "--plot", str(folder)], "--plot .*adir: is a folder"),
        (["import-routerbench", str(tmp_path / "l.jsonl"), "--out", str(folder)], "is a folder"),
        (["import-routerbench", str(tmp_path / "l.jsonl"), "--out", str(tmp_path / "x.txt")],
         r"expected a file name ending in \.csv"),
        (["score", "--checkpoint", ck, "--input", str(tmp_path / "q.txt"), "--output", str(tmp_path / "q.txt")],
         "--output .*q.txt: is the --input file"),
        (["import-routerbench", str(tmp_path / "l.jsonl"), "--out", str(tmp_path / "l.jsonl")], "is the source file"),
    ]
    for argv, match in cases:
        rc, err = _cli(capsys, *argv)
        assert rc == 1 and "Traceback" not in err, (argv, err)
        assert re.search(match, err), (argv, err)
    assert a_file.read_text() == "keep me" and not (tmp_path / "r.json").exists()
    assert (tmp_path / "q.txt").read_text() == "hello\n"


@pytest.mark.parametrize("flag,value,match", [
    ("--cv-folds", "0", "--cv-folds 0: expected an integer >= 2"),
    ("--cv-folds", "-2", "--cv-folds -2"),
    ("--epochs", "0", "--epochs 0: expected an integer >= 1"),
    ("--members", "0", "--members 0"),
    ("--lr", "-1", "--lr -1.0: expected a number > 0"),
    ("--layers", "abc", "--layers 'abc': expected comma-separated hidden-state indices"),
    ("--hidden", "0", "--hidden '0'"),
    ("--dropout", "1", "--dropout 1.0"),
])
def test_train_options_are_checked_first(tmp_path, capsys, flag, value, match):
    rc, err = _cli(capsys, "train", "--data", str(tmp_path / "absent.jsonl"), "--out", str(tmp_path / "ck"),
                   flag, value)
    assert rc == 1 and match in err and "Traceback" not in err


def test_paths_that_are_folders(tmp_path, capsys):
    rc, err = _cli(capsys, "route", "hi", "--config", str(tmp_path))
    assert rc == 2 and "is a folder; expected a pool YAML file" in err
    rc, err = _cli(capsys, "audit", "summary", str(tmp_path))
    assert rc == 1 and "is a folder; expected an audit log file" in err
    rc, err = _cli(capsys, "route", "hi", "--models", "")
    assert rc == 1 and "--models '': name at least one slot" in err


def test_audit_time_that_is_not_a_number(tmp_path):
    from router.audit.log import read_records

    p = tmp_path / "a.jsonl"
    p.write_text('{"request_id": "r1", "ts": "notanumber"}\n{"request_id": "r2", "ts": 5}\n')
    problems: list[str] = []
    assert [r["request_id"] for r in read_records(p, problems=problems)] == ["r2"]
    assert problems == [f"{p}:1: field 'ts' must be epoch seconds, got 'notanumber'"]


@pytest.fixture()
def checkpoint_copy(tmp_path):
    dst = tmp_path / "ck"
    shutil.copytree(PROJECT_ROOT / "assets" / "checkpoint", dst)
    return dst


@pytest.mark.parametrize("edit,match", [
    (lambda m: m["encoder"].update(max_tokens="many"), r"router\.json: field 'encoder': .*max_tokens must be an integer"),
    (lambda m: m["encoder"].update(layers="x"), r"field 'encoder': .*layers must be a list of integers"),
    (lambda m: m.update(encoder=None), r"field 'encoder': encoder spec must be a JSON object"),
    (lambda m: m["encoder"].update(pooling="max"), r"router\.json: field 'encoder': .*pooling must be mean"),
    (lambda m: m.update(slots="abc"), r"router\.json: field 'slots' must be a non-empty list"),
    (lambda m: m.pop("head"), r"router\.json: format_version 2 needs field 'head'"),
    (lambda m: m["head"].update(spec={"kind": "bogus"}), r"router\.json \('head\.spec'\) and weights\.safetensors .*"
                                                         r"head kind 'bogus'"),
    (lambda m: m.update(output_tokens=5), r"router\.json: field 'output_tokens' must map each slot"),
    (lambda m: m.update(prior_accuracy="x"), r"router\.json: field 'prior_accuracy' must map each slot"),
    (lambda m: m["encoder"].update(layers=[-1, -2]), r"router\.json: field 'encoder': .*runtime 'onnx' reads one layer"),
])
def test_router_json_fields_are_named(checkpoint_copy, edit, match):
    from router.model.head import load_checkpoint

    meta_path = checkpoint_copy / "router.json"
    meta = json.loads(meta_path.read_text())
    edit(meta)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(checkpoint_copy)


def test_evaluate_json_has_no_nan_or_infinity():
    from router.training.evaluate import _jsonable

    out = json.dumps(_jsonable({"a": float("inf"), "b": np.float64("nan"), "c": [1.5, np.float32(-np.inf)]}),
                     allow_nan=False)
    assert json.loads(out) == {"a": None, "b": None, "c": [1.5, None]}


def test_csv_rows_with_the_wrong_number_of_fields_and_multiline_line_numbers(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text('question,model,correct\n"two\nlines",a,1\nq,a,1,surplus\n')
    with pytest.raises(InputError, match=r"r\.csv: line 4: 4 fields but the header has 3"):
        read_labels(p)
    p.write_text('question,model,correct\n"two\nlines",a,1\nq,a\n')
    with pytest.raises(InputError, match=r"r\.csv: line 4: 2 fields but the header has 3"):
        read_labels(p)
    p.write_text('question,model,correct\n"two\nlines",a,1\nq,a,maybe\n')
    with pytest.raises(InputError, match=r"r\.csv: line 4: field 'correct' must be a number"):
        read_labels(p)


def test_import_routerbench_reads_gzipped_csvs_in_a_folder(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    header = ["", "sample_id", "prompt", "eval_name", "m1", "m1|total_cost"]
    _csv(src / "a_train.csv", header, [[0, "s1", "Q one?", "arc", "1.0", "0.001"]])
    raw = _csv(tmp_path / "b_test.csv", header, [[0, "s2", "Q two?", "arc", "0.0", "0.001"]])
    with gzip.open(src / "b_test.csv.gz", "wb") as fh:
        fh.write(raw.read_bytes())
    rows = list(import_routerbench(src))
    assert [(r["question"], r["split"]) for r in rows] == [("Q one?", "train"), ("Q two?", "test")]


def test_a_checkpoint_whose_two_files_come_from_different_saves_is_refused(tmp_path):
    from router.model.head import load_checkpoint, save_checkpoint
    from router.model.heads import LogisticHead

    def head(seed):
        rng = np.random.default_rng(seed)
        return LogisticHead(np.zeros(4), np.ones(4), rng.normal(size=(4, 2)), np.zeros(2))

    meta = {"slots": ["a", "b"], "encoder": {"source": "all-MiniLM-L6-v2"}}
    save_checkpoint(tmp_path / "one", head(0), dict(meta))
    save_checkpoint(tmp_path / "two", head(1), dict(meta))
    assert load_checkpoint(tmp_path / "one").slots == ["a", "b"]
    # a save interrupted after the weights: the new weights beside the old router.json
    shutil.copy(tmp_path / "two" / "weights.safetensors", tmp_path / "one" / "weights.safetensors")
    with pytest.raises(CheckpointError, match=r"one/weights\.safetensors: not the weights router\.json was written "
                                              r"with .*a save was interrupted"):
        load_checkpoint(tmp_path / "one")


def test_extend_names_the_model_with_too_few_labels():
    from router.training.extend import MIN_LABELS, fit_column

    y = np.array([1.0, 0.0, np.nan, 1.0])
    with pytest.raises(InputError, match=rf"model 'new-m' has 3 known labels outside split=test; a new slot needs "
                                         rf"at least {MIN_LABELS}"):
        fit_column(np.zeros((4, 8), np.float32), y, None, name="model 'new-m'")


def test_outputs_inside_a_checkpoint_or_a_data_folder_are_refused(tmp_path, capsys):
    """evaluate --json CK/router.json and score --output CK/router.json destroyed the checkpoint;
    --json DATA/labels.csv replaced a label file of the --data folder."""
    import shutil

    ck = tmp_path / "ck"
    shutil.copytree(PROJECT_ROOT / "assets" / "checkpoint", ck)
    before = (ck / "router.json").read_bytes()
    data = tmp_path / "data"
    data.mkdir()
    write_labels(ROWS, data / "l.jsonl")
    (tmp_path / "q.txt").write_text("hello\n")
    cases = [
        (["evaluate", "--checkpoint", str(ck), "--data", str(data), "--json", str(ck / "router.json")],
         "is inside the --checkpoint folder"),
        (["evaluate", "--checkpoint", str(ck), "--data", str(data), "--plot", str(ck / "weights.safetensors")],
         "is inside the --checkpoint folder"),
        (["evaluate", "--checkpoint", str(ck), "--data", str(data / "l.jsonl"), "--json", str(data / "l.jsonl")],
         "is the --data file"),
        (["evaluate", "--checkpoint", str(ck), "--data", str(data), "--json", str(data / "report.json")],
         "is inside the --data folder"),
        (["score", "--checkpoint", str(ck), "--input", str(tmp_path / "q.txt"), "--output", str(ck / "router.json")],
         "is inside the --checkpoint folder"),
        (["import-routerbench", str(data), "--out", str(data / "long.csv")], "is inside the source folder"),
        (["train", "--extend", str(ck), "--data", str(data), "--out", str(tmp_path / "ck2"), "--encoder",
          "all-MiniLM-L6-v2", "--head", "knn"], "--head, --encoder: --extend fits only the new models"),
    ]
    for argv, match in cases:
        rc, err = _cli(capsys, *argv)
        assert rc == 1 and "Traceback" not in err, (argv, err)
        assert match in err, (argv, err)
    assert (ck / "router.json").read_bytes() == before and sorted(p.name for p in data.iterdir()) == ["l.jsonl"]
