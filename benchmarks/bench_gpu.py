"""CUDA against the CPU on labeled data, and the encoder's speed on the GPU, in one run.

    python -m benchmarks.bench_gpu [--checkpoint assets/checkpoint] [--data FILE ...] [--split test]
        [--limit N] [--dtypes fp16,bf16,fp32] [--batch-sizes 1,8,32,128,512] [--repeats 50] [--json FILE]
        [--device cuda|cpu]

Agreement: the reference is the checkpoint's own runtime on the CPU (ONNX Runtime for the bundled
checkpoint). Each CUDA precision encodes the same questions. Printed per data set and precision:
- max |ΔX| of the features and max / mean |ΔP|;
- the share of identical choices at tolerances 0, 0.05, 0.1 and 0.2 (a set that does not label the
  checkpoint's models is priced with the first labeled set's expected costs);
- where the data labels the checkpoint's models: AIQ and cost saved at 95% from each side's P.

Speed: batched `score` throughput per batch size, and route() p50/p95 at ~21 and ~256 tokens, per
precision, next to the CPU reference on the same machine.

`--device cpu` runs the torch encoder on the CPU as the candidate: a dry run of this script where
there is no GPU (and a check that torch and ONNX Runtime agree).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("ROUTER_EMBED_CACHE", "0")  # the same texts are encoded again and again: measure the encoder

from benchmarks.bench_route import LONG, SHORT, pct  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TOLERANCES = (0.0, 0.05, 0.1, 0.2)


def questions_and_labels(path: str, split: str, limit: int, slots: list[str]):
    """(questions, labels or None): labels = (Y, cost, expected cost) when the data labels every slot."""
    from router.errors import InputError
    from router.training.data import read_labels
    from router.training.evaluate import _align, baseline_rows, eval_rows
    from router.training.search import expected_costs

    table = read_labels(path)
    try:
        aligned = _align(table, slots, path)
    except InputError:
        aligned = None  # another pool's labels: agreement only
    rows = eval_rows(aligned if aligned is not None else table, split)
    if limit:
        rows = rows.subset(range(min(limit, len(rows))))
    if aligned is None:
        return rows.questions, None
    train = baseline_rows(aligned, rows) or rows
    return rows.questions, (rows.Y, rows.cost, expected_costs(train.cost))


def candidates(spec, device: str, dtypes: list[str]):
    """(name, encoder) per precision; built one at a time so that only one sits on the GPU."""
    from router.model import torch_thread
    from router.model.encoder import Encoder

    twin = spec.torch_twin() or spec
    if device == "cpu":
        yield "torch-cpu-fp32", torch_thread.call(Encoder, twin, "cpu")
        return
    for dt in dtypes:
        os.environ["ROUTER_CUDA_DTYPE"] = dt  # read by cuda_dtype() when the model is moved to the GPU
        enc = torch_thread.call(Encoder, twin, "cuda")
        yield f"cuda-{dt}", enc
        del enc
        torch_thread.call(_free_cuda)


def _free_cuda():
    import gc

    import torch

    gc.collect()
    torch.cuda.empty_cache()


def agreement(ckpt, Xr, Xc, labels, prices=None):
    """CPU features Xr against candidate features Xc. Choices use the set's own expected costs when it
    labels the checkpoint's models, else `prices` (another set's), else equal costs (then the lowest
    slot index within tolerance of the best: a check of P's order only)."""
    from router.training import metrics

    Pr, Pc = ckpt.head.predict(Xr), ckpt.head.predict(Xc)
    out = {"n": len(Xr), "max_dX": float(np.abs(Xr - Xc).max()), "max_dP": float(np.abs(Pr - Pc).max()),
           "mean_dP": float(np.abs(Pr - Pc).mean())}
    if labels is not None:
        Y, cost, expected = labels
        for name, P in (("ref", Pr), ("cand", Pc)):
            s = metrics.summarize(P, Y, cost, expected)
            out[f"aiq_{name}"], out[f"save95_{name}"] = s["aiq"], s["cost_save_at_95"]
    else:
        expected = prices if prices is not None else np.ones(Pr.shape[1])
    for t in TOLERANCES:
        out[f"same@{t:g}"] = float(np.mean(metrics.choose(Pr, expected, t) == metrics.choose(Pc, expected, t)))
    return out


def throughput(router, texts, batch_sizes, rounds=2):
    out = {}
    for b in batch_sizes:
        router.score_batch(texts[: max(b, 32)], batch_size=b)  # warm-up: allocations, kernel choice
        best = float("inf")
        for _ in range(rounds):
            t0 = time.perf_counter()
            router.score_batch(texts, batch_size=b)
            best = min(best, time.perf_counter() - t0)
        out[b] = len(texts) / best
    return out


def latency(router, repeats):
    out = {}
    for name, text in (("short", SHORT), ("long", LONG)):
        for _ in range(5):
            router.route(text)
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            router.route(text)
            ts.append((time.perf_counter() - t0) * 1e3)
        out[name] = {"tokens": router.encoder.tokenize([text])[1][0], "p50": statistics.median(ts), "p95": pct(ts, 95)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", default=str(ROOT / "assets" / "checkpoint"))
    ap.add_argument("--data", action="append", default=None,
                    help="labeled file (repeatable; default: the bundled RouterBench set)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=0, help="first N questions of each set (0: all)")
    ap.add_argument("--dtypes", default="fp16,bf16,fp32")
    ap.add_argument("--batch-sizes", default="1,8,32,128,512")
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--reference", default=None, choices=("onnx", "torch"),
                    help="the CPU side (default: the checkpoint's own runtime)")
    ap.add_argument("--speed-questions", type=int, default=1024, help="questions timed per batch size")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()

    from router.model.encoder import get_encoder
    from router.model.head import load_checkpoint
    from router.routing.pool import load_pool
    from router.routing.router import PrefillRouter

    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("no CUDA device here: pass --device cpu for a dry run")
        print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    ckpt = load_checkpoint(args.checkpoint)
    spec = ckpt.encoder_spec
    ref_spec = (spec.torch_twin() or spec) if args.reference == "torch" else spec
    ref = get_encoder(ref_spec, device="cpu")
    ref_router = PrefillRouter(load_pool(None), checkpoint=ckpt, encoder=ref)
    sets = {}
    for path in args.data or [str(ROOT / "assets" / "data" / "routerbench.jsonl.gz")]:
        qs, labels = questions_and_labels(path, args.split, args.limit, ckpt.slots)
        t0 = time.perf_counter()
        X = ref.features(qs, batch_size=32, progress=True)
        sets[path] = (qs, labels, X, len(qs) / (time.perf_counter() - t0))
    prices = next((v[1][2] for v in sets.values() if v[1] is not None), None)  # for sets without labels
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    speed_texts = next(iter(sets.values()))[0][: args.speed_questions]
    results = {"checkpoint": args.checkpoint, "reference": f"{ref.spec.runtime} on cpu ({os.cpu_count()} cores)",
               "sets": {p: {"n": len(v[0]), "ref_qps_batch32": v[3]} for p, v in sets.items()},
               "candidates": {}, "ref_latency": latency(ref_router, args.repeats)}
    for name, enc in candidates(spec, args.device, [d.strip() for d in args.dtypes.split(",")]):
        router = PrefillRouter(load_pool(None), checkpoint=ckpt, encoder=enc)
        row = {"load_s": enc.load_seconds, "agreement": {}}
        for path, (qs, labels, Xr, _) in sets.items():
            row["agreement"][path] = agreement(ckpt, Xr, enc.features(qs, batch_size=64), labels, prices)
        row["throughput"] = throughput(router, speed_texts, batch_sizes)
        row["latency"] = latency(router, args.repeats)
        if args.device == "cuda":
            row["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
            torch.cuda.reset_peak_memory_stats()
        results["candidates"][name] = row
        report_one(name, row)
    print(f"\nreference ({results['reference']}): route() short p50 {results['ref_latency']['short']['p50']:.2f} ms, "
          f"long p50 {results['ref_latency']['long']['p50']:.2f} ms; batched score "
          + ", ".join(f"{Path(p).name} {v['ref_qps_batch32']:.0f} q/s" for p, v in results["sets"].items()))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def _pct(v):
    return "—" if v is None else f"{v:.1%}"


def report_one(name, row):
    mem = f", peak GPU memory {row['peak_gpu_mb']:.0f} MiB" if "peak_gpu_mb" in row else ""
    print(f"\n=== {name} (load {row['load_s']:.2f} s{mem})")
    for path, a in row["agreement"].items():
        same = "  ".join(f"t={t:g} {a[f'same@{t:g}']:.1%}" for t in TOLERANCES)
        line = (f"  {Path(path).name} ({a['n']} q): max|dX| {a['max_dX']:.2e}  max|dP| {a['max_dP']:.2e}  "
                f"mean|dP| {a['mean_dP']:.2e}\n    same choice: {same}")
        if "aiq_ref" in a:
            line += (f"\n    AIQ {a['aiq_ref']:.4f} (cpu) vs {a['aiq_cand']:.4f}; saved at 95% "
                     f"{_pct(a['save95_ref'])} vs {_pct(a['save95_cand'])}")
        print(line)
    print("  batched score: " + ", ".join(f"batch {b}: {q:.0f} q/s" for b, q in row["throughput"].items()))
    for v in row["latency"].values():
        print(f"  route() {v['tokens']}-token query: p50 {v['p50']:.2f} ms  p95 {v['p95']:.2f} ms")


if __name__ == "__main__":
    main()
