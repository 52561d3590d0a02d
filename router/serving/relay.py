"""One streamed answer, for every API: open the upstream stream (failover before its first chunk),
write the `started` audit line, relay the chunks through the API's own `Translator`, and write
exactly one final audit line whatever happens.

The final line's status: "ok" when the stream ended and its last events were built; "error" when
the upstream broke off or the translation raised midway (the client gets the API's error event,
built by `Translator.broken`); "client_closed" when the client went away (Starlette cancels the
relay, the upstream stream is closed). Its usage is the upstream's when it sent it, else the
estimate of `UsageSoFar`, so a cut stream is never audited as free.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import anyio

from router.errors import UpstreamError
from router.serving.guard import UsageSoFar, unless_disconnected
from router.serving.pipeline import (
    Decision,
    ProxyState,
    fail,
    hold_mover,
    prompt_tokens,
    remember,
    router_info,
    write_audit,
)
from router.upstream.failover import OpenStream, open_stream_with_failover

log = logging.getLogger("router.serving")

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class Translator:
    """What one API makes of an upstream stream. `feed` gets what `OpenStream.rest()` yields (an
    OpenAI chat chunk, or an upstream Responses event for a passthrough slot); every method returns
    the SSE text to send, in order. `info` is the response's `router` object. `estimate` is set
    (before `finish`) to the usage the relay counted when the upstream never sent any: the client's
    final event carries it, as the audit line does."""

    estimate: dict[str, int] | None = None

    def start(self) -> Iterable[str]:
        return ()

    def feed(self, chunk: Any) -> Iterable[str]:
        raise NotImplementedError

    def finish(self, info: dict[str, Any]) -> Iterable[str]:
        """The events after the last chunk (called once the upstream ended well)."""
        raise NotImplementedError

    def broken(self, message: str, info: dict[str, Any]) -> Iterable[str]:
        """The API's error event for a stream that failed midway."""
        raise NotImplementedError

    def usage(self) -> dict | None:
        """The upstream's usage as the audit counts it (prompt/completion tokens), once it sent it."""
        return None

    def meter(self, so_far: UsageSoFar, chunk: Any) -> None:
        """Count what the chunk tells about usage, for a stream that never gets its usage chunk."""
        so_far.feed(chunk)


async def open_stream(state: ProxyState, d: Decision, api: str, messages: list[dict], request=None,
                      **params: Any) -> OpenStream:
    """The first slot of the plan that starts streaming. Every slot failing is audited (`fail`); a
    client that hangs up before the first chunk cancels the wait (ClientClosed, for audit_on_error)."""
    try:
        return await unless_disconnected(request, open_stream_with_failover(
            state.backend, d.plan, messages, deadline=d.deadline, before_try=hold_mover(state, d), **params))
    except UpstreamError as exc:
        raise fail(state, d, exc, api) from None


def stream_response(state: ProxyState, d: Decision, api: str, st: OpenStream, tr: Translator,
                    headers: dict[str, str]):
    """The StreamingResponse for an opened stream. A line now, so that a crash mid-stream still
    leaves one per stream (readers join it with the final one)."""
    from fastapi.responses import StreamingResponse

    write_audit(state, d, api=api, selected=st.slot, attempts=st.attempts, usage=None, status="started")
    return StreamingResponse(relay(state, d, api, st, tr), media_type="text/event-stream",
                             headers={**headers, **STREAM_HEADERS})


async def relay(state: ProxyState, d: Decision, api: str, st: OpenStream, tr: Translator) -> AsyncIterator[str]:
    status, error = "client_closed", None  # what stays when the client goes away (the relay is cancelled)
    so_far = UsageSoFar(prompt_tokens(d))
    estimate: tuple[dict | None, dict] = (None, {})  # what the client was told when the upstream sent no usage
    try:
        try:
            for ev in tr.start():
                yield ev
            async for chunk in st.rest():
                tr.meter(so_far, chunk)
                for ev in tr.feed(chunk):
                    yield ev
            info = router_info(d, st.slot, st.attempts)
            if tr.usage() is None:
                estimate = so_far.final()
                if estimate[1]:
                    tr.estimate, info = estimate[0], {**info, **estimate[1]}
            tail = list(tr.finish(info))
        except Exception as exc:  # the upstream broke off, or its chunks could not be translated
            status, error = "error", str(exc)
            if isinstance(exc, UpstreamError):
                message = f"upstream stream failed midway: {exc}"
            else:
                log.exception("stream %s: translating the upstream's chunks failed", d.request_id)
                message = f"the stream failed midway: {type(exc).__name__}: {exc}"
                error = message
            for ev in tr.broken(message, router_info(d, st.slot, st.attempts)):
                yield ev
            return
        status = "ok"
        remember(state, d, st.slot)
        for ev in tail:
            yield ev
    finally:
        usage, extra = estimate if estimate[1] else so_far.final(tr.usage())
        write_audit(state, d, api=api, selected=st.slot, attempts=st.attempts, usage=usage,
                    status=status, error=error, extra=extra)
        with anyio.CancelScope(shield=True):
            await st.aclose()
