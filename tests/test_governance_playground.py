"""The playground fails closed too: Route restricts the pool, Send and Auto review never reach a cloud
slot for a query that must stay on-prem (even when the decision on screen names one), the decision
and the Session tab say what the rules and budgets did."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from router.errors import GovernanceError
from router.routing.pool import load_pool
from router.routing.router import PrefillRouter
from router.serving.governance import Governance
from router.ui import playground, views

from .governance_env import CLOUD, CLOUD_KEY_ENV, LOCAL, SSN, Clock, dest, write_pool


@pytest.fixture(scope="module")
def router(stubs, tmp_path_factory):
    budgets = [{"scope": "policy", "period": "month", "usd": 10.0}]
    return PrefillRouter(load_pool(write_pool(tmp_path_factory.mktemp("pg"), stubs[0].base_url, stubs[1].base_url,
                                              budgets=budgets)))


@pytest.fixture(autouse=True)
def _clean(stubs, monkeypatch):
    for s in stubs:
        s.reset()
    monkeypatch.setenv(CLOUD_KEY_ENV, "k")


async def _send(router, session, gov=None, review=False):
    async with httpx.AsyncClient() as client:
        ans = [a async for a in playground.send(router, session, client, governance=gov)][-1]  # the final Answer
        rv = await playground.review_answer(router, session, client, ans) if review else None
    return ans, rv


def test_send_and_review_of_a_sensitive_query_stay_local(router, stubs):
    gov = Governance.create(None, redis_url="", clock=Clock(1_790_000_000))
    s = playground.Session()
    result = playground.route(router, s, f"My SSN is {SSN}. Which form?", 0.0, None, gov)
    assert result.chosen in LOCAL and result.governance["sensitive"]["rules"] == ["pii"]
    html = views.decision_html(result)
    assert "sensitive-notice" in html and "only local slots may answer" in html and SSN not in html
    assert all(row[-1] == "off (local only)" for row in views.cost_rows(result) if row[0] in CLOUD)
    again = playground.redecide(router, s, 1.0, sorted(LOCAL | CLOUD))  # the slider cannot undo it
    assert again.chosen in LOCAL
    ans, rv = asyncio.run(_send(router, s, gov, review=True))
    assert ans.error is None and ans.slot in LOCAL
    assert rv.judge == "onprem-big"  # the strongest local slot judges; the cloud one may not
    assert stubs[1].calls() == [], "the cloud stub received a call"
    assert {c["body"]["model"] for c in stubs[0].calls()} <= {dest(n) for n in LOCAL}
    assert len(stubs[0].calls()) == 2  # the answer and its local review
    assert SSN not in str(s.records) and "[REDACTED]" in s.records[-1]["query"]


def test_send_refuses_a_cloud_choice_even_if_the_screen_shows_one(router, stubs):
    s = playground.Session()
    playground.route(router, s, f"ssn {SSN}", 0.0, None)
    s.result = router.decide(s.scores, 0.0, sorted(CLOUD))  # as if the decision had been tampered with
    with pytest.raises(GovernanceError) as ei:
        asyncio.run(_send(router, s))
    assert ei.value.status == 403 and "cloud slot" in str(ei.value)
    assert stubs[0].calls() == [] and stubs[1].calls() == []


def test_block_rule_refuses_at_route_time(router, stubs):
    s = playground.Session()
    with pytest.raises(GovernanceError) as ei:
        playground.route(router, s, "-----BEGIN PRIVATE KEY-----\nMIIE", 0.5, None)
    assert "secrets" in str(ei.value) and s.result is None


def test_clean_query_goes_to_the_cloud_and_counts_against_the_budget(router, stubs):
    gov = Governance.create(None, redis_url="", clock=Clock(1_790_000_000))
    s = playground.Session()
    playground.route(router, s, "What is the capital of France?", 0.0, sorted(CLOUD), gov)
    ans, _ = asyncio.run(_send(router, s, gov))
    assert ans.slot in CLOUD and len(stubs[1].calls()) == 1 and ans.cost_usd > 0
    html = views.budgets_html(router.pool, gov)
    spent = gov.caps(router.pool, "playground")[0].spent
    assert spent == pytest.approx(ans.cost_usd) and "budgets" in html and "policy" in html
    assert "output-estimate" in views.decision_html(s.result)


def test_the_issue_case_ssn_with_mixed_local_at_tolerance_zero_stays_on_prem(default_router):
    """The report: an SSN routed with configs/mixed-local.yaml at tolerance 0 went to claude-opus-4-6-high."""
    from router.paths import CONFIG_DIR

    mixed = PrefillRouter(load_pool(CONFIG_DIR / "mixed-local.yaml"), encoder=default_router.encoder)
    q = "My social security number is 123-45-6789. Which tax form do I file?"
    s = playground.Session()
    assert playground.route(mixed, s, q, 0.0, None).chosen == "nemotron-3-nano-local"
    assert playground.route(mixed, playground.Session(), "Which tax form do I file?", 0.0, None).chosen != \
        "nemotron-3-nano-local"  # without the SSN the best predicted model is a cloud one


def test_send_rereads_the_caps_a_query_was_routed_under(router, stubs):
    """Routed under the cap, sent after another spend reached it: the send is refused, nothing is
    called, and no reservation is left behind; a send under the cap holds its estimate only while it runs."""
    from router.routing.budgets import spend_keys

    gov = Governance.create(None, redis_url="", clock=Clock(1_790_000_000))
    s = playground.Session()
    playground.route(router, s, "What is the capital of France?", 0.0, sorted(CLOUD), gov)
    gov.spend.add(spend_keys(router.pool.policy, "cloud-best", "playground", gov.clock()), 10.0)  # another tab
    with pytest.raises(GovernanceError) as ei:
        asyncio.run(_send(router, s, gov))
    assert ei.value.status == 429 and "since this query was routed" in str(ei.value)
    assert stubs[1].calls() == []
    cap = gov.caps(router.pool, "playground")[0]
    assert cap.in_flight == 0 and cap.spent == pytest.approx(10.0)

    fresh = Governance.create(None, redis_url="", clock=Clock(1_790_000_000))
    s2 = playground.Session()
    playground.route(router, s2, "What is the capital of France?", 0.0, sorted(CLOUD), fresh)
    stubs[1].behave(dest(s2.result.chosen), answer="Paris", chunk_delay=0.2)
    seen = []

    async def watch():
        async with httpx.AsyncClient() as client:
            async for _ in playground.send(router, s2, client, governance=fresh):
                seen.append(fresh.caps(router.pool, "playground")[0].in_flight)

    asyncio.run(watch())
    expected = s2.result.score(s2.result.chosen).expected_cost_usd
    assert seen and seen[0] == pytest.approx(expected) and expected > 0
    assert fresh.caps(router.pool, "playground")[0].in_flight == 0
