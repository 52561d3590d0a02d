"""The proxy's OpenAI side, driven by the official `openai` SDK against the real app and the
loopback upstream stub: routing, streaming, pinning, tolerance, failover, sessions, keys, errors.
"""

from __future__ import annotations

import httpx
import openai
import pytest

from .proxy_env import POLICY, audit_for, audit_lines, dest, make_registry, serve_api, write_pool

Q = "Write a Python function that returns the n-th Fibonacci number."


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=60)


def ask(text=Q):
    return [{"role": "user", "content": text}]


def local_decision(registry, text, tolerance=None, models=None):
    return registry.get(POLICY).route(text, tolerance=tolerance, models=models)


def test_plain_call_routes_and_reports_the_decision(client, stub, registry, audit_path):
    raw = client.chat.completions.with_raw_response.create(model=POLICY, messages=ask(), extra_body={"tolerance": 0.3})
    resp = raw.parse()
    info = resp.router
    expected = local_decision(registry, Q, 0.3)
    assert info["chosen"] == info["selected"] == expected.chosen
    assert info["chosen"] in info["candidates"]
    assert info["threshold"] == pytest.approx(info["p_max"] - 0.3, abs=1e-6)
    assert resp.model == dest(info["selected"])
    assert resp.choices[0].message.content.startswith(f"stub answer from {dest(info['selected'])}")
    assert raw.headers["x-router-selected"] == info["selected"]
    assert float(raw.headers["x-router-tolerance"]) == 0.3
    assert float(raw.headers["x-router-p-max"]) == pytest.approx(info["p_max"], abs=1e-6)
    assert float(raw.headers["x-router-threshold"]) == pytest.approx(info["threshold"], abs=1e-6)
    sent = stub.calls(dest(info["selected"]))[0]["body"]
    assert sent["messages"][-1]["content"] == Q and "tolerance" not in sent
    line = audit_for(audit_path, info["request_id"])
    assert line["selected"] == info["selected"] and line["status"] == "ok" and line["api"] == "openai"
    assert {m["name"] for m in line["models"]} == set(info["probabilities"])
    assert line["usage"]["completion_tokens"] == resp.usage.completion_tokens
    assert line["actual_cost_usd"] >= 0 and line["baseline_cost_usd"] > 0
    t = info["timings_ms"]  # the proxy's wall time to a decision includes the encoder pass itself
    assert t["routing_wall_ms"] >= t["encode_ms"] > 0 and line["routing_wall_ms"] == t["routing_wall_ms"]


def test_streaming_relays_text_and_ends_with_the_decision(client, stub):
    stub.behave(dest("cheap"), answer="one two three four")
    for name in ("mid", "strong", "best"):
        stub.behave(dest(name), answer="one two three four")
    raw = client.chat.completions.with_raw_response.create(model=POLICY, messages=ask(), stream=True,
                                                           extra_body={"tolerance": 0.15})
    assert raw.headers["x-router-selected"] and raw.headers["x-router-tolerance"] == "0.15"
    assert float(raw.headers["x-router-threshold"]) == pytest.approx(float(raw.headers["x-router-p-max"]) - 0.15,
                                                                     abs=1e-5)
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four"
    last = chunks[-1]
    assert last.router["selected"] == raw.headers["x-router-selected"]
    assert last.usage.completion_tokens == 4 and last.choices[0].finish_reason == "stop"
    assert all(c.model == dest(last.router["selected"]) for c in chunks)
    assert all(c.choices for c in chunks)  # naive clients index choices[0]


