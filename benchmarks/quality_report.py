"""Regenerate docs/quality.md: default `train` on both public sets, scored on their test splits
with every baseline fitted in the same run, plus calibration, the head search, `--extend` and the
cross-lingual check of the shipped checkpoint.

    python -m benchmarks.quality_report                       # everything (encodes what is not cached)
    python -m benchmarks.quality_report --cached-only         # only questions whose features are cached

Checkpoints and raw reports go to runs/quality/ (git-ignored); the page to docs/quality.md and the
numbers to docs/quality_results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from router.paths import PROJECT_ROOT as ROOT
from router.training import metrics
from router.training.data import LabelTable, read_labels

SETS = {
    "routerbench": ROOT / "assets" / "data" / "routerbench.jsonl.gz",
    # ../shared next to the checkout (a git worktree one level deeper finds it one level up)
    "routellm": next((p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if p.is_dir()),
                     ROOT.parent / "shared") / "data" / "routellm" / "routellm_mmlu_gsm8k.jsonl.gz",
}
PAIRS = ROOT / "assets" / "multilingual_pairs.jsonl"
BASELINES = ("knn-40", "logistic", "logistic-sklearn", "mlp")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def best_model_share_at_95(res: dict, best: int, slots: list[str]) -> float | None:
    """RouteLLM's measure: the smallest share of calls sent to the best model while acc >= 95% of its accuracy."""
    acc = np.array(res["curve"]["accuracy"], dtype=float)
    shares = np.array([d[slots[best]] for d in res["distribution"]])
    return acc, shares


def add_baselines(report: dict, table: LabelTable, ck, cache) -> None:
    """Every baseline on the test rows, fitted on the training rows with the checkpoint's features:
    oracle, random, prior and kNN-40 (router/training/baselines.py), one logistic regression per model
    with C per model by 5-fold CV (the search's solver: the same objective as sklearn's, much faster
    than LogisticRegressionCV), the same model fitted by sklearn's LogisticRegressionCV as `evaluate` fits it
    (baselines.logistic: a second, independent implementation; on RouteLLM the two differed by 2.5 points of
    saved at 95%, and a claim must hold against both), and "the MLP alone" (format-1 ensemble, TrainConfig's
    MLP settings)."""
    from router.model.features import cached_features
    from router.training import baselines as B
    from router.training.evaluate import _jsonable, baseline_rows, eval_rows, score_routers
    from router.training.families import MLP_GRID, LogisticFamily, MLPFamily
    from router.training.search import cv_folds
    from router.training.train import TrainConfig

    table = table.select_models(ck.slots)
    rows = eval_rows(table, "test")
    tr = baseline_rows(table, rows)
    Xtr = cached_features(ck.encoder_spec, tr.questions, progress=True, cache=cache)
    Xte = cached_features(ck.encoder_spec, rows.questions, progress=True, cache=cache)
    P = {"oracle": B.oracle(rows.Y), "random": B.random_p(len(rows), len(ck.slots)), "prior": B.prior(tr.Y, len(rows)),
         "knn-40": B.knn(Xtr, tr.Y, Xte, 40)}
    lr = LogisticFamily()
    folds = cv_folds(tr.questions, None, 5, 0)
    _, chosen = lr.oof(Xtr, tr.Y, folds, lr.settings()[0], 0)
    P["logistic"] = lr.fit(Xtr, tr.Y, lr.settings()[0], 0, chosen).predict(Xte)
    log("  fitting the sklearn logistic baseline (as evaluate fits it)")
    P["logistic-sklearn"] = B.logistic(Xtr, tr.Y, Xte, seed=0)
    log("  fitting the MLP-alone baseline")
    P["mlp"] = MLPFamily(TrainConfig(encoder=ck.encoder_spec)).fit(Xtr, tr.Y, MLP_GRID[1], 0, {}, members=3).predict(Xte)
    ec = np.array([report["expected_cost_per_call"][s] for s in ck.slots])
    out = score_routers(P, rows.Y, rows.cost, ec, ck.slots, report["default_tolerance"])
    report["results"].update(_jsonable(out))


