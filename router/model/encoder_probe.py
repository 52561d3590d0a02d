"""What ties a checkpoint's head to the encoder it was trained on.

A head reads features, not text: an encoder of the same width but other weights (a new revision
of a Hugging Face id, a different folder at the same path, a lost overlay, an export gone wrong)
feeds it vectors it was never trained on, and every P is wrong without any error. `train` records
the features of three fixed probe texts in router.json (`encoder_probe`); loading a router encodes
them again and refuses an encoder whose features point elsewhere.

Why a cosine bound and not equality: the same weights give slightly different features with int8
activations (the 4-block student, int8 against fp32: 0.993) or on CUDA in fp16, while another model
is far off (MiniLM against e5-small, both 384 wide: 0.03; the distilled student under e5's head: 0.87). `ROUTER_ENCODER_CHECK=off` skips the check (for
someone who knows the encoder changed and measured the router on it).
"""

from __future__ import annotations

import base64
import os
from typing import Any

import numpy as np

from router.errors import CheckpointError

ENV = "ROUTER_ENCODER_CHECK"
MIN_COSINE = 0.98
# English prose, Japanese, code: three regions of the feature space a routing head relies on.
PROBE_TEXTS = (
    "Explain why the sky is blue in two sentences.",
    "日本の首都はどこですか？",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)",
)


def _features(encoder, texts: list[str]) -> np.ndarray:
    # the calls routing makes (router.model.embed_cache), so any encoder a router accepts can be probed
    ids, _ = encoder.tokenize(texts)
    return np.asarray(encoder.encode_ids(ids), dtype=np.float64)


def record(encoder) -> dict[str, Any]:
    """The `encoder_probe` entry of router.json for a checkpoint trained on `encoder`'s features."""
    X = _features(encoder, list(PROBE_TEXTS)).astype("<f4")
    # one line per text in router.json: float32 little-endian, base64
    return {"texts": list(PROBE_TEXTS), "features_f32_b64": [base64.b64encode(row.tobytes()).decode() for row in X],
            "min_cosine": MIN_COSINE}


def _parsed(probe: Any, where: str) -> tuple[list[str], np.ndarray, float]:
    bad = CheckpointError(f"{where}: field 'encoder_probe' must be an object with 'texts' (strings) and "
                          f"'features_f32_b64' (one base64 float32 vector per text, all of one width), "
                          f"got {str(probe)[:80]!r}")
    if not isinstance(probe, dict):
        raise bad
    texts, feats = probe.get("texts"), probe.get("features_f32_b64")
    if not (isinstance(texts, list) and texts and all(isinstance(t, str) for t in texts)
            and isinstance(feats, list) and len(feats) == len(texts) and all(isinstance(f, str) for f in feats)):
        raise bad
    try:
        X = np.stack([np.frombuffer(base64.b64decode(f, validate=True), dtype="<f4") for f in feats]).astype(np.float64)
    except ValueError:  # bad base64, a width not a multiple of 4 bytes, or rows of different widths
        raise bad from None
    bound = probe.get("min_cosine", MIN_COSINE)
    if X.ndim != 2 or not np.isfinite(X).all() or not isinstance(bound, (int, float)) or not -1 <= bound <= 1:
        raise bad
    return texts, X, float(bound)


def cosines(recorded: np.ndarray, now: np.ndarray) -> np.ndarray:
    den = np.linalg.norm(recorded, axis=1) * np.linalg.norm(now, axis=1)
    return (recorded * now).sum(1) / np.where(den > 0, den, 1.0)


def check(checkpoint, encoder) -> float | None:
    """Refuse an encoder whose features are not the ones `checkpoint` was trained on. Returns the
    lowest cosine (None: nothing to check). Checked once per (encoder, checkpoint) in a process."""
    probe = checkpoint.meta.get("encoder_probe")
    where = f"{checkpoint.path}/router.json"
    if probe is None or os.environ.get(ENV, "").strip().lower() in ("off", "0", "false", "no"):
        return None
    texts, recorded, bound = _parsed(probe, where)
    seen = encoder.__dict__.setdefault("_probe_checked", {})  # memo on the encoder: routers share it
    key = checkpoint.fingerprint
    if key in seen:
        return seen[key]
    now = _features(encoder, texts)
    if now.shape != recorded.shape:
        raise CheckpointError(f"{where}: the encoder {encoder.spec.source!r} gives {now.shape[1]}-wide features, "
                              f"but this checkpoint was trained on {recorded.shape[1]}-wide ones")
    low = float(cosines(recorded, now).min())
    if low < bound:
        raise CheckpointError(
            f"{where}: the encoder {encoder.spec.source!r} does not compute the features this checkpoint's head "
            f"was trained on (cosine {low:.3f} with the features recorded at training, expected >= {bound:g}): "
            f"another model, revision or overlay under the same name? Route with the encoder it was trained "
            f"on, or retrain the checkpoint on this one ({ENV}=off skips this check)")
    seen[key] = low
    return low
