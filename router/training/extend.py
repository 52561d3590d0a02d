"""`train --extend`: add slots for new models on top of a frozen checkpoint.

A team that adds a model collects a few hundred labels for it, not for the whole pool. Each new
slot is one logistic regression (router/model/heads.py ColumnHead) on inputs the frozen head
already computes: the logit of the existing slots' P, the IRT head's query parameters (when the
head has an IRT part), or the encoder features. Which input and which L2 strength: 5-fold CV log
loss on the new labels. The existing slots' weights are untouched, so their P do not change.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from router.errors import InputError
from router.model.heads import ColumnHead, ExtendedHead, find_irt
from router.training.data import LabelTable, short_hash
from router.training.families import _logloss, fit_logistic_all
from router.training.preprocess import standardizer

EXTEND_CS = (0.01, 0.1, 1.0, 10.0)
MIN_LABELS = 10


def fit_column(X: np.ndarray, y: np.ndarray, base, seed: int = 0, k: int = 5) -> tuple[ColumnHead, dict]:
    """The best ColumnHead for labels y (no NaN) of questions X, and the CV table it was chosen from."""
    known = ~np.isnan(y)
    X, y = X[known], y[known]
    if len(y) < MIN_LABELS:
        raise InputError(f"need at least {MIN_LABELS} labels for a new model, got {len(y)}")
    sources = ["slots"] + (["irt"] if find_irt(base) is not None else []) + ["features"]
    folds = np.random.default_rng(seed).permutation(len(y)) % min(k, len(y))
    table = {}
    best = None
    for on in sources:
        F = ColumnHead.inputs(on, X, base).astype(np.float64)
        for C in EXTEND_CS:
            P = np.zeros(len(y))
            for f in range(folds.max() + 1):
                tr, te = folds != f, folds == f
                mean, scale = standardizer(F[tr])
                W, b = fit_logistic_all((F[tr] - mean) / scale, y[tr, None], C)
                P[te] = 1 / (1 + np.exp(-(((F[te] - mean) / scale) @ W[:, 0] + b[0])))
            ll = _logloss(P, y)
            table[f"{on}/C={C:g}"] = round(ll, 5)
            if best is None or ll < best[0] - 1e-9:
                best = (ll, on, C)
    _, on, C = best
    F = ColumnHead.inputs(on, X, base).astype(np.float64)
    mean, scale = standardizer(F)
    W, b = fit_logistic_all((F - mean) / scale, y[:, None], C)
    col = ColumnHead(on, mean, scale, W[:, 0], np.array([b[0]]))
    return col, {"input": on, "C": C, "cv_logloss": table, "n_labels": int(len(y))}


def extend(checkpoint: str | Path, table: LabelTable, out: str | Path, features_cache: str | None = None,
           seed: int = 0, progress: bool = True, models: list[str] | None = None):
    """Write a copy of `checkpoint` at `out` with one new slot per model of `table` it lacks."""
    from router.model.features import cached_features
    from router.model.head import load_checkpoint, save_checkpoint
    from router.training.train import token_stats, training_rows

    t0 = time.time()
    ckpt = load_checkpoint(checkpoint)
    new = models or [m for m in table.models if m not in ckpt.slots]
    if not new:
        raise InputError(f"{checkpoint}: the data has no model the checkpoint lacks (it scores {ckpt.slots})")
    table = training_rows(table)
    base = ckpt.head.base if isinstance(ckpt.head, ExtendedHead) else ckpt.head
    cols = list(ckpt.head.columns) if isinstance(ckpt.head, ExtendedHead) else []
    meta = dict(ckpt.meta)
    meta.pop("head", None)
    meta.pop("format", None)
    meta.pop("format_version", None)
    facts = []
    for m in new:
        j = table.models.index(m)
        rows = np.flatnonzero(~np.isnan(table.Y[:, j]))
        if not len(rows):
            raise InputError(f"no labels for model {m!r} outside split=test")
        X = cached_features(ckpt.encoder_spec, [table.questions[i] for i in rows], progress=progress,
                            cache=features_cache)
        col, info = fit_column(X, table.Y[rows, j], base, seed=seed)
        cols.append(col)
        meta["slots"] = list(meta["slots"]) + [m]
        meta.setdefault("output_tokens", {})[m] = token_stats(table.output_tokens[rows, j])
        meta.setdefault("prior_accuracy", {})[m] = round(float(np.nanmean(table.Y[rows, j])), 4)
        meta["train_question_hashes"] = sorted(set(meta.get("train_question_hashes", []))
                                               | {short_hash(table.questions[i]) for i in rows})
        facts.append({"slot": m, **info})
        if progress:
            print(f"  {m}: {info['n_labels']} labels, column on {info['input']} (C={info['C']:g})", flush=True)
    training = dict(meta.get("training", {}))
    training.setdefault("extensions", []).append({
        "from": str(checkpoint), "slots": new, "n_labels": sum(f["n_labels"] for f in facts), "columns": facts,
        "data_fingerprint": table.fingerprint(), "seed": seed, "seconds": round(time.time() - t0, 1),
        "created": datetime.now(UTC).isoformat(timespec="seconds")})
    meta["training"] = training
    meta.get("metrics", {}).pop("test", None)  # held-out numbers were for the old slot set
    save_checkpoint(out, ExtendedHead(base, cols), meta)
    return load_checkpoint(out)
