"""POST /v1/responses: OpenAI's Responses API (the OpenAI Agents SDK's default, Codex CLI), routed
like chat completions and sent upstream as a chat completion (router.serving.responses_translate),
or passed through as-is to slots whose upstream speaks Responses (`upstream_api: responses`).

The decision travels as on /v1/chat/completions: the `router` object in the response body (for a
stream: in the response of its response.completed event) and the X-Router-* headers. A client's own
OpenAI model names (`gpt-*`, `o1`/`o3`/`o4*`, `codex-*`, `chatgpt-*`) route with the default
policy, as `claude-*` names do on /v1/messages, so an SDK's default model works unchanged. Failover
follows the plan; a stream fails over only before its first event.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import anyio

from router.errors import MissingKeyError, UpstreamError
from router.routing.pool import Slot
from router.serving.pipeline import (
    Decision,
    ProxyState,
    audit_after_response,
    decide,
    fail,
    outgoing,
    remember,
    router_headers,
    router_info,
    write_audit,
)
from router.serving.responses_translate import OWN_FIELDS, ResponseIds, ResponsesStream, to_chat_request, to_response
from router.serving.schemas import ResponsesRequest
from router.upstream import responses_backend
from router.upstream.backends import Attempt
from router.upstream.failover import _missing_key_attempt, chat_with_failover, final_error, open_stream_with_failover

OPENAI_NAMES = re.compile(r"^(gpt-|o[1-9]|codex|chatgpt-|computer-use)", re.IGNORECASE)


def routed_model(registry, model: str | None) -> str | None:
    """An OpenAI model name that is no policy or slot of ours routes with the default policy."""
    if model and OPENAI_NAMES.match(model) and model not in registry.policies:
        if model not in {n for r in registry for n in r.pool.names}:
            return None
    return model


def _usage_for_audit(usage: dict | None) -> dict | None:
    """Responses usage (input/output tokens) or chat usage -> the audit's prompt/completion tokens."""
    if not usage:
        return None
    if "input_tokens" in usage:
        return {"prompt_tokens": int(usage.get("input_tokens") or 0),
                "completion_tokens": int(usage.get("output_tokens") or 0)}
    return {"prompt_tokens": int(usage.get("prompt_tokens") or 0),
            "completion_tokens": int(usage.get("completion_tokens") or 0)}


def _passthrough_body(body: dict) -> dict:
    return {k: v for k, v in body.items() if k not in OWN_FIELDS and k != "stream"}


