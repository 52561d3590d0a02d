"""POST /v1/chat/completions: an OpenAI chat request, routed, sent upstream with failover, answered
in OpenAI's format with the destination actually called as `model` and the decision in `router`.

Streams relay the upstream's chunks as they come; the last chunk before `[DONE]` carries usage (when
known, with every detail field the upstream sent) and the `router` object with every attempt (see
`relay`). With n > 1 every choice keeps its own finish chunk. A stream that breaks after its first chunk
ends with an OpenAI error chunk, which the SDKs raise.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import anyio

from router.errors import UpstreamError
from router.routing.costs import normalize_usage
from router.serving.guard import UsageSoFar, audit_on_error
from router.serving.pipeline import (
    Decision,
    ProxyState,
    complete,
    decide,
    fail,
    outgoing,
    remember,
    router_headers,
    router_info,
    write_audit,
)
from router.serving.schemas import ChatCompletionRequest
from router.sse import DONE, sse
from router.upstream.failover import OpenStream, open_stream_with_failover

OWN_FIELDS = {"model", "messages", "stream", "stream_options", "tolerance", "models", "max_tokens",
              "temperature", "stop"}


def upstream_params(req: ChatCompletionRequest) -> dict[str, Any]:
    """What the Backend needs besides messages: known knobs plus every other field, passed through."""
    extra = {k: v for k, v in req.model_dump(exclude_unset=True).items() if k not in OWN_FIELDS}
    stop = [req.stop] if isinstance(req.stop, str) else req.stop
    return {"max_tokens": req.max_tokens, "temperature": req.temperature, "stop": stop or None, "extra": extra}


async def chat_completions(state: ProxyState, req: ChatCompletionRequest, *, token: str | None,
                           session: str | None, request=None):
    from router.safe_text import check_value

    check_value(req.model_dump(exclude_unset=True))  # everything that may go upstream, before any work
    messages = [m.model_dump(exclude_unset=True) for m in req.messages]
    d = await decide(state, req.model, messages, tolerance=req.tolerance, models=req.models, session=session,
                     token=token, stream=req.stream)
    with audit_on_error(state, d, "openai"):
        return await _answer(state, d, req, outgoing(d, messages), request)


async def _answer(state: ProxyState, d: Decision, req, messages: list[dict], request):
    from fastapi.responses import JSONResponse, StreamingResponse

    params = upstream_params(req)
    if req.stream:
        try:
            st = await open_stream_with_failover(state.backend, d.plan, messages, deadline=d.deadline, **params)
        except UpstreamError as exc:
            raise fail(state, d, exc, "openai") from None
        # A line now, so that a crash mid-stream still leaves one per stream (readers join it with the end's).
        write_audit(state, d, api="openai", selected=st.slot, attempts=st.attempts, usage=None, status="started")
        headers = {**router_headers(d, st.slot), "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        include_usage = bool((req.stream_options or {}).get("include_usage"))
        return StreamingResponse(relay(state, d, st, include_usage), media_type="text/event-stream",
                                 headers=headers)
    slot, res, attempts, audit = await complete(state, d, messages, "openai", request=request, **params)
    body = dict(res.raw)
    body["model"] = slot.model
    body["router"] = router_info(d, slot, attempts)
    return JSONResponse(body, headers=router_headers(d, slot), background=audit)


def _sse(obj: dict) -> str:
    return sse(obj)


async def relay(state: ProxyState, d: Decision, st: OpenStream, include_usage: bool = False) -> AsyncIterator[str]:
    """Relay chunks as they come, except the one carrying finish_reason: it waits for the end of the
    stream so that it can carry the `router` object (with the last attempt) and the usage. Clients
    that asked for `stream_options.include_usage` get OpenAI's extra usage chunk (`choices: []`)
    instead; others never see a chunk without choices."""
    usage: dict | None = None
    full_usage: dict | None = None  # as the upstream sent it (cost, *_tokens_details): what the client gets
    status, error = "client_closed", None
    so_far = UsageSoFar(d.result.input_tokens if d.result else None)
    held: list[dict] = []  # finish chunks, one per choice when n > 1; the last carries usage and `router`
    meta = {"id": f"chatcmpl-{d.request_id}", "created": int(time.time())}
    try:
        try:
            async for chunk in st.rest():
                so_far.feed(chunk)
                if chunk.get("usage"):
                    full_usage = dict(chunk["usage"])
                    usage = normalize_usage(chunk["usage"])
                meta["id"] = chunk.get("id") or meta["id"]
                meta["created"] = chunk.get("created") or meta["created"]
                if not chunk.get("choices"):
                    continue  # usage-only chunk: its numbers go out at the end
                out = {**chunk, "model": st.slot.model}
                if any(c.get("finish_reason") for c in chunk["choices"] if isinstance(c, dict)):
                    held.append(out)
                else:
                    yield _sse(out)
        except UpstreamError as exc:
            status, error = "error", str(exc)
            for h in held:
                yield _sse(h)
            yield _sse({"error": {"message": f"upstream stream failed midway: {exc}", "type": "upstream_error",
                                  "param": None, "code": "upstream_stream_broken"},
                        "router": router_info(d, st.slot, st.attempts)})
            return
        status = "ok"
        remember(state, d, st.slot)
        base = {"id": meta["id"], "object": "chat.completion.chunk", "created": meta["created"], "model": st.slot.model}
        if not held:
            held = [{**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
        for h in held[:-1]:
            yield _sse(h)
        info = router_info(d, st.slot, st.attempts)
        if include_usage:
            yield _sse(held[-1])
            yield _sse({**base, "choices": [], "usage": _usage_out(full_usage), "router": info})
        else:
            yield _sse({**held[-1], "usage": _usage_out(full_usage), "router": info})
        yield sse(DONE)
    finally:
        usage, extra = so_far.final(usage)
        write_audit(state, d, api="openai", selected=st.slot, attempts=st.attempts, usage=usage,
                    status=status, error=error, extra=extra)
        with anyio.CancelScope(shield=True):
            await st.aclose()


def _usage_out(usage: dict | None) -> dict | None:
    """The upstream's usage as sent (cost, prompt/completion_tokens_details...), total filled in if absent."""
    if usage is None:
        return None
    out = dict(usage)
    out.setdefault("total_tokens", int(out.get("prompt_tokens") or 0) + int(out.get("completion_tokens") or 0))
    return out
