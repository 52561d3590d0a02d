"""Sensitivity results per message, kept by the hash of the message: an agent resends the whole
conversation and the same tool definitions on every turn, so a turn scans only what is new.

A 100k-token conversation costs ~30 ms to scan from cold on this project's CPU, and without a
cache every request pays it; hashing it costs ~3 ms. A key is a BLAKE2b digest of the rules'
fingerprints and the message's JSON, so the cache holds no text; a value is what the message
contributed to the scan (its match counts and spans, by string path). One bounded LRU per
`Governance` (per app), thread-safe. Size: ROUTER_SCAN_CACHE entries (default 4096; 0 turns it
off); an entry with no match is ~200 bytes.
The spans held are bounded too (MAX_SPANS over all entries, ~150 bytes each): a resent log with
thousands of IP addresses must not make 4096 entries cost gigabytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

SIZE_ENV = "ROUTER_SCAN_CACHE"
DEFAULT_SIZE = 4096
MAX_SPANS = 200_000

# (((rule, detector, action), spans count), ...), ((path, span), ...) of every rule, ((path, span), ...) of redact rules
Entry = tuple[tuple, tuple, tuple]


def configured_size() -> int:
    raw = os.environ.get(SIZE_ENV, "").strip()
    if not raw:
        return DEFAULT_SIZE
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"{SIZE_ENV}={raw!r}: expected a whole number of entries (0 turns the cache off)") from None
    if n < 0:
        raise ValueError(f"{SIZE_ENV}={raw!r}: expected 0 or more entries")
    return n


class ScanCache:
    def __init__(self, maxsize: int | None = None):
        self.maxsize = configured_size() if maxsize is None else int(maxsize)
        if self.maxsize < 0:
            raise ValueError(f"scan cache size must be >= 0, got {self.maxsize}")
        self.max_spans = MAX_SPANS
        self._data: OrderedDict[bytes, Entry] = OrderedDict()
        self._spans = 0  # held by every entry together
        self._lock = threading.Lock()
        self.hits = self.misses = self.evictions = 0

    def __len__(self) -> int:
        return len(self._data)

    def key(self, rules_key: bytes, message: Any) -> bytes | None:
        """None when the message is not plain JSON (nothing is cached for it) or the cache is off."""
        if self.maxsize == 0:
            return None
        try:
            raw = json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=True)
        except (TypeError, ValueError):
            return None
        h = hashlib.blake2b(rules_key, digest_size=16)
        # The type is hashed too: the string "x" and a message {"content": "x"} scan alike but are kept apart.
        h.update(type(message).__name__.encode())
        h.update(raw.encode("utf-8", "surrogatepass"))
        return h.digest()

    def get(self, key: bytes) -> Entry | None:
        with self._lock:
            v = self._data.get(key)
            if v is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return v

    def put(self, key: bytes, entry: Entry) -> None:
        weight = _spans(entry)
        if weight > self.max_spans:  # alone over the bound: scanned again next time
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._spans -= _spans(old)
            self._data[key] = entry
            self._spans += weight
            while len(self._data) > self.maxsize or self._spans > self.max_spans:
                _, dropped = self._data.popitem(last=False)
                self._spans -= _spans(dropped)
                self.evictions += 1

    def stats(self) -> dict[str, float]:
        with self._lock:
            seen = self.hits + self.misses
            return {"hits": self.hits, "misses": self.misses, "evictions": self.evictions,
                    "entries": len(self._data), "hit_rate": self.hits / seen if seen else 0.0}


def _spans(entry: Entry) -> int:
    return len(entry[1]) + len(entry[2])


def rules_key(fingerprints: Sequence[bytes]) -> bytes:
    return b"".join(fingerprints)
