"""What a budget hold costs a request, per spend store (docs/governance.md "In flight").

    python -m benchmarks.bench_budgets [--requests 2000] [--others 20] [--no-redis]

A routed request on a pool with caps does, against the store: hold its estimate on the policy and
client counters (day and month), read the settled spend and what was placed in flight before it,
narrow the hold to the chosen slot (its counters added), and at its end add its cost and release the
hold. This times that sequence with `--others` holds of other requests in flight, for SQLite in
memory, SQLite in a file (WAL, as the proxy keeps it next to the audit log) and Redis (a
redis-server started on 127.0.0.1 when one is installed; one round trip per step). Prints the
median and p90 per request in ms. Single client thread: this is the store's cost, not contention.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

GATE_KEYS = ["policy:p:day:d", "policy:p:month:m", "client:p:c:day:d", "client:p:c:month:m"]
SLOT_KEYS = GATE_KEYS + ["slot:p:s:day:d", "slot:p:s:month:m"]


def one_request(store, rid: str, expires: float) -> None:
    store.reserve(rid, GATE_KEYS, 0.02, expires)
    store.get_many(GATE_KEYS)
    store.in_flight_many(GATE_KEYS, asker=rid)
    store.reserve(rid, SLOT_KEYS, 0.01, expires)
    store.add([(k, expires) for k in SLOT_KEYS], 0.011)
    store.release(rid)


def time_store(store, requests: int, others: int) -> dict:
    expires = time.time() + 3600
    for i in range(others):
        store.reserve(f"other{i}", GATE_KEYS, 0.01, expires)
    for i in range(50):  # warm-up
        one_request(store, f"warm{i}", expires)
    ms = []
    for i in range(requests):
        t0 = time.perf_counter()
        one_request(store, f"r{i}", expires)
        ms.append((time.perf_counter() - t0) * 1e3)
    ms.sort()
    return {"p50_ms": statistics.median(ms), "p90_ms": ms[int(0.9 * len(ms))]}


def main() -> int:
    from router.serving.state import RedisLink, RedisSpend, SqliteSpend

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--others", type=int, default=20, help="holds of other requests in flight meanwhile")
    ap.add_argument("--no-redis", action="store_true")
    a = ap.parse_args()
    rows = {}
    rows["sqlite, in memory"] = time_store(SqliteSpend(":memory:"), a.requests, a.others)
    with tempfile.TemporaryDirectory() as d:
        store = SqliteSpend(str(Path(d) / "audit.spend.sqlite"))
        rows["sqlite, file (WAL)"] = time_store(store, a.requests, a.others)
        store.close()
    if not a.no_redis and shutil.which("redis-server"):
        from tests.serving import RedisServer

        server = RedisServer().start()
        try:
            rows["redis (+ its local SQLite mirror)"] = time_store(RedisSpend(RedisLink(server.url), SqliteSpend()),
                                                                   a.requests, a.others)
        finally:
            server.stop()
    print(f"{a.requests} requests, {a.others} other holds in flight; per request: hold, read, narrow, settle, release")
    for name, r in rows.items():
        print(f"  {name:<36} p50 {r['p50_ms']:.3f} ms   p90 {r['p90_ms']:.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
