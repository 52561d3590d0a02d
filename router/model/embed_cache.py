"""Encoder outputs kept by the hash of the routed text: agents resend the same context.

One bounded LRU per encoder spec, per process, thread-safe. A value is the feature vector and the
untruncated token count (the cost estimate needs it), so a hit skips tokenization and the forward.
Keys are SHA-256 digests of the text, so the cache holds no query text. `stats()` is what a
/metrics endpoint reads. Size: ROUTER_EMBED_CACHE entries per encoder (default 4096; 0 turns it off);
at 384 float32 features an entry is ~1.6 kB, 4096 entries ~7 MB.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

DEFAULT_SIZE = 4096


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class EmbeddingCache:
    def __init__(self, maxsize: int = DEFAULT_SIZE):
        if maxsize < 0:
            raise ValueError(f"cache size must be >= 0, got {maxsize}")
        self.maxsize = int(maxsize)
        self._data: OrderedDict[bytes, tuple[np.ndarray, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: bytes) -> tuple[np.ndarray, int] | None:
        with self._lock:
            v = self._data.get(key)
            if v is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return v

    def count_hits(self, n: int) -> None:
        if n:
            with self._lock:
                self.hits += n

    def put(self, key: bytes, features: np.ndarray, n_tokens: int) -> None:
        if self.maxsize == 0:
            return
        v = np.array(features, dtype=np.float32, copy=True)
        v.setflags(write=False)  # shared between requests: nobody may write into it
        with self._lock:
            self._data[key] = (v, int(n_tokens))
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
                self.evictions += 1

    def stats(self) -> dict[str, float]:
        with self._lock:
            total = self.hits + self.misses
            return {"entries": len(self._data), "maxsize": self.maxsize, "hits": self.hits, "misses": self.misses,
                    "evictions": self.evictions, "hit_rate": round(self.hits / total, 4) if total else 0.0}

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = self.evictions = 0


def encode_cached(encoder, texts: Sequence[str], cache: EmbeddingCache | None) -> tuple[np.ndarray, list[int]]:
    """Features [n, dim] and token counts; only the texts not in `cache` go through the encoder,
    as one batch (one forward for a micro-batch, as without the cache)."""
    if cache is None or cache.maxsize == 0:
        ids, counts = encoder.tokenize(list(texts))
        return encoder.encode_ids(ids), list(counts)
    keys = [text_key(t) for t in texts]
    # One lookup per distinct text; a repeat inside the batch costs no forward, so it counts as a hit.
    distinct = {k: cache.get(k) for k in dict.fromkeys(keys)}
    cache.count_hits(len(keys) - len(distinct))
    found = [distinct[k] for k in keys]
    todo = [i for i, f in enumerate(found) if f is None]
    X = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    counts = [0] * len(texts)
    for i, f in enumerate(found):
        if f is not None:
            X[i], counts[i] = f
    if todo:
        # The same text twice in one batch is encoded once.
        first: dict[bytes, int] = {}
        for i in todo:
            first.setdefault(keys[i], i)
        uniq = list(first.values())
        ids, n = encoder.tokenize([texts[i] for i in uniq])
        Xn = encoder.encode_ids(ids)
        for row, i in enumerate(uniq):
            cache.put(keys[i], Xn[row], n[row])
        by_key = {keys[i]: row for row, i in enumerate(uniq)}
        for i in todo:
            row = by_key[keys[i]]
            X[i], counts[i] = Xn[row], n[row]
    return X, counts


_CACHES: dict[object, EmbeddingCache] = {}
_LOCK = threading.Lock()


def cache_size() -> int:
    raw = os.environ.get("ROUTER_EMBED_CACHE", "")
    try:
        return max(0, int(raw)) if raw.strip() else DEFAULT_SIZE
    except ValueError:
        from router.errors import InputError

        raise InputError(f"environment variable ROUTER_EMBED_CACHE must be a whole number of entries "
                         f"(0 = off), got {raw!r}") from None


def cache_for(spec) -> EmbeddingCache:
    """The process's cache for one encoder spec (created on first use)."""
    with _LOCK:
        c = _CACHES.get(spec)
        if c is None:
            c = _CACHES[spec] = EmbeddingCache(cache_size())
        return c


def stats() -> dict[str, float]:
    """Totals over every encoder's cache in this process, for /metrics."""
    with _LOCK:
        caches = list(_CACHES.values())
    per = [c.stats() for c in caches]
    hits, misses = sum(s["hits"] for s in per), sum(s["misses"] for s in per)
    return {"caches": len(per), "entries": sum(s["entries"] for s in per), "hits": hits, "misses": misses,
            "evictions": sum(s["evictions"] for s in per),
            "hit_rate": round(hits / (hits + misses), 4) if hits + misses else 0.0}
