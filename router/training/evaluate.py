"""Evaluate a checkpoint on labeled data, with the baselines trained and scored in the same run.

    python -m router evaluate --checkpoint assets/checkpoint --data assets/data/routerbench.jsonl.gz

Rows evaluated: those with split == `split` (default "test") when the data has a split column,
else every row. Baselines (prior, kNN, logistic regression) are fit on the rows `train` would
use (not test, and no prompt that is also a test prompt) with the checkpoint's own encoder
features. The router picks by expected cost = each model's mean actual cost per call on those
training rows (on the evaluated rows when there are none): a price list, not a label.
Leakage guard: evaluated questions that the checkpoint was trained on are an error unless
allow_overlap (then the report says how many overlapped).
"""

from __future__ import annotations

import json
import time
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np

from router.errors import InputError
from router.files import atomic_write_text
from router.training import metrics
from router.training.data import LabelTable, read_labels, short_hash


def eval_rows(table: LabelTable, split: str | None) -> LabelTable:
    has_split = any(s for s in table.splits)
    if not split or not has_split:
        return table
    rows = table.split(split)
    if not len(rows):
        found = sorted({s for s in table.splits if s})
        raise InputError(f"no rows with split={split!r} in the data (splits found: {found}); "
                         "pass --split '' to evaluate every row")
    return rows


def check_labels(rows: LabelTable, where: str, split: str | None) -> None:
    if not (~np.isnan(rows.Y)).any():
        scope = f"the split={split!r} rows" if split and any(rows.splits) else "the rows"
        raise InputError(f"{where}: {scope} of the checkpoint's models have no known labels "
                         "(every 'correct' is empty): nothing to evaluate against")


def check_overlap(questions: list[str], train_hashes: set[str], allow: bool, where: str) -> int:
    """How many evaluated questions the checkpoint trained on; an error unless `allow`."""
    n = sum(short_hash(q) in train_hashes for q in questions)
    if n and not allow:
        raise InputError(
            f"{where}: {n} of {len(questions)} evaluated questions were used to train this checkpoint "
            "(their hashes are in router.json train_question_hashes), so the numbers would be optimistic. "
            "Evaluate on held-out rows (split=test), or pass --allow-overlap to report them anyway.")
    return n


def baseline_rows(table: LabelTable, rows: LabelTable) -> LabelTable | None:
    """Rows the fitted baselines may learn from: every question not evaluated (by id and by text)."""
    ids, texts = set(rows.ids), {q.strip() for q in rows.questions}
    keep = [i for i, (qid, q) in enumerate(zip(table.ids, table.questions)) if qid not in ids and q.strip() not in texts]
    return table.subset(keep) if keep else None


def eval_slots(ckpt_slots: list[str], models: list[str] | None) -> list[str]:
    """The checkpoint slots to evaluate: all, or the `--models` subset (checkpoint order)."""
    if not models:
        return list(ckpt_slots)
    unknown = [m for m in models if m not in ckpt_slots]
    if unknown:
        raise InputError(f"--models: the checkpoint does not score {', '.join(unknown)}; "
                         f"its models: {', '.join(ckpt_slots)}")
    if len(set(models)) < 2:
        raise InputError("--models: name at least two models (routing chooses between models)")
    return [s for s in ckpt_slots if s in set(models)]


def _align(table: LabelTable, slots: list[str], where: str, chosen: bool = False) -> LabelTable:
    missing = [s for s in slots if s not in table.models]
    if missing:
        scored = [s for s in slots if s in table.models]
        hint = (f"; evaluate the others with --models {','.join(scored)}" if len(scored) >= 2 and not chosen
                else "")
        raise InputError(f"{where}: no labels for {', '.join(missing)}, which the checkpoint scores "
                         f"(models with labels in the data: {', '.join(table.models)}){hint}")
    return table.select_models(slots)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        return None if not np.isfinite(x) else round(float(x), 6)  # JSON has neither NaN nor Infinity
    if isinstance(x, np.integer):
        return int(x)
    return x


