"""OpenAI Responses API <-> chat completions, as pure functions over dicts.

Requests (`to_chat_request`): `instructions` becomes the system message; `input` (a string, or
items: messages with input_text / input_image / input_file parts, `function_call` and
`function_call_output` items) becomes chat messages, consecutive function calls joining the
assistant turn before them; function `tools` and custom (freeform) tools, `tool_choice`,
`max_output_tokens`, `temperature`, `top_p`, `parallel_tool_calls`, `text.format` (json_schema /
json_object) and `user` map to their chat forms. Refused with an InputError (HTTP 400) that names the field: `previous_response_id` and
`conversation` (this proxy keeps no response state: send the whole conversation in `input`),
`item_reference` items, `background: true`, hosted tools (web_search, file_search, computer_use,
code_interpreter, mcp, image_generation ...) and any item or part type with no chat equivalent.
Deliberately not forwarded: `reasoning` and `text.verbosity` (set for the client's model name, not
for the slot the router picks: reasoning is a per-slot `extra_body` setting), earlier turns'
`reasoning` items, `store`, `include`, `truncation`, `metadata` (echoed back, not sent upstream).

A custom tool (Codex's freeform tools, e.g. apply_patch) becomes a function with one string
parameter `input` (its grammar, if any, in the description); its calls come back as
`custom_tool_call` items with that string as `input`, and earlier `custom_tool_call` /
`custom_tool_call_output` items go upstream as the matching tool call and tool message.

Responses (`to_response`): the message becomes a `message` output item (output_text, refusal),
tool calls become `function_call` items (`custom_tool_call` for custom tools), a
`reasoning_content` becomes a `reasoning` item, the finish reason becomes status (length -> incomplete, max_output_tokens), and usage becomes
input/output tokens with their details (cached_tokens, reasoning_tokens; `cost` kept when sent).
`ResponsesStream` turns chat chunks into the Responses event sequence: response.created,
response.in_progress, then per item output_item.added / content_part.added / output_text.delta ... /
output_text.done / content_part.done / output_item.done (function calls: output_item.added /
function_call_arguments.delta ... / function_call_arguments.done / output_item.done; reasoning
deltas: a reasoning item with reasoning_summary_part / reasoning_summary_text events), and
response.completed (or response.incomplete) carrying the same response object a non-streamed call
returns.
"""

from __future__ import annotations

import json
import time
from typing import Any

from router.errors import InputError

HOSTED_TOOLS_HINT = ("this proxy sends requests to chat-completion upstreams, which cannot run OpenAI's hosted "
                     "tools; send function or custom tools only")
OWN_FIELDS = {"tolerance", "models"}


# ---- requests -------------------------------------------------------------------------------

def _text_part(part: dict, where: str) -> dict:
    return {"type": "text", "text": str(part.get("text", ""))}


def _user_part(part: Any, where: str) -> dict:
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if not isinstance(part, dict):
        raise InputError(f"{where}: must be a content part object")
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return _text_part(part, where)
    if kind == "refusal":
        return {"type": "text", "text": str(part.get("refusal", ""))}
    if kind == "input_image":
        if not part.get("image_url"):
            raise InputError(f"{where}: input_image needs image_url (a URL or data URL); file_id needs OpenAI's "
                             "file store, which this proxy does not have")
        img: dict[str, Any] = {"url": part["image_url"]}
        if part.get("detail"):
            img["detail"] = part["detail"]
        return {"type": "image_url", "image_url": img}
    if kind == "input_file":
        f: dict[str, Any] = {}
        if part.get("file_data"):
            f["file_data"] = part["file_data"]
            f["filename"] = part.get("filename") or "file.pdf"
        elif part.get("file_id"):
            f["file_id"] = part["file_id"]
        else:
            raise InputError(f"{where}: input_file needs file_data (with filename) or file_id; file_url cannot be "
                             "sent to a chat-completion upstream")
        return {"type": "file", "file": f}
    raise InputError(f"{where}: content part type {kind!r} is not supported (input_text, input_image, input_file)")