def test_stream_with_include_usage_ends_with_openai_usage_chunk(client):
    chunks = list(client.chat.completions.create(model=POLICY, messages=ask(), stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0 and chunks[-1].router["selected"]
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_pinning_a_slot_skips_routing(client, stub, audit_path):
    raw = client.chat.completions.with_raw_response.create(model="cheap", messages=ask())
    resp = raw.parse()
    assert resp.model == dest("cheap") and resp.router["pinned"] is True
    assert "x-router-p-max" not in raw.headers and raw.headers["x-router-pinned"] == "true"
    assert len(stub.calls(dest("cheap"))) == 1 and len(stub.calls()) == 1
    line = audit_for(audit_path, resp.router["request_id"])
    assert line["pinned"] is True and line["selected"] == "cheap" and line["actual_cost_usd"] is not None


def test_tolerance_zero_takes_the_best_and_one_the_cheapest(client, registry):
    best = client.chat.completions.create(model=POLICY, messages=ask(), extra_body={"tolerance": 0}).router
    assert best["selected"] == best["best"]
    cheap = client.chat.completions.create(model=POLICY, messages=ask(), extra_body={"tolerance": 1}).router
    expected = local_decision(registry, Q, 1.0)
    assert cheap["selected"] == min(expected.models, key=lambda m: m.expected_cost_usd).name
    assert set(cheap["candidates"]) == set(cheap["probabilities"])


def test_models_restricts_the_choice(client):
    info = client.chat.completions.create(model=POLICY, messages=ask(),
                                          extra_body={"tolerance": 0, "models": ["cheap", "mid"]}).router
    assert info["selected"] in ("cheap", "mid")
    assert info["p_max"] == pytest.approx(max(info["probabilities"]["cheap"], info["probabilities"]["mid"]), abs=1e-6)


def test_failover_to_the_next_model_is_reported_and_audited(client, stub, registry, audit_path):
    chosen = local_decision(registry, Q, 0.3).chosen
    stub.behave(dest(chosen), fail_status=500, fail_times=-1)
    resp = client.chat.completions.create(model=POLICY, messages=ask(), extra_body={"tolerance": 0.3})
    info = resp.router
    assert info["chosen"] == chosen and info["selected"] != chosen and info["failover"] is True
    tried = [(a["slot"], a["status"]) for a in info["attempts"]]
    assert tried[:3] == [(chosen, 500)] * 3  # the backend's retries, then the next model
    assert tried[-1] == (info["selected"], 200)
    line = audit_for(audit_path, info["request_id"])
    assert [(a["slot"], a["status"]) for a in line["attempts"]] == tried
    assert all(a["latency_ms"] >= 0 for a in line["attempts"])


def test_stream_fails_over_before_its_first_chunk(client, stub, registry):
    chosen = local_decision(registry, Q, 0.3).chosen
    stub.behave(dest(chosen), fail_status=429, fail_times=-1)
    raw = client.chat.completions.with_raw_response.create(model=POLICY, messages=ask(), stream=True,
                                                           extra_body={"tolerance": 0.3})
    assert raw.headers["x-router-selected"] != chosen
    chunks = list(raw.parse())
    assert chunks[-1].router["attempts"][0] == {**chunks[-1].router["attempts"][0], "slot": chosen, "status": 429}


def test_stream_dropped_midway_raises_in_the_sdk_and_is_audited(client, stub, registry, audit_path):
    for name in ("cheap", "mid", "strong", "best"):
        stub.behave(dest(name), answer="a b c d e f g h", drop_after=2)
    raw = client.chat.completions.with_raw_response.create(model=POLICY, messages=ask(), stream=True)
    got = []
    with pytest.raises(openai.APIError):
        for chunk in raw.parse():
            got.append(chunk)
    # the words sent before the cut reached the client, then the SDK raised
    assert "".join(c.choices[0].delta.content or "" for c in got if c.choices) == "a b"
    line = audit_for(audit_path, raw.headers["x-router-request-id"])
    assert line["status"] == "error" and "midway" in line["error"]


def test_junk_upstream_body_fails_over(client, stub, registry):
    chosen = local_decision(registry, Q, 0.3).chosen
    stub.behave(dest(chosen), junk=True)
    info = client.chat.completions.create(model=POLICY, messages=ask(), extra_body={"tolerance": 0.3}).router
    assert info["selected"] != chosen and "invalid response body" in info["attempts"][0]["error"]


def test_every_model_down_is_a_502_in_openai_shape(client, stub, audit_path):
    for name in ("cheap", "mid", "strong", "best"):
        stub.behave(dest(name), fail_status=503, fail_times=-1)
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model=POLICY, messages=ask())
    assert e.value.status_code == 502
    err = e.value.body
    assert set(err) >= {"message", "type", "param", "code"} and "failed" in err["message"]
    line = audit_lines(audit_path)[-1]
    assert line["status"] == "error" and line["selected"] is None and len(line["attempts"]) >= 6


def test_session_keeps_a_conversation_on_its_model(server, client):
    # Turn 1 at tolerance 0 lands on the best model; turn 2 at tolerance 1 would pick the cheapest,
    # but the best is still within tolerance of p_max, so the session stays.
    h = {"X-Router-Session": "conv-1"}
    first = client.chat.completions.create(model=POLICY, messages=ask(), extra_body={"tolerance": 0},
                                           extra_headers=h).router
    second = client.chat.completions.create(model=POLICY, messages=ask(), extra_body={"tolerance": 1},
                                            extra_headers=h).router
    assert second["selected"] == first["selected"] == first["best"]
    assert second["sticky"] is (second["chosen"] != first["selected"])
    # A fresh session at tolerance 1 starts on the cheapest; at tolerance 0 it must move to the best.
    h2 = {"X-Router-Session": "conv-2"}
    a = client.chat.completions.create(model=POLICY, messages=ask(), extra_body={"tolerance": 1}, extra_headers=h2).router
    b = client.chat.completions.create(model=POLICY, messages=ask(), extra_body={"tolerance": 0}, extra_headers=h2).router
    assert b["selected"] == b["best"] and b["sticky"] is False
    if a["probabilities"][a["selected"]] < a["p_max"]:
        assert b["selected"] != a["selected"]


@pytest.mark.parametrize("body,status,needle", [
    (b"{not json", 400, "not valid JSON"),
    (b'{"model": "stubpool"}', 400, "messages"),
    (b'{"model": "stubpool", "messages": []}', 400, "messages"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "tolerance": 1.5}', 400, "tolerance"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "tolerance": "high"}', 400, "tolerance"),
    (b'{"messages": [{"role": "assistant", "content": "hi"}]}', 400, "user"),
    (b'{"model": "gpt-17", "messages": [{"role": "user", "content": "hi"}]}', 404, "gpt-17"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "models": ["nope"]}', 404, "nope"),
    (b'[1, 2]', 400, "JSON object"),
])
def test_bad_requests_get_openai_error_shape(server, body, status, needle):
    r = httpx.post(f"{server.url}/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert needle in err["message"]


def test_sdk_raises_typed_errors(client):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-policy", messages=ask())
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=POLICY, messages=ask(), extra_body={"tolerance": -0.1})


