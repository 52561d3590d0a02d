"""Does tuning the encoder's top blocks beat the frozen reader? Issue 17 part 6, on both public sets.

For each set: fine-tune the top N blocks of the bundled encoder on the training split (masked BCE,
best epoch by a held-out 10% of the training questions), then run the same head search as `train`
on frozen and on tuned features, and score both winners (and kNN-40 / logistic on each) on the
test split. Prints the table and the cost (seconds); writes docs/finetune_study.json.

    python -m benchmarks.finetune_study --sets routerbench,routellm --layers 2 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.quality_report import SETS, log
from router.paths import PROJECT_ROOT as ROOT


def test_scores(P_by: dict, rows, ec) -> dict:
    from router.training import metrics

    out = {}
    for k, P in P_by.items():
        s = metrics.summarize(P, rows.Y, rows.cost, ec)
        out[k] = {"aiq": s["aiq"], "save_95": s["cost_save_at_95"], "save_parity": s["cost_save_at_parity"],
                  "mean_auroc": metrics.calibration(P, rows.Y, [str(j) for j in range(rows.Y.shape[1])])["mean_auroc"]}
    return out


def searched(X, tr, Xte, heads, progress=False):
    from router.model.heads import CalibratedHead
    from router.training.search import run_search

    res = run_search(X, tr.Y, tr.cost, tr.questions, tr.tasks, heads=heads, progress=progress)
    head = CalibratedHead(res["head"], res["calibration"], res["calibration_params"])
    return res["winner"].name, head.predict(Xte)


def run(name: str, args) -> dict:
    import torch

    from router.model.encoder import Encoder
    from router.model.features import cached_features
    from router.training import baselines as B
    from router.training.data import read_labels
    from router.training.evaluate import eval_rows
    from router.training.finetune import FinetuneConfig, finetune
    from router.training.search import expected_costs
    from router.training.train import default_encoder, training_rows

    table = read_labels(SETS[name])
    tr, te = training_rows(table), eval_rows(table, "test")
    if args.max_train and len(tr) > args.max_train:
        tr = tr.subset(np.random.default_rng(0).permutation(len(tr))[: args.max_train])
    if args.max_test and len(te) > args.max_test:
        te = te.subset(np.random.default_rng(1).permutation(len(te))[: args.max_test])
    spec = default_encoder()
    ec = expected_costs(tr.cost)
    log(f"{name}: {len(tr)} training, {len(te)} test questions")
    Xf = cached_features(spec, tr.questions, progress=True)
    Xf_te = cached_features(spec, te.questions, progress=True)
    cfg = FinetuneConfig(layers=args.layers, epochs=args.epochs, lr=args.lr)
    ft = finetune(spec, tr.questions, tr.Y, cfg=cfg, progress=True)
    log(f"{name}: fine-tuned in {ft['seconds']:.0f}s (frozen pass {ft['frozen_seconds']:.0f}s), "
        f"best epoch {ft['best_epoch']}, path check {ft['check_drift']:.1e}")
    t0 = time.time()
    enc = Encoder(spec, device="cpu")
    missing = enc.model.load_state_dict({k: torch.from_numpy(v) for k, v in ft["state"].items()}, strict=False)
    assert not missing.unexpected_keys, missing.unexpected_keys
    Xt_te = enc.features(te.questions, progress=True)
    Xt = ft["features"]
    t_test = time.time() - t0
    heads = args.heads.split(",") if args.heads else None
    P, winners = {}, {}
    for tag, (A, A_te) in {"frozen": (Xf, Xf_te), "tuned": (Xt, Xt_te)}.items():
        P[f"{tag} knn-40"] = B.knn(A, tr.Y, A_te, 40)
        winners[tag], P[f"{tag} search"] = searched(A, tr, A_te, heads)
        log(f"  {tag}: search winner {winners[tag]}")
    scores = test_scores(P, te, ec)
    for k, s in scores.items():
        log(f"  {k:<16} AIQ {s['aiq']:.4f}  saved@95 {s['save_95'] if s['save_95'] is None else round(s['save_95'], 4)}"
            f"  AUROC {s['mean_auroc']:.4f}")
    return {"n_train": len(tr), "n_test": len(te), "config": vars(cfg), "winners": winners, "test": scores,
            "epochs": ft["log"], "best_epoch": ft["best_epoch"], "seconds_finetune": round(ft["seconds"], 1),
            "seconds_frozen_pass": round(ft["frozen_seconds"], 1), "seconds_test_features": round(t_test, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="routerbench,routellm")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--heads", default="knn,logistic", help="head families searched on both feature sets")
    ap.add_argument("--max-train", type=int, default=0, help="cap on training questions (0 = all)")
    ap.add_argument("--max-test", type=int, default=0, help="cap on test questions (0 = all)")
    ap.add_argument("--json", default=str(ROOT / "docs" / "finetune_study.json"))
    args = ap.parse_args()
    out = {"command": "python -m benchmarks.finetune_study " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in
                                                                         vars(args).items() if k != "json"),
           "sets": {}}
    for name in args.sets.split(","):
        out["sets"][name] = run(name, args)
        Path(args.json).write_text(json.dumps(out, indent=1, default=float) + "\n", encoding="utf-8")
    log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
