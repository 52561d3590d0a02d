"""Several replicas, one truth: budget counters and sessions in a real redis-server (started here on
127.0.0.1, random port), shared by two proxy processes; and what happens when Redis goes away."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import httpx
import pytest

from router.serving.state import RedisLink, RedisSpend, SqliteSpend

from .governance_env import CLOUD_KEY_ENV, LOCAL, POLICY, SLOTS, SSN, dest, write_pool
from .serving import RedisServer, free_port, wait_http
from .upstream_stub import UpstreamStub

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USAGE = {"prompt_tokens": 1000, "completion_tokens": 1000, "total_tokens": 2000}  # $0.002 on cloud-mid

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed")


@pytest.fixture
def redis_server():
    srv = RedisServer().start()
    yield srv
    srv.stop()


def test_redis_spend_falls_back_to_local_counters_and_catches_up(redis_server, monkeypatch):
    import router.serving.state as state

    monkeypatch.setattr(state, "RETRY_S", 0.0)  # retry Redis on every call, so the test need not wait
    spend = RedisSpend(RedisLink(redis_server.url), SqliteSpend())
    other = RedisSpend(RedisLink(redis_server.url), SqliteSpend())  # a second replica
    keys = [("policy:p:day:x", time.time() + 3600)]
    spend.add(keys, 1.0)
    other.add(keys, 2.0)
    assert spend.get_many(["policy:p:day:x"])["policy:p:day:x"] == pytest.approx(3.0)
    redis_server.stop()
    spend.add(keys, 0.5)  # Redis is gone: kept locally
    assert spend.get_many(["policy:p:day:x"])["policy:p:day:x"] == pytest.approx(3.5)
    assert spend.health()["status"] == "down" and spend.health()["pending_keys"] == 1
    redis_server.start()  # an empty Redis on the same port (no persistence): the local delta is pushed back
    assert spend.get_many(["policy:p:day:x"])["policy:p:day:x"] == pytest.approx(0.5)
    assert spend.health()["status"] == "ok" and spend.health()["pending_keys"] == 0
    import redis

    assert float(redis.Redis(port=redis_server.port).get("router:policy:p:day:x")) == pytest.approx(0.5)
    assert redis.Redis(port=redis_server.port).ttl("router:policy:p:day:x") > 0  # expires with its period


class Replica:
    def __init__(self, pool, redis_url, folder, name):
        self.args = (pool, redis_url, folder, name)
        self.log = open(folder / f"{name}.log", "w+")
        self._spawn()

    def _spawn(self):
        pool, redis_url, folder, name = self.args
        self.port = free_port()
        env = {**os.environ, "ROUTER_REDIS_URL": redis_url, CLOUD_KEY_ENV: "cloud-key", "NO_PROXY": "127.0.0.1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "router", "serve", "--config", str(pool), "--port",
                                      str(self.port), "--audit-log", str(folder / f"{name}.jsonl"), "--retries", "0"],
                                     cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait(self):
        for _ in range(3):  # another process on this shared machine may take the free port first
            try:
                return wait_http(f"{self.url}/health", self.proc, timeout=300, logs=self.logs)
            except AssertionError:
                if "address already in use" not in self.logs():
                    raise
                self._spawn()
        raise AssertionError(f"no free port for the replica:\n{self.logs()}")

    def logs(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def chat(self, model="cloud-mid", text="What is the capital of France?", **kw):
        body = {"model": model, "messages": [{"role": "user", "content": text}], **kw.pop("body", {})}
        return httpx.post(f"{self.url}/v1/chat/completions", json=body, timeout=60, **kw)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.mark.slow
def test_two_replicas_share_caps_and_sessions_and_survive_redis_going_away(redis_server, tmp_path):
    with UpstreamStub() as local, UpstreamStub() as cloud:
        for s in (local, cloud):
            for name, *_ in SLOTS:
                s.behave(dest(name), usage=dict(USAGE))
        budgets = [{"scope": "slot", "name": "cloud-mid", "period": "day", "usd": 0.005, "mode": "hard"}]
        pool = write_pool(tmp_path, local.base_url, cloud.base_url, budgets=budgets)
        a, b = Replica(pool, redis_server.url, tmp_path, "a"), Replica(pool, redis_server.url, tmp_path, "b")
        try:
            a.wait()
            b.wait()
            for _ in range(3):  # $0.006 through replica A
                assert a.chat().status_code == 200
            refused = b.chat()  # enforced by replica B
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
            assert len(cloud.calls(dest("cloud-mid"))) == 3
            # A session marked local-only through A stays local when its next turn lands on B.
            h = {"X-Router-Session": "shared-conv"}
            first = a.chat(model=POLICY, text=f"my ssn is {SSN}", headers=h, body={"tolerance": 0})
            assert first.json()["router"]["selected"] in LOCAL
            later = b.chat(model=POLICY, text="and next year?", headers=h, body={"tolerance": 0})
            assert later.status_code == 200 and later.json()["router"]["selected"] in LOCAL
            assert later.json()["router"]["governance"]["sensitive"]["session_local"] is True
            assert httpx.get(f"{b.url}/health").json()["state"]["redis"]["status"] == "ok"

            redis_server.stop()  # Redis goes away: keep serving, warn, enforce from local counters
            ok = b.chat(model="onprem-small")
            assert ok.status_code == 200
            still = b.chat()
            assert still.status_code == 429
            time.sleep(2.2)  # past the retry pause: health reports the outage it has seen
            b.chat(model="onprem-small")
            health = httpx.get(f"{b.url}/health").json()
            assert health["state"]["redis"]["status"] == "down" and health["warnings"]
            assert "unreachable" in b.logs()
            assert len(cloud.calls(dest("cloud-mid"))) == 3
        finally:
            a.stop()
            b.stop()


def test_redis_reservations_are_seen_by_every_replica_and_lapse(redis_server, monkeypatch):
    import router.serving.state as state

    monkeypatch.setattr(state, "RETRY_S", 0.0)
    now = [time.time()]
    a = RedisSpend(RedisLink(redis_server.url), SqliteSpend(clock=lambda: now[0]))
    b = RedisSpend(RedisLink(redis_server.url), SqliteSpend(clock=lambda: now[0]))
    a.reserve("ra", ["policy:p:day:x", "client:p:c:day:x"], 0.5, expires=now[0] + 60)
    b.reserve("rb", ["policy:p:day:x"], 0.25, expires=now[0] + 10)
    assert b.in_flight_many(["policy:p:day:x", "client:p:c:day:x"]) == {"policy:p:day:x": 0.75,
                                                                        "client:p:c:day:x": 0.5}
    assert a.in_flight_many(["policy:p:day:x"], asker="ra") == {"policy:p:day:x": 0.0}  # ra was first
    assert b.in_flight_many(["policy:p:day:x"], asker="rb") == {"policy:p:day:x": 0.5}  # rb counts ra
    a.reserve("ra", ["policy:p:day:x"], 0.125, expires=now[0] + 60)  # narrowed once routed
    assert b.in_flight_many(["policy:p:day:x", "client:p:c:day:x"]) == {"policy:p:day:x": 0.375,
                                                                        "client:p:c:day:x": 0.0}
    assert b.in_flight_many(["policy:p:day:x"], asker="rb") == {"policy:p:day:x": 0.125}  # ra kept its place
    now[0] += 30  # rb's replica died mid-call: its reservation lapses
    assert a.in_flight_many(["policy:p:day:x"]) == {"policy:p:day:x": 0.125}
    a.release("ra")
    assert b.in_flight_many(["policy:p:day:x"]) == {"policy:p:day:x": 0.0}
    redis_server.stop()
    a.reserve("rc", ["policy:p:day:x"], 1.0, expires=now[0] + 60)  # Redis away: this replica still counts its own
    assert a.in_flight_many(["policy:p:day:x"]) == {"policy:p:day:x": 1.0}
    a.release("rc")
    assert a.in_flight_many(["policy:p:day:x"]) == {"policy:p:day:x": 0.0}


def test_redis_holds_keep_their_place_in_line_across_replicas(redis_server, monkeypatch):
    """The first hold placed is served first, whichever replica placed it; a member written before
    holds had a place counts as placed first; a stray member never breaks the gate."""
    import redis

    import router.serving.state as state

    monkeypatch.setattr(state, "RETRY_S", 0.0)
    now = [time.time()]
    a = RedisSpend(RedisLink(redis_server.url), SqliteSpend(clock=lambda: now[0]))
    b = RedisSpend(RedisLink(redis_server.url), SqliteSpend(clock=lambda: now[0]))
    key = "policy:p:day:order"
    b.reserve("rb1", [key], 0.5, expires=now[0] + 60)
    a.reserve("ra1", [key], 0.25, expires=now[0] + 60)
    b.reserve("rb1", [key], 0.125, expires=now[0] + 60)  # narrowed on b: keeps its place before ra1
    assert a.in_flight_many([key], asker="ra1") == {key: 0.125}
    assert b.in_flight_many([key], asker="rb1") == {key: 0.0}
    assert a.in_flight_many([key]) == {key: 0.375}  # no asker: everything in flight
    raw = redis.Redis.from_url(redis_server.url, decode_responses=True)
    raw.zadd(state.PREFIX + "inflight:" + key, {"legacy|0.0625": now[0] + 60, "not|ours|x": now[0] + 60})
    assert b.in_flight_many([key], asker="rb1") == {key: 0.0625}
    a.release("ra1")
    b.release("rb1")
    assert a.in_flight_many([key]) == {key: 0.0625}


def test_concurrent_holds_on_two_replicas_each_count_exactly_those_placed_before(redis_server, monkeypatch):
    """16 threads on two replicas each hold $1 and then read: with places taken atomically with the
    holds, the i-th placed counts exactly i dollars, so the counts are 0..15, each once."""
    from concurrent.futures import ThreadPoolExecutor

    import router.serving.state as state

    monkeypatch.setattr(state, "RETRY_S", 0.0)
    replicas = [RedisSpend(RedisLink(redis_server.url), SqliteSpend()) for _ in range(2)]
    key = "policy:p:day:concurrent"
    expires = time.time() + 60

    def hold_then_read(i: int) -> float:
        spend = replicas[i % 2]
        spend.reserve(f"c{i}", [key], 1.0, expires=expires)
        return spend.in_flight_many([key], asker=f"c{i}")[key]

    with ThreadPoolExecutor(16) as pool:
        seen = list(pool.map(hold_then_read, range(16)))
    assert sorted(seen) == [float(i) for i in range(16)], seen
