"""The playground and the proxy in one process: FastAPI app, Gradio UI mounted at "/".

    python app.py                       # http://127.0.0.1:7860
    GRADIO_SERVER_NAME=0.0.0.0 python app.py   # listen on all interfaces (Spaces does this)

Environment: ROUTER_CONFIG (default pool YAML), PORT or GRADIO_SERVER_PORT (7860).
"""

from __future__ import annotations

import os


def create_app(config: str | None = None, registry=None):
    """Build the whole app; importable without side effects (tests call this)."""
    import gradio as gr

    from router.routing.registry import RouterRegistry
    from router.serving.app import create_api
    from router.ui.layout import build_ui

    registry = registry or RouterRegistry.from_paths(default_path=config or os.environ.get("ROUTER_CONFIG"))
    api = create_api(registry)
    demo = build_ui(registry, governance=api.state.proxy.governance)  # one set of budget counters
    return gr.mount_gradio_app(api, demo, path="/", **ui_mount_options())


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
