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


# --------------------------------------------------------------- permutation test on person-disjoint pairs

def test_permutation_p_value_equals_full_enumeration_on_a_small_case():
    """Every relabelling of 4 + 4 rows enumerated by brute force: the exact permutation p-value."""
    from itertools import combinations

    from facelib.verify.hotelling import hotelling_two_sample, permutation_two_sample

    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(4, 2)) + 0.8, rng.normal(size=(4, 2))
    X = np.vstack([a, b])
    observed = hotelling_two_sample(a, b).t2
    every = [hotelling_two_sample(X[list(c)], X[[i for i in range(8) if i not in c]]).t2
             for c in combinations(range(8), 4)]
    exact = np.mean(np.asarray(every) >= observed * (1 - 1e-12))
    t2, p = permutation_two_sample(a, b, n_permutations=20000, seed=0)
    assert t2 == pytest.approx(observed)
    assert p == pytest.approx(exact, abs=3 * np.sqrt(exact * (1 - exact) / 20000) + 1e-4)


def test_permuted_t2_shortcut_matches_direct_computation():
    """The Sherman-Morrison shortcut gives each permutation's T² as the direct formula does."""
    from facelib.verify.hotelling import hotelling_two_sample, permutation_two_sample

    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(7, 3)), rng.normal(size=(9, 3))
    X = np.vstack([a, b])
    # With one permutation, the p-value is 1 (T²_perm < T²) or 1/2... recompute it directly instead.
    perm_rng = np.random.default_rng(11)
    labels = np.zeros(16)
    labels[perm_rng.choice(16, 7, replace=False)] = 1
    direct = hotelling_two_sample(X[labels == 1], X[labels == 0]).t2
    observed = hotelling_two_sample(a, b).t2
    _, p = permutation_two_sample(a, b, n_permutations=1, seed=11)
    assert p == (1.0 if direct >= observed else 0.5)


def test_person_disjoint_pairs_use_each_person_once_and_are_maximal():
    from facelib.data.pairs import person_disjoint_pairs

    rng = np.random.default_rng(5)
    identity = np.repeat(np.arange(30), 4)
    left = rng.integers(0, 120, 300)
    right = rng.integers(0, 120, 300)
    left, right = left[left != right], right[left != right]  # a pair of an image with itself is refused
    table = pd.DataFrame({"left": left, "right": right, "same": identity[left] == identity[right]})
    keep = person_disjoint_pairs(table, identity, seed=0)
    people = np.c_[identity[left[keep]], identity[right[keep]]]
    flat = np.r_[people[people[:, 0] == people[:, 1], 0], people[people[:, 0] != people[:, 1]].ravel()]
    assert len(flat) == len(set(flat))  # nobody twice
    used = set(flat)
    for i in set(range(len(table))) - set(keep):  # every pair left out shares a person with a kept one
        assert identity[left[i]] in used or identity[right[i]] in used
    with pytest.raises(ValueError, match="identity of every paired image"):
        person_disjoint_pairs(table, np.where(np.arange(120) == left[0], -1, identity))


def test_permutation_test_holds_its_level_where_the_f_test_on_shared_pairs_does_not():
    """Null: embeddings carry no identity. The pairs reuse the same few same-person pairs over
    and over, so the F test on all pairs (independent rows assumed) rejects far too often;
    the permutation test on person-disjoint pairs stays near its level."""
    from facelib.verify.hotelling import pair_difference_permutation_test

    n_sims, rejections_f, rejections_perm = 80, 0, 0
    identity = np.repeat(np.arange(40), 2)  # 40 people x 2 images
    for sim in range(n_sims):
        rng = np.random.default_rng(100 + sim)
        Z = rng.standard_t(df=3, size=(80, 2))  # heavy-tailed, no identity signal
        people = rng.choice(40, 6, replace=False)
        same = pd.DataFrame({"left": 2 * people, "right": 2 * people + 1, "same": True})
        same = same.iloc[rng.integers(0, 6, 60)]  # six distinct same-person pairs, each ~10 times
        a, b = rng.integers(0, 80, 200), rng.integers(0, 80, 200)
        diff = pd.DataFrame({"left": a, "right": b, "same": False})[identity[a] != identity[b]].iloc[:60]
        table = pd.concat([same, diff], ignore_index=True)
        r = pair_difference_permutation_test(Z, table, identity, n_permutations=199, seed=sim)
        rejections_f += r["pvalue_f_all"] < 0.05
        rejections_perm += r["pvalue_permutation"] < 0.05
        assert r["n_pairs_disjoint"] <= 40 and r["n_pairs_all"] == 120
    assert rejections_f / n_sims > 0.25
    assert rejections_perm / n_sims < 0.15  # level 0.05; binomial(80, 0.05) exceeds 12 w.p. < 0.1 %


def test_permutation_test_says_when_too_few_pairs_share_no_person():
    from facelib.verify.hotelling import pair_difference_permutation_test

    rng = np.random.default_rng(0)
    identity = np.repeat(np.arange(4), 10)
    Z = rng.normal(size=(40, 6))
    a, b = rng.integers(0, 40, 200), rng.integers(0, 40, 200)
    a, b = a[a != b], b[a != b]  # a pair of an image with itself is refused
    table = pd.DataFrame({"left": a, "right": b, "same": identity[a] == identity[b]})
    r = pair_difference_permutation_test(Z, table, identity)
    assert np.isnan(r["pvalue_permutation"]) and "too few" in r["note"] and r["n_pairs_disjoint"] <= 4
    assert r["pvalue_f_all"] == pytest.approx(
        __import__("facelib.verify.hotelling", fromlist=["x"]).pair_difference_test(Z, table).pvalue)
