"""Speed of each fast-path encoder option next to today's e5 path, in one run (docs/fastpath.md).

    python -m benchmarks.bench_fastpath --checkpoint NAME=DIR [--checkpoint NAME=DIR ...] [--repeats 30]
        [--batch 512] [--no-subprocess] [--json out.json]

Per checkpoint: PrefillRouter.route() p50/p95 for a ~21-token and a 256-token query (the LONG text
fills the 256-token window), the bare encoder of that runtime on the same text (tokenize + forward
with the library alone: transformers, onnxruntime or a table lookup), route/bare, route against the
first checkpoint's route (today's e5 path when listed first), batched `score` throughput over
distinct questions, and, each in a fresh process, load time (checkpoint + encoder) and peak RSS
after one route, plus the encoder artifact's size on disk and the runtime library's installed size.
Routes are interleaved between checkpoints so that load from other processes hits all alike; before
each option's turn a pause (the previous option's idle threads stop spinning) and one uncounted call
(its weights back in the CPU caches), as in a process that serves one encoder under steady traffic. The
encoder-output cache is off (every text would be a hit after the first).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ["ROUTER_EMBED_CACHE"] = "0"
from benchmarks.bench_route import LONG, SHORT, pct
from router.paths import PROJECT_ROOT as ROOT


def dir_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def artifact(spec) -> Path:
    from router.model.fast_runtimes import source_folder

    if spec.runtime == "onnx":
        from router.model.onnx_runtime import artifact_dir

        name = "model-int8.onnx" if spec.quantize == "int8" else "model.onnx"
        return artifact_dir(spec) / (name + ".data")  # the weights (the graph file beside it is ~0.1 MB)
    if spec.runtime == "static":
        from router.model.static_embed import artifact_dir

        return artifact_dir(spec)
    return source_folder(spec)


def library_mb(runtime: str) -> float:
    import importlib.util

    names = {"torch": ["torch", "transformers"], "onnx": ["onnxruntime", "tokenizers"], "static": ["tokenizers"]}
    total = 0.0
    for n in names[runtime]:
        spec = importlib.util.find_spec(n)
        if spec and spec.submodule_search_locations:
            total += dir_mb(Path(list(spec.submodule_search_locations)[0]))
    return total


def bare(encoder):
    """Tokenize + forward with the runtime's library alone, same truncation: the floor route() is held to."""
    spec = encoder.spec
    if spec.runtime == "torch":
        from benchmarks.bench_route import bare_encoder
        from router.model import torch_thread

        run, _ = torch_thread.call(bare_encoder, spec)
        return lambda text: torch_thread.call(run, text)
    import numpy as np

    tok = encoder._tok
    if spec.runtime == "onnx":
        sess = encoder.session
        budget = spec.max_tokens - 2

        def run(text):
            ids = tok.encode(spec.prefix + text, add_special_tokens=False).ids[-budget:]
            row = np.array([encoder._prefix + ids + encoder._suffix], dtype=np.int64)
            return sess.run(None, {"input_ids": row, "attention_mask": np.ones_like(row)})[0]

        return run
    table = encoder.table

    def run(text):
        ids = tok.encode(spec.prefix + text, add_special_tokens=False).ids[-spec.max_tokens:]
        v = table[np.asarray(ids)].astype(np.float32).mean(0)
        return v / np.linalg.norm(v)

    return run


PAUSE_S = 0.25  # longer than the spin-wait of an idle OpenMP team or ONNX Runtime pool


def timed(fn, *a) -> float:
    t0 = time.perf_counter()
    fn(*a)
    return (time.perf_counter() - t0) * 1e3


