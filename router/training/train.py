"""Train a checkpoint: features -> a head chosen by cross-validation -> per-slot calibration.

`train` scores every head family of router/training/families.py (logistic regression, kNN, the
MLP ensemble, a factorized IRT head, averages of the best) by grouped, task-stratified K-fold CV
on the training rows (router/training/search.py), refits the winner on all of them and calibrates
each slot on the out-of-fold predictions. `head="mlp"` with the MLP fields below gives the format-1
MLP ensemble (train_head): fixed seeds, early stopping on a validation split carved from the
training questions. Unknown labels are masked out of every loss (never counted as wrong).
Test-split rows are never used.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from router.errors import InputError
from router.model import torch_thread
from router.model.encoder import EncoderSpec
from router.model.head import Head, save_checkpoint
from router.training.data import LabelTable, short_hash
from router.training.preprocess import fit_pca, standardizer  # noqa: F401 (fit_pca re-exported)


def default_encoder() -> EncoderSpec:
    """The shipped checkpoint's encoder: multilingual (English and Japanese route alike), run by ONNX
    Runtime at routing time (the torch encoder's features, 1.4-2.2x faster on a CPU and without
    importing torch; docs/fastpath.md)."""
    return EncoderSpec(source="multilingual-e5-small", normalize=True, prefix="query: ", runtime="onnx")


@dataclass
class TrainConfig:
    encoder: EncoderSpec = field(default_factory=default_encoder)
    pca_dim: int = 128  # components kept after standardizing (capped by samples and features)
    hidden: tuple[int, ...] = (256,)  # hidden widths of each MLP
    members: int = 5  # ensemble size; members differ by seed and bootstrap of the train rows
    epochs: int = 300
    patience: int = 30  # epochs without validation improvement before stopping
    lr: float = 1e-3
    weight_decay: float = 1e-2
    dropout: float = 0.2
    batch_size: int = 128
    val_fraction: float = 0.15
    seed: int = 0
    head: str = "auto"  # "auto" = CV search over every family; or one family name (logistic, knn, mlp, irt)
    cv_folds: int = 5
    calibrate: bool = True  # per-slot Platt/isotonic/none chosen by CV on out-of-fold predictions
    features_cache: str | None = None  # folder for cached features (default: <ROUTER_CACHE>/features)
    finetune_layers: int = 0  # >0: tune the encoder's top blocks, kept only if they win on held-out rows (finetune.py)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["encoder"] = self.encoder.to_json()
        d["hidden"] = list(self.hidden)
        if not d["finetune_layers"]:
            del d["finetune_layers"]  # keeps earlier checkpoints' recorded configs comparable
        return d


def _masked_bce(logits, y, mask):
    import torch

    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
    return (loss * mask).sum() / mask.sum().clamp(min=1)


def _train_member(Xtr, Ytr, Xva, Yva, cfg: TrainConfig, seed: int) -> tuple[list, int, float]:
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dims = [Xtr.shape[1], *cfg.hidden, Ytr.shape[1]]
    mods: list[torch.nn.Module] = []
    for i in range(len(dims) - 1):
        if i > 0:
            mods += [torch.nn.ReLU(), torch.nn.Dropout(cfg.dropout)]
        mods.append(torch.nn.Linear(dims[i], dims[i + 1]))
    net = torch.nn.Sequential(torch.nn.Dropout(cfg.dropout / 2), *mods)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def tens(a):
        return torch.tensor(a, dtype=torch.float32)

    boot = rng.integers(0, len(Xtr), len(Xtr)) if cfg.members > 1 else np.arange(len(Xtr))
    xt, yt = tens(Xtr[boot]), tens(np.nan_to_num(Ytr[boot]))
    mt = tens(~np.isnan(Ytr[boot]))
    xv, yv, mv = tens(Xva), tens(np.nan_to_num(Yva)), tens(~np.isnan(Yva))
    best, best_state, best_epoch, bad = float("inf"), None, 0, 0
    for epoch in range(cfg.epochs):
        net.train()
        perm = torch.tensor(rng.permutation(len(xt)))
        for s in range(0, len(perm), cfg.batch_size):
            b = perm[s: s + cfg.batch_size]
            opt.zero_grad()
            _masked_bce(net(xt[b]), yt[b], mt[b]).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            v = float(_masked_bce(net(xv), yv, mv))
        if v < best - 1e-5:
            best, best_state, best_epoch, bad = v, copy.deepcopy(net.state_dict()), epoch, 0
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    net.load_state_dict(best_state)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    return [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in linears], best_epoch, best


def _stack(members: list[list[tuple[np.ndarray, np.ndarray]]]) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.stack([m[i][0] for m in members]), np.stack([m[i][1] for m in members]))
            for i in range(len(members[0]))]


def token_stats(values: np.ndarray) -> dict[str, float]:
    v = values[~np.isnan(values)]
    if v.size == 0:
        return {}
    return {"mean": round(float(v.mean()), 2), "median": float(np.median(v)), "p90": float(np.percentile(v, 90)),
            "n": int(v.size)}


def slot_metrics(P: np.ndarray, Y: np.ndarray, slots: list[str]) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    out: dict[str, Any] = {"auroc": {}, "brier": {}}
    for j, s in enumerate(slots):
        m = ~np.isnan(Y[:, j])
        y, p = Y[m, j] >= 0.5, P[m, j]
        out["brier"][s] = round(float(np.mean((p - Y[m, j]) ** 2)), 4) if m.any() else None
        out["auroc"][s] = round(float(roc_auc_score(y, p)), 4) if 0 < y.sum() < y.size else None
    vals = [v for v in out["auroc"].values() if v is not None]
    out["mean_auroc"] = round(float(np.mean(vals)), 4) if vals else None
    out["mean_brier"] = round(float(np.mean([v for v in out["brier"].values() if v is not None])), 4)
    return out


def training_rows(table: LabelTable) -> LabelTable:
    """Every question not marked as test (test questions must never reach a checkpoint)."""
    test_texts = {q.strip() for q, s in zip(table.questions, table.splits) if s.lower() == "test"}
    # A prompt that also appears in the test split is left out too (RouterBench has two such).
    keep = [i for i, (q, s) in enumerate(zip(table.questions, table.splits))
            if s.lower() != "test" and q.strip() not in test_texts]
    if not keep:
        raise InputError("no training rows: every question is marked split=test")
    return table.subset(keep)


def check_trainable(table: LabelTable, progress: bool = True) -> None:
    """Refuse a model with no known label outside split=test (it would become a slot with a made-up
    P and write NaN into router.json); warn where the data cannot teach a router much."""
    known = ~np.isnan(table.Y)
    empty = [m for j, m in enumerate(table.models) if not known[:, j].any()]
    if empty:
        raise InputError(f"model(s) {', '.join(map(repr, empty))} have no known labels outside split=test; "
                         "label some of their rows, or leave them out with --models "
                         + ",".join(m for m in table.models if m not in empty))
    if not progress:
        return
    if len(table.models) < 2:
        print(f"warning: only one model ({table.models[0]!r}): a router needs two or more to choose between",
              flush=True)
    for j, m in enumerate(table.models):
        values = np.unique(table.Y[known[:, j], j])
        if len(values) == 1:
            print(f"warning: every known label of {m!r} is {values[0]:g}: its P will not vary by question",
                  flush=True)


def train_head(X: np.ndarray, Y: np.ndarray, cfg: TrainConfig, progress: bool = True) -> tuple[Head, dict]:
    """Fit scaler, PCA and the ensemble on (X, Y); returns the head and training facts."""
    rng = np.random.default_rng(cfg.seed)
    n = len(X)
    if n < 10:
        raise InputError(f"need at least 10 labeled questions to train, got {n}")
    perm = rng.permutation(n)
    n_val = max(2, int(round(n * cfg.val_fraction)))
    va, tr = perm[:n_val], perm[n_val:]
    mean, scale = standardizer(X[tr])
    pca = fit_pca((X[tr] - mean) / scale, cfg.pca_dim)
    Z = ((X - mean) / scale) @ pca
    members, epochs, losses = [], [], []
    it = range(cfg.members)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="training ensemble", unit="member")
    for e in it:
        # On the torch thread, like the encoder: a second OpenMP team would slow both down.
        w, ep, loss = torch_thread.call(_train_member, Z[tr], Y[tr], Z[va], Y[va], cfg, cfg.seed * 1000 + e)
        members.append(w)
        epochs.append(ep)
        losses.append(loss)
    head = Head(mean.astype(np.float32), scale.astype(np.float32), pca, _stack(members))
    facts = {"n_train": int(len(tr)), "n_val": int(len(va)), "best_epochs": epochs,
             "val_bce": [round(x, 5) for x in losses], "val_index": va.tolist()}
    return head, facts


def train(table: LabelTable, out: str | Path, cfg: TrainConfig | None = None, progress: bool = True,
          extra_meta: dict | None = None):
    """Train on every non-test question of `table` and write a checkpoint directory.

    The head comes from the CV search (cfg.head "auto", or one family); see run_search.
    """
    from router.model.features import cached_features
    from router.model.head import load_checkpoint
    from router.model.heads import CalibratedHead
    from router.training import metrics
    from router.training.search import run_search

    cfg = cfg or TrainConfig()
    t0 = time.time()
    table = training_rows(table)
    check_trainable(table, progress)
    X = cached_features(cfg.encoder, table.questions, progress=progress, cache=cfg.features_cache)
    spec, finetuned = cfg.encoder, None
    if cfg.finetune_layers:
        from router.training.finetune import maybe_finetune

        spec, X_fit, finetuned = maybe_finetune(cfg.encoder, table, X, out, cfg.finetune_layers, cfg.seed, progress)
    t_feat = time.time() - t0
    heads = None if cfg.head in ("auto", "", None) else [h.strip() for h in cfg.head.split(",") if h.strip()]
    # with tuned blocks kept, the search still selects on the frozen features (honest CV); see refit_winner
    kept = bool(finetuned and finetuned["kept"])
    res = run_search(X, table.Y, table.cost, table.questions, table.tasks, k=cfg.cv_folds, seed=cfg.seed,
                     heads=heads, calibrate_p=cfg.calibrate, progress=progress, mlp_base=cfg, fit=not kept)
    if kept:
        from router.training.search import refit_winner

        res = refit_winner(X_fit, table.Y, table.cost, res, cfg.seed, cfg.calibrate, progress, mlp_base=cfg)
    head = res["head"]
    if cfg.calibrate:
        head = CalibratedHead(head, res["calibration"], res["calibration_params"])
    t_search = time.time() - t0 - t_feat
    slots = list(table.models)
    before = metrics.calibration(res["P_oof"], table.Y, slots)
    after = metrics.calibration(res["P_oof_calibrated"], table.Y, slots)
    val_metrics = {**slot_metrics(res["P_oof_calibrated"], table.Y, slots),
                   "rows": "out-of-fold predictions of the chosen head (calibrated), all training questions"
                           + ("; on tuned features the encoder saw, so optimistic" if "refit" in res else "")}
    win = res["winner"]
    if progress:
        print(f"train: features {t_feat:.1f}s, search + final fit {t_search:.1f}s, total {time.time() - t0:.1f}s",
              flush=True)
    meta = {
        "slots": slots,
        "encoder": _portable(spec, out),
        "output_tokens": {m: token_stats(table.output_tokens[:, j]) for j, m in enumerate(table.models)},
        "default_output_tokens": 256,
        "prior_accuracy": {m: round(float(np.nanmean(table.Y[:, j])), 4) for j, m in enumerate(table.models)},
        "training": {
            "config": cfg.to_json(), "data_fingerprint": table.fingerprint(), "n_questions": len(table),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": round(time.time() - t0, 1), "features_seconds": round(t_feat, 1),
            "search_seconds": round(t_search, 1), "n_train": len(table), "n_val": 0,
            "search": {
                "metric": "AIQ of the calibrated out-of-fold P over all training questions (metrics.summarize, "
                          "as evaluate), mean AUROC breaks ties within 0.002",
                "folds": cfg.cv_folds, "fold_seed": cfg.seed, "fit_seed": cfg.seed,
                "grouped_by": "question text", "stratified_by": "task" if any(table.tasks) else None,
                "families": heads or "all", "winner": win.name, "winner_family": win.family,
                "winner_families": sorted({m.family for m in win.members}) if win.members else [win.family],
                "winner_setting": {k: (list(v) if isinstance(v, tuple) else v) for k, v in win.setting.items()},
                "candidates": res["candidates"], "final_fit_seconds": round(res["fit_seconds"], 1),
                **({"selected_on": "frozen features", "refit": res["refit"]} if "refit" in res else {}),
            },
            **({"finetune": finetuned} if finetuned else {}),
            "calibration": dict(zip(slots, res["calibration"])),
            "ece_out_of_fold": {s: {"before": _r4(before["ece"][s]), "after": _r4(after["ece"][s])} for s in slots},
        },
        "metrics": {"validation": val_metrics},
        "train_question_hashes": sorted({short_hash(q) for q in table.questions}),
        **(extra_meta or {}),
    }
    from router.model.encoder import get_encoder
    from router.model.encoder_probe import record

    meta["encoder_probe"] = record(get_encoder(spec))  # what loading checks the encoder against
    save_checkpoint(out, head, meta)
    return load_checkpoint(out)


def _portable(spec: EncoderSpec, out: str | Path) -> dict[str, Any]:
    """The spec as router.json keeps it: an overlay inside the checkpoint is named relative to it, and
    one from elsewhere (a distilled student's blocks) is copied in first, so the checkpoint travels whole."""
    import shutil

    from router.training.finetune import OVERLAY_FILE

    d = spec.to_json()
    if d.get("overlay"):
        src, out = Path(d["overlay"]), Path(out).resolve()
        if src.resolve().parent != out:
            target = out / OVERLAY_FILE
            out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
            src = target
        d["overlay"] = src.name
    return d


def _r4(v):
    return None if v is None else round(float(v), 4)
