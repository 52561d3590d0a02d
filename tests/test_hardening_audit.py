"""The audit log survives crashes (issue 12, defect 6): a torn last line never costs the next record,
readers report bad lines and go on, and a `kill -9` mid-stream still leaves a line per stream."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from router.audit.log import AuditLog, read_records
from router.audit.tail import repair_torn_tail

from .proxy_env import POLICY, dest, write_pool
from .serving import free_port, wait_http

ROOT = Path(__file__).resolve().parent.parent


def _rec(i: int, **kw) -> dict:
    return {"request_id": f"req_{i}", "ts": 1000.0 + i, "status": "ok", **kw}


def test_append_after_a_torn_tail_keeps_every_record(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.write(_rec(1))
    log.write(_rec(2))
    with open(path, "ab") as f:
        f.write(b'{"request_id": "req_torn", "ts": 10')  # the process was killed mid-write
    AuditLog(path).write(_rec(3))  # a restart, then the next request
    AuditLog(path).write(_rec(4))
    problems: list[str] = []
    assert [r["request_id"] for r in read_records(path, problems=problems)] == ["req_1", "req_2", "req_3", "req_4"]
    assert len(problems) == 1 and f"{path}:3" in problems[0]


def test_collect_cuts_the_torn_tail_with_the_same_helper(tmp_path):
    from router.training.collect import cut_torn_tail

    path = tmp_path / "labels.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b": 2}\n{"c": ')
    cut_torn_tail(path)
    assert path.read_bytes() == b'{"a": 1}\n{"b": 2}\n'
    path.write_bytes(b'{"a": 1}\n{"b"')
    assert repair_torn_tail(path, keep=True) == 1 and path.read_bytes() == b'{"a": 1}\n{"b"\n'


def test_a_non_finite_number_is_written_as_null_not_infinity(tmp_path):
    path = tmp_path / "a.jsonl"
    AuditLog(path).write(_rec(1, actual_cost_usd=float("inf"), query="x\ud800y"))
    line = path.read_text(encoding="utf-8")
    rec = json.loads(line)  # strict JSON: Python would read Infinity, other readers would not
    assert "Infinity" not in line and rec["actual_cost_usd"] is None


def test_audit_summary_goes_on_past_a_bad_line(tmp_path):
    path = tmp_path / "audit.jsonl"
    lines = [json.dumps(_rec(1, chosen="a", selected="a", actual_cost_usd=0.1, baseline_cost_usd=1.0)),
             "{not json", json.dumps(_rec(2, chosen="b", selected="b", actual_cost_usd=0.2, baseline_cost_usd=1.0))]
    path.write_text("\n".join(lines) + "\n")
    r = subprocess.run([sys.executable, "-m", "router", "audit", "summary", str(path), "--json"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["total"]["requests"] == 2
    assert "skipped 1 unreadable line" in r.stderr and f"{path}:2" in r.stderr


def test_a_started_line_without_its_end_reads_as_interrupted(tmp_path):
    path = tmp_path / "a.jsonl"
    log = AuditLog(path)
    log.write(_rec(1, status="started"))
    log.write(_rec(2, status="started"))
    log.write(_rec(1, status="ok"))
    recs = list(read_records(path))
    assert [(r["request_id"], r["status"]) for r in recs] == [("req_1", "ok"), ("req_2", "interrupted")]


@pytest.mark.slow
def test_kill_9_during_streams_leaves_a_line_per_stream(tmp_path, stub):
    for name in ("cheap", "mid", "strong", "best"):
        stub.behave(dest(name), answer=" ".join(["word"] * 200), chunk_delay=0.1)
    audit = tmp_path / "audit.jsonl"
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "router", "serve", "--config", str(write_pool(tmp_path, stub.base_url)),
                             "--port", str(port), "--audit-log", str(audit)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    n, opened, errors = 3, threading.Semaphore(0), []

    def stream(i: int) -> None:
        try:
            with httpx.stream("POST", f"http://127.0.0.1:{port}/v1/chat/completions", timeout=60,
                              json={"model": POLICY, "stream": True,
                                    "messages": [{"role": "user", "content": f"Stream {i}: count to 200"}]}) as r:
                seen = False
                for line in r.iter_lines():
                    if "word" in line and not seen:
                        seen = True
                        opened.release()
        except httpx.HTTPError:
            pass  # the server is killed under it
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc, timeout=180)
        threads = [threading.Thread(target=stream, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for _ in range(n):
            assert opened.acquire(timeout=60), "a stream did not start"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        for t in threads:
            t.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert not errors
    recs = list(read_records(audit))
    assert len(recs) == n and {r["status"] for r in recs} == {"interrupted"}
    assert len({r["request_id"] for r in recs}) == n and all(r["stream"] for r in recs)



def test_audit_summary_counts_the_spend_of_a_stream_the_client_cut(tmp_path, stub, capsys):
    """A real stream cut by its client: the upstream billed what it sent, and `audit summary` says so."""
    from router.commands.cli import main

    from .proxy_env import audit_for, make_registry, serve_api

    for name in ("cheap", "mid", "strong", "best"):
        stub.behave(dest(name), answer=" ".join(["word"] * 200), chunk_delay=0.02)
    audit = tmp_path / "audit.jsonl"
    srv = serve_api(make_registry(write_pool(tmp_path, stub.base_url)), audit_log=audit, api_keys=(), backoff=0.01)
    try:
        ask = {"model": POLICY, "messages": [{"role": "user", "content": "Tell me about Paris."}]}
        httpx.post(f"{srv.url}/v1/chat/completions", json=ask, timeout=60).raise_for_status()  # one answered
        with httpx.stream("POST", f"{srv.url}/v1/chat/completions", json={**ask, "stream": True}, timeout=60) as r:
            rid = r.headers["x-router-request-id"]
            for n, _ in enumerate(r.iter_lines()):
                if n > 6:
                    break  # hang up after a few chunks
        cut = audit_for(audit, rid)
    finally:
        srv.stop()
    assert cut["status"] == "client_closed" and cut["actual_cost_usd"] > 0
    assert main(["audit", "summary", str(audit), "--json"]) == 0
    total = json.loads(capsys.readouterr().out)["total"]
    assert total["requests"] == 2 and total["not_ok_billed"] == 1
    assert total["spend_not_ok_usd"] == pytest.approx(cut["actual_cost_usd"])
    assert total["spend_usd"] == pytest.approx(total["spend_ok_usd"] + cut["actual_cost_usd"])
