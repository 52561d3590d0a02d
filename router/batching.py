"""Score concurrent requests in one encoder forward instead of one after another.

The encoder runs one forward at a time, so under load requests queue behind each other. Here the
first caller becomes the leader and scores everything that is waiting as one padded batch, while
the others wait for their result; whatever arrives during that forward goes into the next batch.
A lone request is scored at once (no timer, no added latency). Mean pooling is masked, so a
query's features do not depend on what it was batched with (up to float rounding).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future

from .core import PrefillRouter, Scores


class ScoreBatcher:
    def __init__(self, router: PrefillRouter, max_batch: int = 32):
        self.router = router
        self.max_batch = int(max_batch)
        self._lock = threading.Lock()
        self._pending: list[tuple[str, Future]] = []
        self._leading = False

    def score(self, text: str) -> Scores:
        """Blocking; call from a worker thread. `text` must already be validated (router.query_text)."""
        fut: Future = Future()
        with self._lock:
            self._pending.append((text, fut))
            lead = not self._leading
            self._leading = self._leading or lead
        if lead:
            self._drain()
        return fut.result()

    def _drain(self) -> None:
        while True:
            with self._lock:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch:]
                if not batch:
                    self._leading = False
                    return
            try:
                for fut, scores in zip((f for _, f in batch), self._score_batch([t for t, _ in batch])):
                    fut.set_result(scores)
            except BaseException as exc:  # every waiter must hear about it, or it would hang
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                if not isinstance(exc, Exception):
                    with self._lock:
                        self._leading = False
                    raise

    def _score_batch(self, texts: list[str]) -> list[Scores]:
        return self.router.score_texts(texts)