def test_route_endpoint_and_model_lists(server, registry):
    r = httpx.post(f"{server.url}/v1/route", json={"question": Q, "tolerance": 0.3})
    assert r.status_code == 200
    body = r.json()
    assert body["chosen"] == local_decision(registry, Q, 0.3).chosen == r.headers["x-router-selected"]
    assert httpx.post(f"{server.url}/v1/route", json={"tolerance": 0.3}).status_code == 400
    ids = [m.id for m in openai.OpenAI(base_url=f"{server.url}/v1", api_key="x").models.list()]
    assert ids[0] == POLICY and {"cheap", "mid", "strong", "best"} <= set(ids)
    pools = httpx.get(f"{server.url}/api/models").json()["policies"]
    slot = pools[0]["models"][0]
    assert slot["local"] is True and slot["trained_as"] and "cost_per_m_input_tokens" in slot
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"
    assert httpx.get(f"{server.url}/v1/nowhere").json()["error"]["message"].startswith("no such endpoint")


def test_missing_upstream_key_names_the_env_var_and_keys_never_reach_the_log(stub, tmp_path, monkeypatch):
    reg = make_registry(write_pool(tmp_path, stub.base_url, policy="keyed", key_env="STUB_UPSTREAM_KEY"))
    srv = serve_api(reg, audit_log=tmp_path / "a.jsonl", api_keys=(), backoff=0.01)
    try:
        c = openai.OpenAI(base_url=f"{srv.url}/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.APIStatusError) as e:
            c.chat.completions.create(model="keyed", messages=ask())
        assert e.value.status_code == 503 and "STUB_UPSTREAM_KEY" in e.value.body["message"]
        monkeypatch.setenv("STUB_UPSTREAM_KEY", "sk-upstream-secret-123")
        resp = c.chat.completions.create(model="keyed", messages=ask())
        assert stub.calls(resp.model)[-1]["headers"]["authorization"] == "Bearer sk-upstream-secret-123"
        audit_for(tmp_path / "a.jsonl", resp.router["request_id"])  # the line is there before we look for the key
        assert "sk-upstream-secret-123" not in (tmp_path / "a.jsonl").read_text()
    finally:
        srv.stop()


def test_auth_on_requires_a_listed_key(registry, tmp_path):
    srv = serve_api(registry, audit_log=tmp_path / "a.jsonl", api_keys=("team-key-1", "team-key-2"), backoff=0.01)
    try:
        base = f"{srv.url}/v1"
        with pytest.raises(openai.AuthenticationError) as e:
            openai.OpenAI(base_url=base, api_key="wrong", max_retries=0).chat.completions.create(
                model=POLICY, messages=ask())
        assert e.value.status_code == 401 and e.value.body["type"] == "authentication_error"
        r = httpx.post(f"{base}/chat/completions", json={"messages": ask()})
        assert r.status_code == 401 and "missing API key" in r.json()["error"]["message"]
        resp = openai.OpenAI(base_url=base, api_key="team-key-2", max_retries=0).chat.completions.create(
            model=POLICY, messages=ask())
        assert resp.router["selected"]
        assert httpx.get(f"{srv.url}/health").status_code == 200  # stays open
        assert audit_for(tmp_path / "a.jsonl", resp.router["request_id"])["client"].startswith("sha256:")
        assert "team-key-2" not in (tmp_path / "a.jsonl").read_text()
    finally:
        srv.stop()


def test_client_hanging_up_mid_stream_is_audited_and_harmless(server, stub, audit_path):
    for name in ("cheap", "mid", "strong", "best"):
        stub.behave(dest(name), answer=" ".join(["word"] * 400), chunk_delay=0.02)
    with httpx.stream("POST", f"{server.url}/v1/chat/completions",
                      json={"model": POLICY, "stream": True, "messages": ask()}) as r:
        rid = r.headers["x-router-request-id"]
        lines = r.iter_lines()
        assert next(lines).startswith("data: ")
    assert audit_for(audit_path, rid)["status"] == "client_closed"
    assert httpx.get(f"{server.url}/health").status_code == 200
