"""Checkpoint round-trip and guards; training recovers a planted signal; masked labels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from router.errors import CheckpointError
from router.model.head import load_checkpoint, save_checkpoint
from router.training.train import TrainConfig, train_head


def planted(n=600, d=12, seed=0):
    """Slot 0 is right when x0 > 0, slot 1 when x1 > 0, slot 2 is a coin flip."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    Y = np.stack([(X[:, 0] > 0), (X[:, 1] > 0), rng.random(n) > 0.5], axis=1).astype(float)
    return X, Y


CFG = TrainConfig(pca_dim=16, hidden=(32,), members=2, epochs=150, patience=20, seed=1)


def test_training_recovers_planted_signal():
    from sklearn.metrics import roc_auc_score

    X, Y = planted()
    head, facts = train_head(X[:500], Y[:500], CFG, progress=False)
    P = head.predict(X[500:])
    assert roc_auc_score(Y[500:, 0], P[:, 0]) > 0.9
    assert roc_auc_score(Y[500:, 1], P[:, 1]) > 0.9
    assert 0.35 < roc_auc_score(Y[500:, 2], P[:, 2]) < 0.65
    assert facts["n_train"] + facts["n_val"] == 500


def test_unknown_labels_are_masked_not_wrong():
    X, Y = planted()
    Y = Y.copy()
    # Hide every "correct" label of slot 0 where x0 > 1: counted as 0 they would drag P down there.
    hide = X[:, 0] > 1
    Y[hide, 0] = np.nan
    head, _ = train_head(X[:500], Y[:500], CFG, progress=False)
    P = head.predict(X[500:])
    assert P[X[500:, 0] > 1, 0].mean() > 0.7


def test_training_is_deterministic():
    X, Y = planted(n=200)
    cfg = TrainConfig(pca_dim=8, hidden=(16,), members=2, epochs=20, patience=5, seed=3)
    a, _ = train_head(X, Y, cfg, progress=False)
    b, _ = train_head(X, Y, cfg, progress=False)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def meta(slots):
    return {"slots": slots, "encoder": {"source": "all-MiniLM-L6-v2"}}


def test_round_trip_gives_identical_outputs(tmp_path):
    X, Y = planted(n=200)
    head, _ = train_head(X, Y, TrainConfig(pca_dim=8, hidden=(16,), members=2, epochs=10, seed=0), progress=False)
    save_checkpoint(tmp_path / "ck", head, meta(["a", "b", "c"]))
    ck = load_checkpoint(tmp_path / "ck")
    np.testing.assert_array_equal(ck.head.predict(X), head.predict(X))
    assert ck.slots == ["a", "b", "c"] and ck.encoder_spec.source == "all-MiniLM-L6-v2"
    saved = json.loads((tmp_path / "ck" / "router.json").read_text())
    assert saved["format"] == "prefill-router-checkpoint" and saved["head"]["members"] == 2


@pytest.mark.parametrize("name", ["checkpoint", "checkpoint-minilm", "checkpoint-fast"])
def test_bundled_checkpoints_load(name):
    from router.routing.pool import PROJECT_ROOT

    ck = load_checkpoint(PROJECT_ROOT / "assets" / name)
    assert len(ck.slots) == 11 and ck.train_hashes
    assert ck.encoder_spec.truncation_side == "left"
    test = ck.meta["metrics"]["test"]
    # held-out numbers recorded by `evaluate --record`: the router beats the kNN and LR baselines
    assert test["n_questions"] == 953
    assert test["aiq"] > test["baselines_aiq"]["knn-40"] and test["aiq"] > test["baselines_aiq"]["logistic"]


def _tiny(tmp_path):
    X, Y = planted(n=60)
    head, _ = train_head(X, Y, TrainConfig(pca_dim=4, hidden=(8,), members=1, epochs=3, seed=0), progress=False)
    return save_checkpoint(tmp_path / "ck", head, meta(["a", "b", "c"]))


def test_slot_count_mismatch_is_refused(tmp_path):
    path = _tiny(tmp_path)
    m = json.loads((path / "router.json").read_text())
    m["slots"] = ["a", "b"]
    (path / "router.json").write_text(json.dumps(m))
    with pytest.raises(CheckpointError, match="lists 2 slots but the weights score 3"):
        load_checkpoint(path)


@pytest.mark.parametrize("change,match", [
    (lambda p: (p / "weights.safetensors").unlink(), "weights.safetensors is missing"),
    (lambda p: (p / "router.json").write_text("{nope"), "not valid JSON"),
    (lambda p: (p / "weights.safetensors").write_bytes(b"\x80\x04garbage-pickle"), "unreadable safetensors"),
])
def test_broken_checkpoints_give_clear_errors(tmp_path, change, match):
    path = _tiny(tmp_path)
    change(path)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path)


def test_future_format_version_is_refused(tmp_path):
    path = _tiny(tmp_path)
    m = json.loads((path / "router.json").read_text())
    m["format_version"] = 99
    (path / "router.json").write_text(json.dumps(m))
    with pytest.raises(CheckpointError, match="format_version 99 is not supported"):
        load_checkpoint(path)


def test_feature_size_mismatch(tmp_path):
    ck = load_checkpoint(_tiny(tmp_path))
    with pytest.raises(CheckpointError, match="another encoder spec"):
        ck.head.predict(np.zeros((1, 7), dtype=np.float32))
