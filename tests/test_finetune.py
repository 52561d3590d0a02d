"""Fine-tuning the encoder's top blocks (issue 17 part 6), on the real bundled encoder."""

from __future__ import annotations

import numpy as np
import pytest

from router.errors import InputError
from router.model.encoder import Encoder
from router.training.finetune import FinetuneConfig, check_top, finetune, trainable
from router.training.train import default_encoder


@pytest.fixture(scope="module")
def enc():
    return Encoder(default_encoder(), "cpu")


def test_the_tuned_block_path_reproduces_the_encoder(enc):
    assert check_top(enc, 2) < 1e-3


def test_fine_tuning_learns_which_questions_a_model_gets_right():
    # slot 0 is right exactly on arithmetic questions, slot 1 on questions about poems (one label missing)
    math = [f"What is {a} plus {b}?" for a in range(7) for b in range(6)]
    poems = [f"Write a short poem about the {w} in {s}." for w in ("moon", "sea", "rain", "wind", "fox", "oak", "snow")
             for s in ("spring", "summer", "autumn", "winter", "the night", "the city")]
    texts = math + poems
    Y = np.array([[1.0, 0.0]] * len(math) + [[0.0, 1.0]] * len(poems))
    Y[3, 1] = np.nan
    val = np.zeros(len(texts), bool)
    val[::6] = True
    r = finetune(default_encoder(), texts, Y, folds_val=val,
                 cfg=FinetuneConfig(layers=1, epochs=3, head_lr=1e-2, batch_size=16), progress=False)
    assert r["log"][-1]["val_loss"] < r["log"][0]["val_loss"]
    assert r["features"].shape == (len(texts), 384)
    assert all(k.startswith("encoder.layer.11.") for k in r["state"])
    # the tuned features separate the two kinds of question better than a random split would
    F = r["features"]
    c_math, c_poem = F[: len(math)].mean(0), F[len(math):].mean(0)
    side = (F @ (c_math - c_poem)) > (c_math @ (c_math - c_poem) + c_poem @ (c_math - c_poem)) / 2
    assert side[: len(math)].mean() > 0.9 and side[len(math):].mean() < 0.1


def test_bad_requests_get_clear_errors():
    with pytest.raises(InputError, match="between 1 and 11"):
        finetune(default_encoder(), ["a", "b"], np.ones((2, 1)), cfg=FinetuneConfig(layers=12), progress=False)
    with pytest.raises(InputError, match="2 texts but 3 label rows"):
        finetune(default_encoder(), ["a", "b"], np.ones((3, 1)), progress=False)
    from dataclasses import replace

    # the default (fp32 ONNX) is tuned through torch; a static table or an int8 graph has no torch twin
    assert default_encoder().runtime == "onnx"
    for spec in (replace(default_encoder(), runtime="static", prefix=""), replace(default_encoder(), quantize="int8")):
        with pytest.raises(InputError, match="needs the torch runtime"):
            finetune(spec, ["a", "b"], np.ones((2, 1)), progress=False)


def _tiny(seed=0):
    math = [f"What is {a} times {b}?" for a in range(6) for b in range(5)]
    poems = [f"Write a haiku about {w}." for w in ("the moon", "rain", "a fox", "snow", "the sea", "autumn leaves",
                                                     "a river", "the city", "old friends", "mountains")]
    return math + poems, np.array([[1.0, 0.0]] * len(math) + [[0.0, 1.0]] * len(poems))


