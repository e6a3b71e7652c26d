"""Distance and two-covariance scores against scipy references and a known model."""

import numpy as np
import pytest
from scipy.spatial.distance import cosine, mahalanobis
from scipy.stats import multivariate_normal
from sklearn.metrics import roc_auc_score

from facelib.verify import scores as S


def _two_cov_data(rng, n_id=200, per=5, d=4):
    A = rng.normal(size=(d, d))
    Sb = A @ A.T / d + np.eye(d) * 0.5
    B = rng.normal(size=(d, d))
    Sw = B @ B.T / d * 0.3 + np.eye(d) * 0.1
    ids = np.repeat(np.arange(n_id), per)
    a = rng.multivariate_normal(np.zeros(d), Sb, size=n_id)
    X = 1.0 + a[ids] + rng.multivariate_normal(np.zeros(d), Sw, size=n_id * per)
    return X, ids, Sb, Sw


def test_within_covariance_is_pooled_and_between_is_consistent():
    rng = np.random.default_rng(0)
    X, ids, Sb, Sw = _two_cov_data(rng, n_id=1500, per=4)
    Sw_hat, Sb_hat, mu, df = S.within_between_covariance(X, ids)
    # pooled within covariance: sum of squared deviations from person means / (N - K)
    means = np.stack([X[ids == p].mean(0) for p in range(1500)])
    R = X - means[ids]
    assert Sw_hat == pytest.approx(R.T @ R / (len(X) - 1500))
    assert df == len(X) - 1500
    assert np.abs(Sw_hat - Sw).max() < 0.1 * np.abs(Sw).max()
    assert np.abs(Sb_hat - Sb).max() < 0.15 * np.abs(Sb).max()
    # the pair-only estimate converges to the same Sw
    left, right = np.arange(0, len(X), 4), np.arange(1, len(X), 4)
    Sw_p, _, _, _ = S.pair_covariances(X[left], X[right], np.ones(left.size, bool))
    assert np.abs(Sw_p - Sw).max() < 0.15 * np.abs(Sw).max()


def test_mahalanobis_matches_scipy():
    rng = np.random.default_rng(1)
    X, ids, _, _ = _two_cov_data(rng, n_id=30)
    m = S.MahalanobisScore(shrinkage=0.1).fit(X, ids)
    L, R = X[:7], X[7:14]
    ref = [mahalanobis(l, r, m.precision_) for l, r in zip(L, R)]
    assert -m.score_pairs(L, R) == pytest.approx(ref)
    Sw, _, _, _ = S.within_between_covariance(X, ids)
    assert m.within_cov_ == pytest.approx(0.9 * Sw + 0.1 * np.trace(Sw) / Sw.shape[0] * np.eye(Sw.shape[0]))


def test_cosine_and_euclidean_match_scipy():
    rng = np.random.default_rng(2)
    L, R = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    c = S.CosineScore().fit(np.r_[L, R])
    assert c.score_pairs(L, R) == pytest.approx([1 - cosine(l, r) for l, r in zip(L, R)])
    e = S.EuclideanScore().fit(np.r_[L, R])
    assert e.score_pairs(L, R) == pytest.approx(-np.linalg.norm(L - R, axis=1))


def test_plda_llr_equals_gaussian_logpdf_ratio():
    rng = np.random.default_rng(3)
    X, ids, _, _ = _two_cov_data(rng, n_id=40, d=3)
    m = S.TwoCovarianceScore(shrinkage=0.05).fit(X, ids)
    Sb, Sw, mu = m.between_cov_, m.within_cov_, m.mean_
    T = Sb + Sw
    same = multivariate_normal(np.r_[mu, mu], np.block([[T, Sb], [Sb, T]]))
    diff = multivariate_normal(mu, T)
    L, R = X[:6], X[10:16]
    ref = [same.logpdf(np.r_[l, r]) - diff.logpdf(l) - diff.logpdf(r) for l, r in zip(L, R)]
    assert m.score_pairs(L, R) == pytest.approx(ref, rel=1e-8, abs=1e-8)
    # symmetric in the order of the pair
    assert m.score_pairs(R, L) == pytest.approx(m.score_pairs(L, R))


