"""Pair features: symmetry, input forms, train-only fitting, pipelines and the Logit table."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

from facelib.verify import features as F


def _pairs(rng, n=120, d=5):
    ids = rng.integers(0, 10, size=(n, 2))
    same = rng.random(n) < 0.5
    ids[same, 1] = ids[same, 0]
    centres = rng.normal(size=(10, d)) * 2
    X = centres[ids] + rng.normal(size=(n, 2, d)) * 0.7
    return X, same


@pytest.mark.parametrize("combine", sorted(F.COMBINERS))
def test_symmetry(combine):
    rng = np.random.default_rng(0)
    X, _ = _pairs(rng)
    swapped = X[:, ::-1, :]
    pf = F.PairFeatures(combine=combine, pre_pca=3, standardize=False).fit(X)
    a, b = pf.transform(X), pf.transform(swapped)
    if combine in F.SYMMETRIC_COMBINERS:
        assert np.allclose(a, b)
    elif combine == "diff":
        assert np.allclose(a, -b)
    else:
        assert not np.allclose(a, b)


def test_flat_and_stacked_inputs_agree():
    rng = np.random.default_rng(1)
    X, _ = _pairs(rng)
    flat = np.concatenate([X[:, 0], X[:, 1]], axis=1)
    pf = F.PairFeatures(combine="concat", pre_pca=2, post_pca=3).fit(X)
    assert np.allclose(pf.transform(flat), pf.transform(X))


def test_pre_pca_counts_each_image_once_and_uses_training_only():
    rng = np.random.default_rng(2)
    X, _ = _pairs(rng, n=60)
    # repeating some pairs (images) must not change the single-image PCA
    Xdup = np.concatenate([X, X[:10], X[:10]])
    a = F.PairFeatures(pre_pca=3).fit(X).pre_pca_
    b = F.PairFeatures(pre_pca=3).fit(Xdup).pre_pca_
    assert np.allclose(np.abs(a.components_), np.abs(b.components_))
    # the PCA equals sklearn's PCA on the stack of distinct images
    from sklearn.decomposition import PCA

    ref = PCA(3, svd_solver="full").fit(X.reshape(-1, X.shape[2]))
    assert np.allclose(np.abs(a.components_), np.abs(ref.components_))
    # transform never refits: new pairs go through the fitted stages
    pf = F.PairFeatures(pre_pca=3, post_pca=2).fit(X)
    before = pf.pre_pca_.mean_.copy(), pf.scaler_.mean_.copy()
    pf.transform(X + 100.0)
    assert np.allclose(pf.pre_pca_.mean_, before[0]) and np.allclose(pf.scaler_.mean_, before[1])


def test_pair_array_from_table():
    emb = np.arange(12.0).reshape(6, 2)
    table = pd.DataFrame({"left": [0, 2], "right": [5, 3], "same": [True, False], "fold": [0, 0]})
    P = F.pair_array(emb, table)
    assert P.shape == (2, 2, 2) and np.allclose(P[0, 1], emb[5])
    with pytest.raises(IndexError, match="same dataset"):
        F.pair_array(emb[:4], table)


def test_bad_inputs_explained():
    with pytest.raises(ValueError, match="pair_array"):
        F.PairFeatures().fit(np.zeros((4, 3, 2)))
    with pytest.raises(ValueError, match="2\\*d"):
        F.PairFeatures().fit(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="unknown combine"):
        F.PairFeatures(combine="sum").fit(np.zeros((4, 2, 2)))
    with pytest.raises(ValueError, match="components"):
        F.PairFeatures(pre_pca=50).fit(np.random.default_rng(0).normal(size=(5, 2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        F.PairFeatures().fit(np.full((4, 2, 2), np.nan))


@pytest.mark.parametrize("clf", sorted(F.CLASSIFIERS))
def test_every_classifier_learns_easy_pairs(clf):
    rng = np.random.default_rng(3)
    X, y = _pairs(rng, n=200)
    pipe = F.make_pipeline(clf, combine="absdiff", pre_pca=4)
    pipe.fit(X[:150], y[:150])
    s = F.pair_scores(pipe, X[150:])
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y[150:], s) > 0.8


def test_grid_search_tunes_inside_training_data():
    rng = np.random.default_rng(4)
    X, y = _pairs(rng, n=150)
    gs = F.tuned_pipeline("knn", combine="absdiff", pre_pca=[2, 4])
    assert isinstance(gs, GridSearchCV)
    gs.fit(X, y)
    assert gs.best_params_["pairs__pre_pca"] in (2, 4)
    assert gs.best_params_["clf__n_neighbors"] in (5, 15, 45)
    assert F.pair_scores(gs, X).shape == (150,)


def test_logit_table_matches_unpenalised_logistic_regression():
    rng = np.random.default_rng(5)
    Xf = rng.normal(size=(400, 2))
    y = rng.random(400) < 1 / (1 + np.exp(-(0.5 + 1.5 * Xf[:, 0])))
    tab = F.logit_table(Xf, y, names=["a", "b"])
    ref = LogisticRegression(C=np.inf, max_iter=5000, tol=1e-10).fit(Xf, y)
    assert tab.loc["a", "coef"] == pytest.approx(ref.coef_[0, 0], rel=1e-4)
    assert tab.loc["const", "coef"] == pytest.approx(ref.intercept_[0], rel=1e-4)
    # standard errors: sqrt(diag((X' W X)^-1)) at the MLE
    Xc = np.c_[np.ones(400), Xf]
    p = 1 / (1 + np.exp(-Xc @ tab["coef"].to_numpy()))
    se = np.sqrt(np.diag(np.linalg.inv(Xc.T @ (Xc * (p * (1 - p))[:, None]))))
    assert tab["std_err"].to_numpy() == pytest.approx(se, rel=1e-5)
    assert tab.loc["a", "p"] < 1e-6 < tab.loc["b", "p"]
    assert list(tab.columns) == ["coef", "std_err", "z", "p", "ci_low", "ci_high"]
