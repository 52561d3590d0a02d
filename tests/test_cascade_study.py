"""The margin that benchmarks/cascade_study.py gates the static decision by, on hand-made P."""

from __future__ import annotations

import numpy as np

from benchmarks.cascade_study import cascade, static_margin


def test_margin_is_the_distance_of_the_deciding_p_from_the_threshold():
    price = np.array([1.0, 2.0, 3.0])
    P = np.array([[0.50, 0.85, 0.90],   # threshold 0.80: model 1 chosen 0.05 above it, model 0 0.30 below
                  [0.95, 0.90, 0.30],   # the cheapest is the best: nothing can take its place
                  [0.78, 0.85, 0.88]])  # model 0 sits on the threshold 0.78: chosen, with no margin
    choice, margin = static_margin(P, price, 0.10)
    assert choice.tolist() == [1, 0, 0]
    np.testing.assert_allclose(margin[:1], [0.05])
    assert np.isinf(margin[1]) and abs(margin[2]) < 1e-9


def test_cascade_keeps_a_static_decision_only_beyond_the_margin():
    price = np.array([1.0, 2.0, 3.0])
    Ps = np.array([[0.50, 0.85, 0.90], [0.95, 0.90, 0.30]])
    Pf = np.array([[0.10, 0.20, 0.90], [0.10, 0.20, 0.90]])  # the full head would always pick model 2
    choice, keep, used = cascade(Pf, Ps, price, 0.10, delta=0.1)
    assert keep.tolist() == [False, True] and choice.tolist() == [2, 0]
    np.testing.assert_array_equal(used, [Pf[0], Ps[1]])
    assert cascade(Pf, Ps, price, 0.10, delta=0.0)[1].all()
