"""The ONNX export with and without ONNX Runtime's transformer fusions, and int8 batched vs each query alone.

    python -m benchmarks.bench_fusion [--checkpoint DIR ...] [--repeats 200] [--json out.json]

For each checkpoint's encoder spec (runtime onnx), builds two graphs in a temporary folder from the
same export: "plain" (ONNX Runtime's own graph optimizer only, as before export version 3) and "fused"
(onnx_runtime._fuse first, as shipped), each quantized to int8 when the spec says so. Prints, in one
interleaved run (blocks of 10 calls): the features' max difference between the two, session.run p50 for a ~21-token and
a 256-token query, and, for int8, the throughput of 512 short questions in padded batches of 32 against
each question alone (what encoder.rows_alone does), with how far a batch moves a query's features.
--static-int8 adds static int8 (activation scales calibrated once): its features against fp32's, its
speed, and its batched throughput (it is batch-invariant, so it could keep batches).
--per-sequence-int8 adds the shipped int8 graph rewritten to one activation scale per sequence
(benchmarks/int8_per_sequence.py): how far it is from the shipped graph alone and in batches, its speed
alone, and its batched throughput against the shipped graph's.
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
    import onnxruntime as ort

    from router.model import torch_thread
    from router.model.onnx_runtime import _export, _fuse, _session_options, quantize_int8, source_folder

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
        quantize_int8(path, q)
        path = q
    out = folder / f"{'fused' if fused else 'plain'}-opt.onnx"
    so = _session_options()
    so.optimized_model_filepath = str(out)
    ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return out


def static_int8(spec, enc, folder: Path, texts: list[str]) -> Path:
    """Static int8 (QOperator, activation scales calibrated once on `texts`): batch-invariant by
    construction, so it could batch where dynamic int8 must encode each query alone."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            ids, _ = enc.tokenize(texts)
            self.rows = iter([dict(zip(("input_ids", "attention_mask"), enc._batch_arrays([x]))) for x in ids])

        def get_next(self):
            return next(self.rows, None)

    out = folder / "static-int8.onnx"
    quantize_static(str(folder / "raw.onnx"), str(out), Reader(), quant_format=QuantFormat.QOperator,
                    per_channel=False, activation_type=QuantType.QUInt8, weight_type=QuantType.QUInt8,
                    calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=["MatMul"],
                    extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return out


def compare_static(spec, enc, folder: Path, dynamic, run, short, long, many) -> dict:
    from dataclasses import replace

    import onnxruntime as ort

    from router.model.encoder import get_encoder
    from router.model.onnx_runtime import _session_options
    from router.training.data import read_labels
    from router.training.train import training_rows
    from benchmarks.fastpath_quality import SETS

    qs = list(dict.fromkeys(training_rows(read_labels(SETS["rb"])).questions))
    pick = np.random.default_rng(0).permutation(len(qs))
    calib, probe = [qs[i] for i in pick[:300]], [qs[i] for i in pick[300:500]]
    sess = ort.InferenceSession(str(static_int8(spec, enc, folder, calib)), _session_options(),
                                providers=["CPUExecutionProvider"])
    fp32 = get_encoder(replace(spec, quantize=None))
    ids, _ = enc.tokenize(probe)
    F = np.concatenate([run(fp32.session, [x]) for x in ids])

    def cos(G):
        return (F * G).sum(1) / np.linalg.norm(F, axis=1) / np.linalg.norm(G, axis=1)

    cs, cd = cos(np.concatenate([run(sess, [x]) for x in ids])), cos(np.concatenate([run(dynamic, [x]) for x in ids]))

    def p50(s, x):
        for _ in range(5):
            run(s, [x])
        ts = []
        for _ in range(40):
            t0 = time.perf_counter()
            run(s, [x])
            ts.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(ts)

    alone = np.concatenate([run(sess, [x]) for x in many[:64]])
    t0 = time.perf_counter()
    batched = np.concatenate([run(sess, many[i: i + 32]) for i in range(0, 512, 32)])
    qps = 512 / (time.perf_counter() - t0)
    return {"calibration_texts": 300, "probe_texts": 200, "cos_mean": float(cs.mean()), "cos_min": float(cs.min()),
            "dynamic_cos_mean": float(cd.mean()), "dynamic_cos_min": float(cd.min()),
            "short_p50_ms": p50(sess, short), "long_p50_ms": p50(sess, long),
            "dynamic_short_p50_ms": p50(dynamic, short), "dynamic_long_p50_ms": p50(dynamic, long),
            "batched_32_qps": qps, "max_abs_dx_batched_vs_alone": float(np.abs(batched[:64] - alone).max())}


def interleaved_p50(sess: dict, run, ids, blocks: int) -> dict:
    """{NAME_p50_ms} of single calls on `ids` for two sessions, after 10 warm calls each, timed in blocks
    of 10 calls, the two in turn, each block after one uncounted call: alternating call by call, each
    graph pushed the other's weights out of the CPU caches (e5 took 2x)."""
    names = list(sess)
    t = {k: [] for k in names}
    for k in names:
        for _ in range(10):
            run(sess[k], [ids])
    for i in range(blocks):
        for k in (names if i % 2 == 0 else names[::-1]):
            run(sess[k], [ids])
            for _ in range(10):
                t0 = time.perf_counter()
                run(sess[k], [ids])
                t[k].append((time.perf_counter() - t0) * 1e3)
    return {f"{k}_p50_ms": statistics.median(v) for k, v in t.items()}


def compare_per_sequence(folder: Path, dynamic_path: Path, dynamic, run, short, long, many) -> dict:
    """The per-sequence rewrite of the shipped graph against it; the shipped graph's own throughput on
    `many` is main()'s int8_rows, measured just before in the same run."""
    import onnxruntime as ort

    from benchmarks.int8_per_sequence import rewrite
    from router.model.onnx_runtime import _session_options

    sess = ort.InferenceSession(str(rewrite(dynamic_path, folder / "per-sequence-int8.onnx")), _session_options(),
                                providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    mixed = [(long * 4)[: int(rng.integers(8, 257))] for _ in range(128)]  # lengths 8..256: batches pad
    alone = {k: np.concatenate([run(s, [x]) for x in mixed]) for k, s in (("dynamic", dynamic), ("perseq", sess))}
    batched = np.concatenate([run(sess, mixed[i: i + 32]) for i in range(0, len(mixed), 32)])
    dyn_batched = np.concatenate([run(dynamic, mixed[i: i + 32]) for i in range(0, len(mixed), 32)])
    out = {"alone_vs_shipped_max_abs_dx": float(np.abs(alone["dynamic"] - alone["perseq"]).max()),
           "alone_rows_bitwise_equal_to_shipped": float((alone["dynamic"] == alone["perseq"]).all(1).mean()),
           "batched_vs_alone_max_abs_dx": float(np.abs(batched - alone["perseq"]).max()),
           "shipped_batched_vs_alone_max_abs_dx": float(np.abs(dyn_batched - alone["dynamic"]).max())}
    for label, ids in (("short", short), ("long", long)):
        out[label] = {"tokens": len(ids), **interleaved_p50({"dynamic": dynamic, "perseq": sess}, run, ids, 20)}
    for k, size in (("perseq_alone", 1), ("perseq_batched_32", 32)):
        run(sess, many[:size])
        t0 = time.perf_counter()
        for i in range(0, 512, size):
            run(sess, many[i: i + size])
        out[f"{k}_qps"] = 512 / (time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", action="append", default=None,
                    help="checkpoint DIR (repeatable; default: assets/checkpoint and assets/checkpoint-fast)")
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--static-int8", action="store_true",
                    help="for int8 specs, also static int8 calibrated on 300 RouterBench training questions")
    ap.add_argument("--per-sequence-int8", action="store_true",
                    help="for int8 specs, also the shipped graph rewritten to one activation scale per sequence")
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
                row[label] = {"tokens": len(ids), **interleaved_p50(sess, run, ids, max(1, a.repeats // 10))}
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
                if a.static_int8:
                    row["static_int8"] = compare_static(spec, enc, Path(tmp), s, run, short, long, many)
                if a.per_sequence_int8:
                    row["per_sequence_int8"] = compare_per_sequence(Path(tmp), Path(tmp) / "fused-opt.onnx", s, run,
                                                                    short, long, many)
        results[ck_dir] = row
        print(f"{ck_dir}: fused vs plain max |dX| {row['max_abs_dx_fused_vs_plain']:.2e}")
        for label in ("short", "long"):
            r = row[label]
            print(f"  {label:5s} {r['tokens']:4d} tok: plain {r['plain_p50_ms']:.2f} ms, fused {r['fused_p50_ms']:.2f} ms "
                  f"({r['fused_p50_ms'] / r['plain_p50_ms']:.2f}x)")
        if "static_int8" in row:
            r = row["static_int8"]
            print(f"  static int8: cos to fp32 mean {r['cos_mean']:.4f} min {r['cos_min']:.4f} (dynamic: "
                  f"{r['dynamic_cos_mean']:.4f} / {r['dynamic_cos_min']:.4f}); {r['short_p50_ms']:.2f} / "
                  f"{r['long_p50_ms']:.2f} ms (dynamic {r['dynamic_short_p50_ms']:.2f} / {r['dynamic_long_p50_ms']:.2f}); "
                  f"batches of 32 {r['batched_32_qps']:.0f} q/s; batched vs alone {r['max_abs_dx_batched_vs_alone']:.1e}")
        if "int8_rows" in row:
            r = row["int8_rows"]
            print(f"  int8, 512 short questions: batches of 32 {r['batched_32_qps']:.0f} q/s, each alone "
                  f"{r['alone_qps']:.0f} q/s; a batch moved features by up to {r['max_abs_dx_batched_vs_alone']:.4f}")
        if "per_sequence_int8" in row:
            r = row["per_sequence_int8"]
            print(f"  per-sequence int8: alone vs shipped max |dX| {r['alone_vs_shipped_max_abs_dx']:.1e} "
                  f"({r['alone_rows_bitwise_equal_to_shipped']:.0%} of rows bitwise equal); padded batches vs alone "
                  f"{r['batched_vs_alone_max_abs_dx']:.1e} (shipped graph: {r['shipped_batched_vs_alone_max_abs_dx']:.1e}); "
                  f"alone {r['short']['perseq_p50_ms']:.2f} / {r['long']['perseq_p50_ms']:.2f} ms (shipped "
                  f"{r['short']['dynamic_p50_ms']:.2f} / {r['long']['dynamic_p50_ms']:.2f}); 512 short questions: "
                  f"batches of 32 {r['perseq_batched_32_qps']:.0f} q/s (shipped: see the int8 line above)")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
