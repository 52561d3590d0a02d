"""Budgets: the pure rule (periods, soft narrowing, hard refusal) and the proxy enforcing it on real
upstream usage, across a period boundary (injected clock), per client key, per slot, after a
restart, and without cutting a stream that already started."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import httpx
import pytest

from router.routing import budgets as B
from router.routing.costs import normalize_usage
from router.serving.governance import Governance

from .governance_env import CLOUD_KEY_ENV, POLICY, SLOTS, Clock, dest, write_pool
from .proxy_env import audit_for, make_registry, serve_api
from .upstream_stub import UpstreamStub

EVENING = datetime(2026, 12, 31, 23, 59, 0, tzinfo=UTC).timestamp()  # a minute before day AND month end
USAGE = {"prompt_tokens": 1000, "completion_tokens": 1000, "total_tokens": 2000}
MID_COST = (1000 * 0.5 + 1000 * 1.5) / 1e6  # cloud-mid at USAGE: $0.002


class S:  # a slot-like for the pure tests
    def __init__(self, name, cin, cout):
        self.name, self.cost_per_m_input_tokens, self.cost_per_m_output_tokens = name, cin, cout


POOL_SLOTS = [S(n, cin, cout) for n, _, cin, cout, _ in SLOTS]


def test_periods_are_utc_days_and_months_including_december():
    pid, start, end = B.period_bounds("day", EVENING)
    assert pid == "2026-12-31" and end - EVENING == 60 and end - start == 86400
    pid, start, end = B.period_bounds("month", EVENING)
    assert pid == "2026-12" and end == datetime(2027, 1, 1, tzinfo=UTC).timestamp()
    assert B.period_bounds("month", end)[0] == "2027-01"


def test_hard_cap_refuses_until_the_period_resets():
    rules = [B.BudgetRule(scope="policy", period="day", usd=1.0)]
    spent = {"policy:p:day:2026-12-31": 1.0}
    bp = B.plan(rules, "p", None, POOL_SLOTS, EVENING, lambda k: spent.get(k, 0.0))
    assert bp.refused is not None and bp.retry_after_s == 60
    nxt = B.plan(rules, "p", None, POOL_SLOTS, EVENING + 61, lambda k: spent.get(k, 0.0))
    assert nxt.refused is None and nxt.states[0].spent == 0.0


def test_soft_cap_narrows_to_cheaper_slots_as_it_nears():
    rules = [B.BudgetRule(scope="policy", period="month", usd=10.0, mode="soft", soft_at=0.5)]
    kept = {}
    for spent in (0.0, 4.9, 6.0, 8.0, 10.0, 50.0):
        bp = B.plan(rules, "p", None, POOL_SLOTS, EVENING, lambda k, spent=spent: spent)
        assert bp.refused is None
        kept[spent] = [s.name for s in POOL_SLOTS if s.name not in bp.removed]
    assert kept[0.0] == kept[4.9] == [s.name for s in POOL_SLOTS]
    assert len(kept[6.0]) == 3 and "cloud-best" not in kept[6.0]
    assert len(kept[8.0]) == 2 and kept[10.0] == kept[50.0] == ["onprem-small"]
    bp = B.plan(rules, "p", None, POOL_SLOTS, EVENING, lambda k: 8.0)
    assert "cap near" in bp.reason() and "80%" in bp.reason()


def test_client_and_slot_caps_count_only_their_own_spend():
    rules = [B.BudgetRule(scope="client", name="alice", period="day", usd=1),
             B.BudgetRule(scope="client", period="day", usd=5),
             B.BudgetRule(scope="slot", name="cloud-best", period="day", usd=2)]
    spent = {"client:p:alice:day:2026-12-31": 1.5, "slot:p:cloud-best:day:2026-12-31": 2.0}
    alice = B.plan(rules, "p", "alice", POOL_SLOTS, EVENING, lambda k: spent.get(k, 0.0))
    assert alice.refused is not None and alice.refused.rule.name == "alice"
    bob = B.plan(rules, "p", "bob", POOL_SLOTS, EVENING, lambda k: spent.get(k, 0.0))
    assert bob.refused is None and list(bob.removed) == ["cloud-best"]
    assert len(bob.states) == 2  # alice's named cap does not concern bob


def test_usage_bills_reasoning_tokens():
    # Reasoning is a share of completion_tokens (OpenAI's convention): billed once, recorded apart.
    inside = normalize_usage({"prompt_tokens": 10, "completion_tokens": 50,
                              "completion_tokens_details": {"reasoning_tokens": 40}})
    assert inside == {"prompt_tokens": 10, "completion_tokens": 50, "reasoning_tokens": 40}
    assert normalize_usage(inside) == inside  # normalizing twice never bills twice


# ---- through the proxy ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stubs():
    with UpstreamStub() as local, UpstreamStub() as cloud:
        yield local, cloud


@pytest.fixture(autouse=True)
def _env(stubs, monkeypatch):
    for s in stubs:
        s.reset()
        for name, *_ in SLOTS:
            s.behave(dest(name), usage=dict(USAGE), answer="one two three four five six seven eight")
    monkeypatch.setenv(CLOUD_KEY_ENV, "cloud-test-key")


class Proxy:
    def __init__(self, stubs, folder, budgets, clock, audit=None, keys=None):
        self.reg = make_registry(write_pool(folder, stubs[0].base_url, stubs[1].base_url, budgets=budgets,
                                            sensitive=[]))
        names = {k: n for n, k in (keys or {}).items()}
        self.gov = Governance.create(audit, redis_url="", clock=clock, key_names=names)
        self.srv = serve_api(self.reg, audit_log=audit, api_keys=tuple(names), backoff=0.01, governance=self.gov)
        self.http = httpx.Client(base_url=self.srv.url, timeout=60)

    def chat(self, model=POLICY, key=None, api="openai", **body):
        h = {"Authorization": f"Bearer {key}"} if key else {}
        msgs = [{"role": "user", "content": "What is the capital of France?"}]
        if api == "anthropic":
            return self.http.post("/v1/messages", headers=h, json={"model": model, "max_tokens": 50,
                                                                    "messages": msgs, **body})
        return self.http.post("/v1/chat/completions", headers=h, json={"model": model, "messages": msgs, **body})

    def close(self):
        self.http.close()
        self.srv.stop()
        self.gov.spend.close()


@pytest.fixture
def make_proxy(stubs, tmp_path):
    made = []

    def make(budgets, clock, audit=None, keys=None):
        p = Proxy(stubs, tmp_path, budgets, clock, audit, keys)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def test_hard_cap_429_with_retry_after_in_both_shapes_then_resets_at_midnight(make_proxy, stubs):
    clock = Clock(EVENING)
    p = make_proxy([{"scope": "policy", "period": "day", "usd": 0.005, "mode": "hard"}], clock)
    for _ in range(3):  # 3 x $0.002 on the pinned slot: the third call crosses the cap
        assert p.chat("cloud-mid").status_code == 200
    r = p.chat("cloud-mid")
    assert r.status_code == 429 and r.headers["retry-after"] == "60"
    err = r.json()["error"]
    assert err["code"] == "budget_exceeded" and "policy day $0.005 hard" in err["message"]
    assert r.json()["governance"]["budget"]["caps"][0]["spent_usd"] == pytest.approx(3 * MID_COST)
    a = p.chat(api="anthropic")
    assert a.status_code == 429 and a.json()["error"]["type"] == "rate_limit_error" and a.headers["retry-after"]
    calls = len(stubs[1].calls()) + len(stubs[0].calls())
    assert calls == 3  # refused requests never reached an upstream
    clock.now += 61  # past midnight UTC: a new day
    assert p.chat("cloud-mid").status_code == 200
    b = p.http.get("/v1/budgets").json()["data"][0]
    assert b["spent_usd"] == pytest.approx(MID_COST) and b["cap_usd"] == 0.005 and b["resets_in_s"] == 86400 - 1


def test_soft_cap_narrows_the_routed_pool_and_says_so(make_proxy):
    clock = Clock(EVENING)
    p = make_proxy([{"scope": "policy", "period": "month", "usd": 0.004, "mode": "soft", "soft_at": 0.5}], clock)
    first = p.chat(tolerance=0).json()["router"]
    assert "budget" not in first.get("governance", {}) or not first["governance"]["budget"]["removed"]
    assert p.chat("cloud-mid").status_code == 200  # $0.002 + first call's cost: past 50 % of the cap
    r = p.chat(tolerance=0)
    assert r.status_code == 200
    info = r.json()["router"]
    removed = info["governance"]["budget"]["removed"]
    assert "cloud-best" in removed and "cap near" in removed["cloud-best"]
    assert info["selected"] not in removed and r.headers["x-router-budget"] == "narrowed"
    for _ in range(2):
        p.chat("cloud-mid")
    last = p.chat(tolerance=0).json()["router"]  # at the cap: the cheapest slot only, never a refusal
    assert last["selected"] == "onprem-small" and last["candidates"] == ["onprem-small"]


def test_client_caps_per_named_key(make_proxy):
    clock = Clock(EVENING)
    keys = {"alice": "key-alice", "bob": "key-bob"}
    p = make_proxy([{"scope": "client", "name": "alice", "period": "day", "usd": 0.003}], clock, keys=keys)
    assert p.chat("cloud-mid", key="key-alice").status_code == 200
    assert p.chat("cloud-mid", key="key-alice").status_code == 200
    assert p.chat("cloud-mid", key="key-alice").status_code == 429
    assert p.chat("cloud-mid", key="key-bob").status_code == 200
    assert p.http.get("/v1/budgets").status_code == 401  # auth-protected
    mine = p.http.get("/v1/budgets", headers={"Authorization": "Bearer key-alice"}).json()
    assert mine["client"] == "alice" and mine["data"][0]["reached"] is True
    theirs = p.http.get("/v1/budgets", headers={"Authorization": "Bearer key-bob"}).json()
    assert theirs["data"] == []  # alice's cap is not bob's business


def test_slot_cap_takes_the_slot_out_and_refuses_pinning_it(make_proxy):
    clock = Clock(EVENING)
    p = make_proxy([{"scope": "slot", "name": "cloud-best", "period": "day", "usd": 0.01}], clock)
    assert p.chat("cloud-best").status_code == 200  # $0.04: over its cap
    r = p.chat(tolerance=0, models=["cloud-mid", "cloud-best"])
    assert r.status_code == 200 and r.json()["router"]["selected"] == "cloud-mid"
    assert "cloud-best" in r.json()["router"]["governance"]["budget"]["removed"]
    pinned = p.chat("cloud-best")
    assert pinned.status_code == 429 and "cloud-best" in pinned.json()["error"]["message"]


def test_spend_survives_a_restart(make_proxy, tmp_path):
    clock = Clock(EVENING)
    audit = tmp_path / "logs" / "audit.jsonl"
    rules = [{"scope": "policy", "period": "month", "usd": 0.005}]
    first = make_proxy(rules, clock, audit=audit)
    for _ in range(3):
        assert first.chat("cloud-mid").status_code == 200
    first.close()
    assert (tmp_path / "logs" / "audit.spend.sqlite").exists()
    second = make_proxy(rules, clock, audit=audit)
    assert second.http.get("/v1/budgets").json()["data"][0]["spent_usd"] == pytest.approx(3 * MID_COST)
    assert second.chat("cloud-mid").status_code == 429


def test_reasoning_tokens_are_billed_and_audited(make_proxy, stubs, tmp_path):
    clock = Clock(EVENING)
    audit = tmp_path / "r" / "audit.jsonl"
    p = make_proxy([{"scope": "policy", "period": "day", "usd": 100}], clock, audit=audit)
    stubs[1].behave(dest("cloud-mid"), usage={"prompt_tokens": 1000, "completion_tokens": 1000,
                                              "completion_tokens_details": {"reasoning_tokens": 900}})
    r = p.chat("cloud-mid")
    line = audit_for(audit, r.json()["router"]["request_id"])
    assert line["usage"] == {"prompt_tokens": 1000, "completion_tokens": 1000, "reasoning_tokens": 900}
    assert p.http.get("/v1/budgets").json()["data"][0]["spent_usd"] == pytest.approx(MID_COST)


def _stream_in_background(p, model: str, **body):
    """A pinned streaming call on a thread; `got` gets its status and whole body once it ends."""
    got: dict = {}

    def stream():
        with p.http.stream("POST", "/v1/chat/completions",
                           json={"model": model, "stream": True,
                                 "messages": [{"role": "user", "content": "count"}], **body}) as r:
            got["status"] = r.status_code
            got["body"] = "".join(r.iter_text())

    t = threading.Thread(target=stream)
    t.start()
    return t, got


def test_a_cap_reached_mid_stream_does_not_cut_the_stream(make_proxy, stubs):
    clock = Clock(EVENING)
    p = make_proxy([{"scope": "policy", "period": "day", "usd": 0.003}], clock)
    words = " ".join(f"w{i}" for i in range(30))
    # onprem-big's call is priced in millionths: its reservation leaves the cap to cloud-mid's calls
    stubs[0].behave(dest("onprem-big"), usage=dict(USAGE), answer=words, chunk_delay=0.05)
    t, got = _stream_in_background(p, "onprem-big")
    time.sleep(0.4)  # the stream has started; now spend past the cap elsewhere
    assert p.chat("cloud-mid").status_code == 200 and p.chat("cloud-mid").status_code == 200
    assert p.chat("cloud-mid").status_code == 429
    t.join(30)
    assert got["status"] == 200 and "w29" in got["body"] and got["body"].rstrip().endswith("[DONE]")


def _estimate(p, slot_name: str, text: str, max_output: int | None = None) -> float:
    from router.serving.pipeline import call_estimate

    router, _ = p.reg.resolve(POLICY)
    slot = next(s for s in router.pool.models if s.name == slot_name)
    return call_estimate(router, text, max_output)(slot)


def test_a_call_in_flight_holds_its_estimate_until_it_is_billed(make_proxy, stubs):
    clock = Clock(EVENING)
    p = make_proxy([{"scope": "policy", "period": "day", "usd": 0.0004}], clock)
    est = _estimate(p, "cloud-best", "count")
    assert 0.0004 <= est < 0.04  # the stub bills $0.04: the estimate is the checkpoint's mean answer length
    stubs[1].behave(dest("cloud-best"), usage=dict(USAGE), answer=" ".join(f"w{i}" for i in range(30)),
                    chunk_delay=0.05)
    t, got = _stream_in_background(p, "cloud-best")
    time.sleep(0.4)
    cap = p.http.get("/v1/budgets").json()["data"][0]
    assert cap["spent_usd"] == 0 and cap["in_flight_usd"] == pytest.approx(est) and cap["reached"] is True
    r = p.chat("cloud-mid")  # nothing is settled yet, but the stream's estimate already fills the cap
    assert r.status_code == 429 and "in flight" in r.json()["error"]["message"]
    t.join(30)
    assert got["status"] == 200 and got["body"].rstrip().endswith("[DONE]")  # its own reservation never cut it
    cap = p.http.get("/v1/budgets").json()["data"][0]
    assert cap["in_flight_usd"] == 0 and cap["spent_usd"] == pytest.approx(0.04)  # billed at its real usage


def test_a_burst_cannot_all_pass_a_cap_none_of_it_has_reached(make_proxy, stubs):
    """20 concurrent calls against a cap worth ~3 of them: without reservations all 20 passed the
    gate (none had settled), and spent many times the cap."""
    from concurrent.futures import ThreadPoolExecutor

    clock = Clock(EVENING)
    question = "What is the capital of France?"
    probe = make_proxy([], clock)
    est = _estimate(probe, "cloud-mid", question)
    probe.close()
    cap = 3.5 * est
    p = make_proxy([{"scope": "policy", "period": "day", "usd": cap}], clock)
    usage = {"prompt_tokens": 8, "completion_tokens": 21}  # about what the estimate expects
    stubs[1].behave(dest("cloud-mid"), usage=usage, answer="Paris", delay=1.0)
    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(lambda _: p.chat("cloud-mid").status_code, range(20)))
    assert set(codes) <= {200, 429}
    assert 1 <= codes.count(200) <= 4, codes
    spent = p.http.get("/v1/budgets").json()["data"][0]
    assert spent["in_flight_usd"] == 0 and spent["spent_usd"] <= 2 * cap
    assert len(stubs[1].calls(dest("cloud-mid"))) == codes.count(200)


def test_routed_reservation_narrows_to_the_chosen_slot(make_proxy, stubs):
    """Before the encoder pass the dearest allowed slot is held; once routed, the chosen one."""
    clock = Clock(EVENING)
    p = make_proxy([{"scope": "policy", "period": "day", "usd": 100}], clock)
    stubs[0].behave(dest("onprem-big"), usage=dict(USAGE), answer="Paris", delay=1.0)
    seen: dict = {}

    def call():
        seen["r"] = p.chat(tolerance=1.0, models=["onprem-big", "cloud-best"])

    t = threading.Thread(target=call)
    t.start()
    time.sleep(0.6)
    flying = p.http.get("/v1/budgets").json()["data"][0]["in_flight_usd"]
    t.join(30)
    info = seen["r"].json()["router"]
    assert seen["r"].status_code == 200 and info["selected"] == "onprem-big"
    chosen = info["expected_cost_usd"]  # the decision's estimate for the slot it chose
    dearest = _estimate(p, "cloud-best", "What is the capital of France?")
    assert flying == pytest.approx(chosen, abs=1e-8) and 0 < flying < dearest / 100
    assert p.http.get("/v1/budgets").json()["data"][0]["in_flight_usd"] == 0


def test_a_hold_counts_no_more_output_than_max_tokens_allows(make_proxy, stubs):
    """A request that caps its answer at 3 tokens cannot be billed for the mean answer length."""
    clock = Clock(EVENING)
    p = make_proxy([{"scope": "policy", "period": "day", "usd": 100}], clock)
    unbounded, bounded = _estimate(p, "cloud-best", "count"), _estimate(p, "cloud-best", "count", 3)
    assert bounded < unbounded / 2  # the checkpoint expects far more than 3 output tokens
    for field in ("max_tokens", "max_completion_tokens"):
        stubs[1].behave(dest("cloud-best"), usage=dict(USAGE), answer="w1 w2 w3", delay=1.0)
        t, got = _stream_in_background(p, "cloud-best", **{field: 3})
        time.sleep(0.4)
        flying = p.http.get("/v1/budgets").json()["data"][0]["in_flight_usd"]
        t.join(30)
        assert got["status"] == 200 and flying == pytest.approx(bounded), field


def test_a_failover_moves_the_hold_to_the_slot_that_answers(make_proxy, stubs):
    """Routed to the cheap slot, which fails: while the dear fallback runs, the dear call is held."""
    clock = Clock(EVENING)
    p = make_proxy([{"scope": "policy", "period": "day", "usd": 100}], clock)
    body, question = {"tolerance": 1.0, "models": ["onprem-big", "cloud-best"]}, "What is the capital of France?"
    route = p.http.post("/v1/route", json={"policy": POLICY, "question": question, **body}).json()
    cost = {m["name"]: m["expected_cost_usd"] for m in route["models"]}
    assert route["chosen"] == "onprem-big" and cost["cloud-best"] > 100 * cost["onprem-big"]
    stubs[0].behave(dest("onprem-big"), fail_status=500, fail_times=100)
    stubs[1].behave(dest("cloud-best"), usage=dict(USAGE), answer="Paris", delay=1.0)
    calls = {"chat": lambda: p.chat(**body), "chat stream": lambda: p.chat(stream=True, **body),
             "responses": lambda: p.http.post("/v1/responses", json={"model": POLICY, "input": question, **body})}
    for name, call in calls.items():
        seen: dict = {}
        t = threading.Thread(target=lambda seen=seen, call=call: seen.update(r=call()))
        t.start()
        time.sleep(0.7)  # onprem-big has failed its tries; cloud-best is answering
        flying = p.http.get("/v1/budgets").json()["data"][0]["in_flight_usd"]
        t.join(30)
        assert seen["r"].status_code == 200 and "Paris" in seen["r"].text, name
        assert flying == pytest.approx(cost["cloud-best"], rel=1e-6), name
        assert p.http.get("/v1/budgets").json()["data"][0]["in_flight_usd"] == 0


def test_sqlite_reservations_replace_release_lapse_and_keep_their_place(tmp_path):
    from router.serving.state import SqliteSpend

    clock = Clock(1000.0)
    db = SqliteSpend(str(tmp_path / "s.sqlite"), clock=clock)
    db.reserve("r1", ["a", "b"], 0.5, expires=1100)
    db.reserve("r2", ["a"], 0.25, expires=1050)
    assert db.in_flight_many(["a", "b", "c"]) == {"a": 0.75, "b": 0.5, "c": 0.0}
    assert db.in_flight_many(["a"], asker="r2") == {"a": 0.5}  # r1 was placed first: r2 counts it
    assert db.in_flight_many(["a"], asker="r1") == {"a": 0.0}  # r2 came later: r1 does not
    db.reserve("r1", ["a"], 0.1, expires=1100)  # narrowed: replaces what r1 held, on both keys
    assert db.in_flight_many(["a", "b"]) == {"a": pytest.approx(0.35), "b": 0.0}
    assert db.in_flight_many(["a"], asker="r2") == {"a": pytest.approx(0.1)}  # and keeps its place
    assert db.in_flight_many(["a"], asker="nobody") == {"a": pytest.approx(0.35)}  # no hold: counts all
    clock.now = 1060  # r2 lapsed (its replica died mid-call): it stops holding budget
    assert db.in_flight_many(["a"]) == {"a": pytest.approx(0.1)}
    db.release("r1")
    assert db.in_flight_many(["a"]) == {"a": 0.0}
    db.close()
    again = SqliteSpend(str(tmp_path / "s.sqlite"), clock=clock)  # reservations are shared on one host
    again.reserve("r3", ["a"], 1.0, expires=2000)
    third = SqliteSpend(str(tmp_path / "s.sqlite"), clock=clock)
    assert third.in_flight_many(["a"]) == {"a": 1.0}
    again.close()
    third.close()


def test_sqlite_holds_from_an_older_file_count_as_placed_first(tmp_path):
    """A spend file written before holds had a place in line: its holds stay counted by every new one."""
    import sqlite3

    from router.serving.state import SqliteSpend

    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE inflight (rid TEXT NOT NULL, key TEXT NOT NULL, usd REAL NOT NULL, "
                "expires REAL NOT NULL, PRIMARY KEY (rid, key))")
    old.execute("INSERT INTO inflight VALUES ('old', 'a', 0.5, 5000)")
    old.commit()
    old.close()
    db = SqliteSpend(str(path), clock=Clock(1000.0))
    db.reserve("new", ["a"], 0.25, expires=2000)
    assert db.in_flight_many(["a"], asker="new") == {"a": 0.5}
    assert db.in_flight_many(["a"], asker="old") == {"a": 0.0}
    db.close()


def test_racing_for_the_last_dollars_the_first_placed_gets_them(stubs, tmp_path):
    """Two processes share the spend file, and less than one call's estimate is left under the cap.
    Each holds its estimate, then reads the caps (in one process the event loop never interleaves
    the two steps; across processes or replicas it does). When every hold counted every other, both
    refused each other; counting only the holds placed before one's own, the first one passes."""
    clock = Clock(EVENING)
    reg = make_registry(write_pool(tmp_path, stubs[0].base_url, stubs[1].base_url,
                                   budgets=[{"scope": "policy", "period": "day", "usd": 1.0}], sensitive=[]))
    router, _ = reg.resolve(POLICY)
    pool = router.pool
    audit = tmp_path / "audit.jsonl"
    one, two = (Governance.create(audit, redis_url="", clock=clock) for _ in range(2))
    one.spend.add(B.spend_keys(pool.policy, "cloud-mid", None, clock()), 0.7)
    one.reserve(pool, None, "first", 0.4)
    two.reserve(pool, None, "second", 0.4)
    assert two.budget_plan(pool, None, pool.models, asker="second").refused is not None
    assert one.budget_plan(pool, None, pool.models, asker="first").refused is None
    one.reserve(pool, None, "first", 0.1, slot="cloud-mid")  # narrowed once routed: still first in line
    assert one.budget_plan(pool, None, pool.models, asker="first").refused is None
    two.release("second")
    assert two.budget_plan(pool, None, pool.models, asker="third").refused is None  # 0.7 + 0.1 < 1.0
    one.spend.close()
    two.spend.close()


