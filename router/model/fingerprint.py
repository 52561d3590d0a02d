"""A checkpoint's fingerprint: one hash that changes whenever anything that decides P changes.

sha256 over router.json's content (canonical JSON: sorted keys, no whitespace) and every tensor of
the head (name, dtype, shape, bytes, in name order). It is computed from what was loaded, not from
the files' bytes (router.json's `head.weights_sha256`, the weights file's own hash, is left out), so
re-saving the same checkpoint (other indentation, another safetensors header
order) keeps its fingerprint, and a file edited on disk after loading cannot make a line lie.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np


def checkpoint_fingerprint(meta: Mapping[str, Any], tensors: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    h.update(b"router.json\0")
    head = meta.get("head")
    if isinstance(head, Mapping) and "weights_sha256" in head:
        # the weights file's bytes (header order included), a layout fact: the tensors below are hashed
        meta = {**meta, "head": {k: v for k, v in head.items() if k != "weights_sha256"}}
    h.update(json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8"))
    for name in sorted(tensors):
        t = np.ascontiguousarray(tensors[name])
        h.update(f"\0{name}\0{t.dtype.str}\0{list(t.shape)}\0".encode())
        h.update(t.tobytes())
    return "sha256:" + h.hexdigest()[:32]