def summarize_report(report: dict) -> dict:
    slots = report["slots"]
    best = slots.index(report["best_single"]["slot"])
    a_best = report["best_single"]["accuracy"]
    rows = {}
    for name, r in report["results"].items():
        acc = np.array([np.nan if a is None else a for a in r["curve"]["accuracy"]], dtype=float)
        shares = np.array([d[slots[best]] for d in r["distribution"]])
        ok = acc >= 0.95 * a_best - 1e-12
        cal = r.get("calibration") or {}
        rows[name] = {"aiq": r["aiq"], "save_parity": r["cost_save_at_parity"], "save_95": r["cost_save_at_95"],
                      "mean_auroc": cal.get("mean_auroc"), "mean_ece": cal.get("mean_ece"),
                      "best_share_at_95": float(shares[ok].min()) if ok.any() else None}
    return rows


def run_set(name: str, path: Path, args) -> dict:
    from router.model.features import cached_mask
    from router.training.evaluate import evaluate_table
    from router.training.train import TrainConfig, default_encoder, train

    out_dir = ROOT / "runs" / "quality" / name
    table = read_labels(path)
    note = ""
    if args.cached_only:
        keep = cached_mask(default_encoder(), table.questions, args.features_cache)
        note = f"{int(keep.sum())} of {len(table)} questions (those whose features were cached)"
        table = table.subset(np.flatnonzero(keep))
    n_tr, n_te = sum(s != "test" for s in table.splits), sum(s == "test" for s in table.splits)
    log(f"{name}: {len(table)} questions ({n_tr} train, {n_te} test), {len(table.models)} models {note}")
    cfg = TrainConfig(features_cache=args.features_cache)
    ck = _reusable(out_dir / "auto", table) if args.reuse else None
    if ck is None:
        ck = train(table, out_dir / "auto", cfg)
    else:
        log(f"{name}: reusing {out_dir / 'auto'} (same data fingerprint and config)")
    train_s = ck.meta["training"]["seconds"]
    log(f"{name}: default train took {train_s:.0f}s; winner {ck.meta['training']['search']['winner']}")
    report = evaluate_table(out_dir / "auto", table, str(path), features_cache=args.features_cache, baselines=False)
    search = ck.meta["training"]["search"]
    fams = search.get("winner_families") or sorted({c.split("[")[0] for c in
                                                    search["winner"].removeprefix("average(").rstrip(")").split("+")})
    report["winner_family"] = ",".join(fams)
    log(f"{name}: fitting the baselines")
    add_baselines(report, table, ck, args.features_cache)
    (out_dir / "evaluate.json").write_text(json.dumps(report, indent=1, default=float))
    res = {"data": f"../shared/{path.relative_to(path.parents[2])}" if "shared" in path.parts else
           str(path.relative_to(ROOT)), "note": note,
           "n_train": n_tr, "n_test": n_te, "models": table.models, "best_single": report["best_single"],
           "routers": summarize_report(report), "calibration": report["calibration_effect"],
           "train_seconds": round(train_s, 1), "training": ck.meta["training"]}
    if not args.skip_extend:
        res["extend"] = extend_experiment(name, table, report, res["routers"]["router"]["aiq"], out_dir, args)
    return res


def _reusable(path: Path, table: LabelTable, head: str = "auto"):
    """A checkpoint at `path` trained with the default config on these rows, or None."""
    from router.model.head import load_checkpoint
    from router.training.train import TrainConfig, training_rows

    try:
        ck = load_checkpoint(path)
    except Exception:  # noqa: BLE001 - absent or unreadable: train afresh
        return None
    t = ck.meta.get("training", {})
    from router.model.encoder import EncoderSpec

    want = TrainConfig(head=head).to_json()
    got = {k: v for k, v in t.get("config", {}).items() if k != "features_cache"}
    want.pop("features_cache")
    try:  # the encoder by what its features depend on (torch and fp32 ONNX compute the same ones)
        got["encoder"] = EncoderSpec.from_json(got["encoder"]).identity()
    except Exception:  # noqa: BLE001 - an unreadable spec: not reusable
        return None
    want["encoder"] = EncoderSpec.from_json(want["encoder"]).identity()
    if t.get("data_fingerprint") != training_rows(table).fingerprint() or got != want:
        return None
    return ck


