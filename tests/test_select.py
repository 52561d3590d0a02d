"""The selection rule of DESIGN.md, on hand-made cases."""

from __future__ import annotations

import pytest

from router.routing.router import check_tolerance, select
from router.errors import InputError

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
