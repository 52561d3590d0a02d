"""`python -m router serve` headless in its own process, then `audit summary` on the log it wrote."""

from __future__ import annotations

import subprocess
import sys

import openai

from router.commands.cli import main

from .conftest import ROOT
from .proxy_env import POLICY, make_registry, write_pool
from .serving import free_port, wait_http
from .upstream_stub import UpstreamStub


def test_serve_command_then_audit_summary(tmp_path, capsys):
    with UpstreamStub() as stub:
        pool = write_pool(tmp_path, stub.base_url)
        make_registry(pool)  # the config is valid before we spend a process on it
        port, audit = free_port(), tmp_path / "logs" / "audit.jsonl"
        proc = subprocess.Popen([sys.executable, "-m", "router", "serve", "--config", str(pool), "--port", str(port),
                                 "--audit-log", str(audit)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_http(f"http://127.0.0.1:{port}/health", proc,
                      logs=lambda: proc.stderr.read().decode()[-2000:] if proc.poll() is not None else "")
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
