"""Time limits of one proxied request.

`Deadline` is the total budget of a request across every retry and failover (`--deadline`): each
upstream try gets `bound(timeout)`, the smaller of the per-call timeout and what is left, and a
wait before a retry never outlasts it. The per-call timeout (`--timeout`) bounds the whole
response of a try (connect, first byte and, for a plain request, the complete body) and, for a
stream, the silence between two chunks: a server trickling a byte at a time can no longer keep a
request alive forever. `retry_after_s` reads an upstream's Retry-After (seconds or HTTP date).
"""

from __future__ import annotations

import math
import time
from email.utils import parsedate_to_datetime

from router.errors import UpstreamError

DEFAULT_DEADLINE_S = 300.0


class Deadline:
    def __init__(self, seconds: float | None):
        self.seconds = None if seconds is None else float(seconds)
        self._at = None if seconds is None else time.monotonic() + float(seconds)

    def remaining(self) -> float:
        return math.inf if self._at is None else self._at - time.monotonic()

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def bound(self, timeout: float) -> float:
        """Seconds the next wait may last: the timeout, cut to what is left of the deadline (>= 0)."""
        return max(0.0, min(float(timeout), self.remaining()))


class DeadlineExceeded(UpstreamError):
    """The request's total deadline ran out before an answer (HTTP 504)."""

    def __init__(self, message: str, attempts: list | None = None):
        super().__init__(message, status=504, attempts=attempts)


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None when absent or unusable
    (negative, NaN, unparseable): the caller then uses its own backoff."""
    if not value:
        return None
    value = value.strip()
    try:
        s = float(value)
    except ValueError:
        try:
            dt = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if dt is None:
            return None
        s = dt.timestamp() - (time.time() if now is None else now)
        return max(0.0, s)
    if not math.isfinite(s) or s < 0:
        return None
    return s