def _content(parts: list[dict]) -> str | list[dict]:
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def _message(item: dict, where: str) -> dict:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise InputError(f"{where}.role: must be user, assistant, system or developer")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise InputError(f"{where}.content: must be a string or an array of content parts")
    parts = [_user_part(p, f"{where}.content[{k}]") for k, p in enumerate(content)]
    if role != "user" and any(p["type"] != "text" for p in parts):
        raise InputError(f"{where}.content: {role} messages take text parts only")
    return {"role": role, "content": _content(parts)}


def _output_text(output: Any, where: str) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        texts = []
        for k, p in enumerate(output):
            if not isinstance(p, dict) or p.get("type") not in ("input_text", "output_text", "text"):
                kind = p.get("type") if isinstance(p, dict) else type(p).__name__
                raise InputError(f"{where}.output[{k}]: part type {kind!r} in a function_call_output is not "
                                 "supported (text parts only)")
            texts.append(str(p.get("text", "")))
        return "\n".join(texts)
    return json.dumps(output)


def to_chat_messages(input_: Any, instructions: Any = None) -> list[dict]:
    out: list[dict] = []
    if instructions:
        if not isinstance(instructions, str):
            raise InputError("instructions: must be a string")
        out.append({"role": "system", "content": instructions})
    if isinstance(input_, str):
        out.append({"role": "user", "content": input_})
        return out
    if not isinstance(input_, list) or not input_:
        raise InputError("input: must be a string or a non-empty array of input items")
    for i, item in enumerate(input_):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise InputError(f"{where}: must be an input item object")
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            out.append(_message(item, where))
        elif kind == "function_call":
            call = {"id": str(item.get("call_id") or item.get("id") or f"call_{i}"), "type": "function",
                    "function": {"name": str(item.get("name", "")), "arguments": str(item.get("arguments") or "{}")}}
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant" and isinstance(last.get("content"), (str, type(None))):
                last.setdefault("tool_calls", []).append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "custom_tool_call":
            call = {"id": str(item.get("call_id") or item.get("id") or f"call_{i}"), "type": "function",
                    "function": {"name": str(item.get("name", "")),
                                 "arguments": json.dumps({"input": str(item.get("input") or "")})}}
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant" and isinstance(last.get("content"), (str, type(None))):
                last.setdefault("tool_calls", []).append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            out.append({"role": "tool", "tool_call_id": str(item.get("call_id", "")),
                        "content": _output_text(item.get("output"), where)})
        elif kind == "reasoning":
            continue  # an earlier turn's reasoning: no chat field carries it
        elif kind == "item_reference":
            raise InputError(f"{where}: item_reference needs stored responses, which this proxy does not keep; "
                             "send the referenced item itself")
        else:
            raise InputError(f"{where}: input item type {kind!r} is not supported (message, function_call, "
                             "function_call_output, reasoning)")
    return out


def to_chat_tools(tools: Any, tool_choice: Any) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if tools:
        if not isinstance(tools, list):
            raise InputError("tools: must be an array")
        chat_tools = []
        for k, t in enumerate(tools):
            kind = t.get("type") if isinstance(t, dict) else None
            if kind not in ("function", "custom"):
                raise InputError(f"tools[{k}]: tool type {kind!r} is a hosted tool; {HOSTED_TOOLS_HINT}")
            if not t.get("name"):
                raise InputError(f"tools[{k}].name: required")
            if kind == "custom":
                chat_tools.append({"type": "function", "function": _custom_as_function(t)})
                continue
            fn: dict[str, Any] = {"name": t["name"], "parameters": t.get("parameters") or
                                  {"type": "object", "properties": {}}}
            if t.get("description"):
                fn["description"] = t["description"]
            if t.get("strict") is not None:
                fn["strict"] = bool(t["strict"])
            chat_tools.append({"type": "function", "function": fn})
        extra["tools"] = chat_tools
    if tool_choice is not None:
        if tool_choice in ("auto", "none", "required"):
            extra["tool_choice"] = tool_choice
        elif isinstance(tool_choice, dict) and tool_choice.get("type") in ("function", "custom") and \
                tool_choice.get("name"):
            extra["tool_choice"] = {"type": "function", "function": {"name": tool_choice["name"]}}
        else:
            raise InputError(f"tool_choice: {tool_choice!r} is not supported (auto, none, required, or "
                             "{'type': 'function', 'name': ...})")
    return extra


