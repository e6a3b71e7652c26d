"""Distance and two-covariance scores against scipy references and a known model."""

import numpy as np
import pytest
from scipy.spatial.distance import cosine, mahalanobis
from scipy.stats import multivariate_normal
from sklearn.metrics import roc_auc_score

from facelib.registry import Registry, UnknownNameError
from facelib.verify import covariances as C
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
    Sw_hat, Sb_hat, mu, df = C.within_between_covariance(X, ids)
    # pooled within covariance: sum of squared deviations from person means / (N - K)
    means = np.stack([X[ids == p].mean(0) for p in range(1500)])
    R = X - means[ids]
    assert Sw_hat == pytest.approx(R.T @ R / (len(X) - 1500))
    assert df == len(X) - 1500
    assert np.abs(Sw_hat - Sw).max() < 0.1 * np.abs(Sw).max()
    assert np.abs(Sb_hat - Sb).max() < 0.15 * np.abs(Sb).max()
    # the pair-only estimate converges to the same Sw
    left, right = np.arange(0, len(X), 4), np.arange(1, len(X), 4)
    Sw_p, _, _, _ = C.pair_covariances(X[left], X[right], np.ones(left.size, bool))
    assert np.abs(Sw_p - Sw).max() < 0.15 * np.abs(Sw).max()


def test_mahalanobis_matches_scipy():
    rng = np.random.default_rng(1)
    X, ids, _, _ = _two_cov_data(rng, n_id=30)
    m = S.MahalanobisScore(shrinkage=0.1).fit(X, ids)
    L, R = X[:7], X[7:14]
    ref = [mahalanobis(l, r, m.precision_) for l, r in zip(L, R)]
    assert -m.score_pairs(L, R) == pytest.approx(ref)
    Sw, _, _, _ = C.within_between_covariance(X, ids)
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
    np.testing.assert_allclose(C.quadratic_forms(x, m), want_xx, rtol=1e-12)
    np.testing.assert_allclose(C.quadratic_forms(x, m, y), want_xy, rtol=1e-12)


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
    naive_within = C.within_between_covariance(Xd, idd)[0]
    assert not np.allclose(naive_within, once.within_cov_, rtol=0.05)


def _unbalanced_two_cov_data(rng, counts, d=3):
    A = rng.normal(size=(d, d))
    Sb = A @ A.T / d + np.eye(d) * 0.5
    B = rng.normal(size=(d, d))
    Sw = B @ B.T / d * 0.3 + np.eye(d) * 0.1
    ids = np.repeat(np.arange(len(counts)), counts)
    a = rng.multivariate_normal(np.zeros(d), Sb, size=len(counts))
    X = 1.0 + a[ids] + rng.multivariate_normal(np.zeros(d), Sw, size=ids.size)
    return X, ids, Sb, Sw


def test_two_covariance_loglik_matches_stacked_gaussian():
    # each person's images stacked into one n*d vector: N(1 (x) mu, I (x) Sw + 11' (x) Sb)
    rng = np.random.default_rng(20)
    counts = [1, 2, 3, 1, 5, 2]
    X, ids, Sb, Sw = _unbalanced_two_cov_data(rng, counts)
    mu = np.full(3, 0.7)
    ref = 0.0
    for p, n in enumerate(counts):
        cov = np.kron(np.eye(n), Sw) + np.kron(np.ones((n, n)), Sb)
        ref += multivariate_normal(np.tile(mu, n), cov).logpdf(X[ids == p].reshape(-1))
    shuffled = rng.permutation(ids.size)  # row order must not matter
    assert C.two_covariance_loglik(X[shuffled], ids[shuffled], Sw, Sb, mu) == pytest.approx(ref, rel=1e-10)
    # unlabelled rows (identity < 0) are left out
    Xu, idu = np.r_[X, rng.normal(size=(2, 3))], np.r_[ids, [-1, -1]]
    assert C.two_covariance_loglik(Xu, idu, Sw, Sb, mu) == pytest.approx(ref, rel=1e-10)


