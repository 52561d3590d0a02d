"""The whole retrain loop on 127.0.0.1: serve-local (real SmolLM2) + a stub slot -> collect (killed
midway, then resumed) -> train -> evaluate -> route through the proxy with the new checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from router.commands.cli import main as cli_main
from router.training.collect import read_collected
from tests.conftest import ROOT
from tests.serving import free_port, wait_http
from tests.upstream_stub import UpstreamStub

pytestmark = pytest.mark.slow

TRAIN = [
    ("What is the capital of France?", "Paris"),
    ("What is 2 + 3?", "5"),
    ("What color is the sky on a clear day?", "blue"),
    ("How many legs does a spider have?", "8"),
    ("What is the largest planet in the solar system?", "Jupiter"),
    ("Which is a fruit? (A) carrot (B) apple (C) potato. Answer with the letter.", "B"),
    ("What is 10 times 12?", "120"),
    ("Who wrote Romeo and Juliet?", "Shakespeare"),
    ("What is the boiling point of water in degrees Celsius?", "100"),
    ("Which animal says moo? (A) cat (B) dog (C) cow. Answer with the letter.", "C"),
    ("What is the square root of 81?", "9"),
    ("What is the opposite of hot?", "cold"),
]
TEST = [
    ("What is the capital of Japan?", "Tokyo"),
    ("What is 7 + 8?", "15"),
    ("Which is a color? (A) red (B) table (C) run. Answer with the letter.", "A"),
    ("What is the chemical symbol for gold?", "Au"),
]
SLOTS = ("smollm2-local", "stub-slot")


def _start(args: list[str], log: Path) -> subprocess.Popen:
    fh = open(log, "w")
    return subprocess.Popen([sys.executable, "-m", "router", *args], cwd=ROOT, stdout=fh,
                            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _pool(tmp: Path, name: str, checkpoint: Path, local_url: str, stub_url: str, bind: bool) -> Path:
    slots = [
        {"name": "smollm2-local", "model": "SmolLM2-135M-Instruct", "api_base": local_url, "local": True,
         "cost_per_m_input_tokens": 0.01, "cost_per_m_output_tokens": 0.02},
        {"name": "stub-slot", "model": "stub-echo", "api_base": stub_url, "local": True,
         "cost_per_m_input_tokens": 1.0, "cost_per_m_output_tokens": 2.0},
    ]
    if bind:  # the bundled checkpoint knows RouterBench columns, not these slots
        slots[0]["trained_as"], slots[1]["trained_as"] = "mistralai/mistral-7b-chat", "gpt-4-1106-preview"
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"policy": name, "checkpoint": str(checkpoint), "default_tolerance": 0.2,
                                    "models": slots}))
    return path


@pytest.fixture
def servers(tmp_path):
    port = free_port()
    log = tmp_path / "serve-local.log"
    local = _start(["serve-local", "--port", str(port), "--threads", "1"], log)
    try:
        with UpstreamStub() as stub:  # no behaviour set: it echoes the question (wrong, mostly)
            wait_http(f"http://127.0.0.1:{port}/health", local, 300, lambda: log.read_text()[-3000:])
            yield f"http://127.0.0.1:{port}/v1", stub
    finally:
        _stop(local)


def test_collect_resume_train_evaluate_route(servers, tmp_path, capsys):
    local_url, stub = servers
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(
        json.dumps({"id": f"{split}-{i}", "question": q, "reference": ref, "split": split}) + "\n"
        for split, rows in (("train", TRAIN), ("test", TEST)) for i, (q, ref) in enumerate(rows)))
    n_pairs = (len(TRAIN) + len(TEST)) * len(SLOTS)
    collect_pool = _pool(tmp_path, "e2e-collect", ROOT / "assets" / "checkpoint", local_url, stub.base_url, True)
    labels = tmp_path / "labels.jsonl"
    collect_args = ["collect", "--config", str(collect_pool), "--questions", str(questions), "--out", str(labels),
                    "--max-tokens", "12", "--concurrency", "1", "--no-progress",
                    "--system", "Answer with one word or one number."]

    # 1. collect in a real subprocess, killed (SIGKILL) once a few local answers are in
    log = tmp_path / "collect-1.log"
    proc = _start(collect_args, log)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        rows = read_collected(labels) if labels.exists() else []
        if sum(r["model"] == "smollm2-local" for r in rows) >= 3:
            proc.kill()
            break
        time.sleep(0.2)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL, f"collect was not killed midway:\n{log.read_text()[-2000:]}"
    before = read_collected(labels)
    assert 3 <= len(before) < n_pairs

    # 2. rerun: only the missing pairs are asked, and nothing is duplicated
    asked_stub = len(stub.calls())
    assert cli_main(collect_args) == 0
    out = capsys.readouterr().out
    assert f"{len(before)} already in" in out and f"{n_pairs - len(before)} to ask" in out
    rows = read_collected(labels)
    keys = [(r["id"], r["model"]) for r in rows]
    assert len(keys) == len(set(keys)) == n_pairs
    assert len(stub.calls()) - asked_stub == sum(1 for r in rows[len(before):] if r["model"] == "stub-slot")
    local_rows = [r for r in rows if r["model"] == "smollm2-local"]
    assert all(r["output_tokens"] <= 12 and r["latency_ms"] > 0 and r["cost_usd"] > 0 for r in local_rows)
    assert any(r["correct"] == 1.0 for r in local_rows), "SmolLM2 should get some easy questions right"
    assert {r["correct"] for r in rows} <= {0.0, 1.0}

    # 3. train a tiny checkpoint on the train split
    ckpt = tmp_path / "ckpt"
    assert cli_main(["train", "--data", str(labels), "--out", str(ckpt), "--members", "2", "--epochs", "20",
                     "--pca-dim", "4", "--hidden", "16"]) == 0
    out = capsys.readouterr().out
    assert f"trained on {len(TRAIN)} questions, 2 slots" in out  # CV: every training question is fitted on
    meta = json.loads((ckpt / "router.json").read_text())
    assert sorted(meta["slots"]) == sorted(SLOTS)

    # 4. evaluate it on the held-out test split
    report = tmp_path / "eval.json"
    assert cli_main(["evaluate", "--checkpoint", str(ckpt), "--data", str(labels), "--json", str(report)]) == 0
    out = capsys.readouterr().out
    ev = json.loads(report.read_text())
    assert ev["n_questions"] == len(TEST) and sorted(ev["slots"]) == sorted(SLOTS)
    assert f"{len(TEST)} questions (split=test)" in out and "best single model" in out
    print(out)  # shown with -s: the numbers of this tiny run

    # 5. route through the proxy, which loads the new checkpoint from a pool YAML
    new_pool = _pool(tmp_path, "e2e", ckpt, local_url, stub.base_url, False)
    port = free_port()
    plog = tmp_path / "proxy.log"
    proxy = _start(["serve", "--config", str(new_pool), "--port", str(port)], plog)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/health", proxy, 180, lambda: plog.read_text()[-3000:])
        with httpx.Client(base_url=base, timeout=120) as c:
            decision = c.post("/v1/route", json={"model": "e2e", "question": "What is the capital of Italy?",
                                                  "tolerance": 1.0}).json()
            assert decision["checkpoint"] and str(ckpt.name) in json.dumps(decision["checkpoint"])
            assert {m["name"] for m in decision["models"]} == set(SLOTS)
            assert all(0 <= m["p"] <= 1 for m in decision["models"])
            assert decision["chosen"] == "smollm2-local"  # tolerance 1 = cheapest
            r = c.post("/v1/chat/completions", json={
                "model": "e2e", "tolerance": 1.0, "max_tokens": 12,
                "messages": [{"role": "user", "content": "What is the capital of Italy?"}]})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["model"] == "SmolLM2-135M-Instruct"  # the destination actually called
            assert body["choices"][0]["message"]["content"].strip()
            assert r.headers.get("x-router-selected") == "smollm2-local"
    finally:
        _stop(proxy)
