"""The selection rule of DESIGN.md, on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from router.errors import InputError
from router.routing.select import check_tolerance, select

P = [0.50, 0.90, 0.80, 0.60]
COST = [1.0, 10.0, 5.0, 2.0]


def test_tolerance_zero_picks_the_best():
    s = select(P, COST, 0.0)
    assert s.chosen == 1 and s.best == 1 and s.p_max == 0.9 and s.candidates == (1,)


def test_tolerance_one_picks_the_cheapest():
    assert select(P, COST, 1.0).chosen == 0


def test_cheapest_within_tolerance():
    s = select(P, COST, 0.10)
    assert s.candidates == (1, 2) and s.chosen == 2
    assert s.threshold == pytest.approx(0.80)


def test_p_exactly_at_threshold_is_a_candidate():
    s = select([0.7, 0.5], [5.0, 1.0], 0.2)
    assert s.candidates == (0, 1) and s.chosen == 1


def test_cost_ties_break_by_pool_order():
    s = select([0.8, 0.8, 0.8], [1.0, 1.0, 1.0], 0.0)
    assert s.chosen == 0 and s.best == 0


def test_all_equal_p_chooses_cheapest():
    s = select([0.6] * 4, [3.0, 1.0, 2.0, 1.0], 0.0)
    assert s.candidates == (0, 1, 2, 3) and s.chosen == 1


def test_best_ties_break_by_pool_order():
    assert select([0.9, 0.9], [5.0, 1.0], 0.0).best == 0


def test_subset_ignores_disabled_models():
    s = select(P, COST, 0.0, allowed=[True, False, True, True])
    assert s.best == 2 and s.p_max == 0.8 and s.chosen == 2
    s = select(P, COST, 1.0, allowed=[False, True, True, False])
    assert s.chosen == 2


def test_disabled_best_does_not_set_threshold():
    s = select([0.95, 0.5, 0.45], [9.0, 2.0, 1.0], 0.06, allowed=[False, True, True])
    assert s.p_max == 0.5 and s.chosen == 2


def test_nothing_allowed_is_an_error():
    with pytest.raises(InputError, match="no model is enabled"):
        select(P, COST, 0.1, allowed=[False] * 4)


@pytest.mark.parametrize("bad", [-0.01, 1.01, float("nan"), "0.2", None, True])
def test_bad_tolerance(bad):
    with pytest.raises(InputError, match="tolerance"):
        check_tolerance(bad)


def test_monotone_in_tolerance():
    costs = []
    for t in [i / 20 for i in range(21)]:
        costs.append(COST[select(P, COST, t).chosen])
    assert costs == sorted(costs, reverse=True)


def test_vectorized_rule_agrees_with_the_scalar_rule():
    from router.routing.select import select_many

    rng = np.random.default_rng(7)
    # Rounded P and costs make ties (equal P at the threshold, equal costs) common.
    P = np.round(rng.random((300, 6)), 1)
    C = np.round(rng.random((300, 6)) * 4) / 4
    for allowed in (None, [True, False, True, True, False, True]):
        for t in (0.0, 0.05, 0.1, 0.3, 1.0):
            want = [select(P[i], C[i], t, allowed).chosen for i in range(len(P))]
            assert select_many(P, C, t, allowed).tolist() == want
    with pytest.raises(InputError, match="no model is enabled"):
        select_many(P, C, 0.1, [False] * 6)


def test_usage_normalizer_keeps_counts_and_details():
    from router.routing.costs import normalize_usage

    assert normalize_usage(None) is None and normalize_usage({}) is None
    assert normalize_usage({"prompt_tokens": None, "completion_tokens": "7"}) == {"prompt_tokens": 0,
                                                                                  "completion_tokens": 7}
    u = normalize_usage({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                         "prompt_tokens_details": {"cached_tokens": 4},
                         "completion_tokens_details": {"reasoning_tokens": 3}})
    assert u == {"prompt_tokens": 10, "completion_tokens": 5, "cached_tokens": 4, "reasoning_tokens": 3}
    assert normalize_usage(u) == u  # idempotent
