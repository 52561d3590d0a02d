"""`train --extend`: add slots for new models on top of a frozen checkpoint.

A team that adds a model collects a few hundred labels for it, not for the whole pool. Each new
slot is one logistic regression (router/model/heads.py ColumnHead) on inputs the frozen head
already computes: the logit of the existing slots' P, the IRT head's query parameters (when the
head has an IRT part), the encoder features, or the slots' logits and the features together.
Which input and which L2 strength: 5-fold CV on the new labels, by the extended pool's AIQ when the
data also labels the existing slots on those questions, else by log loss. The existing slots'
weights are untouched, so their P do not change.
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


def fit_column(X: np.ndarray, y: np.ndarray, base, seed: int = 0, k: int = 5,
               pool: tuple[np.ndarray, np.ndarray] | None = None, name: str = "the new model") -> tuple[ColumnHead, dict]:
    """The best ColumnHead for labels y of questions X, and the CV table it was chosen from.

    pool = (Y, cost) of the same rows for the base slots plus the new one last ([n, slots + 1]),
    when the new labels come with the others' labels: then the choice is the extended pool's CV AIQ
    (log loss breaks ties), the measure `train`'s search uses. Log loss alone rates a column by how
    well it predicts its own model, and on RouteLLM it preferred the others' logits, which only
    restate their order: the column then cannot say where the new model differs, and routing
    between them suffers (AIQ 0.703 against 0.716-0.723 for slots+features at 25-800 labels).
    """
    from router.training.search import AIQ_TIE, expected_costs, score

    known = ~np.isnan(y)
    X, y = X[known], y[known]
    if pool is not None:
        pool = (pool[0][known], pool[1][known])
    if len(y) < MIN_LABELS:
        raise InputError(f"{name} has {len(y)} known labels outside split=test; a new slot needs at least {MIN_LABELS}")
    sources = ["slots"] + (["irt"] if find_irt(base) is not None else []) + ["features", "slots+features"]
    folds = np.random.default_rng(seed).permutation(len(y)) % min(k, len(y))
    base_p = base.predict(X) if pool is not None else None
    table, best = {}, None
    for on in sources:
        F = ColumnHead.inputs(on, X, base).astype(np.float64)
        for C in EXTEND_CS:
            P = np.zeros(len(y))
            for f in range(folds.max() + 1):
                tr, te = folds != f, folds == f
                mean, scale = standardizer(F[tr])
                W, b = fit_logistic_all((F[tr] - mean) / scale, y[tr, None], C)
                P[te] = 1 / (1 + np.exp(-(((F[te] - mean) / scale) @ W[:, 0] + b[0])))
            row = {"logloss": round(_logloss(P, y), 5)}
            if pool is not None:
                Y, cost = pool
                row["aiq"] = round(float(score(np.column_stack([base_p, P]), Y, cost, expected_costs(cost))["aiq"]), 5)
            table[f"{on}/C={C:g}"] = row
            key = (round(row["aiq"] / AIQ_TIE) if "aiq" in row and not np.isnan(row["aiq"]) else 0, -row["logloss"])
            if best is None or key > best[0]:
                best = (key, on, C)
    _, on, C = best
    F = ColumnHead.inputs(on, X, base).astype(np.float64)
    mean, scale = standardizer(F)
    W, b = fit_logistic_all((F - mean) / scale, y[:, None], C)
    col = ColumnHead(on, mean, scale, W[:, 0], np.array([b[0]]))
    return col, {"input": on, "C": C, "criterion": "cv_aiq" if pool is not None else "cv_logloss",
                 "cv": table, "n_labels": int(len(y))}


def pool_labels(table: LabelTable, rows: np.ndarray, slots: list[str], new: str):
    """(Y, cost) of `rows` for slots + [new] when the data labels every slot on most of them, else None."""
    if any(s not in table.models for s in slots):
        return None
    cols = [table.models.index(s) for s in [*slots, new]]
    Y, cost = table.Y[np.ix_(rows, cols)], table.cost[np.ix_(rows, cols)]
    if np.isnan(Y[:, :-1]).mean() > 0.5 or np.isnan(cost).all(axis=0).any():
        return None
    return Y, cost


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
        col, info = fit_column(X, table.Y[rows, j], base, seed=seed, name=f"model {m!r}",
                               pool=pool_labels(table, rows, list(meta["slots"])[:base.n_slots], m))
        cols.append(col)
        meta["slots"] = list(meta["slots"]) + [m]
        meta.setdefault("output_tokens", {})[m] = token_stats(table.output_tokens[rows, j])
        meta.setdefault("prior_accuracy", {})[m] = round(float(np.nanmean(table.Y[rows, j])), 4)
        meta["train_question_hashes"] = sorted(set(meta.get("train_question_hashes", []))
                                               | {short_hash(table.questions[i]) for i in rows})
        facts.append({"slot": m, **info})
        if progress:
            how = "the pool's CV AIQ" if info["criterion"] == "cv_aiq" else "CV log loss (no labels of the other slots)"
            print(f"  {m}: {info['n_labels']} labels, column on {info['input']} (C={info['C']:g}), chosen by {how}",
                  flush=True)
    training = dict(meta.get("training", {}))
    training.setdefault("extensions", []).append({
        "from": str(checkpoint), "slots": new, "n_labels": sum(f["n_labels"] for f in facts), "columns": facts,
        "data_fingerprint": table.fingerprint(), "seed": seed, "seconds": round(time.time() - t0, 1),
        "created": datetime.now(UTC).isoformat(timespec="seconds")})
    meta["training"] = training
    meta.get("metrics", {}).pop("test", None)  # held-out numbers were for the old slot set
    save_checkpoint(out, ExtendedHead(base, cols), meta)
    return load_checkpoint(out)
