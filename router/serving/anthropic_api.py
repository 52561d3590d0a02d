"""POST /v1/messages: the Anthropic Messages API, routed and translated to the upstream's
OpenAI-compatible call and back, so Anthropic-format clients (Claude Code among them) need no shim.

The routing reads the Anthropic conversation itself (system prompt excluded, as for OpenAI).
"""

from __future__ import annotations

from router.errors import InputError
from router.serving.anthropic_translate import (
    StreamTranslator,
    sse_event,
    to_anthropic_message,
    to_openai_messages,
    to_openai_tools,
)
from router.serving.guard import audit_on_error
from router.serving.pipeline import (
    Decision,
    ProxyState,
    complete,
    decide,
    outgoing,
    prompt_tokens,
    router_headers,
    router_info,
    untranslatable,
)
from router.serving.relay import Translator, open_stream, stream_response
from router.serving.schemas import CountTokensRequest, MessagesRequest


def upstream_params(req: MessagesRequest) -> dict:
    """Only fields with an OpenAI meaning go upstream: Anthropic-only ones (thinking, metadata,
    service_tier, ...) would be rejected or misread by an OpenAI-compatible server. Reasoning is set
    per slot (`extra_body`) instead."""
    extra = to_openai_tools(req.tools, req.tool_choice)
    if req.top_p is not None:
        extra["top_p"] = req.top_p
    if req.top_k is not None:
        extra["top_k"] = req.top_k
    return {"max_tokens": req.max_tokens, "temperature": req.temperature, "stop": req.stop_sequences or None,
            "extra": extra}


def _headers(d: Decision, slot) -> dict[str, str]:
    return {**router_headers(d, slot), "request-id": d.request_id}


def routed_model(registry, model: str | None) -> str | None:
    """Anthropic clients (Claude Code) send their own `claude-*` names: those route with the default policy.

    Only the base URL then has to change; a policy or slot name still selects or pins as usual.
    """
    if model and model.startswith("claude") and model not in registry.policies:
        names = {n for r in registry for n in r.pool.names}
        if model not in names:
            return None
    return model


async def messages(state: ProxyState, req: MessagesRequest, *, token: str | None, session: str | None,
                   request=None):
    from router.safe_text import check_value

    check_value(req.model_dump(exclude_unset=True))  # everything that may go upstream, before any work
    raw_msgs = [m.model_dump(exclude_unset=True) for m in req.messages]
    try:  # what the sensitivity rules read (system and tools included) and what goes upstream
        upstream_msgs, params, bad = to_openai_messages(raw_msgs, req.system), upstream_params(req), None
    except InputError as exc:  # refused after the decision, so that the refusal is audited
        upstream_msgs, params, bad = None, None, exc
    d = await decide(state, routed_model(state.registry, req.model), raw_msgs, tolerance=req.tolerance,
                     models=req.models, session=session, token=token, stream=req.stream,
                     scan=raw_msgs if upstream_msgs is None else upstream_msgs,
                     fields=None if params is None else params["extra"], api="anthropic", max_output=req.max_tokens)
    with audit_on_error(state, d, "anthropic"):
        if bad is not None:
            raise bad
        return await _answer(state, d, req, outgoing(d, upstream_msgs), params, request)


async def _answer(state: ProxyState, d: Decision, req, upstream_msgs: list[dict], params: dict, request):
    from fastapi.responses import JSONResponse

    msg_id = "msg_" + d.request_id.removeprefix("req_")
    if req.stream:
        st = await open_stream(state, d, "anthropic", upstream_msgs, request, **params)
        tr = StreamTranslator(msg_id, st.slot.model, prompt_tokens(d), req.stop_sequences)
        return stream_response(state, d, "anthropic", st, AnthropicEvents(tr), _headers(d, st.slot))
    slot, res, attempts, audit = await complete(state, d, upstream_msgs, "anthropic", request=request, **params)
    try:
        body = to_anthropic_message(res.raw, msg_id=msg_id, model=slot.model, stop_sequences=req.stop_sequences)
    except Exception as exc:  # a malformed answer (billed all the same); `audit`, its "ok" line, never runs
        raise untranslatable(state, d, "anthropic", slot, attempts, res.usage, exc, settled=True) from None
    body["router"] = router_info(d, slot, attempts)
    return JSONResponse(body, headers=_headers(d, slot), background=audit)


class AnthropicEvents(Translator):
    """The Messages event sequence (router.serving.anthropic_translate.StreamTranslator); the
    `router` object rides on the final message_delta."""

    def __init__(self, tr: StreamTranslator):
        self.tr = tr

    def start(self) -> list[str]:
        return self.tr.start()

    def feed(self, chunk: dict) -> list[str]:
        return self.tr.feed(chunk)

    def finish(self, info: dict) -> list[str]:
        return self.tr.finish_events({"router": info}, estimate=self.estimate)

    def broken(self, message: str, info: dict) -> list[str]:
        return [sse_event("error", {"error": {"type": "api_error", "message": message}})]

    def usage(self) -> dict | None:
        return self.tr.usage


async def count_tokens(state: ProxyState, req: CountTokensRequest) -> dict:
    """An estimate with the router's own tokenizer (upstream tokenizers differ): every system block,
    every turn (tool calls and results included) and every tool definition."""
    import anyio.to_thread

    from router.safe_text import check_value

    check_value(req.model_dump(exclude_unset=True))
    router, _ = state.registry.resolve(routed_model(state.registry, req.model))
    msgs = [m.model_dump(exclude_unset=True) for m in req.messages]
    text = count_text(to_openai_messages(msgs, req.system), to_openai_tools(req.tools, None).get("tools"))
    n = await anyio.to_thread.run_sync(router.encoder.count_tokens, text or " ")
    return {"input_tokens": int(n)}


def count_text(messages: list[dict], tools: list[dict] | None) -> str:
    """What an upstream reads as input: message texts, tool-call arguments, tool definitions as JSON."""
    import json

    from router.model.encoder import content_text

    pieces = [content_text(m.get("content")) for m in messages]
    for m in messages:
        for call in m.get("tool_calls") or []:
            pieces.append(f"{call['function']['name']} {call['function']['arguments']}")
    for t in tools or []:
        pieces.append(json.dumps(t["function"], separators=(",", ":")))
    return "\n\n".join(p for p in pieces if p)
