"""POST /v1/responses, driven by the official `openai` SDK (responses.create / responses.stream) and
the OpenAI Agents SDK with its default model, against the real app and the loopback stub, which
records the chat completion each request became (or the Responses body it passed through).
"""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
import yaml

from .proxy_env import POLICY, audit_for, dest, make_registry, serve_api, write_pool

Q = "Write a Python function that returns the n-th Fibonacci number."
CALL = [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]
WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "weather of a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
DETAILED_USAGE = {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16, "cost": 0.00042,
                  "prompt_tokens_details": {"cached_tokens": 3}, "completion_tokens_details": {"reasoning_tokens": 2}}


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=60)


def every_slot(stub, **behaviour):
    for name in ("cheap", "mid", "strong", "best"):
        stub.behave(dest(name), **behaviour)


def test_create_routes_translates_and_reports(client, stub, audit_path):
    every_slot(stub, answer="forty two", usage=DETAILED_USAGE)
    raw = client.responses.with_raw_response.create(model=POLICY, input=Q, instructions="Be brief.",
                                                    max_output_tokens=50, extra_body={"tolerance": 0.3})
    resp = raw.parse()
    info = resp.router
    assert resp.output_text == "forty two" and resp.status == "completed"
    assert resp.model == dest(info["selected"]) and raw.headers["x-router-selected"] == info["selected"]
    assert float(raw.headers["x-router-tolerance"]) == 0.3
    u = resp.usage
    assert (u.input_tokens, u.output_tokens, u.total_tokens) == (11, 5, 16)
    assert u.input_tokens_details.cached_tokens == 3 and u.output_tokens_details.reasoning_tokens == 2
    sent = stub.calls(dest(info["selected"]))[0]["body"]
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": Q}]
    assert sent["max_tokens"] == 50 and "tolerance" not in sent and "input" not in sent
    line = audit_for(audit_path, info["request_id"])
    assert line["api"] == "responses" and line["usage"]["completion_tokens"] == 5


