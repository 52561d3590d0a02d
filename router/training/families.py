"""Fitters for the head families that `train` searches over (the name -> factory table).

A family turns (X, Y, folds) into out-of-fold predictions for each of its settings, and fits
the final head on all rows for a chosen setting. Labels are in [0, 1] with NaN = unknown; an
unknown label is left out of every loss. Fitting may use sklearn/torch; the heads they return
(router/model/heads.py) are numpy-only at routing time.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from router.model.heads import AverageHead, IRTHead, KNNHead, LogisticHead, MLPHead, unit
from router.training.preprocess import fit_pca, standardizer


def slot_prior(Y: np.ndarray) -> np.ndarray:
    known = ~np.isnan(Y)
    return np.where(known.any(0), np.nansum(Y, 0) / np.maximum(known.sum(0), 1), 0.5)


def oof_loop(X, Y, folds, fit_predict) -> np.ndarray:
    """Out-of-fold P [n, m]: fit_predict(X_train, Y_train, X_held) per fold."""
    P = np.zeros(Y.shape, dtype=np.float64)
    for f in np.unique(folds):
        tr, te = folds != f, folds == f
        P[te] = fit_predict(X[tr], Y[tr], X[te])
    return P


# ---- logistic regression, one per slot, C per slot by out-of-fold log loss ---------------------

LOGISTIC_CS = (0.001, 0.01, 0.1, 1.0)


def fit_logistic_all(Z, Y, C, init=None, max_iter=300):
    """(W [d, m], b [m]) of one L2 logistic regression per slot (sklearn's objective:
    ||w||^2 / 2 + C * sum of log losses over known labels), all slots in one L-BFGS run (the loss is
    separable, so this is m independent fits). init: a previous (W, b) to warm-start from."""
    from scipy.optimize import minimize

    Z = np.asarray(Z, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    known = ~np.isnan(Y)
    y = np.nan_to_num(Y, nan=0.0)
    mk = known.astype(np.float64)
    nk = np.maximum(mk.sum(0), 1)
    d, m = Z.shape[1], Y.shape[1]
    prior = np.clip((np.nansum(Y, 0) + 0.5) / (known.sum(0) + 1.0), 1e-3, 1 - 1e-3)
    x0 = np.concatenate([np.zeros(d * m), np.log(prior / (1 - prior))]) if init is None else \
        np.concatenate([np.asarray(init[0]).ravel(), np.asarray(init[1])])

    def f(x):
        W, b = x[: d * m].reshape(d, m), x[d * m:]
        lg = Z @ W + b
        # log(1 + e^lg) - y lg, stable; per slot: mean log loss + ||w||^2 / (2 C n) (sklearn's objective / C n)
        ll = np.logaddexp(0, lg) - y * lg
        loss = ((ll * mk).sum(0) / nk).sum() + ((W * W).sum(0) / (2 * C * nk)).sum()
        g = (1 / (1 + np.exp(-lg)) - y) * mk / nk
        gW = Z.T @ g + W / (C * nk)
        return loss, np.concatenate([gW.ravel(), g.sum(0)])

    r = minimize(f, x0, jac=True, method="L-BFGS-B", options={"maxiter": max_iter, "gtol": 1e-6})
    return r.x[: d * m].reshape(d, m), r.x[d * m:]


def _logloss(p, y):
    m = ~np.isnan(y)
    p = np.clip(p[m], 1e-6, 1 - 1e-6)
    y = y[m]
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))) if m.any() else 0.0


class LogisticFamily:
    name = "logistic"

    def settings(self):
        return [{"Cs": list(LOGISTIC_CS)}]  # one setting: C is chosen per slot inside

    def oof(self, X, Y, folds, setting, seed):
        Cs = sorted(setting["Cs"])
        per_c = {C: np.zeros(Y.shape) for C in Cs}
        for f in np.unique(folds):
            tr, te = folds != f, folds == f
            mean, scale = standardizer(X[tr])
            Ztr, Zte = (X[tr] - mean) / scale, (X[te] - mean) / scale
            init = None
            for C in Cs:  # strongest penalty first; each fit warm-starts the next
                init = fit_logistic_all(Ztr, Y[tr], C, init)
                per_c[C][te] = 1 / (1 + np.exp(-(Zte @ init[0] + init[1])))
        best = [min(Cs, key=lambda C: _logloss(per_c[C][:, j], Y[:, j])) for j in range(Y.shape[1])]
        P = np.stack([per_c[c][:, j] for j, c in enumerate(best)], axis=1)
        return P, {"C_per_slot": best}

    def fit(self, X, Y, setting, seed, chosen):
        mean, scale = standardizer(X)
        Z = (X - mean) / scale
        W = np.zeros((X.shape[1], Y.shape[1]))
        b = np.zeros(Y.shape[1])
        for C in sorted(set(chosen["C_per_slot"])):
            cols = [j for j, c in enumerate(chosen["C_per_slot"]) if c == C]
            Wc, bc = fit_logistic_all(Z, Y[:, cols], C)
            W[:, cols], b[cols] = Wc, bc
        return LogisticHead(mean, scale, W, b)


# ---- k nearest neighbours ----------------------------------------------------------------------

KNN_KS = (10, 20, 40, 80, 160)
KNN_WEIGHTING = ("uniform", "similarity")
KNN_SHRINK = 2.0  # pseudo-neighbours of the prior: keeps a slot with few known neighbours near its mean


class KNNFamily:
    name = "knn"

    def settings(self, ks=KNN_KS):
        return [{"k": k, "weighting": w} for w in KNN_WEIGHTING for k in ks]

    def oof_all(self, X, Y, folds, seed, settings=None):
        """OOF P for every setting at once: one similarity matrix per fold."""
        settings = settings or self.settings()
        out = {i: np.zeros(Y.shape) for i in range(len(settings))}
        for f in np.unique(folds):
            tr, te = folds != f, folds == f
            head = KNNHead(X[tr], Y[tr], settings[0]["k"], settings[0]["weighting"], KNN_SHRINK, slot_prior(Y[tr]))
            S = head.similarities(X[te])
            for i, s in enumerate(settings):
                out[i][te] = head.vote(S, s["k"], s["weighting"])
        return out

    @staticmethod
    def grid(n_fold_train: int, ks=KNN_KS) -> list[int]:
        """The base grid for this much data: a neighbourhood of most of a fold is a per-slot prior,
        and its P is overconfident after calibration (k=160 of 228 questions read 0.97 where 0.68
        was observed), so k stays under a quarter of a fold's rows (the smallest k always stays)."""
        return [k for k in ks if k <= max(ks[0], n_fold_train // 4)]

    @staticmethod
    def wider(best_k: int, n_fold_train: int, ks=KNN_KS) -> list[int]:
        """The next k to try when CV's best k sits at the top of the grid: a grid edge is not an
        optimum. Bounded so that a neighbourhood stays under a quarter of a fold's rows."""
        k = 2 * best_k
        return [k] if best_k >= max(ks) and k <= n_fold_train // 4 else []

    def oof(self, X, Y, folds, setting, seed):
        def fp(Xtr, Ytr, Xte):
            return KNNHead(Xtr, Ytr, setting["k"], setting["weighting"], KNN_SHRINK, slot_prior(Ytr)).predict(Xte)

        return oof_loop(X, Y, folds, fp), {}

    def fit(self, X, Y, setting, seed, chosen):
        return KNNHead(unit(X), Y, setting["k"], setting["weighting"], KNN_SHRINK, slot_prior(Y))


# ---- MLP ensemble (the format-1 head) ------------------------------------------------------------

MLP_GRID = (
    {"pca_dim": 32, "hidden": (128,), "dropout": 0.5, "weight_decay": 0.1, "lr": 1e-3},
    {"pca_dim": 128, "hidden": (256,), "dropout": 0.2, "weight_decay": 1e-2, "lr": 1e-3},
)


class MLPFamily:
    name = "mlp"

    def __init__(self, base_cfg=None, grid=MLP_GRID, cv_members: int = 1):
        self.base_cfg, self.grid, self.cv_members = base_cfg, grid, cv_members

    def settings(self):
        out = [dict(g) for g in self.grid]
        if self.base_cfg is not None:  # the config's own MLP settings are always a grid point
            own = {k: getattr(self.base_cfg, k) for k in out[0]}
            own["hidden"] = tuple(own["hidden"])
            if own not in out:
                out.insert(0, own)
        return out

    def _cfg(self, setting, members, seed):
        from router.training.train import TrainConfig

        cfg = copy.deepcopy(self.base_cfg) if self.base_cfg is not None else TrainConfig()
        for k, v in setting.items():
            setattr(cfg, k, tuple(v) if k == "hidden" else v)
        cfg.members, cfg.seed = members, seed
        # CV fits are many: a shorter schedule and a larger batch keep the search affordable
        cfg.patience, cfg.batch_size, cfg.epochs = min(cfg.patience, 10), max(cfg.batch_size, 256), min(cfg.epochs, 150)
        return cfg

    def oof(self, X, Y, folds, setting, seed):
        from router.training.train import train_head

        cfg = self._cfg(setting, self.cv_members, seed)
        return oof_loop(X, Y, folds, lambda Xtr, Ytr, Xte: train_head(Xtr, Ytr, cfg, progress=False)[0].predict(Xte)), {}

    def fit(self, X, Y, setting, seed, chosen, members: int = 3):
        from router.training.train import train_head

        head, _ = train_head(X, Y, self._cfg(setting, members, seed), progress=False)
        return MLPHead(head)


# ---- factorized IRT head ---------------------------------------------------------------------------

IRT_GRID = ({"dim": 8, "weight_decay": 1e-4}, {"dim": 8, "weight_decay": 1e-3}, {"dim": 8, "weight_decay": 1e-2})
IRT_PCA = 128


def _fit_irt(X, Y, dim, weight_decay, seed, max_iter=400):
    """L-BFGS on the masked mean BCE + weight_decay * (|W_a|^2 + |w_b|^2 + |theta|^2), numpy gradients."""
    from scipy.optimize import minimize


    mean, scale = standardizer(X)
    proj = fit_pca((X - mean) / scale, IRT_PCA).astype(np.float64)
    Z = ((X - mean) / scale) @ proj
    zs = max(float(Z.std(axis=0).mean()), 1e-6)
    Z, proj = Z / zs, proj / zs  # unit-scale inputs; the rescaling is folded into the stored projection
    Y = np.asarray(Y, dtype=np.float64)
    mk = (~np.isnan(Y)).astype(np.float64)
    y = np.nan_to_num(Y, nan=0.0)
    N = max(mk.sum(), 1.0)
    n, k = Z.shape
    m = Y.shape[1]
    rng = np.random.default_rng(seed)
    prior = np.clip(slot_prior(Y), 0.02, 0.98)
    shapes = [(k, dim), (dim,), (k,), (1,), (m, dim), (m,)]
    sizes = [int(np.prod(s)) for s in shapes]
    x0 = np.concatenate([rng.normal(size=k * dim) * 0.01, rng.normal(size=dim) * 0.1, np.zeros(k), np.zeros(1),
                         rng.normal(size=m * dim) * 0.1, np.log(prior / (1 - prior))])

    def unpack(x):
        out, o = [], 0
        for shp, sz in zip(shapes, sizes):
            out.append(x[o: o + sz].reshape(shp))
            o += sz
        return out

    def f(x):
        Wa, ca, wb, cb, th, be = unpack(x)
        a = Z @ Wa + ca
        b = Z @ wb + cb[0]
        lg = a @ th.T + be - b[:, None]
        loss = ((np.logaddexp(0, lg) - y * lg) * mk).sum() / N
        reg = weight_decay * ((Wa * Wa).sum() + (wb * wb).sum() + (th * th).sum())
        G = (1 / (1 + np.exp(-lg)) - y) * mk / N
        da = G @ th
        db = -G.sum(1)
        grads = [Z.T @ da + 2 * weight_decay * Wa, da.sum(0), Z.T @ db + 2 * weight_decay * wb, np.array([db.sum()]),
                 G.T @ a + 2 * weight_decay * th, G.sum(0)]
        return loss + reg, np.concatenate([g.ravel() for g in grads])

    r = minimize(f, x0, jac=True, method="L-BFGS-B", options={"maxiter": max_iter, "gtol": 1e-6})
    Wa, ca, wb, cb, th, be = unpack(r.x)
    return IRTHead(mean, scale, proj, Wa, ca, wb, cb, th, be)


class IRTFamily:
    name = "irt"

    def settings(self):
        return [dict(g) for g in IRT_GRID]

    def oof(self, X, Y, folds, setting, seed):
        def fp(Xtr, Ytr, Xte):
            return _fit_irt(Xtr, Ytr, setting["dim"], setting["weight_decay"], seed).predict(Xte)

        return oof_loop(X, Y, folds, fp), {}

    def fit(self, X, Y, setting, seed, chosen):
        return _fit_irt(X, Y, setting["dim"], setting["weight_decay"], seed)


@dataclass
class Candidate:
    """One (family, setting) with its out-of-fold predictions and scores."""

    family: str
    setting: dict[str, Any]
    P_oof: np.ndarray
    chosen: dict[str, Any]
    seconds: float
    score: dict[str, Any] | None = None
    members: list[Candidate] | None = None  # for averages
    P_cal: np.ndarray | None = None  # cross-fitted calibrated P_oof

    @property
    def name(self) -> str:
        if self.members:
            return "average(" + "+".join(m.name for m in self.members) + ")"
        if not self.setting or list(self.setting) == ["Cs"]:
            return self.family
        return self.family + "[" + ",".join(f"{k}={_short(v)}" for k, v in self.setting.items()) + "]"


def _short(v):
    if isinstance(v, (list, tuple)):
        return "x".join(map(str, v))
    return f"{v:g}" if isinstance(v, float) else str(v)


def fit_candidate(families, c: Candidate, X, Y, seed):
    """Candidate `c` fitted on all rows; an average is the AverageHead of its members' fits."""
    if c.members:
        return AverageHead([fit_candidate(families, m, X, Y, seed) for m in c.members])
    return families[c.family].fit(X, Y, c.setting, seed, c.chosen)


FAMILIES: dict[str, Callable[..., Any]] = {
    "logistic": LogisticFamily,
    "knn": KNNFamily,
    "mlp": MLPFamily,
    "irt": IRTFamily,
}


def average_combos(ranked: list[Candidate], top: int = 3) -> list[list[Candidate]]:
    """Averages of the best 2 and best 3 distinct families (each family at its best setting)."""
    best_per_family: list[Candidate] = []
    for c in ranked:
        if c.family not in {b.family for b in best_per_family}:
            best_per_family.append(c)
    best = best_per_family[:top]
    return [list(x) for n in range(2, len(best) + 1) for x in [best[:n]]] + \
        [list(x) for x in itertools.combinations(best, 2) if list(x) != best[:2]]
