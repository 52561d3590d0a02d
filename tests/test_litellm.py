"""LiteLLM both ways, with a real `litellm.Router` and the loopback stub as the providers:

- the routing strategy and the proxy pre-call hook (router.integrations.litellm_hook) pick the
  slot the router's /v1/route sidecar (or an in-process PrefillRouter) chose; timeout, circuit
  breaker and fallback model against a real slow sidecar;
- `python -m router litellm-config` writes a config.yaml whose model_list LiteLLM loads, including
  the deployment that sends the policy through this router;
- our Anthropic -> OpenAI translation compared with LiteLLM's own adapter on tricky requests
  (agreements asserted equal, differences asserted as documented in docs/litellm.md).

Here the hook is called the way the proxy calls it and its output is sent through a real Router;
tests/test_litellm_proxy.py runs the real LiteLLM proxy server with it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time

import pytest
import yaml

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch of the price map at import
litellm = pytest.importorskip("litellm")

from router.integrations.litellm_config import litellm_config  # noqa: E402
from router.integrations.litellm_hook import (  # noqa: E402
    CircuitBreaker,
    HttpRoute,
    LocalRoute,
    PrefillPreCallHook,
    PrefillRoutingStrategy,
    RouteSource,
    from_env,
)
from router.routing.pool import load_pool  # noqa: E402
from router.serving.anthropic_translate import to_openai_messages, to_openai_tools  # noqa: E402

from .conftest import ROOT  # noqa: E402
from .proxy_env import POLICY, dest, write_pool  # noqa: E402
from .serving import ServerThread  # noqa: E402

Q = [{"role": "user", "content": "Write a Python function that returns the n-th Fibonacci number."}]


@pytest.fixture(scope="module")
def pool_path(stub, tmp_path_factory):
    return write_pool(tmp_path_factory.mktemp("lpool"), stub.base_url)


@pytest.fixture(scope="module")
def model_list(pool_path):
    return litellm_config(load_pool(pool_path))["model_list"]


def sidecar_choice(server, messages):
    import httpx

    return httpx.post(f"{server.url}/v1/route", json={"messages": messages, "policy": POLICY},
                      timeout=30).json()["selected_model"]


def test_routing_strategy_sends_litellm_to_the_chosen_slot(server, stub, model_list):
    router = litellm.Router(model_list=model_list)
    router.register_plugin(PrefillRoutingStrategy(router, RouteSource(HttpRoute(server.url, policy=POLICY,
                                                                                timeout=30))))
    resp = asyncio.run(router.acompletion(model=POLICY, messages=Q))
    chosen = sidecar_choice(server, Q)
    assert [c["body"]["model"] for c in stub.calls()] == [dest(chosen)]
    assert resp.choices[0].message.content.startswith(f"stub answer from {dest(chosen)}")


def test_in_process_route_agrees_with_the_sidecar(server, registry):
    local = RouteSource(LocalRoute(registry.get(POLICY), timeout=30))
    assert asyncio.run(local.choose(Q)) == sidecar_choice(server, Q)


def test_pre_call_hook_rewrites_the_model_as_the_proxy_calls_it(server, stub, model_list):
    hook = PrefillPreCallHook(RouteSource(HttpRoute(server.url, policy=POLICY, timeout=30)), {POLICY})
    data = asyncio.run(hook.async_pre_call_hook(None, None, {"model": POLICY, "messages": Q}, "completion"))
    chosen = sidecar_choice(server, Q)
    assert data["model"] == chosen and data["metadata"]["prefill_router"]["selected"] == chosen
    other = asyncio.run(hook.async_pre_call_hook(None, None, {"model": "cheap", "messages": Q}, "completion"))
    assert other["model"] == "cheap"  # names it does not route pass untouched
    resp = asyncio.run(litellm.Router(model_list=model_list).acompletion(**data))
    assert stub.calls()[-1]["body"]["model"] == dest(chosen) and resp.choices[0].message.content


class SlowSidecar:
    """A /v1/route that answers after `delay` seconds, counting calls (on `port` when given)."""

    def __init__(self, delay: float, port: int | None = None):
        from fastapi import FastAPI

        self.calls = 0
        self.lock = threading.Lock()
        app = FastAPI()

        @app.post("/v1/route")
        async def route():
            with self.lock:
                self.calls += 1
            await asyncio.sleep(delay)
            return {"selected_model": "best"}

        self.server = ServerThread(app, port=port).start()


def test_timeout_circuit_breaker_and_fallback(stub, model_list):
    sidecar = SlowSidecar(delay=3.0)
    try:
        now = [0.0]
        breaker = CircuitBreaker(failure_threshold=2, reset_after_s=30, clock=lambda: now[0])
        source = RouteSource(HttpRoute(sidecar.server.url, timeout=0.3), fallback_model="cheap", breaker=breaker)
        router = litellm.Router(model_list=model_list)
        router.register_plugin(PrefillRoutingStrategy(router, source))
        t0 = time.perf_counter()
        for _ in range(4):
            asyncio.run(router.acompletion(model=POLICY, messages=Q))
        took = time.perf_counter() - t0
        assert [c["body"]["model"] for c in stub.calls()] == [dest("cheap")] * 4  # every call served, by the fallback
        assert sidecar.calls == 2 and breaker.state == "open"  # calls 3 and 4 skipped the sidecar
        assert "Timeout" in source.last_error and took < 2.5  # two 0.3 s timeouts, not 3 s waits
        now[0] = 31.0  # half-open: one trial call, which times out and opens the breaker again
        asyncio.run(router.acompletion(model=POLICY, messages=Q))
        assert sidecar.calls == 3 and breaker.state == "open"
    finally:
        sidecar.server.stop()


def test_hook_from_environment(monkeypatch):
    monkeypatch.setenv("PREFILL_ROUTER_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("PREFILL_ROUTER_MODELS", "auto, prefill")
    monkeypatch.setenv("PREFILL_ROUTER_FALLBACK_MODEL", "cheap")
    monkeypatch.setenv("PREFILL_ROUTER_TIMEOUT", "0.5")
    hook = from_env()
    assert hook.route_models == {"auto", "prefill"} and hook.source.fallback_model == "cheap"
    assert hook.source.backend.url == "http://127.0.0.1:9/v1/route" and hook.source.backend.timeout == 0.5
    data = asyncio.run(hook.async_pre_call_hook(None, None, {"model": "auto", "messages": Q}, "completion"))
    assert data["model"] == "cheap" and data["metadata"]["prefill_router"]["fallback"] is True  # port 9: refused
    assert asyncio.run(hook.async_post_call_response_headers_hook(data, None, None)) == {
        "x-prefill-router-requested": "auto", "x-prefill-router-selected": "cheap",
        "x-prefill-router-fallback": "true", "x-prefill-router-fallback-reason": "route_error"}
    assert asyncio.run(hook.async_post_call_response_headers_hook({"model": "x"}, None, None)) is None  # not routed


def test_generated_config_loads_in_litellm_and_reaches_the_router(server, stub, pool_path, tmp_path):
    out = tmp_path / "config.yaml"
    proc = subprocess.run([sys.executable, "-m", "router", "litellm-config", "--config", str(pool_path), "--out",
                           str(out), "--router-url", server.url, "--hook"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    cfg = yaml.safe_load(out.read_text())
    names = [d["model_name"] for d in cfg["model_list"]]
    assert names == ["cheap", "mid", "strong", "best"] + [POLICY] * 4 + [f"{POLICY}-via-router"]
    assert cfg["model_list"][0]["litellm_params"] == {"model": "openai/stub/cheap", "api_base": stub.base_url,
                                                      "api_key": "none"}
    assert cfg["model_list"][0]["model_info"]["input_cost_per_token"] == pytest.approx(0.05e-6)
    assert cfg["litellm_settings"]["callbacks"] == ["router.integrations.litellm_hook.proxy_handler_instance"]
    os.environ["PREFILL_ROUTER_API_KEY"] = "unused"
    try:
        router = litellm.Router(model_list=cfg["model_list"])
        resp = asyncio.run(router.acompletion(model=f"{POLICY}-via-router", messages=Q))
    finally:
        os.environ.pop("PREFILL_ROUTER_API_KEY", None)
    # LiteLLM -> this router (routes) -> the stub: the router reports the destination it called
    assert resp.model.endswith(stub.calls()[-1]["body"]["model"]) and stub.calls()[-1]["body"]["model"].startswith("stub/")


def test_generated_config_for_openrouter_pool():
    cfg = litellm_config(load_pool(ROOT / "configs" / "default.yaml"))
    first = cfg["model_list"][0]["litellm_params"]
    assert first["model"].startswith("openrouter/") and first["api_key"] == "os.environ/OPENROUTER_API_KEY"
    assert "api_base" not in first


# ---- our Anthropic translation next to LiteLLM's ---------------------------------------------

def litellm_translation(req: dict) -> dict:
    from litellm.llms.anthropic.messages.adapters.transformation import LiteLLMAnthropicMessagesAdapter

    out, _names = LiteLLMAnthropicMessagesAdapter().translate_anthropic_to_openai({"model": "m", "max_tokens": 10,
                                                                                   **req})
    return json.loads(json.dumps(out, default=str))


def ours(req: dict) -> dict:
    out = {"messages": to_openai_messages(req["messages"], req.get("system"))}
    out.update(to_openai_tools(req.get("tools"), req.get("tool_choice")))
    return out


PDF = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}}


def test_both_translate_a_pdf_to_the_same_file_part():
    req = {"messages": [{"role": "user", "content": [PDF, {"type": "text", "text": "Summarise."}]}]}
    assert ours(req)["messages"] == litellm_translation(req)["messages"]


def test_both_translate_tool_use_and_text_tool_results_alike():
    req = {"messages": [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "calc", "input": {"x": 2}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "4"}]}],
        "tools": [{"name": "calc", "description": "math", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any"}}
    a, b = ours(req), litellm_translation(req)
    assert [m["role"] for m in a["messages"]] == [m["role"] for m in b["messages"]] == ["user", "assistant", "tool"]
    assert a["messages"][1]["tool_calls"][0]["function"]["name"] == b["messages"][1]["tool_calls"][0]["function"]["name"]
    assert json.loads(a["messages"][1]["tool_calls"][0]["function"]["arguments"]) == \
        json.loads(b["messages"][1]["tool_calls"][0]["function"]["arguments"])
    assert a["messages"][2]["content"] == "4" and b["messages"][2]["content"] in ("4", [{"type": "text", "text": "4"}])
    assert a["tools"][0]["function"]["name"] == b["tools"][0]["function"]["name"] == "calc"
    assert a["tool_choice"] == b["tool_choice"] == "required"


def test_system_blocks_keep_boundaries_in_both():
    req = {"system": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
           "messages": [{"role": "user", "content": "hi"}]}
    assert ours(req)["messages"][0] == litellm_translation(req)["messages"][0] == {
        "role": "system", "content": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]}


def test_differences_are_the_documented_ones():
    """Where we differ from LiteLLM, and why ours is right for arbitrary OpenAI-compatible upstreams
    (docs/litellm.md, 'Anthropic translation compared with LiteLLM's')."""
    from router.errors import InputError

    # 1. an image inside a tool_result: LiteLLM puts it in the tool message, which OpenAI's schema
    #    limits to text parts; we send the text as the tool message and the image as user content.
    img = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
    req = {"messages": [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "shot", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                      "content": [{"type": "text", "text": "see"}, img]}]}]}
    theirs = litellm_translation(req)["messages"]
    assert any(p.get("type") == "image_url" for p in theirs[1]["content"])
    mine = ours(req)["messages"]
    assert mine[1] == {"role": "tool", "tool_call_id": "t1", "content": "see"}
    assert mine[2]["role"] == "user" and mine[2]["content"][0]["type"] == "image_url"
    # 2. the server tool web_search_20250305: LiteLLM turns it into `web_search_options` (which only
    #    OpenAI's search-preview models accept); we refuse it with a 400 naming the tool type.
    req = {"messages": [{"role": "user", "content": "news?"}],
           "tools": [{"type": "web_search_20250305", "name": "web_search"}]}
    assert "web_search_options" in litellm_translation(req)
    with pytest.raises(InputError, match="web_search_20250305"):
        ours(req)
    # 3. earlier thinking blocks: LiteLLM adds `thinking_blocks` / `reasoning_content` to the
    #    assistant message (fields OpenAI's schema does not have); we drop them (documented).
    req = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "hm", "signature": "s"}, {"type": "text", "text": "a"}]},
        {"role": "user", "content": "more"}]}
    assert "thinking_blocks" in litellm_translation(req)["messages"][1]
    assert ours(req)["messages"][1] == {"role": "assistant", "content": "a"}
