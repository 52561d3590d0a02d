"""The scoring head (standardize -> PCA -> MLP ensemble -> P(correct) per slot) and checkpoint I/O.

Inference is plain numpy: the head costs microseconds next to the encoder. A checkpoint is a
directory with router.json (metadata) and weights.safetensors (tensors); loading never unpickles.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from router.errors import CheckpointError
from router.files import atomic_write_text, save_tensors
from router.model.encoder import EncoderSpec

FORMAT = "prefill-router-checkpoint"
FORMAT_VERSION = 2  # 2: router.json "head.spec" names the head family tree (router/model/heads.py)
READABLE_VERSIONS = (1, 2)  # 1: the MLP ensemble only, tensors at the top level
META_FILE = "router.json"
WEIGHTS_FILE = "weights.safetensors"


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


@dataclass
class Head:
    kind = "mlp"
    scaler_mean: np.ndarray  # [d]
    scaler_scale: np.ndarray  # [d]
    pca: np.ndarray  # [d, k]
    layers: list[tuple[np.ndarray, np.ndarray]]  # each (W [E, in, out], b [E, out])

    @property
    def in_dim(self) -> int:
        return int(self.scaler_mean.shape[0])

    @property
    def n_slots(self) -> int:
        return int(self.layers[-1][0].shape[-1])

    @property
    def members(self) -> int:
        return int(self.layers[0][0].shape[0])

    def transform(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.scaler_mean) / self.scaler_scale) @ self.pca

    def logits(self, X: np.ndarray) -> np.ndarray:
        """[E, n, slots] logits of every ensemble member."""
        h = np.broadcast_to(self.transform(np.asarray(X, dtype=np.float32)), (self.members,) + (X.shape[0], self.pca.shape[1]))
        for i, (W, b) in enumerate(self.layers):
            h = np.einsum("eni,eio->eno", h, W) + b[:, None, :]
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return h

    def predict(self, X: np.ndarray) -> np.ndarray:
        """P(correct) [n, slots]: the mean of the members' probabilities."""
        X = np.atleast_2d(X)
        if X.shape[1] != self.in_dim:
            raise CheckpointError(f"feature size {X.shape[1]} does not match the head's input size {self.in_dim}: "
                                  "the checkpoint was trained with another encoder spec")
        return _sigmoid(self.logits(X)).mean(axis=0)

    def tensors(self) -> dict[str, np.ndarray]:
        t = {"scaler.mean": self.scaler_mean, "scaler.scale": self.scaler_scale, "pca.components": self.pca}
        for i, (W, b) in enumerate(self.layers):
            t[f"mlp.{i}.weight"] = W
            t[f"mlp.{i}.bias"] = b
        return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in t.items()}

    @classmethod
    def from_tensors(cls, t: dict[str, np.ndarray], where: str) -> Head:
        try:
            n_layers = len([k for k in t if k.startswith("mlp.") and k.endswith(".weight")])
            layers = [(t[f"mlp.{i}.weight"], t[f"mlp.{i}.bias"]) for i in range(n_layers)]
            head = cls(t["scaler.mean"], t["scaler.scale"], t["pca.components"], layers)
        except KeyError as exc:
            raise CheckpointError(f"{where}: missing tensor {exc.args[0]!r}") from None
        if not layers:
            raise CheckpointError(f"{where}: no MLP layers (mlp.0.weight ...)")
        d, k = head.pca.shape
        if head.scaler_mean.shape != (d,) or head.scaler_scale.shape != (d,):
            raise CheckpointError(f"{where}: scaler size does not match pca.components {head.pca.shape}")
        prev = k
        for i, (W, b) in enumerate(layers):
            if W.ndim != 3 or W.shape[1] != prev or b.shape != (W.shape[0], W.shape[2]):
                raise CheckpointError(f"{where}: mlp.{i} has shape {W.shape}/{b.shape}, expected [E, {prev}, out]")
            prev = W.shape[2]
        return head