def _custom_as_function(t: dict) -> dict:
    desc = str(t.get("description") or "")
    fmt = t.get("format") if isinstance(t.get("format"), dict) else {}
    if fmt.get("type") == "grammar" and fmt.get("definition"):
        desc += f"\n\nThe input must follow this {fmt.get('syntax') or ''} grammar:\n{fmt['definition']}"
    return {"name": t["name"], "description": desc.strip() or f"the {t['name']} tool",
            "parameters": {"type": "object", "properties": {"input": {"type": "string", "description":
                                                                      "the tool's freeform input"}},
                           "required": ["input"]}}


def custom_tool_names(body: dict) -> set[str]:
    tools = body.get("tools")
    if not isinstance(tools, list):
        return set()
    return {str(t["name"]) for t in tools if isinstance(t, dict) and t.get("type") == "custom" and t.get("name")}


def _custom_input(arguments: str) -> str:
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        return arguments  # not the JSON we asked for: hand the raw text to the tool
    return str(value.get("input", "")) if isinstance(value, dict) else str(value)


def _response_format(text: Any) -> dict | None:
    if text is not None and not isinstance(text, dict):
        raise InputError("text: must be an object such as {'format': {'type': 'json_schema', ...}}")
    fmt = (text or {}).get("format")
    if fmt is not None and not isinstance(fmt, dict):
        raise InputError("text.format: must be an object with a type (text, json_object, json_schema)")
    if not fmt or fmt.get("type") == "text":
        return None
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if fmt.get("type") == "json_schema":
        schema = {"name": fmt.get("name") or "response", "schema": fmt.get("schema") or {}}
        if fmt.get("strict") is not None:
            schema["strict"] = bool(fmt["strict"])
        if fmt.get("description"):
            schema["description"] = fmt["description"]
        return {"type": "json_schema", "json_schema": schema}
    raise InputError(f"text.format.type: {fmt.get('type')!r} is not supported (text, json_object, json_schema)")


def refuse_stateful(body: dict) -> None:
    if body.get("previous_response_id"):
        raise InputError("previous_response_id: this proxy keeps no response state (store is always false); "
                         "send the whole conversation in input instead (the Agents SDK does this by default)")
    if body.get("conversation"):
        raise InputError("conversation: this proxy keeps no conversation state; send the whole conversation in input")
    if body.get("background"):
        raise InputError("background: background responses need stored state, which this proxy does not keep")


def to_chat_request(body: dict) -> tuple[list[dict], dict[str, Any]]:
    """(chat messages, Backend params: max_tokens, temperature, stop, extra)."""
    refuse_stateful(body)
    messages = to_chat_messages(body.get("input"), body.get("instructions"))
    extra = to_chat_tools(body.get("tools"), body.get("tool_choice"))
    if body.get("top_p") is not None:
        extra["top_p"] = body["top_p"]
    if body.get("parallel_tool_calls") is not None and extra.get("tools"):
        extra["parallel_tool_calls"] = bool(body["parallel_tool_calls"])
    if body.get("user"):
        extra["user"] = body["user"]
    fmt = _response_format(body.get("text"))
    if fmt:
        extra["response_format"] = fmt
    return messages, {"max_tokens": body.get("max_output_tokens"), "temperature": body.get("temperature"),
                      "stop": None, "extra": extra}


# ---- responses ------------------------------------------------------------------------------

