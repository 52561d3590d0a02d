"""`python -m router serve` headless in its own process, then `audit summary` on the log it wrote."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import openai

from router.cli import main

from .conftest import ROOT, free_port
from .proxy_env import POLICY, make_registry, write_pool
from .upstream_stub import UpstreamStub


def wait_for(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not come up in {timeout} s")


def test_serve_command_then_audit_summary(tmp_path, capsys):
    with UpstreamStub() as stub:
        pool = write_pool(tmp_path, stub.base_url)
        make_registry(pool)  # the config is valid before we spend a process on it
        port, audit = free_port(), tmp_path / "logs" / "audit.jsonl"
        proc = subprocess.Popen([sys.executable, "-m", "router", "serve", "--config", str(pool), "--port", str(port),
                                 "--audit-log", str(audit)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for(f"http://127.0.0.1:{port}/health", proc)
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
            for t in (0.0, 1.0):
                r = client.chat.completions.create(model=POLICY, messages=[{"role": "user", "content": "Hi"}],
                                                   extra_body={"tolerance": t})
                assert r.router["tolerance"] == t
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    assert len(audit.read_text().splitlines()) == 2
    assert main(["audit", "summary", str(audit)]) == 0
    out = capsys.readouterr().out
    assert "requests: 2 (0 errors" in out and f"{POLICY} (2)" in out and "every request on best" in out
