"""A shallower encoder distilled from the bundled one: its first blocks rebuilt to give, in L blocks,
the features the full encoder gives in twelve (issue 16 (c)).

The student is the teacher's own embeddings (kept frozen, so its 250k-token multilingual vocabulary
and the rows untouched by the training text stay the teacher's) followed by L of the teacher's blocks,
evenly spaced from the first to the last, trained to reproduce the teacher's pooled features (cosine
loss) on unlabeled text. It needs no labels: any text the router will read is training data, and the
teacher's features are the ones `train` already cached.

The result is an ordinary encoder spec: the same source read at layer L, with the L trained blocks as
an overlay (router/model/encoder.py apply_overlay), so the ONNX export trims the graph to L blocks and
the student routes, caches and fine-tunes like any other spec.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from router.errors import InputError
from router.model import torch_thread
from router.model.encoder import Encoder, EncoderSpec


@dataclass
class DistillConfig:
    layers: int = 4  # blocks the student keeps
    epochs: int = 2
    lr: float = 1e-4
    batch_size: int = 32
    val_fraction: float = 0.05  # texts held out to pick the best epoch
    seed: int = 0


def init_blocks(n_teacher: int, layers: int) -> list[int]:
    """Which teacher blocks initialise the student: evenly spaced, first and last included."""
    if not 1 <= layers < n_teacher:
        raise InputError(f"a distilled student needs between 1 and {n_teacher - 1} blocks, got {layers}")
    if layers == 1:
        return [n_teacher - 1]
    return [round(i * (n_teacher - 1) / (layers - 1)) for i in range(layers)]


def student_spec(teacher: EncoderSpec, overlay: str | Path, sha256: str, layers: int) -> EncoderSpec:
    return replace(teacher, layers=(layers,), overlay=str(overlay), overlay_sha256=sha256)


def distill(teacher: EncoderSpec, texts: list[str], targets: np.ndarray, cfg: DistillConfig | None = None,
            progress: bool = True) -> dict[str, Any]:
    """Train the student on `texts` to reproduce `targets` (the teacher's features of those texts).

    Returns {"state": the student's blocks named as layers 0..L-1 of the model, "log", "best_epoch",
    "init_blocks", "val_rows" (the texts held out to pick the epoch), "seconds"}.
    """
    import torch

    from router.training.finetune import _blocks, _Top, run_epochs, trainable

    cfg = cfg or DistillConfig()
    if len(texts) != len(targets):
        raise InputError(f"distillation: {len(texts)} texts but {len(targets)} target rows")
    if len(texts) < 20:
        raise InputError(f"distillation needs at least 20 texts, got {len(texts)}")
    t0 = time.time()
    spec = trainable(teacher)
    if spec.runtime != "torch":
        raise InputError(f"distillation needs an encoder with a torch twin; the spec says {spec.runtime!r}")
    if spec.overlay:
        raise InputError("distillation starts from the plain encoder, not from one with an overlay")
    enc = torch_thread.call(Encoder, spec, "cpu")
    if enc.spec.pooling != "mean" or list(enc._layer_idx) != [enc.n_layers]:
        raise InputError("distillation supports a teacher read with mean pooling at its last layer")
    model = enc.model
    picks = init_blocks(enc.n_layers, cfg.layers)
    blocks = [copy.deepcopy(_blocks(model)[i]) for i in picks]
    top = _Top(model, blocks, enc.spec)
    for p in model.parameters():
        p.requires_grad_(False)
    params = [p for b in blocks for p in b.parameters()]
    for p in params:
        p.requires_grad_(True)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
    ids, _ = enc.tokenize(texts)
    target = torch.from_numpy(np.asarray(targets, dtype=np.float32))
    target = torch.nn.functional.normalize(target, dim=-1)
    va_mask = rng.random(len(texts)) < cfg.val_fraction
    tr, va = np.flatnonzero(~va_mask), np.flatnonzero(va_mask)

    def batches(idx, shuffle):
        idx = idx[np.argsort([len(ids[i]) for i in idx], kind="stable")]
        chunks = [idx[i: i + cfg.batch_size] for i in range(0, len(idx), cfg.batch_size)]
        if shuffle:
            rng.shuffle(chunks)
        return chunks

    def loss_of(idx):
        t, m = enc.padded([ids[i] for i in idx])
        with torch.no_grad():
            h = model.embeddings(input_ids=t)
        v = torch.nn.functional.normalize(top.pooled(h, m), dim=-1)
        return (1 - (v * target[idx]).sum(-1)).mean()

    def val_loss():
        for b in blocks:
            b.eval()
        with torch.no_grad():
            tot = sum(float(loss_of(b)) * len(b) for b in batches(va, False))
        return tot / max(len(va), 1)

    def snapshot():
        return {f"encoder.layer.{k}.{n}": v.detach().clone() for k, b in enumerate(blocks)
                for n, v in b.state_dict().items()}

    def train_loop():
        log: list = []  # losses are 1 - cos to the teacher's features
        best_state, best_epoch = run_epochs(log, cfg.epochs, blocks, lambda: batches(tr, True), loss_of, opt,
                                            val_loss, snapshot, "distil", progress, min_gain=1e-6)
        return log, best_state, best_epoch

    log, state, best_epoch = torch_thread.call(train_loop)
    return {"state": {k: v.float().numpy() for k, v in state.items()}, "log": log, "best_epoch": best_epoch,
            "init_blocks": picks, "layers": cfg.layers, "val_rows": va.tolist(), "n_texts": len(texts),
            "seconds": time.time() - t0}


def save_student(teacher: EncoderSpec, result: dict[str, Any], out: str | Path) -> EncoderSpec:
    """Write the student's blocks as `out`/student_overlay.safetensors (float16, + a JSON record); its spec."""
    import json

    from router.files import atomic_write, save_tensors
    from router.model.encoder import file_sha256

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "student_overlay.safetensors"
    # float16 halves what a checkpoint carries (14 MB for 4 blocks); the features are computed from
    # this file, so training and routing see the same rounded weights
    save_tensors({k: np.ascontiguousarray(v, dtype=np.float16) for k, v in result["state"].items()}, path)
    spec = student_spec(teacher, path.resolve(), file_sha256(path), result["layers"])
    # named relative to this file, so the folder can move (train --encoder-spec resolves it)
    rec = {"teacher": teacher.to_json(), "student": {**spec.to_json(), "overlay": path.name},
           "init_blocks": result["init_blocks"], "n_texts": result.get("n_texts"),
           "epochs": result["log"], "best_epoch": result["best_epoch"], "seconds": round(result["seconds"], 1)}
    with atomic_write(out / "student.json", "w") as fh:
        fh.write(json.dumps(rec, indent=2))
    return spec
