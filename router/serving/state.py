"""Shared mutable state of the proxy: budget spend counters and conversation stickiness.

Two backends behind one interface:

- in-process (default): spend lives in SQLite (a file next to the audit log, so it survives a
  restart; `:memory:` without one), sessions in the bounded in-process `SessionStore`.
- Redis (`ROUTER_REDIS_URL`): spend counters are `INCRBYFLOAT` keys that expire after their period,
  sessions are keys with a TTL, so every replica behind a load balancer reads the same numbers.

Both also hold in-flight reservations (router.routing.budgets): one row per (request, counter) in
SQLite, one sorted-set member per request in Redis, scored by the time the reservation lapses, so
that a replica that dies mid-call stops holding budget after the TTL instead of forever. Each
request's hold has a place in line (a sequence number taken with its first hold, kept when it is
narrowed or moved): a request counts only the holds placed before its own, so requests racing for
a cap's last dollars are served first come, first served instead of all refusing one another.

Why SQLite for spend and not a rebuild from the audit log: the audit log can be off, rotated or
hashed-only, a rebuild reads the whole file at each start, and SQLite's atomic upsert lets two
processes on one host share the counters too.

A Redis that goes away does not stop the proxy: calls fail fast (short socket timeouts, then no
retry for `RETRY_S`), a warning is logged once per outage and /health says so; spend is enforced
from the last value read from Redis plus what this replica spent since, and that local delta is
pushed to Redis when it is back. Replicas cannot see each other's spend during the outage: each may
overshoot a cap by what the other replicas spend meanwhile.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from router.serving.sessions import SessionStore

log = logging.getLogger("router.serving.state")
REDIS_ENV = "ROUTER_REDIS_URL"
BUDGET_DB_ENV = "ROUTER_BUDGET_DB"
PREFIX = "router:"
RETRY_S = 2.0
SESSION_TTL_S = 24 * 3600
_LAST = 2 ** 62  # a place after every hold: an asker without a hold counts them all


def budget_db_path(audit_path: str | Path | None) -> str:
    """`audit.jsonl` -> `audit.spend.sqlite` in the same folder; no audit log -> in memory."""
    if not audit_path:
        return ":memory:"
    p = Path(audit_path)
    return str(p.with_name(p.stem + ".spend.sqlite"))


class SqliteSpend:
    """Spend counters in SQLite: atomic upserts, safe across threads and processes on one host."""

    def __init__(self, path: str = ":memory:", clock=time.time):
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=5)
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a process crash
        self._db.execute("CREATE TABLE IF NOT EXISTS spend (key TEXT PRIMARY KEY, usd REAL NOT NULL, "
                         "expires REAL NOT NULL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS inflight (rid TEXT NOT NULL, key TEXT NOT NULL, "
                         "usd REAL NOT NULL, expires REAL NOT NULL, seq INTEGER NOT NULL DEFAULT 0, "
                         "PRIMARY KEY (rid, key))")
        if "seq" not in {row[1] for row in self._db.execute("PRAGMA table_info(inflight)")}:
            # A file from before placement order: its holds read as placed before every new one.
            self._db.execute("ALTER TABLE inflight ADD COLUMN seq INTEGER NOT NULL DEFAULT 0")
        self._db.execute("DELETE FROM spend WHERE expires < ?", (self.clock(),))
        self._db.execute("DELETE FROM inflight WHERE expires < ?", (self.clock(),))

    def reserve(self, rid: str, keys: Sequence[str], usd: float, expires: float) -> None:
        """Hold `usd` on `keys` for request `rid` until `expires`, replacing what it held before. The
        first hold of a request takes the next place in line; a replacement keeps its place."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT seq FROM inflight WHERE rid = ? LIMIT 1", (rid,)).fetchone()
                seq = row[0] if row else self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM inflight").fetchone()[0]
                self._db.execute("DELETE FROM inflight WHERE rid = ?", (rid,))
                self._db.executemany("INSERT INTO inflight(rid, key, usd, expires, seq) VALUES(?, ?, ?, ?, ?)",
                                     [(rid, k, float(usd), float(expires), seq) for k in keys])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def release(self, rid: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM inflight WHERE rid = ?", (rid,))

    def in_flight_many(self, keys: Sequence[str], asker: str | None = None) -> dict[str, float]:
        """What unfinished calls hold on each key. `asker`: the request asking, whose own hold and
        every hold placed after it are left out, so of two requests racing for a cap's last dollars
        the first one placed sees them free and the second sees them taken."""
        out = {k: 0.0 for k in keys}
        if not keys:
            return out
        with self._lock:
            rows = self._db.execute(
                f"SELECT key, SUM(usd) FROM inflight WHERE key IN ({','.join('?' * len(keys))}) AND expires >= ? "
                "AND rid != ? AND seq < COALESCE((SELECT MIN(seq) FROM inflight WHERE rid = ?), ?) GROUP BY key",
                [*keys, self.clock(), asker or "", asker or "", _LAST]).fetchall()
        out.update({k: float(v) for k, v in rows})
        return out

    def add(self, keys: Sequence[tuple[str, float]], usd: float) -> None:
        if usd <= 0 or not keys:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO spend(key, usd, expires) VALUES(?, ?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET usd = usd + excluded.usd", [(k, usd, exp) for k, exp in keys])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def get_many(self, keys: Sequence[str]) -> dict[str, float]:
        out = {k: 0.0 for k in keys}
        if not keys:
            return out
        with self._lock:
            rows = self._db.execute(f"SELECT key, usd FROM spend WHERE key IN ({','.join('?' * len(keys))})",
                                    list(keys)).fetchall()
        out.update({k: float(v) for k, v in rows})
        return out

    def health(self) -> dict[str, Any]:
        return {"backend": "sqlite", "path": self.path}

    def close(self) -> None:
        with self._lock:
            self._db.close()


class RedisLink:
    """A Redis client that fails fast and remembers an outage, so a dead Redis costs ~nothing per request."""

    def __init__(self, url: str, clock=time.monotonic):
        import redis

        self.url = url
        self.client = redis.Redis.from_url(url, socket_timeout=0.25, socket_connect_timeout=0.25,
                                           decode_responses=True)
        self.clock = clock
        self.down_since: float | None = None
        self._retry_at = 0.0
        self._lock = threading.Lock()
        self.on_up: list = []

    @property
    def up(self) -> bool:
        return self.down_since is None

    def call(self, fn):
        """fn(client) -> value, or raise ConnectionError (fast while Redis is known to be down)."""
        now = self.clock()
        if self.down_since is not None:
            if now < self._retry_at:
                raise ConnectionError("redis is down")
            self._guarded(lambda c: c.ping(), now)  # back? push what was kept locally before reading
            with self._lock:
                self.down_since = None
            log.warning("Redis at %s is back", _safe_url(self.url))
            for cb in self.on_up:
                cb()
        return self._guarded(fn, now)

    def _guarded(self, fn, now: float):
        import redis

        try:
            return fn(self.client)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            with self._lock:
                if self.down_since is None:
                    log.warning("Redis at %s is unreachable (%s): serving on, enforcing budgets from this "
                                "replica's counters until it is back", _safe_url(self.url), exc)
                    self.down_since = time.time()
                self._retry_at = now + RETRY_S
            raise ConnectionError(str(exc)) from None

    def health(self) -> dict[str, Any]:
        return {"url": _safe_url(self.url), "status": "ok" if self.up else "down",
                "down_since": self.down_since}


def _safe_url(url: str) -> str:
    # A Redis URL may carry a password: never log or show it.
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.rpartition('@')[2]}"
    return url


SEQ_KEY = PREFIX + "inflight:seq"

# One request's hold, atomically: drop its old member, take a place in line (INCR) unless it has one,
# add the new member to each counter's sorted set. Atomic, because a place taken before the hold is
# visible would let a later request read the counters without it and both pass.
_RESERVE_LUA = """
local n_old = tonumber(ARGV[6])
for i = 2, 1 + n_old do redis.call('ZREM', KEYS[i], ARGV[7]) end
local seq = ARGV[8]
if seq == '' then seq = tostring(redis.call('INCR', KEYS[1])) end
local member = ARGV[1] .. '|' .. seq .. '|' .. ARGV[2]
for i = 2 + n_old, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[4])
  redis.call('ZADD', KEYS[i], ARGV[3], member)
  redis.call('EXPIREAT', KEYS[i], ARGV[5])
end
return member
"""


def _parse_member(m: str) -> tuple[str, int, float] | None:
    """(request id, place in line, USD) of a sorted-set member; a member from before placement order
    (`rid|usd`) reads as placed before all; anything else is not ours and never breaks the gate."""
    head, _, usd = m.rpartition("|")
    rid, sep, seq = head.rpartition("|")
    if not sep or not seq.isdigit():
        rid, seq = head, "0"
    try:
        return rid, int(seq), float(usd)
    except ValueError:
        return None


class RedisSpend:
    """Spend in Redis (the truth for every replica), with a local fallback while Redis is away."""

    def __init__(self, link: RedisLink, local: SqliteSpend):
        self.link = link
        self.local = local
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}  # last value read from Redis
        self._pending: dict[str, tuple[float, float]] = {}  # key -> (usd not yet in Redis, expiry)
        # rid -> (keys, its sorted-set member in Redis, its place in line); None: Redis never got it
        self._held: dict[str, tuple[tuple[str, ...], str | None, int | None]] = {}
        link.on_up.append(self._flush)

    @staticmethod
    def _zkey(key: str) -> str:
        return PREFIX + "inflight:" + key

    def reserve(self, rid: str, keys: Sequence[str], usd: float, expires: float) -> None:
        self.local.reserve(rid, keys, usd, expires)  # this replica's view while Redis is away
        with self._lock:
            before = self._held.get(rid) or ((), None, None)
        old_keys, old_member, seq = before
        zkeys = [self._zkey(k) for k in (*(old_keys if old_member else ()), *keys)]
        args = [rid, repr(float(usd)), float(expires), self.local.clock(), int(expires) + 1,
                len(old_keys) if old_member else 0, old_member or "", "" if seq is None else seq]
        try:
            member = self.link.call(lambda c: c.eval(_RESERVE_LUA, 1 + len(zkeys), SEQ_KEY, *zkeys, *args))
        except ConnectionError:
            held = before if old_member else (tuple(keys), None, None)  # what Redis still holds, for release
        else:
            held = (tuple(keys), member, _parse_member(member)[1])
        with self._lock:
            self._held[rid] = held

    def release(self, rid: str) -> None:
        self.local.release(rid)
        with self._lock:
            held = self._held.pop(rid, None)
        if held is None or held[1] is None:
            return

        def drop(c):
            p = c.pipeline(transaction=False)
            for k in held[0]:
                p.zrem(self._zkey(k), held[1])
            return p.execute()

        try:
            self.link.call(drop)
        except ConnectionError:
            pass  # lapses by its score; until then other replicas count it, which errs on the safe side

    def in_flight_many(self, keys: Sequence[str], asker: str | None = None) -> dict[str, float]:
        if not keys:
            return {}
        now = self.local.clock()

        def read(c):
            p = c.pipeline(transaction=False)
            for k in keys:
                p.zrangebyscore(self._zkey(k), now, "+inf")
            return p.execute()

        try:
            found = self.link.call(read)
        except ConnectionError:
            return self.local.in_flight_many(keys, asker)
        with self._lock:
            held = self._held.get(asker) if asker else None
        place = held[2] if held is not None and held[2] is not None else _LAST
        out = {}
        for k, members in zip(keys, found):
            total = 0.0
            for m in members:
                parsed = _parse_member(m)
                if parsed is not None and parsed[0] != asker and parsed[1] < place:
                    total += parsed[2]
            out[k] = total
        return out

    def add(self, keys: Sequence[tuple[str, float]], usd: float) -> None:
        if usd <= 0 or not keys:
            return
        self.local.add(keys, usd)

        def incr(c):
            p = c.pipeline(transaction=False)
            for k, exp in keys:
                p.incrbyfloat(PREFIX + k, usd)
                p.expireat(PREFIX + k, int(exp))
            return p.execute()

        try:
            self.link.call(incr)
        except ConnectionError:
            with self._lock:
                for k, exp in keys:
                    prev = self._pending.get(k, (0.0, exp))[0]
                    self._pending[k] = (prev + usd, exp)
                    self._seen[k] = self._seen.get(k, 0.0)

    def _flush(self) -> None:
        with self._lock:
            todo, self._pending = self._pending, {}

        def push(c):
            p = c.pipeline(transaction=False)
            for k, (usd, exp) in todo.items():
                p.incrbyfloat(PREFIX + k, usd)
                p.expireat(PREFIX + k, int(exp))
            return p.execute()

        if todo:
            try:
                push(self.link.client)
            except Exception:  # noqa: BLE001 -- still down after all: keep the deltas for the next try
                with self._lock:
                    for k, (usd, exp) in todo.items():
                        prev = self._pending.get(k, (0.0, exp))[0]
                        self._pending[k] = (prev + usd, exp)

    def get_many(self, keys: Sequence[str]) -> dict[str, float]:
        if not keys:
            return {}
        try:
            vals = self.link.call(lambda c: c.mget([PREFIX + k for k in keys]))
        except ConnectionError:
            local = None
            with self._lock:
                out = {}
                for k in keys:
                    if k in self._seen:
                        out[k] = self._seen[k] + self._pending.get(k, (0.0, 0.0))[0]
                    else:
                        local = local or self.local.get_many(keys)
                        out[k] = local[k]
            return out
        out = {k: float(v) if v is not None else 0.0 for k, v in zip(keys, vals)}
        with self._lock:
            self._seen.update(out)
            for k, (usd, _) in self._pending.items():
                if k in out:
                    out[k] += usd
        return out

    def health(self) -> dict[str, Any]:
        return {"backend": "redis", **self.link.health(), "pending_keys": len(self._pending)}