def score_routers(P_by_name: dict[str, np.ndarray], Y: np.ndarray, cost: np.ndarray,
                  expected_cost: np.ndarray, slots: list[str], default_tolerance: float) -> dict[str, Any]:
    """Curves, summary metrics, calibration and routing distribution for each named P matrix."""
    out = {}
    for name, P in P_by_name.items():
        s = metrics.summarize(P, Y, cost, expected_cost)
        i = int(np.argmin(np.abs(s["tolerance"] - default_tolerance)))
        c_best = s["best_single"]["cost"]
        out[name] = {
            "aiq": s["aiq"], "cost_save_at_parity": s["cost_save_at_parity"],
            "cost_save_at_95": s["cost_save_at_95"], "max_accuracy": s["max_accuracy"],
            "at_default_tolerance": {"tolerance": default_tolerance, "accuracy": s["accuracy"][i],
                                     "cost_ratio": s["cost"][i] / c_best if c_best else None},
            "calibration": metrics.calibration(P, Y, slots) if name not in ("oracle",) else None,
            "curve": {"tolerance": s["tolerance"], "cost": s["cost"], "accuracy": s["accuracy"]},
            "distribution": metrics.distribution(s["choices"], slots),
        }
    return out


def evaluate(checkpoint: str | Path, data: str | Path, split: str | None = "test", allow_overlap: bool = False,
             default_tolerance: float = 0.2, k: int = 40, seed: int = 0, baselines: bool = True,
             progress: bool = True, models: list[str] | None = None) -> dict[str, Any]:
    """The full report as a JSON-ready dict (see format_table / write_plot); `models`: evaluate routing
    among these checkpoint slots only."""
    return evaluate_table(checkpoint, read_labels(data), str(data), split, allow_overlap, default_tolerance, k, seed,
                          baselines, progress, models=models)


def evaluate_table(checkpoint: str | Path, table: LabelTable, data: str = "", split: str | None = "test",
                   allow_overlap: bool = False, default_tolerance: float = 0.2, k: int = 40, seed: int = 0,
                   baselines: bool = True, progress: bool = True, features_cache: str | None = None,
                   models: list[str] | None = None) -> dict[str, Any]:
    """evaluate() on an already-read label table (data = its name in the report)."""
    from router.model.features import cached_features
    from router.model.head import load_checkpoint
    from router.training.baselines import all_baselines
    from router.training.search import expected_costs

    t0 = time.time()
    ckpt = load_checkpoint(checkpoint)
    slots = eval_slots(ckpt.slots, models)
    cols = [ckpt.slots.index(s) for s in slots]
    ignored = [m for m in table.models if m not in ckpt.slots]  # the report says so; they cannot be scored
    table = _align(table, slots, str(data), chosen=bool(models))
    rows = eval_rows(table, split)
    check_labels(rows, str(data), split)
    overlap = check_overlap(rows.questions, ckpt.train_hashes, allow_overlap, str(data))
    train_rows = baseline_rows(table, rows)
    price_rows = train_rows if train_rows is not None else rows
    expected_cost = expected_costs(price_rows.cost)

    X = cached_features(ckpt.encoder_spec, rows.questions, progress=progress, cache=features_cache)
    P = {"router": ckpt.head.predict(X)[:, cols]}
    if baselines:
        Xtr = cached_features(ckpt.encoder_spec, train_rows.questions, progress=progress,
                              cache=features_cache) if train_rows else None
        Ytr = train_rows.Y if train_rows else None
        P.update(all_baselines(Xtr, Ytr, X, rows.Y, k=k, seed=seed, progress=progress))
    results = score_routers(P, rows.Y, rows.cost, expected_cost, slots, default_tolerance)
    j, a_best, c_best = metrics.best_single(rows.Y, rows.cost)
    calibration_effect = None
    if hasattr(ckpt.head, "predict_raw"):  # a calibrated head: ECE per model before and after its maps
        raw = metrics.calibration(ckpt.head.predict_raw(X)[:, cols], rows.Y, slots)
        cal = results["router"]["calibration"]
        calibration_effect = {"methods": dict(zip(slots, [ckpt.head.methods[i] for i in cols])),
                              "ece_before": raw["ece"], "ece_after": cal["ece"],
                              "mean_ece_before": raw["mean_ece"], "mean_ece_after": cal["mean_ece"]}
    report = {
        "checkpoint": str(checkpoint), "data": str(data), "split": split or None,
        "n_questions": len(rows), "n_train_for_baselines": len(train_rows) if train_rows else 0,
        "overlap_with_training": overlap, "slots": slots, "encoder": ckpt.encoder_spec.to_json(),
        "expected_cost_per_call": dict(zip(slots, expected_cost)),
        "best_single": {"slot": slots[j], "accuracy": a_best, "cost": c_best},
        "single_models": {s: {"accuracy": float(np.nanmean(rows.Y[:, i])), "cost": float(np.nansum(rows.cost[:, i]))}
                          for i, s in enumerate(slots)},
        "default_tolerance": default_tolerance, "results": results, "calibration_effect": calibration_effect,
        "ignored_data_models": ignored, "checkpoint_slots": ckpt.slots,
        "seconds": round(time.time() - t0, 1),
    }
    return _jsonable(report)


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "—"
    v = 0.0 if abs(v) < 5e-5 else v  # no "-0.0%"
    return f"{v:.1%}" if pct else f"{v:.3f}"


