"""Query features with an on-disk cache, so retraining and studies embed each question once."""

from __future__ import annotations

import hashlib
import json
from typing import Sequence

import numpy as np

from router.files import atomic_write
from router.model.encoder import EncoderSpec, cache_dir, get_encoder


def features_key(spec: EncoderSpec, texts: Sequence[str]) -> str:
    h = hashlib.sha256(json.dumps(spec.to_json(), sort_keys=True).encode())
    for t in texts:
        h.update(t.encode("utf-8") + b"\0")
    return h.hexdigest()[:24]


def cached_features(spec: EncoderSpec, texts: Sequence[str], progress: bool = True,
                    use_cache: bool = True, batch_size: int = 32) -> np.ndarray:
    path = cache_dir() / "features" / f"{features_key(spec, texts)}.npy"
    if use_cache and path.exists():
        X = np.load(path, allow_pickle=False)
        if X.shape[0] == len(texts):
            return X
    X = get_encoder(spec).features(list(texts), batch_size=batch_size, progress=progress)
    if use_cache:
        with atomic_write(path, "wb") as fh:
            np.save(fh, X, allow_pickle=False)
    return X