def responses_usage(usage: dict | None) -> dict | None:
    if not usage:
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    out: dict[str, Any] = {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": int((usage.get("prompt_tokens_details") or {})
                                                      .get("cached_tokens") or 0)},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": int((usage.get("completion_tokens_details") or {})
                                                          .get("reasoning_tokens") or 0)},
        "total_tokens": int(usage.get("total_tokens") or prompt + completion)}
    if usage.get("cost") is not None:
        out["cost"] = usage["cost"]
    return out


def _status(finish_reason: str | None) -> tuple[str, dict | None]:
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


class ResponseIds:
    """The ids of one response's items, the same in its stream events and its final object."""

    def __init__(self, request_id: str):
        base = request_id.removeprefix("req_")
        self.response = f"resp_{base}"
        self.message = f"msg_{base}"
        self.reasoning = f"rs_{base}"
        self._base = base

    def call(self, k: int) -> str:
        return f"fc_{self._base}_{k}"


def response_shell(body: dict, ids: ResponseIds, model: str, created: int | None = None) -> dict:
    """Every field the SDK's Response model needs, echoing the request's settings."""
    return {"id": ids.response, "object": "response", "created_at": created or int(time.time()),
            "status": "in_progress", "model": model, "output": [], "error": None, "incomplete_details": None,
            "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
            "metadata": body.get("metadata") or {}, "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": None, "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
            "store": False, "temperature": body.get("temperature"), "text": body.get("text") or
            {"format": {"type": "text"}}, "tool_choice": body.get("tool_choice") or "auto",
            "tools": body.get("tools") or [], "top_p": body.get("top_p"), "truncation": body.get("truncation") or
            "disabled", "usage": None, "user": body.get("user")}


def output_items(message: dict, ids: ResponseIds, custom: set[str] = frozenset()) -> list[dict]:
    items: list[dict] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        items.append({"type": "reasoning", "id": ids.reasoning, "status": "completed",
                      "summary": [{"type": "summary_text", "text": reasoning}]})
    parts: list[dict] = []
    if isinstance(message.get("content"), str) and message["content"]:
        parts.append({"type": "output_text", "text": message["content"], "annotations": [], "logprobs": []})
    if message.get("refusal"):
        parts.append({"type": "refusal", "refusal": message["refusal"]})
    if parts:
        items.append({"type": "message", "id": ids.message, "status": "completed", "role": "assistant",
                      "content": parts})
    for k, call in enumerate(message.get("tool_calls") or []):
        fn = call.get("function") or {}
        if fn.get("name") in custom:
            items.append({"type": "custom_tool_call", "id": ids.call(k), "call_id": call.get("id") or ids.call(k),
                          "name": fn["name"], "input": _custom_input(fn.get("arguments") or "")})
            continue
        items.append({"type": "function_call", "id": ids.call(k), "call_id": call.get("id") or ids.call(k),
                      "name": fn.get("name", ""), "arguments": fn.get("arguments") or "", "status": "completed"})
    if not items:
        items.append({"type": "message", "id": ids.message, "status": "completed", "role": "assistant",
                      "content": [{"type": "output_text", "text": "", "annotations": [], "logprobs": []}]})
    return items


def to_response(raw: dict, body: dict, ids: ResponseIds, model: str) -> dict:
    choice = (raw.get("choices") or [{}])[0]
    out = response_shell(body, ids, model, raw.get("created"))
    status, incomplete = _status(choice.get("finish_reason"))
    out.update(status=status, incomplete_details=incomplete,
               output=output_items(choice.get("message") or {}, ids, custom_tool_names(body)),
               usage=responses_usage(raw.get("usage")))
    return out


def sse(kind: str, data: dict) -> str:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data}, separators=(',', ':'))}\n\n"


