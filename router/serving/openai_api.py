"""POST /v1/chat/completions: an OpenAI chat request, routed, sent upstream with failover, answered
in OpenAI's format with the destination actually called as `model` and the decision in `router`.

Streams relay the upstream's chunks as they come; the last chunk before `[DONE]` carries usage (when
known, with every detail field the upstream sent) and the `router` object with every attempt (see
`ChatChunks`). With n > 1 every choice keeps its own finish chunk. A stream that breaks after its first chunk
ends with an OpenAI error chunk, which the SDKs raise.
"""

from __future__ import annotations

import time
from typing import Any

from router.routing.costs import normalize_usage
from router.serving.guard import audit_on_error
from router.serving.pipeline import Decision, ProxyState, complete, decide, outgoing, router_headers, router_info
from router.serving.relay import Translator, open_stream, stream_response
from router.serving.schemas import ChatCompletionRequest
from router.sse import DONE, sse

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
    params = upstream_params(req)
    d = await decide(state, req.model, messages, tolerance=req.tolerance, models=req.models, session=session,
                     token=token, stream=req.stream, fields=params["extra"], api="openai",
                     max_output=req.max_tokens or params["extra"].get("max_completion_tokens"))
    with audit_on_error(state, d, "openai"):
        return await _answer(state, d, req, outgoing(d, messages), params, request)


async def _answer(state: ProxyState, d: Decision, req, messages: list[dict], params: dict, request):
    from fastapi.responses import JSONResponse

    if req.stream:
        st = await open_stream(state, d, "openai", messages, request, **params)
        include_usage = bool((req.stream_options or {}).get("include_usage"))
        return stream_response(state, d, "openai", st, ChatChunks(d, st.slot.model, include_usage),
                               router_headers(d, st.slot))
    slot, res, attempts, audit = await complete(state, d, messages, "openai", request=request, **params)
    body = dict(res.raw)
    body["model"] = slot.model
    body["router"] = router_info(d, slot, attempts)
    return JSONResponse(body, headers=router_headers(d, slot), background=audit)


class ChatChunks(Translator):
    """Chunks go out as they come, except the ones carrying finish_reason: they wait for the end of
    the stream so that the last can carry the `router` object (with the last attempt) and the usage.
    Clients that asked for `stream_options.include_usage` get OpenAI's extra usage chunk
    (`choices: []`) instead; others never see a chunk without choices."""

    def __init__(self, d: Decision, model: str, include_usage: bool = False):
        self.model, self.include_usage = model, include_usage
        self.full_usage: dict | None = None  # as the upstream sent it (cost, *_tokens_details): what the client gets
        self.held: list[dict] = []  # finish chunks, one per choice when n > 1; the last carries usage and `router`
        self.meta = {"id": f"chatcmpl-{d.request_id}", "created": int(time.time())}

    def feed(self, chunk: dict) -> list[str]:
        if chunk.get("usage"):
            self.full_usage = dict(chunk["usage"])
        self.meta["id"] = chunk.get("id") or self.meta["id"]
        self.meta["created"] = chunk.get("created") or self.meta["created"]
        if not chunk.get("choices"):
            return []  # usage-only chunk: its numbers go out at the end
        out = {**chunk, "model": self.model}
        if any(c.get("finish_reason") for c in chunk["choices"] if isinstance(c, dict)):
            self.held.append(out)
            return []
        return [sse(out)]

    def finish(self, info: dict) -> list[str]:
        usage = self.full_usage or self.estimate
        base = {"id": self.meta["id"], "object": "chat.completion.chunk", "created": self.meta["created"],
                "model": self.model}
        held = self.held or [{**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
        out = [sse(h) for h in held[:-1]]
        if self.include_usage:
            out += [sse(held[-1]), sse({**base, "choices": [], "usage": _usage_out(usage), "router": info})]
        else:
            out.append(sse({**held[-1], "usage": _usage_out(usage), "router": info}))
        return out + [sse(DONE)]

    def broken(self, message: str, info: dict) -> list[str]:
        return [sse(h) for h in self.held] + [sse({
            "error": {"message": message, "type": "upstream_error", "param": None, "code": "upstream_stream_broken"},
            "router": info})]

    def usage(self) -> dict | None:
        return normalize_usage(self.full_usage)


def _usage_out(usage: dict | None) -> dict | None:
    """The upstream's usage as sent (cost, prompt/completion_tokens_details...), total filled in if absent."""
    if usage is None:
        return None
    out = dict(usage)
    out.setdefault("total_tokens", int(out.get("prompt_tokens") or 0) + int(out.get("completion_tokens") or 0))
    return out
