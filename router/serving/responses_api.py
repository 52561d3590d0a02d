"""POST /v1/responses: OpenAI's Responses API (the OpenAI Agents SDK's default, Codex CLI), routed
like chat completions and sent upstream as a chat completion (router.serving.responses_translate),
or passed through as-is to slots whose upstream speaks Responses (`upstream_api: responses`).

The decision travels as on /v1/chat/completions: the `router` object in the response body (for a
stream: in the response of its response.completed event) and the X-Router-* headers. A client's own
OpenAI model names (`gpt-*`, `o1`/`o3`/`o4*`, `codex-*`, `chatgpt-*`) route with the default
policy, as `claude-*` names do on /v1/messages, so an SDK's default model works unchanged. Failover
follows the plan; a stream fails over only before its first event. Streams go through the shared
relay (router.serving.relay: `started` line, one final audit line on success, upstream break,
translation error or client hang-up); a non-streamed call is cancelled when its client hangs up.
"""

from __future__ import annotations

import re
from typing import Any

from router.errors import MissingKeyError, UpstreamError
from router.routing.costs import normalize_usage
from router.routing.pool import Slot
from router.serving.guard import audit_on_error, unless_disconnected
from router.serving.pipeline import (
    Decision,
    ProxyState,
    audit_after_response,
    decide,
    estimated_usage,
    fail,
    hold_mover,
    outgoing,
    remember,
    router_headers,
    router_info,
    untranslatable,
)
from router.serving.relay import Translator, stream_response
from router.serving.responses_translate import OWN_FIELDS, ResponseIds, ResponsesStream, to_chat_request, to_response
from router.serving.schemas import ResponsesRequest
from router.upstream import responses_backend
from router.upstream.backends import Attempt
from router.upstream.failover import (
    OpenStream,
    _missing_key_attempt,
    chat_with_failover,
    final_error,
    open_stream_with_failover,
    ready_to_try,
)

OPENAI_NAMES = re.compile(r"^(gpt-|o[1-9]|codex|chatgpt-|computer-use)", re.IGNORECASE)


def routed_model(registry, model: str | None) -> str | None:
    """An OpenAI model name that is no policy or slot of ours routes with the default policy."""
    if model and OPENAI_NAMES.match(model) and model not in registry.policies:
        if model not in {n for r in registry for n in r.pool.names}:
            return None
    return model


def _usage_for_audit(usage: dict | None) -> dict | None:
    """Responses usage (input/output tokens and their details) or chat usage -> the audit's usage."""
    if not usage:
        return None
    if "input_tokens" in usage:
        usage = {"prompt_tokens": usage.get("input_tokens"), "completion_tokens": usage.get("output_tokens"),
                 "prompt_tokens_details": usage.get("input_tokens_details"),
                 "completion_tokens_details": usage.get("output_tokens_details")}
    return normalize_usage(usage)


def _speaks_responses(slot: Slot, body: dict) -> bool:
    """The body goes through as-is: the slot's upstream speaks Responses, and no redact rule matched
    (then only the masked chat translation may leave)."""
    return slot.upstream_api == "responses" and not body.get("_redacted")


def _passthrough_body(body: dict) -> dict:
    return {k: v for k, v in body.items() if k not in OWN_FIELDS and k != "stream"}


async def responses(state: ProxyState, req: ResponsesRequest, *, token: str | None, session: str | None,
                    request=None):
    from router.safe_text import check_value

    body = req.model_dump(exclude_unset=True)
    check_value(body)  # everything that may go upstream, before any work (as on the other two APIs)
    messages, params = to_chat_request(body)  # validates and refuses stateful requests before routing
    d = await decide(state, routed_model(state.registry, req.model), messages, tolerance=req.tolerance,
                     models=req.models, session=session, token=token, stream=req.stream,
                     fields={k: v for k, v in body.items() if k not in ("input", "instructions")}, api="responses",
                     max_output=req.max_output_tokens)
    if d.gate is not None and d.gate.outgoing is not None:
        # A redact rule matched: only the masked chat translation may leave, never the raw body.
        messages, body = outgoing(d, messages), {**body, "_redacted": True}
    with audit_on_error(state, d, "responses"):
        return await _answer(state, d, req, body, messages, params, request)


async def _answer(state: ProxyState, d: Decision, req, body: dict, messages: list[dict], params: dict, request):
    from fastapi.responses import JSONResponse

    ids = ResponseIds(d.request_id)
    if req.stream:
        # A client that hangs up before the first event cancels the wait (ClientClosed, audited above).
        st, tr = await unless_disconnected(request, _open_stream(state, d, body, messages, params, ids))
        return stream_response(state, d, "responses", st, tr, router_headers(d, st.slot))
    slot, out, attempts, usage = await unless_disconnected(request, _create(state, d, body, messages, params, ids))
    remember(state, d, slot)
    out["model"] = slot.model
    out["router"] = router_info(d, slot, attempts)
    usage, extra = _usage_for_audit(usage), None
    if usage is None:  # a pass-through upstream sent no usable usage: estimated, never billed as $0
        usage, extra = estimated_usage(d, _answer_text(out)), {"usage_estimated": True}
    audit = audit_after_response(state, d, api="responses", selected=slot, attempts=attempts, usage=usage,
                                 extra=extra)
    return JSONResponse(out, headers=router_headers(d, slot), background=audit)