def format_table(report: dict[str, Any]) -> str:
    """The terminal table: one line per router, then the best single model."""
    b = report["best_single"]
    n_tr = report["n_train_for_baselines"]
    fit_on = (f"baselines fit on {n_tr} training questions" if n_tr else
              "no trained baselines: the file has no other rows to fit kNN, logistic and the prior on (give the "
              "whole labeled file, its test rows marked split=test)")
    lines = [f"{report['n_questions']} questions ({'split=' + report['split'] if report['split'] else 'all rows'}), "
             f"{len(report['slots'])} models; {fit_on}",
             f"best single model: {b['slot']}  accuracy {b['accuracy']:.3f}  cost ${b['cost']:.4f}"]
    if not b["cost"]:
        lines.append("WARNING: the evaluated rows carry no cost_usd: AIQ and the savings columns need costs "
                     "and show — (accuracy and calibration are still measured)")
    if report.get("ignored_data_models"):
        lines.append(f"note: the data also labels {', '.join(report['ignored_data_models'])}, which this checkpoint "
                     "does not score (not evaluated; add them with train --extend)")
    if report.get("checkpoint_slots") and len(report["checkpoint_slots"]) != len(report["slots"]):
        lines.append(f"routing among {', '.join(report['slots'])} only (--models)")
    if report.get("overlap_with_training"):
        lines.append(f"WARNING: {report['overlap_with_training']} evaluated questions were in the training set")
    t = report["default_tolerance"]
    head = f"{'router':<10} {'AIQ':>6} {'save@parity':>12} {'save@95%':>9} {'max acc':>8} {'AUROC':>6} " \
           f"{'Brier':>6} {'acc@' + format(t, '.2f'):>9} {'cost@' + format(t, '.2f'):>10}"
    lines += ["", head, "-" * len(head)]
    for name, r in report["results"].items():
        cal = r.get("calibration") or {}
        d = r["at_default_tolerance"]
        lines.append(f"{name:<10} {_fmt(r['aiq']):>6} {_fmt(r['cost_save_at_parity'], True):>12} "
                     f"{_fmt(r['cost_save_at_95'], True):>9} {_fmt(r['max_accuracy']):>8} "
                     f"{_fmt(cal.get('mean_auroc')):>6} {_fmt(cal.get('mean_brier')):>6} "
                     f"{_fmt(d['accuracy']):>9} {_fmt(d['cost_ratio'], True):>10}")
    lines.append("\nsave@X = cost saved vs the best single model at X of its accuracy; cost@t = cost / its cost")
    ce = report.get("calibration_effect")
    if ce:
        lines.append("\nrouter calibration per model (ECE before -> after its map):")
        for s in report["slots"]:
            lines.append(f"  {s:<40} {ce['methods'][s]:<9} {_fmt(ce['ece_before'][s])} -> {_fmt(ce['ece_after'][s])}")
        lines.append(f"  {'mean':<40} {'':<9} {_fmt(ce['mean_ece_before'])} -> {_fmt(ce['mean_ece_after'])}")
    return "\n".join(lines)


