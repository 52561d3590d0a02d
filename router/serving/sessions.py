"""Conversation stickiness for `X-Router-Session`: keep a conversation on the model it started with.

A new turn stays on the session's model unless p_max − P(current) exceeds the tolerance (that is,
unless the current model has dropped out of the candidates); then it moves to the router's choice.
This avoids bouncing between models mid-conversation. The store is bounded (least recently used
sessions are forgotten first), expires idle sessions, and is safe to share across threads.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

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
    def __init__(self, max_sessions: int = 10_000, ttl_s: float = 24 * 3600):
        self.max_sessions = int(max_sessions)
        self.ttl_s = float(ttl_s)
        self._lock = threading.Lock()
        self._data: OrderedDict[tuple, tuple[str, float]] = OrderedDict()

    def get(self, key: tuple) -> str | None:
        now = time.monotonic()
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            slot, seen = item
            if now - seen > self.ttl_s:
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return slot

    def set(self, key: tuple, slot: str) -> None:
        with self._lock:
            self._data[key] = (slot, time.monotonic())
            self._data.move_to_end(key)
            while len(self._data) > self.max_sessions:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)
