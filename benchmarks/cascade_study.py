"""A static-first cascade, measured and not shipped (docs/fastpath.md): route with the static table,
and run the transformer only when the static decision is close to flipping.

    python -m benchmarks.cascade_study [--full-rb assets/checkpoint] [--fast-rb runs/fastpath/e5-static-rb]
        [--full-rl runs/fastpath/e5-onnx-rl] [--fast-rl runs/fastpath/e5-static-rl] [--json docs/cascade_study.json]

The checkpoints are fastpath_quality.py's (default `train`, only the encoder spec changed). For each
set's test split and each margin delta, a query keeps the static decision when no model's static P
lies within delta of the threshold p_max - tolerance where it could change the choice (the chosen
model above it, a cheaper one below it), else it takes the full checkpoint's decision. Reported per
delta: AIQ and cost saved at 95% over the tolerance sweep, the share of queries the static table
decides at tolerance 0.10 and 0.20, and on the 20 EN/JA pairs the share routed alike at 0.10 and the
mean |P_en - P_ja| of the P each query routed with. The delta grid is swept on the test split to
draw the frontier; a shipped cascade would have `train` choose delta on held-out training rows.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.quality_report import PAIRS, SETS
from router.paths import PROJECT_ROOT as ROOT

DELTAS = (0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.10, 0.15)


def static_margin(P: np.ndarray, price: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """(choice, margin): how far the P that decide the choice are from the threshold."""
    from router.training import metrics

    tau = P.max(1) - tolerance
    choice = metrics.choose(P, price, tolerance)
    rows = np.arange(len(P))
    # the best model itself moves the threshold with it, so only a chosen model below the top counts
    own = np.where(choice == P.argmax(1), np.inf, P[rows, choice] - tau)
    cheaper = price[None, :] < price[choice][:, None]
    below = np.where(cheaper, tau[:, None] - P, np.inf).min(1)
    return choice, np.minimum(own, below)


def cascade(Pf: np.ndarray, Ps: np.ndarray, price: np.ndarray, tolerance: float, delta: float):
    """(choice, kept-static mask, the P each query routed with)."""
    from router.training import metrics

    ch, m = static_margin(Ps, price, tolerance)
    keep = m >= delta
    return np.where(keep, ch, metrics.choose(Pf, price, tolerance)), keep, np.where(keep[:, None], Ps, Pf)


def curve(choices: np.ndarray, Y: np.ndarray, cost: np.ndarray) -> tuple[float, float | None]:
    from router.training import metrics

    j, a_best, c_best = metrics.best_single(Y, cost)
    costs, accs = metrics.totals(choices, Y, cost)
    return metrics.aiq(costs, accs, c_best), metrics.cost_save_at(costs, accs, 0.95 * a_best, c_best)


def _rel(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def study_set(name: str, full_dir: Path, fast_dir: Path, pairs: bool) -> dict:
    from router.model.encoder import get_encoder
    from router.model.features import cached_features
    from router.model.head import load_checkpoint
    from router.training import metrics
    from router.training.data import read_labels
    from router.training.evaluate import _align, baseline_rows, eval_rows

    full, fast = load_checkpoint(full_dir), load_checkpoint(fast_dir)
    table = _align(read_labels(SETS[name]), full.slots, name)
    rows = eval_rows(table, "test")
    price = np.array([np.nanmean(c) for c in baseline_rows(table, rows).cost.T])
    Pf = full.head.predict(cached_features(full.encoder_spec, rows.questions, progress=True))
    Ps = fast.head.predict(cached_features(fast.encoder_spec, rows.questions, progress=True))
    tols = metrics.TOLERANCES
    out = {"full": _rel(full_dir), "fast": _rel(fast_dir), "n_test": len(rows), "rows": []}
    if pairs:
        ps = [json.loads(x) for x in PAIRS.read_text(encoding="utf-8").splitlines() if x.strip()]
        texts = [p["en"] for p in ps] + [p["ja"] for p in ps]
        Qf = full.head.predict(get_encoder(full.encoder_spec).features(texts))
        Qs = fast.head.predict(get_encoder(fast.encoder_spec).features(texts))
    for d in (None, *DELTAS):  # None: the full checkpoint alone
        if d is None:
            choices = np.stack([metrics.choose(Pf, price, t) for t in tols])
            kept = {0.1: 0.0, 0.2: 0.0}
        else:
            choices = np.stack([cascade(Pf, Ps, price, t, d)[0] for t in tols])
            kept = {t: float(cascade(Pf, Ps, price, t, d)[1].mean()) for t in (0.1, 0.2)}
        a, s95 = curve(choices, rows.Y, rows.cost)
        row = {"delta": d, "aiq": a, "saved_at_95": s95, "static_share_t010": kept[0.1], "static_share_t020": kept[0.2]}
        if pairs:
            n = len(ps)
            ch, _, Q = (metrics.choose(Qf, price, 0.1), None, Qf) if d is None else cascade(Qf, Qs, price, 0.1, d)
            row["pairs_agreement"] = float((ch[:n] == ch[n:]).mean())
            row["pairs_mean_abs_dp"] = float(np.abs(Q[:n] - Q[n:]).mean())
        out["rows"].append(row)
    return out


def render(res: dict) -> str:
    L = []
    for name, r in res.items():
        L += [f"{name} ({r['n_test']} test questions; full = {r['full']}, static = {r['fast']}):", "",
              "| delta | AIQ | saved at 95% | static decides at t=0.10 | at t=0.20 | EN/JA same choice | EN/JA abs dP |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
        for x in r["rows"]:
            d = "full alone" if x["delta"] is None else f"{x['delta']:.2f}"
            s95 = "—" if x["saved_at_95"] is None else f"{x['saved_at_95']:.1%}"
            pa = f"{x['pairs_agreement']:.0%}" if "pairs_agreement" in x else "—"
            dp = f"{x['pairs_mean_abs_dp']:.3f}" if "pairs_mean_abs_dp" in x else "—"
            L.append(f"| {d} | {x['aiq']:.3f} | {s95} | {x['static_share_t010']:.0%} | {x['static_share_t020']:.0%} "
                     f"| {pa} | {dp} |")
        L.append("")
    return "\n".join(L)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full-rb", default=str(ROOT / "assets" / "checkpoint"))
    ap.add_argument("--fast-rb", default=str(ROOT / "runs" / "fastpath" / "e5-static-rb"))
    ap.add_argument("--full-rl", default=str(ROOT / "runs" / "fastpath" / "e5-onnx-rl"))
    ap.add_argument("--fast-rl", default=str(ROOT / "runs" / "fastpath" / "e5-static-rl"))
    ap.add_argument("--json", default=str(ROOT / "docs" / "cascade_study.json"))
    a = ap.parse_args()
    res = {"routerbench": study_set("routerbench", Path(a.full_rb), Path(a.fast_rb), pairs=True),
           "routellm": study_set("routellm", Path(a.full_rl), Path(a.fast_rl), pairs=False)}
    Path(a.json).write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    print(render(res))


if __name__ == "__main__":
    main()
