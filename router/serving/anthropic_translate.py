"""Anthropic Messages <-> OpenAI chat completions, as pure functions over dicts.

Requests: `system` becomes a system message (one text part per block when there are several or
one carries `cache_control`, so the boundaries survive); text blocks join into a string unless one
carries `cache_control` (then parts, each keeping its marker: the backend strips it for upstreams
that do not cache, see router.upstream.adapt); images become image_url parts; `document` blocks
become OpenAI `file` parts (base64 PDF) or text (plain-text and content documents); assistant
`tool_use` blocks become `tool_calls`; user `tool_result` blocks become `tool` messages (images in a
result follow as user image parts); `tools`/`tool_choice`/`stop_sequences`/`top_k` map to their
OpenAI forms. Nothing is dropped silently: a block, a document source or a tool type with no OpenAI
equivalent (server tools such as web_search_20250305) is refused with an InputError (HTTP 400) that
names it. The one deliberate drop: `thinking`/`redacted_thinking` blocks of earlier assistant turns,
which no OpenAI chat field can carry (Anthropic itself strips them from earlier turns).
Responses: text and tool calls become content blocks; finish_reason becomes stop_reason; usage
becomes input/output tokens. `StreamTranslator` turns OpenAI chunks into the standard event
sequence: message_start, content_block_start, ping, content_block_delta..., content_block_stop,
message_delta, message_stop.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from router.errors import InputError
from router.model.encoder import content_text
from router.routing.costs import normalize_usage
from router.sse import sse

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}


def _text_of(blocks: Any) -> str:
    return content_text(blocks) if isinstance(blocks, (str, list)) else ""


def _marked(part: dict, block: dict) -> dict:
    """Carry the block's prompt-caching marker onto the OpenAI part (OpenRouter reads it there)."""
    if isinstance(block.get("cache_control"), dict):
        part["cache_control"] = block["cache_control"]
    return part


def _image_part(block: dict, where: str) -> dict:
    src = block.get("source") or {}
    if src.get("type") == "base64" and src.get("data"):
        url = f"data:{src.get('media_type', 'image/png')};base64,{src['data']}"
    elif src.get("type") == "url" and src.get("url"):
        url = src["url"]
    else:
        raise InputError(f"{where}: image block with source.type {src.get('type')!r} cannot be sent to an "
                         "OpenAI-compatible upstream; send source.type 'base64' (with data) or 'url'")
    return _marked({"type": "image_url", "image_url": {"url": url}}, block)


def _document_part(block: dict, where: str) -> dict:
    """A `document` block as OpenAI accepts it: a base64 PDF becomes a `file` part (OpenAI's and
    OpenRouter's format), a plain-text or content document becomes text (its title first)."""
    src = block.get("source") or {}
    kind = src.get("type")
    title = block.get("title")
    if kind == "base64":
        media = src.get("media_type") or "application/pdf"
        if media != "application/pdf" or not src.get("data"):
            raise InputError(f"{where}: document block with base64 source of media_type {media!r}: only "
                             "application/pdf (with data) can be sent to an OpenAI-compatible upstream")
        name = str(title or "document.pdf")
        if not name.lower().endswith(".pdf"):
            name += ".pdf"
        return _marked({"type": "file", "file": {"filename": name,
                                                 "file_data": f"data:application/pdf;base64,{src['data']}"}}, block)
    if kind == "text":
        text = str(src.get("data", ""))
    elif kind == "content":
        inner = src.get("content")
        if isinstance(inner, list) and any(isinstance(b, dict) and b.get("type") != "text" for b in inner):
            raise InputError(f"{where}: document block with content source: only text blocks inside are supported")
        text = _text_of(inner)
    else:
        raise InputError(f"{where}: document block with source.type {kind!r} cannot be sent to an "
                         "OpenAI-compatible upstream (it cannot fetch URLs or Anthropic file ids); send the PDF "
                         "as source.type 'base64' or the text as source.type 'text'")
    if title:
        text = f"{title}\n\n{text}"
    return _marked({"type": "text", "text": text}, block)


