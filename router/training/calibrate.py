"""Per-slot calibration of P(correct) on out-of-fold predictions: none, Platt or isotonic.

The tolerance rule compares P across models, so a P of 0.7 must mean 70% for every slot. For each
slot the method with the lowest cross-fitted Brier score wins (each fold's map is fitted on the
other folds' out-of-fold predictions), then the winner is refitted on all of them. The maps are
stored in the checkpoint as small tensors (router/model/heads.py apply_calibration).
"""

from __future__ import annotations

import numpy as np

from router.model.heads import apply_calibration, logit

METHODS = ("none", "platt", "isotonic")
MIN_ROWS = 30  # fewer known labels than this: no map (a map fitted on a handful of rows is noise)


def fit_map(method: str, p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Parameters of one slot's map from predictions p and labels y in [0, 1] (no NaN)."""
    if method == "none":
        return np.zeros(0, dtype=np.float32)
    if method == "platt":
        from router.training.families import fit_logistic_all

        yy = y >= 0.5
        if yy.all() or not yy.any():
            return np.array([1.0, 0.0], dtype=np.float32)
        W, b = fit_logistic_all(logit(p)[:, None], yy[:, None].astype(float), 100.0)
        return np.array([W[0, 0], b[0]], dtype=np.float32)
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
        x, v = iso.X_thresholds_, iso.y_thresholds_
        # keep P strictly inside (0, 1): a 0 or 1 would let one slot dominate or vanish for good
        v = np.clip(v, 0.01, 0.99)
        return np.stack([x, v]).astype(np.float32)
    raise ValueError(f"unknown calibration method {method!r}")


def _brier(p, y):
    return float(np.mean((p - y) ** 2))


def choose(P_oof: np.ndarray, Y: np.ndarray, folds: np.ndarray, methods=METHODS):
    """(methods per slot, params per slot, cross-fitted calibrated P [n, m], per-slot Brier table)."""
    n, m = P_oof.shape
    chosen, params, table = [], [], []
    P_cal = P_oof.copy()
    for j in range(m):
        known = ~np.isnan(Y[:, j])
        scores = {}
        crossfit = {}
        for meth in methods:
            if meth != "none" and known.sum() < MIN_ROWS:
                continue
            out = P_oof[:, j].copy()
            for f in np.unique(folds):
                fit_rows, apply_rows = known & (folds != f), folds == f
                if fit_rows.sum() < 2:
                    continue
                par = fit_map(meth, P_oof[fit_rows, j], Y[fit_rows, j])
                out[apply_rows] = apply_calibration(P_oof[apply_rows, j], meth, par)
            crossfit[meth] = out
            scores[meth] = _brier(out[known], Y[known, j]) if known.any() else 0.0
        best = min(scores, key=lambda k: (scores[k], METHODS.index(k)))
        chosen.append(best)
        params.append(fit_map(best, P_oof[known, j], Y[known, j]) if known.any() else np.zeros(0, np.float32))
        P_cal[:, j] = crossfit[best]
        table.append({k: round(v, 5) for k, v in scores.items()})
    return chosen, params, P_cal, table
