"""`train`'s head search: grouped, task-stratified K-fold CV over the head families.

Every candidate (family x setting) gets out-of-fold P on the training rows; each slot's P is then
calibrated by cross-fitting (router/training/calibrate.py) and the candidate is scored by AIQ of
the calibrated out-of-fold P over all rows, exactly as `evaluate` scores a router on test rows
(metrics.summarize), with mean AUROC breaking ties. Averages of the best two or three families are
scored from their members' out-of-fold P (no extra fits). The winner is refitted on all rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from router.errors import InputError
from router.training import calibrate, metrics
from router.training.families import FAMILIES, Candidate, KNNFamily, average_combos, fit_candidate

AIQ_TIE = 0.002  # AIQ within this of the best counts as a tie; mean AUROC decides then


def cv_folds(questions: list[str], tasks: list[str] | None, k: int, seed: int) -> np.ndarray:
    """Fold index per row: rows with the same question text share a fold; each task is spread evenly."""
    groups: dict[str, list[int]] = {}
    for i, q in enumerate(questions):
        groups.setdefault(q.strip(), []).append(i)
    keys = list(groups)
    rng = np.random.default_rng(seed)
    rng.shuffle(keys)
    by_task: dict[str, list[str]] = {}
    for g in keys:
        t = (tasks[groups[g][0]] if tasks else "") or ""
        by_task.setdefault(t, []).append(g)
    folds = np.zeros(len(questions), dtype=int)
    pos = 0  # continue round-robin across tasks so fold sizes stay even
    for t in sorted(by_task):
        for g in by_task[t]:
            folds[groups[g]] = pos % k
            pos += 1
    return folds


def score(P: np.ndarray, Y: np.ndarray, cost: np.ndarray, expected_cost: np.ndarray) -> dict[str, Any]:
    s = metrics.summarize(P, Y, cost, expected_cost)
    cal = metrics.calibration(P, Y, [str(j) for j in range(Y.shape[1])])
    return {"aiq": s["aiq"], "cost_save_at_95": s["cost_save_at_95"], "cost_save_at_parity": s["cost_save_at_parity"],
            "mean_auroc": cal["mean_auroc"], "mean_brier": cal["mean_brier"], "mean_ece": cal["mean_ece"]}


def _key(sc: dict[str, Any]) -> tuple[float, float]:
    aiq = sc.get("aiq")
    aiq = -1.0 if aiq is None or np.isnan(aiq) else aiq
    return (round(aiq / AIQ_TIE), sc.get("mean_auroc") or 0.0)


def expected_costs(cost: np.ndarray) -> np.ndarray:
    """What the router believes a call costs: each model's mean known cost (as `evaluate` uses)."""
    return np.array([np.nanmean(c) if (~np.isnan(c)).any() else 0.0 for c in cost.T])


def _log(progress: bool, msg: str) -> None:
    if progress:
        print(msg, flush=True)


def _fmt(x, pct=False):
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "—"
    return f"{x:.1%}" if pct else f"{x:.4f}"


def _family(factories: dict[str, Callable], name: str, mlp_base):
    return factories[name](mlp_base) if name == "mlp" else factories[name]()


def _calibrated(P_oof: np.ndarray, Y: np.ndarray, folds: np.ndarray, calibrate_p: bool):
    """Each slot's map chosen by cross-fitting, its parameters, and the calibrated P (identity when off)."""
    if calibrate_p:
        methods, params, P_cal, _ = calibrate.choose(P_oof, Y, folds)
        return methods, params, P_cal
    return ["none"] * Y.shape[1], [np.zeros(0, np.float32)] * Y.shape[1], P_oof