def write_json(report: dict[str, Any], path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


def record_in_checkpoint(report: dict[str, Any], checkpoint: str | Path) -> Path:
    """Store the held-out summary in router.json as metrics[<split>] (weights untouched)."""
    from datetime import datetime

    from router.model.head import META_FILE

    path = Path(checkpoint) / META_FILE
    meta = json.loads(path.read_text(encoding="utf-8"))
    r = report["results"]["router"]
    summary = {k: r[k] for k in ("aiq", "cost_save_at_parity", "cost_save_at_95", "max_accuracy")}
    summary.update({
        "data": Path(report["data"]).name, "split": report["split"], "n_questions": report["n_questions"],
        "best_single": report["best_single"], "at_default_tolerance": r["at_default_tolerance"],
        "mean_auroc": r["calibration"]["mean_auroc"], "mean_brier": r["calibration"]["mean_brier"],
        "auroc": r["calibration"]["auroc"], "brier": r["calibration"]["brier"],
        "ece": r["calibration"].get("ece"), "calibration_effect": report.get("calibration_effect"),
        "baselines_aiq": {k: v["aiq"] for k, v in report["results"].items() if k != "router"},
        "baselines_cost_save_at_parity": {k: v["cost_save_at_parity"] for k, v in report["results"].items()
                                          if k != "router"},
        "evaluated": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m router evaluate --checkpoint CHECKPOINT --data DATA --record",
    })
    meta.setdefault("metrics", {})[report["split"] or "all"] = _jsonable(summary)
    atomic_write_text(path, json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return path


def write_plot(report: dict[str, Any], path: str | Path) -> None:
    """Interactive cost-vs-accuracy chart: one curve per router, the best single model, the default tolerance."""
    import plotly.graph_objects as go

    c_best = report["best_single"]["cost"]
    fig = go.Figure()
    for name, r in report["results"].items():
        cur = r["curve"]
        ratio = [c / c_best for c in cur["cost"]]
        fig.add_trace(go.Scatter(
            x=ratio, y=cur["accuracy"], mode="lines+markers", marker={"size": 4},
            name=f"{name} (AIQ {_fmt(r['aiq'])})", customdata=cur["tolerance"],
            hovertemplate="tolerance %{customdata:.2f}<br>cost %{x:.1%} of best<br>accuracy %{y:.3f}",
            line={"width": 3 if name == "router" else 1.5, "dash": "solid" if name == "router" else "dot"}))
        if name == "router":
            d = r["at_default_tolerance"]
            fig.add_trace(go.Scatter(x=[d["cost_ratio"]], y=[d["accuracy"]], mode="markers",
                                     marker={"size": 14, "symbol": "star"},
                                     name=f"router at default tolerance {d['tolerance']:.2f}"))
    for s, v in report["single_models"].items():
        best = s == report["best_single"]["slot"]
        fig.add_trace(go.Scatter(x=[v["cost"] / c_best], y=[v["accuracy"]], mode="markers", name=s,
                                 marker={"size": 12 if best else 7, "symbol": "diamond" if best else "circle"},
                                 legendgroup="single", showlegend=best,
                                 hovertemplate=f"{s}<br>cost %{{x:.1%}} of best<br>accuracy %{{y:.3f}}"))
    fig.update_layout(title=f"Cost vs accuracy, {report['n_questions']} questions ({report['data']})",
                      xaxis_title="cost relative to the best single model", yaxis_title="accuracy",
                      template="plotly_white", hovermode="closest")
    fig.update_xaxes(type="log")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)
