"""A fixed subsample of the RouteLLM label set for the fast-path comparison (docs/fastpath.md).

    python -m benchmarks.fastpath_data --out runs/fastpath/routellm-sub.jsonl.gz [--train 1500 --test 1000]

Every encoder option encodes the same questions; the full set (15,256 questions) takes hours per
encoder on the shared 2-core machine, so the comparison reads 1,500 train and 1,000 test questions
drawn with a fixed seed (all rows of each drawn question, split kept as released).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "shared" / "data" / "routellm" / "routellm_mmlu_gsm8k.jsonl.gz"  # pass --src from a worktree


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default=str(SRC))
    ap.add_argument("--out", required=True)
    ap.add_argument("--train", type=int, default=1500)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rows = [json.loads(line) for line in gzip.open(a.src, "rt", encoding="utf-8")]
    by_split: dict[str, list[str]] = {}
    for r in rows:
        lst = by_split.setdefault(r["split"], [])
        if not lst or lst[-1] != r["question"]:
            lst.append(r["question"])
    rng = random.Random(a.seed)
    keep = set()
    for split, n in (("train", a.train), ("test", a.test)):
        qs = sorted(set(by_split.get(split, [])))
        keep |= set(rng.sample(qs, min(n, len(qs))))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(out, "wt", encoding="utf-8") as fh:
        for r in rows:
            if r["question"] in keep:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {sum(1 for r in rows if r['question'] in keep)} rows ({len(keep)} questions) to {out}")


if __name__ == "__main__":
    main()
