"""Sensitivity results per message, kept by the hash of the message: an agent resends the whole
conversation and the same tool definitions on every turn, so a turn scans only what is new.

A 100k-token conversation costs ~15 ms to scan from cold on this project's CPU, and without a
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
from collections.abc import Sequence
from typing import Any

from router.envvars import whole_number
from router.lru import CountingLRU

SIZE_ENV = "ROUTER_SCAN_CACHE"
DEFAULT_SIZE = 4096
MAX_SPANS = 200_000

# (((rule, detector, action), spans count), ...), ((path, span), ...) of every rule, ((path, span), ...) of redact rules
Entry = tuple[tuple, tuple, tuple]


def configured_size() -> int:
    return whole_number(SIZE_ENV, DEFAULT_SIZE, 0, meaning="entries (0 turns the cache off)")


class ScanCache(CountingLRU):
    """Values: Entry; an entry weighs its spans, bounded by MAX_SPANS over all entries."""

    def __init__(self, maxsize: int | None = None):
        super().__init__(configured_size() if maxsize is None else int(maxsize), max_weight=MAX_SPANS)

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

    def put(self, key: bytes, entry: Entry) -> None:  # type: ignore[override]
        super().put(key, entry, _spans(entry))


def _spans(entry: Entry) -> int:
    return len(entry[1]) + len(entry[2])


def rules_key(fingerprints: Sequence[bytes]) -> bytes:
    return b"".join(fingerprints)
