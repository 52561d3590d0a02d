"""Reference routers scored next to a checkpoint, on the same rows and the same features.

Each returns P(correct) [n_test, m] for the test rows. Fitted baselines (prior, kNN,
logistic regression) see only training rows; unknown labels (NaN) are left out of every fit.
"""

from __future__ import annotations

import numpy as np


def oracle(Y_test: np.ndarray) -> np.ndarray:
    """The true labels as P: the best any router can do with these models."""
    return np.nan_to_num(np.asarray(Y_test, dtype=float), nan=0.0)


def random_p(n: int, m: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, m))


def prior(Y_train: np.ndarray, n_test: int) -> np.ndarray:
    """Every question gets each model's training accuracy: a fixed ranking, no look at the query."""
    acc = np.array([np.nanmean(c) if (~np.isnan(c)).any() else 0.5 for c in np.asarray(Y_train, float).T])
    return np.tile(acc, (n_test, 1))


def _unit(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    return X / np.clip(np.linalg.norm(X, axis=1, keepdims=True), 1e-12, None)


def knn(X_train: np.ndarray, Y_train: np.ndarray, X_test: np.ndarray, k: int = 40) -> np.ndarray:
    """Mean correctness of the k most cosine-similar training questions (unknown labels skipped)."""
    k = max(1, min(k, len(X_train)))
    S = _unit(X_test) @ _unit(X_train).T
    nn = np.argpartition(-S, k - 1, axis=1)[:, :k]
    Yn = np.asarray(Y_train, float)[nn]  # [n_test, k, m]
    known = ~np.isnan(Yn)
    counts = known.sum(axis=1)
    fallback = prior(Y_train, 1)[0]
    with np.errstate(invalid="ignore"):
        P = np.where(counts > 0, np.nansum(Yn, axis=1) / np.maximum(counts, 1), fallback)
    return P


def logistic(X_train: np.ndarray, Y_train: np.ndarray, X_test: np.ndarray,
             Cs: tuple[float, ...] = (0.01, 0.1, 1.0), seed: int = 0) -> np.ndarray:
    """One L2 logistic regression per model on standardized features; C picked by 5-fold CV on train."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(X_train)
    Xtr, Xte = scaler.transform(X_train), scaler.transform(X_test)
    Y_train = np.asarray(Y_train, float)
    P = np.zeros((len(X_test), Y_train.shape[1]))
    for j in range(Y_train.shape[1]):
        m = ~np.isnan(Y_train[:, j])
        y = Y_train[m, j] >= 0.5
        if y.all() or not y.any():
            P[:, j] = float(y.mean()) if y.size else 0.5
            continue
        if min(y.sum(), (~y).sum()) >= 5:
            clf = LogisticRegressionCV(Cs=list(Cs), cv=5, scoring="neg_log_loss", max_iter=2000,
                                       l1_ratios=(0.0,), use_legacy_attributes=False, random_state=seed)
        else:
            clf = LogisticRegression(C=Cs[len(Cs) // 2], max_iter=2000)
        clf.fit(Xtr[m], y)
        P[:, j] = clf.predict_proba(Xte)[:, 1]
    return P


def all_baselines(X_train, Y_train, X_test, Y_test, k: int = 40, seed: int = 0,
                  progress: bool = False) -> dict[str, np.ndarray]:
    """oracle, random, prior, kNN-k and logistic regression, all scored on the test rows."""
    out = {"oracle": oracle(Y_test), "random": random_p(len(Y_test), Y_test.shape[1], seed)}
    if X_train is None or len(X_train) == 0:
        return out  # nothing to fit on: only the label-free baselines
    out["prior"] = prior(Y_train, len(Y_test))
    steps = [(f"knn-{k}", lambda: knn(X_train, Y_train, X_test, k)),
             ("logistic", lambda: logistic(X_train, Y_train, X_test, seed=seed))]
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="fitting baselines", unit="baseline")
    for name, fit in steps:
        out[name] = fit()
    return out
