"""Read an audit log: routing distribution, spend vs the baseline, drift; or replay it against a pool.

    python -m router audit summary audit.jsonl [--since 24h|7d|2026-11-30] [--split 2026-11-30T12:00Z] [--json]
    python -m router audit replay audit.jsonl [--config POOL] [--checkpoint DIR] [--tolerance T]
        [--out diffs.jsonl] [--p-tolerance 1e-4] [--engine local|ray] [--ray-address ADDR] [--workers N] [--json]

Drift compares the records before and after --split (default: the midpoint in time): the change in
the chosen-model distribution (total variation distance, per-model share in points) and in cost
per request.

Replay re-scores the logged queries (lines written with audit_query_text: store; hash/drop lines
are counted and skipped), checks that lines logged by the same checkpoint get the same P back
(within --p-tolerance), and reports which decisions a new checkpoint or tolerance changes, with
their estimated spend next to the logged real spend (router/audit/replay.py). Exit status 3 when
the same checkpoint did not reproduce its P.
"""

from __future__ import annotations

import json


def configure(p):
    p.add_argument("action", choices=["summary", "replay"], help="what to do with the log")
    p.add_argument("file", help="audit JSONL written by the proxy (--audit-log)")
    p.add_argument("--since", default=None, help="summary: only records at/after this time: 24h, 7d, 30m or ISO date/time")
    p.add_argument("--split", default=None, help="summary: time that separates the two drift windows (default: midpoint)")
    p.add_argument("--json", action="store_true", help="print the summary or replay report as JSON")
    p.add_argument("--config", default=None, help="replay: the pool YAML to replay against (default: configs/default.yaml)")
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

    since = parse_time(args.since) if args.since else None
    split = parse_time(args.split) if args.split else None
    records = list(read_records(args.file, since=since))
    if not records:
        print(f"{args.file}: no records" + (f" since {args.since}" if args.since else ""))
        return 0
    summary = summarize(records, split=split)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def _replay(args) -> int:
    from router.audit.replay import format_report, replay
    from router.model.head import load_checkpoint
    from router.routing.pool import load_pool
    from router.routing.router import PrefillRouter

    pool = load_pool(args.config)
    router = PrefillRouter(pool, checkpoint=load_checkpoint(args.checkpoint) if args.checkpoint else None)
    report = replay(args.file, router, tolerance=args.tolerance, p_tolerance=args.p_tolerance, out=args.out,
                    engine=args.engine, ray_address=args.ray_address, workers=args.workers,
                    batch_size=args.batch_size)
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return 0 if report.reproducible else 3
