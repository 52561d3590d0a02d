"""Translation fidelity and HTTP conventions (issue 13), with the real SDKs against the proxy and
the loopback stub recording what reached the upstream: n > 1 finish reasons, streamed usage equal
to non-streamed usage, Anthropic documents / server tools / unknown blocks, cache_control and
system-block boundaries per slot, count_tokens, /v1/models/{id}, CORS, /health/ready, and the
/v1/route fields other routers' sidecar clients read.
"""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from .proxy_env import POLICY, dest, make_registry, serve_api, write_pool

Q = "Write a Python function that returns the n-th Fibonacci number."
USAGE = {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16, "cost": 0.00042,
         "prompt_tokens_details": {"cached_tokens": 3}, "completion_tokens_details": {"reasoning_tokens": 2}}
PDF_B64 = "JVBERi0xLjQKJcfsj6IK"


def every_slot(stub, **behaviour):
    for name in ("cheap", "mid", "strong", "best"):
        stub.behave(dest(name), **behaviour)


@pytest.fixture
def oai(server):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=60)


@pytest.fixture
def ant(server):
    return anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0, timeout=60)


# ---- OpenAI streams -------------------------------------------------------------------------

def test_n2_stream_keeps_every_choice_finish_reason(oai, stub):
    every_slot(stub, answer="a b c", finish_reasons=["stop", "length"])
    chunks = list(oai.chat.completions.create(model=POLICY, messages=[{"role": "user", "content": Q}], n=2,
                                              stream=True))
    finishes = {c.choices[0].index: c.choices[0].finish_reason for c in chunks
                if c.choices and c.choices[0].finish_reason}
    assert finishes == {0: "stop", 1: "length"}
    texts = {i: "".join(c.choices[0].delta.content or "" for c in chunks if c.choices and c.choices[0].index == i)
             for i in (0, 1)}
    assert texts == {0: "a b c", 1: "a b c"}
    assert chunks[-1].router["selected"]


@pytest.mark.parametrize("include_usage", [False, True])
def test_streamed_usage_equals_non_streamed_usage(oai, stub, include_usage):
    every_slot(stub, usage=USAGE)
    msgs = [{"role": "user", "content": Q}]
    plain = oai.chat.completions.create(model=POLICY, messages=msgs).usage.model_dump(exclude_none=True)
    opts = {"stream_options": {"include_usage": True}} if include_usage else {}
    chunks = list(oai.chat.completions.create(model=POLICY, messages=msgs, stream=True, **opts))
    streamed = chunks[-1].usage.model_dump(exclude_none=True)
    assert streamed == plain
    assert streamed["cost"] == 0.00042 and streamed["prompt_tokens_details"]["cached_tokens"] == 3
    assert streamed["completion_tokens_details"]["reasoning_tokens"] == 2


# ---- Anthropic blocks -----------------------------------------------------------------------

def test_pdf_and_text_documents_reach_the_upstream(ant, stub):
    resp = ant.messages.create(model=POLICY, max_tokens=50, messages=[{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_B64},
         "title": "report"},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Plain notes."}},
        {"type": "text", "text": "Summarise both documents."}]}])
    parts = stub.calls(resp.model)[0]["body"]["messages"][-1]["content"]
    assert parts[0] == {"type": "file", "file": {"filename": "report.pdf",
                                                 "file_data": f"data:application/pdf;base64,{PDF_B64}"}}
    assert parts[1] == {"type": "text", "text": "Plain notes."}
    assert parts[2] == {"type": "text", "text": "Summarise both documents."}