def test_two_covariance_em_reaches_the_balanced_closed_form_ml():
    # with n images for every person the ML estimates are closed-form:
    # Sw = within scatter / (K (n - 1)), Sb = cov of means (divisor K) - Sw / n, mu = grand mean
    rng = np.random.default_rng(21)
    K, n = 300, 4
    X, ids, _, _ = _unbalanced_two_cov_data(rng, [n] * K)
    Sw, Sb, mu, history = C.two_covariance_em(X, ids, max_iter=500, tol=1e-13)
    means = X.reshape(K, n, -1).mean(1)
    R = X - np.repeat(means, n, axis=0)
    Sw_ml = R.T @ R / (K * (n - 1))
    Sb_ml = (means - means.mean(0)).T @ (means - means.mean(0)) / K - Sw_ml / n
    assert np.linalg.eigvalsh(Sb_ml).min() > 0  # interior optimum, so EM must reach it
    assert Sw == pytest.approx(Sw_ml, abs=1e-4)
    assert Sb == pytest.approx(Sb_ml, abs=1e-4)
    assert mu == pytest.approx(means.mean(0))


def test_two_covariance_em_climbs_above_the_moments_on_unbalanced_data():
    rng = np.random.default_rng(22)
    counts = rng.choice([1, 1, 1, 2, 3, 8, 20], size=400)
    X, ids, Sb_true, Sw_true = _unbalanced_two_cov_data(rng, counts)
    Sw0, Sb0, mu0, _ = C.within_between_covariance(X, ids)
    Sw, Sb, mu, history = C.two_covariance_em(X, ids, max_iter=200)
    assert np.all(np.diff(history) >= -1e-8 * np.abs(history[:-1]))  # EM never goes down
    assert history[-1] > C.two_covariance_loglik(X, ids, Sw0, Sb0 + 1e-6 * np.eye(3), mu0)
    assert history[-1] == pytest.approx(C.two_covariance_loglik(X, ids, Sw, Sb, mu))
    assert np.abs(Sw - Sw_true).max() < 0.15 * np.abs(Sw_true).max()
    assert np.abs(Sb - Sb_true).max() < 0.25 * np.abs(Sb_true).max()


def test_plda_em_and_length_norm_options():
    rng = np.random.default_rng(23)
    counts = np.r_[rng.choice([1, 2, 3, 6], size=300), [2] * 200]  # the last 200 people are held out
    X, ids, _, _ = _unbalanced_two_cov_data(rng, counts, d=4)
    Xt, X, ids = X[-400:], X[:-400], ids[:-400]
    em = S.TwoCovarianceScore(estimator="em").fit(X, ids)
    Sw, Sb, mu, _ = C.two_covariance_em(X, ids)
    assert em.within_cov_ == pytest.approx(C.shrink(Sw, 0.05))
    assert em.between_cov_ == pytest.approx(C.shrink(Sb, 0.05))
    # length normalisation = sklearn's whitening PCA then unit rows, then the plain model
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import Normalizer

    ln = S.TwoCovarianceScore(n_components=3, length_norm=True).fit(X, ids)
    pca = PCA(3, whiten=True, random_state=0).fit(X)
    Z = Normalizer().fit_transform(pca.transform(X))
    ref = S.TwoCovarianceScore().fit(Z, ids)
    L, R = X[:20], X[20:40]
    assert ln.score_pairs(L, R) == pytest.approx(ref.score_pairs(Z[:20], Z[20:40]))
    # both rank same-person pairs of held-out people above different-person pairs
    L, R = Xt[0::2], Xt[1::2]
    same = np.r_[np.ones(200), np.zeros(199)]
    for m in (em, S.TwoCovarianceScore(estimator="em", length_norm=True).fit(X, ids)):
        s = np.r_[m.score_pairs(L, R), m.score_pairs(L[:-1], R[1:])]
        assert roc_auc_score(same, s) > 0.9


def test_plda_em_refuses_pair_labels_and_unknown_estimators():
    rng = np.random.default_rng(25)
    X, ids, _, _ = _unbalanced_two_cov_data(rng, [3] * 20)
    with pytest.raises(ValueError, match="needs identity labels"):
        S.TwoCovarianceScore(estimator="em").fit_pairs(X[:10], X[10:20], np.arange(10) % 2 == 0)
    with pytest.raises(ValueError, match="'moments' or 'em'"):
        S.TwoCovarianceScore(estimator="ml").fit(X, ids)
    with pytest.raises(ValueError, match="max_iter"):
        C.two_covariance_em(X, ids, max_iter=0)
    from sklearn.exceptions import ConvergenceWarning

    with pytest.warns(ConvergenceWarning, match="raise max_iter"):
        C.two_covariance_em(X, ids, max_iter=1, tol=1e-15)


