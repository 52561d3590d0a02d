"""Route one question and print the decision.

    python -m router route "What is the capital of France?" [--config configs/default.yaml]
        [--tolerance 0.2] [--models a,b] [--json] [--timings]

--timings prints where a cold route's wall time went (stderr): process start to this command,
imports, loading (pool, checkpoint, encoder), encode, head, select.
"""

from __future__ import annotations

import json
import sys
import time

from router.commands.options import comma_list


def configure(p):
    p.add_argument("question", help="the query text")
    p.add_argument("--config", default=None, help="pool YAML (default: configs/default.yaml)")
    p.add_argument("--tolerance", type=float, default=None, help="0 = best model, 1 = cheapest (default: pool's)")
    p.add_argument("--models", default=None, help="comma-separated slot names to allow (default: enabled slots)")
    p.add_argument("--json", action="store_true", help="print the full RoutingResult as JSON")
    p.add_argument("--timings", action="store_true",
                   help="print the wall-time breakdown on stderr: startup, imports, load, encode, head, select")


def format_result(r) -> str:
    lines = [f"policy {r.policy}  tolerance {r.tolerance:.2f}  p_max {r.p_max:.3f}  threshold {r.threshold:.3f}",
             f"{'model':32s} {'P(correct)':>10s} {'exp. cost $':>12s}  "]
    for m in r.models:
        mark = "  <- chosen" if m.name == r.chosen else ("  (best)" if m.name == r.best else "")
        state = "" if m.allowed else "  [off]"
        lines.append(f"{m.name:32s} {m.p:10.3f} {m.expected_cost_usd:12.6f}{'  *' if m.candidate else '   '}"
                     f"{mark}{state}")
    lines.append(f"chosen: {r.chosen} -> {r.chosen_model}   ({r.input_tokens} input tokens, "
                 f"routing {r.timings_ms['total_ms']:.1f} ms; * = within tolerance)")
    return "\n".join(lines)


def process_age_ms() -> float | None:
    """Wall ms since this process started (Linux /proc; 10 ms resolution), else None."""
    try:
        import os

        start_ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
        uptime = float(open("/proc/uptime").read().split()[0])
        return (uptime - start_ticks / os.sysconf("SC_CLK_TCK")) * 1e3
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def format_timings(t: dict[str, float]) -> str:
    parts = [f"{k} {v:.1f} ms" for k, v in t.items() if v is not None]
    return "timings: " + ", ".join(parts)


def run(args) -> int:
    startup = process_age_ms()
    t0 = time.perf_counter()
    from router.model.encoder import get_encoder
    from router.routing.pool import load_pool
    from router.routing.router import PrefillRouter, pool_checkpoint

    models = comma_list(args.models) if args.models is not None else None
    if models is not None and not models:
        from router.errors import InputError

        raise InputError(f"--models {args.models!r}: name at least one slot (or leave --models out for all enabled slots)")
    t1 = time.perf_counter()
    pool = load_pool(args.config)
    ckpt = pool_checkpoint(pool)
    t2 = time.perf_counter()
    encoder = get_encoder(ckpt.encoder_spec)  # includes importing its runtime (torch / onnxruntime / tokenizers)
    t3 = time.perf_counter()
    router = PrefillRouter(pool, checkpoint=ckpt, encoder=encoder)
    result = router.route(args.question, tolerance=args.tolerance, models=models)
    t4 = time.perf_counter()
    print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) if args.json else format_result(result))
    if args.timings:
        tm = result.timings_ms
        age = process_age_ms()
        print(format_timings({
            "startup (interpreter + CLI)": None if startup is None else startup,
            "imports": (t1 - t0) * 1e3, "load pool+checkpoint": (t2 - t1) * 1e3,
            f"load encoder ({ckpt.encoder_spec.runtime})": (t3 - t2) * 1e3,
            "encode": tm["encode_ms"], "head": tm["head_ms"], "select": tm["select_ms"],
            "route() total": (t4 - t3) * 1e3, "process wall": age}), file=sys.stderr)
    return 0
