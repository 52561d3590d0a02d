"""Pure-function tests of the Responses translation, the per-slot message adaptation, the LiteLLM
circuit breaker and config generator, and the Anthropic usage / document mapping (no servers)."""

from __future__ import annotations

import json

import pytest

from router.errors import InputError
from router.routing.pool import Slot
from router.serving.anthropic_translate import anthropic_usage, to_openai_messages
from router.serving.responses_translate import (
    ResponseIds,
    ResponsesStream,
    responses_usage,
    to_chat_request,
    to_response,
)
from router.upstream.adapt import adapt_messages, supports_cache_control


def slot(**kw) -> Slot:
    base = {"name": "s", "model": "vendor/model", "api_base": "http://127.0.0.1:9/v1", "cost_per_m_input_tokens": 1,
            "cost_per_m_output_tokens": 2}
    return Slot(**{**base, **kw})


# ---- Responses requests ---------------------------------------------------------------------

def test_request_maps_every_supported_field():
    msgs, params = to_chat_request({
        "instructions": "sys", "max_output_tokens": 30, "temperature": 0.5, "top_p": 0.9, "user": "u1",
        "parallel_tool_calls": False, "tool_choice": {"type": "function", "name": "f"},
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True}],
        "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True}},
        "reasoning": {"effort": "none"},
        "input": [{"role": "developer", "content": "dev note"},
                  {"type": "message", "role": "user", "content": [
                      {"type": "input_text", "text": "hi"},
                      {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,JV"}]},
                  {"type": "reasoning", "id": "rs_1", "summary": []},
                  {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "calling"}]},
                  {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                  {"type": "function_call", "call_id": "c2", "name": "f", "arguments": "{\"a\":1}"},
                  {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "r1"}]},
                  {"type": "function_call_output", "call_id": "c2", "output": "r2"}]})
    assert msgs[0] == {"role": "system", "content": "sys"} and msgs[1] == {"role": "developer", "content": "dev note"}
    assert msgs[2]["content"][1] == {"type": "file", "file": {"file_data": "data:application/pdf;base64,JV",
                                                              "filename": "a.pdf"}}
    assert msgs[3] == {"role": "assistant", "content": "calling", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
        {"id": "c2", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]}
    assert msgs[4:] == [{"role": "tool", "tool_call_id": "c1", "content": "r1"},
                        {"role": "tool", "tool_call_id": "c2", "content": "r2"}]
    extra = params["extra"]
    assert params["max_tokens"] == 30 and params["temperature"] == 0.5
    assert extra["tools"] == [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"},
                                                                "strict": True}}]
    assert extra["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert extra["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "out", "schema": {"type": "object"}, "strict": True}}
    assert extra["parallel_tool_calls"] is False and extra["user"] == "u1" and extra["top_p"] == 0.9
    assert "reasoning" not in extra and "reasoning_effort" not in extra


@pytest.mark.parametrize("body,needle", [
    ({"input": "x", "previous_response_id": "resp_1"}, "previous_response_id"),
    ({"input": "x", "conversation": "conv_1"}, "conversation"),
    ({"input": "x", "background": True}, "background"),
    ({"input": [{"type": "computer_call_output", "call_id": "c"}]}, "computer_call_output"),
    ({"input": "x", "tools": [{"type": "file_search"}]}, "file_search"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]}, "file_id"),
    ({"input": "x", "text": {"format": {"type": "grammar"}}}, "text.format.type"),
    ({"input": []}, "input"),
])
def test_request_refusals_name_the_field(body, needle):
    with pytest.raises(InputError, match=needle):
        to_chat_request(body)


def test_response_statuses_and_usage_details():
    ids = ResponseIds("req_abc")
    raw = {"choices": [{"message": {"content": "partial", "refusal": None}, "finish_reason": "length"}],
           "usage": {"prompt_tokens": 9, "completion_tokens": 4, "cost": 0.1,
                     "prompt_tokens_details": {"cached_tokens": 5},
                     "completion_tokens_details": {"reasoning_tokens": 3}}}
    out = to_response(raw, {"input": "x"}, ids, "dest/m")
    assert out["status"] == "incomplete" and out["incomplete_details"] == {"reason": "max_output_tokens"}
    assert out["output"][0]["id"] == "msg_abc" and out["output"][0]["content"][0]["text"] == "partial"
    assert out["usage"] == {"input_tokens": 9, "input_tokens_details": {"cached_tokens": 5}, "output_tokens": 4,
                            "output_tokens_details": {"reasoning_tokens": 3}, "total_tokens": 13, "cost": 0.1}
    assert responses_usage(None) is None


