"""An OpenAI-compatible endpoint for a local chat model (`python -m router serve-local`).

    POST /v1/chat/completions   (stream or not; usage token counts; greedy by default)
    GET  /v1/models             the one model served
    GET  /health

Errors use OpenAI's error body. Generation runs in the threadpool, one request at a time (the
model holds a lock), so /health stays responsive while an answer is being written.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from router.errors import InputError
from router.sse import DONE, sse

DEFAULT_MAX_TOKENS = 256
MAX_TOKENS_LIMIT = 1024  # a bound per request, so one call cannot hold the model for minutes


def _error(status: int, message: str, type_: str = "invalid_request_error", param: str | None = None):
    return JSONResponse({"error": {"message": message, "type": type_, "param": param, "code": None}},
                        status_code=status)


def parse_request(body: Any, served: str, max_tokens_limit: int = MAX_TOKENS_LIMIT) -> dict[str, Any]:
    """Validate a chat-completions body; raises InputError naming the field."""
    if not isinstance(body, dict):
        raise InputError("body: expected a JSON object")
    model = body.get("model")
    if model not in (None, "", served):
        raise LookupError(f"model {model!r} is not served here; this endpoint serves {served!r}")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InputError("messages: expected a non-empty array of {role, content} objects")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    max_tokens = DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= max_tokens_limit:
        raise InputError(f"max_tokens: expected an integer in [1, {max_tokens_limit}], got {max_tokens!r}")
    temperature = body.get("temperature", 0.0)
    if temperature is None:
        temperature = 0.0
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
        raise InputError(f"temperature: expected a number in [0, 2], got {temperature!r}")
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise InputError("stop: expected a string or an array of strings")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InputError("seed: expected an integer")
    opts = body.get("stream_options") or {}
    return {"messages": messages, "max_tokens": max_tokens, "temperature": float(temperature), "stop": stop,
            "seed": seed, "stream": bool(body.get("stream")),
            "include_usage": bool(isinstance(opts, dict) and opts.get("include_usage"))}


def _usage(gen) -> dict[str, int]:
    return {"prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens,
            "total_tokens": gen.prompt_tokens + gen.completion_tokens}


def _sse_events(model, req: dict[str, Any], cid: str, created: int) -> Iterator[str]:
    from router.local.model import Generation

    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        c = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model.name,
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return sse(c)

    yield chunk({"role": "assistant", "content": ""})
    final = None
    for piece in model.stream(req["messages"], max_tokens=req["max_tokens"], temperature=req["temperature"],
                              stop=req["stop"], seed=req["seed"]):
        if isinstance(piece, Generation):
            final = piece
        else:
            yield chunk({"content": piece})
    yield chunk({}, final.finish_reason)
    if req["include_usage"]:
        yield sse({"id": cid, "object": "chat.completion.chunk", "created": created,
                   "model": model.name, "choices": [], "usage": _usage(final)})
    yield sse(DONE)


def create_local_app(model, max_tokens_limit: int = MAX_TOKENS_LIMIT):
    """FastAPI app serving `model` (a LocalChatModel or anything with .name, .stream, .chat)."""
    app = FastAPI(title=f"local {model.name}", docs_url=None, redoc_url=None)
    started = int(time.time())

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": model.name}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": model.name, "object": "model", "created": started,
                                            "owned_by": "local"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "body: not valid JSON")
        try:
            req = parse_request(body, model.name, max_tokens_limit)
            model.prompt_ids(req["messages"])  # bad roles fail here as a 400, not mid-stream
        except LookupError as exc:
            return _error(404, str(exc), "not_found_error", "model")
        except InputError as exc:
            return _error(400, str(exc))
        cid = f"chatcmpl-local-{uuid.uuid4().hex[:12]}"
        created = int(time.time())
        if req["stream"]:
            # a sync iterator: Starlette walks it in the threadpool, and a client that hangs up
            # closes it, which releases the model lock
            return StreamingResponse(_sse_events(model, req, cid, created), media_type="text/event-stream")
        gen = await run_in_threadpool(model.chat, req["messages"], max_tokens=req["max_tokens"],
                                      temperature=req["temperature"], stop=req["stop"], seed=req["seed"])
        return {"id": cid, "object": "chat.completion", "created": created, "model": model.name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": gen.text},
                             "finish_reason": gen.finish_reason}], "usage": _usage(gen)}

    return app
