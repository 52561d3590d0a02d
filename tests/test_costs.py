"""Money logic of the playground (router/costs.py): hand-computed cases and properties."""

from __future__ import annotations

import numpy as np
import pytest

from router.errors import InputError
from router.routing import costs, sweep
from router.routing.pool import Slot
from router.routing.router import ModelScore, select


def _slot(name="s", cin=2.0, cout=10.0) -> Slot:
    return Slot(name=name, model=f"x/{name}", cost_per_m_input_tokens=cin, cost_per_m_output_tokens=cout)


def _score(name="opus", cin=3.0, cout=25.0, tokens_in=100, tokens_out=40.0) -> ModelScore:
    return ModelScore(name=name, display_name=name, model=name, p=0.5,
                      expected_cost_usd=(tokens_in * cin + tokens_out * cout) / 1e6,
                      expected_input_tokens=tokens_in, expected_output_tokens=tokens_out,
                      cost_per_m_input_tokens=cin, cost_per_m_output_tokens=cout, allowed=True, candidate=True,
                      local=False, trained_as=None, trained_as_reason=None)


def test_usage_cost_uses_real_token_counts():
    assert costs.usage_cost(_slot(), {"prompt_tokens": 1000, "completion_tokens": 500}) == pytest.approx(
        (1000 * 2 + 500 * 10) / 1e6)
    assert costs.usage_cost(_slot(), {}) == 0.0


def test_baseline_cost_estimate_and_with_real_prompt_tokens():
    base = _score(tokens_in=100, tokens_out=40)
    assert costs.baseline_cost(base, 40, 100, None) == pytest.approx((100 * 3 + 40 * 25) / 1e6)
    # Real usage replaces the encoder's input count; the output stays the baseline's expectation.
    assert costs.baseline_cost(base, 40, 100, {"prompt_tokens": 300, "completion_tokens": 9999}) == pytest.approx(
        (300 * 3 + 40 * 25) / 1e6)


def test_baseline_estimate_is_the_routed_estimate_when_the_baseline_is_chosen(default_router):
    """Issue 15: at tolerance 0 with the baseline chosen the card read "-0.1% saved": the baseline's cost was
    recomputed from the rounded expected_output_tokens while the routed cost used the exact one."""
    from router.ui import playground

    pool = default_router.pool
    session = playground.Session()
    for q in ("What is 2 + 2?", "Prove that there are infinitely many primes. " * 20, "東京の天気は？"):
        r = playground.route(default_router, session, q, 0.0, [pool.baseline_slot.name])
        assert r.chosen == pool.baseline_slot.name
        rec = session.records[-1]
        assert rec["baseline_cost_usd"] == rec["expected_cost_usd"] == r.expected_cost_usd
    st = costs.session_stats(session.records)
    assert st.saved_usd == 0.0 and st.saved_pct == 0.0


def test_savings_percent_and_zero_baseline():
    assert costs.savings(25.0, 100.0) == (75.0, 75.0)
    assert costs.savings(0.0, 0.0) == (0.0, None)
    saved, pct = costs.savings(120.0, 100.0)
    assert saved == -20.0 and pct == -20.0


def _record(chosen, expected, baseline_cost, actual=None):
    return {"chosen": chosen, "expected_cost_usd": expected, "actual_cost_usd": actual,
            "baseline_cost_usd": baseline_cost, "baseline": "opus"}


def test_session_stats_mixes_actual_and_estimated_costs():
    records = [_record("cheap", 0.001, 0.010, actual=0.002), _record("cheap", 0.001, 0.010),
               _record("mid", 0.004, 0.020)]
    st = costs.session_stats(records)
    assert st.queries == 3
    assert st.routed_usd == pytest.approx(0.002 + 0.001 + 0.004)
    assert st.baseline_usd == pytest.approx(0.040)
    assert st.saved_usd == pytest.approx(0.033)
    assert st.saved_pct == pytest.approx(100 * 0.033 / 0.040)
    assert (st.actual, st.estimated, st.basis) == (1, 2, "mixed")
    assert st.distribution == {"cheap": 2, "mid": 1}
    assert list(st.distribution) == ["cheap", "mid"]  # most chosen first


def test_session_stats_empty_and_all_actual():
    empty = costs.session_stats([])
    assert (empty.queries, empty.routed_usd, empty.saved_pct, empty.basis) == (0, 0.0, None, "none")
    assert costs.session_stats([_record("a", 1, 2, actual=1.5)]).basis == "actual"
    assert costs.session_stats([_record("a", 1, 2)]).basis == "estimate"