@dataclass
class Checkpoint:
    path: str
    meta: dict[str, Any]
    head: Head
    encoder_spec: EncoderSpec = field(init=False)

    def __post_init__(self):
        spec = EncoderSpec.from_json(self.meta["encoder"])
        if spec.overlay and not Path(spec.overlay).is_absolute():
            # the overlay travels inside the checkpoint folder: read it from there, wherever that is
            spec = dataclasses.replace(spec, overlay=str(Path(self.path) / spec.overlay))
        self.encoder_spec = spec

    @property
    def slots(self) -> list[str]:
        return list(self.meta["slots"])

    def output_tokens(self, slot: str) -> float:
        stats = self.meta.get("output_tokens", {}).get(slot) or {}
        return float(stats.get("mean", self.meta.get("default_output_tokens", 256)))

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of router.json + weights as loaded (router/model/fingerprint.py); audit lines carry it."""
        from router.model.fingerprint import checkpoint_fingerprint

        return checkpoint_fingerprint(self.meta, self.head.tensors())

    @property
    def train_hashes(self) -> set[str]:
        return set(self.meta.get("train_question_hashes", []))


def save_checkpoint(path: str | Path, head: Head, meta: dict[str, Any]) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta}
    if len(meta["slots"]) != head.n_slots:
        raise CheckpointError(f"{path}: {len(meta['slots'])} slot names but the head outputs {head.n_slots}")
    from router.model.heads import MLPHead

    tree = MLPHead(head) if isinstance(head, Head) else head
    meta["head"] = {**meta.get("head", {}), "input_dim": head.in_dim, "n_slots": head.n_slots, "spec": tree.spec()}
    if isinstance(head, Head):
        meta["head"].update({"pca_dim": int(head.pca.shape[1]), "members": head.members, "layers": len(head.layers)})
    # Each file is written whole, but not the two together: router.json names the weights it was
    # written with, so that a save interrupted between them reads as an error, not as a mixed checkpoint.
    meta["head"]["weights_sha256"] = save_tensors(
        {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tree.tensors().items()}, path / WEIGHTS_FILE)
    atomic_write_text(path / META_FILE, json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return path


def check_slot_tables(meta: dict, meta_path: Path) -> None:
    """The per-slot tables other commands read (`output_tokens` for expected costs, `prior_accuracy`
    for --extend): an edited or damaged value is an error naming the field, not a TypeError later."""
    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v

    out = meta.get("output_tokens")
    if out is not None and not (isinstance(out, dict) and all(  # {} for a slot whose data had no lengths
            v is None or (isinstance(v, dict) and ("mean" not in v or number(v["mean"]))) for v in out.values())):
        raise CheckpointError(f"{meta_path}: field 'output_tokens' must map each slot to an object whose 'mean' "
                              f"is a number, got {out!r:.80}")
    prior = meta.get("prior_accuracy")
    if prior is not None and not (isinstance(prior, dict) and all(
            v is None or (number(v) and 0 <= v <= 1) for v in prior.values())):
        raise CheckpointError(f"{meta_path}: field 'prior_accuracy' must map each slot to a number in [0, 1], "
                              f"got {prior!r:.80}")
    if "default_output_tokens" in meta and not (number(meta["default_output_tokens"])
                                                 and meta["default_output_tokens"] >= 0):
        raise CheckpointError(f"{meta_path}: field 'default_output_tokens' must be a number >= 0, "
                              f"got {meta['default_output_tokens']!r:.40}")


def load_checkpoint(path: str | Path) -> Checkpoint:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    path = Path(path)
    meta_path, weights_path = path / META_FILE, path / WEIGHTS_FILE
    for p in (meta_path, weights_path):
        if not p.exists():
            raise CheckpointError(f"{path}: not a router checkpoint: {p.name} is missing")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{meta_path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path}: field 'format' must be {FORMAT!r}")
    if meta.get("format_version") not in READABLE_VERSIONS:
        raise CheckpointError(f"{meta_path}: format_version {meta.get('format_version')!r} is not supported "
                              f"(this router reads versions {', '.join(map(str, READABLE_VERSIONS))})")
    for key in ("encoder", "slots"):
        if key not in meta:
            raise CheckpointError(f"{meta_path}: missing field {key!r}")
    slots = meta["slots"]
    if not isinstance(slots, list) or not slots or not all(isinstance(s, str) and s.strip() for s in slots):
        raise CheckpointError(f"{meta_path}: field 'slots' must be a non-empty list of model names, got {slots!r:.80}")
    if len(set(slots)) != len(slots):
        raise CheckpointError(f"{meta_path}: field 'slots' names a model twice")
    check_slot_tables(meta, meta_path)
    try:
        data = weights_path.read_bytes()  # read once: parsed and, where router.json names it, hashed
        tensors = load(data)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights_path}: unreadable safetensors file ({exc})") from None
    head_meta = meta.get("head")
    want = head_meta.get("weights_sha256") if isinstance(head_meta, dict) else None
    if want:  # checkpoints saved before session 10 do not carry it
        import hashlib

        got = hashlib.sha256(data).hexdigest()
        if got != want:
            raise CheckpointError(f"{weights_path}: not the weights {META_FILE} was written with (sha256 {got[:12]}, "
                                  f"router.json says {str(want)[:12]}): a save was interrupted or one file was "
                                  "replaced; retrain, or restore both files together")
    if meta["format_version"] >= 2 and not (isinstance(head_meta, dict) and isinstance(head_meta.get("spec"), dict)):
        raise CheckpointError(f"{meta_path}: format_version 2 needs field 'head' with a 'spec' object (the head "
                              f"family tree), got {head_meta!r:.80}")
    spec = head_meta["spec"] if meta["format_version"] >= 2 else None
    if spec is None:
        head = Head.from_tensors(tensors, str(weights_path))
    else:
        from router.model.heads import load_head

        try:
            head = load_head(spec, tensors)
        except CheckpointError as exc:
            # the spec (router.json) and the tensors (weights.safetensors) are read together: name both
            raise CheckpointError(f"{path}: the head in {META_FILE} ('head.spec') and {WEIGHTS_FILE} do not "
                                  f"load together: {exc}") from None
    if head.n_slots != len(meta["slots"]):
        raise CheckpointError(f"{meta_path}: lists {len(meta['slots'])} slots but the weights score {head.n_slots}")
    try:
        return Checkpoint(str(path), meta, head)  # parses the encoder spec
    except CheckpointError as exc:
        raise CheckpointError(f"{meta_path}: field 'encoder': {exc}") from None
