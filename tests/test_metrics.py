"""Routing metrics on small cases computed by hand (DESIGN.md "Evaluation metrics")."""

from __future__ import annotations

import numpy as np
import pytest

from router.routing.router import select
from router.training import baselines, metrics

# Two questions, two models: model 0 costs 1 per call, model 1 costs 10.
# Model 1 answers both; model 0 only the second. Best single model: 1 (acc 1.0, C_best 20).
Y = np.array([[0.0, 1.0], [1.0, 1.0]])
COST = np.array([[1.0, 10.0], [1.0, 10.0]])
PRICE = np.array([1.0, 10.0])


def test_best_single_model():
    assert metrics.best_single(Y, COST) == (1, 1.0, 20.0)


def test_oracle_curve_matches_hand_computation():
    s = metrics.sweep(baselines.oracle(Y), Y, COST, PRICE)
    # t < 1: q0 -> model 1 (the only correct one), q1 -> model 0 (cheapest correct): cost 11, acc 1.
    assert s["cost"][0] == 11.0 and s["accuracy"][0] == 1.0
    assert np.all(s["cost"][:-1] == 11.0)
    # t = 1: every model is a candidate, so both go to the cheapest: cost 2, acc 0.5.
    assert s["cost"][-1] == 2.0 and s["accuracy"][-1] == 0.5
    assert metrics.cost_save_at(s["cost"], s["accuracy"], 1.0, 20.0) == pytest.approx(0.45)
    assert metrics.cost_save_at(s["cost"], s["accuracy"], 0.95, 20.0) == pytest.approx(0.45)
    # E(x): 0 below 0.1, 0.5 on [0.1, 0.55), 1 from 0.55. Continuous area 0.675; the 201-point
    # trapezoid adds half a step (0.005 * 0.5 / 2) at each of the two jumps: 0.6775.
    assert metrics.aiq(s["cost"], s["accuracy"], 20.0) == pytest.approx(0.6775)


def test_single_model_curve_matches_hand_computation():
    P = np.tile([0.2, 0.9], (2, 1))  # the same ranking for every question: a prior router
    r = metrics.summarize(P, Y, COST, PRICE)
    assert set(zip(r["cost"], r["accuracy"])) == {(20.0, 1.0), (2.0, 0.5)}
    assert r["cost_save_at_parity"] == pytest.approx(0.0)
    # E = 0.5 on [0.1, 1) and 1 at x = 1: 0.45, plus half a step at the two jumps.
    assert r["aiq"] == pytest.approx(0.4525)
    assert r["max_accuracy"] == 1.0


def test_always_best_model_has_tiny_aiq():
    # Only the point (C_best, A_best): E(x) is A_best at x = 1 alone, so AIQ = A_best * 0.005 / 2.
    r = metrics.aiq(np.array([20.0]), np.array([1.0]), 20.0)
    assert r == pytest.approx(0.0025)


def test_cost_save_none_when_parity_never_reached():
    r = metrics.summarize(np.tile([1.0, 0.0], (2, 1)), Y, COST, PRICE)
    assert r["cost_save_at_parity"] is None
    assert r["cost_save_at_95"] is None
    assert r["aiq"] == pytest.approx(0.5 * 0.9 + 0.00125)


def test_unknown_labels_are_not_counted_as_wrong():
    Yn = np.array([[np.nan, 1.0], [1.0, 1.0]])
    s = metrics.sweep(np.tile([1.0, 0.0], (2, 1)), Yn, COST, PRICE, tolerances=[0.0])
    assert s["accuracy"][0] == 1.0  # q0's answer is unknown: left out, not a zero


def test_choose_is_the_selection_rule():
    rng = np.random.default_rng(3)
    P = np.round(rng.random((200, 5)), 2)  # rounding makes ties and threshold hits common
    price = np.array([3.0, 1.0, 1.0, 7.0, 0.5])
    for t in (0.0, 0.05, 0.2, 0.5, 1.0):
        got = metrics.choose(P, price, t)
        want = [select(list(p), list(price), t).chosen for p in P]
        assert got.tolist() == want


def test_auroc_and_brier_by_hand():
    assert metrics.auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1.0])) == pytest.approx(0.75)
    assert metrics.auroc(np.array([0.5, 0.5]), np.array([0, 1.0])) == pytest.approx(0.5)
    assert metrics.auroc(np.array([0.2, 0.3]), np.array([1, 1.0])) is None
    assert metrics.auroc(np.array([0.9, 0.1, 0.5]), np.array([1, 0, np.nan])) == 1.0
    assert metrics.brier(np.array([1.0, 0.5]), np.array([1, 0.0])) == pytest.approx(0.125)


def test_distribution_shares():
    d = metrics.distribution(np.array([[0, 0, 1, 2], [2, 2, 2, 2]]), ["a", "b", "c"])
    assert d == [{"a": 0.5, "b": 0.25, "c": 0.25}, {"a": 0.0, "b": 0.0, "c": 1.0}]


def test_baselines_shapes_and_knn_by_hand():
    Xtr = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    Ytr = np.array([[1.0, 0.0], [np.nan, 0.0], [0.0, 1.0]])
    P = baselines.knn(Xtr, Ytr, np.array([[1.0, 0.05]]), k=2)
    assert P.tolist() == [[1.0, 0.0]]  # two nearest are rows 0 and 1; row 1's unknown label is skipped
    assert baselines.prior(Ytr, 2).tolist() == [[0.5, 1 / 3], [0.5, 1 / 3]]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    Yb = (X[:, :2] > 0).astype(float)
    out = baselines.all_baselines(X[:40], Yb[:40], X[40:], Yb[40:], k=5)
    assert set(out) == {"oracle", "random", "prior", "knn-5", "logistic"}
    assert all(v.shape == (20, 2) for v in out.values())
    # A linear signal: logistic regression must rank far better than chance on held-out rows.
    assert metrics.auroc(out["logistic"][:, 0], Yb[40:, 0]) > 0.9