def test_monthly_projection_hand_computed():
    prices = {"cheap": (0.1, 0.4), "opus": (3.0, 25.0)}
    proj = costs.monthly_projection(10, 100, 1000, 500, {"cheap": 3, "opus": 1}, prices, "opus")
    cheap_call = (1000 * 0.1 + 500 * 0.4) / 1e6
    opus_call = (1000 * 3.0 + 500 * 25.0) / 1e6
    assert proj.requests == 1000
    assert proj.baseline_usd == pytest.approx(1000 * opus_call)
    assert proj.per_model_usd["cheap"] == pytest.approx(750 * cheap_call)
    assert proj.per_model_usd["opus"] == pytest.approx(250 * opus_call)
    assert proj.routed_usd == pytest.approx(750 * cheap_call + 250 * opus_call)
    assert proj.saved_pct == pytest.approx(100 * (proj.baseline_usd - proj.routed_usd) / proj.baseline_usd)
    assert proj.per_request_routed_usd == pytest.approx(proj.routed_usd / 1000)


def test_monthly_projection_all_on_baseline_saves_nothing():
    prices = {"cheap": (0.1, 0.4), "opus": (3.0, 25.0)}
    proj = costs.monthly_projection(5, 20, 800, 300, {"opus": 7}, prices, "opus")
    assert proj.saved_usd == pytest.approx(0.0) and proj.saved_pct == pytest.approx(0.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"team_size": -1}, "team size"),
    ({"requests_per_person": float("nan")}, "requests per person"),
    ({"mix": {}}, "mix is empty"),
    ({"mix": {"ghost": 1}}, "ghost"),
    ({"baseline": "ghost"}, "baseline"),
])
def test_monthly_projection_rejects_bad_input(kwargs, match):
    args = dict(team_size=1, requests_per_person=1, input_tokens=1, output_tokens=1, mix={"a": 1},
                prices={"a": (1.0, 1.0)}, baseline="a")
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        costs.monthly_projection(**args)


def test_tolerance_grid_default_and_custom():
    assert sweep.tolerance_grid() == [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5]
    assert sweep.tolerance_grid(0.1, 0.3, 0.1) == [0.1, 0.2, 0.3]
    assert sweep.tolerance_grid(0.2, 0.2, 0.05) == [0.2]
    for bad in [(0.5, 0.1, 0.1), (0, 1.5, 0.1), (0, 0.5, 0), (0, 1, 0.001), (None, 0.5, 0.1)]:
        with pytest.raises(InputError, match="tolerance grid"):
            sweep.tolerance_grid(*bad)


def test_sweep_hand_computed_extremes():
    names = ["cheap", "mid", "best"]
    P = np.array([[0.2, 0.6, 0.9], [0.85, 0.8, 0.9]])
    C = np.array([[1.0, 2.0, 10.0], [1.0, 2.0, 10.0]])
    sw = sweep.sweep(P, C, [0.0, 0.1, 1.0], names, None, "best")
    # t=0: best everywhere; t=0.1: q1 keeps best (0.6 < 0.8), q2 goes cheap (0.85 >= 0.8); t=1: cheapest.
    assert sw.counts.tolist() == [[0, 0, 2], [1, 0, 1], [2, 0, 0]]
    assert sw.mean_cost_usd.tolist() == [10.0, 5.5, 1.0]
    assert sw.mean_p == pytest.approx([0.9, (0.9 + 0.85) / 2, (0.2 + 0.85) / 2])
    assert sw.baseline_mean_cost_usd == 10.0
    assert sw.mix_at(0.1) == {"cheap": 1, "best": 1}
    assert sw.mix_at(0.04) == {"best": 2}  # off the grid: the rule re-applied at exactly 0.04
    assert sw.mix_at(0.5) == {"cheap": 1, "mid": 1}
    assert sw.rows()[0] == [0.0, 2, pytest.approx(0.9), 10.0, "best"]


def test_sweep_matches_select_and_respects_allowed():
    rng = np.random.default_rng(0)
    P, C = rng.random((40, 5)), rng.random((40, 5))
    names = list("abcde")
    allowed = [True, False, True, True, False]
    grid = sweep.tolerance_grid(0, 1, 0.1)
    sw = sweep.sweep(P, C, grid, names, allowed, "a")
    assert (sw.counts.sum(1) == 40).all()
    assert sw.counts[:, [1, 4]].sum() == 0
    for ti, t in enumerate(grid):
        expected = np.bincount([select(P[i], C[i], t, allowed).chosen for i in range(40)], minlength=5)
        assert sw.counts[ti].tolist() == expected.tolist()
    # Widening the tolerance never raises the expected cost nor the mean P of the choice.
    assert (np.diff(sw.mean_cost_usd) <= 1e-12).all()
    assert (np.diff(sw.mean_p) <= 1e-12).all()


def test_sweep_rejects_shape_mismatch_and_empty():
    with pytest.raises(InputError, match="sweep"):
        sweep.sweep(np.zeros((2, 3)), np.zeros((2, 2)), [0.1], ["a", "b", "c"], None, "a")
    with pytest.raises(InputError, match="no questions"):
        sweep.sweep(np.zeros((0, 2)), np.zeros((0, 2)), [0.1], ["a", "b"], None, "a")


def test_mix_from_counts():
    assert costs.mix_from_counts({"a": 3, "b": 1, "c": 0}) == {"a": 0.75, "b": 0.25}
    assert costs.mix_from_counts({}) == {}
