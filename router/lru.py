"""A bounded, thread-safe LRU that counts its hits, misses and evictions (what /metrics reads).

Shared by the encoder-output cache (router/model/embed_cache.py) and the sensitivity scan cache
(router/routing/scan_cache.py). Bounded by entries and, optionally, by a total weight (each
entry's weight is given when it is put), so that a few heavy entries cannot grow it without bound.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any


class CountingLRU:
    def __init__(self, maxsize: int, max_weight: int | None = None):
        if maxsize < 0:
            raise ValueError(f"cache size must be >= 0, got {maxsize}")
        self.maxsize = int(maxsize)
        self.max_weight = max_weight
        self._data: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._weight = 0  # of every entry together
        self._lock = threading.Lock()
        self.hits = self.misses = self.evictions = 0

    def __len__(self) -> int:
        return len(self._data)

    @property
    def weight(self) -> int:
        return self._weight

    def get(self, key: Any) -> Any:
        with self._lock:
            v = self._data.get(key)
            if v is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return v[0]

    def count_hits(self, n: int) -> None:
        if n:
            with self._lock:
                self.hits += n

    def put(self, key: Any, value: Any, weight: int = 1) -> None:
        if self.maxsize == 0 or (self.max_weight is not None and weight > self.max_weight):
            return  # off, or too heavy alone: computed again next time
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._weight -= old[1]
            self._data[key] = (value, weight)
            self._weight += weight
            while len(self._data) > self.maxsize or (self.max_weight is not None and self._weight > self.max_weight):
                _, (_, w) = self._data.popitem(last=False)
                self._weight -= w
                self.evictions += 1

    def stats(self) -> dict[str, float]:
        with self._lock:
            total = self.hits + self.misses
            return {"entries": len(self._data), "maxsize": self.maxsize, "hits": self.hits, "misses": self.misses,
                    "evictions": self.evictions, "hit_rate": round(self.hits / total, 4) if total else 0.0}

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._weight = 0
            self.hits = self.misses = self.evictions = 0
