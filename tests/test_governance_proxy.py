"""Fail closed, through the real app: a request that matches a local_only rule never reaches a cloud
slot (routing, failover, pinning, sessions, streams, both APIs), block refuses, redact masks, and
the decision says why. The cloud slots live on their own loopback stub, which must receive nothing."""

from __future__ import annotations

import json

import httpx
import pytest

from .governance_env import CLOUD, CLOUD_KEY_ENV, LOCAL, POLICY, SSN, dest, write_pool
from .proxy_env import audit_for, audit_lines, make_registry, serve_api
from .upstream_stub import UpstreamStub


@pytest.fixture(scope="module")
def stubs():
    with UpstreamStub() as local, UpstreamStub() as cloud:
        yield local, cloud


@pytest.fixture(autouse=True)
def _clean(stubs, monkeypatch):
    for s in stubs:
        s.reset()
    monkeypatch.setenv(CLOUD_KEY_ENV, "cloud-test-key")


@pytest.fixture(scope="module")
def gov_audit(tmp_path_factory):
    return tmp_path_factory.mktemp("gov-audit") / "audit.jsonl"


@pytest.fixture(scope="module")
def gov_server(stubs, tmp_path_factory, gov_audit):
    local, cloud = stubs
    reg = make_registry(write_pool(tmp_path_factory.mktemp("gov-pool"), local.base_url, cloud.base_url))
    srv = serve_api(reg, audit_log=gov_audit, api_keys=(), backoff=0.01)
    yield srv
    srv.stop()


@pytest.fixture
def http(gov_server):
    with httpx.Client(base_url=gov_server.url, timeout=60) as c:
        yield c


def chat(http, messages, **body):
    return http.post("/v1/chat/completions", json={"model": POLICY, "messages": messages, **body},
                     headers=body.pop("headers", None) if "headers" in body else None)


def user(text):
    return [{"role": "user", "content": text}]


def no_cloud_calls(stubs):
    assert stubs[1].calls() == [], "the cloud stub received a call"


def test_control_a_clean_query_may_go_to_the_cloud(http, stubs):
    r = chat(http, user("What is the capital of France?"), models=sorted(CLOUD))
    assert r.status_code == 200 and r.json()["router"]["selected"] in CLOUD
    assert len(stubs[1].calls()) == 1 and "x-router-restricted" not in r.headers


def test_ssn_in_the_user_turn_stays_local_and_says_why(http, stubs, gov_audit):
    r = chat(http, user(f"My SSN is {SSN}; which tax form do I need?"), tolerance=0)
    assert r.status_code == 200, r.text
    info = r.json()["router"]
    assert info["selected"] in LOCAL and set(info["probabilities"]) == LOCAL | CLOUD
    assert set(info["candidates"]) <= LOCAL
    gov = info["governance"]["sensitive"]
    assert gov["local_only"] and gov["rules"] == ["pii"] and "us_ssn" in gov["reason"]
    assert r.headers["x-router-restricted"] == "local-only" and r.headers["x-router-sensitive-rules"] == "pii"
    no_cloud_calls(stubs)
    assert stubs[0].calls(dest(info["selected"]))[0]["body"]["messages"][-1]["content"].count(SSN) == 1
    line = audit_for(gov_audit, info["request_id"])
    assert line["governance"]["sensitive"]["matches"] == [
        {"message": 0, "rule": "pii", "detector": "us_ssn", "spans": 1, "action": "local_only"}]
    assert SSN not in json.dumps(line) and "[REDACTED]" in line["query"]


@pytest.mark.parametrize("messages", [
    [{"role": "system", "content": "Customer: jane@corp.example"}, {"role": "user", "content": "Draft a reply."}],
    [{"role": "user", "content": "Look this up"},
     {"role": "assistant", "content": None, "tool_calls": [{"id": "t1", "type": "function",
                                                           "function": {"name": "crm", "arguments": "{}"}}]},
     {"role": "tool", "tool_call_id": "t1", "content": f"record: ssn {SSN}"},
     {"role": "user", "content": "Summarize it."}],
], ids=["system", "tool-result"])
def test_rules_read_system_prompts_and_tool_results(http, stubs, messages):
    r = chat(http, messages, tolerance=0)
    assert r.status_code == 200, r.text
    assert r.json()["router"]["selected"] in LOCAL
    no_cloud_calls(stubs)


def test_stream_stays_local(http, stubs):
    with http.stream("POST", "/v1/chat/completions", json={"model": POLICY, "messages": user(f"ssn {SSN}"),
                                                            "stream": True, "tolerance": 0}) as r:
        assert r.status_code == 200 and r.headers["x-router-selected"] in LOCAL
        body = "".join(r.iter_text())
    assert "[DONE]" in body
    no_cloud_calls(stubs)


