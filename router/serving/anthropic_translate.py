"""Anthropic Messages <-> OpenAI chat completions, as pure functions over dicts.

Requests: `system` becomes a system message; text blocks join into a string; images become
image_url parts; assistant `tool_use` blocks become `tool_calls`; user `tool_result` blocks become
`tool` messages; `tools`/`tool_choice`/`stop_sequences`/`top_k` map to their OpenAI forms.
Responses: text and tool calls become content blocks; finish_reason becomes stop_reason; usage
becomes input/output tokens. `StreamTranslator` turns OpenAI chunks into the standard event
sequence: message_start, content_block_start, ping, content_block_delta..., content_block_stop,
message_delta, message_stop.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from router.errors import InputError

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}


def _text_of(blocks: Any) -> str:
    if isinstance(blocks, str):
        return blocks
    if isinstance(blocks, list):
        return "\n".join(str(b.get("text", "")) for b in blocks if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _image_part(block: dict) -> dict | None:
    src = block.get("source") or {}
    if src.get("type") == "base64" and src.get("data"):
        url = f"data:{src.get('media_type', 'image/png')};base64,{src['data']}"
    elif src.get("type") == "url" and src.get("url"):
        url = src["url"]
    else:
        return None
    return {"type": "image_url", "image_url": {"url": url}}


def _content(parts: list[dict]) -> str | list[dict]:
    """Only text: one string (every OpenAI-compatible server takes it); else the parts array."""
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def to_openai_messages(messages: Iterable[dict], system: Any = None) -> list[dict]:
    out: list[dict] = []
    sys_text = _text_of(system)
    if sys_text:
        out.append({"role": "system", "content": sys_text})
    for i, m in enumerate(messages):
        role, content = m.get("role"), m.get("content")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            continue
        if not isinstance(content, list):
            raise InputError(f"messages[{i}].content: must be a string or an array of content blocks")
        parts: list[dict] = []
        tool_calls: list[dict] = []
        for j, b in enumerate(content):
            if not isinstance(b, dict):
                raise InputError(f"messages[{i}].content[{j}]: must be a content block object")
            kind = b.get("type")
            if kind in ("image", "document") and not isinstance(b.get("source") or {}, dict):
                raise InputError(f"messages[{i}].content[{j}].source: must be an object such as "
                                 f"{{\"type\": \"base64\", \"media_type\": ..., \"data\": ...}}, "
                                 f"got {type(b['source']).__name__}")
            if kind == "text":
                parts.append({"type": "text", "text": str(b.get("text", ""))})
            elif kind == "image":
                img = _image_part(b)
                if img:
                    parts.append(img)
            elif kind == "document" and (b.get("source") or {}).get("type") == "text":
                parts.append({"type": "text", "text": str(b["source"].get("data", ""))})
            elif kind == "tool_use" and role == "assistant":
                tool_calls.append({"id": str(b.get("id", f"call_{i}_{j}")), "type": "function",
                                   "function": {"name": str(b.get("name", "")),
                                                "arguments": json.dumps(b.get("input") or {})}})
            elif kind == "tool_result":
                text = _text_of(b.get("content")) if not isinstance(b.get("content"), str) else b["content"]
                if b.get("is_error"):
                    text = f"[tool error] {text}"
                out.append({"role": "tool", "tool_call_id": str(b.get("tool_use_id", "")), "content": text})
            # thinking / redacted_thinking / unknown blocks: nothing an OpenAI upstream can use
        if role == "assistant" and tool_calls:
            msg: dict[str, Any] = {"role": "assistant", "content": _content(parts) if parts else None,
                                   "tool_calls": tool_calls}
            out.append(msg)
        elif parts:
            out.append({"role": role, "content": _content(parts)})
    return out


def to_openai_tools(tools: list[dict] | None, tool_choice: dict | None) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if tools:
        extra["tools"] = [{"type": "function", "function": {
            "name": t.get("name"), "description": t.get("description", ""),
            "parameters": t.get("input_schema") or {"type": "object", "properties": {}}}}
            for t in tools if isinstance(t, dict) and t.get("name")]
    if tool_choice:
        kind = tool_choice.get("type")
        if kind == "auto":
            extra["tool_choice"] = "auto"
        elif kind == "any":
            extra["tool_choice"] = "required"
        elif kind == "none":
            extra["tool_choice"] = "none"
        elif kind == "tool" and tool_choice.get("name"):
            extra["tool_choice"] = {"type": "function", "function": {"name": tool_choice["name"]}}
        if tool_choice.get("disable_parallel_tool_use"):
            extra["parallel_tool_calls"] = False
    return extra


def stop_info(finish_reason: str | None, matched: Any, stop_sequences: list[str] | None) -> tuple[str, str | None]:
    """(stop_reason, stop_sequence). vLLM reports the matched stop string as `stop_reason`."""
    if finish_reason == "stop" and isinstance(matched, str) and stop_sequences and matched in stop_sequences:
        return "stop_sequence", matched
    return STOP_REASONS.get(finish_reason or "stop", "end_turn"), None


def _tool_input(arguments: Any) -> dict:
    if isinstance(arguments, dict):
        return arguments
    try:
        value = json.loads(arguments or "{}")
    except (TypeError, ValueError):
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"_value": value}


def to_anthropic_message(raw: dict, *, msg_id: str, model: str, stop_sequences: list[str] | None = None) -> dict:
    choice = (raw.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    blocks: list[dict] = []
    text = message.get("content")
    if isinstance(text, str) and text:
        blocks.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        blocks.append({"type": "tool_use", "id": call.get("id") or f"toolu_{len(blocks)}",
                       "name": fn.get("name", ""), "input": _tool_input(fn.get("arguments"))})
    if not blocks:
        blocks.append({"type": "text", "text": ""})
    reason, seq = stop_info(choice.get("finish_reason"), choice.get("stop_reason"), stop_sequences)
    usage = raw.get("usage") or {}
    return {"id": msg_id, "type": "message", "role": "assistant", "model": model, "content": blocks,
            "stop_reason": reason, "stop_sequence": seq,
            "usage": {"input_tokens": int(usage.get("prompt_tokens") or 0),
                      "output_tokens": int(usage.get("completion_tokens") or 0)}}


def sse_event(kind: str, data: dict) -> str:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data}, separators=(',', ':'))}\n\n"


class StreamTranslator:
    """One per stream: feed OpenAI chunks, get Anthropic SSE event strings back."""

    def __init__(self, msg_id: str, model: str, input_tokens: int = 0, stop_sequences: list[str] | None = None):
        self.msg_id, self.model, self.input_tokens = msg_id, model, input_tokens
        self.stop_sequences = stop_sequences
        self.index = -1  # index of the open content block
        self.open_kind: str | None = None
        self.tool_index: dict[int, int] = {}  # OpenAI tool_call index -> our block index
        self.pinged = False
        self.finish: str | None = None
        self.matched: Any = None
        self.usage: dict[str, int] | None = None

    def start(self) -> list[str]:
        return [sse_event("message_start", {"message": {
            "id": self.msg_id, "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 0}}})]

    def _open(self, kind: str, block: dict) -> list[str]:
        out = self._close()
        self.index += 1
        self.open_kind = kind
        out.append(sse_event("content_block_start", {"index": self.index, "content_block": block}))
        if not self.pinged:
            self.pinged = True
            out.append(sse_event("ping", {}))
        return out

    def _close(self) -> list[str]:
        if self.open_kind is None:
            return []
        self.open_kind = None
        return [sse_event("content_block_stop", {"index": self.index})]

    def feed(self, chunk: dict) -> list[str]:
        out: list[str] = []
        if chunk.get("usage"):
            u = chunk["usage"]
            self.usage = {"prompt_tokens": int(u.get("prompt_tokens") or 0),
                          "completion_tokens": int(u.get("completion_tokens") or 0)}
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                if self.open_kind != "text":
                    out += self._open("text", {"type": "text", "text": ""})
                out.append(sse_event("content_block_delta", {"index": self.index,
                                                             "delta": {"type": "text_delta", "text": text}}))
            for call in delta.get("tool_calls") or []:
                k = int(call.get("index", 0))
                fn = call.get("function") or {}
                if k not in self.tool_index:
                    out += self._open("tool_use", {"type": "tool_use", "id": call.get("id") or f"toolu_{k}",
                                                   "name": fn.get("name", ""), "input": {}})
                    self.tool_index[k] = self.index
                if fn.get("arguments") and self.tool_index[k] == self.index:
                    out.append(sse_event("content_block_delta", {"index": self.index, "delta": {
                        "type": "input_json_delta", "partial_json": fn["arguments"]}}))
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
                self.matched = choice.get("stop_reason")
        return out

    def finish_events(self, extra: dict | None = None) -> list[str]:
        out: list[str] = []
        if self.index < 0:
            out += self._open("text", {"type": "text", "text": ""})
        out += self._close()
        reason, seq = stop_info(self.finish, self.matched, self.stop_sequences)
        usage = {"output_tokens": (self.usage or {}).get("completion_tokens", 0)}
        if self.usage:
            usage["input_tokens"] = self.usage["prompt_tokens"]
        out.append(sse_event("message_delta", {"delta": {"stop_reason": reason, "stop_sequence": seq},
                                               "usage": usage, **(extra or {})}))
        out.append(sse_event("message_stop", {}))
        return out
