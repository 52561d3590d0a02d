"""How long default `train` takes on N questions x M models once features are cached (issue 17's
15-minute target for 10,000 questions on 2 CPU cores).

    python -m benchmarks.bench_train [--questions 10000] [--models 11] [--json out.json]

The public sets give 10,644 questions with 2 models (RouteLLM) or 2,225 with 11 (RouterBench); a
user's pool is likely both large and wide. This takes the first N distinct RouteLLM training
questions (their features are cached once `train` has read that set) and gives them M synthetic
models: P(correct) = sigmoid(ability_m - spread_m * difficulty(question) + noise), with the
difficulty a fixed random direction of the features, so the heads have a real signal to find and
the models differ in strength and price. It writes that label file and runs the same `train` the CLI
runs, printing its own timings and the search table.
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.quality_report import SETS

ROUTELLM = SETS["routellm"]


def synthetic_labels(questions: list[str], X: np.ndarray, models: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    Z = (X - X.mean(0)) / (X.std(0) + 1e-6)
    difficulty = Z @ rng.normal(size=Z.shape[1]) / np.sqrt(Z.shape[1])
    rows = []
    for j in range(models):
        ability, spread = rng.normal(0.8, 0.8), rng.uniform(0.5, 2.0)
        own = Z @ rng.normal(size=Z.shape[1]) / np.sqrt(Z.shape[1])  # what this model happens to know
        p = 1 / (1 + np.exp(-(ability - spread * difficulty + 0.7 * own)))
        y = rng.random(len(questions)) < p
        price = float(np.exp(rng.uniform(np.log(1e-5), np.log(2e-3))))
        for q, c in zip(questions, y):
            rows.append({"question": q, "model": f"synthetic-{j:02d}", "correct": int(c), "cost_usd": price,
                         "split": "train"})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=10000)
    ap.add_argument("--models", type=int, default=11)
    ap.add_argument("--data", default=str(ROUTELLM), help="where the questions come from (training rows)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    from router.model.features import cached_features
    from router.training.data import read_labels
    from router.training.train import TrainConfig, default_encoder, train, training_rows

    qs = list(dict.fromkeys(training_rows(read_labels(Path(a.data))).questions))[: a.questions]
    spec = default_encoder()
    t0 = time.time()
    X = cached_features(spec, qs, progress=True)
    t_feat = time.time() - t0
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "labels.jsonl.gz"
        with gzip.open(data, "wt", encoding="utf-8") as f:
            for r in synthetic_labels(qs, X, a.models, a.seed):
                f.write(json.dumps(r) + "\n")
        t1 = time.time()
        ck = train(read_labels(data), Path(tmp) / "ck", TrainConfig())
        total = time.time() - t1
    tr = ck.meta["training"]
    out = {"questions": len(qs), "models": a.models, "features_seconds_before": round(t_feat, 1),
           "train_seconds": round(total, 1), "train_features_seconds": tr["features_seconds"],
           "search_seconds": tr["search_seconds"], "winner": tr["search"]["winner"],
           "candidates": [{"name": c["name"], "seconds": c["seconds"], "aiq": c["aiq"]} for c in tr["search"]["candidates"]]}
    print(f"train on {len(qs)} questions x {a.models} models: {total:.0f} s in all (features {tr['features_seconds']} s "
          f"from the cache, search + final fit {tr['search_seconds']} s); target: under 900 s")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