def test_plda_ranks_same_above_different_on_two_covariance_data():
    rng = np.random.default_rng(4)
    X, ids, _, _ = _two_cov_data(rng, n_id=300, per=4)
    tr = ids < 200
    Xt, idt = X[~tr], ids[~tr]
    first = np.flatnonzero(np.r_[True, idt[1:] != idt[:-1]])
    L_same, R_same = Xt[first], Xt[first + 1]
    L_diff, R_diff = Xt[first], Xt[np.roll(first, 1) + 2]
    y = np.r_[np.ones(len(first)), np.zeros(len(first))]
    for fit_by in ("identities", "pairs"):
        m = S.TwoCovarianceScore()
        if fit_by == "identities":
            m.fit(X[tr], ids[tr])
        else:
            i = np.flatnonzero(tr)[::4]
            m.fit_pairs(np.r_[X[i], X[i]], np.r_[X[i + 1], X[np.roll(i, 1) + 2]],
                        np.r_[np.ones(i.size, bool), np.zeros(i.size, bool)])
        s = np.r_[m.score_pairs(L_same, R_same), m.score_pairs(L_diff, R_diff)]
        auc = roc_auc_score(y, s)
        assert auc > 0.9, (fit_by, auc)
    # the LLR beats plain Euclidean distance on this anisotropic model (or at least matches it)
    e = S.EuclideanScore().fit(X[tr])
    s_e = np.r_[e.score_pairs(L_same, R_same), e.score_pairs(L_diff, R_diff)]
    assert auc >= roc_auc_score(y, s_e) - 0.02


def test_scorers_explain_bad_input():
    with pytest.raises(ValueError, match="identity labels"):
        S.MahalanobisScore().fit(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="two images"):
        S.TwoCovarianceScore().fit(np.random.default_rng(0).normal(size=(4, 2)), [0, 1, 2, 3])
    m = S.EuclideanScore().fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="dimension"):
        m.score_pairs(np.zeros((2, 3)), np.zeros((2, 3)))


def test_quadratic_forms_match_a_per_row_loop():
    rng = np.random.default_rng(3)
    x, y, m = rng.normal(size=(7, 5)), rng.normal(size=(7, 5)), rng.normal(size=(5, 5))
    want_xx = np.array([xi @ m @ xi for xi in x])
    want_xy = np.array([xi @ m @ yi for xi, yi in zip(x, y)])
    np.testing.assert_allclose(S.quadratic_forms(x, m), want_xx, rtol=1e-12)
    np.testing.assert_allclose(S.quadratic_forms(x, m, y), want_xy, rtol=1e-12)


@pytest.mark.parametrize("scorer", [S.TwoCovarianceScore, S.MahalanobisScore, S.CosineScore])
def test_more_components_than_dimensions_is_a_clear_error(scorer):
    rng = np.random.default_rng(0)
    X, ids = rng.normal(size=(40, 6)), np.repeat(np.arange(10), 4)
    with pytest.raises(ValueError, match=r"n_components <= 6"):
        scorer(n_components=50).fit(X, ids)
    assert scorer(n_components=6).fit(X, ids).score_pairs(X[:3], X[3:6]).shape == (3,)


def test_an_image_listed_twice_counts_once_in_the_identity_fit():
    # LFW's pair lists repeat images; copies must not pass for zero within-person variation
    rng = np.random.default_rng(1)
    X, ids, _, _ = _two_cov_data(rng, n_id=100, per=3)
    repeat = rng.integers(0, len(X), size=200)
    Xd, idd = np.concatenate([X, X[repeat]]), np.concatenate([ids, ids[repeat]])
    once = S.TwoCovarianceScore(shrinkage=0.0).fit(X, ids)
    listed = S.TwoCovarianceScore(shrinkage=0.0).fit(Xd, idd)
    assert listed.within_cov_ == pytest.approx(once.within_cov_)
    assert listed.between_cov_ == pytest.approx(once.between_cov_)
    naive_within = S.within_between_covariance(Xd, idd)[0]
    assert not np.allclose(naive_within, once.within_cov_, rtol=0.05)