def test_stream_final_response_equals_the_non_streamed_one():
    ids = ResponseIds("req_s")
    body = {"input": "x"}
    tr = ResponsesStream(body, ids, "dest/m")
    events = tr.start()
    for c in [{"choices": [{"index": 0, "delta": {"content": "Hel"}}]},
              {"choices": [{"index": 1, "delta": {"content": "IGNORED"}}]},
              {"choices": [{"index": 0, "delta": {"content": "lo"}}]},
              {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {
                  "name": "f", "arguments": "{\"a\""}}]}}]},
              {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}}]},
              {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
              {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}]:
        events += tr.feed(c)
    events += tr.finish()
    parsed = [json.loads(e.split("data: ", 1)[1]) for e in events]
    final = parsed[-1]["response"]
    raw = {"created": tr.created, "usage": {"prompt_tokens": 3, "completion_tokens": 2},
           "choices": [{"message": {"content": "Hello", "tool_calls": [
               {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
               "finish_reason": "tool_calls"}]}
    assert final == to_response(raw, body, ids, "dest/m")
    assert [p["sequence_number"] for p in parsed] == list(range(len(parsed)))
    added = [p for p in parsed if p["type"] == "response.output_item.added"]
    assert [a["output_index"] for a in added] == [0, 1]


# ---- per-slot adaptation --------------------------------------------------------------------

SYS = {"role": "system", "content": [{"type": "text", "text": "A"},
                                     {"type": "text", "text": "B", "cache_control": {"type": "ephemeral"}}]}
USER = {"role": "user", "content": [{"type": "text", "text": "q", "cache_control": {"type": "ephemeral"}}]}


def test_cache_control_is_decided_by_slot():
    assert supports_cache_control(slot(api_base="https://openrouter.ai/api/v1", model="anthropic/claude-sonnet-4"))
    assert not supports_cache_control(slot(api_base="https://openrouter.ai/api/v1", model="openai/gpt-4o"))
    assert not supports_cache_control(slot(api_base="https://api.openai.com/v1", model="anthropic/x"))
    assert supports_cache_control(slot(cache_control=True))
    assert not supports_cache_control(slot(api_base="https://openrouter.ai/api/v1", model="anthropic/x",
                                           cache_control=False))


def test_adapt_keeps_strips_or_joins():
    keep = adapt_messages(slot(cache_control=True), [SYS, USER])
    assert keep == [SYS, USER]
    strip = adapt_messages(slot(), [SYS, USER])
    assert strip == [{"role": "system", "content": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]},
                     {"role": "user", "content": "q"}]
    local = adapt_messages(slot(local=True), [SYS, USER])
    assert local == [{"role": "system", "content": "A\n\nB"}, {"role": "user", "content": "q"}]
    img = {"role": "user", "content": [{"type": "text", "text": "look"},
                                       {"type": "image_url", "image_url": {"url": "data:x"}}]}
    assert adapt_messages(slot(local=True), [img]) == [img]  # parts with an image stay parts


# ---- Anthropic ------------------------------------------------------------------------------

def test_anthropic_usage_reports_cache_reads_apart():
    assert anthropic_usage({"prompt_tokens": 100, "completion_tokens": 7,
                            "prompt_tokens_details": {"cached_tokens": 60}}) == {
        "input_tokens": 40, "output_tokens": 7, "cache_read_input_tokens": 60, "cache_creation_input_tokens": 0}
    assert anthropic_usage({"prompt_tokens": 5, "completion_tokens": 1}) == {"input_tokens": 5, "output_tokens": 1}


@pytest.mark.parametrize("block,needle", [
    ({"type": "document", "source": {"type": "base64", "media_type": "text/plain", "data": "eA=="}}, "media_type"),
    ({"type": "document", "source": {"type": "file", "file_id": "f"}}, "'file'"),
    ({"type": "image", "source": {"type": "file", "file_id": "f"}}, "image block"),
    ({"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}, "server_tool_use"),
    ({"type": "tool_use", "id": "t", "name": "f", "input": {}}, "'tool_use' in a user message"),
])
def test_anthropic_blocks_refused_with_their_location(block, needle):
    with pytest.raises(InputError, match=needle) as err:
        to_openai_messages([{"role": "user", "content": [{"type": "text", "text": "x"}, block]}])
    assert "messages[0].content[1]" in str(err.value)


def test_anthropic_content_document_and_titles():
    out = to_openai_messages([{"role": "user", "content": [
        {"type": "document", "title": "Notes", "source": {"type": "content", "content": [
            {"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}}]}])
    assert out == [{"role": "user", "content": "Notes\n\none\ntwo"}]


# ---- LiteLLM helpers (no litellm needed) ----------------------------------------------------

def test_circuit_breaker_opens_half_opens_and_closes():
    from router.integrations.litellm_hook import CircuitBreaker

    now = [0.0]
    b = CircuitBreaker(failure_threshold=2, reset_after_s=10, clock=lambda: now[0])
    b.failure()
    assert b.state == "closed"
    b.failure()
    assert b.state == "open" and not b.allow()
    now[0] = 10.0
    assert b.state == "half_open" and b.allow()
    b.failure()  # the trial failed: open again at once
    assert b.state == "open"
    now[0] = 20.0
    b.success()
    assert b.state == "closed" and b.failures == 0


def test_streamed_reasoning_becomes_a_reasoning_item_like_the_non_streamed_one():
    ids = ResponseIds("req_r")
    tr = ResponsesStream({"input": "x"}, ids, "dest/m")
    events = tr.start()
    for c in [{"choices": [{"index": 0, "delta": {"reasoning_content": "think "}}]},
              {"choices": [{"index": 0, "delta": {"reasoning_content": "hard"}}]},
              {"choices": [{"index": 0, "delta": {"content": "42"}, "finish_reason": "stop"}]}]:
        events += tr.feed(c)
    events += tr.finish()
    parsed = [json.loads(e.split("data: ", 1)[1]) for e in events]
    kinds = [p["type"] for p in parsed]
    assert kinds.index("response.reasoning_summary_text.done") < kinds.index("response.output_text.delta")
    raw = {"created": tr.created, "choices": [{"message": {"content": "42", "reasoning_content": "think hard"},
                                               "finish_reason": "stop"}]}
    final = parsed[-1]["response"]
    assert final == to_response(raw, {"input": "x"}, ids, "dest/m")
    assert [o["type"] for o in final["output"]] == ["reasoning", "message"]
