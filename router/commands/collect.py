"""Collect labels: ask every enabled slot of a pool every question and judge the answers.

    python -m router collect --config configs/offline-demo.yaml --questions qs.jsonl --out labels.jsonl

Questions: .txt (one a line) or .jsonl ({"id", "question", "reference"?}). Output: long-format
JSONL, appended as calls complete; rerun the same command to resume (pairs already in --out are
skipped). Judges: reference (needs references), llm (--judge-slot), vote (majority answer).
"""

from __future__ import annotations

import sys

from router.commands.options import comma_list


def configure(p):
    p.add_argument("--config", default=None, help="pool YAML whose enabled slots are asked (default: configs/default.yaml)")
    p.add_argument("--questions", required=True, help=".txt (one per line) or .jsonl (id, question, reference)")
    p.add_argument("--out", required=True, help="label file to append to (.jsonl)")
    p.add_argument("--models", default=None,
                   help="comma-separated slots to ask, disabled ones included (default: every enabled slot)")
    p.add_argument("--judge", default="reference", help="reference | llm | vote (default: reference)")
    p.add_argument("--judge-slot", default=None, help="llm judge: slot name of the endpoint that grades")
    p.add_argument("--judge-config", default=None, help="llm judge: pool YAML holding --judge-slot (default: --config)")
    p.add_argument("--concurrency", type=int, default=4, help="calls in flight per endpoint (default: 4)")
    p.add_argument("--max-usd", type=float, default=None, help="stop this run before spending more than this")
    p.add_argument("--max-tokens", type=int, default=None, help="answer length cap per call")
    p.add_argument("--temperature", type=float, default=None,
                   help="sampling temperature (default: not sent, so each endpoint uses its own default)")
    p.add_argument("--system", default=None, help="system message sent before each question")
    p.add_argument("--retries", type=int, default=2)
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per call")
    p.add_argument("--limit", type=int, default=None, help="stop after this many calls (a smoke run)")
    p.add_argument("--no-progress", action="store_true")


def build_judge(args, client):
    from router.errors import InputError, UnknownModelError
    from router.routing.pool import load_pool
    from router.training.judges import make_judge
    from router.upstream.backends import Backend

    if args.judge != "llm" and (args.judge_slot or args.judge_config):
        raise InputError(f"--judge-slot and --judge-config are for --judge llm; --judge {args.judge} does not call "
                         "a model (drop them, or use --judge llm)")
    context = {}
    if args.judge_slot:
        pool = load_pool(args.judge_config or args.config)
        try:
            slot = pool.slot(args.judge_slot)
        except UnknownModelError:
            raise InputError(f"--judge-slot {args.judge_slot!r} is not a slot of {pool.source_path}; "
                             f"its slots: {', '.join(pool.names)}") from None
        context = {"backend": Backend(client, retries=args.retries, timeout=args.timeout), "slot": slot}
    return make_judge(args.judge, **context)


def run(args) -> int:
    import asyncio

    from router.errors import InputError
    from router.routing.pool import load_pool
    from router.training.collect import CollectConfig, asked_slots, collect_async, read_questions, summarize
    from router.upstream.client import upstream_client

    pool = load_pool(args.config)
    items = read_questions(args.questions)
    cfg = CollectConfig(concurrency=args.concurrency, max_usd=args.max_usd, max_tokens=args.max_tokens,
                        temperature=args.temperature, system=args.system, retries=args.retries,
                        timeout=args.timeout, limit=args.limit,
                        models=tuple(comma_list(args.models)) if args.models else None)
    if args.judge == "reference" and not any(it.reference for it in items):
        raise InputError(f"{args.questions}: the reference judge needs a 'reference' per question "
                         "(.jsonl); use --judge vote or --judge llm for questions without references")

    async def go():
        async with upstream_client() as judge_client:
            judge = build_judge(args, judge_client)
            return await collect_async(pool, items, args.out, judge, cfg, progress=not args.no_progress)

    try:
        report = asyncio.run(go())
    except KeyboardInterrupt:
        from pathlib import Path

        from router.training.collect import read_collected

        kept = len(read_collected(Path(args.out)))
        print(f"interrupted: {kept} rows are kept in {args.out}; rerun the same command to resume "
              "(pairs already there are skipped)", file=sys.stderr)
        return 130
    asked = asked_slots(pool, cfg.models)
    slots = len(asked)
    print(f"{len(items)} questions x {slots} slots: {report.skipped} already in {args.out}, "
          f"{report.pending} to ask")
    print(f"wrote {report.written} rows in {report.seconds:.1f} s ({report.calls_per_s:.2f} calls/s), "
          f"{report.failed} failed, spent ${report.spent_usd:.6f} this run"
          + (f" (judge ${report.judge_usd:.6f})" if report.judge_usd else ""))
    for line in report.errors[:5]:
        print(f"  failed: {line}")
    if report.failed > 5:
        print(f"  ... and {report.failed - 5} more failed calls")
    for name, n in report.failed_by_slot.items():
        print(f"  slot {name}: {n} calls failed")
    if report.stopped_by_budget:
        print(f"stopped at the budget cap (--max-usd {args.max_usd}): {report.over_budget} calls not made; "
              "rerun with a higher cap to continue")
    if report.rejudged:
        print(f"re-judged {report.rejudged} rows whose judge had failed in an earlier run")
    if report.stopped_by_limit:
        print(f"stopped after --limit {args.limit} calls; rerun to continue")
    summary = summarize(args.out)
    for s in summary:
        acc = "-" if s["accuracy"] is None else f"{s['accuracy']:.3f}"
        print(f"  {s['model']}: {s['rows']} rows, accuracy {acc}, unknown {s['unknown']}, "
              f"cost ${s['cost_usd']:.6f}, mean latency {s['mean_latency_ms']:.0f} ms"
              + (f", {s['estimated']} without upstream usage (cost estimated)" if s.get("estimated") else ""))
    with_rows = {s["model"] for s in summary}
    for slot in asked:
        if slot.name not in with_rows:
            print(f"  {slot.name}: no rows (every call failed)" if report.failed_by_slot.get(slot.name)
                  else f"  {slot.name}: no rows")
    status = 0
    if report.failed:
        print("some calls failed; rerun the same command to retry them")
        status = 1
    if report.judge_failed:
        print(f"{report.judge_failed} labels are unknown because the judge could not grade them; "
              "rerun the same command to grade them again")
        status = 1
    return status
