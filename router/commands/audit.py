"""Read an audit log: routing distribution, spend vs the baseline, drift, spend against budget caps,
output-length calibration; or replay it against a pool.

    python -m router audit summary audit.jsonl [--since 24h|7d|2026-11-30] [--split 2026-11-30T12:00Z] [--json]
    python -m router audit summary audit.jsonl --by client|policy|slot [--config POOL] [--json]
    python -m router audit calibrate-costs audit.jsonl --config POOL [--write COPY.yaml] [--min-calls 5]
    python -m router audit replay audit.jsonl [--config POOL] [--checkpoint DIR] [--tolerance T]
        [--out diffs.jsonl] [--p-tolerance 1e-4] [--engine local|ray] [--ray-address ADDR] [--workers N] [--json]

Drift compares the records before and after --split (default: the midpoint in time): the change in
the chosen-model distribution (total variation distance, per-model share in points) and in cost
per request. --by groups real spend (all time, this UTC day and month) and shows each cap of --config
that concerns the group. calibrate-costs compares each slot's observed mean output and reasoning
tokens with the router's estimate and can write them into a copy of the pool YAML.

Replay re-scores the logged queries (lines written with audit_query_text: store; hash/drop lines
are counted and skipped), checks that lines logged by the same checkpoint get the same P back
(within --p-tolerance), and reports which decisions a new checkpoint or tolerance changes, with
their estimated spend next to the logged real spend (router/audit/replay.py). Exit status 3 when
the same checkpoint did not reproduce its P.
"""

from __future__ import annotations

import json


def configure(p):
    p.add_argument("action", choices=["summary", "calibrate-costs", "replay"], help="what to do with the log")
    p.add_argument("file", help="audit JSONL written by the proxy (--audit-log)")
    p.add_argument("--since", default=None, help="summary: only records at/after this time: 24h, 7d, 30m or ISO date/time")
    p.add_argument("--split", default=None, help="summary: time that separates the two drift windows (default: midpoint)")
    p.add_argument("--by", choices=["client", "policy", "slot"], default=None,
                   help="summary: spend per client key, policy or slot, against the caps of --config")
    p.add_argument("--config", default=None,
                   help="pool YAML: its budgets (summary --by), its slots (calibrate-costs), or the pool to replay "
                        "against (replay; default configs/default.yaml)")
    p.add_argument("--write", default=None, help="calibrate-costs: write a calibrated COPY of the pool YAML here")
    p.add_argument("--min-calls", type=int, default=5, help="calibrate-costs: calls a slot needs before it is written")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--checkpoint", default=None, help="replay: score with this checkpoint instead of the pool's")
    p.add_argument("--tolerance", type=float, default=None, help="replay: this tolerance instead of each line's")
    p.add_argument("--p-tolerance", type=float, default=1e-4,
                   help="replay: largest |ΔP| that still counts as reproduced (default 1e-4)")
    p.add_argument("--out", default=None, help="replay: write the changed/drifted lines here (JSONL)")
    p.add_argument("--engine", choices=["local", "ray"], default="local", help="replay: where to score")
    p.add_argument("--ray-address", default=None, help="replay --engine ray: an existing cluster (default: start one here)")
    p.add_argument("--workers", type=int, default=2, help="replay --engine ray: scoring actors (one model load each)")
    p.add_argument("--batch-size", type=int, default=32)


def run(args) -> int:
    if args.action == "replay":
        return _replay(args)
    from router.audit.log import read_records
    from router.audit.summary import format_summary, parse_time, summarize
    from router.errors import InputError

    since = parse_time(args.since) if args.since else None
    split = parse_time(args.split) if args.split else None
    problems: list[str] = []
    records = list(read_records(args.file, since=since, problems=problems))
    if problems:
        import sys

        print(f"{args.file}: skipped {len(problems)} unreadable line(s):", file=sys.stderr)
        for p in problems[:20]:
            print(f"  {p}", file=sys.stderr)
    if args.action == "calibrate-costs":
        return _calibrate(args, records)
    if not records:
        print(f"{args.file}: no records" + (f" since {args.since}" if args.since else ""))
        return 0
    if args.by:
        from router.audit.governance_report import format_spend, spend_by
        from router.routing.pool import load_pool

        pool = load_pool(args.config) if args.config else None
        rows = spend_by(records, args.by, pool=pool)
        print(json.dumps(rows, indent=2) if args.json else format_spend(rows, args.by))
        return 0
    if args.config:
        raise InputError("--config is used with --by or calibrate-costs")
    summary = summarize(records, split=split)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def _calibrate(args, records) -> int:
    from dataclasses import asdict

    from router.audit.governance_report import calibrate, format_calibration, write_calibrated
    from router.errors import InputError
    from router.routing.pool import load_pool

    if not args.config:
        raise InputError("calibrate-costs needs --config POOL (the pool whose slots to calibrate)")
    pool = load_pool(args.config)
    rows = calibrate(records, pool)
    print(json.dumps([asdict(r) for r in rows], indent=2) if args.json else format_calibration(rows))
    if args.write:
        written = write_calibrated(pool, rows, args.write, min_calls=args.min_calls)
        print(f"wrote {args.write}: expected_output_tokens set for {', '.join(written) or 'no slot'} "
              f"(slots with at least {args.min_calls} calls); review it, then serve it with --config")
    return 0
def _replay(args) -> int:
    from router.audit.replay import format_report, replay
    from router.model.head import load_checkpoint
    from router.routing.pool import load_pool
    from router.routing.router import PrefillRouter

    if args.out:
        from router.files import check_output_file

        check_output_file(args.out, "--out", {"audit log": args.file, "--checkpoint": args.checkpoint})
    pool = load_pool(args.config)
    router = PrefillRouter(pool, checkpoint=load_checkpoint(args.checkpoint) if args.checkpoint else None)
    report = replay(args.file, router, tolerance=args.tolerance, p_tolerance=args.p_tolerance, out=args.out,
                    engine=args.engine, ray_address=args.ray_address, workers=args.workers,
                    batch_size=args.batch_size)
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return 0 if report.reproducible else 3