def run_search(X: np.ndarray, Y: np.ndarray, cost: np.ndarray, questions: list[str], tasks: list[str] | None,
               k: int = 5, seed: int = 0, heads: list[str] | None = None, calibrate_p: bool = True,
               progress: bool = True, family_factories: dict[str, Callable] | None = None,
               mlp_base=None, averages: bool = True, fit: bool = True) -> dict[str, Any]:
    """Score every candidate by CV, pick the winner, fit it on all rows (with `fit`; else "head" is None).

    Returns {"head", "winner", "candidates" (table rows), "calibration", "folds", ...}.
    """
    n = len(X)
    if n < 2 * k:
        raise InputError(f"need at least {2 * k} labeled questions for {k}-fold cross-validation, got {n}")
    factories = family_factories or FAMILIES
    names = heads or list(factories)
    unknown = [h for h in names if h not in factories]
    if unknown:
        raise InputError(f"unknown head family {unknown}; choose from {sorted(factories)}")
    families = {nm: _family(factories, nm, mlp_base) for nm in names}
    folds = cv_folds(questions, tasks, k, seed)
    ec = expected_costs(cost)
    cands: list[Candidate] = []
    skipped: list[dict] = []

    def finish(c: Candidate) -> None:
        methods, params, P_cal = _calibrated(c.P_oof, Y, folds, calibrate_p)
        c.chosen = {**c.chosen, "calibration": methods, "calibration_params": params}
        c.P_cal = P_cal
        raw = score(c.P_oof, Y, cost, ec)
        c.score = {**score(P_cal, Y, cost, ec), "aiq_uncalibrated": raw["aiq"], "mean_ece_uncalibrated": raw["mean_ece"]}
        cands.append(c)
        _log(progress, f"  {c.name:<44} CV AIQ {_fmt(c.score['aiq'])} (uncalibrated {_fmt(raw['aiq'])})  "
                       f"AUROC {_fmt(c.score['mean_auroc'])}  saved@95 {_fmt(c.score['cost_save_at_95'], True)}  "
                       f"{c.seconds:6.1f}s")

    _log(progress, f"head search: {n} questions, {Y.shape[1]} models, {k}-fold CV grouped by question"
                   f"{', stratified by task' if tasks and any(tasks) else ''} (seed {seed})")
    for nm, fam in families.items():
        t0 = time.time()
        if isinstance(fam, KNNFamily):
            n_fold = int(min((folds != f).sum() for f in np.unique(folds)))
            settings = fam.settings(fam.grid(n_fold))
            while settings:
                all_p = fam.oof_all(X, Y, folds, seed, settings)
                dt = (time.time() - t0) / max(1, len(all_p))
                for i, s in enumerate(settings):
                    finish(Candidate(nm, s, all_p[i], {}, dt))
                t0 = time.time()
                best = max((c for c in cands if c.family == nm), key=lambda c: _key(c.score))
                ks = sorted({c.setting["k"] for c in cands if c.family == nm})
                settings = fam.settings(fam.wider(best.setting["k"], n_fold, ks))
            continue
        for s in fam.settings():
            t1 = time.time()
            try:
                P, chosen = fam.oof(X, Y, folds, s, seed)
            except InputError as exc:  # e.g. a fold too small for this family: the others still compete
                _log(progress, f"  {nm} {s}: skipped ({exc})")
                skipped.append({"family": nm, "setting": s, "reason": str(exc)})
                continue
            finish(Candidate(nm, s, P, chosen, time.time() - t1))
    if not cands:
        raise InputError(f"no head family could be fitted on {n} questions: "
                         + "; ".join(f"{x['family']}: {x['reason']}" for x in skipped))
    ranked = sorted(cands, key=lambda c: _key(c.score), reverse=True)
    if averages and len({c.family for c in cands}) >= 2:
        for combo in average_combos(ranked):
            finish(Candidate("average", {}, np.mean([c.P_oof for c in combo], axis=0), {}, 0.0, members=combo))
        ranked = sorted(cands, key=lambda c: _key(c.score), reverse=True)
    win = ranked[0]
    _log(progress, f"winner: {win.name}  CV AIQ {_fmt(win.score['aiq'])}  AUROC {_fmt(win.score['mean_auroc'])}")
    t0 = time.time()
    head = fit_candidate(families, win, X, Y, seed) if fit else None
    fit_seconds = time.time() - t0
    table = [{"name": c.name, "family": c.family, "setting": _jsonable_setting(c.setting),
              "chosen": {k2: v for k2, v in c.chosen.items() if k2 != "calibration_params"},
              "seconds": round(c.seconds, 2), **{k2: _r(v) for k2, v in c.score.items()}} for c in ranked]
    return {"head": head, "winner": win, "candidates": table, "skipped": skipped, "folds": folds,
            "fit_seconds": fit_seconds,
            "calibration": win.chosen["calibration"], "calibration_params": win.chosen["calibration_params"],
            "P_oof": win.P_oof, "P_oof_calibrated": win.P_cal}


def _r(v):
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else round(float(v), 5)


def _jsonable_setting(s: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in s.items()}


def refit_winner(X: np.ndarray, Y: np.ndarray, cost: np.ndarray, res: dict[str, Any], seed: int = 0,
                 calibrate_p: bool = True, progress: bool = True, mlp_base=None,
                 family_factories: dict[str, Callable] | None = None) -> dict[str, Any]:
    """The candidate `res` chose, fitted again on other features of the same rows (same folds).

    `train --finetune-layers` selects on the frozen features, whose CV is honest, and uses this to fit
    the winner on the tuned ones: 80% of those rows were tuned on their own labels, so a search on
    them would favour whichever family best exploits that. Returns `res` with the head, calibration
    and out-of-fold P replaced; the candidate table stays the selection's.
    """
    factories = family_factories or FAMILIES
    win, folds = res["winner"], res["folds"]
    members = win.members or [win]
    families = {m.family: _family(factories, m.family, mlp_base) for m in members}
    t0 = time.time()
    refit = []
    for m in members:
        P, chosen = families[m.family].oof(X, Y, folds, m.setting, seed)
        refit.append(Candidate(m.family, m.setting, P, chosen, time.time() - t0))
    P_oof = np.mean([c.P_oof for c in refit], axis=0)
    methods, params, P_cal = _calibrated(P_oof, Y, folds, calibrate_p)
    t1 = time.time()
    again = Candidate("average", {}, P_oof, {}, 0.0, members=refit) if win.members else refit[0]
    head = fit_candidate(families, again, X, Y, seed)
    sc = score(P_cal, Y, cost, expected_costs(cost))
    _log(progress, f"refit on the tuned features: {win.name}  CV AIQ {_fmt(sc['aiq'])} "
                   f"(optimistic: the encoder saw most of these labels)")
    return {**res, "head": head, "fit_seconds": res["fit_seconds"] + time.time() - t1,
            "calibration": methods, "calibration_params": params, "P_oof": P_oof, "P_oof_calibrated": P_cal,
            "refit": {"features": "tuned", "cv_aiq_optimistic": _r(sc["aiq"]), "seconds": round(time.time() - t0, 1)}}
