"""Write a LiteLLM config.yaml (model_list) from a pool YAML.

    python -m router litellm-config --config configs/default.yaml [--out config.yaml]
        [--router-url http://127.0.0.1:8000] [--hook]

Each enabled slot becomes a deployment named after the slot and one in the policy's model group
(for the routing strategy); --router-url adds `<policy>-via-router`, served by this router's own
endpoint; --hook adds the pre-call hook to litellm_settings.callbacks. See docs/litellm.md.
"""

from __future__ import annotations

import sys


def configure(p):
    p.add_argument("--config", default=None, help="pool YAML (default: configs/default.yaml)")
    p.add_argument("--out", default=None, help="write here (default: print to stdout)")
    p.add_argument("--router-url", default=None, help="also add a deployment that goes through this router")
    p.add_argument("--hook", action="store_true", help="load the prefill pre-call hook in the LiteLLM proxy")


def run(args) -> int:
    import yaml

    from router.integrations.litellm_config import litellm_config, not_carried
    from router.routing.pool import load_pool

    pool = load_pool(args.config)
    cfg = litellm_config(pool, router_url=args.router_url, hook=args.hook)
    head = [f"# LiteLLM config generated from {pool.source_path} (policy {pool.policy}) by "
            "`python -m router litellm-config`"]
    head += [f"# not carried over: {n}" for n in not_carried(pool)]
    text = "\n".join(head) + "\n" + yaml.safe_dump(cfg, sort_keys=False)
    if args.out:
        from pathlib import Path

        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}: {len(cfg['model_list'])} deployments", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
