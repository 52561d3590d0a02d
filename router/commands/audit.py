"""Read an audit log: routing distribution, spend vs the baseline, drift, spend against budget caps,
and output-length calibration.

    python -m router audit summary audit.jsonl [--since 24h|7d|2026-11-30] [--split 2026-11-30T12:00Z] [--json]
    python -m router audit summary audit.jsonl --by client|policy|slot [--config POOL] [--json]
    python -m router audit calibrate-costs audit.jsonl --config POOL [--write COPY.yaml] [--min-calls 5]

Drift compares the records before and after --split (default: the midpoint in time): the change in
the chosen-model distribution (total variation distance, per-model share in points) and in cost
per request. --by groups real spend (all time, this UTC day and month) and shows each cap of --config
that concerns the group. calibrate-costs compares each slot's observed mean output and reasoning
tokens with the router's estimate and can write them into a copy of the pool YAML.
"""

from __future__ import annotations

import json


def configure(p):
    p.add_argument("action", choices=["summary", "calibrate-costs"], help="what to do with the log")
    p.add_argument("file", help="audit JSONL written by the proxy (--audit-log)")
    p.add_argument("--since", default=None, help="only records at/after this time: 24h, 7d, 30m or ISO date/time")
    p.add_argument("--split", default=None, help="time that separates the two drift windows (default: midpoint)")
    p.add_argument("--by", choices=["client", "policy", "slot"], default=None,
                   help="summary: spend per client key, policy or slot, against the caps of --config")
    p.add_argument("--config", default=None, help="pool YAML whose budgets (summary --by) or slots (calibrate-costs) to use")
    p.add_argument("--write", default=None, help="calibrate-costs: write a calibrated COPY of the pool YAML here")
    p.add_argument("--min-calls", type=int, default=5, help="calibrate-costs: calls a slot needs before it is written")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args) -> int:
    from router.audit.log import read_records
    from router.audit.summary import format_summary, parse_time, summarize
    from router.errors import InputError

    since = parse_time(args.since) if args.since else None
    records = list(read_records(args.file, since=since))
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
    split = parse_time(args.split) if args.split else None
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
