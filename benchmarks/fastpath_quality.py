"""Routing quality of each fast-path encoder option, trained with the same default `train` (docs/fastpath.md).

    python -m benchmarks.fastpath_quality --options e5-torch,e5-onnx,e5-onnx-int8,e5-static [--sets rb,rl]
        [--out runs/fastpath] [--results docs/fastpath_quality.json]

For every option and public label set: `train` with its defaults (the CV head search, calibration)
and only the encoder spec changed, on the set's non-test rows; `evaluate` on the test split (AIQ,
cost saved at parity and at 95% of the best single model); and the 20 EN/JA pairs (mean |P_en - P_ja|
over pairs and slots; share of pairs routed to the same model at tolerance 0.10) for each checkpoint.

e5-torch and e5-onnx (fp32) share one head: the ONNX export computes the torch encoder's features
(the max |dX| on 32 test texts is measured into the row) and both read one feature cache. On
RouterBench that head is assets/checkpoint as shipped (trained by this `train` with its defaults);
on RouteLLM it is trained here. Features are cached per encoder spec, so a rerun only refits heads.
Results are merged into --results by (option, set).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from benchmarks.quality_report import SETS as PUBLIC_SETS
from router.paths import PROJECT_ROOT as ROOT

E5 = dict(source="multilingual-e5-small", prefix="query: ", normalize=True)
OPTIONS = {
    "e5-torch": dict(E5),  # today's default
    "e5-onnx": dict(E5, runtime="onnx"),
    "e5-onnx-int8": dict(E5, runtime="onnx", quantize="int8"),
    "e5-static": dict(source="multilingual-e5-small", normalize=True, runtime="static"),
    "e5-onnx-128": dict(E5, runtime="onnx", max_tokens=128),  # a shorter window (the end of the text is kept)
    "e5-onnx-int8-128": dict(E5, runtime="onnx", quantize="int8", max_tokens=128),
    "minilm-static": dict(source="all-MiniLM-L6-v2", normalize=True, runtime="static"),
    "minilm-onnx-int8": dict(source="all-MiniLM-L6-v2", runtime="onnx", quantize="int8"),
}
SETS = {"rb": PUBLIC_SETS["routerbench"], "rl": PUBLIC_SETS["routellm"]}  # the quality report's two files


def crosslingual(ckpt_dir: Path, data: Path) -> dict:
    import numpy as np

    from benchmarks.quality_report import pair_consistency
    from router.model.head import load_checkpoint
    from router.training.data import read_labels
    from router.training.train import training_rows

    price = np.nanmean(training_rows(read_labels(data)).cost, axis=0)  # what the router believes a call costs
    r = pair_consistency(load_checkpoint(ckpt_dir), price)
    return {"mean_abs_dp": round(r["mean_abs_dp"], 4), "agreement": round(r["agreement"], 3), "n_pairs": r["pairs"]}


def _with_runtime(src: Path, dst: Path, spec) -> None:
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    meta = json.loads((dst / "router.json").read_text(encoding="utf-8"))
    meta["encoder"] = spec.to_json()
    (dst / "router.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def run_one(option: str, set_name: str, out: Path, reuse: bool = False, spec=None) -> dict:
    """One row; `spec` names an encoder that is not in OPTIONS (a distilled student)."""
    import numpy as np

    from router.model.encoder import EncoderSpec, get_encoder
    from router.training.data import read_labels
    from router.training.evaluate import evaluate
    from router.training.train import TrainConfig, train

    spec = spec or EncoderSpec(**OPTIONS[option])
    data = SETS[set_name]
    table = read_labels(data)
    ckpt = out / f"{option}-{set_name}"
    check, how = None, "trained by train with its defaults (only the encoder spec given)"
    t0 = time.time()
    if option in ("e5-torch", "e5-onnx"):
        # One head for both: the fp32 ONNX export computes the torch encoder's features (measured below),
        # and they share one feature cache. On RouterBench it is the bundled checkpoint.
        ref = EncoderSpec(**OPTIONS["e5-torch"])
        if option == "e5-onnx":
            sample = [q for q, s in zip(table.questions, table.splits) if s == "test"][:32]
            d = np.abs(get_encoder(spec).features(sample) - get_encoder(ref).features(sample)).max()
            check = {"texts": len(sample), "max_abs_diff_vs_torch": float(d)}
        shared = ROOT / "assets" / "checkpoint" if set_name == "rb" else out / f"e5-{set_name}"
        if set_name != "rb" and not (reuse and (shared / "router.json").exists()):
            train(table, shared, TrainConfig(encoder=ref))
        _with_runtime(shared, ckpt, spec)
        how = (f"{'assets/checkpoint (shipped)' if set_name == 'rb' else shared.name} with runtime "
               f"{spec.runtime}: one head, the same features")
    elif reuse and (ckpt / "router.json").exists():
        how += "; reused from an earlier run of this script"
    else:
        train(table, ckpt, TrainConfig(encoder=spec))
    t1 = time.time()
    rep = evaluate(ckpt, data, baselines=False)
    r = rep["results"]["router"]
    meta = json.loads((ckpt / "router.json").read_text(encoding="utf-8"))
    return {"option": option, "set": set_name, "encoder": spec.to_json(), "n_test": rep["n_questions"],
            "aiq": r.get("aiq"), "save_parity": r.get("cost_save_at_parity"), "save_95": r.get("cost_save_at_95"),
            "mean_auroc": (r.get("calibration") or {}).get("mean_auroc"),
            "head": (meta.get("training") or {}).get("search", {}).get("winner") or meta.get("head", {}).get("kind"),
            "train_s": round(t1 - t0, 1), "eval_s": round(time.time() - t1, 1), "checkpoint": str(ckpt),
            "how": how, "features_check": check, "crosslingual": crosslingual(ckpt, data),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def merge_row(res_path: Path, row: dict) -> None:
    """Print the row and put it into the results file, replacing the same (option, set)."""
    print(json.dumps(row), flush=True)
    rows = json.loads(res_path.read_text()) if res_path.exists() else []
    rows = [x for x in rows if (x["option"], x["set"]) != (row["option"], row["set"])] + [row]
    res_path.write_text(json.dumps(rows, indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--options", default="e5-torch,e5-onnx,e5-onnx-int8,e5-static")
    ap.add_argument("--sets", default="rb,rl")
    ap.add_argument("--out", default=str(ROOT / "runs" / "fastpath"))
    ap.add_argument("--reuse", action="store_true", help="keep a checkpoint already in --out instead of retraining it")
    ap.add_argument("--results", default=str(ROOT / "docs" / "fastpath_quality.json"))
    a = ap.parse_args()
    res_path = Path(a.results)
    for set_name in a.sets.split(","):
        for option in a.options.split(","):
            merge_row(res_path, run_one(option, set_name, Path(a.out), a.reuse))


if __name__ == "__main__":
    main()