class ResponsesStream:
    """One per stream: feed chat chunks, get Responses SSE events back; `finish` ends with
    response.completed carrying the same response object a non-streamed call returns."""

    def __init__(self, body: dict, ids: ResponseIds, model: str):
        self.body, self.ids, self.model = body, ids, model
        self.created = int(time.time())
        self.seq = -1
        self.reasoning: str | None = None  # the reasoning item's summary text once it is open
        self.reasoning_index: int | None = None
        self.reasoning_closed = False
        self.text: str | None = None  # the message item's text once it is open
        self.text_index: int | None = None
        self.text_closed = False
        self.calls: dict[int, dict] = {}  # chat tool_call index -> {output_index, id, call_id, name, arguments}
        self.next_index = 0
        self.finish_reason: str | None = None
        self.usage: dict | None = None  # the upstream's usage chunk, as sent
        self.custom = custom_tool_names(body)  # their input is JSON until the end: sent whole at finish

    def _ev(self, kind: str, **data: Any) -> str:
        self.seq += 1
        return sse(kind, {"sequence_number": self.seq, **data})

    def start(self) -> list[str]:
        shell = response_shell(self.body, self.ids, self.model, self.created)
        return [self._ev("response.created", response=shell), self._ev("response.in_progress", response=shell)]

    def _open_reasoning(self) -> list[str]:
        self.reasoning, self.reasoning_index = "", self.next_index
        self.next_index += 1
        rid, idx = self.ids.reasoning, self.reasoning_index
        item = {"type": "reasoning", "id": rid, "status": "in_progress", "summary": []}
        return [self._ev("response.output_item.added", output_index=idx, item=item),
                self._ev("response.reasoning_summary_part.added", item_id=rid, output_index=idx, summary_index=0,
                         part={"type": "summary_text", "text": ""})]

    def _close_reasoning(self) -> list[str]:
        if self.reasoning is None or self.reasoning_closed:
            return []
        self.reasoning_closed = True
        rid, idx = self.ids.reasoning, self.reasoning_index
        part = {"type": "summary_text", "text": self.reasoning}
        return [self._ev("response.reasoning_summary_text.done", item_id=rid, output_index=idx, summary_index=0,
                         text=self.reasoning),
                self._ev("response.reasoning_summary_part.done", item_id=rid, output_index=idx, summary_index=0,
                         part=part),
                self._ev("response.output_item.done", output_index=idx, item={
                    "type": "reasoning", "id": rid, "status": "completed", "summary": [part]})]

    def _open_text(self) -> list[str]:
        self.text, self.text_index = "", self.next_index
        self.next_index += 1
        item = {"type": "message", "id": self.ids.message, "status": "in_progress", "role": "assistant", "content": []}
        return [self._ev("response.output_item.added", output_index=self.text_index, item=item),
                self._ev("response.content_part.added", item_id=self.ids.message, output_index=self.text_index,
                         content_index=0, part={"type": "output_text", "text": "", "annotations": [], "logprobs": []})]

    def _close_text(self) -> list[str]:
        if self.text is None or self.text_closed:
            return []
        self.text_closed = True
        part = {"type": "output_text", "text": self.text, "annotations": [], "logprobs": []}
        item = {"type": "message", "id": self.ids.message, "status": "completed", "role": "assistant",
                "content": [part]}
        return [self._ev("response.output_text.done", item_id=self.ids.message, output_index=self.text_index,
                         content_index=0, text=self.text, logprobs=[]),
                self._ev("response.content_part.done", item_id=self.ids.message, output_index=self.text_index,
                         content_index=0, part=part),
                self._ev("response.output_item.done", output_index=self.text_index, item=item)]

    def feed(self, chunk: dict) -> list[str]:
        out: list[str] = []
        if chunk.get("usage"):
            self.usage = dict(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or int(choice.get("index") or 0) != 0:
                continue  # the Responses API has one output: other choices (n > 1) have nowhere to go
            delta = choice.get("delta") or {}
            thought = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(thought, str) and thought and not self.reasoning_closed:
                if self.reasoning is None:
                    out += self._open_reasoning()
                self.reasoning += thought
                out.append(self._ev("response.reasoning_summary_text.delta", item_id=self.ids.reasoning,
                                    output_index=self.reasoning_index, summary_index=0, delta=thought))
            text = delta.get("content")
            if isinstance(text, str) and text:
                out += self._close_reasoning()  # reasoning comes before the answer
                if self.text is None:
                    out += self._open_text()
                if not self.text_closed:
                    self.text += text
                    out.append(self._ev("response.output_text.delta", item_id=self.ids.message,
                                        output_index=self.text_index, content_index=0, delta=text, logprobs=[]))
            for call in delta.get("tool_calls") or []:
                k = int(call.get("index") or 0)
                fn = call.get("function") or {}
                if k not in self.calls:
                    out += self._close_reasoning() + self._close_text()  # what came before a tool call is finished
                    c = {"output_index": self.next_index, "id": self.ids.call(k),
                         "call_id": call.get("id") or self.ids.call(k), "name": fn.get("name") or "", "arguments": ""}
                    self.next_index += 1
                    self.calls[k] = c
                    out.append(self._ev("response.output_item.added", output_index=c["output_index"],
                                        item=self._call_item(c, "in_progress")))
                c = self.calls[k]
                if fn.get("arguments"):
                    c["arguments"] += fn["arguments"]
                    if c["name"] not in self.custom:
                        out.append(self._ev("response.function_call_arguments.delta", item_id=c["id"],
                                            output_index=c["output_index"], delta=fn["arguments"]))
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return out

    def _call_item(self, c: dict, status: str) -> dict:
        if c["name"] in self.custom:
            return {"type": "custom_tool_call", "id": c["id"], "call_id": c["call_id"], "name": c["name"],
                    "input": _custom_input(c["arguments"]) if status == "completed" else ""}
        return {"type": "function_call", "id": c["id"], "call_id": c["call_id"], "name": c["name"],
                "arguments": c["arguments"] if status == "completed" else "", "status": status}

    def final(self, extra: dict | None = None) -> dict:
        message: dict[str, Any] = {"content": self.text or None, "reasoning_content": self.reasoning or None}
        if self.calls:
            message["tool_calls"] = [{"id": c["call_id"], "type": "function",
                                      "function": {"name": c["name"], "arguments": c["arguments"]}}
                                     for _, c in sorted(self.calls.items())]
        raw = {"created": self.created, "usage": self.usage,
               "choices": [{"message": message, "finish_reason": self.finish_reason}]}
        resp = to_response(raw, self.body, self.ids, self.model)
        # the items in the order the stream announced them (their output_index)
        index = {self.ids.reasoning: self.reasoning_index, self.ids.message: self.text_index,
                 **{c["id"]: c["output_index"] for c in self.calls.values()}}
        resp["output"] = sorted(resp["output"], key=lambda item: index.get(item["id"]) or 0)
        return {**resp, **(extra or {})}

    def finish(self, extra: dict | None = None) -> list[str]:
        out: list[str] = self._close_reasoning()
        if self.text is None and not self.calls and self.reasoning is None:
            out += self._open_text()
        out += self._close_text()
        for _, c in sorted(self.calls.items()):
            if c["name"] in self.custom:
                text = _custom_input(c["arguments"])
                out.append(self._ev("response.custom_tool_call_input.delta", item_id=c["id"],
                                    output_index=c["output_index"], delta=text))
                out.append(self._ev("response.custom_tool_call_input.done", item_id=c["id"],
                                    output_index=c["output_index"], input=text))
            else:
                out.append(self._ev("response.function_call_arguments.done", item_id=c["id"],
                                    output_index=c["output_index"], name=c["name"], arguments=c["arguments"]))
            out.append(self._ev("response.output_item.done", output_index=c["output_index"],
                                item=self._call_item(c, "completed")))
        resp = self.final(extra)
        kind = "response.completed" if resp["status"] == "completed" else "response.incomplete"
        out.append(self._ev(kind, response=resp))
        return out

    def failed(self, message: str, extra: dict | None = None) -> list[str]:
        resp = {**response_shell(self.body, self.ids, self.model, self.created), "status": "failed",
                "error": {"code": "server_error", "message": message}, **(extra or {})}
        return [self._ev("response.failed", response=resp)]
