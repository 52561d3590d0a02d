"""One checkpoint trained on both public sets at once, scored on each set's test split.

RouterBench (11 models) and RouteLLM (gpt-4-1106-preview and Mixtral-8x7B-Instruct) share two
models; RouteLLM's Mixtral is RouterBench's mixtral-8x7b-chat (the same instruct model), so its
labels fill that column. The masked loss (and the kNN/IRT heads' masks) let the other nine columns
learn from RouterBench rows only. Default `train`, no flags; compare against the per-set default
checkpoints of the same `quality_report` run (runs/quality/<set>/auto).

    python -m benchmarks.joint_study
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.quality_report import SETS, log
from router.paths import PROJECT_ROOT as ROOT

ALIASES = {"mistralai/Mixtral-8x7B-Instruct-v0.1": "mistralai/mixtral-8x7b-chat"}


def joint_labels(path: Path) -> Path:
    from router.training.data import data_files, iter_rows, write_labels

    rows = []
    for name, src in SETS.items():
        for f in data_files(src):
            for _, row in iter_rows(f):
                row = dict(row)
                row["model"] = ALIASES.get(row["model"], row["model"])
                row["id"] = f"{name}:{row.get('id') or ''}" if row.get("id") else None
                rows.append({k: v for k, v in row.items() if v is not None})
    path.parent.mkdir(parents=True, exist_ok=True)
    write_labels(rows, path)
    return path


def score_on(ck, name: str) -> dict:
    from router.model.features import cached_features
    from router.training import metrics
    from router.training.data import read_labels
    from router.training.evaluate import eval_rows
    from router.training.search import expected_costs
    from router.training.train import training_rows

    t = read_labels(SETS[name])
    if any(a in ck.slots for a in ALIASES.values()) and not any(a in ck.slots for a in ALIASES):
        t.models = [ALIASES.get(m, m) for m in t.models]  # the joint checkpoint names Mixtral the RouterBench way
    slots = [s for s in ck.slots if s in t.models]
    t = t.select_models(slots)
    te, tr = eval_rows(t, "test"), training_rows(t)
    cols = [ck.slots.index(s) for s in slots]
    P = ck.head.predict(cached_features(ck.encoder_spec, te.questions, progress=True))[:, cols]
    s = metrics.summarize(P, te.Y, te.cost, expected_costs(tr.cost))
    return {"slots": slots, "aiq": s["aiq"], "save_95": s["cost_save_at_95"], "save_parity": s["cost_save_at_parity"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "runs" / "joint"))
    ap.add_argument("--json", default=str(ROOT / "docs" / "joint_study.json"))
    ap.add_argument("--reuse", action="store_true", help="score the checkpoint already in --out/ck")
    args = ap.parse_args()
    from router.model.head import load_checkpoint
    from router.training.data import read_labels
    from router.training.train import TrainConfig, train

    out = Path(args.out)
    if args.reuse and (out / "ck" / "router.json").exists():
        ck = load_checkpoint(out / "ck")
        table = read_labels(out / "labels.jsonl.gz")
    else:
        data = joint_labels(out / "labels.jsonl.gz")
        table = read_labels(data)
        log(f"joint: {len(table)} questions, {len(table.models)} models")
        ck = train(table, out / "ck", TrainConfig())
    res = {"command": "python -m benchmarks.joint_study", "n_questions": len(table), "models": table.models,
           "winner": ck.meta["training"]["search"]["winner"], "train_seconds": ck.meta["training"]["seconds"],
           "sets": {}}
    for name in SETS:
        joint = score_on(ck, name)
        alone_dir = ROOT / "runs" / "quality" / name / "auto"
        alone = score_on(load_checkpoint(alone_dir), name) if alone_dir.exists() else None
        res["sets"][name] = {"joint": joint, "alone": alone}
        log(f"{name}: joint AIQ {joint['aiq']:.4f} saved@95 {joint['save_95']}  |  alone "
            f"{alone and round(alone['aiq'], 4)} saved@95 {alone and alone['save_95']}")
    better = all(r["alone"] and r["joint"]["aiq"] > r["alone"]["aiq"] for r in res["sets"].values())
    res["better_on_both"] = bool(better)
    Path(args.json).write_text(json.dumps(res, indent=1, default=float) + "\n", encoding="utf-8")
    log(f"better on both test splits: {better}; wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
