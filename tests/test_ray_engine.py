"""`--engine ray` on a local Ray instance (2 workers) gives the same results as the single-process run:
batch `score` and `audit replay`. Skipped only when ray cannot be imported."""

from __future__ import annotations

import json

import pytest

ray = pytest.importorskip("ray")

from router.commands.cli import main  # noqa: E402

from .proxy_env import CHECKPOINT  # noqa: E402

pytestmark = pytest.mark.slow

QUESTIONS = [f"Question {i}: " + " ".join(["why"] * (i % 7 + 1)) + f" is {i} prime?" for i in range(40)]


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {k: v for k, v in __import__("os").environ.items()
                                       if k in ("ROUTER_CACHE", "HF_HUB_OFFLINE")}
                          | {"PYTHONPATH": str(__import__("router.paths", fromlist=["x"]).PROJECT_ROOT)}})
    yield
    ray.shutdown()


def test_score_on_ray_equals_the_local_run(tmp_path, ray_local):
    src = tmp_path / "q.jsonl"
    src.write_text("".join(json.dumps({"id": f"q{i}", "question": q}) + "\n" for i, q in enumerate(QUESTIONS)))
    assert main(["score", "--checkpoint", CHECKPOINT, "--input", str(src), "--output", str(tmp_path / "l.jsonl"),
                 "--batch-size", "8"]) == 0
    assert main(["score", "--checkpoint", CHECKPOINT, "--input", str(src), "--output", str(tmp_path / "r.jsonl"),
                 "--batch-size", "8", "--engine", "ray", "--workers", "2"]) == 0
    local = [json.loads(x) for x in (tmp_path / "l.jsonl").read_text().splitlines()]
    remote = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [r["id"] for r in remote] == [r["id"] for r in local]
    for a, b in zip(local, remote):
        assert a["p"].keys() == b["p"].keys()
        assert max(abs(a["p"][k] - b["p"][k]) for k in a["p"]) <= 1e-5  # float32 sums in another process


def test_replay_on_ray_equals_the_local_replay(tmp_path, ray_local, default_router):
    from router.audit.provenance import provenance
    from router.audit.record import DecisionRecord
    from router.audit.replay import replay

    log = tmp_path / "audit.jsonl"
    with open(log, "w", encoding="utf-8") as f:
        for i, q in enumerate(QUESTIONS):
            r = default_router.route(q, tolerance=0.05 * (i % 5))
            f.write(json.dumps(DecisionRecord.build(r, api="test", query_text=q, **provenance(default_router)).to_line()) + "\n")
    local = replay(log, default_router, tolerance=0.4, out=tmp_path / "l.jsonl", progress=False, batch_size=8)
    remote = replay(log, default_router, tolerance=0.4, out=tmp_path / "r.jsonl", progress=False, batch_size=8,
                    engine="ray", workers=2)
    assert remote.replayed == local.replayed == len(QUESTIONS)
    assert remote.matrix == local.matrix and remote.changed == local.changed > 0
    assert remote.reproduced == local.reproduced == len(QUESTIONS)
    assert remote.replay_estimated_usd == pytest.approx(local.replay_estimated_usd, rel=1e-9)
    assert (tmp_path / "r.jsonl").read_text().count("\n") == (tmp_path / "l.jsonl").read_text().count("\n")
