"""The whole `train` (CV head search, calibration) and `train --extend` on a small real RouterBench subset."""

from __future__ import annotations

import json

import numpy as np
import pytest

from router.paths import PROJECT_ROOT
from router.training.data import read_labels, write_labels

DATA = PROJECT_ROOT / "assets" / "data" / "routerbench.jsonl.gz"


def _subset(tmp_path, models, n_train=160, n_test=40, skip_model=None):
    t = read_labels(DATA)
    tr = [i for i, s in enumerate(t.splits) if s == "train"][:n_train]
    te = [i for i, s in enumerate(t.splits) if s == "test"][:n_test]
    rows = []
    for i in tr + te:
        for j, m in enumerate(t.models):
            if m in models and m != skip_model and not np.isnan(t.Y[i, j]):
                rows.append({"id": t.ids[i], "question": t.questions[i], "model": m, "correct": t.Y[i, j],
                             "cost_usd": t.cost[i, j], "task": t.tasks[i], "split": t.splits[i]})
    path = tmp_path / f"labels-{skip_model is None}.jsonl"
    write_labels(rows, path)
    return path


@pytest.mark.slow
def test_train_searches_records_and_extends(tmp_path, capsys):
    from router.commands.cli import main
    from router.model.head import load_checkpoint

    models = ["gpt-4-1106-preview", "mistralai/mistral-7b-chat", "claude-instant-v1"]
    data = _subset(tmp_path, models, skip_model="claude-instant-v1")
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "ck"), "--cv-folds", "3"]) == 0
    out = capsys.readouterr().out
    meta = json.loads((tmp_path / "ck" / "router.json").read_text())
    n = meta["training"]["n_questions"]  # 160 minus any prompt that is also a test prompt
    assert 150 <= n <= 160
    assert f"head search: {n} questions, 2 models, 3-fold CV" in out and "winner:" in out
    s = meta["training"]["search"]
    assert meta["format_version"] == 2 and meta["encoder"]["source"] == "multilingual-e5-small"
    assert {c["family"] for c in s["candidates"]} >= {"logistic", "knn", "mlp", "irt"}
    assert s["winner"] == s["candidates"][0]["name"] and s["fold_seed"] == 0 and s["folds"] == 3
    assert set(meta["training"]["calibration"]) == set(meta["slots"])
    assert len(meta["encoder_probe"]["features_f32_b64"]) == len(meta["encoder_probe"]["texts"]) == 3
    ck = load_checkpoint(tmp_path / "ck")
    assert ck.slots == ["gpt-4-1106-preview", "mistralai/mistral-7b-chat"]

    full = _subset(tmp_path, models)
    assert main(["train", "--extend", str(tmp_path / "ck"), "--data", str(full), "--out", str(tmp_path / "ck2")]) == 0
    ck2 = load_checkpoint(tmp_path / "ck2")
    assert ck2.slots == ck.slots + ["claude-instant-v1"]
    from router.model.features import cached_features

    X = cached_features(ck.encoder_spec, read_labels(full).questions[:20], progress=False)
    np.testing.assert_allclose(ck2.head.predict(X)[:, :2], ck.head.predict(X), atol=1e-6)  # BLAS rounding only
    assert ck2.meta["training"]["extensions"][0]["n_labels"] == n
    # the new labels come with the other two models' labels: the pool's CV AIQ chose the column
    assert ck2.meta["training"]["extensions"][0]["columns"][0]["criterion"] == "cv_aiq"
    printed = capsys.readouterr().out
    assert "chosen by the pool's CV AIQ" in printed
    assert f"checkpoint written to {tmp_path / 'ck2'} ({tmp_path / 'ck'} is unchanged)" in printed

    # evaluate reads the new checkpoint and reports ECE before/after calibration
    assert main(["evaluate", "--checkpoint", str(tmp_path / "ck"), "--data", str(data),
                 "--json", str(tmp_path / "ev.json")]) == 0
    ev = json.loads((tmp_path / "ev.json").read_text())
    assert set(ev["calibration_effect"]["ece_before"]) == set(ck.slots)
    assert "ECE before -> after" in capsys.readouterr().out


def test_feature_cache_encodes_only_new_texts(tmp_path):
    from router.model.encoder import EncoderSpec
    from router.model.features import cached_features, cached_mask

    spec = EncoderSpec()  # MiniLM: small and quick
    a = cached_features(spec, ["one question", "two questions"], progress=False, cache=tmp_path)
    b = cached_features(spec, ["two questions", "three", "one question"], progress=False, cache=tmp_path)
    np.testing.assert_array_equal(b[2], a[0])
    np.testing.assert_array_equal(b[0], a[1])
    shards = sorted(p.name for p in tmp_path.rglob("*.keys.npy"))
    assert len(shards) == 2  # the second call wrote one shard, holding only "three"
    assert cached_mask(spec, ["three", "four"], tmp_path).tolist() == [True, False]
