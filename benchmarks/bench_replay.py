"""Replay and batch score on N audit lines: the local engine against `--engine ray` (local Ray instance).

    python -m benchmarks.bench_replay [--lines 20000] [--max-chars 400] [--workers 2] [--batch-size 32]
        [--skip-local] [--skip-ray] [--checkpoint DIR]

The audit log is synthetic but in the proxy's format: RouterBench questions (assets/data), each cut
to its last `max-chars` characters (chat-length queries; the encoder reads at most 256 tokens from
the end anyway) and numbered so that every line is distinct, routed with flat P = 0.5 and no
checkpoint fingerprint (so the replay is a what-if: every line is re-scored, no P check). Prints
lines/s of `audit replay` (default pool, tolerance 0.3) and of `score` for each engine. The Ray
numbers include starting the actors (one checkpoint + encoder load each) but not `ray.init`.
`--checkpoint` routes with another checkpoint than the default pool's (e.g. a fast-path one,
docs/fastpath.md), which shows the engines' own overhead once the encoder is no longer the cost.
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
from pathlib import Path

from router.paths import PROJECT_ROOT as ROOT


def questions(n: int, max_chars: int) -> list[str]:
    with gzip.open(ROOT / "assets" / "data" / "routerbench.jsonl.gz", "rt", encoding="utf-8") as f:
        qs = list(dict.fromkeys(json.loads(line)["question"] for line in f))
    return [f"{qs[i % len(qs)][-max_chars:]} (#{i})" for i in range(n)]


def write_log(path: Path, router, texts: list[str]) -> None:
    import numpy as np

    from router.audit.record import DecisionRecord
    from router.routing.router import Scores

    p = np.full(len(router.pool.models), 0.5)
    with open(path, "w", encoding="utf-8") as f:
        for q in texts:
            r = router.decide(Scores(p, max(1, len(q) // 4), 0.0, 0.0), 0.3)
            f.write(json.dumps(DecisionRecord.build(r, api="bench", query_text=q).to_line()) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=20000)
    ap.add_argument("--max-chars", type=int, default=400)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--skip-local", action="store_true")
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--checkpoint", default=None, help="score with this checkpoint instead of the default pool's")
    args = ap.parse_args()

    from router.audit.replay import replay
    from router.model.head import load_checkpoint
    from router.routing.parallel import score_texts
    from router.routing.pool import load_pool
    from router.routing.router import PrefillRouter

    pool = load_pool(ROOT / "configs" / "default.yaml")
    router = PrefillRouter(pool, checkpoint=load_checkpoint(args.checkpoint) if args.checkpoint else None)
    texts = questions(args.lines, args.max_chars)
    tmp = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    log = tmp / "audit.jsonl"
    write_log(log, router, texts)
    print(f"{args.lines} lines, queries <= {args.max_chars} chars, batch {args.batch_size}, "
          f"checkpoint {router.checkpoint.path}", flush=True)
    results = {}
    engines = [e for e in ("local", "ray") if not getattr(args, f"skip_{e}")]
    if "ray" in engines:
        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
        print(f"ray.init: {time.perf_counter() - t0:.1f} s", flush=True)
    for engine in engines:
        kw = dict(engine=engine, workers=args.workers, batch_size=args.batch_size)
        t0 = time.perf_counter()
        rep = replay(log, router, tolerance=0.3, out=tmp / f"diff-{engine}.jsonl", progress=False, **kw)
        dt = time.perf_counter() - t0
        results[f"replay/{engine}"] = dt
        print(f"replay {engine:5s}: {dt:7.1f} s  {rep.replayed / dt:7.1f} lines/s  ({rep.changed} changed)",
              flush=True)
        t0 = time.perf_counter()
        P, _ = score_texts(router.checkpoint.path, texts, progress=False, **kw)
        dt = time.perf_counter() - t0
        results[f"score/{engine}"] = dt
        print(f"score  {engine:5s}: {dt:7.1f} s  {len(P) / dt:7.1f} lines/s", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