def test_a_pair_classifier_is_a_scorer_with_the_pipelines_own_scores():
    """PairClassifier gives the protocols the scorer interface of a Pipeline over pair arrays:
    its scores and decisions are the pipeline's, fitted on the same pair array."""
    from sklearn.base import clone

    from facelib.verify import features as F

    rng = np.random.default_rng(4)
    X, ids, _, _ = _two_cov_data(rng, n_id=40, per=4, d=3)
    left, right = rng.integers(0, len(X), 300), rng.integers(0, len(X), 300)
    left[:40], right[:40] = np.arange(0, 160, 4), np.arange(1, 160, 4)  # 40 same-person pairs for sure
    same = ids[left] == ids[right]
    pipe = F.make_pipeline("logistic")
    wrapped = S.as_verifier(pipe)
    assert isinstance(wrapped, S.PairClassifier) and wrapped.labels == "pairs"
    assert S.as_verifier(S.CosineScore()).__class__ is S.CosineScore  # a scorer passes as it is
    wrapped.fit_pairs(X[left], X[right], same)
    ref = clone(pipe).fit(np.stack([X[left], X[right]], axis=1), same)
    probe = np.stack([X[right[:50]], X[left[:50]]], axis=1)
    np.testing.assert_allclose(wrapped.score_pairs(probe[:, 0], probe[:, 1]), F.pair_scores(ref, probe), rtol=1e-12)
    np.testing.assert_array_equal(wrapped.predict_pairs(probe[:, 0], probe[:, 1]), ref.predict(probe))
    assert pipe.named_steps["clf"].__dict__.get("coef_") is None  # the given pipeline stays unfitted


def test_every_method_says_what_labels_fitting_uses():
    from facelib.verify.categories import method_labels
    from facelib.verify import features as F
    from facelib.verify.siamese import SiameseVerifier

    assert method_labels(F.make_pipeline("lda"), "identities") == "pairs"
    assert method_labels(SiameseVerifier(), "identities") == "pairs"
    assert method_labels(S.CosineScore(), "identities") == "none"
    assert method_labels(S.TwoCovarianceScore(), "identities") == "identities"
    assert method_labels(S.TwoCovarianceScore(), "pairs") == "pairs"


def test_scorers_are_a_registry_filled_by_their_classes_decorators():
    assert isinstance(S.SCORERS, Registry)
    assert list(S.SCORERS) == ["cosine", "euclidean", "mahalanobis", "plda"]
    assert S.SCORERS["plda"] is S.TwoCovarianceScore and S.SCORERS[" Cosine"] is S.CosineScore
    assert S.SCORERS["MAHALANOBIS"] is S.MahalanobisScore and "Euclidean" in S.SCORERS
    with pytest.raises(UnknownNameError, match="unknown scorer 'lda'.*cosine, euclidean, mahalanobis, plda"
                                               ".*@SCORERS.register"):
        S.SCORERS["lda"]
    with pytest.raises(ValueError, match="already registered"):
        S.SCORERS.register("plda", S.CosineScore)

    @S.SCORERS.register("Test_Negative-L1")
    class NegativeL1(S.PairScorer):
        def score_pairs(self, left, right):
            L, R = self._prepare(left, right)
            return -np.abs(L - R).sum(axis=1)

    try:
        assert S.SCORERS["TEST_negative_L1 "] is NegativeL1
        rng = np.random.default_rng(0)
        L, R = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
        scorer = S.SCORERS["test-negative-l1"]().fit(np.r_[L, R])
        np.testing.assert_allclose(scorer.score_pairs(L, R), -np.abs(L - R).sum(1))
    finally:
        S.SCORERS.unregister("Test_Negative-L1")
    assert "test-negative-l1" not in S.SCORERS