def test_a_tuned_overlay_travels_inside_the_checkpoint(tmp_path):
    import dataclasses
    import json

    from safetensors.numpy import save

    from router.errors import CheckpointError
    from router.model.encoder import file_sha256, get_encoder
    from router.model.head import load_checkpoint, save_checkpoint
    from router.model.heads import LogisticHead

    texts, Y = _tiny()
    r = finetune(default_encoder(), texts, Y, cfg=FinetuneConfig(layers=1, epochs=1), progress=False)
    ck_dir = tmp_path / "ck"
    ck_dir.mkdir()
    (ck_dir / "encoder_overlay.safetensors").write_bytes(save(r["state"]))
    spec = dataclasses.replace(trainable(default_encoder()), overlay="encoder_overlay.safetensors",
                               overlay_sha256=file_sha256(ck_dir / "encoder_overlay.safetensors"))
    head = LogisticHead(np.zeros(384, np.float32), np.ones(384, np.float32), np.zeros((384, 2), np.float32),
                        np.zeros(2, np.float32))
    save_checkpoint(ck_dir, head, {"slots": ["a", "b"], "encoder": spec.to_json()})
    moved = tmp_path / "elsewhere"
    ck_dir.rename(moved)  # a relative overlay is read from wherever the checkpoint now is
    ck = load_checkpoint(moved)
    F = get_encoder(ck.encoder_spec).features(texts[:5])
    np.testing.assert_allclose(F, r["features"][:5], atol=2e-3)
    frozen = get_encoder(default_encoder()).features(texts[:5])
    assert np.abs(F - frozen).max() > 1e-3  # the overlay really changed the encoder
    # ONNX Runtime routes the tuned blocks too: its own export of the overlaid weights, same features
    from router.model.onnx_runtime import artifact_dir

    onnx_spec = dataclasses.replace(ck.encoder_spec, runtime="onnx")
    assert artifact_dir(onnx_spec) != artifact_dir(default_encoder())
    np.testing.assert_allclose(get_encoder(onnx_spec).features(texts[:5]), F, atol=1e-4)
    with pytest.raises(CheckpointError, match="runtime 'static' has none"):
        dataclasses.replace(ck.encoder_spec, runtime="static")
    # a changed overlay file is refused, not silently read
    data = bytearray((moved / "encoder_overlay.safetensors").read_bytes())
    data[-1] ^= 1
    (moved / "encoder_overlay.safetensors").write_bytes(bytes(data))
    assert json.loads((moved / "router.json").read_text())["encoder"]["overlay"] == "encoder_overlay.safetensors"
    with pytest.raises(CheckpointError, match="sha256"):
        Encoder(load_checkpoint(moved).encoder_spec, "cpu")  # not get_encoder: its process cache holds the good one


@pytest.mark.slow
def test_train_records_whether_the_tuned_blocks_were_kept(tmp_path):
    from router.model.head import load_checkpoint
    from router.training.data import read_labels
    from router.training.train import TrainConfig, train
    from tests.test_train_search_real import _subset

    data = _subset(tmp_path, ["gpt-4-1106-preview", "mistralai/mistral-7b-chat"], n_train=80, n_test=10)
    cfg = TrainConfig(finetune_layers=1, cv_folds=3, head="knn")  # the search itself is tested elsewhere
    ck = train(read_labels(data), tmp_path / "ck", cfg, progress=False)
    rec = ck.meta["training"]["finetune"]
    assert rec["layers"] == 1 and set(rec["held_out_aiq"]) == {"frozen", "tuned"}
    assert rec["keep_margin"] == 0.002  # a tie keeps the frozen encoder (ONNX, no overlay)
    assert rec["kept"] == (rec["held_out_aiq"]["tuned"] > rec["held_out_aiq"]["frozen"] + rec["keep_margin"])
    search = ck.meta["training"]["search"]
    assert ("refit" in search) == rec["kept"] and search.get("selected_on", "frozen features") == "frozen features"
    overlay = ck.meta["encoder"].get("overlay")
    assert (overlay == "encoder_overlay.safetensors") == rec["kept"]
    assert (tmp_path / "ck" / "encoder_overlay.safetensors").exists() == rec["kept"]
    assert load_checkpoint(tmp_path / "ck").head.predict(np.zeros((1, 384), np.float32)).shape == (1, 2)
