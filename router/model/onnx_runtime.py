"""The encoder exported to ONNX and run with ONNX Runtime (spec runtime "onnx").

The exported graph is the whole feature path: transformer (trimmed to the layer read), masked mean
or CLS pooling and the optional L2 normalization, so one `session.run` gives the features. Exported
once per (source, layer, pooling, normalize, overlay) from the same weights the torch encoder loads, then
optimized by ONNX Runtime (its transformer fusions: attention, GELU and layer norms) and, for `quantize: int8`,
dynamically quantized (int8 weights, activations quantized per call), all cached under models_dir().
The weights are stored next to the graph as ONNX external data (`model.onnx` + `model.onnx.data`):
ONNX Runtime then memory-maps them instead of parsing a 450 MB protobuf and copying every tensor,
so loading takes a fraction of the time and the 250k-row token table stays on disk except for the
rows queries touch (peak RSS ~160 MB instead of ~890 MB for e5, measured).
fp32 gives the torch encoder's features to ~1e-6; int8 moves them a little, so int8 checkpoints
are trained on int8 features. Needs `onnxruntime` (requirements.txt: the bundled checkpoint routes
with it); exporting also needs torch, transformers, onnx and onnxscript, which routing does not import.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np

from router.errors import CheckpointError
from router.model.encoder import EncoderSpec
from router.model.fast_runtimes import FastEncoder, source_folder

# bump when the exported graph or its file layout changes, so caches rebuild (2: external data; 3: transformer fusions)
EXPORT_VERSION = 3


def _slug(spec: EncoderSpec) -> str:
    src = re.sub(r"[^A-Za-z0-9._-]+", "_", spec.source.strip("/"))[-60:]
    layer = "-".join(str(i) for i in spec.layers)
    # tuned weights get their own export, named by content: the same overlay copied elsewhere shares it
    tuned = f"-ov{spec.overlay_sha256[:16]}" if spec.overlay else ""
    return f"{src}-L{layer}-{spec.pooling}{'-norm' if spec.normalize else ''}{tuned}-v{EXPORT_VERSION}"


def artifact_dir(spec: EncoderSpec) -> Path:
    from router.model.e5_convert import models_dir

    return models_dir() / "onnx" / _slug(spec)


def prune_older_exports(spec: EncoderSpec) -> list[Path]:
    """Remove this graph's exports from older EXPORT_VERSIONs (~450 MB each for e5): nothing reads
    them once the current version is built. Other graphs and newer versions are left alone."""
    here = artifact_dir(spec)
    stem = here.name[: -len(f"-v{EXPORT_VERSION}")]
    gone = []
    for d in here.parent.glob(f"{glob.escape(stem)}-v*"):
        v = d.name[len(stem) + 2:]
        if d.is_dir() and v.isdigit() and int(v) < EXPORT_VERSION:
            shutil.rmtree(d, ignore_errors=True)
            gone.append(d)
    return gone


def _check(spec: EncoderSpec) -> None:
    if len(spec.layers) != 1:
        raise CheckpointError("runtime 'onnx' reads one layer; this spec concatenates "
                              f"{len(spec.layers)} (use runtime 'torch')")
    if spec.pooling not in ("mean", "cls"):
        raise CheckpointError(f"runtime 'onnx' pools with mean or cls, not {spec.pooling!r}")


def _export(spec: EncoderSpec, folder: Path, out: Path) -> None:
    """Torch -> ONNX (fp32), from the folder the torch Encoder loads, trimmed the same way."""
    import torch
    import transformers
    from transformers import AutoModel

    from router.model.encoder import Encoder, _find_layer_list, apply_overlay

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    model = AutoModel.from_pretrained(str(folder), attn_implementation="eager").eval()
    if spec.overlay:  # fine-tuned blocks (train --finetune-layers): checked by sha256 like the torch path
        apply_overlay(model, spec.overlay, spec.overlay_sha256 or "")
    n_layers = int(model.config.num_hidden_layers)
    deepest = Encoder._abs_layer(spec.layers[0], n_layers)
    found = _find_layer_list(model)
    if found and 0 < deepest < n_layers:
        owner, attr = found
        setattr(owner, attr, torch.nn.ModuleList(list(getattr(owner, attr))[:deepest]))
    elif deepest == 0:
        raise CheckpointError("runtime 'onnx' does not read layer 0 (the embeddings)")

    class Pooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            h = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            if spec.pooling == "mean":
                m = attention_mask.unsqueeze(-1).to(h.dtype)
                v = (h * m).sum(1) / m.sum(1).clamp(min=1)
            else:
                v = h[:, 0]
            if spec.normalize:
                v = torch.nn.functional.normalize(v, dim=-1)
            return v

    ids = torch.ones((2, 16), dtype=torch.long)
    mask = torch.ones((2, 16), dtype=torch.long)
    import warnings

    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # tracer notes about Python control flow in the model code
        torch.onnx.export(Pooled().eval(), (ids, mask), str(out), input_names=["input_ids", "attention_mask"],
                          output_names=["features"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                                        "features": {0: "batch"}})


def _fuse(raw: Path, out: Path, folder: Path) -> bool:
    """ONNX Runtime's transformer fusions on the plain export: one Attention op per block, the
    embeddings with their layer norm, residual + layer norm as one op. Its own graph optimizer leaves
    attention as ~15 small ops per block, whose per-op cost a short query pays (benchmarks/bench_fusion:
    e5 fp32 0.82x at 24 tokens, 0.88x at 256; the int8 4-block student 0.95x). The fusions match graph patterns,
    so the result is kept only if it computes the plain graph's features; otherwise the plain one."""
    import onnxruntime as ort

    cfg = json.loads((folder / "config.json").read_text())
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        fused = optimize_model(str(raw), model_type="bert", num_heads=int(cfg.get("num_attention_heads", 0)),
                               hidden_size=int(cfg.get("hidden_size", 0)), opt_level=0)
        if not any(n.op_type == "Attention" for n in fused.model.graph.node):
            return False
        fused.save_model_to_file(str(out), use_external_data_format=True)
        rng = np.random.default_rng(0)
        ids = rng.integers(5, min(1000, int(cfg.get("vocab_size", 1000))), size=(2, 12)).astype(np.int64)
        mask = np.ones_like(ids)
        mask[1, 7:] = 0  # a padded row: the fused attention must mask it as the plain graph does
        feeds = {"input_ids": ids, "attention_mask": mask}
        so = _session_options()
        a, b = (ort.InferenceSession(str(p), so, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
                for p in (raw, out))
    except Exception as exc:  # a graph the fusions do not know: the plain export still works
        print(f"transformer fusions skipped ({type(exc).__name__}: {str(exc)[:200]})", file=sys.stderr, flush=True)
        return False
    if not np.allclose(a, b, atol=1e-4):
        print(f"transformer fusions skipped: they moved the features by {np.abs(a - b).max():.2e}",
              file=sys.stderr, flush=True)
        return False
    return True


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8: int8 weights, activations quantized per call (one scale per tensor)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The fused ops (Attention -> QAttention) have no ONNX type inference: their outputs are float.
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def _session_options(threads: int | None = None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads or int(os.environ.get("ROUTER_ONNX_THREADS", "0") or 0)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    spin = os.environ.get("ROUTER_ONNX_SPIN", "1").strip()
    so.add_session_config_entry("session.intra_op.allow_spinning", "0" if spin == "0" else "1")
    return so


def ensure_artifacts(spec: EncoderSpec) -> Path:
    """The .onnx file for this spec (fp32 or int8), building it on first use (~1 min for e5)."""
    _check(spec)
    folder = source_folder(spec)
    out = artifact_dir(spec)
    name = "model-int8.onnx" if spec.quantize == "int8" else "model.onnx"
    if (out / name).exists():
        return out / name
    import onnxruntime as ort

    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".tmp{os.getpid()}-{threading.get_ident()}"
    tmp.mkdir(exist_ok=True)
    try:
        from router.model import torch_thread

        # Always said, on stderr (stdout may be JSON): a first start would otherwise sit silent for ~40 s.
        print(f"exporting {spec.source} to ONNX{' int8' if spec.quantize else ''} once (about a minute; "
              f"cached in {out}) ...", file=sys.stderr, flush=True)
        raw = tmp / "raw.onnx"
        torch_thread.call(_export, spec, folder, raw)
        if _fuse(raw, tmp / "fused.onnx", folder):
            raw = tmp / "fused.onnx"
        if spec.quantize == "int8":
            quantize_int8(raw, tmp / "int8.onnx")
            raw = tmp / "int8.onnx"
        # Optimize once, offline: loading the saved graph then skips the fusion passes.
        so = _session_options()
        so.optimized_model_filepath = str(tmp / name)
        ort.InferenceSession(str(raw), so, providers=["CPUExecutionProvider"])
        externalize(tmp / name, tmp / "ext", name)
        # the data first: a graph file in `out` means its weights are complete
        os.replace(tmp / "ext" / (name + ".data"), out / (name + ".data"))
        os.replace(tmp / "ext" / name, out / name)
        (out / "source.json").write_text(json.dumps({"source": spec.source, "folder": str(folder),
                                                     "overlay_sha256": spec.overlay_sha256,
                                                     "export_version": EXPORT_VERSION}, indent=2))
        prune_older_exports(spec)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out / name


def externalize(src: Path, folder: Path, name: str) -> None:
    """Re-save the graph `src` as folder/name with every tensor over 1 kB in folder/name.data."""
    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    onnx.save_model(onnx.load(str(src)), str(folder / name), save_as_external_data=True,
                    all_tensors_to_one_file=True, location=name + ".data", size_threshold=1024)
    os.chmod(folder / (name + ".data"), 0o644)  # onnx writes it 0600: a container's other user must read it


class OnnxEncoder(FastEncoder):
    def __init__(self, spec: EncoderSpec, device: str | None = None):
        t0 = time.perf_counter()
        folder = source_folder(spec)
        self._init_tokenizer(spec, folder)
        path = ensure_artifacts(spec)
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(path), _session_options(), providers=["CPUExecutionProvider"])
        self._dim = int(self.session.get_outputs()[0].shape[-1] or json.loads(
            (folder / "config.json").read_text())["hidden_size"])
        self.n_layers = int(json.loads((folder / "config.json").read_text()).get("num_hidden_layers", 0))
        self._run_lock = threading.Lock()
        self.load_seconds = time.perf_counter() - t0

    def _forward(self, batch_ids: list[list[int]]) -> np.ndarray:
        ids, mask = self._batch_arrays(batch_ids)
        # One run at a time: two concurrent runs would each spread over every core and slow each other.
        with self._run_lock:
            out = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return np.asarray(out, dtype=np.float32)