def extend_experiment(name: str, table: LabelTable, report: dict, full_aiq: float, out_dir: Path, args) -> dict:
    """Hold the best model out, train on the rest, add it back with n of its labels."""
    from router.training.evaluate import evaluate_table
    from router.training.extend import extend
    from router.training.train import TrainConfig, train, training_rows

    held = report["best_single"]["slot"]
    others = [m for m in table.models if m != held]
    log(f"{name}: --extend experiment, held-out model {held}")
    base_dir = out_dir / "without-held"
    # the base uses the head family the full search chose (its settings searched again): one search, not two
    family = report["winner_family"]
    base_table = table.select_models(others)
    if not (args.reuse and _reusable(base_dir, base_table, family)):
        train(base_table, base_dir, TrainConfig(features_cache=args.features_cache, head=family))
    tr = training_rows(table)
    known = np.flatnonzero(~np.isnan(tr.Y[:, tr.models.index(held)]))
    rng = np.random.default_rng(0)
    order = rng.permutation(known)
    points = []
    for n in [int(x) for x in args.extend_ns.split(",")] + [len(known)]:
        if n > len(known) or any(p["n_labels"] == n for p in points):
            continue
        labels = tr.subset(order[:n])
        ext_dir = out_dir / f"extend-{n}"
        ck = extend(base_dir, labels, ext_dir, features_cache=args.features_cache, progress=False, models=[held])
        col = ck.meta["training"]["extensions"][-1]["columns"][0]
        r = evaluate_table(ext_dir, table, features_cache=args.features_cache, baselines=False, allow_overlap=True,
                           progress=False)
        aiq = r["results"]["router"]["aiq"]
        points.append({"n_labels": n, "aiq": aiq, "gap_to_full_retrain": full_aiq - aiq,
                       "column": {k: col.get(k) for k in ("input", "C", "criterion")}})
        log(f"  {n:>6} labels of {held}: AIQ {aiq:.4f} (full retrain {full_aiq:.4f})")
    within = [p["n_labels"] for p in points if p["gap_to_full_retrain"] <= 0.01]
    return {"held_out": held, "full_retrain_aiq": full_aiq, "points": points,
            "labels_within_0.01": min(within) if within else None}


def pair_consistency(ck, price: np.ndarray) -> dict:
    """A checkpoint on the EN/JA pairs: mean |P_en - P_ja| over pairs and slots, and the share of pairs
    routed to the same model at tolerance 0.10 with these per-call prices."""
    from router.model.encoder import get_encoder

    pairs = [json.loads(x) for x in PAIRS.read_text(encoding="utf-8").splitlines() if x.strip()]
    P = ck.head.predict(get_encoder(ck.encoder_spec).features([p["en"] for p in pairs] + [p["ja"] for p in pairs]))
    en, ja = P[: len(pairs)], P[len(pairs):]
    same = metrics.choose(en, price, 0.10) == metrics.choose(ja, price, 0.10)
    return {"pairs": len(pairs), "mean_abs_dp": float(np.abs(en - ja).mean()), "agreement": float(same.mean())}


def crosslingual(checkpoint: Path) -> dict:
    from router.model.head import load_checkpoint

    ck = load_checkpoint(checkpoint)
    t = read_labels(SETS["routerbench"]).select_models(ck.slots)
    tr = [i for i, s in enumerate(t.splits) if s != "test"]
    return {"checkpoint": str(checkpoint.relative_to(ROOT)), **pair_consistency(ck, np.nanmean(t.cost[tr], axis=0))}


def _f(v, pct=False):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "—"
    v = 0.0 if abs(v) < 5e-5 else v
    return f"{v:.1%}" if pct else f"{v:.3f}"


def machine_state() -> dict:
    """The core count and load averages (1, 5, 15 min): what the timings of a run can be read against."""
    return {"cpus": os.cpu_count(), "load": [round(x, 2) for x in os.getloadavg()]}


def timing_note(results: dict) -> str:
    if results.get("timing_note"):
        return results["timing_note"]
    m0, m1 = results.get("machine_start"), results.get("machine_end")
    if not m0 or not m1:  # a run from before the load was recorded
        return ("Timings were taken on a shared 2-core machine under heavy load from other jobs: they are "
                "upper bounds, not benchmarks.")
    return (f"Timings were taken on a {m0['cpus']}-core machine with a load average of {m0['load'][0]:.1f} when "
            f"the run started and {m1['load'][2]:.1f} over its last 15 minutes (about the core count: the run "
            "had the machine to itself; far above it: other jobs shared it and the times are upper bounds).")


