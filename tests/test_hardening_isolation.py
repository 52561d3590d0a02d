"""One bad request never hurts another (issue 12, defects 1 and 7).

A lone UTF-16 surrogate ("\\ud800", what a JavaScript client sends when it cuts a string inside an
emoji) used to make the tokenizer raise inside the micro-batch, and the batcher failed every
request of that batch; in an upstream body it crashed the transport (500, no audit line).
"""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest

from router.errors import InputError
from router.model import torch_thread
from router.serving.batching import ScoreBatcher

from .proxy_env import POLICY, audit_for, audit_lines

BAD = '{"question": "What is the capital of France? \\ud800"}'  # JSON escape: a lone surrogate
GOOD = [f"Question number {i}: how do I sort a list of {i} numbers in Python?" for i in range(29)]


def test_batcher_fails_only_the_text_it_cannot_encode(default_router):
    batcher = ScoreBatcher(default_router)
    gate = threading.Event()
    torch_thread.submit(gate.wait)  # hold the torch thread so that every text lands in one batch
    futures = [batcher.submit(t) for t in GOOD[:10]]
    bad = batcher.submit("abc \ud800 def")  # bypasses query_text's check on purpose
    gate.set()
    assert all(f.result(60).p is not None for f in futures)
    with pytest.raises(InputError, match="cannot be tokenized"):
        bad.result(60)


async def _burst(url: str, good_body, bad_body: str, path: str, headers=None):
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        h = {"content-type": "application/json", **(headers or {})}
        jobs = [client.post(path, content=json.dumps(good_body(q)), headers=h) for q in GOOD]
        jobs.insert(15, client.post(path, content=bad_body, headers=h))
        return await asyncio.gather(*jobs)


@pytest.mark.parametrize("rounds", [3])
def test_surrogate_in_a_concurrent_route_batch_fails_alone(server, rounds):
    for _ in range(rounds):
        responses = asyncio.run(_burst(server.url, lambda q: {"question": q}, BAD, "/v1/route"))
        bad = responses.pop(15)
        assert [r.status_code for r in responses] == [200] * len(GOOD)
        assert bad.status_code == 400
        assert "lone UTF-16 surrogate" in bad.json()["error"]["message"]


def test_surrogate_in_a_concurrent_chat_batch_fails_alone(server, stub, audit_path):
    bad = json.dumps({"model": POLICY, "messages": [{"role": "user", "content": "hi \ud800"}]}, ensure_ascii=True)
    responses = asyncio.run(_burst(server.url, lambda q: {"model": POLICY, "messages": [{"role": "user", "content": q}]},
                                   bad, "/v1/chat/completions"))
    bad_resp = responses.pop(15)
    assert [r.status_code for r in responses] == [200] * len(GOOD)
    assert bad_resp.status_code == 400 and "surrogate" in bad_resp.json()["error"]["message"]
    ids = {r.json()["router"]["request_id"] for r in responses}
    for rid in ids:  # one audit line per good request
        assert audit_for(audit_path, rid)["status"] == "ok"
    assert len(stub.calls()) == len(GOOD)


@pytest.mark.parametrize("where", ["system", "extra", "pinned"])
def test_surrogate_anywhere_that_goes_upstream_is_a_400_before_any_call(server, stub, where):
    body = {"model": POLICY, "messages": [{"role": "user", "content": "What is 2 + 2?"}]}
    if where == "system":
        body["messages"].insert(0, {"role": "system", "content": "be brief \ud800"})
    elif where == "extra":
        body["user"] = "id-\udfff"
    else:
        body["model"] = "cheap"
        body["messages"].append({"role": "assistant", "content": "x\ud800"})
        body["messages"].append({"role": "user", "content": "again"})
    for stream in (False, True):
        r = httpx.post(f"{server.url}/v1/chat/completions", content=json.dumps({**body, "stream": stream}),
                       headers={"content-type": "application/json"}, timeout=60)
        assert r.status_code == 400, r.text
        assert "surrogate" in r.json()["error"]["message"]
    assert stub.calls() == []


@pytest.mark.parametrize("raw", ['{"seed": NaN}', '{"seed": 1e999}', '{"logit_bias": {"1": Infinity}}'])
def test_non_finite_number_in_a_pass_through_field_is_a_400(server, stub, raw):
    extra = json.loads(raw)
    body = json.dumps({"model": POLICY, "messages": [{"role": "user", "content": "hi"}]})[:-1] + ", " + raw[1:]
    r = httpx.post(f"{server.url}/v1/chat/completions", content=body, headers={"content-type": "application/json"},
                   timeout=60)
    assert r.status_code == 400, r.text
    assert "finite number" in r.json()["error"]["message"] and next(iter(extra)) in r.json()["error"]["message"]
    assert stub.calls() == []


def test_anthropic_image_source_as_a_string_is_a_400_with_an_audit_line(server, audit_path):
    body = {"model": POLICY, "max_tokens": 20, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"}, {"type": "image", "source": "http://x/y.png"}]}]}
    r = httpx.post(f"{server.url}/v1/messages", json=body, timeout=60)
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "error" and "content[1].source" in r.json()["error"]["message"]
    line = audit_lines(audit_path)[-1]
    assert line["api"] == "anthropic" and line["status"] == "error" and "source" in line["error"]


def test_count_tokens_with_a_string_document_source_is_a_400(server):
    body = {"model": POLICY, "messages": [{"role": "user", "content": [{"type": "document", "source": "abc"}]}]}
    r = httpx.post(f"{server.url}/v1/messages/count_tokens", json=body, timeout=60)
    assert r.status_code == 400 and r.json()["type"] == "error"


def test_tolerance_true_is_refused_not_read_as_one(server):
    r = httpx.post(f"{server.url}/v1/route", json={"question": "hi there", "tolerance": True}, timeout=60)
    assert r.status_code == 400 and "tolerance" in r.json()["error"]["message"]
    r = httpx.post(f"{server.url}/v1/chat/completions", timeout=60,
                   json={"model": POLICY, "messages": [{"role": "user", "content": "hi"}], "tolerance": True})
    assert r.status_code == 400


