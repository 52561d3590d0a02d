"""Horizontal setup: two `python -m router serve` processes behind a small round-robin balancer.

The proxy is stateless apart from sessions (and budgets): any process gives the same decision for
the same request, each writes its own audit log and serves its own /metrics, and /health/ready
tells the balancer when a process may take traffic.
"""

from __future__ import annotations

import itertools
import subprocess
import sys

import httpx
import openai
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response

from .conftest import ROOT
from .metrics_helpers import scrape, total
from .proxy_env import POLICY, audit_lines, wait_audit_lines, write_pool
from .serving import ServerThread, free_port, wait_http

pytestmark = pytest.mark.slow

QUESTIONS = ["What is 2 + 2?", "Prove that there are infinitely many primes.",
             "Write a haiku about routers.", "Explain TCP slow start."]


def round_robin(backends: list[str]) -> FastAPI:
    """A minimal L7 balancer: each request goes to the next backend, headers and body passed through."""
    app = FastAPI()
    turn = itertools.cycle(backends)
    client = httpx.AsyncClient(timeout=60)

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def forward(path: str, request: Request):
        target = next(turn)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        r = await client.request(request.method, f"{target}/{path}", content=await request.body(), headers=headers)
        out = {k: v for k, v in r.headers.items() if k.lower() not in ("content-length", "content-encoding",
                                                                        "transfer-encoding", "connection")}
        out["x-backend"] = target
        return Response(r.content, status_code=r.status_code, headers=out)

    return app


def test_two_processes_behind_round_robin_decide_alike(tmp_path, stub):
    pool = write_pool(tmp_path, stub.base_url)
    procs, urls, audits = [], [], []
    try:
        for i in range(2):
            port, audit = free_port(), tmp_path / f"audit-{i}.jsonl"
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "router", "serve", "--config", str(pool), "--port", str(port),
                 "--audit-log", str(audit)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
            urls.append(f"http://127.0.0.1:{port}")
            audits.append(audit)
        for url, proc in zip(urls, procs):
            wait_http(f"{url}/health/ready", proc, timeout=300,
                      logs=lambda p=proc: p.stderr.read().decode()[-2000:] if p.poll() is not None else "")
        with ServerThread(round_robin(urls)) as lb:
            client = openai.OpenAI(base_url=f"{lb.url}/v1", api_key="x", max_retries=0, timeout=60)
            seen: dict[str, list[tuple[str, dict]]] = {}
            for q in QUESTIONS:
                for _ in range(2):  # each question lands once on each process (round robin, even count)
                    raw = client.chat.completions.with_raw_response.create(
                        model=POLICY, messages=[{"role": "user", "content": q}], extra_body={"tolerance": 0.2})
                    seen.setdefault(q, []).append((raw.headers["x-backend"], raw.parse().router))
        for q, answers in seen.items():
            assert {b for b, _ in answers} == set(urls), q
            (_, a), (_, b) = answers
            assert a["chosen"] == b["chosen"] and a["candidates"] == b["candidates"]
            assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-6)
        for url, audit in zip(urls, audits):
            lines = wait_audit_lines(audit, len(QUESTIONS))
            assert len(lines) == len(QUESTIONS) and {x["query"] for x in lines} == set(QUESTIONS)
            assert len({x["checkpoint_fingerprint"] for x in lines}) == 1
            assert total(scrape(url), "router_requests_total", status="ok") == len(QUESTIONS)
        # Both processes logged the same checkpoint and pool: the merged logs replay as one.
        merged = tmp_path / "merged.jsonl"
        merged.write_text("".join(a.read_text() for a in audits), encoding="utf-8")
        from router.commands.cli import main

        assert main(["audit", "replay", str(merged), "--config", str(pool)]) == 0  # 3 would mean drift
        assert len(audit_lines(merged)) == 2 * len(QUESTIONS)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
