"""The playground session stays consistent when things go wrong: a failed route keeps the previous
query's restriction, controls moved during a streaming answer do not rewrite its record, malformed
upstream usage is costed as an estimate, and the session totals count each query once.

Real encoder and checkpoint, real HTTP to loopback stubs."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from router.errors import RouterError
from router.routing import costs
from router.routing.pool import load_pool
from router.routing.router import PrefillRouter
from router.ui import playground, views

from .governance_env import CLOUD, CLOUD_KEY_ENV, LOCAL, write_pool
from .ui_helpers import stub_pool_yaml

EMAIL = "jane.doe@example.com"


@pytest.fixture(scope="module")
def gov_router(stubs, tmp_path_factory):
    return PrefillRouter(load_pool(write_pool(tmp_path_factory.mktemp("st"), stubs[0].base_url, stubs[1].base_url)))


@pytest.fixture
def stub_router(tmp_path, stubs):
    stubs[0].reset()
    return PrefillRouter(load_pool(stub_pool_yaml(tmp_path, stubs[0].base_url)))


async def _final(router, session):
    async with httpx.AsyncClient() as client:
        return [a async for a in playground.send(router, session, client)][-1]


def test_a_failed_route_keeps_the_previous_querys_restriction(gov_router, stubs, monkeypatch):
    """The failed route used to clear the gate first: the sensitive query on screen then re-decided
    and sent as unrestricted, to a cloud slot, with the raw email in the record."""
    monkeypatch.setenv(CLOUD_KEY_ENV, "k")
    for s in stubs:
        s.reset()
    s = playground.Session()
    first = playground.route(gov_router, s, f"Write to {EMAIL} about the invoice.", 0.0, None)
    assert first.chosen in LOCAL
    with pytest.raises(RouterError):
        playground.route(gov_router, s, "", 0.0, None)
    again = playground.redecide(gov_router, s, 1.0, sorted(LOCAL | CLOUD))
    assert again.chosen in LOCAL
    ans = asyncio.run(_final(gov_router, s))
    assert ans.error is None and ans.slot in LOCAL and stubs[1].calls() == []
    assert EMAIL not in str(s.records)


def test_moving_the_slider_while_an_answer_streams_keeps_the_sent_record(stub_router, stubs):
    stub = stubs[0]
    stub.behave("stub/small-model", answer="one two three four five six", chunk_delay=0.05)
    stub.behave("stub/large-model", answer="one two three four five six", chunk_delay=0.05)
    s = playground.Session()
    sent = playground.route(stub_router, s, "What is 2 + 2?", 1.0, None)
    moved = {}

    async def go():
        async with httpx.AsyncClient() as client:
            async for ans in playground.send(stub_router, s, client):
                if not moved and ans.text:
                    moved["r"] = playground.redecide(stub_router, s, 0.0, None)
            return ans

    ans = asyncio.run(go())
    assert ans.slot == sent.chosen and ans.error is None
    assert moved["r"].tolerance == 0.0
    by_id = {r["request_id"]: r for r in s.records}
    answered = by_id[ans.request_id]
    assert answered["tolerance"] == 1.0 and answered["chosen"] == sent.chosen and answered["selected"] == sent.chosen
    assert answered["usage"]["completion_tokens"] > 0
    other = [r for r in s.records if r["request_id"] != ans.request_id]
    assert len(other) == 1 and other[0]["tolerance"] == 0.0 and other[0].get("selected") is None
    assert not s.sent  # the decision on screen now (tolerance 0) has not been sent
    assert costs.session_stats(s.records).queries == 1  # one query, answered once


@pytest.mark.parametrize("usage", [{"prompt_tokens": "x", "completion_tokens": 3},
                                   {"prompt_tokens": -50, "completion_tokens": 3},
                                   {"prompt_tokens": 5, "completion_tokens": 1e12},
                                   {"prompt_tokens": 5, "completion_tokens": 2.5}])
def test_malformed_upstream_usage_is_costed_as_an_estimate(stub_router, stubs, usage):
    stubs[0].behave("stub/small-model", answer="four", usage=usage)
    stubs[0].behave("stub/large-model", answer="four", usage=usage)
    s = playground.Session()
    playground.route(stub_router, s, "What is 2 + 2?", 1.0, None)
    ans = asyncio.run(_final(stub_router, s))
    assert ans.error is None and ans.text == "four" and ans.usage is None and ans.cost_usd is None
    rec = s.records[-1]
    assert rec["cost_basis"] == "estimate" and rec["expected_cost_usd"] >= 0


def test_sanitize_usage_keeps_valid_counts_and_extra_fields():
    good = {"prompt_tokens": "12", "completion_tokens": 3.0, "total_tokens": 99, "cost": 0.01,
            "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": "n/a"}}
    out = costs.sanitize_usage(good)
    assert out == {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 99, "cost": 0.01,
                   "prompt_tokens_details": {"cached_tokens": 4}}
    assert costs.normalize_usage(out) == {"prompt_tokens": 12, "completion_tokens": 3, "cached_tokens": 4}
    assert costs.sanitize_usage({"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": "?"})["total_tokens"] == 3
    for bad in ({"prompt_tokens": True, "completion_tokens": 1}, {"prompt_tokens": float("nan")}, "usage", [1],
                {"prompt_tokens": "²", "completion_tokens": 1}, {"prompt_tokens": "9" * 5000, "completion_tokens": 1}):
        assert costs.sanitize_usage(bad) is None and costs.normalize_usage(bad if isinstance(bad, dict) else None) \
            is None
    # a detail larger than the count it is part of is dropped, not billed
    assert "cached_tokens" not in costs.normalize_usage({"prompt_tokens": 2, "completion_tokens": 1,
                                                         "prompt_tokens_details": {"cached_tokens": 9}})


def test_session_totals_count_each_query_once_and_include_reviews():
    def rec(query, chosen, expected, selected=None, actual=None, review=None):
        r = {"query": query, "chosen": chosen, "expected_cost_usd": expected, "actual_cost_usd": actual,
             "baseline_cost_usd": 1.0, "baseline": "opus", "selected": selected}
        if review is not None:
            r["review"] = {"cost_usd": review}
        return r

    records = [rec("a", "cheap", 0.1), rec("a", "mid", 0.3),  # re-decided, never sent: the last one counts
               rec("b", "cheap", 0.1, selected="cheap", actual=0.05, review=0.02), rec("b", "mid", 0.3),  # sent, then moved
               rec("c", "cheap", 0.1, selected="cheap", actual=0.04), rec("c", "cheap", 0.1, selected="cheap",
                                                                          actual=0.06)]  # sent twice: paid twice
    st = costs.session_stats(records)
    assert st.queries == 4 and st.distribution == {"cheap": 3, "mid": 1}
    assert st.review_usd == pytest.approx(0.02)
    assert st.routed_usd == pytest.approx(0.3 + 0.05 + 0.04 + 0.06 + 0.02)
    assert st.baseline_usd == pytest.approx(4.0)
    assert "incl. $0.020000 reviews" in views.stats_html(st, {})


def test_money_and_threshold_are_written_the_usual_way():
    assert views.usd(-244.99) == "-$244.99" and views.usd(-0.5, 2) == "-$0.50" and views.usd(3.0) == "$3.00"
    assert views.threshold_text(0.4) == "0.400" and views.threshold_text(-0.326) == "below 0 (all qualify)"


def test_an_upload_error_names_the_file_not_the_servers_upload_folder(tmp_path):
    from router.errors import InputError
    from router.ui.uploads import read_upload

    folder = tmp_path / "gradio" / "0123abcd"
    folder.mkdir(parents=True)
    bad = folder / "questions.txt"
    bad.write_bytes(b"What is 2 + 2?\n\xff\xfe broken\n")
    with pytest.raises(InputError) as err:
        read_upload(playground.load_questions, str(bad), root=tmp_path / "gradio")
    assert "questions.txt" in str(err.value) and "not UTF-8" in str(err.value)
    assert str(tmp_path) not in str(err.value)


def test_an_unreachable_endpoint_is_said_once_in_words(tmp_path):
    from router.upstream.client import upstream_client

    from .serving import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    router = PrefillRouter(load_pool(stub_pool_yaml(tmp_path, url)))
    s = playground.Session()
    playground.route(router, s, "hello", 0.2, None)

    async def go():
        async with upstream_client() as client:
            return [a async for a in playground.send(router, s, client)][-1]

    ans = asyncio.run(go())
    assert f"cannot connect to 127.0.0.1:{port}" in ans.error and "ssl:default" not in ans.error
    html = views.answer_html(ans)
    assert f"Nothing answered at <code>{url}</code>" in html and "Missing:" not in html
