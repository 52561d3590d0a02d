"""Serve the bundled SmolLM2-135M-Instruct as an OpenAI-compatible chat endpoint.

    python -m router serve-local --port 8001          # then: api_base http://127.0.0.1:8001/v1

The first start converts the bundled GGUF weights once into a safetensors folder under the
cache (ROUTER_CACHE, default ~/.cache/prefill-router; ~30-60 s); later starts take seconds.
Answers are greedy (deterministic) unless a request sets temperature.
"""

from __future__ import annotations


def configure(p):
    from router.local.server import MAX_TOKENS_LIMIT

    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback only)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--max-tokens-limit", type=int, default=MAX_TOKENS_LIMIT,
                   help="largest max_tokens a request may ask for")


def run(args) -> int:
    import uvicorn

    from router.local.model import BUNDLED_MODEL, LocalChatModel, converted_dir, ensure_converted
    from router.local.server import create_local_app

    if not (converted_dir() / "model.safetensors").exists():
        print(f"converting the bundled {BUNDLED_MODEL} weights once (takes up to a minute)...", flush=True)
    path = ensure_converted()
    model = LocalChatModel.load(path, BUNDLED_MODEL, threads=args.threads)
    print(f"loaded {BUNDLED_MODEL} from {path} in {model.load_seconds} s", flush=True)
    print(f"serving {BUNDLED_MODEL} at http://{args.host}:{args.port}/v1 (OpenAI-compatible; Ctrl-C stops)",
          flush=True)
    uvicorn.run(create_local_app(model, args.max_tokens_limit), host=args.host, port=args.port,
                log_level="warning")
    return 0
