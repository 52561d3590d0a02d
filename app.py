"""The playground and the proxy in one process: FastAPI app, Gradio UI mounted at "/".

    python app.py                       # http://127.0.0.1:7860
    GRADIO_SERVER_NAME=0.0.0.0 python app.py   # listen on all interfaces (Spaces does this)

Environment: ROUTER_CONFIG (default pool YAML), PORT or GRADIO_SERVER_PORT (7860); access and
spending limits of the UI: ROUTER_API_KEYS, ROUTER_UI_AUTH, ROUTER_UI_SEND, ROUTER_UI_MAX_TOKENS,
ROUTER_UI_CONCURRENCY (router/ui/access.py; a public Space: docs/hardening.md).
"""

from __future__ import annotations

import os


def create_app(config: str | None = None, registry=None):
    """Build the whole app; importable without side effects (tests call this)."""
    import gradio as gr

    from router.routing.registry import RouterRegistry
    from router.serving.app import create_api
    from router.ui.access import ui_access
    from router.ui.layout import build_ui

    # A registry built here serves people: warmed, so the first query shows routing's usual cost.
    registry = registry or RouterRegistry.from_paths(default_path=config or os.environ.get("ROUTER_CONFIG")).warm()
    api = create_api(registry)
    # The UI follows the API's access rules: with ROUTER_API_KEYS or ROUTER_UI_AUTH set, Gradio's login
    # guards the page and every /gradio_api/* call (see router/ui/access.py, docs/hardening.md).
    access = ui_access(api_keys=api.state.proxy.api_keys)
    demo = build_ui(registry, audit=api.state.proxy.audit, access=access,
                    governance=api.state.proxy.governance)  # one set of budget counters
    login = {"auth": access.login, "auth_message": "Log in with your user name and password, or any user name "
             "and one of the router's API keys."} if access.login else {}
    app = gr.mount_gradio_app(api, demo, path="/", **login, **ui_mount_options())
    # Gradio checks that a posted FileData lies in its upload folder only once the Blocks "has
    # launched", which mounting never sets: without this, an API caller could name any server file
    # and Gradio would copy it into the upload folder for the sweep to read (router/ui/uploads.py
    # checks again inside the handler).
    demo.has_launched = True
    return app


def ui_mount_options() -> dict:
    from router.ui.layout import CSS_PATH, NARROW_JS, THEME

    return {"css_paths": [CSS_PATH], "theme": THEME, "js": NARROW_JS}


def main() -> None:
    import uvicorn

    host = os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    port = int(os.environ.get("GRADIO_SERVER_PORT") or os.environ.get("PORT") or 7860)
    uvicorn.run(create_app(), host=host, port=port, log_level="info")


if __name__ == "__main__":
    main()
