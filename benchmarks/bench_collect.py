"""Collect throughput against the loopback upstream stub: calls per second at concurrency 1 and 16.

    python -m benchmarks.bench_collect [--calls 200] [--delay 0.05]

Two upstream latencies: 0 (the client's own overhead: HTTP, judging, appending rows) and
--delay seconds (a slow endpoint, where bounded concurrency pays off). Each run writes a fresh
label file, one slot, reference judge. The stub runs in its own process: in this process its
event loop would fight the client's for the GIL and understate concurrent throughput.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from router.paths import PROJECT_ROOT
from router.routing.pool import parse_pool
from router.training.collect import CollectConfig, Item, collect
from router.training.judges import make_judge
from tests.serving import free_port

ROOT = PROJECT_ROOT
STUB = """
import sys, time
from tests.upstream_stub import UpstreamStub
stub = UpstreamStub(port=int(sys.argv[1]))
stub.behave("stub-0", answer="The answer is 4.")
stub.behave("stub-d", answer="The answer is 4.", delay=float(sys.argv[2]))
stub.start()
while True:
    time.sleep(3600)
"""


def start_stub(delay: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", STUB, str(port), str(delay)], cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, f"{url}/v1"
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the stub did not start")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--delay", type=float, default=0.05, help="simulated upstream latency (s)")
    args = ap.parse_args()
    items = [Item(f"q{i}", f"What is {i} plus {i}?", str(2 * i)) for i in range(args.calls)]
    print(f"{'upstream delay':>15} {'concurrency':>12} {'calls':>6} {'seconds':>8} {'calls/s':>8}")
    proc, base_url = start_stub(args.delay)
    try:  # the stub process is ours: stop it by its handle however the run ends
        with tempfile.TemporaryDirectory() as tmp:
            run_all(args, items, base_url, Path(tmp))
    finally:
        proc.terminate()
        proc.wait(10)


def run_all(args, items, base_url: str, tmp: Path) -> None:
    for delay, model in ((0.0, "stub-0"), (args.delay, "stub-d")):
        pool = parse_pool({"policy": "bench", "checkpoint": "assets/checkpoint", "models": [
            {"name": "stub", "model": model, "api_base": base_url, "local": True,
             "cost_per_m_input_tokens": 0.1, "cost_per_m_output_tokens": 0.4}]}, tmp / "pool.yaml")
        for conc in (1, 16):
            out = tmp / f"labels-{delay}-{conc}.jsonl"
            rep = collect(pool, items, out, make_judge("reference"), CollectConfig(concurrency=conc),
                          progress=False)
            assert rep.written == args.calls, rep
            print(f"{delay * 1000:>12.0f} ms {conc:>12} {rep.written:>6} {rep.seconds:>8.2f} "
                  f"{rep.calls_per_s:>8.1f}")


if __name__ == "__main__":
    main()