def render(results: dict) -> str:
    L = ["# Routing quality", "",
         "Generated by `python -m benchmarks.quality_report` "
         f"({results['created']}; {results['command']}). Every number below comes from that one run: "
         "default `python -m router train` (no flags) on each set's training split, scored on its test "
         "split with `evaluate`'s metrics (router/training/metrics.py), the baselines fitted in the same run on "
         f"the same encoder features. {timing_note(results)}", "",
         "Columns: AIQ = area under the best-accuracy-for-budget curve (cost as a share of the best single "
         "model's, 0..1); saved at parity / at 95% = cost saved vs the best single model at its accuracy / "
         "at 95% of it; best-model share = the smallest share of questions sent to the best single model "
         "while accuracy stays >= 95% of its accuracy (RouteLLM's measure); ECE = expected calibration error "
         "(10 bins), mean over models.", ""]
    for name, r in results["sets"].items():
        b = r["best_single"]
        L += [f"## {name}", "", f"Data: `{r['data']}`{' (' + r['note'] + ')' if r['note'] else ''}: "
              f"{r['n_train']} training and {r['n_test']} test questions, {len(r['models'])} models; best single "
              f"model on test: {b['slot']} (accuracy {b['accuracy']:.3f}).", "",
              "| router | AIQ | saved at parity | saved at 95% | best-model share at 95% | mean AUROC | mean ECE |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
        order = ["router"] + [k for k in ("knn-40", "logistic", "logistic-sklearn", "mlp", "prior", "random", "oracle")
                              if k in r["routers"]]
        for k in order:
            x = r["routers"][k]
            label = f"**default train ({r['training']['search']['winner']})**" if k == "router" else k
            if k == "mlp":
                label = "mlp alone (format-1 MLP ensemble, 3 members, TrainConfig MLP settings)"
            if k == "logistic":
                label = "logistic (the search's solver, C per model by CV)"
            if k == "logistic-sklearn":
                label = "logistic, sklearn LogisticRegressionCV (evaluate's baseline)"
            L.append(f"| {label} | {_f(x['aiq'])} | {_f(x['save_parity'], True)} | {_f(x['save_95'], True)} | "
                     f"{_f(x['best_share_at_95'], True)} | {_f(x['mean_auroc'])} | {_f(x['mean_ece'])} |")
        rt = r["routers"]["router"]
        base = {k: r["routers"][k] for k in BASELINES if k in r["routers"]}
        best_b = max(base, key=lambda k: base[k]["aiq"])
        s95 = max((v["save_95"] or -1) for v in base.values())
        L += ["", f"Target: beats the best baseline of this run on AIQ ({_f(rt['aiq'])} vs {best_b} "
              f"{_f(base[best_b]['aiq'])}: {'met' if rt['aiq'] > base[best_b]['aiq'] else 'NOT met'}); never loses on "
              f"saved at 95% ({_f(rt['save_95'], True)} vs best baseline {_f(s95, True)}: "
              f"{'met' if (rt['save_95'] or -1) >= s95 else 'NOT met'})."]
        if name == "routerbench":
            L.append(f"RouterBench targets: AIQ >= 0.84 ({'met' if rt['aiq'] >= 0.84 else 'NOT met'}), saved at 95% "
                     f">= 70% ({'met' if (rt['save_95'] or 0) >= 0.70 else 'NOT met'}), at parity >= 30% "
                     f"({'met' if (rt['save_parity'] or 0) >= 0.30 else 'NOT met'}).")
        t = r["training"]
        s = t["search"]
        L += ["", f"### Head search ({s['folds']}-fold CV grouped by {s['grouped_by']}, stratified by "
              f"{s['stratified_by'] or 'nothing'}, seed {s['fold_seed']})", "",
              f"`train` took {r['train_seconds']:.0f} s in all (features {t['features_seconds']:.0f} s from the cache, "
              f"search and final fit {t['search_seconds']:.0f} s). Candidates, best first (CV AIQ of the calibrated "
              "out-of-fold P; the time is the candidate's CV fits):", "",
              "| candidate | CV AIQ | uncalibrated | CV AUROC | CV saved at 95% | s |", "| --- | --- | --- | --- | --- | --- |"]
        for c in s["candidates"]:
            L.append(f"| {c['name']} | {_f(c['aiq'])} | {_f(c['aiq_uncalibrated'])} | {_f(c['mean_auroc'])} | "
                     f"{_f(c['cost_save_at_95'], True)} | {c['seconds']:.1f} |")
        ce = r["calibration"]
        if ce:
            L += ["", "### Calibration per model (test split, ECE before -> after the per-model map)", "",
                  "| model | map (chosen by CV) | ECE before | ECE after |", "| --- | --- | --- | --- |"]
            for m in r["models"]:
                if m in ce["methods"]:
                    L.append(f"| {m} | {ce['methods'][m]} | {_f(ce['ece_before'][m])} | {_f(ce['ece_after'][m])} |")
            L.append(f"| mean | | {_f(ce['mean_ece_before'])} | {_f(ce['mean_ece_after'])} |")
        e = r.get("extend")
        if e:
            L += ["", f"### Adding a model with `train --extend` (held out: {e['held_out']})", "",
                  f"Trained on the other models, then `--extend` with n labels of {e['held_out']} (random training "
                  f"questions, seed 0). Full retrain with all labels: AIQ {_f(e['full_retrain_aiq'])}. Labels needed "
                  f"to come within 0.01 AIQ: **{e['labels_within_0.01'] or 'not reached'}**. The column "
                  "is a logistic regression on what the frozen head computes; its input and L2 strength are "
                  "chosen by 5-fold CV on the new labels, by the extended pool's AIQ when the labels come "
                  "with the other models' (as here), else by log loss.", "",
                  "| labels | test AIQ | gap to full retrain | column input (C), chosen by |", "| --- | --- | --- | --- |"]
            for p in e["points"]:
                c = p.get("column") or {}
                how = f"{c['input']} (C={c['C']:g}), {c['criterion'].replace('_', ' ')}" if c.get("input") else "—"
                L.append(f"| {p['n_labels']} | {_f(p['aiq'])} | {p['gap_to_full_retrain']:+.3f} | {how} |")
        L.append("")
    cl = results.get("crosslingual")
    if cl:
        L += ["## Cross-lingual consistency of the shipped checkpoint", "",
              f"`{cl['checkpoint']}` on the {cl['pairs']} EN/JA pairs of `assets/multilingual_pairs.jsonl` "
              f"(same measure as `benchmarks/study_encoders.py crosslingual`): mean |ΔP| {cl['mean_abs_dp']:.3f} "
              f"(target <= 0.08: {'met' if cl['mean_abs_dp'] <= 0.08 else 'NOT met'}), same choice at tolerance 0.10 "
              f"for {cl['agreement']:.0%} of pairs (target >= 80%: {'met' if cl['agreement'] >= 0.8 else 'NOT met'}).", ""]
    ft = results.get("finetune")
    if ft:
        L += ["## Fine-tuning the reader (`train --finetune-layers N`)", "",
              f"From `{ft['command']}` (docs/finetune_study.json): the top blocks of the bundled encoder tuned on "
              "each set's training split with the masked BCE (best epoch by 10% of the training questions), then "
              "the same head search on frozen and on tuned features, both scored on the test split.", "",
              "| set | features | search winner | test AIQ | saved at 95% | mean AUROC | kNN-40 AIQ | fine-tune cost |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for name, r in ft["sets"].items():
            for tag in ("frozen", "tuned"):
                s_, k_ = r["test"][f"{tag} search"], r["test"][f"{tag} knn-40"]
                cost = (f"{r['seconds_finetune']:.0f} s ({r['config']['layers']} blocks, {r['config']['epochs']} epochs, "
                        f"best epoch {r['best_epoch']})") if tag == "tuned" else "—"
                L.append(f"| {name} ({r['n_train']} train / {r['n_test']} test) | {tag} | {r['winners'][tag]} | {_f(s_['aiq'])} | {_f(s_['save_95'], True)} | "
                         f"{_f(s_['mean_auroc'])} | {_f(k_['aiq'])} | {cost} |")
        notes = [f"- {name}: {r['note']}." for name, r in ft["sets"].items() if r.get("note")]
        L += ["", *notes, *([""] if notes else []),
              "`train --finetune-layers N` runs the same tuning inside `train` and keeps the tuned blocks only "
              "when the head fitted on 80% of the training questions scores an AIQ on the other 20% more than "
              "0.002 (the search's tie band) above the frozen encoder's (router.json `training.finetune`); the "
              "head search then still selects on the frozen features and refits the winner on the tuned ones. "
              "It is off by default (0): the tuning costs minutes to tens of minutes of CPU and, in the runs "
              "above, wins only where the heads plateau on frozen features.", ""]
    js = results.get("joint")
    if js:
        L += ["## One checkpoint on both sets (`python -m benchmarks.joint_study`)", "",
              f"Default `train` on the training rows of both sets at once (the two files hold {js['n_questions']} questions, "
              f"{len(js['models'])} models; RouteLLM's Mixtral-8x7B-Instruct labels fill RouterBench's mixtral-8x7b-chat "
              f"column, the masked loss leaves the other nine columns to RouterBench rows). Winner: {js['winner']}.", "",
              "| test split | joint AIQ | alone AIQ | joint saved at 95% | alone saved at 95% |", "| --- | --- | --- | --- | --- |"]
        for name, r in js["sets"].items():
            a = r["alone"] or {}
            L.append(f"| {name} | {_f(r['joint']['aiq'])} | {_f(a.get('aiq'))} | {_f(r['joint']['save_95'], True)} | "
                     f"{_f(a.get('save_95'), True)} |")
        L += ["", f"Better on both test splits: **{'yes' if js['better_on_both'] else 'no'}**"
              f"{'' if js['better_on_both'] else ', so the bundled checkpoint stays trained on RouterBench alone'}.", ""]
    L += ["## Earlier study", "", "The encoder and head study that chose multilingual-e5-small (and its numbers) is in "
          "[encoder_study.md](encoder_study.md).", ""]
    return "\n".join(L)


def studies(args) -> dict:
    """The fine-tune and joint-training studies' result files that exist, by their key in the results."""
    return {key: json.loads(Path(f).read_text(encoding="utf-8"))
            for key, f in (("finetune", args.finetune_json), ("joint", args.joint_json)) if f and Path(f).exists()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--cached-only", action="store_true", help="use only questions whose features are cached")
    ap.add_argument("--features-cache", default=None)
    ap.add_argument("--skip-extend", action="store_true")
    ap.add_argument("--reuse", action="store_true",
                    help="reuse checkpoints under runs/quality/ trained on the same rows with the same config")
    ap.add_argument("--extend-ns", default="25,50,100,200,400,800")
    ap.add_argument("--crosslingual", default="assets/checkpoint", help="checkpoint to check on the EN/JA pairs ('' = skip)")
    ap.add_argument("--finetune-json", default=str(ROOT / "docs" / "finetune_study.json"),
                    help="results of benchmarks/finetune_study.py to include (skipped when absent)")
    ap.add_argument("--joint-json", default=str(ROOT / "docs" / "joint_study.json"),
                    help="results of benchmarks/joint_study.py to include (skipped when absent)")
    ap.add_argument("--page", default=str(ROOT / "docs" / "quality.md"))
    ap.add_argument("--timing-note", default=None,
                    help="what the page says about the machine the timings were taken on (default: from the "
                         "load averages recorded at the start and end of the run)")
    ap.add_argument("--json", default=str(ROOT / "docs" / "quality_results.json"))
    ap.add_argument("--render", default=None, metavar="JSON[,JSON]",
                    help="only write the page (and --json) from earlier runs' result files, merged")
    args = ap.parse_args()
    if args.render:
        results = {"created": None, "command": [], "sets": {}}
        for f in args.render.split(","):
            r = json.loads(Path(f).read_text(encoding="utf-8"))
            results["created"] = max(results["created"] or "", r["created"])
            results["command"].append(r["command"])
            results["sets"].update(r["sets"])
            if r.get("crosslingual"):
                results["crosslingual"] = r["crosslingual"]
            results["machine_start"] = results.get("machine_start") or r.get("machine_start")  # the first recorded start
            for key in ("machine_end", "timing_note"):
                results[key] = r.get(key) or results.get(key)
        results.update(studies(args))
        results["command"] = " and ".join(results["command"])
        if args.timing_note:
            results["timing_note"] = args.timing_note
        Path(args.json).write_text(json.dumps(results, indent=1, default=float) + "\n", encoding="utf-8")
        Path(args.page).write_text(render(results), encoding="utf-8")
        log(f"wrote {args.page} and {args.json}")
        return 0
    results = {"created": datetime.now(UTC).isoformat(timespec="minutes"),
               "command": "python -m benchmarks.quality_report " + " ".join(sys.argv[1:]), "sets": {},
               "machine_start": machine_state()}
    for name in [s.strip() for s in args.sets.split(",") if s.strip()]:
        results["sets"][name] = run_set(name, SETS[name], args)
    results.update(studies(args))
    if args.crosslingual:
        log("cross-lingual check")
        results["crosslingual"] = crosslingual(ROOT / args.crosslingual)
    results["machine_end"] = machine_state()
    if args.timing_note:
        results["timing_note"] = args.timing_note
    Path(args.json).write_text(json.dumps(results, indent=1, default=float) + "\n", encoding="utf-8")
    Path(args.page).write_text(render(results), encoding="utf-8")
    log(f"wrote {args.page} and {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