def test_concurrent_holds_on_one_file_each_count_exactly_those_placed_before(tmp_path):
    """16 threads on two connections to one spend file each hold $1 and then read: the i-th placed
    counts exactly i dollars, so the counts are 0..15, each once."""
    from concurrent.futures import ThreadPoolExecutor

    from router.serving.state import SqliteSpend

    stores = [SqliteSpend(str(tmp_path / "shared.sqlite"), clock=Clock(1000.0)) for _ in range(2)]

    def hold_then_read(i: int) -> float:
        stores[i % 2].reserve(f"c{i}", ["a"], 1.0, expires=2000)
        return stores[i % 2].in_flight_many(["a"], asker=f"c{i}")["a"]

    with ThreadPoolExecutor(16) as pool:
        seen = list(pool.map(hold_then_read, range(16)))
    assert sorted(seen) == [float(i) for i in range(16)], seen
    for s in stores:
        s.close()


def test_the_budget_benchmark_leaves_only_the_other_requests_holds(tmp_path):
    from benchmarks.bench_budgets import GATE_KEYS, time_store
    from router.serving.state import SqliteSpend

    store = SqliteSpend(str(tmp_path / "bench.sqlite"))
    r = time_store(store, requests=5, others=3)
    assert 0 < r["p50_ms"] <= r["p90_ms"]
    assert store.in_flight_many(GATE_KEYS) == {k: pytest.approx(0.03) for k in GATE_KEYS}
    assert store.get_many(GATE_KEYS)[GATE_KEYS[0]] == pytest.approx(55 * 0.011)  # 50 warm-up + 5 timed
    store.close()


