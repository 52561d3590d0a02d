"""router/files.py: files written whole, with an ordinary file's permissions."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from safetensors.numpy import load_file

from router.files import save_tensors


def test_saved_tensors_are_readable_by_other_users_and_a_failed_save_keeps_the_old_file(tmp_path):
    path = tmp_path / "weights.safetensors"
    old = os.umask(0o022)
    try:
        save_tensors({"a": np.arange(3, dtype=np.float32)}, path)
        # safetensors alone writes 0600: a container's serving user could not read a trained checkpoint
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        with pytest.raises(AttributeError):  # safetensors' own complaint about a value that is no array
            save_tensors({"a": "not an array"}, path)
    finally:
        os.umask(old)
    assert np.array_equal(load_file(str(path))["a"], np.arange(3, dtype=np.float32))
    assert [p.name for p in tmp_path.iterdir()] == ["weights.safetensors"]  # no temp file left behind


def test_a_checkpoint_is_saved_world_readable(tmp_path):
    from router.model.head import WEIGHTS_FILE, load_checkpoint, save_checkpoint
    from router.model.heads import KNNHead

    head = KNNHead(np.eye(3, dtype=np.float32), np.eye(3), k=1)
    old = os.umask(0o022)
    try:
        save_checkpoint(tmp_path / "ck", head, {"slots": ["a", "b", "c"], "encoder": {}})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "ck" / WEIGHTS_FILE).stat().st_mode) == 0o644
    assert load_checkpoint(tmp_path / "ck").head.n_slots == 3