LOAD_CODE = """
import json, os, resource, sys, time
os.environ["ROUTER_EMBED_CACHE"] = "0"
t0 = time.perf_counter()
from router.model.encoder import get_encoder
from router.model.head import load_checkpoint
from router.routing.pool import load_pool
from router.routing.router import PrefillRouter
t1 = time.perf_counter()
ck = load_checkpoint(sys.argv[1])
enc = get_encoder(ck.encoder_spec)
t2 = time.perf_counter()
r = PrefillRouter(load_pool(sys.argv[2]), checkpoint=ck, encoder=enc)
r.route("What is the capital of France?")
t3 = time.perf_counter()
# VmHWM, not ru_maxrss: Linux carries a forked parent's ru_maxrss across exec into the child.
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")]
rss = int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_route_s": t3 - t2, "rss_mb": rss}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", action="append", required=True, help="NAME=DIR (repeatable; first = reference)")
    ap.add_argument("--config", default=str(ROOT / "configs" / "routerbench-11.yaml"))
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--batch", type=int, default=512, help="distinct questions for the score throughput")
    ap.add_argument("--no-subprocess", action="store_true", help="skip the fresh-process load/RSS measurement")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    from router.model.encoder import get_encoder
    from router.model.head import load_checkpoint
    from router.routing.pool import load_pool
    from router.routing.router import PrefillRouter

    names, routers, bares = [], {}, {}
    for item in a.checkpoint:
        name, _, path = item.partition("=")
        ck = load_checkpoint(path)
        enc = get_encoder(ck.encoder_spec)
        routers[name] = PrefillRouter(load_pool(a.config), checkpoint=ck, encoder=enc)
        bares[name] = bare(enc)
        names.append(name)
    res: dict[str, dict] = {n: {"checkpoint": dict(x.split("=", 1) for x in a.checkpoint)[n],
                                "encoder": routers[n].checkpoint.encoder_spec.to_json()} for n in names}
    for label, text in (("short", SHORT), ("long", LONG)):
        r = {n: [] for n in names}
        b = {n: [] for n in names}
        for n in names:  # warm-up
            for _ in range(3):
                routers[n].route(text), bares[n](text)
        for i in range(a.repeats):
            for n in names:
                # A serving process holds one encoder. Here the previous option's thread pool (torch's
                # OpenMP team, ONNX Runtime's workers) may still spin on the cores after its call, and
                # its weights have pushed this option's out of the CPU caches: measured, e5-onnx-128 right
                # after int8 took 21 ms where e5-onnx took 12. So: a pause, one call not counted, then
                # route and bare in turn, each first in every other round.
                time.sleep(PAUSE_S)
                bares[n](text)
                pair = [(r[n], routers[n].route), (b[n], bares[n])]
                for out, fn in pair if i % 2 == 0 else pair[::-1]:
                    out.append(timed(fn, text))
        for n in names:
            res[n][label] = {"tokens": routers[n].route(text).input_tokens,
                             "window": min(routers[n].route(text).input_tokens, routers[n].checkpoint.encoder_spec.max_tokens),
                             "route_p50": statistics.median(r[n]), "route_p95": pct(r[n], 95),
                             "bare_p50": statistics.median(b[n]), "bare_p95": pct(b[n], 95)}
    qs = [f"{SHORT} Variant {i}: also handle {'timeouts' if i % 2 else 'rate limits'} in case {i * 7919 % 10007}."
          for i in range(a.batch)]
    for n in names:
        routers[n].score_batch(qs[:32])
        t0 = time.perf_counter()
        routers[n].score_batch(qs, batch_size=32)
        res[n]["score_qps"] = len(qs) / (time.perf_counter() - t0)
        spec = routers[n].checkpoint.encoder_spec
        res[n]["artifact_mb"] = dir_mb(artifact(spec))
        res[n]["library_mb"] = library_mb(spec.runtime)
        if not a.no_subprocess:
            out = subprocess.run([sys.executable, "-c", LOAD_CODE, res[n]["checkpoint"], a.config], cwd=ROOT,
                                 capture_output=True, text=True, timeout=600)
            res[n].update(json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else
                          {"load_error": out.stderr[-500:]})
    ref = names[0]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {a.repeats} interleaved runs; "
          f"ratios against {ref}\n")
    head = (f"{'option':18s} {'tok':>4s} {'route p50':>9s} {'p95':>7s} {'bare p50':>8s} {'r/bare':>6s} {'vs ref':>6s} | "
            f"{'tok':>4s} {'route p50':>9s} {'p95':>7s} {'bare p50':>8s} {'r/bare':>6s} {'vs ref':>6s} | "
            f"{'score q/s':>9s} {'ratio':>6s} | {'load s':>6s} {'RSS MB':>6s} {'artifact MB':>11s} {'lib MB':>6s}")
    print(head)
    for n in names:
        x = res[n]
        cells = []
        for label in ("short", "long"):
            s = x[label]
            s["route_over_bare"] = s["route_p50"] / s["bare_p50"]
            s["route_vs_ref"] = s["route_p50"] / res[ref][label]["route_p50"]
            cells.append(f"{s['window']:4d} {s['route_p50']:9.2f} {s['route_p95']:7.2f} {s['bare_p50']:8.2f} "
                         f"{s['route_over_bare']:6.2f} {s['route_vs_ref']:6.3f}")
        x["score_vs_ref"] = x["score_qps"] / res[ref]["score_qps"]
        load = f"{x['load_s']:6.2f} {x['rss_mb']:6.0f}" if "load_s" in x else f"{'-':>6s} {'-':>6s}"
        print(f"{n:18s} {cells[0]} | {cells[1]} | {x['score_qps']:9.1f} {x['score_vs_ref']:6.1f} | {load} "
              f"{x['artifact_mb']:11.1f} {x['library_mb']:6.0f}")
    if a.json:
        Path(a.json).write_text(json.dumps({"loadavg": os.getloadavg(), "repeats": a.repeats, "rows": res}, indent=1))


if __name__ == "__main__":
    main()
