"""A real OpenAI-compatible upstream on 127.0.0.1 that tests can tell how to misbehave.

    with UpstreamStub() as stub:
        stub.behave("model-a", answer="Paris", delay=0.2)
        stub.behave("model-b", fail_status=500, fail_times=-1)   # always 500
        ... point a slot at stub.base_url ...
        stub.requests  # what it received (headers and bodies)

Behaviours per destination model id: answer text (default: an echo of the last user turn),
delay (seconds before answering), fail_status + fail_times (-1 = forever), drop_after
(chunks sent before the stream is cut), junk (200 with a body that is not a completion),
usage (override the token counts), no_usage (send none), chunk_delay (seconds between stream chunks), set_cookie (a
Set-Cookie header on the answer), tool_calls (answer with these OpenAI tool calls, finish_reason
tool_calls), finish_reasons (one per choice when the request asks for n > 1).
POST /v1/responses answers in the Responses format (for slots that declare `upstream_api: responses`);
usage and no_usage apply there too (usage then in Responses' shape).
retry_after (a Retry-After header on failures), inject_chunk (a raw chunk sent after a stream's first
piece of text), message_extra (fields merged into a plain answer's message). /v1/responses honours
delay, and chunk_delay between its stream events.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

try:
    from .serving import ServerThread
except ImportError:  # run as a script
    from serving import ServerThread


@dataclass
class Behaviour:
    answer: str | None = None
    delay: float = 0.0
    fail_status: int | None = None
    fail_times: int = 0
    drop_after: int | None = None
    junk: bool = False
    usage: dict[str, int] | None = None
    no_usage: bool = False  # answer without usage (plain: no field; stream: no usage chunk), as some servers do
    chunk_words: int = 1
    chunk_delay: float = 0.0
    set_cookie: str | None = None
    tool_calls: list[dict] | None = None
    finish_reasons: list[str] | None = None
    retry_after: str | None = None  # a Retry-After header on failures (any text: "-1", an HTTP date)
    inject_chunk: dict | None = None  # a stream: this raw chunk after the first piece of text (a malformed one)
    message_extra: dict | None = None  # not streamed: merged into choices[0].message (a malformed answer)
    served: int = field(default=0)


def _words(text: str) -> int:
    return max(1, len(text.split()))


class UpstreamStub:
    def __init__(self, port: int | None = None):
        self._lock = threading.Lock()
        self.behaviours: dict[str, Behaviour] = {}
        self.requests: list[dict[str, Any]] = []
        self.app = self._build()
        self._server = ServerThread(self.app, port=port)

    # ---- control -----------------------------------------------------------------
    def behave(self, model: str, **kwargs) -> Behaviour:
        with self._lock:
            b = Behaviour(**kwargs)
            self.behaviours[model] = b
            return b

    def reset(self) -> None:
        with self._lock:
            self.behaviours.clear()
            self.requests.clear()

    def calls(self, model: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if model is None or r["body"].get("model") == model]

    @property
    def base_url(self) -> str:
        return f"{self._server.url}/v1"

    def start(self) -> UpstreamStub:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> UpstreamStub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- server ------------------------------------------------------------------
    def _take(self, model: str) -> tuple[Behaviour, bool]:
        """The model's behaviour and whether this call must fail."""
        with self._lock:
            b = self.behaviours.get(model) or Behaviour()
            fail = b.fail_status is not None and (b.fail_times < 0 or b.served < b.fail_times)
            b.served += 1
            return b, fail

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.get("/health")
        async def health():
            return {"status": "ok"}

        @app.get("/v1/models")
        async def models():
            with self._lock:
                names = list(self.behaviours)
            return {"object": "list", "data": [{"id": n, "object": "model"} for n in names]}

        @app.post("/v1/chat/completions")
        async def chat(request: Request):
            try:
                body = await request.json()
            except json.JSONDecodeError:
                return JSONResponse({"error": {"message": "bad json"}}, status_code=400)
            with self._lock:
                self.requests.append({"t": time.time(), "headers": dict(request.headers), "body": body})
            model = str(body.get("model", ""))
            b, fail = self._take(model)
            if b.delay:
                await asyncio.sleep(b.delay)
            if fail:
                headers = {"retry-after": "0"} if b.fail_status == 429 else {}
                if b.retry_after is not None:
                    headers["retry-after"] = b.retry_after
                return JSONResponse({"error": {"message": f"stub failure {b.fail_status}", "type": "server_error"}},
                                    status_code=b.fail_status, headers=headers)
            if b.junk:
                return PlainTextResponse("<html>this is not a completion</html>", status_code=200)
            msgs = body.get("messages") or []
            last = next((m.get("content") for m in reversed(msgs) if m.get("role") == "user"), "") or ""
            if not isinstance(last, str):
                last = " ".join(p.get("text", "") for p in last if isinstance(p, dict))
            answer = b.answer if b.answer is not None else f"stub answer from {model}: {last[:60]}"
            prompt_tokens = sum(_words(str(m.get("content", ""))) for m in msgs)
            usage = b.usage or {"prompt_tokens": prompt_tokens, "completion_tokens": _words(answer),
                                "total_tokens": prompt_tokens + _words(answer)}
            if body.get("max_tokens"):
                answer = " ".join(answer.split(" ")[: int(body["max_tokens"])])
            created = int(time.time())
            n = int(body.get("n") or 1)
            if b.tool_calls and msgs and msgs[-1].get("role") == "tool":
                # a conversation that ends in a tool result gets text: the stub calls tools until it has results
                b = Behaviour(**{**b.__dict__, "tool_calls": None})
            if body.get("stream"):
                gen = self._stream_n(model, answer, usage, b, created, n) if n > 1 or b.tool_calls else \
                    self._stream(model, answer, usage, b, created)
                return StreamingResponse(gen, media_type="text/event-stream")
            choices = []
            for i in range(n):
                message: dict[str, Any] = {"role": "assistant", "content": answer}
                if b.tool_calls:
                    message = {"role": "assistant", "content": None, "tool_calls": b.tool_calls}
                choices.append({"index": i, "message": {**message, **(b.message_extra or {})},
                                "finish_reason": self._finish(b, i)})
            return JSONResponse({"id": f"chatcmpl-stub-{created}", "object": "chat.completion", "created": created,
                                 "model": model, "choices": choices, **({} if b.no_usage else {"usage": usage})},
                                headers={"set-cookie": b.set_cookie} if b.set_cookie else None)

        @app.post("/v1/responses")
        async def responses(request: Request):
            body = await request.json()
            with self._lock:
                self.requests.append({"t": time.time(), "headers": dict(request.headers), "body": body,
                                      "path": "/v1/responses"})
            model = str(body.get("model", ""))
            b, fail = self._take(model)
            if b.delay:
                await asyncio.sleep(b.delay)
            if fail:
                return JSONResponse({"error": {"message": f"stub failure {b.fail_status}", "type": "server_error"}},
                                    status_code=b.fail_status)
            answer = b.answer if b.answer is not None else f"stub responses answer from {model}"
            created = int(time.time())
            usage = b.usage if b.usage is not None else {
                "input_tokens": 7, "input_tokens_details": {"cached_tokens": 2}, "output_tokens": _words(answer),
                "output_tokens_details": {"reasoning_tokens": 1}, "total_tokens": 7 + _words(answer)}
            if b.no_usage:
                usage = None
            item = {"type": "message", "id": "msg_stub", "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": answer, "annotations": []}]}
            resp = {"id": f"resp_stub_{created}", "object": "response", "created_at": created, "status": "completed",
                    "model": model, "output": [item], "usage": usage, "parallel_tool_calls": True,
                    "tool_choice": "auto", "tools": [], "error": None, "incomplete_details": None}
            if not body.get("stream"):
                return JSONResponse(resp)

            async def events():
                seq = 0

                async def ev(kind: str, **data) -> str:
                    nonlocal seq
                    seq += 1
                    if seq > 1:
                        await asyncio.sleep(b.chunk_delay)
                    return f"event: {kind}\ndata: {json.dumps({'type': kind, 'sequence_number': seq, **data})}\n\n"

                yield await ev("response.created", response={**resp, "status": "in_progress", "output": []})
                yield await ev("response.output_item.added", output_index=0, item={**item, "status": "in_progress",
                                                                                   "content": []})
                yield await ev("response.content_part.added", item_id="msg_stub", output_index=0, content_index=0,
                               part={"type": "output_text", "text": "", "annotations": []})
                yield await ev("response.output_text.delta", item_id="msg_stub", output_index=0, content_index=0,
                               delta=answer, logprobs=[])
                yield await ev("response.output_text.done", item_id="msg_stub", output_index=0, content_index=0,
                               text=answer, logprobs=[])
                yield await ev("response.content_part.done", item_id="msg_stub", output_index=0, content_index=0,
                               part=item["content"][0])
                yield await ev("response.output_item.done", output_index=0, item=item)
                yield await ev("response.completed", response=resp)

            return StreamingResponse(events(), media_type="text/event-stream")

        return app

    @staticmethod
    def _finish(b: Behaviour, i: int) -> str:
        if b.finish_reasons and i < len(b.finish_reasons):
            return b.finish_reasons[i]
        return "tool_calls" if b.tool_calls else "stop"

    async def _stream_n(self, model: str, answer: str, usage: dict, b: Behaviour, created: int, n: int):
        """n choices interleaved word by word, each ending with its own finish chunk (as OpenAI does);
        or one choice whose tool calls arrive as name chunk + argument pieces."""
        def chunk(choices: list[dict], **extra) -> str:
            c = {"id": f"chatcmpl-stub-{created}", "object": "chat.completion.chunk", "created": created,
                 "model": model, "choices": choices, **extra}
            return f"data: {json.dumps(c)}\n\n"

        if b.tool_calls:
            yield chunk([{"index": 0, "delta": {"role": "assistant", "content": None}, "finish_reason": None}])
            for k, call in enumerate(b.tool_calls):
                fn = call["function"]
                yield chunk([{"index": 0, "delta": {"tool_calls": [{"index": k, "id": call["id"], "type": "function",
                                                                    "function": {"name": fn["name"], "arguments": ""}}]},
                              "finish_reason": None}])
                args = fn["arguments"]
                for piece in (args[: len(args) // 2], args[len(args) // 2:]):
                    yield chunk([{"index": 0, "delta": {"tool_calls": [{"index": k, "function": {"arguments": piece}}]},
                                  "finish_reason": None}])
            yield chunk([{"index": 0, "delta": {}, "finish_reason": self._finish(b, 0)}])
        else:
            words = answer.split(" ")
            for i in range(n):
                yield chunk([{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
            for w, word in enumerate(words):
                for i in range(n):
                    yield chunk([{"index": i, "delta": {"content": word if w == 0 else " " + word},
                                  "finish_reason": None}])
            for i in range(n):
                yield chunk([{"index": i, "delta": {}, "finish_reason": self._finish(b, i)}])
        yield chunk([], usage=usage)
        yield "data: [DONE]\n\n"

    async def _stream(self, model: str, answer: str, usage: dict, b: Behaviour, created: int):
        def chunk(delta: dict, finish: str | None = None, **extra) -> str:
            c = {"id": f"chatcmpl-stub-{created}", "object": "chat.completion.chunk", "created": created,
                 "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
            return f"data: {json.dumps(c)}\n\n"

        yield chunk({"role": "assistant", "content": ""})
        words = answer.split(" ")
        pieces = [" ".join(words[i: i + b.chunk_words]) for i in range(0, len(words), b.chunk_words)]
        for i, piece in enumerate(pieces):
            if b.drop_after is not None and i >= b.drop_after:
                raise ConnectionResetError("stub: stream dropped on purpose")
            yield chunk({"content": piece if i == 0 else " " + piece})
            if i == 0 and b.inject_chunk is not None:
                yield f"data: {json.dumps(b.inject_chunk)}\n\n"
            await asyncio.sleep(b.chunk_delay)
        yield chunk({}, "stop")
        if not b.no_usage:
            yield ("data: " + json.dumps({"id": f"chatcmpl-stub-{created}", "object": "chat.completion.chunk",
                                          "created": created, "model": model, "choices": [], "usage": usage}) + "\n\n")
        yield "data: [DONE]\n\n"


if __name__ == "__main__":
    import sys

    stub = UpstreamStub(port=int(sys.argv[1]) if len(sys.argv) > 1 else None).start()
    print(f"stub upstream at {stub.base_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        stub.stop()
