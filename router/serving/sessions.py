"""Conversation stickiness for `X-Router-Session`: keep a conversation on the model it started with.

A new turn stays on the session's model unless p_max − P(current) exceeds the tolerance (that is,
unless the current model has dropped out of the candidates); then it moves to the router's choice.
This avoids bouncing between models mid-conversation. The store (cachetools' TTLCache) is bounded,
expires idle sessions, and is safe to share across threads.
"""

from __future__ import annotations

import threading
import time

from cachetools import TTLCache

from router.routing.router import RoutingResult
from router.routing.select import within


def sticky_choice(result: RoutingResult, current: str | None) -> tuple[str, bool]:
    """(slot to use, whether it is the session's previous model kept against the router's pick)."""
    if current is None or current == result.chosen:
        return result.chosen, False
    try:
        score = result.score(current)
    except Exception:  # the slot left the pool (config reload): start over
        return result.chosen, False
    if score.allowed and within(score.p, result.p_max, result.tolerance):
        return current, True
    return result.chosen, False


class SessionStore:
    """Slot per conversation key: least recently used sessions are dropped first once full, and a
    session expires `ttl_s` after its last turn (each answered turn sets it again)."""

    def __init__(self, max_sessions: int = 10_000, ttl_s: float = 24 * 3600, timer=time.monotonic):
        self.max_sessions = int(max_sessions)
        self.ttl_s = float(ttl_s)
        self._lock = threading.Lock()  # cachetools' caches are not thread-safe by themselves
        self._data: TTLCache = TTLCache(maxsize=self.max_sessions, ttl=self.ttl_s, timer=timer)

    def get(self, key: tuple) -> str | None:
        with self._lock:
            return self._data.get(key)

    def set(self, key: tuple, slot: str) -> None:
        with self._lock:
            self._data[key] = slot

    def __len__(self) -> int:
        with self._lock:
            self._data.expire()
            return len(self._data)
