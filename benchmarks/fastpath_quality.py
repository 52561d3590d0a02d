"""Routing quality of each fast-path encoder option, trained with the same `train` (docs/fastpath.md).

    python -m benchmarks.fastpath_quality --options e5-torch,e5-onnx-int8,e5-static [--sets rb,rl]
        [--out runs/fastpath] [--results docs/fastpath_quality.json]

For every option and label set: train a checkpoint (same head settings as the bundled one) on the
set's non-test rows, evaluate it on the test split (AIQ, cost saved at parity and at 95% of the best
single model; no fitted baselines), and, for the RouterBench checkpoint, score the 20 EN/JA pairs
(mean |P_en - P_ja| over pairs and slots; share of pairs routed to the same model at tolerance 0.10).
Features are cached per encoder spec (router/model/features.py), so a rerun only retrains heads.
Results are merged into --results by (option, set).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from router.paths import PROJECT_ROOT as ROOT

E5 = dict(source="multilingual-e5-small", prefix="query: ", normalize=True)
OPTIONS = {
    "e5-torch": dict(E5),  # today's default
    "e5-onnx": dict(E5, runtime="onnx"),
    "e5-onnx-int8": dict(E5, runtime="onnx", quantize="int8"),
    "e5-static": dict(source="multilingual-e5-small", normalize=True, runtime="static"),
    "e5-onnx-int8-128": dict(E5, runtime="onnx", quantize="int8", max_tokens=128),
    "minilm-static": dict(source="all-MiniLM-L6-v2", normalize=True, runtime="static"),
    "minilm-onnx-int8": dict(source="all-MiniLM-L6-v2", runtime="onnx", quantize="int8"),
}
# ONNX fp32 computes the torch encoder's features (max |dX| ~1e-7, measured in each row as
# `features_check`): its checkpoint is trained on the torch features instead of encoding everything twice.
FEATURES_FROM: dict = {}
HEAD = dict(pca_dim=32, hidden=(128,), dropout=0.5, lr=3e-4, weight_decay=0.1, members=3)
SETS = {
    "rb": ROOT / "assets" / "data" / "routerbench.jsonl.gz",
    "rl": ROOT / "runs" / "fastpath" / "routellm-sub.jsonl.gz",  # benchmarks/fastpath_data.py
}
PAIRS = ROOT / "assets" / "multilingual_pairs.jsonl"


def _spec_key(spec) -> str:  # features.py's spec_key on branch quality
    import hashlib

    return hashlib.sha256(json.dumps(spec.to_json(), sort_keys=True).encode()).hexdigest()[:16]


_ORIGINAL_FEATURES = None


def shard_features(spec, texts, *args, **kw):
    """cached_features with FEATURES_FROM applied (ONNX fp32 reads the torch encoder's features)."""
    return _ORIGINAL_FEATURES(FEATURES_FROM.get(spec, spec), texts, *args, **kw)


def crosslingual(ckpt_dir: Path, data: Path) -> dict:
    import numpy as np

    from router.model.encoder import get_encoder
    from router.model.head import load_checkpoint
    from router.training import metrics
    from router.training.data import read_labels
    from router.training.train import training_rows

    ck = load_checkpoint(ckpt_dir)
    pairs = [json.loads(x) for x in PAIRS.read_text(encoding="utf-8").splitlines() if x.strip()]
    enc = get_encoder(ck.encoder_spec)
    P = ck.head.predict(enc.features([p["en"] for p in pairs] + [p["ja"] for p in pairs]))
    tr = training_rows(read_labels(data))
    price = np.nanmean(tr.cost, axis=0)  # what the router believes a call costs, as in evaluate
    en, ja = P[: len(pairs)], P[len(pairs):]
    same = metrics.choose(en, price, 0.10) == metrics.choose(ja, price, 0.10)
    return {"mean_abs_dp": round(float(np.abs(en - ja).mean()), 4), "agreement": round(float(same.mean()), 3),
            "n_pairs": len(pairs)}


def run_one(option: str, set_name: str, out: Path, reuse_bundled: bool = False) -> dict:
    from router.model.encoder import EncoderSpec
    from router.training.data import read_labels
    from router.training.evaluate import evaluate
    from router.training.train import TrainConfig, train

    spec = EncoderSpec(**OPTIONS[option])
    data = SETS[set_name]
    check = None
    if option == "e5-onnx":
        import numpy as np

        from router.model.encoder import get_encoder
        from router.training.data import read_labels as _read

        ref = EncoderSpec(**OPTIONS["e5-torch"])
        FEATURES_FROM[spec] = ref
        sample = [q for q, s in zip(_read(data).questions, _read(data).splits) if s == "test"][:32]
        d = np.abs(get_encoder(spec).features(sample) - get_encoder(ref).features(sample)).max()
        check = {"texts": len(sample), "max_abs_diff_vs_torch": float(d)}
    ckpt = out / f"{option}-{set_name}"
    t0 = time.time()
    if set_name == "rb" and option in ("e5-torch", "e5-onnx") and reuse_bundled:
        # Today's default IS assets/checkpoint (this head, e5, today's train): evaluate it as shipped.
        # ONNX fp32 computes the same features, so its checkpoint is the same head with runtime "onnx".
        import shutil

        shutil.rmtree(ckpt, ignore_errors=True)
        shutil.copytree(ROOT / "assets" / "checkpoint", ckpt)
        meta = json.loads((ckpt / "router.json").read_text(encoding="utf-8"))
        meta["encoder"] = spec.to_json()
        (ckpt / "router.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    else:
        train(read_labels(data), ckpt, TrainConfig(encoder=spec, **HEAD))
    t1 = time.time()
    rep = evaluate(ckpt, data, baselines=False)
    r = rep["results"]["router"]
    row = {"option": option, "set": set_name, "encoder": spec.to_json(), "n_test": rep["n_questions"],
           "aiq": r.get("aiq"), "save_parity": r.get("cost_save_at_parity"), "save_95": r.get("cost_save_at_95"),
           "mean_auroc": (r.get("calibration") or {}).get("mean_auroc"), "train_s": round(t1 - t0, 1),
           "eval_s": round(time.time() - t1, 1), "checkpoint": str(ckpt),
           "features_check": check, "retrained": not (set_name == "rb" and option in ("e5-torch", "e5-onnx")
                                                        and reuse_bundled), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if set_name == "rb":
        row["crosslingual"] = crosslingual(ckpt, data)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--options", default="e5-torch,e5-onnx-int8,e5-static")
    ap.add_argument("--sets", default="rb,rl")
    ap.add_argument("--out", default=str(ROOT / "runs" / "fastpath"))
    ap.add_argument("--reuse-bundled", action="store_true",
                    help="RouterBench e5-torch/e5-onnx rows: evaluate assets/checkpoint instead of retraining it")
    ap.add_argument("--results", default=str(ROOT / "docs" / "fastpath_quality.json"))
    a = ap.parse_args()
    import router.model.features

    global _ORIGINAL_FEATURES
    _ORIGINAL_FEATURES = router.model.features.cached_features
    router.model.features.cached_features = shard_features  # train() and evaluate() look it up at call time
    res_path = Path(a.results)
    for set_name in a.sets.split(","):
        for option in a.options.split(","):
            row = run_one(option, set_name, Path(a.out), a.reuse_bundled)
            print(json.dumps(row), flush=True)
            rows = json.loads(res_path.read_text()) if res_path.exists() else []
            rows = [x for x in rows if (x["option"], x["set"]) != (option, set_name)] + [row]
            res_path.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
