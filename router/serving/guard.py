"""A proxied request's failure paths: every one ends in an audit line.

- `audit_on_error`: any exception after the decision (bad upstream body, translation error, a bug)
  writes an "error" line before it becomes the HTTP error; upstream failures are audited once, by
  `pipeline.fail`, which marks them `audited`.
- `unless_disconnected`: a non-streamed call runs while the client's connection is watched; when
  the client hangs up the upstream call is cancelled (no retries for nobody) and `ClientClosed`
  is raised, which the caller audits as "client_closed". Streams get the same from Starlette,
  which cancels the relay when the client goes away.
- `UsageSoFar`: what a stream's usage is when it never got the upstream's usage chunk (client gone,
  stream broken): the prompt tokens the router counted and one completion token per content chunk,
  flagged `usage_estimated`, so that spend is not under-reported as null.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Iterator
from typing import Any, TypeVar

from router.errors import RouterError

T = TypeVar("T")


class ClientClosed(RouterError):
    """The client hung up before its answer (HTTP 499, which it never sees)."""


@contextlib.contextmanager
def audit_on_error(state, d, api: str) -> Iterator[None]:
    from router.serving.pipeline import write_audit

    try:
        yield
    except Exception as exc:
        if not getattr(exc, "audited", False):
            status = "client_closed" if isinstance(exc, ClientClosed) else "error"
            write_audit(state, d, api=api, selected=None, attempts=list(getattr(exc, "attempts", None) or []),
                        usage=None, status=status, error=str(exc))
            exc.audited = True  # type: ignore[attr-defined]
        raise


async def _disconnected(request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def unless_disconnected(request, work: Awaitable[T]) -> T:
    """`await work`, cancelled (ClientClosed) if the client's connection closes first."""
    task = asyncio.ensure_future(work)
    if request is None:
        return await task
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise ClientClosed("the client closed the connection before the answer; the upstream call was cancelled")
    finally:
        watch.cancel()
        if not task.done():
            task.cancel()


class UsageSoFar:
    def __init__(self, prompt_tokens: int | None):
        self.prompt_tokens = prompt_tokens
        self.chunks = 0
        self.usage: dict[str, int] | None = None

    def feed(self, chunk: dict) -> None:
        """An OpenAI chat chunk."""
        from router.upstream.backends import chunk_text

        if chunk.get("usage"):
            u = chunk["usage"]
            self.note({"prompt_tokens": int(u.get("prompt_tokens") or 0),
                       "completion_tokens": int(u.get("completion_tokens") or 0)})
        elif chunk_text(chunk):
            self.note(text=True)

    def note(self, usage: dict[str, int] | None = None, text: bool = False) -> None:
        """The upstream's usage when a chunk carries it; else one more chunk of text."""
        if usage:
            self.usage = usage
        elif text:
            self.chunks += 1

    def final(self, usage: dict | None = None) -> tuple[dict | None, dict[str, Any]]:
        """(usage for the audit line, extra fields): the upstream's numbers when it sent them."""
        usage = usage or self.usage
        if usage:
            return usage, {}
        if not self.chunks and not self.prompt_tokens:
            return None, {}
        return ({"prompt_tokens": int(self.prompt_tokens or 0), "completion_tokens": self.chunks},
                {"usage_estimated": True})
