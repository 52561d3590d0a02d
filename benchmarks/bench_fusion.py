"""The ONNX export with and without ONNX Runtime's transformer fusions, and int8 batched vs each query alone.

    python -m benchmarks.bench_fusion [--checkpoint DIR ...] [--repeats 200] [--json out.json]

For each checkpoint's encoder spec (runtime onnx), builds two graphs in a temporary folder from the
same export: "plain" (ONNX Runtime's own graph optimizer only, as before export version 3) and "fused"
(onnx_runtime._fuse first, as shipped), each quantized to int8 when the spec says so. Prints, in one
interleaved run (blocks of 10 calls): the features' max difference between the two, session.run p50 for a ~21-token and
a 256-token query, and, for int8, the throughput of 512 short questions in padded batches of 32 against
each question alone (what encoder.rows_alone does), with how far a batch moves a query's features.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_route import LONG, SHORT
from router.paths import PROJECT_ROOT as ROOT


def build(spec, folder: Path, fused: bool) -> Path:
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from router.model import torch_thread
    from router.model.onnx_runtime import _export, _fuse, _session_options, source_folder

    src = source_folder(spec)
    raw = folder / "raw.onnx"
    if not raw.exists():
        torch_thread.call(_export, spec, src, raw)
    path = raw
    if fused:
        if not _fuse(raw, folder / "fused.onnx", src):
            raise SystemExit("the transformer fusions did not apply to this encoder")
        path = folder / "fused.onnx"
    if spec.quantize == "int8":
        q = folder / f"{path.stem}-int8.onnx"
        quantize_dynamic(str(path), str(q), weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        path = q
    out = folder / f"{'fused' if fused else 'plain'}-opt.onnx"
    so = _session_options()
    so.optimized_model_filepath = str(out)
    ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", action="append", default=None,
                    help="checkpoint DIR (repeatable; default: assets/checkpoint and assets/checkpoint-fast)")
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    import onnxruntime as ort

    from router.model.encoder import get_encoder
    from router.model.head import load_checkpoint
    from router.model.onnx_runtime import _session_options

    results = {}
    for ck_dir in a.checkpoint or [str(ROOT / "assets" / "checkpoint"), str(ROOT / "assets" / "checkpoint-fast")]:
        spec = load_checkpoint(ck_dir).encoder_spec
        enc = get_encoder(spec)  # its tokenizer and padding; the sessions below are built here
        with tempfile.TemporaryDirectory() as tmp:
            sess = {k: ort.InferenceSession(str(build(spec, Path(tmp), k == "fused")), _session_options(),
                                            providers=["CPUExecutionProvider"]) for k in ("plain", "fused")}

            def run(s, rows):
                ids, mask = enc._batch_arrays(rows)
                return s.run(None, {"input_ids": ids, "attention_mask": mask})[0]

            (short,), _ = enc.tokenize([SHORT])
            (long,), _ = enc.tokenize([LONG])
            qs = [f"{SHORT} Variant {i}: also handle {'timeouts' if i % 2 else 'rate limits'} in case "
                  f"{i * 7919 % 10007}." for i in range(512)]
            many, _ = enc.tokenize(qs)
            row = {"spec": spec.to_json(), "checkpoint": ck_dir,
                   "max_abs_dx_fused_vs_plain": float(np.abs(run(sess["plain"], many[:64])
                                                            - run(sess["fused"], many[:64])).max())}
            for label, ids in (("short", short), ("long", long)):
                t = {k: [] for k in sess}
                for k in sess:
                    for _ in range(10):
                        run(sess[k], [ids])
                # Blocks of 10 calls, the two graphs in turn, each block after one uncounted call: alternating
                # call by call, each graph pushed the other's weights out of the CPU caches (e5 took 2x).
                for i in range(max(1, a.repeats // 10)):
                    for k in (("plain", "fused") if i % 2 == 0 else ("fused", "plain")):
                        run(sess[k], [ids])
                        for _ in range(10):
                            t0 = time.perf_counter()
                            run(sess[k], [ids])
                            t[k].append((time.perf_counter() - t0) * 1e3)
                row[label] = {"tokens": len(ids), **{f"{k}_p50_ms": statistics.median(v) for k, v in t.items()}}
            if spec.quantize == "int8":
                s = sess["fused"]
                batched = np.concatenate([run(s, many[i: i + 32]) for i in range(0, 512, 32)])  # warm
                t0 = time.perf_counter()
                batched = np.concatenate([run(s, many[i: i + 32]) for i in range(0, 512, 32)])
                t1 = time.perf_counter()
                alone = np.concatenate([run(s, [x]) for x in many])
                t2 = time.perf_counter()
                row["int8_rows"] = {"batched_32_qps": 512 / (t1 - t0), "alone_qps": 512 / (t2 - t1),
                                    "max_abs_dx_batched_vs_alone": float(np.abs(batched - alone).max())}
        results[ck_dir] = row
        print(f"{ck_dir}: fused vs plain max |dX| {row['max_abs_dx_fused_vs_plain']:.2e}")
        for label in ("short", "long"):
            r = row[label]
            print(f"  {label:5s} {r['tokens']:4d} tok: plain {r['plain_p50_ms']:.2f} ms, fused {r['fused_p50_ms']:.2f} ms "
                  f"({r['fused_p50_ms'] / r['plain_p50_ms']:.2f}x)")
        if "int8_rows" in row:
            r = row["int8_rows"]
            print(f"  int8, 512 short questions: batches of 32 {r['batched_32_qps']:.0f} q/s, each alone "
                  f"{r['alone_qps']:.0f} q/s; a batch moved features by up to {r['max_abs_dx_batched_vs_alone']:.4f}")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
