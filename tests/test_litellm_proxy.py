"""The real LiteLLM proxy server with our pre-call hook, set up the way docs/litellm.md tells a user:
`python -m router litellm-config --hook` writes config.yaml, PREFILL_ROUTER_* variables configure
the hook, `litellm --config config.yaml` serves it. The OpenAI SDK talks to that proxy; the
loopback stub is every deployment's upstream and records what reached it; our router's
/v1/route runs on a fixed port so the test can take it down and bring up a slow one there.

The proxy runs from its own virtual environment (LITELLM_PROXY_VENV, default .litellm-proxy-venv;
requirements-litellm-proxy.txt says why it is not the main one). One proxy start takes 30-60 s on
a busy 2-core machine, so one module-scoped proxy serves every test here, in file order.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from router.serving.app import create_api

from .conftest import KEY_VARS, PROXY_VARS, ROOT
from .proxy_env import POLICY, SLOTS, dest, make_registry, write_pool
from .serving import ServerThread, free_port, wait_http
from .test_litellm import Q, SlowSidecar

PROXY_VENV = Path(os.environ.get("LITELLM_PROXY_VENV") or ROOT / ".litellm-proxy-venv")
LITELLM = PROXY_VENV / "bin" / "litellm"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not LITELLM.exists(), reason=f"no LiteLLM proxy at {LITELLM}: python3 -m venv {PROXY_VENV} && "
                                 f"{PROXY_VENV}/bin/pip install -r requirements-litellm-proxy.txt")]

TIMEOUT_S = 1.0  # PREFILL_ROUTER_TIMEOUT: the slow sidecar below answers only after 6 s
RESET_S = 10.0  # PREFILL_ROUTER_RESET_S: long enough that the next requests surely find the breaker open


class Sidecar:
    """Our router's API on one fixed port, so it can be stopped and replaced there."""

    def __init__(self, registry):
        self.registry, self.port, self.server = registry, free_port(), None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Sidecar:
        self.server = ServerThread(create_api(self.registry, api_keys=()), port=self.port).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


