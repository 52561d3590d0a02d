"""Score concurrent requests in one encoder forward instead of one after another.

The encoder runs one forward at a time on the process's torch thread, so under load requests
queue. Here a request puts its text in the pool's queue and, when no drain job is queued already,
queues one on the torch thread; the drain scores what is waiting (up to `max_batch`) as one padded
batch and, if more arrived meanwhile, queues itself again behind other pools' jobs. A lone request
is scored at once (no timer, no added latency), with one thread hop and no other. Mean pooling is
masked, so a query's features do not depend on what it was batched with (up to float rounding);
an int8 encoder runs each query of the batch alone for that (encoder.rows_alone).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from router.errors import InputError, RouterError
from router.model import torch_thread
from router.routing.router import PrefillRouter, Scores


class ScoreBatcher:
    def __init__(self, router: PrefillRouter, max_batch: int = 32,
                 observer: Callable[[list[float]], None] | None = None):
        self.router = router
        self.max_batch = int(max_batch)
        self.observer = observer  # called with each batch's queue waits in seconds (metrics)
        self._lock = threading.Lock()
        self._pending: list[tuple[str, Future, float]] = []
        self._queued = False

    def submit(self, text: str) -> Future:
        """A Future of the text's Scores (`asyncio.wrap_future` awaits it). `text` must already be
        validated (router.query_text). Cancelling the Future before its batch starts drops the text."""
        fut: Future = Future()
        with self._lock:
            self._pending.append((text, fut, time.perf_counter()))
            start, self._queued = not self._queued, True
        if start:
            torch_thread.submit(self._drain)
        return fut

    def score(self, text: str) -> Scores:
        """Blocking; from any thread but the torch thread."""
        return self.submit(text).result()

    def _drain(self) -> None:
        with self._lock:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch:]
        # A caller that went away (client disconnected) cancelled its Future: no forward for it.
        kept = [(t, f, t0) for t, f, t0 in batch if f.set_running_or_notify_cancel()]
        batch = [(t, f) for t, f, _ in kept]
        try:
            if self.observer is not None and kept:
                now = time.perf_counter()
                self.observer([now - t0 for _, _, t0 in kept])
            if batch:
                try:
                    results = self._score_batch([t for t, _ in batch])
                except Exception:
                    if len(batch) == 1:
                        raise
                    # One text the tokenizer or encoder cannot take must not fail the others: score
                    # each alone, so that only the bad one hears about its own error.
                    for text, fut in batch:
                        _settle_alone(fut, lambda t=text: self._score_batch([t])[0])
                else:
                    for (_, fut), scores in zip(batch, results):
                        fut.set_result(scores)
        except BaseException as exc:  # every waiter must hear about it, or it would hang
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(_as_input_error(exc))
            if not isinstance(exc, Exception):
                raise
        finally:
            with self._lock:
                self._queued = bool(self._pending)
                again = self._queued
            if again:
                torch_thread.submit(self._drain)

    def _score_batch(self, texts: list[str]) -> list[Scores]:
        return self.router.score_texts(texts)


def _settle_alone(fut: Future, score) -> None:
    try:
        fut.set_result(score())
    except Exception as exc:
        fut.set_exception(_as_input_error(exc))


def _as_input_error(exc: BaseException) -> BaseException:
    """A text the tokenizer or encoder rejects is the caller's problem (400), named as such."""
    if isinstance(exc, RouterError) or not isinstance(exc, (ValueError, TypeError, UnicodeError)):
        return exc
    return InputError(f"this query cannot be tokenized or encoded ({type(exc).__name__}: {str(exc)[:200]}); "
                      "send valid UTF-8 text")
