"""Read an audit log: routing distribution, spend vs the baseline, drift between two time windows.

    python -m router audit summary audit.jsonl [--since 24h|7d|2026-11-30] [--split 2026-11-30T12:00Z] [--json]

Drift compares the records before and after --split (default: the midpoint in time): the change in
the chosen-model distribution (total variation distance, per-model share in points) and in cost
per request.
"""

from __future__ import annotations

import json


def configure(p):
    p.add_argument("action", choices=["summary"], help="what to do with the log")
    p.add_argument("file", help="audit JSONL written by the proxy (--audit-log)")
    p.add_argument("--since", default=None, help="only records at/after this time: 24h, 7d, 30m or ISO date/time")
    p.add_argument("--split", default=None, help="time that separates the two drift windows (default: midpoint)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args) -> int:
    from router.audit.log import read_records
    from router.audit.summary import format_summary, parse_time, summarize

    since = parse_time(args.since) if args.since else None
    split = parse_time(args.split) if args.split else None
    problems: list[str] = []
    records = list(read_records(args.file, since=since, problems=problems))
    if problems:
        import sys

        print(f"{args.file}: skipped {len(problems)} unreadable line(s):", file=sys.stderr)
        for p in problems[:20]:
            print(f"  {p}", file=sys.stderr)
    if not records:
        print(f"{args.file}: no records" + (f" since {args.since}" if args.since else ""))
        return 0
    summary = summarize(records, split=split)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0
