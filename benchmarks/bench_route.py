"""Routing latency against the bare encoder and a decoder-prefill reader, in one run.

    python -m benchmarks.bench_route [--config configs/default.yaml] [--checkpoint DIR ...] [--repeats 50]
        [--no-decoder]

Prints median and p95 of PrefillRouter.route() for a ~30-token and a ~300-token query, the bare
encoder (tokenize + forward, nothing else) on the same text, batched `score` throughput, and the
SmolLM2-135M decoder read the prefill way, for each checkpoint given (default: the bundled
multilingual one and the English-only MiniLM one). Measurements are interleaved so that load from other
processes hits every contender alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("ROUTER_EMBED_CACHE", "0")  # the same text is routed again and again: measure the encoder

SHORT = "Write a Python decorator that retries a function three times with exponential backoff."
LONG = ("You are helping a data team. " + "They keep sales records per region and per month, and the "
        "quarterly report must reconcile refunds against the original orders. " * 10
        + "Given that, explain how to design the SQL schema and the reconciliation query, step by step.")


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def bare_encoder(spec, device=None):
    """Tokenize + forward with plain transformers: the floor that routing is compared to."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from router.model.encoder import BUNDLED_SOURCES, pick_device

    path, _ = BUNDLED_SOURCES[spec.source]()
    tok = AutoTokenizer.from_pretrained(path)
    prefix = spec.prefix
    tok.truncation_side = "left"
    model = AutoModel.from_pretrained(path).eval().to(device or pick_device())
    if model.device.type == "cuda":
        from router.model.encoder import cuda_dtype

        model = model.to(cuda_dtype(spec))  # the same precision the router's encoder runs in

    cuda = model.device.type == "cuda"

    def run(text):
        with torch.inference_mode():
            enc = tok([prefix + text], truncation=True, max_length=spec.max_tokens, return_tensors="pt").to(model.device)
            out = model(**enc).last_hidden_state
            if cuda:  # kernels run asynchronously: without this the timer stops when they are queued
                torch.cuda.synchronize()
            return out

    return run, tok


def timed(fn, *a):
    t0 = time.perf_counter()
    fn(*a)
    return (time.perf_counter() - t0) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=None)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--batch", type=int, default=256, help="questions for the score throughput test")
    ap.add_argument("--no-decoder", action="store_true")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available); CUDA runs "
                    "encoders in fp16 (ROUTER_CUDA_DTYPE=bf16|fp32 to change)")
    ap.add_argument("--checkpoint", action="append", default=None,
                    help="checkpoint to route with (repeatable; default: assets/checkpoint and assets/checkpoint-minilm)")
    args = ap.parse_args()
    root = Path(__file__).resolve().parent.parent
    for ckpt in args.checkpoint or [root / "assets" / "checkpoint", root / "assets" / "checkpoint-minilm"]:
        bench(args, ckpt)


def bench(args, ckpt) -> None:
    import torch

    from router.model import torch_thread
    from router.model.encoder import EncoderSpec, get_encoder
    from router.model.head import load_checkpoint
    from router.routing.pool import load_pool
    from router.routing.router import PrefillRouter

    ck = load_checkpoint(ckpt)
    router = PrefillRouter(load_pool(args.config), checkpoint=ck, encoder=get_encoder(ck.encoder_spec, args.device))
    spec = router.encoder.spec  # an ONNX spec on a CUDA machine runs as the torch encoder there
    if spec.runtime == "torch":
        # Every torch call of the process runs on the torch thread (router.torch_thread), the bare encoder
        # too: a second calling thread would get its own OpenMP team and slow both down.
        bare, tok = torch_thread.call(bare_encoder, spec, args.device)
        on_bare = torch_thread.call
    else:  # ONNX Runtime or the static table: that library alone on the same ids (bench_fastpath.bare)
        from benchmarks.bench_fastpath import bare as runtime_bare

        bare = runtime_bare(router.encoder)
        tok = lambda text: {"input_ids": range(router.encoder.tokenize([text])[1][0])}  # the untruncated count
        on_bare = lambda fn, *a: fn(*a)
    print(f"\n=== checkpoint {ckpt}: encoder {spec.source} ({spec.runtime}), "
          f"device {router.encoder.device}, torch threads {torch.get_num_threads()}")
    decoder = None
    if not args.no_decoder:
        decoder = get_encoder(EncoderSpec(source="SmolLM2-135M-Instruct", kind="decoder", layers=(-1,),
                                          pooling="last", max_tokens=router.checkpoint.encoder_spec.max_tokens),
                              args.device)
    short = SHORT if len(tok(SHORT)["input_ids"]) >= 20 else SHORT * 2
    for name, text in (("30-token", short), ("300-token", LONG)):
        n_tok = len(tok(text)["input_ids"])
        for _ in range(5):  # warm-up: first calls pay for allocations and lazy init
            router.route(text), on_bare(bare, text)
            if decoder:
                decoder.features([text])
        r, b, d = [], [], []
        for _ in range(args.repeats):
            r.append(timed(router.route, text))  # from this thread: the hop to the torch thread counts
            b.append(on_bare(timed, bare, text))  # torch: timed on the torch thread (no hop)
            if decoder:
                d.append(timed(decoder.features, [text]))
        mr, mb = statistics.median(r), statistics.median(b)
        print(f"\n{name} query ({n_tok} tokens, {args.repeats} runs)")
        print(f"  route()            median {mr:7.2f} ms   p95 {pct(r, 95):7.2f} ms")
        print(f"  bare encoder       median {mb:7.2f} ms   p95 {pct(b, 95):7.2f} ms   route/bare = {mr / mb:.3f}x")
        if decoder:
            md = statistics.median(d)
            print(f"  SmolLM2 prefill    median {md:7.2f} ms   p95 {pct(d, 95):7.2f} ms   decoder/route = {md / mr:.2f}x")

    qs = [f"{SHORT} Variant {i}: also handle {'timeouts' if i % 2 else 'rate limits'}." for i in range(args.batch)]
    router.score_batch(qs[:32])
    t0 = time.perf_counter()
    router.score_batch(qs, batch_size=32)
    dt = time.perf_counter() - t0
    print(f"\nscore throughput: {len(qs) / dt:.1f} questions/s (batch 32, {len(qs)} questions, {dt:.2f} s)")


if __name__ == "__main__":
    main()
