"""Encoders that route without torch: ONNX Runtime (onnx_runtime.py) and static embeddings
(static_embed.py), chosen by the checkpoint's `encoder.runtime`.

Both tokenize with the `tokenizers` library directly (transformers takes ~2 s to import, more than
a whole route should cost from a cold CLI) and follow the torch Encoder's rules exactly: the spec's
prefix, the tokenizer's own special tokens around the content, truncation of the ids to
`max_tokens` on the spec's side, and the untruncated count for the cost estimate. They subclass
Encoder only to share `features()` and `count_tokens()`; nothing of Encoder's torch path runs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from router.errors import CheckpointError
from router.model import window
from router.model.encoder import BUNDLED_SOURCES, Encoder, EncoderSpec, rows_alone


def source_folder(spec: EncoderSpec) -> Path:
    """The transformers folder of the spec's source (bundled short name or local folder)."""
    if spec.source in BUNDLED_SOURCES:
        path, gguf = BUNDLED_SOURCES[spec.source]()
        if gguf:
            raise CheckpointError(f"encoder {spec.source!r} is a GGUF decoder: runtime {spec.runtime!r} reads "
                                  "bidirectional encoders only (use runtime 'torch')")
        return Path(path)
    folder = Path(spec.source)
    if not (folder / "config.json").exists():
        raise CheckpointError(f"runtime {spec.runtime!r} needs a bundled encoder name ({', '.join(BUNDLED_SOURCES)}) "
                              f"or a local transformers folder; {spec.source!r} is neither")
    return folder


def load_tokenizer(path: Path):
    from tokenizers import Tokenizer

    file = path / "tokenizer.json"
    if not file.exists():
        raise CheckpointError(f"{path}: tokenizer.json is missing (a fast tokenizer is needed)")
    tok = Tokenizer.from_file(str(file))
    tok.no_truncation()  # truncation is ours (on the ids, keeping the end), as in Encoder._ids
    tok.no_padding()
    return tok


def pad_id(tok, path: Path) -> int:
    """The tokenizer's pad token id (tokenizer_config.json names it); 0 if it names none."""
    try:
        name = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8")).get("pad_token")
    except (OSError, ValueError):
        name = None
    if isinstance(name, dict):
        name = name.get("content")
    for cand in (name, "[PAD]", "<pad>"):
        if cand and tok.token_to_id(cand) is not None:
            return int(tok.token_to_id(cand))
    return 0


class FastEncoder(Encoder):
    """Tokenization shared by the torch-free runtimes; subclasses set `_dim` and `_forward`."""

    specials = True  # put the tokenizer's [CLS]/[SEP] (or <s>/</s>) around the content

    def _init_tokenizer(self, spec: EncoderSpec, folder: Path) -> None:
        if spec.kind != "encoder":
            raise CheckpointError(f"runtime {spec.runtime!r} reads bidirectional encoders (kind 'encoder'), "
                                  f"not kind {spec.kind!r}")
        self.spec = spec
        self.device = "cpu"
        self._tok = load_tokenizer(folder)
        self._pad = pad_id(self._tok, folder)
        self._lock = threading.Lock()
        self._prefix, self._suffix = self._special_wrap() if self.specials else ([], [])

    def _special_wrap(self) -> tuple[list[int], list[int]]:
        plain = self._tok.encode("hello", add_special_tokens=False).ids
        full = self._tok.encode("hello", add_special_tokens=True).ids
        for k in range(len(full) - len(plain) + 1):
            if full[k: k + len(plain)] == plain:
                return full[:k], full[k + len(plain):]
        return [], []

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def loaded(self) -> bool:
        # an ONNX Runtime session, or the static table's memory map
        return getattr(self, "session", None) is not None or getattr(self, "table", None) is not None

    def _encode(self, texts: list[str]) -> list[list[int]]:
        rendered = [self.spec.prefix + t for t in texts]
        # encode_batch runs in Rust threads without the GIL; one text goes through encode (less overhead).
        if len(rendered) == 1:
            return [self._tok.encode(rendered[0], add_special_tokens=False).ids]
        return [e.ids for e in self._tok.encode_batch(rendered, add_special_tokens=False)]

    def tokenize(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        """The torch encoder's rules (encoder.py `_ids`): characters cut to what the window needs
        first (window.py), widened in the rare case that is too short; same ids, same counts."""
        budget = self.spec.max_tokens - len(self._prefix) - len(self._suffix)
        side = self.spec.truncation_side
        n_chars = window.window_chars(budget)
        parts = [window.cut(t, n_chars, side) for t in texts]
        all_ids = self._encode(parts)
        out, counts = [], []
        for text, part, ids in zip(texts, parts, all_ids):
            chars = n_chars
            while len(part) < len(text) and len(ids) <= budget:
                chars *= 4
                part = window.cut(text, chars, side)
                ids = self._encode([part])[0]
            counts.append(window.estimate_total(len(ids), len(part), len(text)))
            if len(ids) > budget:
                ids = ids[-budget:] if side == "left" else ids[:budget]
            out.append(self._prefix + ids + self._suffix)
        return out, counts

    def count_tokens(self, text: str) -> int:
        """Exact count of the whole text (a cost estimate reads all of it)."""
        return len(self._encode([text])[0])

    def _batch_arrays(self, batch_ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        width = max(len(x) for x in batch_ids)
        ids = np.full((len(batch_ids), width), self._pad, dtype=np.int64)
        mask = np.zeros((len(batch_ids), width), dtype=np.int64)
        for i, row in enumerate(batch_ids):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return ids, mask

    def encode_ids(self, batch_ids: list[list[int]]) -> np.ndarray:
        if rows_alone(self.spec, self.device) and len(batch_ids) > 1:
            return np.concatenate([self._forward([r]) for r in batch_ids])
        return self._forward(batch_ids)


def build(spec: EncoderSpec, device: str = "cpu") -> Encoder:
    """get_encoder's hook for runtime 'onnx' and 'static'."""
    if device != "cpu":
        raise CheckpointError(f"runtime {spec.runtime!r} runs on the CPU; for {device} use runtime 'torch' "
                              "(fp16 on CUDA)")
    if spec.runtime == "onnx":
        from router.model.onnx_runtime import OnnxEncoder

        return OnnxEncoder(spec)
    if spec.runtime == "static":
        from router.model.static_embed import StaticEncoder

        return StaticEncoder(spec)
    raise CheckpointError(f"unknown encoder runtime {spec.runtime!r}")