class RedisSessions:
    """Session stickiness in Redis: one key per (client, policy, session), expiring after a day idle."""

    def __init__(self, link: RedisLink, ttl_s: int = SESSION_TTL_S):
        self.link = link
        self.ttl_s = int(ttl_s)
        self.fallback = SessionStore(ttl_s=ttl_s)

    @staticmethod
    def _key(key: tuple) -> str:
        return PREFIX + "session:" + json.dumps(list(key), separators=(",", ":"))

    def get(self, key: tuple) -> str | None:
        try:
            return self.link.call(lambda c: c.get(self._key(key)))
        except ConnectionError:
            return self.fallback.get(key)

    def set(self, key: tuple, slot: str) -> None:
        self.fallback.set(key, slot)
        try:
            self.link.call(lambda c: c.set(self._key(key), slot, ex=self.ttl_s))
        except ConnectionError:
            pass

    def __len__(self) -> int:
        return len(self.fallback)


def state_backends(audit_path: str | Path | None, redis_url: str | None, clock=time.time):
    """(spend store, session store, redis link or None) for a proxy process."""
    local = SqliteSpend(budget_db_path(audit_path), clock=clock)
    if not redis_url:
        return local, SessionStore(), None
    link = RedisLink(redis_url)
    return RedisSpend(link, local), RedisSessions(link), link


def session_local_key(key: tuple) -> tuple:
    """The session-store key that marks a conversation as local-only (see governance.py)."""
    return ("__local_only__",) + tuple(key)
