"""The proxy's Anthropic side, driven by the official `anthropic` SDK against the real app and the
loopback upstream stub: translation both ways, the standard stream event sequence, pinning,
tolerance, failover, auth and error shapes.
"""

from __future__ import annotations

import json

import anthropic
import httpx
import pytest

from .proxy_env import POLICY, audit_for, dest, serve_api

Q = "Which planet in the solar system has the most moons?"
SLOTS = ("cheap", "mid", "strong", "best")


@pytest.fixture
def client(server):
    return anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0, timeout=60)


def test_plain_message_with_system_blocks_and_stop_sequences(client, stub, registry, audit_path):
    for s in SLOTS:
        stub.behave(dest(s), answer="Saturn has the most moons")
    raw = client.messages.with_raw_response.create(
        model=POLICY, max_tokens=64, system=[{"type": "text", "text": "You are terse."}],
        stop_sequences=["\n\nHuman:"], extra_body={"tolerance": 0.25},
        thinking={"type": "enabled", "budget_tokens": 32}, metadata={"user_id": "u1"},
        tools=[{"name": "calc", "description": "adds", "input_schema": {"type": "object"}}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "Quick question."},
                                               {"type": "text", "text": Q}]}])
    msg = raw.parse()
    info = msg.router
    assert info["selected"] == registry.get(POLICY).route(f"Quick question.\n{Q}", tolerance=0.25).chosen
    assert msg.model == dest(info["selected"]) and msg.type == "message" and msg.role == "assistant"
    assert msg.content[0].type == "text" and msg.content[0].text == "Saturn has the most moons"
    assert msg.stop_reason == "end_turn"
    assert msg.usage.output_tokens == 5 and msg.usage.input_tokens > 0
    assert raw.headers["x-router-selected"] == info["selected"] and float(raw.headers["x-router-tolerance"]) == 0.25
    sent = stub.calls(msg.model)[0]["body"]
    assert sent["messages"][0] == {"role": "system", "content": "You are terse."}
    assert sent["messages"][1] == {"role": "user", "content": f"Quick question.\n{Q}"}
    assert sent["stop"] == ["\n\nHuman:"] and sent["max_tokens"] == 64
    assert sent["tools"][0]["function"]["name"] == "calc"
    assert "thinking" not in sent and "metadata" not in sent and "tolerance" not in sent
    line = audit_for(audit_path, info["request_id"])
    assert line["api"] == "anthropic" and line["request_id"] == info["request_id"]
    assert line["usage"] == {"prompt_tokens": msg.usage.input_tokens, "completion_tokens": 5}


def test_streaming_follows_the_standard_event_sequence(client, stub):
    for s in SLOTS:
        stub.behave(dest(s), answer="Saturn has the most moons")
    with client.messages.stream(model=POLICY, max_tokens=64, messages=[{"role": "user", "content": Q}]) as stream:
        kinds = [ev.type for ev in stream]
        final = stream.get_final_message()
    raw_kinds = [k for k in kinds if k != "text"]  # the SDK adds text helper events and hides ping
    assert raw_kinds[:2] == ["message_start", "content_block_start"]
    assert raw_kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert "content_block_delta" in raw_kinds
    assert final.content[0].text == "Saturn has the most moons"
    assert final.usage.output_tokens == 5 and final.stop_reason == "end_turn"


def test_stream_wire_format_has_ping_and_router_on_message_delta(server, stub):
    with httpx.stream("POST", f"{server.url}/v1/messages", json={
            "model": POLICY, "max_tokens": 20, "stream": True, "messages": [{"role": "user", "content": Q}]}) as r:
        assert r.status_code == 200 and r.headers["x-router-selected"]
        lines = list(r.iter_lines())
    events = [line[7:] for line in lines if line.startswith("event: ")]
    data = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    assert events[:3] == ["message_start", "content_block_start", "ping"]
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(events[3:-3]) == {"content_block_delta"}
    assert [d["type"] for d in data] == events
    delta = data[-2]
    assert delta["router"]["selected"] == r.headers["x-router-selected"]
    assert delta["router"]["attempts"][-1]["status"] == 200


def test_pinning_and_tolerance_through_anthropic(client, stub):
    msg = client.messages.create(model="strong", max_tokens=16, messages=[{"role": "user", "content": Q}])
    assert msg.model == dest("strong") and msg.router["pinned"] is True
    msg0 = client.messages.create(model=POLICY, max_tokens=16, messages=[{"role": "user", "content": Q}],
                                  extra_body={"tolerance": 0})
    assert msg0.router["selected"] == msg0.router["best"]


