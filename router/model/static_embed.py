"""Static token embeddings distilled from the encoder with model2vec (spec runtime "static").

No transformer runs at routing time: a query's features are the mean of its tokens' distilled
vectors (a table lookup), L2-normalized when the spec says so. The table is distilled once per
(source, dims) by `model2vec.distill` (every vocabulary token read by the encoder, PCA, SIF
weighting) and cached under models_dir(); routing then needs only `tokenizers`, numpy and
safetensors. Distilling needs `model2vec[distill]`, torch and transformers (requirements-fast.txt).

Token handling follows model2vec's own StaticModel.encode: the distilled tokenizer without special
tokens, unknown tokens dropped. Truncation to `max_tokens` keeps the end, as everywhere else.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import numpy as np

from router.errors import CheckpointError
from router.model.encoder import EncoderSpec
from router.model.fast_runtimes import FastEncoder, source_folder

DISTILL_VERSION = 1
PCA_DIMS = 256


def artifact_dir(spec: EncoderSpec) -> Path:
    from router.model.e5_convert import models_dir

    src = re.sub(r"[^A-Za-z0-9._-]+", "_", spec.source.strip("/"))[-60:]
    return models_dir() / "static" / f"{src}-pca{PCA_DIMS}-v{DISTILL_VERSION}"


def ensure_distilled(spec: EncoderSpec, progress: bool = False) -> Path:
    """The distilled model folder, built on first use (minutes for e5's 250k-token vocabulary)."""
    out = artifact_dir(spec)
    if (out / "model.safetensors").exists():
        return out
    folder = source_folder(spec)
    try:
        from model2vec.distill import distill
    except ImportError as exc:
        raise CheckpointError(f"runtime 'static' distills {spec.source!r} once with model2vec: "
                              f"pip install -r requirements-fast.txt ({exc})") from None
    from router.model import torch_thread

    if progress:
        print(f"distilling static embeddings from {spec.source} (once) ...", flush=True)
    model = torch_thread.call(lambda: distill(model_name=str(folder), pca_dims=PCA_DIMS, device="cpu"))
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    model.save_pretrained(str(tmp))
    for f in tmp.iterdir():
        f.chmod(0o644)  # model2vec writes its weights 0600: a container's run-time user must read them
    (tmp / "source.json").write_text(json.dumps({"source": spec.source, "folder": str(folder),
                                                 "pca_dims": PCA_DIMS, "distill_version": DISTILL_VERSION}))
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():  # another process finished first
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.rename(out)
    return out


_DTYPES = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32,
           "BF16": None}


def mmap_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Read-only memory maps of a safetensors file's tensors (the format: u64 header size, JSON header,
    raw little-endian data). Loading is instant and only the rows a query touches are paged in, which
    is what makes a cold route cheap with a 250k-token table."""
    try:
        with open(path, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(n))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: unreadable safetensors file ({exc})") from None
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(info.get("dtype"))
        if dtype is None:
            raise CheckpointError(f"{path}: tensor {name!r} has dtype {info.get('dtype')!r}, not one this reader maps")
        start, end = info["data_offsets"]
        shape = tuple(info["shape"])
        count = int(np.prod(shape)) if shape else 1
        if end - start != count * np.dtype(dtype).itemsize:
            raise CheckpointError(f"{path}: tensor {name!r} size does not match its shape {shape}")
        out[name] = np.memmap(path, dtype=dtype, mode="r", offset=8 + n + start, shape=shape)
    return out


class StaticEncoder(FastEncoder):
    specials = False  # model2vec encodes without [CLS]/[SEP]

    def __init__(self, spec: EncoderSpec, device: str | None = None):
        t0 = time.perf_counter()
        if spec.quantize is not None:
            raise CheckpointError("runtime 'static' has nothing to quantize: leave quantize out of the spec")
        if len(spec.layers) != 1 or spec.pooling != "mean":
            raise CheckpointError("runtime 'static' means the distilled token vectors: use layers [-1], pooling mean")
        folder = ensure_distilled(spec)
        self._init_tokenizer(spec, folder)
        tensors = mmap_safetensors(folder / "model.safetensors")
        if "embeddings" not in tensors:
            raise CheckpointError(f"{folder}/model.safetensors: no 'embeddings' tensor (not a model2vec model)")
        self.table = tensors["embeddings"]  # kept as stored (float16): rows are cast per query
        self.weights = tensors.get("weights")
        mapping = tensors.get("mapping")
        self.mapping = None if mapping is None else mapping.astype(np.int64)
        self._dim = int(self.table.shape[1])
        self._unk = self._unk_id(self._tok)
        self.n_layers = 0
        self.load_seconds = time.perf_counter() - t0

    @staticmethod
    def _unk_id(tok) -> int:
        """The id of the tokenizer model's unk_token (-1: none), dropped from queries. Asked of the
        loaded tokenizer: reading it from tokenizer.json meant parsing a 250k-token vocabulary again. A
        Unigram model has no unk_token, only an unk_id, which is not used here (in the distilled e5
        table id 3 is "."): nothing is dropped there, as before."""
        unk = tok.token_to_id(getattr(tok.model, "unk_token", None) or "[UNK]")
        return -1 if unk is None else int(unk)

    def _forward(self, batch_ids: list[list[int]]) -> np.ndarray:
        out = np.zeros((len(batch_ids), self._dim), dtype=np.float32)
        for i, row in enumerate(batch_ids):
            ids = np.asarray([t for t in row if t != self._unk], dtype=np.int64)
            if ids.size == 0:
                continue
            rows = self.table[ids if self.mapping is None else self.mapping[ids]].astype(np.float32)
            if self.weights is not None:
                rows *= self.weights[ids, None]
            out[i] = rows.mean(axis=0)
        if self.spec.normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out