@pytest.fixture(scope="module")
def setup(stub, tmp_path_factory):
    folder = tmp_path_factory.mktemp("litellm-proxy")
    pool = write_pool(folder, stub.base_url)
    sidecar = Sidecar(make_registry(pool)).start()
    chosen = httpx.post(f"{sidecar.url}/v1/route", json={"messages": Q}, timeout=60).json()["selected_model"]
    fallback = next(name for name, *_ in SLOTS if name != chosen)  # so a fallback is told apart from a choice
    config = folder / "config.yaml"
    gen = subprocess.run([sys.executable, "-m", "router", "litellm-config", "--config", str(pool), "--hook",
                          "--out", str(config)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert gen.returncode == 0, gen.stderr
    key = "sk-" + secrets.token_hex(32)
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS + PROXY_VARS and not k.startswith("PREFILL_")}
    env.update({
        "PYTHONPATH": str(ROOT),  # "this repository on PYTHONPATH" (docs/litellm.md)
        "PREFILL_ROUTER_URL": sidecar.url, "PREFILL_ROUTER_MODELS": POLICY,
        "PREFILL_ROUTER_TIMEOUT": str(TIMEOUT_S), "PREFILL_ROUTER_FALLBACK_MODEL": fallback,
        "PREFILL_ROUTER_FAILURES": "2", "PREFILL_ROUTER_RESET_S": str(RESET_S),
        "LITELLM_MASTER_KEY": key, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_PROXY": "127.0.0.1,localhost"})
    port = free_port()
    log = folder / "litellm.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(LITELLM), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
                                cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health/liveliness", proc, timeout=300, logs=lambda: log.read_text(errors="replace")[-4000:])
        yield {"url": url, "key": key, "chosen": chosen, "fallback": fallback, "sidecar": sidecar, "log": log}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        sidecar.stop()


@pytest.fixture(scope="module")
def client(setup):
    import openai

    return openai.OpenAI(base_url=f"{setup['url']}/v1", api_key=setup["key"], max_retries=0, timeout=60)


def ask(client, model: str = POLICY):
    """One chat completion through the LiteLLM proxy: (answer text, response headers). The SDK
    raises on any 4xx/5xx, so each call also asserts that nothing failed."""
    raw = client.chat.completions.with_raw_response.create(model=model, messages=Q)
    assert raw.http_response.status_code == 200
    return raw.parse().choices[0].message.content, raw.headers


def test_config_is_the_documented_one(setup):
    cfg = yaml.safe_load((setup["log"].parent / "config.yaml").read_text())
    assert cfg["litellm_settings"] == {"callbacks": ["router.integrations.litellm_hook.proxy_handler_instance"]}
    assert {d["model_name"] for d in cfg["model_list"]} == {POLICY} | {name for name, *_ in SLOTS}


def test_the_proxy_sends_the_request_to_the_slot_our_router_chose(setup, client, stub):
    chosen = setup["chosen"]
    text, headers = ask(client)
    assert [c["body"]["model"] for c in stub.calls()] == [dest(chosen)]
    assert text.startswith(f"stub answer from {dest(chosen)}")
    assert headers["x-prefill-router-selected"] == chosen and headers["x-prefill-router-requested"] == POLICY
    assert headers["x-prefill-router-fallback"] == "false" and "x-prefill-router-fallback-reason" not in headers
    assert headers["x-litellm-model-group"] == chosen  # LiteLLM's own header agrees: it served that model_name


def test_a_stream_goes_to_the_chosen_slot_too(setup, client, stub):
    stream = client.chat.completions.create(model=POLICY, messages=Q, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert [c["body"]["model"] for c in stub.calls()] == [dest(setup["chosen"])]
    assert text.startswith(f"stub answer from {dest(setup['chosen'])}")


def test_other_model_names_pass_untouched(client, stub):
    text, headers = ask(client, "best")
    assert [c["body"]["model"] for c in stub.calls()] == [dest("best")]
    assert "x-prefill-router-selected" not in headers


def test_fallback_when_the_router_is_down_or_slow_and_the_circuit_breaker(setup, client, stub):
    sidecar, fallback, chosen = setup["sidecar"], setup["fallback"], setup["chosen"]

    def fell_back(reason: str) -> None:
        text, headers = ask(client)
        assert stub.calls()[-1]["body"]["model"] == dest(fallback) and text.startswith(f"stub answer from {dest(fallback)}")
        assert headers["x-prefill-router-selected"] == fallback and headers["x-prefill-router-fallback"] == "true"
        assert headers["x-prefill-router-fallback-reason"] == reason

    sidecar.stop()  # down: connection refused, twice, which opens the breaker (PREFILL_ROUTER_FAILURES=2)
    fell_back("route_error")
    fell_back("route_error")
    opened = time.monotonic()
    fell_back("circuit_open")
    slow = SlowSidecar(delay=6.0, port=sidecar.port)  # a router that hangs, where the real one was
    try:
        fell_back("circuit_open")
        assert slow.calls == 0  # the open breaker did not call it
        time.sleep(max(0.0, opened + RESET_S + 0.5 - time.monotonic()))
        t0 = time.monotonic()
        fell_back("route_error")  # half-open: one trial call, which times out after PREFILL_ROUTER_TIMEOUT
        took = time.monotonic() - t0
        opened = time.monotonic()
        assert slow.calls == 1 and took < 5.0, took  # the 1 s timeout, not the 6 s answer
        fell_back("circuit_open")  # the failed trial opened it again
        assert slow.calls == 1
    finally:
        slow.server.stop()
    sidecar.start()  # the real router is back: after the reset time one trial call closes the breaker
    time.sleep(max(0.0, opened + RESET_S + 0.5 - time.monotonic()))
    for _ in range(2):
        text, headers = ask(client)
        assert stub.calls()[-1]["body"]["model"] == dest(chosen) and headers["x-prefill-router-fallback"] == "false"
