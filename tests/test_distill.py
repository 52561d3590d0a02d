"""The distilled student encoder (issue 16 (c)) on the real bundled encoder: a shallower spec that
reproduces the full encoder's features better after training than before, and routes through ONNX."""

from __future__ import annotations

import json

import numpy as np
import pytest

from router.errors import InputError
from router.training.distill import DistillConfig, distill, init_blocks, save_student
from router.training.train import default_encoder


def test_student_blocks_are_spread_over_the_teacher():
    assert init_blocks(12, 4) == [0, 4, 7, 11]
    assert init_blocks(12, 2) == [0, 11] and init_blocks(12, 1) == [11]
    with pytest.raises(InputError, match="between 1 and 11"):
        init_blocks(12, 12)


def test_a_distilled_student_moves_towards_the_teacher_and_routes_through_onnx(tmp_path):
    from router.model.encoder import get_encoder
    from router.model.onnx_runtime import artifact_dir

    topics = ["the moon", "tax law", "python lists", "roman history", "protein folding", "chess openings",
              "jazz chords", "volcanoes", "sorting algorithms", "french verbs"]
    texts = [f"{q} {t}?" for t in topics for q in ("What is", "Explain", "Tell me about", "Why does one study",
                                                   "Give an example of")]
    teacher = default_encoder()
    targets = get_encoder(teacher).features(texts)
    r = distill(teacher, texts, targets, DistillConfig(layers=2, epochs=3, lr=3e-4, batch_size=8,
                                                     val_fraction=0.2), progress=False)
    assert r["init_blocks"] == [0, 11] and set(k.split(".")[2] for k in r["state"]) == {"0", "1"}
    assert r["log"][r["best_epoch"]]["val_loss"] < r["log"][0]["val_loss"]  # training got closer than the init
    spec = save_student(teacher, r, tmp_path / "student")
    assert spec.layers == (2,) and spec.runtime == teacher.runtime == "onnx" and spec.overlay_sha256
    rec = json.loads((tmp_path / "student" / "student.json").read_text())
    assert rec["init_blocks"] == [0, 11] and rec["student"]["layers"] == [2]
    assert rec["student"]["overlay"] == "student_overlay.safetensors"  # relative: the folder can move
    F = get_encoder(spec).features(texts)
    assert F.shape == targets.shape and artifact_dir(spec) != artifact_dir(teacher)
    cos = (F * targets).sum(1) / np.linalg.norm(F, axis=1) / np.linalg.norm(targets, axis=1)
    va = r["val_rows"]
    # the saved overlay, exported to ONNX, is the best epoch's student: same loss on the held-out texts
    assert 1 - cos[va].mean() == pytest.approx(r["log"][r["best_epoch"]]["val_loss"], abs=1e-3)
    from dataclasses import replace

    torch_F = get_encoder(replace(spec, runtime="torch")).features(texts[:4])
    np.testing.assert_allclose(torch_F, F[:4], atol=1e-4)  # the ONNX graph is the torch student


def test_distillation_refuses_what_it_cannot_do():
    with pytest.raises(InputError, match="3 texts but 2 target rows"):
        distill(default_encoder(), ["a", "b", "c"], np.zeros((2, 384)), progress=False)
    with pytest.raises(InputError, match="at least 20 texts"):
        distill(default_encoder(), ["a"] * 5, np.zeros((5, 384)), progress=False)


def test_distill_then_train_on_the_student_from_the_command_line(tmp_path, capsys):
    import shutil

    from router.commands.cli import main
    from router.model.head import load_checkpoint
    from tests.test_train_search_real import _subset

    data = _subset(tmp_path, ["gpt-4-1106-preview", "mistralai/mistral-7b-chat"], n_train=60, n_test=10)
    assert main(["distill", "--data", str(data), "--layers", "2", "--epochs", "1", "--out",
                 str(tmp_path / "student")]) == 0
    out = capsys.readouterr().out
    assert "into 2 blocks" in out and "--encoder-spec" in out
    assert main(["train", "--data", str(data), "--encoder-spec", str(tmp_path / "student" / "student.json"),
                 "--head", "knn", "--cv-folds", "3", "--out", str(tmp_path / "ck")]) == 0
    shutil.rmtree(tmp_path / "student")  # the checkpoint carries the student's blocks
    meta = json.loads((tmp_path / "ck" / "router.json").read_text())
    assert meta["encoder"]["layers"] == [2] and meta["encoder"]["overlay"] == "encoder_overlay.safetensors"
    assert meta["encoder"]["runtime"] == "onnx"
    ck = load_checkpoint(tmp_path / "ck")
    from router.model.encoder import get_encoder

    P = ck.head.predict(get_encoder(ck.encoder_spec).features(["What is 2 + 2?"]))
    assert P.shape == (1, 2) and np.isfinite(P).all()


def test_a_bad_encoder_spec_file_is_a_clear_error(tmp_path, capsys):
    from router.commands.cli import main
    from tests.test_train_search_real import _subset

    data = _subset(tmp_path, ["gpt-4-1106-preview"], n_train=20, n_test=2)
    bad = tmp_path / "spec.json"
    for text, msg in [(None, "file not found"), ("{not json", "not a JSON file"), ('{"layers": [2]}', 'with a "source"'),
                      ('{"source": "multilingual-e5-small", "pooling": "max"}', "pooling must be")]:
        if text is not None:
            bad.write_text(text)
        assert main(["train", "--data", str(data), "--encoder-spec", str(bad), "--out", str(tmp_path / "ck")]) == 1
        err = capsys.readouterr().err
        assert str(bad) in err and msg in err, err


def test_encoder_spec_file_takes_quantize_and_runtime_from_the_flags(tmp_path):
    import argparse

    from router.commands import train as train_cmd

    spec_file = tmp_path / "student.json"
    spec_file.write_text(json.dumps({"student": {"source": "multilingual-e5-small", "layers": [4], "prefix": "query: ",
                                                 "normalize": True, "runtime": "onnx"}}))
    p = argparse.ArgumentParser()
    train_cmd.configure(p)
    base = ["--data", "x", "--out", "y", "--encoder-spec", str(spec_file)]
    cfg = train_cmd.config_from_args(p.parse_args(base))
    assert cfg.encoder.layers == (4,) and cfg.encoder.quantize is None and cfg.encoder.runtime == "onnx"
    cfg = train_cmd.config_from_args(p.parse_args(base + ["--quantize", "int8"]))
    assert cfg.encoder.quantize == "int8" and cfg.encoder.layers == (4,) and cfg.encoder.prefix == "query: "
