"""Fixtures of the playground browser tests: one app.create_app() server for the whole run (the encoder
loads and the app starts once however many modules use it) and one headless chromium per module.

A module asks for them with `pytest_plugins = ["tests.ui_browser_fixtures"]` and the names `browser`,
`ui_registry`, `app_url` (`ui_registry`, not `registry`: conftest's `registry` is the loopback-stub pool
of the proxy tests).
"""

from __future__ import annotations

import pytest

from router.routing.registry import RouterRegistry

from .serving import ServerThread
from .ui_browser_env import ARGS, CHROMIUM


@pytest.fixture(scope="module")
def browser():
    # Module, not session: Playwright's sync API keeps an event loop running in this thread while it is
    # open, and later modules' asyncio.run() would fail ("cannot be called from a running event loop").
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
