"""Fast unit tests of the proxy's pure parts: Anthropic<->OpenAI translation, stickiness, the
session store, access checks, failover order, error messages.

Decisions here come from `PrefillRouter.decide` on synthetic scores, so the logic is tested without
depending on what the bundled checkpoint predicts.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from router.errors import MissingKeyError, UpstreamError
from router.routing.pool import load_pool
from router.routing.router import PrefillRouter, Scores
from router.serving.anthropic_translate import (
    StreamTranslator,
    to_anthropic_message,
    to_openai_messages,
    to_openai_tools,
)
from router.serving.auth import AuthError, check_access, configured_keys
from router.serving.errors import validation_message
from router.serving.sessions import SessionStore, sticky_choice
from router.upstream.backends import Attempt
from router.upstream.failover import failover_plan, final_error

from .proxy_env import write_pool


@pytest.fixture(scope="module")
def router(tmp_path_factory):
    return PrefillRouter(load_pool(write_pool(tmp_path_factory.mktemp("pool"), "http://127.0.0.1:9/v1")))


def decide(router, p, tolerance):
    return router.decide(Scores(np.array(p, dtype=float), 200, 0.0, 0.0), tolerance)


# ---- translation -------------------------------------------------------------------------

def test_anthropic_request_becomes_openai_messages():
    msgs = [
        {"role": "user", "content": [{"type": "text", "text": "look"},
                                     {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                  "data": "AAAA"}}]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm"}, {"type": "text", "text": "calling"},
                                          {"type": "tool_use", "id": "tu1", "name": "calc", "input": {"x": 2}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu1", "content": [
            {"type": "text", "text": "4"}]}, {"type": "text", "text": "thanks"}]},
    ]
    out = to_openai_messages(msgs, system=[{"type": "text", "text": "sys A"}, {"type": "text", "text": "sys B"}])
    # system blocks keep their boundaries (issue 13); local slots get them joined (router.upstream.adapt)
    assert out[0] == {"role": "system", "content": [{"type": "text", "text": "sys A"}, {"type": "text", "text": "sys B"}]}
    assert out[1]["content"][1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    assert out[2]["content"] == "calling"
    assert out[2]["tool_calls"][0]["function"] == {"name": "calc", "arguments": json.dumps({"x": 2})}
    assert out[3] == {"role": "tool", "tool_call_id": "tu1", "content": "4"}
    assert out[4] == {"role": "user", "content": "thanks"}


def test_tools_and_tool_choice_translate():
    extra = to_openai_tools([{"name": "calc", "description": "math", "input_schema": {"type": "object"}}],
                            {"type": "tool", "name": "calc", "disable_parallel_tool_use": True})
    assert extra["tools"][0]["function"] == {"name": "calc", "description": "math", "parameters": {"type": "object"}}
    assert extra["tool_choice"] == {"type": "function", "function": {"name": "calc"}}
    assert extra["parallel_tool_calls"] is False
    assert to_openai_tools(None, {"type": "any"}) == {"tool_choice": "required"}


@pytest.mark.parametrize("finish,matched,expected", [
    ("stop", None, ("end_turn", None)), ("length", None, ("max_tokens", None)),
    ("tool_calls", None, ("tool_use", None)), ("stop", "END", ("stop_sequence", "END")),
])
def test_openai_response_becomes_anthropic_message(finish, matched, expected):
    raw = {"choices": [{"message": {"content": "hi", "tool_calls": [
        {"id": "c1", "function": {"name": "calc", "arguments": "{\"x\": 1}"}}]},
        "finish_reason": finish, "stop_reason": matched}], "usage": {"prompt_tokens": 7, "completion_tokens": 3}}
    msg = to_anthropic_message(raw, msg_id="msg_1", model="m", stop_sequences=["END"])
    assert (msg["stop_reason"], msg["stop_sequence"]) == expected
    assert msg["content"] == [{"type": "text", "text": "hi"},
                              {"type": "tool_use", "id": "c1", "name": "calc", "input": {"x": 1}}]
    assert msg["usage"] == {"input_tokens": 7, "output_tokens": 3}


def _events(lines):
    return [json.loads(x.split("data: ", 1)[1]) for x in lines]


def test_stream_translator_text_then_tool_call():
    tr = StreamTranslator("msg_1", "m", input_tokens=5)
    out = tr.start()
    out += tr.feed({"choices": [{"delta": {"role": "assistant", "content": ""}}]})
    out += tr.feed({"choices": [{"delta": {"content": "Let me"}}]})
    out += tr.feed({"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {
        "name": "calc", "arguments": "{\"x\""}}]}}]})
    out += tr.feed({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}}]})
    out += tr.feed({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]})
    out += tr.feed({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}})
    ev = _events(out + tr.finish_events({"router": {"x": 1}}))
    assert [e["type"] for e in ev] == [
        "message_start", "content_block_start", "ping", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop"]
    assert ev[5]["content_block"] == {"type": "tool_use", "id": "c1", "name": "calc", "input": {}}
    assert "".join(e["delta"]["partial_json"] for e in ev[6:8]) == "{\"x\": 1}"
    assert ev[-2]["delta"]["stop_reason"] == "tool_use" and ev[-2]["usage"] == {"output_tokens": 4, "input_tokens": 9}
    assert ev[-2]["router"] == {"x": 1}


def test_stream_translator_empty_answer_still_has_a_block():
    tr = StreamTranslator("msg_1", "m")
    ev = _events(tr.start() + tr.finish_events())
    assert [e["type"] for e in ev] == ["message_start", "content_block_start", "ping", "content_block_stop",
                                       "message_delta", "message_stop"]


# ---- stickiness, sessions, failover --------------------------------------------------------

def test_sticky_choice_stays_while_within_tolerance(router):
    r = decide(router, [0.5, 0.7, 0.8, 0.9], 0.25)  # candidates: mid, strong, best -> mid (cheapest)
    assert r.chosen == "mid"
    assert sticky_choice(r, "best") == ("best", True)
    assert sticky_choice(r, "cheap") == ("mid", False)  # 0.9 - 0.5 > 0.25: move on
    assert sticky_choice(r, None) == ("mid", False)
    assert sticky_choice(r, "gone-slot") == ("mid", False)


def test_failover_plan_is_chosen_then_next_cheapest_candidate_then_best(router):
    r = decide(router, [0.85, 0.86, 0.2, 0.9], 0.1)  # candidates cheap, mid, best
    assert [s.name for s in failover_plan(r, r.chosen, router.pool)] == ["cheap", "mid", "best"]
    r0 = decide(router, [0.85, 0.86, 0.2, 0.9], 0.0)
    assert [s.name for s in failover_plan(r0, r0.chosen, router.pool)] == ["best"]
    assert [s.name for s in failover_plan(r, "best", router.pool)] == ["best", "cheap"]


def test_session_store_is_bounded_and_thread_safe():
    store = SessionStore(max_sessions=50)

    def work(k):
        for i in range(200):
            store.set(("c", "p", f"{k}-{i}"), "slot")
            store.get(("c", "p", f"{k}-{i // 2}"))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(store) == 50
    store.set(("c", "p", "x"), "a")
    assert store.get(("c", "p", "x")) == "a" and store.get(("c", "p", "never")) is None


def test_session_store_expires_idle_sessions():
    now = [0.0]
    store = SessionStore(max_sessions=10, ttl_s=60, timer=lambda: now[0])
    store.set(("c", "p", "s"), "a")
    now[0] = 59.0
    assert store.get(("c", "p", "s")) == "a"
    store.set(("c", "p", "s"), "b")  # a new turn restarts the clock
    now[0] = 118.0
    assert store.get(("c", "p", "s")) == "b"
    now[0] = 120.0
    assert store.get(("c", "p", "s")) is None and len(store) == 0


def test_final_error_names_the_missing_env_var_or_reports_502():
    err = final_error([MissingKeyError("s", "MY_KEY")], [])
    assert isinstance(err, MissingKeyError) and "MY_KEY" in str(err)
    attempts = [Attempt("a", "m", 500, 1.0, "boom"), Attempt("b", "m", None, 1.0, "ConnectError")]
    err = final_error([UpstreamError("x"), UpstreamError("y")], attempts)
    assert err.status == 502 and "a, b" in str(err)
    assert final_error([UpstreamError("x")], [Attempt("a", "m", 400, 1.0, "bad")]).status == 400


# ---- access and errors ---------------------------------------------------------------------

def test_attempt_to_dict_has_every_field():
    from dataclasses import fields

    a = Attempt("slot-a", "vendor/model", 429, 12.5, "rate limited")
    assert a.to_dict() == {f.name: getattr(a, f.name) for f in fields(Attempt)}


def test_access_check():
    keys = configured_keys({"ROUTER_API_KEYS": " k1 , k2,"})
    assert keys == ("k1", "k2")
    assert check_access({"authorization": "Bearer k2"}, keys) == "k2"
    assert check_access({"x-api-key": "k1"}, keys) == "k1"
    assert check_access({}, ()) is None
    for headers in ({}, {"authorization": "Bearer nope"}, {"authorization": "Basic k1"}):
        with pytest.raises(AuthError):
            check_access(headers, keys)


def test_validation_messages_say_what_to_fix():
    msg, param = validation_message([{"type": "missing", "loc": ("body", "messages"), "msg": "Field required"}])
    assert msg == "messages: Field required" and param == "messages"
    msg, _ = validation_message([{"type": "less_than_equal", "loc": ("body", "tolerance"), "msg": "x"}])
    assert "[0, 1]" in msg
    msg, param = validation_message([{"type": "json_invalid", "loc": ("body", 3), "msg": "JSON decode error",
                                      "ctx": {"error": "Expecting value"}}])
    assert "not valid JSON" in msg and param is None


# ---- batched scoring ------------------------------------------------------------------------

def test_score_batcher_matches_single_scoring_and_batches_concurrent_calls(router):
    from concurrent.futures import ThreadPoolExecutor

    from router.serving.batching import ScoreBatcher

    class Counting(ScoreBatcher):
        sizes: list[int] = []

        def _score_batch(self, texts):
            self.sizes.append(len(texts))
            return super()._score_batch(texts)

    texts = [f"Question {i}: " + "what is the derivative of x squared? " * (1 + i % 5) for i in range(24)]
    batcher = Counting(router, max_batch=8)
    with ThreadPoolExecutor(24) as pool:
        got = list(pool.map(batcher.score, texts))
    assert sum(Counting.sizes) == 24 and max(Counting.sizes) <= 8
    assert len(Counting.sizes) < 24  # calls that arrived during a forward shared the next one
    for text, s in zip(texts, got):
        alone = router.score(text)
        assert s.input_tokens == alone.input_tokens
        np.testing.assert_allclose(s.p, alone.p, atol=1e-4)
    assert batcher.score(texts[0]).p.shape == (len(router.pool.models),)


@pytest.mark.slow
def test_an_int8_router_gives_a_batched_request_exactly_its_own_p(tmp_path):
    """int8 quantizes activations per tensor: in one padded batch a question's P moved by up to 0.005
    with its batch-mates. Encoded alone, the micro-batched P is the single-route P, so an audit
    replay (P within 1e-4) reproduces every decision the proxy made."""
    from concurrent.futures import ThreadPoolExecutor

    from router.model.embed_cache import cache_for
    from router.model.head import load_checkpoint
    from router.paths import PROJECT_ROOT
    from router.serving.batching import ScoreBatcher

    pool = load_pool(PROJECT_ROOT / "configs" / "options" / "routerbench-11-fast.yaml")
    r = PrefillRouter(pool, checkpoint=load_checkpoint(PROJECT_ROOT / "assets" / "checkpoint-fast"))
    assert r.checkpoint.encoder_spec.quantize == "int8"
    texts = [f"Question {i}: " + "prove that the sum of two even numbers is even. " * (1 + i % 6) for i in range(12)]
    cache = cache_for(r.encoder.spec)  # off between the three passes: each must run the encoder
    batcher = ScoreBatcher(r, max_batch=12)
    with ThreadPoolExecutor(12) as ex:
        got = np.stack([s.p for s in ex.map(batcher.score, texts)])
    cache.clear()
    alone = np.stack([r.score(t).p for t in texts])
    cache.clear()
    one_batch = np.stack([s.p for s in r.score_texts(texts)])
    assert np.array_equal(got, alone) and np.array_equal(one_batch, alone)


def test_every_forward_runs_on_the_one_torch_thread_and_a_cancelled_request_is_skipped(router):
    from concurrent.futures import ThreadPoolExecutor
    from dataclasses import replace

    from router.model import torch_thread
    from router.model.encoder import get_encoder
    from router.serving.batching import ScoreBatcher

    # The torch runtime (the bundled spec routes with ONNX Runtime, which keeps its own thread pool):
    # every torch forward must run on the one torch thread, whichever thread asks.
    router = PrefillRouter(router.pool, checkpoint=router.checkpoint,
                           encoder=get_encoder(replace(router.checkpoint.encoder_spec, runtime="torch"), "cpu"))

    seen: list[str] = []
    hook = router.encoder.model.register_forward_hook(lambda *a: seen.append(threading.current_thread().name))
    batches: list[list[str]] = []
    gate = threading.Event()

    class Recording(ScoreBatcher):
        def _score_batch(self, texts):
            batches.append(list(texts))
            return super()._score_batch(texts)

    try:
        with ThreadPoolExecutor(3) as pool:  # callers on three threads, plus this one
            list(pool.map(router.score, ["one question", "another question", "a third"]))
        router.score("from the test thread")
        assert seen and set(seen) == {seen[0]} and seen[0].startswith("router-torch")

        torch_thread.submit(gate.wait)  # hold the torch thread so that the batch can only form behind it
        batcher = Recording(router)
        kept, dropped = batcher.submit("kept question"), batcher.submit("dropped question")
        assert dropped.cancel()  # the client went away before its batch started
        gate.set()
        assert kept.result(timeout=60).p.shape == (len(router.pool.models),)
        assert batches == [["kept question"]]
    finally:
        gate.set()
        hook.remove()


def test_routing_text_skips_a_trailing_turn_without_text(router):
    from router.errors import InputError
    from router.serving.pipeline import routing_text

    convo = [{"role": "user", "content": "List the files in /tmp"},
             {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "ls", "input": {}}]},
             {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": ""}]}]
    assert routing_text(router, convo) == "List the files in /tmp"
    with pytest.raises(InputError, match="user"):
        routing_text(router, [{"role": "assistant", "content": "hi"}])
    with pytest.raises(InputError, match="empty"):
        routing_text(router, [{"role": "user", "content": ""}])


def test_an_upstream_echoing_our_key_gets_it_redacted(monkeypatch):
    # Narrow adapter logic, so a MockTransport: the loopback stub never echoes headers.
    import asyncio

    import httpx

    from router.routing.pool import Slot
    from router.upstream.backends import Backend

    def echo(request):
        return httpx.Response(401, json={"error": {"message": f"bad key {request.headers['authorization']}"}})

    monkeypatch.setenv("ECHO_KEY", "sk-very-secret-987")
    slot = Slot(name="s", model="m", api_base="http://upstream.test/v1", api_key_env="ECHO_KEY",
                cost_per_m_input_tokens=0, cost_per_m_output_tokens=0)

    async def main():
        async with httpx.AsyncClient(transport=httpx.MockTransport(echo)) as client:
            await Backend(client, retries=0).chat(slot, [{"role": "user", "content": "hi"}])

    with pytest.raises(UpstreamError) as e:
        asyncio.run(main())
    assert "sk-very-secret-987" not in str(e.value) and "[redacted]" in e.value.attempts[0].error


def test_a_partly_echoed_key_is_masked_too():
    """The whole key and "Bearer KEY" were masked, but an upstream quoting its last 12 characters leaked them."""
    from router.upstream.backends import _scrub

    key = "sk-or-v1-0123456789abcdef0123456789abcdef"
    h = {"Authorization": f"Bearer {key}"}
    assert _scrub(f"invalid key ending in {key[-12:]} (project x)", h) == "invalid key ending in [redacted] (project x)"
    assert _scrub(f"bad key {key}", h) == "bad key [redacted]"
    assert key[:9] not in _scrub(f"key {key[:20]}... rejected", h)
    assert _scrub("model gpt-4o is overloaded", h) == "model gpt-4o is overloaded"  # short overlaps stay
    assert _scrub("anything", {}) == "anything"