def test_in_flight_counts_toward_hard_and_soft_caps():
    rules = [B.BudgetRule(scope="policy", period="day", usd=1.0)]
    spent = {"policy:p:day:2026-12-31": 0.6}
    flying = {"policy:p:day:2026-12-31": 0.4}
    bp = B.plan(rules, "p", None, POOL_SLOTS, EVENING, lambda k: spent.get(k, 0.0), lambda k: flying.get(k, 0.0))
    assert bp.refused is not None and bp.refused.spent_text() == "$0.6000 + $0.4000 in flight of $1"
    assert B.plan(rules, "p", None, POOL_SLOTS, EVENING, lambda k: spent.get(k, 0.0)).refused is None
    soft = [B.BudgetRule(scope="policy", period="day", usd=1.0, mode="soft", soft_at=0.5)]
    bp = B.plan(soft, "p", None, POOL_SLOTS, EVENING, lambda k: 0.2, lambda k: 0.8)
    assert bp.refused is None and len(bp.removed) == len(POOL_SLOTS) - 1


@pytest.mark.parametrize("api", ["chat", "chat stream", "responses"])
def test_a_failover_does_not_call_a_slot_whose_cap_was_reached_since_routing(make_proxy, stubs, api):
    """Routed to onprem-big, which fails slowly; meanwhile a pinned call fills cloud-best's own cap.
    The failover reads the caps again for its fallback: cloud-best is not called, and the attempts
    say why."""
    clock = Clock(EVENING)
    p = make_proxy([{"scope": "slot", "name": "cloud-best", "period": "day", "usd": 0.03}], clock)
    body = {"tolerance": 1.0, "models": ["onprem-big", "cloud-best"]}
    stubs[0].behave(dest("onprem-big"), fail_status=500, fail_times=-1, delay=0.4)
    call = {"chat": lambda: p.chat(**body), "chat stream": lambda: p.chat(stream=True, **body),
            "responses": lambda: p.http.post("/v1/responses", json={"model": POLICY, "input": "What is 2+2?",
                                                                    **body})}[api]
    seen: dict = {}
    t = threading.Thread(target=lambda: seen.update(r=call()))
    t.start()
    time.sleep(0.2)  # routed to onprem-big and waiting on it
    assert p.chat("cloud-best").status_code == 200  # bills $0.04: cloud-best's day cap is reached
    calls_before = len(stubs[1].calls(dest("cloud-best")))
    t.join(30)
    r = seen["r"]
    assert r.status_code == 502, r.text
    attempts = r.json()["router"]["attempts"]
    skipped = [a for a in attempts if a["slot"] == "cloud-best"]
    assert len(skipped) == 1 and skipped[0]["status"] is None
    assert "not tried" in skipped[0]["error"] and "cap" in skipped[0]["error"]
    assert len(stubs[1].calls(dest("cloud-best"))) == calls_before  # no call went to cloud-best
    assert p.http.get("/v1/budgets").json()["data"][0]["in_flight_usd"] == 0
