"""Serve the proxy API headless (no UI): OpenAI- and Anthropic-compatible endpoints.

    python -m router serve --config configs/default.yaml --port 8000 [--host 127.0.0.1]
        [--audit-log audit.jsonl] [--config configs/other.yaml ...] [--access-log]
        [--cors-origins https://app.example.com,http://localhost:3000]

Clients then use base URL http://HOST:PORT/v1 with `model` = a policy name (route) or a slot
name (pin). Set ROUTER_API_KEYS=key1,key2 to require a bearer key on /v1/*.
"""

from __future__ import annotations

from router.commands.options import comma_list
from router.upstream.deadline import DEFAULT_DEADLINE_S


def configure(p):
    p.add_argument("--config", action="append", default=None,
                   help="pool YAML; repeat to serve several pools, the first is the default "
                        "(default: every configs/*.yaml, with configs/default.yaml as default)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--audit-log", default=None, help="append one JSON line per request here "
                                                     "(default: $ROUTER_AUDIT_LOG, else no log)")
    p.add_argument("--retries", type=int, default=2, help="retries per model on 429/5xx/connection errors")
    p.add_argument("--cors-origins", default=None,
                   help="comma-separated origins that browsers may call the API from ('*' for any); "
                        "default: no CORS headers")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="seconds per upstream try: connect and first byte, the whole body of a plain answer, "
                        "and the longest silence between two stream chunks")
    p.add_argument("--deadline", type=float, default=DEFAULT_DEADLINE_S,
                   help="total seconds per request across retries and failover (streams included)")
    p.add_argument("--max-body", type=int, default=None,
                   help="largest request body in bytes (default $ROUTER_MAX_BODY_BYTES, else 4194304); 413 beyond")
    p.add_argument("--access-log", action="store_true",
                   help="also print uvicorn's line per HTTP request (off: the audit log records every "
                        "proxied request, and formatting the line costs ~0.1 ms per request)")


def run(args) -> int:
    import uvicorn

    from router.routing.registry import RouterRegistry
    from router.serving.app import create_api

    if args.audit_log:
        from router.audit.log import AuditLog

        AuditLog(args.audit_log)  # a bad path fails now, before the model loads
    configs = args.config or []
    registry = RouterRegistry.from_paths(configs or None, default_path=configs[0] if configs else None).warm()
    cors = comma_list(args.cors_origins or "") or None
    app = create_api(registry, audit_log=args.audit_log, retries=args.retries, timeout=args.timeout,
                     cors_origins=cors, deadline=args.deadline, max_body=args.max_body)
    print(f"serving {', '.join(registry.policies)} (default {registry.default}) on "
          f"http://{args.host}:{args.port}/v1", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=args.access_log)
    return 0