def _answer_text(out: dict) -> str:
    """The text of a Responses object's message items (what an estimate of its output counts)."""
    parts = []
    for item in out.get("output") or []:
        if isinstance(item, dict) and item.get("type") == "message":
            parts += [str(c.get("text") or "") for c in item.get("content") or [] if isinstance(c, dict)]
    return "".join(parts)


async def _create(state: ProxyState, d: Decision, body: dict, messages: list[dict], params: dict,
                  ids: ResponseIds) -> tuple[Slot, dict, list[Attempt], dict | None]:
    """The first slot of the plan that answers: (slot, Responses object, attempts, its usage)."""
    attempts: list[Attempt] = []
    errors: list[UpstreamError] = []
    move_hold = hold_mover(state, d)
    for slot in d.plan:
        if d.deadline.expired:
            break
        if not ready_to_try(slot, move_hold, attempts, errors):
            continue
        try:
            if _speaks_responses(slot, body):
                out, tries = await responses_backend.create(state.backend, slot, _passthrough_body(body),
                                                            d.deadline)
                attempts.extend(tries)
                return slot, out, attempts, out.get("usage")
            _, res, tries = await chat_with_failover(state.backend, [slot], messages, deadline=d.deadline, **params)
        except MissingKeyError as exc:
            attempts.append(_missing_key_attempt(slot, exc))
            errors.append(exc)
            continue
        except UpstreamError as exc:
            attempts.extend(exc.attempts)
            errors.append(exc)
            continue
        attempts.extend(tries)
        try:
            return slot, to_response(res.raw, body, ids, slot.model), attempts, res.usage
        except Exception as exc:  # a malformed answer (the upstream billed it all the same)
            raise untranslatable(state, d, "responses", slot, attempts, res.usage, exc) from None
    raise fail(state, d, final_error(errors, attempts, d.deadline), "responses") from None


async def _open_stream(state: ProxyState, d: Decision, body: dict, messages: list[dict], params: dict,
                       ids: ResponseIds) -> tuple[OpenStream, Translator]:
    """The first slot of the plan that starts streaming (as chat, or passed through), and its translator."""

    def passthrough(slot: Slot, attempts: list[Attempt]):
        if _speaks_responses(slot, body):
            return responses_backend.stream(state.backend, slot, _passthrough_body(body), attempts, d.deadline)
        return None  # a chat-completions stream

    try:
        st = await open_stream_with_failover(state.backend, d.plan, messages, deadline=d.deadline,
                                             opener=passthrough, before_try=hold_mover(state, d), **params)
    except UpstreamError as exc:
        raise fail(state, d, exc, "responses") from None
    if _speaks_responses(st.slot, body):
        return st, Passthrough(d, st.slot, st.attempts)
    return st, ChatToResponses(ResponsesStream(body, ids, st.slot.model))


class ChatToResponses(Translator):
    """Upstream chat chunks -> the Responses event sequence (responses_translate.ResponsesStream)."""

    def __init__(self, tr: ResponsesStream):
        self.tr = tr

    def start(self) -> list[str]:
        return self.tr.start()

    def feed(self, chunk: dict) -> list[str]:
        return self.tr.feed(chunk)

    def finish(self, info: dict) -> list[str]:
        if self.tr.usage is None and self.estimate:
            self.tr.usage = self.estimate  # the final response's usage: the relay's count, as audited
        return self.tr.finish({"router": info})

    def broken(self, message: str, info: dict) -> list[str]:
        return self.tr.failed(message, {"router": info})

    def usage(self) -> dict | None:
        return _usage_for_audit(self.tr.usage)


def _sse(kind: str, event: dict) -> str:
    import json

    return f"event: {kind}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"


class Passthrough(Translator):
    """An upstream Responses stream's events as sent, with our destination as the response's model
    and the decision added to the final response."""

    TERMINAL = ("response.completed", "response.incomplete", "response.failed")

    def __init__(self, d: Decision, slot: Slot, attempts: list[Attempt]):
        self.d, self.slot, self.attempts = d, slot, attempts
        self.upstream_usage: dict | None = None

    def feed(self, item: tuple[str, dict]) -> list[str]:
        kind, event = item
        resp = event.get("response")
        if isinstance(resp, dict):
            resp = {**resp, "model": self.slot.model}
            if kind in self.TERMINAL:
                self.upstream_usage = resp.get("usage") or self.upstream_usage
                resp["router"] = router_info(self.d, self.slot, self.attempts)
            event = {**event, "response": resp}
        return [_sse(kind, event)]

    def finish(self, info: dict) -> list[str]:
        return []  # the upstream's terminal event, already relayed, carries the decision

    def broken(self, message: str, info: dict) -> list[str]:
        return [_sse("error", {"type": "error", "code": "upstream_stream_broken", "param": None, "message": message})]

    def usage(self) -> dict | None:
        return _usage_for_audit(self.upstream_usage)

    def meter(self, so_far: Any, item: tuple[str, dict]) -> None:
        kind, event = item
        so_far.note(text=kind == "response.output_text.delta")