def _content(parts: list[dict]) -> str | list[dict]:
    """Only unmarked text: one string (every OpenAI-compatible server takes it); else the parts array."""
    if all(p["type"] == "text" and "cache_control" not in p for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def system_message(system: Any) -> dict | None:
    """The system prompt: one string when it is one unmarked block, else one text part per block."""
    if system is None or isinstance(system, str):
        return {"role": "system", "content": system} if system else None
    if not isinstance(system, list):
        raise InputError("system: must be a string or an array of text blocks")
    parts = []
    for j, b in enumerate(system):
        if not isinstance(b, dict) or b.get("type") != "text":
            kind = b.get("type") if isinstance(b, dict) else type(b).__name__
            raise InputError(f"system[{j}]: block type {kind!r} is not supported in system (text blocks only)")
        parts.append(_marked({"type": "text", "text": str(b.get("text", ""))}, b))
    parts = [p for p in parts if p["text"] or "cache_control" in p]
    if not parts:
        return None
    if len(parts) == 1 and "cache_control" not in parts[0]:
        return {"role": "system", "content": parts[0]["text"]}
    return {"role": "system", "content": parts}


DROPPED_BLOCKS = {"thinking", "redacted_thinking"}


def _tool_result(b: dict, where: str) -> tuple[str, list[dict]]:
    """(text for the tool message, image parts that follow as user content)."""
    content = b.get("content")
    images: list[dict] = []
    if isinstance(content, str) or content is None:
        text = content or ""
    elif isinstance(content, list):
        texts = []
        for k, inner in enumerate(content):
            kind = inner.get("type") if isinstance(inner, dict) else None
            if kind == "text":
                texts.append(str(inner.get("text", "")))
            elif kind == "image":
                images.append(_image_part(inner, f"{where}.content[{k}]"))
            elif kind == "document":
                part = _document_part(inner, f"{where}.content[{k}]")
                if part["type"] == "text":
                    texts.append(part["text"])
                else:
                    images.append(part)
            else:
                raise InputError(f"{where}.content[{k}]: block type {kind!r} inside tool_result is not supported "
                                 "(text, image and document are)")
        text = "\n".join(texts)
    else:
        raise InputError(f"{where}.content: must be a string or an array of content blocks")
    if b.get("is_error"):
        text = f"[tool error] {text}"
    return text, images


def to_openai_messages(messages: Iterable[dict], system: Any = None) -> list[dict]:
    out: list[dict] = []
    sys_msg = system_message(system)
    if sys_msg:
        out.append(sys_msg)
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
            where = f"messages[{i}].content[{j}]"
            if kind == "text":
                parts.append(_marked({"type": "text", "text": str(b.get("text", ""))}, b))
            elif kind == "image":
                parts.append(_image_part(b, where))
            elif kind == "document":
                parts.append(_document_part(b, where))
            elif kind == "tool_use" and role == "assistant":
                tool_calls.append({"id": str(b.get("id", f"call_{i}_{j}")), "type": "function",
                                   "function": {"name": str(b.get("name", "")),
                                                "arguments": json.dumps(b.get("input") or {})}})
            elif kind == "tool_result" and role == "user":
                text, extra_parts = _tool_result(b, where)
                out.append({"role": "tool", "tool_call_id": str(b.get("tool_use_id", "")), "content": text})
                parts.extend(extra_parts)
            elif kind in DROPPED_BLOCKS and role == "assistant":
                continue  # earlier turns' reasoning: no OpenAI chat field carries it
            else:
                raise InputError(f"{where}: content block type {kind!r} in a {role} message is not supported by "
                                 "the translation to OpenAI-compatible upstreams (supported: text, image, document, "
                                 "tool_use in assistant turns, tool_result in user turns, thinking)")
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
        for k, t in enumerate(tools):
            kind = t.get("type") if isinstance(t, dict) else None
            if not isinstance(t, dict) or kind not in (None, "custom"):
                raise InputError(f"tools[{k}]: tool type {kind!r} is an Anthropic server or built-in tool, which "
                                 "OpenAI-compatible upstreams cannot run; send custom tools (name, description, "
                                 "input_schema) only")
            if not t.get("name"):
                raise InputError(f"tools[{k}].name: required")
        extra["tools"] = [{"type": "function", "function": {
            "name": t.get("name"), "description": t.get("description", ""),
            "parameters": t.get("input_schema") or {"type": "object", "properties": {}}}}
            for t in tools]
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
    return {"id": msg_id, "type": "message", "role": "assistant", "model": model, "content": blocks,
            "stop_reason": reason, "stop_sequence": seq, "usage": anthropic_usage(raw.get("usage") or {})}


def anthropic_usage(usage: dict) -> dict:
    """OpenAI usage -> Anthropic's; cached prompt tokens (OpenAI's and OpenRouter's
    prompt_tokens_details) become cache_read_input_tokens, counted apart from input_tokens as
    Anthropic counts them."""
    cached = int(((usage.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0)
    written = int(((usage.get("prompt_tokens_details") or {}).get("cache_write_tokens")) or 0)
    out = {"input_tokens": max(0, int(usage.get("prompt_tokens") or 0) - cached - written),
           "output_tokens": int(usage.get("completion_tokens") or 0)}
    if cached or written:
        out["cache_read_input_tokens"] = cached
        out["cache_creation_input_tokens"] = written
    return out


def sse_event(kind: str, data: dict) -> str:
    return sse({"type": kind, **data}, event=kind)


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
        self.full_usage: dict | None = None

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
            self.usage = normalize_usage(chunk["usage"])
            self.full_usage = dict(chunk["usage"])
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

    def finish_events(self, extra: dict | None = None, estimate: dict | None = None) -> list[str]:
        """The closing events; `estimate`: the relay's usage when the upstream sent none."""
        out: list[str] = []
        if self.index < 0:
            out += self._open("text", {"type": "text", "text": ""})
        out += self._close()
        reason, seq = stop_info(self.finish, self.matched, self.stop_sequences)
        usage = {"output_tokens": (self.usage or estimate or {}).get("completion_tokens", 0)}
        if self.full_usage:
            usage = anthropic_usage(self.full_usage)
        out.append(sse_event("message_delta", {"delta": {"stop_reason": reason, "stop_sequence": seq},
                                               "usage": usage, **(extra or {})}))
        out.append(sse_event("message_stop", {}))
        return out
