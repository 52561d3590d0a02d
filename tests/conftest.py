"""Shared fixtures: no real keys or proxies leak in, caches live in a temp folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from router.paths import PROJECT_ROOT

ROOT = PROJECT_ROOT

KEY_VARS = ("OPENROUTER_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "VLLM_API_KEY", "ROUTER_API_KEYS")
# The playground's access settings (router/ui/access.py): a test sets the ones it means.
UI_VARS = ("SPACE_ID", "ROUTER_UI_AUTH", "ROUTER_UI_SEND", "ROUTER_UI_MAX_TOKENS", "ROUTER_UI_CONCURRENCY")
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def pytest_configure(config):
    # Set before any fixture of any scope runs, so no test writes to the user's real cache.
    if not hasattr(config, "workerinput"):
        os.environ["ROUTER_CACHE"] = tempfile.mkdtemp(prefix="router-test-cache-")
        # Tests that count encoder forwards send the same texts again: no encoder-output cache unless a
        # test builds one itself (tests/test_fastpath.py).
        os.environ.setdefault("ROUTER_EMBED_CACHE", "0")


@pytest.fixture(scope="session")
def session_cache() -> Path:
    return Path(os.environ["ROUTER_CACHE"])


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, session_cache):
    for var in KEY_VARS + PROXY_VARS + UI_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("ROUTER_CACHE", str(session_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(pytest.mark.skip(reason="needs CUDA"))


@pytest.fixture(scope="session")
def default_router():
    """The real bundled router (default pool + bundled checkpoint), loaded once for the session."""
    from router.routing.router import PrefillRouter

    return PrefillRouter.from_config(ROOT / "configs" / "default.yaml")


# ---- a loopback upstream and the proxy over it ------------------------------------------------

@pytest.fixture(scope="module")
def stub():
    """A real OpenAI-compatible upstream on 127.0.0.1, one per test module."""
    from .upstream_stub import UpstreamStub

    with UpstreamStub() as s:
        yield s


@pytest.fixture(scope="module")
def stubs():
    """Two loopback upstreams, (local, cloud): "the cloud received nothing" is a fact about one server."""
    from .upstream_stub import UpstreamStub

    with UpstreamStub() as local, UpstreamStub() as cloud:
        yield local, cloud


@pytest.fixture(autouse=True)
def _fresh_stub(request):
    """Every test that uses the stub starts with no behaviours and no recorded calls."""
    if "stub" in request.fixturenames:
        request.getfixturevalue("stub").reset()


@pytest.fixture(scope="module")
def registry(stub, tmp_path_factory):
    """The proxy tests' pool (proxy_env.SLOTS) pointed at the stub."""
    from .proxy_env import make_registry, write_pool

    return make_registry(write_pool(tmp_path_factory.mktemp("pool"), stub.base_url))


@pytest.fixture(scope="module")
def audit_path(tmp_path_factory):
    return tmp_path_factory.mktemp("audit") / "audit.jsonl"


@pytest.fixture(scope="module")
def server(registry, audit_path):
    """The real app (create_api) under uvicorn on a free port, auditing to `audit_path`."""
    from .proxy_env import serve_api

    srv = serve_api(registry, audit_log=audit_path, api_keys=(), backoff=0.01)
    yield srv
    srv.stop()
