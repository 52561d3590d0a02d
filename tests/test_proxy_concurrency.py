"""200 requests at once, each with its own question and tolerance: every response must carry its
own decision (nothing shared between requests), even though their encoder passes are batched.
"""

from __future__ import annotations

import asyncio

import openai
import pytest

from .proxy_env import POLICY, SLOTS, dest, wait_audit_lines

N = 200
QUESTIONS = [
    "What is the capital of Australia?",
    "Write a SQL query that finds duplicate emails in a users table.",
    "Prove that the square root of 2 is irrational.",
    "Translate 'good morning' into French.",
    "Explain the difference between TCP and UDP in two sentences.",
]


def test_200_concurrent_requests_each_get_their_own_decision(stub, registry, server, audit_path):
    for name, *_ in SLOTS:
        stub.behave(dest(name), delay=0.05)
    router = registry.get(POLICY)
    scores = {q: router.score(q) for q in QUESTIONS}
    jobs = [(QUESTIONS[i % len(QUESTIONS)], round((i * 37 % 101) / 100, 2)) for i in range(N)]

    async def main():
        client = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0, timeout=300)
        try:
            return await asyncio.gather(*[
                client.chat.completions.with_raw_response.create(
                    model=POLICY, messages=[{"role": "user", "content": q}], extra_body={"tolerance": t},
                    extra_headers={"X-Test-Job": str(i)})
                for i, (q, t) in enumerate(jobs)])
        finally:
            await client.close()

    raws = asyncio.run(main())
    ids = set()
    for (q, t), raw in zip(jobs, raws):
        resp = raw.parse()
        info = resp.router
        expected = router.decide(scores[q], t)
        assert info["tolerance"] == t and float(raw.headers["x-router-tolerance"]) == t
        assert info["selected"] == info["chosen"] == expected.chosen == raw.headers["x-router-selected"]
        assert info["p_max"] == pytest.approx(expected.p_max, abs=1e-5)
        assert info["threshold"] == pytest.approx(expected.p_max - t, abs=1e-5)
        assert resp.model == dest(info["selected"])
        assert q[:50] in resp.choices[0].message.content  # the stub echoes this request's question
        ids.add(info["request_id"])
    assert len(ids) == N
    lines = wait_audit_lines(audit_path, N)
    assert len(lines) == N and {r["request_id"] for r in lines} == ids
    assert len(stub.calls()) == N
