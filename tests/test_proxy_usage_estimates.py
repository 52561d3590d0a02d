"""Usage the upstream never reported is estimated and flagged, never billed as $0 nor labelled real;
and three request shapes real clients send get a routed answer or a precise 400. Real HTTP: the
proxy under uvicorn and the loopback stub, told to send no usage or to cut its stream."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from .proxy_env import POLICY, SLOTS, audit_lines, dest

Q = "What is the capital of France?"
ALL = [name for name, *_ in SLOTS]


def _final(audit_path, rid: str, wait: float = 10.0) -> dict:
    deadline = time.time() + wait
    while time.time() < deadline:
        done = [r for r in audit_lines(audit_path) if r["request_id"] == rid and r["status"] != "started"]
        if done:
            return done[-1]
        time.sleep(0.05)
    raise AssertionError(f"no final audit line for {rid}")


def _no_usage(stub, **kw):
    for name in ALL:
        stub.behave(dest(name), answer="Paris is the capital of France.", no_usage=True, **kw)


@pytest.mark.parametrize("path,body", [
    ("/v1/chat/completions", {"model": POLICY, "messages": [{"role": "user", "content": Q}]}),
    ("/v1/messages", {"model": POLICY, "max_tokens": 50, "messages": [{"role": "user", "content": Q}]}),
    ("/v1/chat/completions", {"model": "cheap", "messages": [{"role": "user", "content": Q}]}),
])
def test_a_plain_answer_without_usage_is_estimated(server, stub, audit_path, path, body):
    _no_usage(stub)
    r = httpx.post(f"{server.url}{path}", json=body, timeout=30)
    assert r.status_code == 200, r.text
    rec = _final(audit_path, r.headers["x-router-request-id"])
    assert rec["usage_estimated"] is True and rec["cost_basis"] == "estimate"
    assert rec["usage"]["prompt_tokens"] > 0 and rec["usage"]["completion_tokens"] > 0
    assert rec["actual_cost_usd"] > 0
    if path == "/v1/messages":
        assert r.json()["usage"]["input_tokens"] == rec["usage"]["prompt_tokens"]
        assert r.json()["usage"]["output_tokens"] == rec["usage"]["completion_tokens"]


def test_a_plain_answer_with_usage_stays_actual(server, stub, audit_path):
    r = httpx.post(f"{server.url}/v1/chat/completions", json={"model": POLICY, "messages": [
        {"role": "user", "content": Q}]}, timeout=30)
    rec = _final(audit_path, r.headers["x-router-request-id"])
    assert rec["cost_basis"] == "actual" and "usage_estimated" not in rec
    assert rec["usage"]["prompt_tokens"] == r.json()["usage"]["prompt_tokens"]


@pytest.mark.parametrize("path,body", [
    ("/v1/chat/completions", {"model": "cheap", "stream": True, "messages": [{"role": "user", "content": Q}]}),
    ("/v1/messages", {"model": "cheap", "stream": True, "max_tokens": 50,
                      "messages": [{"role": "user", "content": Q}]}),
])
def test_a_pinned_stream_cut_midway_counts_its_prompt(server, stub, audit_path, path, body):
    for name in ALL:
        stub.behave(dest(name), answer="one two three four", drop_after=1)
    with httpx.stream("POST", f"{server.url}{path}", json=body, timeout=30) as r:
        rid = r.headers["x-router-request-id"]
        events = [json.loads(x[5:]) for x in r.iter_lines() if x.startswith("data:") and x[5:].strip() != "[DONE]"]
    rec = _final(audit_path, rid)
    assert rec["pinned"] is True and rec["status"] == "error" and rec["usage_estimated"] is True
    assert rec["usage"]["prompt_tokens"] > 0 and rec["usage"]["completion_tokens"] == 1
    assert rec["cost_basis"] == "estimate"
    if path == "/v1/messages":
        start = next(e for e in events if e.get("type") == "message_start")
        assert start["message"]["usage"]["input_tokens"] == rec["usage"]["prompt_tokens"]


@pytest.mark.parametrize("include_usage", [True, False])
def test_a_stream_without_a_usage_chunk_reports_the_estimate(server, stub, audit_path, include_usage):
    _no_usage(stub)
    body = {"model": POLICY, "stream": True, "messages": [{"role": "user", "content": Q}]}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, timeout=30) as r:
        rid = r.headers["x-router-request-id"]
        chunks = [json.loads(x[5:]) for x in r.iter_lines() if x.startswith("data:") and x[5:].strip() != "[DONE]"]
    last = chunks[-1]
    assert (last["choices"] == []) is include_usage
    rec = _final(audit_path, rid)
    assert rec["status"] == "ok" and rec["usage_estimated"] is True and rec["cost_basis"] == "estimate"
    assert last["usage"]["prompt_tokens"] == rec["usage"]["prompt_tokens"] > 0
    assert last["usage"]["completion_tokens"] == rec["usage"]["completion_tokens"] > 0
    assert last["router"]["usage_estimated"] is True


IMAGE = "data:image/png;base64,iVBORw0KGgo="


@pytest.mark.parametrize("path,body", [
    ("/v1/chat/completions", {"model": POLICY, "messages": [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": IMAGE}}]}]}),
    ("/v1/messages", {"model": POLICY, "max_tokens": 50, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]}]}),
])
def test_an_image_only_request_is_routed(server, stub, audit_path, path, body):
    r = httpx.post(f"{server.url}{path}", json=body, timeout=30)
    assert r.status_code == 200, r.text
    rec = _final(audit_path, r.headers["x-router-request-id"])
    assert rec["query"] == "[image]" and rec["selected"] in ALL
    sent = stub.calls()[-1]["body"]["messages"][-1]["content"]
    assert any(p.get("type") == "image_url" for p in sent)  # the image itself still goes upstream


def test_an_unknown_role_names_the_field(server):
    r = httpx.post(f"{server.url}/v1/chat/completions", timeout=30,
                   json={"model": POLICY, "messages": [{"role": "wizard", "content": "hi"}]})
    assert r.status_code == 400
    msg = r.json()["error"]["message"]
    assert msg.startswith("messages.0.role:") and "'user'" in msg and "'assistant'" in msg


def test_a_body_that_is_not_utf8(server):
    r = httpx.post(f"{server.url}/v1/chat/completions", timeout=30, headers={"content-type": "application/json"},
                   content=b'{"model": "x", "messages": [{"role": "user", "content": "\xff\xfe hi"}]}')
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "request body could not be read as JSON: send UTF-8 encoded JSON"
    assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/responses"])
def test_other_apis_streams_without_a_usage_chunk_report_the_estimate(server, stub, audit_path, path):
    _no_usage(stub)
    body = ({"model": POLICY, "stream": True, "max_tokens": 50, "messages": [{"role": "user", "content": Q}]}
            if path == "/v1/messages" else {"model": POLICY, "stream": True, "input": Q})
    with httpx.stream("POST", f"{server.url}{path}", json=body, timeout=30) as r:
        rid = r.headers["x-router-request-id"]
        events = [json.loads(x[5:]) for x in r.iter_lines() if x.startswith("data:")]
    rec = _final(audit_path, rid)
    assert rec["status"] == "ok" and rec["usage_estimated"] is True and rec["usage"]["completion_tokens"] > 0
    if path == "/v1/messages":
        delta = next(e for e in events if e.get("type") == "message_delta")
        assert delta["usage"]["output_tokens"] == rec["usage"]["completion_tokens"]
        assert delta["router"]["usage_estimated"] is True
    else:
        done = next(e for e in events if e.get("type") == "response.completed")["response"]
        assert done["usage"]["input_tokens"] == rec["usage"]["prompt_tokens"]
        assert done["usage"]["output_tokens"] == rec["usage"]["completion_tokens"]
        assert done["router"]["usage_estimated"] is True


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("path,extra", [("/v1/chat/completions", {}), ("/v1/messages", {"max_tokens": 50})])
def test_malformed_upstream_usage_is_estimated_not_a_crash(server, stub, audit_path, path, extra, stream):
    """A count the router cannot bill ("x", negative) used to raise ValueError inside the proxy."""
    for name in ALL:
        stub.behave(dest(name), answer="Paris is the capital of France.",
                    usage={"prompt_tokens": "x", "completion_tokens": -7, "total_tokens": "?"})
    body = {"model": POLICY, "messages": [{"role": "user", "content": Q}], "stream": stream, **extra}
    r = httpx.post(f"{server.url}{path}", json=body, timeout=30)
    assert r.status_code == 200, r.text
    assert "Paris" in r.text and '"x"' not in r.text and "-7" not in r.text
    rec = _final(audit_path, r.headers["x-router-request-id"])
    assert rec["status"] == "ok" and rec["usage_estimated"] is True and rec["cost_basis"] == "estimate"
    assert rec["usage"]["prompt_tokens"] > 0 and rec["actual_cost_usd"] >= 0


def test_an_unsupported_anthropic_tool_is_refused_after_the_decision_and_audited(server, stub, audit_path):
    before = len(audit_lines(audit_path)) if audit_path.exists() else 0
    r = httpx.post(f"{server.url}/v1/messages", json={
        "model": POLICY, "max_tokens": 50, "messages": [{"role": "user", "content": Q}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}]}, timeout=30)
    assert r.status_code == 400 and "web_search_20250305" in r.text
    deadline = time.time() + 10
    while time.time() < deadline and len(audit_lines(audit_path)) == before:
        time.sleep(0.05)
    (line,) = audit_lines(audit_path)[before:]
    assert line["api"] == "anthropic" and line["status"] == "error" and "web_search_20250305" in line["error"]