def test_stream_failover_and_midway_error(client, stub, registry, audit_path):
    chosen = registry.get(POLICY).route(Q, tolerance=0.3).chosen
    stub.behave(dest(chosen), fail_status=500, fail_times=-1)
    with client.messages.stream(model=POLICY, max_tokens=64, messages=[{"role": "user", "content": Q}],
                                extra_body={"tolerance": 0.3}) as stream:
        final = stream.get_final_message()
        rid = stream.response.headers["request-id"]
    assert final.model != dest(chosen)
    assert [a["status"] for a in audit_for(audit_path, rid)["attempts"]][:3] == [500, 500, 500]
    for s in SLOTS:
        stub.behave(dest(s), answer="a b c d e f", drop_after=2)
    with pytest.raises(anthropic.APIError):
        with client.messages.stream(model=POLICY, max_tokens=64, messages=[{"role": "user", "content": Q}]) as s:
            rid = s.response.headers["request-id"]
            text = []
            for event in s:
                if event.type == "content_block_delta":
                    text.append(event.delta.text)
    assert "".join(text) == "a b"  # what came before the cut was relayed, then the SDK raised
    assert audit_for(audit_path, rid)["status"] == "error"


def test_upstream_down_is_an_anthropic_error(client, stub):
    for s in SLOTS:
        stub.behave(dest(s), fail_status=500, fail_times=-1)
    with pytest.raises(anthropic.InternalServerError) as e:
        client.messages.create(model=POLICY, max_tokens=16, messages=[{"role": "user", "content": Q}])
    assert e.value.status_code == 502
    assert e.value.body["type"] == "error" and e.value.body["error"]["type"] == "api_error"


@pytest.mark.parametrize("body,status,etype", [
    (b"{oops", 400, "invalid_request_error"),
    (b'{"model": "stubpool", "messages": [{"role": "user", "content": "hi"}]}', 400, "invalid_request_error"),
    (b'{"max_tokens": 5, "messages": []}', 400, "invalid_request_error"),
    (b'{"max_tokens": 5, "tolerance": 2, "messages": [{"role": "user", "content": "hi"}]}', 400,
     "invalid_request_error"),
    (b'{"model": "gpt-9", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}', 404,
     "not_found_error"),
])
def test_bad_requests_get_anthropic_error_shape(server, body, status, etype):
    r = httpx.post(f"{server.url}/v1/messages", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    data = r.json()
    assert data["type"] == "error" and data["error"]["type"] == etype and data["error"]["message"]


def test_auth_with_x_api_key(registry, tmp_path):
    srv = serve_api(registry, audit_log=tmp_path / "a.jsonl", api_keys=("k-anthropic",), backoff=0.01)
    try:
        with pytest.raises(anthropic.AuthenticationError) as e:
            anthropic.Anthropic(base_url=srv.url, api_key="nope", max_retries=0).messages.create(
                model=POLICY, max_tokens=8, messages=[{"role": "user", "content": Q}])
        assert e.value.body["error"]["type"] == "authentication_error"
        ok = anthropic.Anthropic(base_url=srv.url, api_key="k-anthropic", max_retries=0).messages.create(
            model=POLICY, max_tokens=8, messages=[{"role": "user", "content": Q}])
        assert ok.router["selected"]
        ok2 = anthropic.Anthropic(base_url=srv.url, auth_token="k-anthropic", max_retries=0).messages.create(
            model=POLICY, max_tokens=8, messages=[{"role": "user", "content": Q}])
        assert ok2.router["selected"]
    finally:
        srv.stop()


def test_count_tokens_estimate(client):
    short = client.messages.count_tokens(model=POLICY, messages=[{"role": "user", "content": "hi"}])
    long = client.messages.count_tokens(model=POLICY, system="Be brief.",
                                        messages=[{"role": "user", "content": Q * 5}])
    assert 0 < short.input_tokens < long.input_tokens


def test_claude_model_names_route_with_the_default_policy(server, client):
    """Claude Code keeps its own model names; only ANTHROPIC_BASE_URL changes."""
    r = httpx.post(f"{server.url}/v1/messages", json={
        "model": "claude-sonnet-4-5-20250929", "max_tokens": 16, "messages": [{"role": "user", "content": Q}]})
    assert r.status_code == 200, r.text
    assert r.headers["x-router-selected"] and r.json()["router"]["policy"] == POLICY
