"""Encoder outputs kept by the hash of the routed text: agents resend the same context.

One bounded LRU per encoder spec, per process, thread-safe. A value is the feature vector and the
untruncated token count (the cost estimate needs it), so a hit skips tokenization and the forward.
Keys are SHA-256 digests of the text, so the cache holds no query text. `stats()` is what a
/metrics endpoint reads. Size: ROUTER_EMBED_CACHE entries per encoder (default 4096; 0 turns it off);
at 384 float32 features an entry is ~1.6 kB, 4096 entries ~7 MB.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence

import numpy as np

from router.lru import CountingLRU

DEFAULT_SIZE = 4096


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class EmbeddingCache(CountingLRU):
    """Values: (read-only float32 features, untruncated token count)."""

    def __init__(self, maxsize: int = DEFAULT_SIZE):
        super().__init__(maxsize)

    def put(self, key: bytes, features: np.ndarray, n_tokens: int) -> None:  # type: ignore[override]
        if self.maxsize == 0:
            return
        v = np.array(features, dtype=np.float32, copy=True)
        v.setflags(write=False)  # shared between requests: nobody may write into it
        super().put(key, (v, int(n_tokens)))


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
    from router.envvars import whole_number

    return whole_number("ROUTER_EMBED_CACHE", DEFAULT_SIZE, 0, meaning="entries (0 turns the cache off)")


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
