"""Fine-tune the encoder's top transformer blocks on routing labels (masked BCE).

Where every head sits on the same plateau the frozen features are the limit; this tunes the reader
itself. Only the top `layers` blocks train, so the frozen part runs once per question: its output
(the hidden states entering the first tuned block) is kept in memory as float16 and each epoch runs
just the tuned blocks, mean pooling and one linear layer per model. On 2 CPU cores that makes an
epoch cost about layers/12 of an encoding pass times three (forward + backward), instead of a full
pass per epoch.

The tuned blocks are saved as a small safetensors overlay (read by encoder.py apply_overlay), not
as a copy of the whole encoder: the multilingual vocabulary alone is 96 M parameters.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from router.errors import InputError
from router.model import torch_thread
from router.model.encoder import Encoder, EncoderSpec


@dataclass
class FinetuneConfig:
    layers: int = 2  # top transformer blocks that train; the rest stay frozen
    epochs: int = 3
    lr: float = 3e-5  # tuned blocks
    head_lr: float = 1e-3  # the linear layer on top (it starts from zero knowledge)
    weight_decay: float = 1e-2
    batch_size: int = 32
    val_fraction: float = 0.1  # questions held out for early stopping (best epoch kept)
    seed: int = 0


def _blocks(model):
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if layers is None:
        raise InputError(f"fine-tuning needs a BERT-style encoder (model.encoder.layer); "
                         f"{type(model).__name__} has none")
    return layers


def _mask_for(model, mask, hidden):
    # The same additive mask the model builds itself for these blocks (sdpa or eager).
    out = model._create_attention_masks(attention_mask=mask, encoder_attention_mask=None,
                                        embedding_output=hidden, encoder_hidden_states=None, cache=None)
    return out[0] if isinstance(out, tuple) else out  # (self-attention mask, cross-attention mask)


class _Top:
    """The tuned blocks + pooling as a function of the cached hidden states."""

    def __init__(self, model, blocks, spec: EncoderSpec):
        self.model, self.blocks, self.spec = model, blocks, spec

    def pooled(self, hidden, mask):
        import torch

        h = hidden
        m4 = _mask_for(self.model, mask, h)
        for b in self.blocks:
            out = b(h, attention_mask=m4)
            h = out[0] if isinstance(out, tuple) else out
        m = mask.unsqueeze(-1).to(h.dtype)
        v = (h * m).sum(1) / m.sum(1).clamp(min=1)
        return torch.nn.functional.normalize(v, dim=-1) if self.spec.normalize else v


def run_epochs(log: list, epochs: int, blocks, chunks_fn, loss_of, opt, val_loss, snapshot, name: str,
               progress: bool, min_gain: float) -> tuple[dict, int]:
    """Epochs of train_epoch, each logged with its validation loss; the best epoch's snapshot (epoch 0 =
    before training) and its number. Appends to `log`."""
    best, best_state, best_epoch = val_loss(), snapshot(), 0
    log.append({"epoch": 0, "val_loss": best})
    for epoch in range(1, epochs + 1):
        run = train_epoch(blocks, chunks_fn(), loss_of, opt, f"{name} epoch {epoch}/{epochs}", progress)
        v = val_loss()
        log.append({"epoch": epoch, "train_loss": run, "val_loss": v})
        if progress:
            print(f"  epoch {epoch}: train loss {run:.4f}  validation loss {v:.4f}", flush=True)
        if v < best - min_gain:
            best, best_state, best_epoch = v, snapshot(), epoch
    return best_state, best_epoch


def train_epoch(blocks, chunks, loss_of, opt, desc: str, progress: bool) -> float:
    """One pass of optimizer steps over `chunks` (lists of row indices); the mean loss."""
    for b in blocks:
        b.train()
    it = chunks
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(chunks, desc=desc, unit="batch")
    run = 0.0
    for b in it:
        opt.zero_grad()
        loss = loss_of(b)
        loss.backward()
        opt.step()
        run += loss.detach().item()
    return run / max(len(chunks), 1)


def _pad(rows: list[np.ndarray]):
    import torch

    width = max(r.shape[0] for r in rows)
    h = torch.zeros((len(rows), width, rows[0].shape[1]), dtype=torch.float32)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        h[i, : r.shape[0]] = torch.from_numpy(r.astype(np.float32))
        mask[i, : r.shape[0]] = 1
    return h, mask


def frozen_states(enc: Encoder, texts: list[str], layers: int, batch_size: int = 32,
                  progress: bool = True) -> list[np.ndarray]:
    """Per question: the hidden states entering the first tuned block, [tokens, hidden] float16."""
    import torch

    n = enc.n_layers
    if not 0 < layers < n:
        raise InputError(f"--finetune-layers must be between 1 and {n - 1} for this encoder, got {layers}")
    ids, _ = enc.tokenize(texts)
    order = np.argsort([len(x) for x in ids], kind="stable")
    out: list[np.ndarray | None] = [None] * len(texts)
    batches = [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc=f"frozen layers 0..{n - layers}", unit="batch")

    def run(batch_ids):
        t, m = enc.padded(batch_ids)
        with torch.inference_mode():
            hs = enc.model(input_ids=t, attention_mask=m, output_hidden_states=True).hidden_states[n - layers]
        return [hs[i, : len(row)].to(torch.float16).numpy().copy() for i, row in enumerate(batch_ids)]

    for b in batches:
        for i, h in zip(b, torch_thread.call(run, [ids[i] for i in b])):
            out[i] = h
    return out  # type: ignore[return-value]


def check_top(enc: Encoder, layers: int) -> float:
    """Max |difference| between the tuned-block path and the model's own forward on two texts.

    Guards the private mask helper used above: a transformers release that changes it must fail
    loudly here, not train on wrong states."""
    import torch

    texts = ["what is 2 + 2?", "Explain the difference between a list and a tuple in Python, with examples."]
    states = frozen_states(enc, texts, layers, progress=False)
    top = _Top(enc.model, list(_blocks(enc.model))[enc.n_layers - layers:], enc.spec)
    with torch.inference_mode():
        h, m = _pad(states)
        mine = top.pooled(h, m).numpy()
    ref = enc.features(texts)
    return float(np.abs(mine - ref).max())


def trainable(spec: EncoderSpec) -> EncoderSpec:
    """The torch spec with the same features as `spec`: an fp32 ONNX spec is tuned through torch (its
    kept overlay is then exported to ONNX with the tuned weights, see maybe_finetune)."""
    return spec.torch_twin() or spec


def finetune(spec: EncoderSpec, texts: list[str], Y: np.ndarray, folds_val: np.ndarray | None = None,
             cfg: FinetuneConfig | None = None, progress: bool = True) -> dict[str, Any]:
    """Tune the top blocks on (texts, Y) with Y's NaNs masked out.

    Returns {"state": {param name: array} of the tuned blocks (names as in the full model),
    "features": the tuned features of `texts` (float32), "log": per-epoch losses, "seconds"}.
    """
    import torch

    from router.training.train import _masked_bce  # the head's loss: unknown labels weigh nothing

    cfg = cfg or FinetuneConfig()
    if len(texts) != len(Y):
        raise InputError(f"fine-tuning: {len(texts)} texts but {len(Y)} label rows")
    t0 = time.time()
    spec = trainable(spec)
    enc = torch_thread.call(Encoder, spec, "cpu") if spec.runtime == "torch" else None
    if enc is None:
        raise InputError(f"fine-tuning needs the torch runtime; the encoder spec says {spec.runtime!r}")
    if enc.spec.pooling != "mean" or list(enc._layer_idx) != [enc.n_layers]:
        raise InputError("fine-tuning supports mean pooling of the last layer only")
    drift = check_top(enc, cfg.layers)
    if drift > 1e-3:
        raise InputError(f"fine-tuning: the tuned-block path differs from the encoder's own forward by {drift:.2e}; "
                         "this transformers version builds attention masks differently")
    states = frozen_states(enc, texts, cfg.layers, cfg.batch_size, progress)
    t_states = time.time() - t0
    model = enc.model
    all_blocks = list(_blocks(model))
    first = enc.n_layers - cfg.layers
    top = _Top(model, all_blocks[first:], spec)
    for p in model.parameters():
        p.requires_grad_(False)
    params = [p for b in top.blocks for p in b.parameters()]
    for p in params:
        p.requires_grad_(True)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    head = torch.nn.Linear(model.config.hidden_size, Y.shape[1])
    opt = torch.optim.AdamW([{"params": params, "lr": cfg.lr},
                             {"params": head.parameters(), "lr": cfg.head_lr}], weight_decay=cfg.weight_decay)
    if folds_val is None:
        folds_val = rng.random(len(texts)) < cfg.val_fraction
    tr, va = np.flatnonzero(~folds_val), np.flatnonzero(folds_val)
    yt, mt = np.nan_to_num(Y).astype(np.float32), (~np.isnan(Y)).astype(np.float32)

    def batches(idx, shuffle):
        # length-bucketed batches: pad little, still shuffled between buckets
        idx = idx[np.argsort([states[i].shape[0] for i in idx], kind="stable")]
        chunks = [idx[i: i + cfg.batch_size] for i in range(0, len(idx), cfg.batch_size)]
        if shuffle:
            rng.shuffle(chunks)
        return chunks

    def loss_of(idx):
        h, m = _pad([states[i] for i in idx])
        return _masked_bce(head(top.pooled(h, m)), torch.from_numpy(yt[idx]), torch.from_numpy(mt[idx]))

    def val_loss():
        for b in top.blocks:
            b.eval()
        with torch.no_grad():
            tot, cnt = 0.0, 0
            for b in batches(va, False):
                tot += float(loss_of(b)) * len(b)
                cnt += len(b)
        return tot / max(cnt, 1)

    def snapshot():
        return {f"encoder.layer.{first + k}.{n}": v.detach().clone() for k, b in enumerate(top.blocks)
                for n, v in b.state_dict().items()}

    def train_loop():
        log = []
        # a warm-up epoch for the linear layer alone: random logits would push noise into the blocks
        for p in params:
            p.requires_grad_(False)
        for b in batches(tr, True):
            opt.zero_grad()
            loss_of(b).backward()
            opt.step()
        for p in params:
            p.requires_grad_(True)
        best_state, best_epoch = run_epochs(log, cfg.epochs, top.blocks, lambda: batches(tr, True), loss_of, opt,
                                            val_loss, snapshot, "fine-tune", progress, min_gain=1e-5)
        # restore the best epoch's blocks
        for k, b in enumerate(top.blocks):
            pre = f"encoder.layer.{first + k}."
            b.load_state_dict({n[len(pre):]: v for n, v in best_state.items() if n.startswith(pre)})
        for b in top.blocks:
            b.eval()
        with torch.no_grad():
            feats = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
            for b in batches(np.arange(len(texts)), False):
                h, m = _pad([states[i] for i in b])
                feats[b] = top.pooled(h, m).numpy()
        return log, best_state, best_epoch, feats

    log, best_state, best_epoch, feats = torch_thread.call(train_loop)
    return {"state": {k: v.float().numpy() for k, v in best_state.items()}, "features": feats, "log": log,
            "best_epoch": best_epoch, "layers": cfg.layers, "seconds": time.time() - t0,
            "frozen_seconds": t_states, "check_drift": drift}


OVERLAY_FILE = "encoder_overlay.safetensors"
DECIDE_HEADS = ["knn", "logistic"]  # fast families for the keep-or-drop decision on held-out rows


def held_out_aiq(X: np.ndarray, table, tr: np.ndarray, va: np.ndarray) -> float:
    """AIQ on rows `va` of the head the (fast) search picks on rows `tr`."""
    from router.model.heads import CalibratedHead
    from router.training import metrics
    from router.training.search import expected_costs, run_search

    t = table.subset(tr)
    res = run_search(X[tr], t.Y, t.cost, t.questions, t.tasks, heads=DECIDE_HEADS, progress=False, averages=False)
    head = CalibratedHead(res["head"], res["calibration"], res["calibration_params"])
    v = table.subset(va)
    return float(metrics.summarize(head.predict(X[va]), v.Y, v.cost, expected_costs(t.cost))["aiq"])


def maybe_finetune(spec: EncoderSpec, table, X: np.ndarray, out, layers: int, seed: int = 0,
                   progress: bool = True) -> tuple[EncoderSpec, np.ndarray, dict[str, Any]]:
    """`train --finetune-layers N`: tune on 80% of the training questions, keep the tuned blocks only
    if the head fitted on those rows scores a higher AIQ on the other 20% with tuned features than with
    frozen ones, by more than the search's tie band (AIQ_TIE): a tie keeps the frozen encoder, which
    routes through ONNX and needs no overlay. Returns the spec and features to fit the head on, and
    the record for router.json."""
    from dataclasses import replace
    from pathlib import Path

    from router.files import save_tensors
    from router.model.encoder import file_sha256, get_encoder
    from router.training.search import AIQ_TIE, cv_folds

    frozen_spec, spec = spec, trainable(spec)
    folds = cv_folds(table.questions, table.tasks, 5, seed)
    va, tr = np.flatnonzero(folds == 0), np.flatnonzero(folds != 0)
    sub = table.subset(tr)
    ft = finetune(spec, sub.questions, sub.Y, cfg=FinetuneConfig(layers=layers, seed=seed), progress=progress)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / OVERLAY_FILE
    save_tensors({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in ft["state"].items()}, path)
    # routed by the frozen spec's runtime: ONNX exports the tuned weights (one more ~1 min export)
    tuned = replace(frozen_spec, overlay=str(path.resolve()), overlay_sha256=file_sha256(path))
    Xt = np.zeros_like(X)
    Xt[tr] = ft["features"]
    Xt[va] = get_encoder(tuned).features([table.questions[i] for i in va], progress=progress)
    frozen_aiq, tuned_aiq = held_out_aiq(X, table, tr, va), held_out_aiq(Xt, table, tr, va)
    keep = tuned_aiq > frozen_aiq + AIQ_TIE
    record = {"layers": layers, "epochs": ft["log"], "best_epoch": ft["best_epoch"], "seconds": round(ft["seconds"], 1),
              "decision_rows": int(len(va)), "decision_heads": DECIDE_HEADS,
              "held_out_aiq": {"frozen": round(frozen_aiq, 5), "tuned": round(tuned_aiq, 5)},
              "keep_margin": AIQ_TIE, "kept": bool(keep)}
    if progress:
        print(f"fine-tune: held-out AIQ frozen {frozen_aiq:.4f}, tuned {tuned_aiq:.4f} (kept only above "
              f"frozen + {AIQ_TIE}) -> "
              f"{'keeping the tuned blocks' if keep else 'dropping them (the frozen encoder stays)'}", flush=True)
    if not keep:
        path.unlink()
        return frozen_spec, X, record
    return tuned, Xt, record

