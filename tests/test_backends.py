"""router.backends against the real loopback stub: retries, failures, streams, keys."""

from __future__ import annotations

import asyncio

import pytest

from router.errors import MissingKeyError, UpstreamError
from router.routing.pool import Slot
from router.upstream.backends import Backend, chunk_text, resolve_key
from router.upstream.client import upstream_client


def slot(stub, model="m1", **kw) -> Slot:
    base = dict(name=f"slot-{model}", model=model, api_base=stub.base_url, cost_per_m_input_tokens=1,
                cost_per_m_output_tokens=2, local=True)
    base.update(kw)
    return Slot(**base)


def run(coro_fn, timeout=5.0):
    async def main():
        async with upstream_client() as client:  # the client the proxy, playground and collect use
            return await coro_fn(Backend(client, retries=2, backoff=0.01, timeout=timeout))
    return asyncio.run(main())


def test_chat_returns_text_usage_and_sends_slot_settings(stub):
    stub.behave("m1", answer="Paris is the capital")
    s = slot(stub, extra_body={"reasoning": {"effort": "high"}}, system_prompt="Be brief.")
    r = run(lambda b: b.chat(s, [{"role": "user", "content": "capital of France?"}], max_tokens=50))
    assert r.text == "Paris is the capital"
    assert r.usage["completion_tokens"] == 4 and r.usage["prompt_tokens"] > 0
    body = stub.calls("m1")[0]["body"]
    assert body["reasoning"] == {"effort": "high"}
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["max_tokens"] == 50
    assert "authorization" not in stub.calls("m1")[0]["headers"]


def test_retries_on_500_then_succeeds(stub):
    stub.behave("m1", answer="ok", fail_status=500, fail_times=2)
    r = run(lambda b: b.chat(slot(stub), [{"role": "user", "content": "hi"}]))
    assert r.text == "ok"
    assert [a.status for a in r.attempts] == [500, 500, 200]


def test_4xx_is_not_retried(stub):
    stub.behave("m1", fail_status=400, fail_times=-1)
    with pytest.raises(UpstreamError) as e:
        run(lambda b: b.chat(slot(stub), [{"role": "user", "content": "hi"}]))
    assert e.value.status == 400 and len(e.value.attempts) == 1


def test_persistent_429_gives_up_with_every_attempt(stub):
    stub.behave("m1", fail_status=429, fail_times=-1)
    with pytest.raises(UpstreamError) as e:
        run(lambda b: b.chat(slot(stub), [{"role": "user", "content": "hi"}]))
    assert e.value.status == 429 and len(e.value.attempts) == 3


def test_junk_body_is_an_error_not_a_crash(stub):
    stub.behave("m1", junk=True)
    with pytest.raises(UpstreamError) as e:
        run(lambda b: b.chat(slot(stub), [{"role": "user", "content": "hi"}]))
    assert "invalid response body" in e.value.attempts[-1].error


def test_connection_refused_is_upstream_error():
    s = Slot(name="dead", model="x", api_base="http://127.0.0.1:9/v1", cost_per_m_input_tokens=0,
             cost_per_m_output_tokens=0, local=True)
    with pytest.raises(UpstreamError) as e:
        run(lambda b: b.chat(s, [{"role": "user", "content": "hi"}]))
    assert e.value.status is None and "ConnectError" in e.value.attempts[0].error


def test_an_upstream_cookie_is_not_replayed_on_the_next_request(stub):
    stub.behave("m1", answer="hi", set_cookie="session=from-caller-one; Path=/")

    async def go(b):
        for _ in range(2):
            await b.chat(slot(stub), [{"role": "user", "content": "hi"}])

    run(go)
    assert [c["headers"].get("cookie") for c in stub.calls("m1")] == [None, None]


def test_a_slow_upstream_times_out_into_retries_then_an_upstream_error(stub):
    stub.behave("m1", answer="late", delay=1.5)
    with pytest.raises(UpstreamError) as e:
        run(lambda b: b.chat(slot(stub), [{"role": "user", "content": "hi"}]), timeout=0.3)
    attempts = e.value.attempts
    assert len(attempts) == 3 and all(a.status is None and "Timeout" in a.error for a in attempts)
    assert all(a.latency_ms < 1400 for a in attempts)  # gave up at the timeout, not when the answer came


def test_stream_yields_text_and_usage(stub):
    stub.behave("m1", answer="one two three four")

    async def go(b):
        chunks = [c async for c in b.stream(slot(stub), [{"role": "user", "content": "count"}])]
        return chunks

    chunks = run(go)
    assert "".join(chunk_text(c) for c in chunks) == "one two three four"
    assert chunks[-1]["usage"]["completion_tokens"] == 4


def test_stream_dropped_midway_raises_after_partial_text(stub):
    stub.behave("m1", answer="a b c d e f", drop_after=2)
    got = []

    async def go(b):
        async for c in b.stream(slot(stub), [{"role": "user", "content": "x"}]):
            got.append(chunk_text(c))

    with pytest.raises(UpstreamError, match="midway"):
        run(go)
    assert "".join(got) == "a b"


def test_missing_key_names_the_variable(monkeypatch):
    s = Slot(name="cloud", model="x", api_key_env="OPENROUTER_API_KEY", cost_per_m_input_tokens=1,
             cost_per_m_output_tokens=1)
    with pytest.raises(MissingKeyError) as e:
        resolve_key(s)
    assert e.value.env_var == "OPENROUTER_API_KEY" and "OPENROUTER_API_KEY" in str(e.value)
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-test")
    assert resolve_key(s) == "sk-test"


def test_key_is_sent_as_bearer(stub, monkeypatch):
    monkeypatch.setenv("STUB_KEY", "sk-abc")
    stub.behave("m1", answer="ok")
    run(lambda b: b.chat(slot(stub, api_key_env="STUB_KEY", local=False), [{"role": "user", "content": "hi"}]))
    assert stub.calls("m1")[0]["headers"]["authorization"] == "Bearer sk-abc"
