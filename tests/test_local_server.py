"""serve-local: request validation (fast) and the real bundled SmolLM2 over loopback HTTP (slow)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from router.errors import InputError
from router.local.server import parse_request

SERVED = "SmolLM2-135M-Instruct"
MSGS = [{"role": "user", "content": "What is the capital of France?"}]


def test_parse_request_defaults_and_bounds():
    req = parse_request({"messages": MSGS}, SERVED)
    assert req["max_tokens"] == 256 and req["temperature"] == 0.0 and not req["stream"]
    req = parse_request({"model": SERVED, "messages": MSGS, "max_completion_tokens": 5, "stream": True,
                         "stream_options": {"include_usage": True}, "stop": "\n"}, SERVED)
    assert (req["max_tokens"], req["stream"], req["include_usage"], req["stop"]) == (5, True, True, ["\n"])


@pytest.mark.parametrize("body,match", [
    ([], "expected a JSON object"),
    ({"messages": []}, "messages: expected a non-empty array"),
    ({"messages": MSGS, "max_tokens": 0}, r"max_tokens: expected an integer in \[1, 1024\]"),
    ({"messages": MSGS, "max_tokens": 5000}, "max_tokens"),
    ({"messages": MSGS, "max_tokens": "5"}, "max_tokens"),
    ({"messages": MSGS, "temperature": 3}, "temperature"),
    ({"messages": MSGS, "stop": [1]}, "stop"),
    ({"messages": MSGS, "seed": "x"}, "seed"),
])
def test_parse_request_errors_name_the_field(body, match):
    with pytest.raises(InputError, match=match):
        parse_request(body, SERVED)


def test_parse_request_unknown_model():
    with pytest.raises(LookupError, match="serves 'SmolLM2-135M-Instruct'"):
        parse_request({"model": "gpt-4", "messages": MSGS}, SERVED)


@pytest.fixture(scope="module")
def local_server(session_cache):
    from router.local.model import LocalChatModel
    from router.local.server import create_local_app
    from tests.serving import ServerThread

    # module fixtures run before the autouse env fixture: point the cache at the session's own
    # folder here, or the converted weights would land in the user's home
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ROUTER_CACHE", str(session_cache))
        model = LocalChatModel.bundled(threads=1)
    with ServerThread(create_local_app(model)) as server:
        yield server


def _slot(server):
    from router.routing.pool import Slot

    return Slot(name="smollm2-local", model=SERVED, api_base=f"{server.url}/v1", local=True,
                cost_per_m_input_tokens=0, cost_per_m_output_tokens=0)


@pytest.mark.slow
def test_real_model_answers_and_counts_tokens(local_server):
    from router.upstream.backends import Backend

    async def go():
        async with httpx.AsyncClient() as client:
            b = Backend(client, retries=0, timeout=120)
            first = await b.chat(_slot(local_server), MSGS, max_tokens=12)
            again = await b.chat(_slot(local_server), MSGS, max_tokens=12)
            short = await b.chat(_slot(local_server), [{"role": "user", "content": "Tell me a long story."}],
                                 max_tokens=3)
            return first, again, short

    first, again, short = asyncio.run(go())
    assert "paris" in first.text.lower()  # a real model that really answers
    assert first.text == again.text  # greedy by default: deterministic
    assert first.usage["prompt_tokens"] > 5 and 0 < first.usage["completion_tokens"] <= 12
    assert first.model == SERVED and first.finish_reason in ("stop", "length")
    assert short.usage["completion_tokens"] == 3 and short.finish_reason == "length"


@pytest.mark.slow
def test_real_model_streams_through_the_openai_sdk(local_server):
    from openai import OpenAI

    client = OpenAI(base_url=f"{local_server.url}/v1", api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list().data] == [SERVED]
    pieces, usage, finish = [], None, None
    for chunk in client.chat.completions.create(model=SERVED, messages=MSGS, max_tokens=12, stream=True,
                                                stream_options={"include_usage": True}):
        if chunk.usage:
            usage = chunk.usage
        for ch in chunk.choices:
            pieces.append(ch.delta.content or "")
            finish = ch.finish_reason or finish
    text = "".join(pieces)
    assert len([p for p in pieces if p]) > 1 and "paris" in text.lower()  # arrived in several chunks
    assert usage.completion_tokens <= 12 and finish in ("stop", "length")
    full = client.chat.completions.create(model=SERVED, messages=MSGS, max_tokens=12)
    assert full.choices[0].message.content == text  # streamed and whole answers agree


@pytest.mark.slow
def test_real_server_errors_use_openai_shape(local_server):
    url = f"{local_server.url}/v1/chat/completions"
    with httpx.Client(timeout=30) as c:
        r = c.post(url, json={"model": "gpt-4", "messages": MSGS})
        assert r.status_code == 404 and "serves 'SmolLM2-135M-Instruct'" in r.json()["error"]["message"]
        r = c.post(url, json={"messages": [{"role": "wizard", "content": "x"}]})
        assert r.status_code == 400 and r.json()["error"]["message"].startswith("messages[0]")
        r = c.post(url, content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
        r = c.post(url, json={"messages": MSGS, "max_tokens": 100000})
        assert r.status_code == 400 and "max_tokens" in r.json()["error"]["message"]
        assert c.get(f"{local_server.url}/health").json()["status"] == "ok"