def test_items_and_function_tools_reach_the_upstream_in_chat_shape(client, stub):
    every_slot(stub, tool_calls=CALL)
    resp = client.responses.create(model=POLICY, tools=[WEATHER_TOOL], input=[
        {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"},
                                     {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]}])
    call = next(o for o in resp.output if o.type == "function_call")
    assert (call.name, call.call_id, json.loads(call.arguments)) == ("get_weather", "call_1", {"city": "Paris"})
    sent = stub.calls(resp.model)[0]["body"]
    assert sent["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "weather of a city", "parameters": WEATHER_TOOL["parameters"]}}]
    assert sent["messages"][0]["content"][1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    # the second turn: the call and its output go back as an assistant tool call and a tool message
    resp2 = client.responses.create(model=POLICY, tools=[WEATHER_TOOL], input=[
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny, 21 C"}])
    assert resp2.output_text.startswith("stub answer from")
    msgs = stub.calls(resp2.model)[-1]["body"]["messages"]
    assert msgs[1] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}
    assert msgs[2] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"}


def test_stream_sends_the_responses_event_sequence(client, stub):
    every_slot(stub, answer="one two three", usage=DETAILED_USAGE)
    with client.responses.stream(model=POLICY, input=Q) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[2:4] == ["response.output_item.added", "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "one two three"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.output_text == "one two three" and final.router["selected"]
    assert final.usage.input_tokens_details.cached_tokens == 3 and final.usage.output_tokens_details.reasoning_tokens == 2


def test_stream_with_tool_calls(client, stub):
    every_slot(stub, tool_calls=CALL)
    with client.responses.stream(model=POLICY, input="Weather in Paris?", tools=[WEATHER_TOOL]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert json.loads(deltas) == {"city": "Paris"}
    call = final.output[0]
    assert call.type == "function_call" and call.call_id == "call_1" and json.loads(call.arguments) == {"city": "Paris"}


@pytest.mark.parametrize("kwargs,needle", [
    ({"previous_response_id": "resp_123"}, "previous_response_id"),
    ({"tools": [{"type": "web_search_preview"}]}, "web_search_preview"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "item_reference"),
])
def test_stateful_and_hosted_features_are_refused_clearly(client, stub, kwargs, needle):
    args = {"model": POLICY, "input": Q, **kwargs}
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(**args)
    assert needle in err.value.message
    assert stub.calls() == []


def test_agents_sdk_default_model_runs_a_tool_loop(server, stub):
    agents = pytest.importorskip("agents")
    from agents import Agent, RunConfig, Runner, function_tool
    from agents.models.openai_provider import OpenAIProvider

    every_slot(stub, tool_calls=CALL, answer="It is sunny in Paris.")
    seen = []

    @function_tool
    def get_weather(city: str) -> str:
        """Weather of a city."""
        seen.append(city)
        return "sunny, 21 C"

    async def main():
        client = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        provider = OpenAIProvider(openai_client=client, use_responses=True)
        agent = Agent(name="assistant", instructions="Answer briefly.", tools=[get_weather])  # default model
        return await Runner.run(agent, "What is the weather in Paris?",
                                run_config=RunConfig(model_provider=provider, tracing_disabled=True))

    result = asyncio.run(main())
    assert result.final_output == "It is sunny in Paris." and seen == ["Paris"]
    assert agents.models.get_default_model().startswith("gpt-")  # the SDK's own name, routed by the proxy
    last = stub.calls()[-1]["body"]["messages"]
    assert last[0] == {"role": "system", "content": "Answer briefly."}
    assert last[-1]["role"] == "tool" and last[-1]["content"] == "sunny, 21 C"


@pytest.fixture(scope="module")
def passthrough(stub, tmp_path_factory):
    """A pool whose slots declare that their upstream speaks Responses."""
    path = write_pool(tmp_path_factory.mktemp("rpool"), stub.base_url, policy="respool")
    cfg = yaml.safe_load(path.read_text())
    for m in cfg["models"]:
        m["upstream_api"] = "responses"
    path.write_text(yaml.safe_dump(cfg))
    srv = serve_api(make_registry(path), api_keys=(), backoff=0.01)
    yield srv
    srv.stop()


def test_responses_slots_get_the_body_passed_through(passthrough, stub):
    every_slot(stub, answer="passed through")
    client = openai.OpenAI(base_url=f"{passthrough.url}/v1", api_key="unused", max_retries=0)
    resp = client.responses.create(model="respool", input=Q, instructions="Be brief.", extra_body={"tolerance": 0.5})
    rec = stub.calls(resp.model)[0]
    assert rec["path"] == "/v1/responses"
    assert rec["body"]["input"] == Q and rec["body"]["instructions"] == "Be brief." and "tolerance" not in rec["body"]
    assert resp.output_text == "passed through" and resp.router["selected"] and resp.model == dest(resp.router["selected"])
    assert resp.usage.input_tokens_details.cached_tokens == 2
    with client.responses.stream(model="respool", input=Q) as stream:
        list(stream)
        final = stream.get_final_response()
    assert final.output_text == "passed through" and final.router["selected"]


def test_agents_sdk_streamed_run(server, stub):
    pytest.importorskip("agents")
    from agents import Agent, RunConfig, Runner
    from agents.models.openai_provider import OpenAIProvider

    every_slot(stub, answer="streamed agent answer")

    async def main():
        client = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        run = Runner.run_streamed(Agent(name="assistant"), "Say something.",
                                  run_config=RunConfig(model_provider=OpenAIProvider(openai_client=client,
                                                                                     use_responses=True),
                                                       tracing_disabled=True))
        kinds = [e.type async for e in run.stream_events()]
        return run, kinds

    run, kinds = asyncio.run(main())
    assert run.final_output == "streamed agent answer" and "raw_response_event" in kinds


PATCH_TOOL = {"type": "custom", "name": "apply_patch", "description": "Apply a patch to files.",
              "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/s"}}
PATCH_CALL = [{"id": "call_p", "type": "function",
               "function": {"name": "apply_patch", "arguments": json.dumps({"input": "*** Begin Patch\n+x\n"})}}]


@pytest.mark.parametrize("stream", [False, True])
def test_custom_tools_as_codex_sends_them(client, stub, stream):
    """Codex CLI's freeform tools: a function with one `input` string upstream, custom_tool_call back."""
    every_slot(stub, tool_calls=PATCH_CALL)
    if stream:
        with client.responses.stream(model="gpt-5-codex", input="Fix the bug.", tools=[PATCH_TOOL]) as s:
            events = list(s)
            resp = s.get_final_response()
        done = next(e for e in events if e.type == "response.custom_tool_call_input.done")
        assert done.input == "*** Begin Patch\n+x\n"
    else:
        resp = client.responses.create(model="gpt-5-codex", input="Fix the bug.", tools=[PATCH_TOOL])
    call = resp.output[0]
    assert (call.type, call.name, call.call_id, call.input) == ("custom_tool_call", "apply_patch", "call_p",
                                                                 "*** Begin Patch\n+x\n")
    fn = stub.calls(resp.model)[0]["body"]["tools"][0]["function"]
    assert fn["parameters"]["required"] == ["input"] and "start: /.+/s" in fn["description"]
    # the next turn sends the call and its output back
    resp2 = client.responses.create(model="gpt-5-codex", tools=[PATCH_TOOL], input=[
        {"role": "user", "content": "Fix the bug."},
        {"type": "custom_tool_call", "call_id": "call_p", "name": "apply_patch", "input": "*** Begin Patch\n+x\n"},
        {"type": "custom_tool_call_output", "call_id": "call_p", "output": "Done!"}])
    msgs = stub.calls(resp2.model)[-1]["body"]["messages"]
    assert json.loads(msgs[1]["tool_calls"][0]["function"]["arguments"]) == {"input": "*** Begin Patch\n+x\n"}
    assert msgs[2] == {"role": "tool", "tool_call_id": "call_p", "content": "Done!"}
