"""Route one question and print the decision.

    python -m router route "What is the capital of France?" [--config configs/default.yaml]
        [--tolerance 0.2] [--models a,b] [--json]
"""

from __future__ import annotations

import json


def configure(p):
    p.add_argument("question", help="the query text")
    p.add_argument("--config", default=None, help="pool YAML (default: configs/default.yaml)")
    p.add_argument("--tolerance", type=float, default=None, help="0 = best model, 1 = cheapest (default: pool's)")
    p.add_argument("--models", default=None, help="comma-separated slot names to allow (default: enabled slots)")
    p.add_argument("--json", action="store_true", help="print the full RoutingResult as JSON")


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


def run(args) -> int:
    from router.routing.router import PrefillRouter

    router = PrefillRouter.from_config(args.config)
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    result = router.route(args.question, tolerance=args.tolerance, models=models)
    print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) if args.json else format_result(result))
    return 0
