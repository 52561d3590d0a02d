"""Every encoder forward in a process runs on one dedicated thread.

On CPU, torch parallelizes each op with OpenMP, and OpenMP gives every thread that calls into
torch a team of worker threads of its own. Once a server has called torch from a few different
threads (the proxy's thread pool, Gradio's workers), the idle teams compete with the working one
for the same cores: measured on a 2-core machine, the same 20-token forward went from 34 ms to
50-70 ms and stayed there. Funnelling the calls through one thread keeps one team. Forwards were
serialized anyway (one model, one forward at a time), so nothing is lost.

The thread is a process resource like the loaded model, not request state: callers hand it work
and get their own Future back.

GNU OpenMP workers spin 300,000 rounds after each parallel op before they sleep: milliseconds of
a core burnt after every forward, just when the event loop, the upstream and the client need the
CPU. 10,000 rounds still bridge the gaps between ops inside a forward (same forward time), and
cut the routed proxy's added latency by ~0.5 ms on 2 cores. Passive waits (no spinning) made
each forward ~15 ms slower. Set here because this module is imported before torch loads; an
explicit setting in the environment wins.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

os.environ.setdefault("GOMP_SPINCOUNT", "10000")

T = TypeVar("T")

_HERE = threading.local()  # `on` is set only in the torch thread, when it starts


def _mark() -> None:
    _HERE.on = True


_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="router-torch", initializer=_mark)


def on_torch_thread() -> bool:
    return getattr(_HERE, "on", False)


def submit(fn: Callable[..., T], *args) -> Future:
    """Queue `fn(*args)` on the torch thread; jobs run one at a time, in order."""
    return _EXECUTOR.submit(fn, *args)


def call(fn: Callable[..., T], *args) -> T:
    """Run `fn(*args)` on the torch thread and wait for it (directly when already there)."""
    if on_torch_thread():
        return fn(*args)
    return _EXECUTOR.submit(fn, *args).result()
