"""Feature preprocessing fitted on training rows: standardization and PCA, with scikit-learn.

The fitted numbers (mean, scale, principal axes) are stored as plain arrays in the checkpoint's
safetensors, never as pickled estimators; routing applies them with numpy.
"""

from __future__ import annotations

import numpy as np

MIN_SCALE = 1e-6  # a feature that (nearly) never varies keeps scale 1 instead of blowing up


def standardizer(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, scale) per feature of X."""
    from sklearn.preprocessing import StandardScaler

    sc = StandardScaler().fit(np.asarray(X, dtype=np.float64))
    scale = np.where(sc.scale_ < MIN_SCALE, 1.0, sc.scale_)
    return sc.mean_.astype(np.float32), scale.astype(np.float32)


def fit_pca(Z: np.ndarray, k: int) -> np.ndarray:
    """Principal axes [d, k] of already-standardized Z, each axis signed so that its largest
    coefficient is positive (the same axes on every run)."""
    from sklearn.decomposition import PCA

    k = max(1, min(k, Z.shape[0] - 1, Z.shape[1]))
    V = PCA(n_components=k, svd_solver="full").fit(np.asarray(Z, dtype=np.float64)).components_.T
    signs = np.sign(V[np.abs(V).argmax(axis=0), np.arange(k)])
    return (V * np.where(signs == 0, 1, signs)).astype(np.float32)
