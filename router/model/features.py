"""Query features with an on-disk cache, so retraining and studies embed each question once.

The cache is a folder per encoder spec (keyed by a hash of the spec), holding shards: a pair of
`.npy` files, the keys (sha256 of each text, hex) and the features. A lookup reads every shard of
the spec, encodes only the texts none of them holds and writes those as one new shard, so any
subset or reordering of questions seen before costs no encoder pass. Shards are written whole and
renamed into place, so two processes filling the same folder never corrupt each other (at worst
both encode the same text once). Plain npy, no pickle.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from router.files import atomic_write
from router.model.encoder import EncoderSpec, cache_dir, get_encoder


def spec_key(spec: EncoderSpec) -> str:
    return hashlib.sha256(json.dumps(spec.identity(), sort_keys=True).encode()).hexdigest()[:16]


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def features_key(spec: EncoderSpec, texts: Sequence[str]) -> str:
    """One key for (encoder spec, the exact text list): what a result for that pair may be filed under."""
    h = hashlib.sha256(json.dumps(spec.identity(), sort_keys=True).encode())
    for t in texts:
        h.update(t.encode("utf-8") + b"\0")
    return h.hexdigest()[:24]


def _spec_dir(spec: EncoderSpec, root: str | Path | None) -> Path:
    base = Path(root) if root else cache_dir() / "features"
    return base / spec_key(spec)


def _load_shards(folder: Path) -> dict[str, np.ndarray]:
    rows: dict[str, np.ndarray] = {}
    if not folder.is_dir():
        return rows
    for kf in sorted(folder.glob("*.keys.npy")):
        xf = kf.with_name(kf.name[: -len(".keys.npy")] + ".x.npy")
        if not xf.exists():
            continue
        keys = np.load(kf, allow_pickle=False)
        X = np.load(xf, allow_pickle=False, mmap_mode="r")
        if len(keys) != len(X):
            continue  # a torn pair (should not happen: both are renamed into place)
        for k, x in zip(keys.tolist(), X):
            rows[k] = x
    return rows


def _write_shard(folder: Path, keys: list[str], X: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256("".join(keys).encode()).hexdigest()[:16]
    for suffix, arr in ((".x.npy", X.astype(np.float32)), (".keys.npy", np.asarray(keys, dtype="<U32"))):
        with atomic_write(folder / f"{name}{suffix}", "wb") as fh:  # keys last: a shard counts once its keys exist
            np.save(fh, arr, allow_pickle=False)


def cached_features(spec: EncoderSpec, texts: Sequence[str], progress: bool = True,
                    use_cache: bool = True, batch_size: int = 32,
                    cache: str | Path | None = None) -> np.ndarray:
    """Features [len(texts), dim] for `texts`, encoding only those the cache lacks.

    `cache` is the folder to use (default: <ROUTER_CACHE>/features); one subfolder per spec.
    """
    texts = list(texts)
    if not use_cache:
        return get_encoder(spec).features(texts, batch_size=batch_size, progress=progress)
    folder = _spec_dir(spec, cache)
    have = _load_shards(folder)
    keys = [text_key(t) for t in texts]
    missing: dict[str, str] = {}
    for k, t in zip(keys, texts):
        if k not in have and k not in missing:
            missing[k] = t
    if missing:
        X_new = get_encoder(spec).features(list(missing.values()), batch_size=batch_size, progress=progress)
        _write_shard(folder, list(missing), X_new)
        have.update(zip(missing, X_new))
    if not texts:
        dim = next(iter(have.values())).shape[0] if have else 0
        return np.zeros((0, dim), dtype=np.float32)
    return np.stack([np.asarray(have[k], dtype=np.float32) for k in keys])


def cached_mask(spec: EncoderSpec, texts: Sequence[str], cache: str | Path | None = None) -> np.ndarray:
    """Which of `texts` already have features in the cache (no encoder is loaded)."""
    have = _load_shards(_spec_dir(spec, cache))
    return np.array([text_key(t) in have for t in texts], dtype=bool)