async def responses(state: ProxyState, req: ResponsesRequest, *, token: str | None, session: str | None):
    from fastapi.responses import JSONResponse, StreamingResponse

    from router.safe_text import check_value

    body = req.model_dump(exclude_unset=True)
    check_value(body)  # everything that may go upstream, before any work (as on the other two APIs)
    messages, params = to_chat_request(body)  # validates and refuses stateful requests before routing
    d = await decide(state, routed_model(state.registry, req.model), messages, tolerance=req.tolerance,
                     models=req.models, session=session, token=token, stream=req.stream)
    if d.gate is not None and d.gate.outgoing is not None:
        # A redact rule matched: only the masked chat translation may leave, never the raw body.
        messages, body = outgoing(d, messages), {**body, "_redacted": True}
    ids = ResponseIds(d.request_id)
    if req.stream:
        slot, events = await _open_stream(state, d, body, messages, params, ids)
        headers = {**router_headers(d, slot), "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)
    attempts: list[Attempt] = []
    errors: list[UpstreamError] = []
    for slot in d.plan:
        try:
            if slot.upstream_api == "responses" and not body.get("_redacted"):
                out, tries = await responses_backend.create(state.backend, slot, _passthrough_body(body))
                attempts.extend(tries)
                usage = out.get("usage")
            else:
                _, res, tries = await chat_with_failover(state.backend, [slot], messages, **params)
                attempts.extend(tries)
                out = to_response(res.raw, body, ids, slot.model)
                usage = res.usage
        except MissingKeyError as exc:
            attempts.append(_missing_key_attempt(slot, exc))
            errors.append(exc)
            continue
        except UpstreamError as exc:
            attempts.extend(exc.attempts)
            errors.append(exc)
            continue
        remember(state, d, slot)
        out["model"] = slot.model
        out["router"] = router_info(d, slot, attempts)
        audit = audit_after_response(state, d, api="responses", selected=slot, attempts=attempts,
                                     usage=_usage_for_audit(usage))
        return JSONResponse(out, headers=router_headers(d, slot), background=audit)
    raise fail(state, d, final_error(errors, attempts), "responses") from None


async def _open_stream(state: ProxyState, d: Decision, body: dict, messages: list[dict], params: dict,
                       ids: ResponseIds) -> tuple[Slot, AsyncIterator[str]]:
    """The first slot of the plan that starts streaming, and the event relay for it."""
    attempts: list[Attempt] = []
    errors: list[UpstreamError] = []
    for slot in d.plan:
        try:
            if slot.upstream_api == "responses" and not body.get("_redacted"):
                agen = responses_backend.stream(state.backend, slot, _passthrough_body(body), attempts)
                first = await agen.__anext__()
                return slot, _relay_passthrough(state, d, slot, first, agen, attempts)
            st = await open_stream_with_failover(state.backend, [slot], messages, **params)
            st.attempts[:0] = attempts  # in place: the backend appends the closing try to this list
            return slot, _relay_chat(state, d, st, ResponsesStream(body, ids, slot.model))
        except StopAsyncIteration:
            errors.append(UpstreamError(f"{slot.name}: empty stream", status=502, attempts=list(attempts)))
        except MissingKeyError as exc:
            attempts.append(_missing_key_attempt(slot, exc))
            errors.append(exc)
        except UpstreamError as exc:
            if exc.attempts is not attempts:  # a passthrough stream fills `attempts` itself
                attempts.extend(exc.attempts)
            errors.append(exc)
    raise fail(state, d, final_error(errors, attempts), "responses") from None


async def _relay_chat(state: ProxyState, d: Decision, st, tr: ResponsesStream) -> AsyncIterator[str]:
    status, error = "client_closed", None
    try:
        for ev in tr.start():
            yield ev
        try:
            async for chunk in st.rest():
                for ev in tr.feed(chunk):
                    yield ev
        except UpstreamError as exc:
            status, error = "error", str(exc)
            for ev in tr.failed(f"upstream stream failed midway: {exc}", {"router": router_info(d, st.slot,
                                                                                                 st.attempts)}):
                yield ev
            return
        status = "ok"
        remember(state, d, st.slot)
        for ev in tr.finish({"router": router_info(d, st.slot, st.attempts)}):
            yield ev
    finally:
        write_audit(state, d, api="responses", selected=st.slot, attempts=st.attempts,
                    usage=_usage_for_audit(tr.usage), status=status, error=error)
        with anyio.CancelScope(shield=True):
            await st.aclose()


def _sse(kind: str, event: dict) -> str:
    import json

    return f"event: {kind}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"


async def _relay_passthrough(state: ProxyState, d: Decision, slot: Slot, first: tuple[str, dict], agen,
                             attempts: list[Attempt]) -> AsyncIterator[str]:
    """The upstream's events as sent, with our destination as the response's model and the
    decision added to the final response."""
    status, error, usage = "client_closed", None, None
    terminal = ("response.completed", "response.incomplete", "response.failed")

    def rewrite(kind: str, event: dict) -> dict:
        nonlocal usage
        resp = event.get("response")
        if isinstance(resp, dict):
            resp = {**resp, "model": slot.model}
            if kind in terminal:
                usage = resp.get("usage") or usage
                resp["router"] = router_info(d, slot, attempts)
            event = {**event, "response": resp}
        return event

    try:
        kind, event = first
        yield _sse(kind, rewrite(kind, event))
        try:
            async for kind, event in agen:
                yield _sse(kind, rewrite(kind, event))
        except UpstreamError as exc:
            status, error = "error", str(exc)
            yield _sse("error", {"type": "error", "code": "upstream_stream_broken", "param": None,
                                 "message": f"upstream stream failed midway: {exc}"})
            return
        status = "ok"
        remember(state, d, slot)
    finally:
        write_audit(state, d, api="responses", selected=slot, attempts=attempts, usage=_usage_for_audit(usage),
                    status=status, error=error)
        with anyio.CancelScope(shield=True):
            await agen.aclose()
