"""`audit summary --by` (spend against caps) and `audit calibrate-costs` (observed output and
reasoning tokens vs the estimate, written into a copy of the pool YAML), on a hand-written log."""

from __future__ import annotations

import json
import time

import pytest

from router.commands.cli import main
from router.routing.pool import load_pool
from router.routing.router import output_estimates

from .governance_env import write_pool


def rec(ts, slot, usd, client=None, completion=100, reasoning=0, status="ok", policy="govpool"):
    usage = {"prompt_tokens": 50, "completion_tokens": completion}
    if reasoning:
        usage["reasoning_tokens"] = reasoning
    return {"request_id": f"r{ts}", "ts": ts, "policy": policy, "selected": slot, "chosen": slot,
            "client": "sha256:abc", "client_name": client, "usage": usage, "actual_cost_usd": usd,
            "status": status}


@pytest.fixture
def pool_path(tmp_path):
    budgets = [{"scope": "client", "name": "alice", "period": "day", "usd": 1.0},
               {"scope": "slot", "name": "cloud-best", "period": "month", "usd": 2.0, "mode": "soft"},
               {"scope": "policy", "period": "month", "usd": 10.0}]
    return write_pool(tmp_path, "http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1", budgets=budgets)


@pytest.fixture
def log(tmp_path):
    now = time.time()
    lines = [rec(now - 60, "cloud-best", 0.8, "alice"), rec(now - 30, "cloud-best", 0.4, "alice"),
             rec(now - 40 * 86400, "cloud-best", 5.0, "alice"),  # long ago: all time only
             rec(now - 10, "onprem-small", 0.0, "bob", completion=300, reasoning=200),
             rec(now - 5, "cloud-mid", 0.1, "bob", status="error")]
    lines += [rec(now - i, "onprem-small", 0.0, "bob", completion=300, reasoning=200) for i in range(1, 6)]
    path = tmp_path / "audit.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def test_summary_by_client_shows_spend_against_caps(log, pool_path, capsys):
    assert main(["audit", "summary", str(log), "--by", "client", "--config", str(pool_path), "--json"]) == 0
    rows = {r["group"]: r for r in json.loads(capsys.readouterr().out)}
    alice = rows["alice"]
    assert alice["day_usd"] == pytest.approx(1.2) and alice["spend_usd"] == pytest.approx(6.2)
    assert alice["caps"] == [{"cap": "client alice day $1 hard", "cap_usd": 1.0, "spent_usd": pytest.approx(1.2),
                              "used_pct": pytest.approx(120.0), "reached": True}]
    assert rows["bob"]["caps"] == []  # alice's cap is hers
    assert main(["audit", "summary", str(log), "--by", "slot", "--config", str(pool_path)]) == 0
    text = capsys.readouterr().out
    assert "cloud-best" in text and "slot cloud-best month $2 soft: 60%" in text
    failed = log.parent / "failed.jsonl"
    failed.write_text("".join(json.dumps({**rec(time.time() - i, None, None, "bob", status="error")}) + "\n"
                              for i in range(3)), encoding="utf-8")
    assert main(["audit", "summary", str(failed), "--by", "slot"]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    assert row.split()[:4] == ["(no", "slot", "answered)", "3"]
    assert main(["audit", "summary", str(log), "--by", "policy", "--config", str(pool_path)]) == 0
    assert "policy month $10 hard: 13%" in capsys.readouterr().out


def test_calibrate_costs_reports_and_writes_a_copy(log, pool_path, tmp_path, capsys):
    out = tmp_path / "calibrated" / "pool.yaml"
    assert main(["audit", "calibrate-costs", str(log), "--config", str(pool_path), "--write", str(out)]) == 0
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if line.startswith("onprem-small"))
    assert "300.0" in row and "200.0" in row and "training mean" in row
    assert "wrote" in text and "onprem-small" in text.splitlines()[-1]
    cal = load_pool(out)  # loads: the copy is a valid pool
    slot = cal.slot("onprem-small")
    assert slot.expected_output_tokens == 100.0 and slot.reasoning_tokens == 200.0
    assert cal.slot("cloud-best").expected_output_tokens is None  # 3 calls: under --min-calls 5
    est, src = output_estimates(cal, type("C", (), {"output_tokens": staticmethod(lambda s: 31.0)})())
    assert est[cal.names.index("onprem-small")] == 300.0 and src[0] == "config + reasoning (config)"
    assert load_pool(pool_path).slot("onprem-small").expected_output_tokens is None  # original untouched
    assert main(["audit", "calibrate-costs", str(log), "--config", str(pool_path), "--write", str(pool_path)]) == 1
    assert "pool file itself" in capsys.readouterr().err
