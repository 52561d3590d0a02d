"""A checkpoint's head is tied to the encoder it was trained on: the bundled checkpoints record
their probe features, the same weights on another runtime pass, another model of the same width
(MiniLM and e5-small are both 384 wide) is refused with a message that says what to do."""

from __future__ import annotations

import base64
import json
import shutil

import numpy as np
import pytest

from router.errors import CheckpointError
from router.model import encoder_probe
from router.model.encoder import get_encoder
from router.model.head import load_checkpoint
from router.routing.pool import PROJECT_ROOT, load_pool
from router.routing.router import PrefillRouter

E5 = PROJECT_ROOT / "assets" / "checkpoint"
MINILM = PROJECT_ROOT / "assets" / "checkpoint-minilm"
POOL = PROJECT_ROOT / "configs" / "default.yaml"


@pytest.fixture(scope="module")
def minilm_encoder():
    return get_encoder(load_checkpoint(MINILM).encoder_spec)


@pytest.mark.parametrize("name", ["checkpoint", "checkpoint-minilm", "checkpoint-fast"])
def test_bundled_checkpoints_record_a_probe_their_encoder_reproduces(name):
    ck = load_checkpoint(PROJECT_ROOT / "assets" / name)
    assert ck.meta["encoder_probe"]["texts"] == list(encoder_probe.PROBE_TEXTS)
    low = encoder_probe.check(ck, get_encoder(ck.encoder_spec))
    assert low is not None and low > 0.999


def test_another_model_of_the_same_width_is_refused(minilm_encoder):
    ck = load_checkpoint(E5)
    assert minilm_encoder.dim == ck.head.in_dim  # the swap nothing caught before: same width
    with pytest.raises(CheckpointError) as ei:
        PrefillRouter(load_pool(POOL), checkpoint=ck, encoder=minilm_encoder)
    msg = str(ei.value)
    assert "router.json" in msg and "does not compute the features" in msg and "ROUTER_ENCODER_CHECK=off" in msg
    low = float(msg.split("cosine ")[1].split()[0])
    assert low < 0.5  # not a rounding matter: another feature space


def test_the_same_weights_on_torch_pass():
    from dataclasses import replace

    ck = load_checkpoint(E5)
    torch_enc = get_encoder(replace(ck.encoder_spec, runtime="torch"), "cpu")
    assert encoder_probe.check(ck, torch_enc) > 0.9999


def test_the_check_can_be_turned_off(minilm_encoder, monkeypatch):
    monkeypatch.setenv(encoder_probe.ENV, "off")
    r = PrefillRouter(load_pool(POOL), checkpoint=load_checkpoint(E5), encoder=minilm_encoder)
    assert r.route("hello").chosen


def _copy(tmp_path, change):
    dst = tmp_path / "ck"
    shutil.copytree(E5, dst)
    meta = json.loads((dst / "router.json").read_text(encoding="utf-8"))
    change(meta)
    (dst / "router.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    return load_checkpoint(dst)


def test_a_checkpoint_without_a_probe_is_not_checked(tmp_path, minilm_encoder):
    ck = _copy(tmp_path, lambda m: m.pop("encoder_probe"))
    assert encoder_probe.check(ck, minilm_encoder) is None  # checkpoints from before the probe still load


def test_a_moved_probe_vector_is_caught_with_the_file_named(tmp_path):
    def shift(m):
        rows = m["encoder_probe"]["features_f32_b64"]
        v = np.frombuffer(base64.b64decode(rows[1]), dtype="<f4")
        rows[1] = base64.b64encode(np.roll(v, 7).tobytes()).decode()  # same numbers, other directions

    ck = _copy(tmp_path, shift)
    with pytest.raises(CheckpointError, match=r"ck/router.json: the encoder 'multilingual-e5-small'"):
        encoder_probe.check(ck, get_encoder(ck.encoder_spec))


def test_a_batch_scorer_checks_the_encoder_it_loads(tmp_path):
    """What a Ray worker builds on its node (and `score`'s local engine): the same check as the proxy."""
    from router.routing.parallel import CheckpointScorer

    def shift(m):
        rows = m["encoder_probe"]["features_f32_b64"]
        v = np.frombuffer(base64.b64decode(rows[0]), dtype="<f4")
        rows[0] = base64.b64encode((-v).tobytes()).decode()  # the opposite direction

    ck = _copy(tmp_path, shift)
    with pytest.raises(CheckpointError, match="does not compute the features"):
        CheckpointScorer(str(ck.path))
    assert CheckpointScorer(str(E5)).score(["hello"])[0].shape == (1, len(load_checkpoint(E5).slots))


@pytest.mark.parametrize("change", [
    lambda m: m.update(encoder_probe="yes"),
    lambda m: m["encoder_probe"].update(features_f32_b64=["!!not base64!!"] * 3),
    lambda m: m["encoder_probe"].update(features_f32_b64=m["encoder_probe"]["features_f32_b64"][:2]),
    lambda m: m["encoder_probe"].update(features_f32_b64=["AAAA", "AAAAAAAA", "AAAA"]),
    lambda m: m["encoder_probe"].update(min_cosine=3),
])
def test_a_damaged_probe_is_an_error_naming_the_field(tmp_path, change):
    ck = _copy(tmp_path, change)
    with pytest.raises(CheckpointError, match=r"router.json: field 'encoder_probe' must be an object"):
        encoder_probe.check(ck, get_encoder(ck.encoder_spec))
