"""Hotelling T² against a direct numpy formula and statsmodels; per-latent identity tests."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats import multivariate as sm_mv
from statsmodels.stats.oneway import anova_oneway

from facelib.verify import hotelling as H


def _direct_two_sample(a, b):
    n1, n2, p = len(a), len(b), a.shape[1]
    d = a.mean(0) - b.mean(0)
    S = (sum(np.outer(r - a.mean(0), r - a.mean(0)) for r in a)
         + sum(np.outer(r - b.mean(0), r - b.mean(0)) for r in b)) / (n1 + n2 - 2)
    t2 = n1 * n2 / (n1 + n2) * d @ np.linalg.inv(S) @ d
    f = (n1 + n2 - p - 1) / (p * (n1 + n2 - 2)) * t2
    return t2, f, stats.f.sf(f, p, n1 + n2 - p - 1)


def test_two_sample_matches_numpy_and_statsmodels():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(12, 3))
    b = rng.normal(size=(9, 3)) + [0.8, 0.0, -0.3]
    r = H.hotelling_two_sample(a, b)
    t2, f, p = _direct_two_sample(a, b)
    assert (r.t2, r.f, r.pvalue) == pytest.approx((t2, f, p), rel=1e-10)
    sm = sm_mv.test_mvmean_2indep(a, b)
    assert r.t2 == pytest.approx(sm.t2) and r.f == pytest.approx(sm.statistic)
    assert (r.df1, r.df2) == tuple(sm.df) and r.pvalue == pytest.approx(sm.pvalue)


def test_one_sample_matches_statsmodels():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(15, 4)) + 0.3
    r = H.hotelling_one_sample(x, np.zeros(4))
    sm = sm_mv.test_mvmean(x, np.zeros(4))
    assert r.t2 == pytest.approx(sm.t2) and r.f == pytest.approx(sm.statistic)
    assert r.pvalue == pytest.approx(sm.pvalue) and (r.df1, r.df2) == tuple(sm.df)


def test_too_few_samples_is_explained():
    with pytest.raises(ValueError, match="PCA"):
        H.hotelling_two_sample(np.zeros((2, 5)), np.ones((2, 5)))


def test_pair_difference_test_on_pairs():
    rng = np.random.default_rng(2)
    ids = np.repeat(np.arange(30), 4)
    emb = rng.normal(size=(30, 3))[ids] * 2 + rng.normal(size=(120, 3)) * 0.5
    same_rows, diff_rows = [], []
    for p in range(30):
        same_rows.append((4 * p, 4 * p + 1, True))
        diff_rows.append((4 * p + 2, (4 * p + 7) % 120, False))
    table = pd.DataFrame(same_rows + diff_rows, columns=["left", "right", "same"]).assign(fold=0)
    r = H.pair_difference_test(emb, table)
    assert r.pvalue < 1e-6 and r.df1 == 3 and r.df2 == 60 - 3 - 1
    # the test agrees with the two-sample test on the |differences| it is built from
    D = np.abs(emb[table.left] - emb[table.right])
    s = table.same.to_numpy()
    assert r.t2 == pytest.approx(H.hotelling_two_sample(D[s], D[~s]).t2)


def test_probe_t2_matches_formula_and_ranks_probes():
    rng = np.random.default_rng(3)
    n_id, per, p = 20, 8, 3
    ids = np.repeat(np.arange(n_id), per)
    centres = rng.normal(size=(n_id, p)) * 3
    X = centres[ids] + rng.normal(size=(n_id * per, p))
    sc = H.ProbeT2Score().fit(X, ids)
    # direct: pooled within covariance, T² = n/(n+1) d' Sw^-1 d, F(p, df - p + 1)
    R = X - centres[ids] - (X - centres[ids]).reshape(n_id, per, p).mean(1)[ids]  # residuals from person means
    Sw = R.T @ R / (n_id * per - n_id)
    enrolled, probe = X[ids == 0][:5], centres[0] + rng.normal(size=p)
    d = probe - enrolled.mean(0)
    t2 = 5 / 6 * d @ np.linalg.inv(Sw) @ d
    res = sc.test_probe(probe, enrolled)
    df = n_id * per - n_id
    assert res.t2 == pytest.approx(t2)
    assert res.pvalue == pytest.approx(stats.f.sf(t2 * (df - p + 1) / (p * df), p, df - p + 1))
    # genuine probes fit better than impostors
    probes = centres[[1, 2]] + rng.normal(size=(2, p)) * 0.5
    s_true = sc.score_probes(probes, [1, 2], X, ids)
    s_false = sc.score_probes(probes, [2, 1], X, ids)
    assert np.all(s_true > s_false)


def test_latent_tests_find_planted_identity_latents():
    rng = np.random.default_rng(4)
    ids = np.repeat(np.arange(15), 6)
    Z = rng.normal(size=(90, 8))
    Z[:, [1, 5]] += rng.normal(size=(15, 2))[ids] * 1.5  # latents 1 and 5 carry identity
    for method in ("anova", "welch", "kruskal"):
        for corr in ("fdr_bh", "holm"):
            out = H.latent_identity_tests(Z, ids, method=method, correction=corr)
            assert set(out.index[out.reject]) == {1, 5}, (method, corr)
    out = H.latent_identity_tests(Z, ids, method="welch")
    ref = anova_oneway(Z[:, 1], groups=ids, use_var="unequal")
    assert out.statistic[1] == pytest.approx(ref.statistic) and out.p[1] == pytest.approx(ref.pvalue)
    out = H.latent_identity_tests(Z, ids, method="anova")
    ref = anova_oneway(Z[:, 5], groups=ids, use_var="equal")
    assert out.statistic[5] == pytest.approx(ref.statistic)
    assert np.all(out.p_adj >= out.p - 1e-15)
    assert out.eta2[1] > 0.5 > out.eta2[0]
