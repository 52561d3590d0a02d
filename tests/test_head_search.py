"""Head families, calibration, CV folds, --extend and the search record (issue 17).

Synthetic data where the answer is known: three well-separated clusters of queries; slot 0 is right
exactly on cluster 0, slot 1 exactly on cluster 1, slot 2 is right everywhere.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from router.model.head import load_checkpoint, save_checkpoint
from router.model.heads import CalibratedHead, ColumnHead, ExtendedHead, load_head
from router.training import calibrate, metrics
from router.training.families import FAMILIES, IRT_GRID, MLP_GRID, fit_logistic_all
from router.training.search import cv_folds, run_search


def clusters(n=240, d=8, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, d)) * 4
    lab = np.arange(n) % 3
    X = (centers[lab] + rng.normal(size=(n, d))).astype(np.float32)
    Y = np.stack([lab == 0, lab == 1, np.ones(n, bool)], axis=1).astype(float)
    return X, Y, lab


SETTINGS = {
    "logistic": ({"Cs": [1.0]}, {"C_per_slot": [1.0, 1.0, 1.0]}),
    "knn": ({"k": 10, "weighting": "uniform"}, {}),
    "mlp": ({**MLP_GRID[1], "pca_dim": 8, "hidden": (16,), "lr": 1e-2}, {}),
    "irt": (IRT_GRID[0], {}),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_finds_the_cluster_a_model_is_right_on(family, tmp_path):
    X, Y, lab = clusters()
    fam = FAMILIES[family]()
    setting, chosen = SETTINGS[family]
    head = fam.fit(X[:180], Y[:180], setting, 0, chosen)
    P = head.predict(X[180:])
    test = lab[180:]
    assert P[test == 0, 0].mean() > 0.8 and P[test != 0, 0].mean() < 0.2
    assert P[test == 1, 1].mean() > 0.8 and P[test != 1, 1].mean() < 0.2
    assert P[:, 2].mean() > 0.8
    # safetensors + JSON round trip gives the same P (kNN keeps its training features)
    save_checkpoint(tmp_path / "ck", head, {"slots": ["a", "b", "c"], "encoder": {"source": "all-MiniLM-L6-v2"}})
    ck = load_checkpoint(tmp_path / "ck")
    np.testing.assert_allclose(ck.head.predict(X[180:]), P, atol=1e-6)
    assert json.loads((tmp_path / "ck" / "router.json").read_text())["head"]["spec"]["kind"] == family


def test_out_of_fold_predictions_find_the_clusters_too():
    X, Y, lab = clusters(n=150)
    folds = cv_folds([str(i) for i in range(len(X))], None, 5, 0)
    P, chosen = FAMILIES["logistic"]().oof(X, Y, folds, {"Cs": [0.1, 1.0]}, 0)
    assert set(chosen["C_per_slot"]) <= {0.1, 1.0}
    assert metrics.auroc(P[:, 0], Y[:, 0]) > 0.95 and metrics.auroc(P[:, 1], Y[:, 1]) > 0.95


def test_logistic_solver_matches_sklearn():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    Z = rng.normal(size=(300, 5))
    y = (Z[:, 0] - Z[:, 1] + rng.normal(size=300) > 0).astype(float)
    W, b = fit_logistic_all(Z, y[:, None], 0.3)
    ref = LogisticRegression(C=0.3, tol=1e-10, max_iter=2000).fit(Z, y)
    np.testing.assert_allclose(W[:, 0], ref.coef_[0], atol=1e-4)
    np.testing.assert_allclose(b[0], ref.intercept_[0], atol=1e-4)


def test_calibration_fixes_an_overconfident_slot():
    rng = np.random.default_rng(0)
    n = 2000
    # slot 0 says 0.9 / 0.1 but is right 65% / 35% of the time there; slot 1 is already calibrated
    hi = rng.random(n) < 0.5
    P = np.stack([np.where(hi, 0.9, 0.1), np.where(hi, 0.7, 0.3)], axis=1)
    Y = np.stack([rng.random(n) < np.where(hi, 0.65, 0.35), rng.random(n) < np.where(hi, 0.7, 0.3)], axis=1)
    Y = Y.astype(float)
    folds = np.arange(n) % 5
    methods, params, P_cal, _ = calibrate.choose(P, Y, folds)
    assert methods[0] != "none"
    assert metrics.ece(P_cal[:, 0], Y[:, 0]) < 0.05 < metrics.ece(P[:, 0], Y[:, 0])
    cal = CalibratedHead(_Fixed(P), methods, params)
    out = cal.predict(np.zeros((n, 1)))
    assert abs(out[hi, 0].mean() - 0.65) < 0.04 and abs(out[~hi, 0].mean() - 0.35) < 0.04
    assert abs(out[hi, 1].mean() - 0.7) < 0.04  # a calibrated slot stays where it was


def test_calibrated_head_maps_each_slot_with_its_own_method_and_leaves_identity_slots_alone():
    from router.model.heads import apply_calibration

    rng = np.random.default_rng(3)
    P = rng.uniform(0.01, 0.99, size=(50, 3)).astype(np.float32)
    before = P.copy()
    methods = ["platt", "none", "isotonic"]
    params = [np.array([2.0, -0.5], np.float32), np.zeros(0, np.float32),
              np.array([[0.0, 0.5, 1.0], [0.1, 0.2, 0.9]], np.float32)]
    out = CalibratedHead(_Fixed(P), methods, params).predict(np.zeros((50, 1)))
    ref = np.stack([apply_calibration(P[:, j], m, q) for j, (m, q) in enumerate(zip(methods, params))], axis=1)
    assert out.dtype == ref.dtype and np.array_equal(out, ref)
    assert np.array_equal(out[:, 1], P[:, 1]) and not np.allclose(out[:, 0], P[:, 0])
    assert np.array_equal(P, before)  # the base head's own P is not written into
    same = CalibratedHead(_Fixed(P), ["none"] * 3, [np.zeros(0, np.float32)] * 3).predict(np.zeros((50, 1)))
    assert np.array_equal(same, P)
    with pytest.raises(Exception, match="unknown calibration method"):
        CalibratedHead(_Fixed(P), ["platt", "none", "bogus"], params).predict(np.zeros((50, 1)))


class _Fixed:
    """A stand-in head that returns a fixed P (for calibration maps only)."""

    def __init__(self, P):
        self.P, self.n_slots, self.in_dim = P, P.shape[1], 1

    def predict(self, X):
        return self.P[: len(X)]


def test_isotonic_map_is_monotone_and_bounded():
    p = np.linspace(0, 1, 500)
    y = (p > 0.6).astype(float)
    par = calibrate.fit_map("isotonic", p, y)
    from router.model.heads import apply_calibration

    out = apply_calibration(np.array([0.0, 0.3, 0.59, 0.61, 0.9, 1.0]), "isotonic", par)
    assert np.all(np.diff(out) >= 0) and out.min() >= 0.0099 and out.max() <= 0.9901
    assert out[1] < 0.1 and out[4] > 0.9


def test_cv_folds_group_by_question_and_stratify_by_task():
    qs = [f"q{i // 2}" for i in range(200)]  # every question twice (e.g. two ids, same text)
    tasks = ["a" if i < 150 else "b" for i in range(200)]
    folds = cv_folds(qs, tasks, 5, seed=3)
    for i in range(0, 200, 2):
        assert folds[i] == folds[i + 1]
    for t in "ab":
        counts = np.bincount(folds[[i for i in range(200) if tasks[i] == t]], minlength=5)
        assert counts.max() - counts.min() <= 2  # one group (2 rows) of difference at most
    assert not np.array_equal(folds, cv_folds(qs, tasks, 5, seed=4))


def test_search_records_every_candidate_and_picks_a_good_head():
    X, Y, lab = clusters(n=150)
    cost = np.tile([1.0, 1.0, 5.0], (len(X), 1))
    res = run_search(X, Y, cost, [str(i) for i in range(len(X))], None, k=3, seed=0,
                     heads=["logistic", "knn"], progress=False)
    names = [c["name"] for c in res["candidates"]]
    assert "logistic" in names and any(n.startswith("knn[") for n in names) and any(n.startswith("average(") for n in names)
    assert res["winner"].name == names[0]  # the table is ranked, winner first
    assert all(c["aiq"] is not None and c["mean_auroc"] is not None for c in res["candidates"])
    # the two cheap specialists cover clusters 0 and 1: a good head routes almost like the oracle
    from router.training.search import expected_costs, score

    oracle = score(Y, Y, cost, expected_costs(cost))["aiq"]
    prior = score(np.tile(Y.mean(0), (len(Y), 1)), Y, cost, expected_costs(cost))["aiq"]
    assert res["candidates"][0]["aiq"] > oracle - 0.02 and oracle - prior > 0.1


def test_extend_adds_a_column_without_changing_the_others(tmp_path):
    from router.training.extend import fit_column

    X, Y, lab = clusters(n=300)
    base = FAMILIES["irt"]().fit(X[:200], Y[:200, :2], IRT_GRID[0], 0, {})
    # the new model is right exactly where slot 2 of the data... let's make it "not cluster 2"
    y_new = (lab != 2).astype(float)
    col, info = fit_column(X[:120], y_new[:120], base)
    assert info["n_labels"] == 120 and info["input"] in ColumnHead.SOURCES and info["criterion"] == "cv_logloss"
    ext = ExtendedHead(base, [col])
    P = ext.predict(X[200:])
    np.testing.assert_array_equal(P[:, :2], base.predict(X[200:]))
    assert P[lab[200:] != 2, 2].mean() > 0.8 and P[lab[200:] == 2, 2].mean() < 0.2
    save_checkpoint(tmp_path / "ck", ext, {"slots": ["a", "b", "new"], "encoder": {"source": "all-MiniLM-L6-v2"}})
    np.testing.assert_allclose(load_checkpoint(tmp_path / "ck").head.predict(X[200:]), P, atol=1e-6)


def test_extend_chooses_by_the_pools_aiq_when_the_others_are_labelled_too():
    # The base knows slot A (right on cluster 0, dear); the new model B is cheap and right exactly on
    # cluster 1, where A's logit says nothing (clusters 1 and 2 look alike to it). With A's labels on
    # the same rows the choice is the extended pool's CV AIQ, and the column must route cluster 1 to B.
    from router.training.data import LabelTable
    from router.training.extend import fit_column, pool_labels
    from router.training.search import expected_costs, score

    X, _, lab = clusters(n=360)
    ya, yb = (lab == 0).astype(float), (lab == 1).astype(float)
    base = FAMILIES["knn"]().fit(X[:240], ya[:240, None], {"k": 10, "weighting": "uniform"}, 0, {})
    Y, cost = np.stack([ya, yb], 1), np.tile([1.0, 0.1], (len(ya), 1))
    col, info = fit_column(X[240:], yb[240:], base, pool=(Y[240:], cost[240:]))
    assert info["criterion"] == "cv_aiq" and all("aiq" in r and "logloss" in r for r in info["cv"].values())
    best = max(r["aiq"] for r in info["cv"].values())
    assert info["cv"][f"{info['input']}/C={info['C']:g}"]["aiq"] >= best - 0.002 and info["input"] != "slots"
    P = ExtendedHead(base, [col]).predict(X[:240])
    assert P[lab[:240] == 1, 1].mean() > 0.8 and P[lab[:240] == 2, 1].mean() < 0.2
    ext_aiq = score(P, Y[:240], cost[:240], expected_costs(cost))["aiq"]
    oracle = score(Y[:240], Y[:240], cost[:240], expected_costs(cost))["aiq"]
    assert ext_aiq > oracle - 0.02
    # labels of the new model alone (the old slots absent from the data): log loss decides
    one = np.ones((3, 1))
    t = LabelTable(ids=["1", "2", "3"], questions=["x", "y", "z"], models=["b"], Y=one, cost=one,
                   output_tokens=one, input_tokens=one)
    assert pool_labels(t, np.arange(3), ["a"], "b") is None
    both = LabelTable(ids=t.ids, questions=t.questions, models=["a", "b"], Y=np.ones((3, 2)), cost=np.ones((3, 2)),
                      output_tokens=np.ones((3, 2)), input_tokens=np.ones((3, 2)))
    assert pool_labels(both, np.arange(3), ["a"], "b")[0].shape == (3, 2)


def test_unknown_head_kind_is_a_clear_error():
    from router.errors import CheckpointError

    with pytest.raises(CheckpointError, match="head kind 'forest' is not known"):
        load_head({"kind": "forest"}, {})


def test_knn_grid_widens_only_when_the_best_k_is_at_its_edge():
    from router.training.families import KNN_KS, KNNFamily

    top = max(KNN_KS)
    assert KNNFamily.wider(top, 10_000) == [2 * top]
    assert KNNFamily.wider(top // 2, 10_000) == []  # an inner optimum stays
    assert KNNFamily.wider(top, 4 * top) == []  # a neighbourhood never exceeds a quarter of a fold
    assert KNNFamily.wider(2 * top, 10_000, KNN_KS + (2 * top,)) == [4 * top]


def test_search_tries_a_wider_knn_when_smooth_labels_want_it():
    # Two slots whose accuracies are smooth, opposite functions of a 1-d feature, under heavy label
    # noise: the more neighbours averaged the better, so CV walks past the grid's edge.
    from router.training.families import KNN_KS

    rng = np.random.default_rng(0)
    n = 3000
    x = rng.uniform(-1, 1, size=(n, 1)).astype(np.float32)
    X = np.hstack([x, np.ones((n, 1), np.float32)])
    Y = np.stack([rng.random(n) < 0.5 + 0.25 * x[:, 0], rng.random(n) < 0.5 - 0.25 * x[:, 0]], axis=1).astype(float)
    cost = np.tile([1.0, 0.1], (n, 1))
    res = run_search(X, Y, cost, [str(i) for i in range(n)], None, heads=["knn"], progress=False)
    ks = {c["setting"]["k"] for c in res["candidates"]}
    assert max(ks) > max(KNN_KS)


def test_refit_winner_keeps_the_choice_and_fits_it_on_the_other_features():
    # `train --finetune-layers` selects on frozen features and refits the winner on the tuned ones
    from router.training.search import refit_winner

    X, Y, lab = clusters(n=150)
    cost = np.tile([1.0, 1.0, 5.0], (len(X), 1))
    blurred = X + np.random.default_rng(1).normal(size=X.shape).astype(np.float32) * 6  # weaker "frozen" features
    res = run_search(blurred, Y, cost, [str(i) for i in range(len(X))], None, k=3, seed=0,
                     heads=["logistic", "knn"], progress=False)
    out = refit_winner(X, Y, cost, res, seed=0, progress=False)
    assert out["winner"] is res["winner"] and out["candidates"] == res["candidates"]
    assert out["P_oof"].shape == Y.shape and out["refit"]["features"] == "tuned"
    # the refitted head reads the sharper features: it separates the clusters better than the selection's
    from router.training.search import expected_costs, score

    ec = expected_costs(cost)
    assert out["refit"]["cv_aiq_optimistic"] is not None
    assert score(out["P_oof_calibrated"], Y, cost, ec)["mean_auroc"] > res["candidates"][0]["mean_auroc"] + 0.05
    sharp, blur = out["head"].predict(X), res["head"].predict(X)
    assert sharp.shape == Y.shape and np.abs(sharp - blur).max() > 0.05  # a new fit, not the selection's head
    assert P_close_to(out["P_oof_calibrated"][:, 0][lab == 0], 1) and P_close_to(out["P_oof_calibrated"][:, 0][lab != 0], 0)
    # train selects with fit=False (its head would be thrown away); the refit is the same without it
    unfitted = run_search(blurred, Y, cost, [str(i) for i in range(len(X))], None, k=3, seed=0,
                          heads=["logistic", "knn"], progress=False, fit=False)
    assert unfitted["head"] is None and unfitted["winner"].name == res["winner"].name
    np.testing.assert_allclose(refit_winner(X, Y, cost, unfitted, seed=0, progress=False)["head"].predict(X), sharp)


def P_close_to(p, target, tol=0.2):
    return abs(float(np.mean(p)) - target) < tol


def test_knn_base_grid_is_bounded_by_the_fold_size():
    """228 questions once picked k=160 (88% of a fold) and calibration then read P 0.97 against 0.68 observed."""
    from router.training.families import KNN_KS, KNNFamily

    assert KNNFamily.grid(10_000) == list(KNN_KS)
    assert KNNFamily.grid(182) == [k for k in KNN_KS if k <= 45]
    assert KNNFamily.grid(8) == [KNN_KS[0]]  # the smallest k always stays


def test_search_on_small_data_never_tries_a_k_over_a_quarter_of_a_fold():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 8)).astype(np.float32)
    Y = (rng.random((120, 2)) < 0.6).astype(np.float32)
    res = run_search(X, Y, np.ones((120, 2)), [str(i) for i in range(120)], None, k=5, seed=0, heads=["knn"],
                     progress=False)
    ks = {c["setting"]["k"] for c in res["candidates"] if c["family"] == "knn"}
    assert ks and max(ks) <= 96 // 4
