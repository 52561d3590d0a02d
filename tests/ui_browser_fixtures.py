"""Fixtures of the playground browser tests, session-scoped: one headless chromium and one app.create_app()
server (the encoder loads once) however many modules use them. A module asks for them with
`pytest_plugins = ["tests.ui_browser_fixtures"]` and the names `browser`, `ui_registry`, `app_url`
(`ui_registry`, not `registry`: conftest's `registry` is the loopback-stub pool of the proxy tests).
"""

from __future__ import annotations

import pytest

from router.routing.registry import RouterRegistry

from .serving import ServerThread
from .ui_browser_env import ARGS, CHROMIUM


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def ui_registry():
    return RouterRegistry.from_paths()


@pytest.fixture(scope="session")
def app_url(ui_registry):
    import app

    with ServerThread(app.create_app(registry=ui_registry)) as server:
        yield server.url