@pytest.mark.parametrize("content,tools,needle", [
    ([{"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
      {"type": "text", "text": "read"}], None, "document block with source.type 'url'"),
    ([{"type": "search_result", "source": "s", "title": "t", "content": []}, {"type": "text", "text": "x"}], None,
     "'search_result'"),
    ("Search the web for today's news.", [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
     "web_search_20250305"),
])
def test_unsupported_blocks_and_server_tools_are_refused_not_dropped(ant, stub, content, tools, needle):
    kwargs = {"tools": tools} if tools else {}
    with pytest.raises(anthropic.BadRequestError) as err:
        ant.messages.create(model=POLICY, max_tokens=50, messages=[{"role": "user", "content": content}], **kwargs)
    assert err.value.status_code == 400 and needle in err.value.message
    assert err.value.body["error"]["type"] == "invalid_request_error"
    assert stub.calls() == []


SYSTEM = [{"type": "text", "text": "You are a careful assistant."},
          {"type": "text", "text": "Long shared context " * 20, "cache_control": {"type": "ephemeral"}}]
CACHED_TURN = [{"role": "user", "content": [{"type": "text", "text": Q, "cache_control": {"type": "ephemeral"}}]}]


def test_local_slots_get_joined_system_and_no_cache_control(ant, stub):
    resp = ant.messages.create(model=POLICY, max_tokens=50, system=SYSTEM, messages=CACHED_TURN)
    sent = stub.calls(resp.model)[0]["body"]["messages"]
    assert sent[0] == {"role": "system", "content": "You are a careful assistant.\n\n" + "Long shared context " * 20}
    assert "cache_control" not in str(sent)


@pytest.fixture(scope="module")
def keyed(stub, tmp_path_factory):
    """The same slots as remote, keyed ones (api_key_env ALT_KEY), one pool with cache_control on."""
    import yaml

    path = write_pool(tmp_path_factory.mktemp("kpool"), stub.base_url, policy="keyed", key_env="ALT_KEY")
    cfg = yaml.safe_load(path.read_text())
    for m in cfg["models"]:
        m["cache_control"] = True
    path.write_text(yaml.safe_dump(cfg))
    srv = serve_api(make_registry(path), api_keys=(), backoff=0.01)
    yield srv
    srv.stop()


def test_caching_upstream_gets_cache_control_and_system_boundaries(keyed, stub, monkeypatch):
    monkeypatch.setenv("ALT_KEY", "sk-alt")
    client = anthropic.Anthropic(base_url=keyed.url, api_key="unused", max_retries=0)
    resp = client.messages.create(model="keyed", max_tokens=50, system=SYSTEM, messages=CACHED_TURN)
    sent = stub.calls(resp.model)[0]["body"]["messages"]
    assert sent[0] == {"role": "system", "content": [
        {"type": "text", "text": "You are a careful assistant."},
        {"type": "text", "text": "Long shared context " * 20, "cache_control": {"type": "ephemeral"}}]}
    assert sent[1]["content"] == [{"type": "text", "text": Q, "cache_control": {"type": "ephemeral"}}]


def test_count_tokens_counts_tools_and_system_blocks(ant):
    msgs = [{"role": "user", "content": "hi"}]
    base = ant.messages.count_tokens(model=POLICY, messages=msgs).input_tokens
    tool = {"name": "get_weather", "description": "Get the current weather of a city, in Celsius.",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
    with_tools = ant.messages.count_tokens(model=POLICY, messages=msgs, tools=[tool]).input_tokens
    with_system = ant.messages.count_tokens(model=POLICY, messages=msgs, system=SYSTEM).input_tokens
    assert with_tools > base + 10 and with_system > base + 20


# ---- conventions ----------------------------------------------------------------------------

def test_models_by_id(oai):
    assert oai.models.retrieve(POLICY).id == POLICY
    assert oai.models.retrieve("cheap").id == "cheap"
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("no-such-model")


def test_cors_is_off_by_default_and_on_when_configured(server, registry):
    pre = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}
    off = httpx.options(f"{server.url}/v1/chat/completions", headers=pre)
    assert off.status_code == 405 and "access-control-allow-origin" not in off.headers
    srv = serve_api(registry, api_keys=(), cors_origins=["https://app.example.com"])
    try:
        on = httpx.options(f"{srv.url}/v1/chat/completions", headers=pre)
        assert on.status_code == 200 and on.headers["access-control-allow-origin"] == "https://app.example.com"
        other = httpx.options(f"{srv.url}/v1/chat/completions", headers={**pre, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
    finally:
        srv.stop()


def test_health_ready_checks_encoder_and_keys(server, keyed, monkeypatch):
    ready = httpx.get(f"{server.url}/health/ready")
    assert ready.status_code == 200 and ready.json()["pools"][0]["encoder_loaded"] is True
    monkeypatch.delenv("ALT_KEY", raising=False)
    missing = httpx.get(f"{keyed.url}/health/ready")
    assert missing.status_code == 503 and missing.json()["pools"][0]["missing_keys"] == ["ALT_KEY"]
    monkeypatch.setenv("ALT_KEY", "sk-alt")
    assert httpx.get(f"{keyed.url}/health/ready").status_code == 200


# ---- /v1/route as the reference router's sidecar clients call it ------------------------------

@pytest.mark.parametrize("body", [
    {"messages": [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": Q}]},
    {"prompt": Q},
])
def test_route_answers_what_sidecar_clients_read(server, registry, body):
    # as their LiteLLM hook / OpenClaw plugin do: POST, then read selected_model. They wait 2 s; this
    # test allows more, because the shared CI machine can stall a single encoder pass past that.
    resp = httpx.post(f"{server.url}/v1/route", json=body, timeout=10.0)
    resp.raise_for_status()
    data = resp.json()
    pool = registry.get(POLICY).pool
    assert data["selected_model"] == data["chosen"] and data["selected_model"] in pool.names
    assert data["selected_model_id"] == data["model"] == pool.slot(data["chosen"]).model
    assert data["confidence"] == pytest.approx(data["scores"][data["chosen"]])
    assert data["fallback"] is False and data["routing_ms"] > 0


def test_anthropic_stream_usage_matches_non_stream_with_cache_reads(ant, stub):
    every_slot(stub, usage=USAGE)
    msgs = [{"role": "user", "content": Q}]
    plain = ant.messages.create(model=POLICY, max_tokens=50, messages=msgs).usage
    with ant.messages.stream(model=POLICY, max_tokens=50, messages=msgs) as s:
        streamed = s.get_final_message().usage
    assert (plain.input_tokens, plain.output_tokens, plain.cache_read_input_tokens) == (8, 5, 3)
    assert (streamed.input_tokens, streamed.output_tokens, streamed.cache_read_input_tokens) == (8, 5, 3)