def test_local_failure_never_fails_over_to_the_cloud(http, stubs, gov_audit):
    for name in LOCAL:
        stubs[0].behave(dest(name), fail_status=500, fail_times=-1)
    r = chat(http, user(f"ssn {SSN}"), tolerance=0)
    assert r.status_code == 502
    msg = r.json()["error"]["message"]
    assert "only be answered by local slots" in msg and "no cloud slot was tried" in msg
    no_cloud_calls(stubs)
    assert {c["body"]["model"] for c in stubs[0].calls()} <= {dest(n) for n in LOCAL}
    line = audit_for(gov_audit, r.json()["router"]["request_id"])
    assert line["status"] == "error" and {a["slot"] for a in line["attempts"]} <= LOCAL


def test_only_cloud_models_requested_gives_a_clear_error(http, stubs):
    r = chat(http, user(f"ssn {SSN}"), models=sorted(CLOUD))
    assert r.status_code == 503
    err = r.json()["error"]
    assert err["code"] == "no_local_slot" and "none of the requested models is local" in err["message"]
    assert stubs[0].calls() == [] and stubs[1].calls() == []


def test_pinning_a_cloud_slot_is_refused_403_in_both_shapes(http, stubs):
    r = http.post("/v1/chat/completions", json={"model": "cloud-best", "messages": user(f"ssn {SSN}")})
    assert r.status_code == 403
    err = r.json()["error"]
    assert err["type"] == "permission_error" and err["code"] == "sensitive_data_local_only"
    assert "cloud-best" in err["message"] and "pin a local slot" in err["message"]
    a = http.post("/v1/messages", json={"model": "cloud-mid", "max_tokens": 50, "messages": user(f"ssn {SSN}")})
    assert a.status_code == 403 and a.json()["type"] == "error"
    assert a.json()["error"]["type"] == "permission_error"
    assert stubs[0].calls() == [] and stubs[1].calls() == []
    ok = http.post("/v1/chat/completions", json={"model": "onprem-small", "messages": user(f"ssn {SSN}")})
    assert ok.status_code == 200 and ok.json()["router"]["selected"] == "onprem-small"
    no_cloud_calls(stubs)


