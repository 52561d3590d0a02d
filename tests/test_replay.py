"""`audit replay`: a log written by the real proxy is replayed against the same pool (P reproduced),
another tolerance and another checkpoint (changes found and priced); bad lines are counted.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path

import httpx
import pytest

from router.audit.replay import replay
from router.commands.cli import main
from router.errors import CheckpointError

from .proxy_env import CHECKPOINT, POLICY, audit_lines, serve_api, wait_audit_lines, write_pool

QUESTIONS = [
    "What is 2 + 2?",
    "Write a Python function that returns the n-th Fibonacci number.",
    "Prove that there are infinitely many primes.",
    "Translate 'good morning' into French.",
    "Explain the difference between TCP and UDP in detail, with examples of when to use each.",
    "A train leaves at 3pm going 60 mph; another at 4pm going 80 mph. When does the second catch up?",
    "Summarize the plot of Hamlet in two sentences.",
    "What is the capital of Australia?",
]


@pytest.fixture(scope="module")
def logged(registry, tmp_path_factory):
    """An audit log written by the proxy: 8 routed requests at two tolerances, one pinned, one narrowed."""
    folder = tmp_path_factory.mktemp("replay")
    log = folder / "audit.jsonl"
    srv = serve_api(registry, audit_log=log, api_keys=(), tracing=None)
    try:
        for i, q in enumerate(QUESTIONS):
            r = httpx.post(f"{srv.url}/v1/chat/completions", timeout=60,
                           json={"model": POLICY, "messages": [{"role": "user", "content": q}],
                                 "tolerance": 0.05 if i % 2 else 0.3})
            assert r.status_code == 200, r.text
        r = httpx.post(f"{srv.url}/v1/chat/completions", timeout=60,
                       json={"model": "mid", "messages": [{"role": "user", "content": "pinned"}]})
        assert r.status_code == 200
        r = httpx.post(f"{srv.url}/v1/messages", timeout=60,
                       json={"model": POLICY, "max_tokens": 16, "models": ["cheap", "best"],
                             "messages": [{"role": "user", "content": QUESTIONS[2]}]})
        assert r.status_code == 200, r.text
        wait_audit_lines(log, len(QUESTIONS) + 2)
    finally:
        srv.stop()
    return log


def pool_router(registry):
    return registry.get(POLICY)


def test_audit_lines_carry_provenance(logged, registry):
    from router import __version__
    from router.audit.provenance import pool_hash

    router = registry.get(POLICY)
    for line in audit_lines(logged):
        assert line["checkpoint_fingerprint"] == router.checkpoint.fingerprint
        assert line["pool_hash"] == pool_hash(router.pool)
        assert line["router_version"] == __version__
        assert line["encoder"] == router.checkpoint.encoder_spec.to_json()


def test_fingerprint_follows_the_weights_not_the_file_layout(tmp_path):
    from router.model.head import load_checkpoint, save_checkpoint

    a = load_checkpoint(CHECKPOINT)
    save_checkpoint(tmp_path / "same", a.head, {k: v for k, v in a.meta.items()
                                                if k not in ("format", "format_version")})
    assert load_checkpoint(tmp_path / "same").fingerprint == a.fingerprint
    # one weight nudged, whatever the head family: edit the stored tensors themselves
    from safetensors.numpy import load_file, save_file

    other = tmp_path / "other"
    save_checkpoint(other, a.head, {k: v for k, v in a.meta.items() if k not in ("format", "format_version")})
    tensors = load_file(str(other / "weights.safetensors"))
    name = sorted(k for k, v in tensors.items() if v.dtype.kind == "f")[0]
    tensors[name].reshape(-1)[0] += 1e-3
    save_file(tensors, str(other / "weights.safetensors"))
    with pytest.raises(CheckpointError, match="not the weights router.json was written with"):
        load_checkpoint(other)  # router.json still names the weights it was saved with
    meta = json.loads((other / "router.json").read_text())
    meta["head"]["weights_sha256"] = hashlib.sha256((other / "weights.safetensors").read_bytes()).hexdigest()
    (other / "router.json").write_text(json.dumps(meta))
    assert load_checkpoint(other).fingerprint != a.fingerprint


def test_the_same_checkpoint_reproduces_every_logged_p(logged, registry, tmp_path):
    router = pool_router(registry)
    report = replay(logged, router, out=tmp_path / "d.jsonl", progress=False)
    routed = [x for x in audit_lines(logged) if not x.get("pinned")]
    assert report.replayed == len(routed) == len(QUESTIONS) + 1
    assert report.skipped == {"pinned": 1}
    assert report.same_checkpoint == report.reproduced == report.replayed and report.drifted == 0
    assert report.max_abs_dp <= 2e-6  # float rounding of other batch shapes, far inside 1e-4
    assert report.changed == 0 and (tmp_path / "d.jsonl").read_text() == ""
    assert sum(n for row in report.matrix.values() for n in row.values()) == report.replayed
    assert report.logged_real_usd == pytest.approx(sum(x["actual_cost_usd"] for x in routed), rel=1e-12)
    # Unchanged decisions keep their real cost, so the replayed estimate is the logged real spend.
    assert report.replay_estimated_usd == pytest.approx(report.logged_real_usd, rel=1e-12)


def test_another_tolerance_changes_exactly_the_decisions_it_should(logged, registry, tmp_path):
    router = pool_router(registry)
    out = tmp_path / "diffs.jsonl"
    report = replay(logged, router, tolerance=1.0, out=out, progress=False)
    # Independently: every routed line's query routed afresh at tolerance 1 (narrowed lines narrowed).
    want: Counter = Counter()
    for x in audit_lines(logged):
        if x.get("pinned"):
            continue
        allowed = [m["name"] for m in x["models"] if m["allowed"]]
        new = router.route(x["query"], tolerance=1.0, models=allowed).chosen
        want[(x["chosen"], new)] += 1
    got = Counter({(a, b): n for a, row in report.matrix.items() for b, n in row.items()})
    assert got == want
    changed = sum(n for (a, b), n in want.items() if a != b)
    assert changed > 0 and report.changed == changed
    diffs = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(diffs) == changed and all(d["reason"] == "decision_changed" and d["tolerance"] == 1.0 for d in diffs)
    assert report.replay_estimated_usd < report.logged_estimated_usd  # tolerance 1 = the cheapest model
    assert report.same_checkpoint == report.reproduced  # P is still checked: same checkpoint


def test_bad_lines_are_counted_never_fatal(logged, registry, tmp_path):
    lines = logged.read_text().splitlines()
    routed = json.loads(lines[0])
    other_policy = {**routed, "policy": "someone-else"}
    hashed = {k: v for k, v in routed.items() if k != "query"} | {"query_sha256": "ab" * 32}
    unknown = {**routed, "chosen": "retired-slot"}
    drifted = json.loads(lines[1])
    drifted["models"][0]["p"] = round(drifted["models"][0]["p"] + 0.01, 6)
    other_pool = {**routed, "pool_hash": "sha256:0000"}
    refused_gate = {k: v for k, v in routed.items() if k not in ("models", "chosen")} | {
        "request_id": "refused-1", "status": "refused", "error": "budget cap reached"}  # no decision at all
    refused_late = {**routed, "request_id": "refused-2", "status": "refused"}  # decided, then no slot left
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([lines[0], '{"request_id": "torn', "[1, 2]", json.dumps({"hello": 1}),
                              json.dumps(other_policy), json.dumps(hashed), json.dumps(unknown),
                              json.dumps(drifted), json.dumps(other_pool), json.dumps(refused_gate),
                              json.dumps(refused_late), ""]) + '{"ts": 1, "requ', encoding="utf-8")
    report = replay(bad, pool_router(registry), out=tmp_path / "d.jsonl", progress=False)
    assert report.skipped == {"torn": 3, "not_a_record": 1, "other_policy": 1, "refused": 2, "no_query": 1,
                              "unknown_slot": 1}  # refused lines were counted as "pinned" before
    assert report.replayed == 3 and report.other_pool_config == 1
    assert report.drifted == 1 and report.reproduced == 2
    diffs = [json.loads(x) for x in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert [d["reason"] for d in diffs] == ["p_drift"] and diffs[0]["max_abs_dp"] == pytest.approx(0.01, abs=2e-6)


def test_a_streams_started_and_final_lines_replay_once(logged, registry, tmp_path):
    """Read as `audit summary` reads the log: a started line joins its final line; one left alone
    (the server died mid-stream) is still a decision, replayed once, as "interrupted"."""
    first, second = (json.loads(x) for x in logged.read_text().splitlines()[:2])
    log = tmp_path / "streams.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in [
        {**first, "status": "started", "usage": None}, {**second, "status": "started"}, first]), encoding="utf-8")
    report = replay(log, pool_router(registry), progress=False)
    assert (report.lines, report.replayed, report.skipped) == (2, 2, {})  # was 3 replayed: one stream twice
    assert report.reproduced == 2


def test_cli_replay_against_a_new_checkpoint(logged, registry, tmp_path, capsys):
    from router.model.head import load_checkpoint

    # Another checkpoint over the same label columns: the English-only MiniLM one that ships beside it.
    new_dir = Path(CHECKPOINT).parent / "checkpoint-minilm"
    assert load_checkpoint(new_dir).fingerprint != load_checkpoint(CHECKPOINT).fingerprint
    pool_yaml = Path(registry.get(POLICY).pool.source_path)
    out = tmp_path / "diffs.jsonl"
    rc = main(["audit", "replay", str(logged), "--config", str(pool_yaml), "--checkpoint", str(new_dir),
               "--out", str(out), "--json"])
    assert rc == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["checkpoint_fingerprint"] == load_checkpoint(new_dir).fingerprint
    assert rep["same_checkpoint"] == 0 and rep["replayed"] == len(QUESTIONS) + 1
    assert rep["changed"] == len(out.read_text().splitlines()) > 0
    # The same run in text form names the matrix and the spend.
    rc = main(["audit", "replay", str(logged), "--config", str(pool_yaml), "--checkpoint", str(new_dir)])
    text = capsys.readouterr().out
    assert rc == 0 and "from \\ to" in text and "logged real $" in text and "what-if only" in text


def test_cli_replay_exits_3_on_drift_and_2_on_a_missing_file(logged, registry, tmp_path, capsys):
    line = json.loads(logged.read_text().splitlines()[0])
    line["models"][1]["p"] = round(line["models"][1]["p"] - 0.2, 6)
    f = tmp_path / "drift.jsonl"
    f.write_text(json.dumps(line) + "\n", encoding="utf-8")
    pool_yaml = registry.get(POLICY).pool.source_path
    assert main(["audit", "replay", str(f), "--config", pool_yaml]) == 3
    assert "DRIFT on 1 lines" in capsys.readouterr().out
    assert main(["audit", "replay", str(tmp_path / "nope.jsonl"), "--config", pool_yaml]) == 1
    assert "audit log not found" in capsys.readouterr().err


def test_hash_mode_logs_say_replay_needs_store(registry, stub, tmp_path):
    from .proxy_env import make_registry

    reg = make_registry(write_pool(tmp_path, stub.base_url, audit_query_text="hash"))
    log = tmp_path / "a.jsonl"
    srv = serve_api(reg, audit_log=log, api_keys=(), tracing=None)
    try:
        httpx.post(f"{srv.url}/v1/chat/completions", timeout=60,
                   json={"model": POLICY, "messages": [{"role": "user", "content": "hi there"}]})
        wait_audit_lines(log, 1)
    finally:
        srv.stop()
    from router.audit.replay import format_report

    report = replay(log, reg.get(POLICY), progress=False)
    assert report.skipped == {"no_query": 1} and report.replayed == 0
    assert "replay needs audit_query_text: store" in format_report(report)
    shutil.rmtree(tmp_path / "a.jsonl", ignore_errors=True)