def test_anthropic_system_prompt_is_scanned_and_stays_local(http, stubs):
    body = {"model": POLICY, "max_tokens": 64, "tolerance": 0, "system": "This ticket is CONFIDENTIAL.",
            "messages": user("Summarize the ticket.")}
    r = http.post("/v1/messages", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["router"]["selected"] in LOCAL and r.headers["x-router-restricted"] == "local-only"
    with http.stream("POST", "/v1/messages", json={**body, "stream": True}) as s:
        assert s.status_code == 200 and s.headers["x-router-selected"] in LOCAL
        assert "message_stop" in "".join(s.iter_text())
    no_cloud_calls(stubs)


def test_session_stays_local_after_one_sensitive_turn(http, stubs):
    h = {"X-Router-Session": "conv-1"}
    first = http.post("/v1/chat/completions", headers=h,
                      json={"model": POLICY, "tolerance": 0, "messages": user(f"my ssn is {SSN}")})
    assert first.json()["router"]["selected"] in LOCAL
    # The next turn alone holds nothing sensitive, and asks for cloud slots only: refused, not sent.
    later = http.post("/v1/chat/completions", headers=h,
                      json={"model": POLICY, "tolerance": 0, "messages": user("and what about next year?")})
    assert later.status_code == 200
    gov = later.json()["router"]["governance"]["sensitive"]
    assert later.json()["router"]["selected"] in LOCAL and gov["session_local"] and "conv-1" in gov["reason"]
    cloud_only = http.post("/v1/chat/completions", headers=h, json={"model": POLICY, "models": sorted(CLOUD),
                                                                     "messages": user("plain question")})
    assert cloud_only.status_code == 503
    no_cloud_calls(stubs)
    other = http.post("/v1/chat/completions", headers={"X-Router-Session": "conv-2"},
                      json={"model": POLICY, "models": sorted(CLOUD), "messages": user("plain question")})
    assert other.status_code == 200 and other.json()["router"]["selected"] in CLOUD


def test_block_rule_refuses_in_both_apis_and_sends_nothing(http, stubs):
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"
    r = chat(http, user(f"why does this fail?\n{key}"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "sensitive_data_blocked"
    assert "secrets" in r.json()["error"]["message"] and "MIIE" not in r.text
    a = http.post("/v1/messages", json={"model": POLICY, "max_tokens": 10, "messages": user(key)})
    assert a.status_code == 403 and a.json()["error"]["type"] == "permission_error"
    assert stubs[0].calls() == [] and stubs[1].calls() == []


def test_redact_masks_the_spans_before_the_cloud_sees_them(http, stubs, gov_audit):
    r = chat(http, user("Is card 4111 1111 1111 1111 valid for travel?"), models=sorted(CLOUD))
    assert r.status_code == 200, r.text
    info = r.json()["router"]
    assert info["selected"] in CLOUD and r.headers["x-router-redacted"] == "cards"
    sent = stubs[1].calls()[0]["body"]["messages"][-1]["content"]
    assert "4111" not in sent and "[REDACTED]" in sent
    line = audit_for(gov_audit, info["request_id"])
    assert "4111" not in json.dumps(line)


def test_redact_applies_to_the_responses_api_too(http, stubs):
    r = http.post("/v1/responses", json={"model": POLICY, "models": sorted(CLOUD),
                                         "input": "Is card 4111 1111 1111 1111 valid for travel?"})
    assert r.status_code == 200, r.text
    assert r.json()["router"]["selected"] in CLOUD
    sent = json.dumps(stubs[1].calls()[-1]["body"]["messages"])
    assert "4111" not in sent and "[REDACTED]" in sent


def test_route_endpoint_shows_the_restriction(http, stubs):
    r = http.post("/v1/route", json={"policy": POLICY, "question": f"ssn {SSN}", "tolerance": 0})
    assert r.status_code == 200
    body = r.json()
    assert body["chosen"] in LOCAL and body["governance"]["sensitive"]["rules"] == ["pii"]
    assert r.headers["x-router-restricted"] == "local-only"
    assert {m["name"] for m in body["models"] if m["allowed"]} == LOCAL
    assert stubs[0].calls() == [] and stubs[1].calls() == []


def test_audit_file_never_holds_the_sensitive_text(gov_audit):
    lines = audit_lines(gov_audit)
    assert lines and SSN not in gov_audit.read_text(encoding="utf-8")


EMAIL = "john.doe@example.com"


@pytest.mark.parametrize("messages,extra", [
    ([{"role": "user", "name": EMAIL, "content": "Prove that sqrt 2 is irrational."}], {}),
    ([{"role": "user", "content": [{"type": "text", "text": "What is in this picture?"},
                                   {"type": "image_url", "image_url": {"url": f"https://x.test/i.png?owner={EMAIL}"}}]}],
     {}),
    (user("Prove that sqrt 2 is irrational."), {"user": EMAIL}),
    (user("Prove that sqrt 2 is irrational."), {"metadata": {"note": "card 4111 1111 1111 1111"}}),
    (user("Prove that sqrt 2 is irrational."),
     {"tools": [{"type": "function", "function": {"name": "mail", "description": f"mails {EMAIL}",
                                                  "parameters": {"type": "object", "properties": {}}}}]}),
], ids=["message-name", "image-url", "user-field", "redact-rule-in-metadata", "tool-description"])
def test_sensitive_text_outside_the_message_text_stays_local(http, stubs, messages, extra):
    """These went to a cloud slot with the data as it was: the scan skipped `name` and URLs and never read
    the request's other fields. A redact rule cannot mask a passed-through field, so it keeps it local."""
    r = chat(http, messages, tolerance=0, **extra)
    assert r.status_code == 200, r.text
    assert r.json()["router"]["selected"] in LOCAL and r.headers["x-router-restricted"] == "local-only"
    no_cloud_calls(stubs)


def test_refused_requests_get_an_audit_line(http, stubs, gov_audit):
    """A blocked secret and a sensitive query with only cloud slots allowed were refused with no trace."""
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"
    before = len(audit_lines(gov_audit)) if gov_audit.exists() else 0
    assert chat(http, user(f"why does this fail?\n{key}")).status_code == 403
    assert chat(http, user(f"My SSN is {SSN}"), models=sorted(CLOUD)).status_code == 503
    assert http.post("/v1/messages", json={"model": POLICY, "max_tokens": 10, "messages": user(key)}).status_code == 403
    lines = audit_lines(gov_audit)[before:]
    refused = [x for x in lines if x["status"] == "refused"]
    assert [x["api"] for x in refused] == ["openai", "openai", "anthropic"]
    assert refused[0]["governance"]["sensitive"]["rules"] == ["secrets"] and "sensitive_data_blocked" not in str(
        refused[0].get("selected"))
    assert "MIIE" not in json.dumps(lines) and SSN not in json.dumps(lines)
    assert all(x.get("selected") is None and not x.get("actual_cost_usd") for x in refused)
    no_cloud_calls(stubs)
    from router.audit.record import DecisionRecord
    from router.audit.summary import summarize

    total = summarize([DecisionRecord.from_line(x) for x in lines])["total"]  # the audit tools read them
    assert total["requests"] == len(lines) and total["errors"] >= 3
