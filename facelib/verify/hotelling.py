"""Hotelling T² tests on embeddings, and per-latent identity tests.

(1) `hotelling_two_sample` / `pair_difference_test`: do same-person and different-person
pair difference vectors share a mean? `pair_difference_permutation_test` gives the same T² a
permutation p-value on pairs that share no person (the F p-value assumes independent Gaussian
rows, which pairs sharing images and people, and |difference| features, are not). (2) `ProbeT2Score`: does a probe image fit a
person's enrolled images (T² with the pooled within-identity covariance), used as a
verification score. (3) `latent_identity_tests`: which single latents carry identity,
with a multiple-comparison correction.
"""

from __future__ import annotations

import warnings

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .covariances import _as_matrix, quadratic_forms, shrink, within_between_covariance
from facelib.data.pairs import person_disjoint_pairs

from .features import COMBINERS, pair_array
from .scores import PairScorer
from facelib.data.checks import check_identity, check_same

__all__ = [
    "HotellingResult",
    "hotelling_two_sample",
    "hotelling_one_sample",
    "pair_difference_test",
    "permutation_two_sample",
    "pair_difference_permutation_test",
    "ProbeT2Score",
    "latent_identity_tests",
]


@dataclass(frozen=True)
class HotellingResult:
    """T², its F transform, the F degrees of freedom and the p-value."""

    t2: float
    f: float
    df1: float
    df2: float
    pvalue: float
    n1: int
    n2: int
    p: int

    def as_dict(self) -> dict:
        return asdict(self)


def _solve_covariance(S: np.ndarray, d: np.ndarray, what: str) -> np.ndarray:
    """S^-1 d, refusing a singular S with the columns that make it so and what to do."""
    scale = np.trace(S) / S.shape[0] if np.trace(S) > 0 else 1.0
    constant = np.flatnonzero(np.diag(S) <= 1e-12 * scale)
    if constant.size:
        raise ValueError(
            f"{what} is singular: column(s) {constant.tolist()[:10]} do not vary within the samples "
            "(constant); drop them, or reduce the dimension first (e.g. PCA)"
        )
    try:
        x = np.linalg.solve(S, d)
    except np.linalg.LinAlgError:
        x = None
    if x is None or not np.all(np.isfinite(x)) or np.linalg.cond(S) > 1e15:
        raise ValueError(
            f"{what} is singular (some columns are linear combinations of others); "
            "reduce the dimension first (e.g. PCA) or use more rows"
        )
    return x


def hotelling_two_sample(a, b) -> HotellingResult:
    """Two-sample Hotelling T² with pooled covariance (equal covariances assumed).

    T² = n1 n2/(n1+n2) d' S^-1 d; F = (n1+n2-p-1)/(p (n1+n2-2)) T² ~ F(p, n1+n2-p-1).
    """
    A, B = _as_matrix(a, "a"), _as_matrix(b, "b")
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"samples have different dimensions: {A.shape[1]} and {B.shape[1]}")
    n1, n2, p = A.shape[0], B.shape[0], A.shape[1]
    if n1 + n2 - p - 1 < 1:
        raise ValueError(
            f"Hotelling T² needs n1 + n2 > p + 1 (got n1={n1}, n2={n2}, p={p}); "
            "reduce the dimension first (e.g. PCA) or use more pairs"
        )
    d = A.mean(axis=0) - B.mean(axis=0)
    # Scatter about each sample's own mean: a sample of one row adds none (np.cov would give NaN).
    CA, CB = A - A.mean(axis=0), B - B.mean(axis=0)
    S = (CA.T @ CA + CB.T @ CB) / (n1 + n2 - 2)
    t2 = float(n1 * n2 / (n1 + n2) * d @ _solve_covariance(S, d, "the pooled covariance of a and b"))
    df1, df2 = p, n1 + n2 - p - 1
    f = t2 * df2 / (p * (n1 + n2 - 2))
    return HotellingResult(t2, f, df1, df2, float(stats.f.sf(f, df1, df2)), n1, n2, p)


def hotelling_one_sample(x, mu=None) -> HotellingResult:
    """One-sample T² that the mean of `x` equals `mu` (default 0), with its own covariance.

    T² = n (m - mu)' S^-1 (m - mu); F = (n-p)/(p (n-1)) T² ~ F(p, n-p).
    """
    X = _as_matrix(x, "x")
    n, p = X.shape
    if n - p < 1:
        raise ValueError(f"one-sample T² needs n > p (got n={n}, p={p}); reduce the dimension first")
    mu = np.zeros(p) if mu is None else np.asarray(mu, dtype=np.float64)
    d = X.mean(axis=0) - mu
    S = np.cov(X, rowvar=False, ddof=1).reshape(p, p)
    t2 = float(n * d @ _solve_covariance(S, d, "the covariance of x"))
    f = t2 * (n - p) / (p * (n - 1))
    return HotellingResult(t2, f, p, n - p, float(stats.f.sf(f, p, n - p)), n, 0, p)


def pair_difference_test(embeddings, pair_table: pd.DataFrame, combine: str = "absdiff") -> HotellingResult:
    """Two-sample T² of same-person vs different-person pair differences.

    The default uses absolute differences: signed differences have mean zero for both
    kinds of pair whenever left/right order is arbitrary, so their means cannot differ.
    """
    if combine not in COMBINERS:
        raise ValueError(f"unknown combine {combine!r}; choose one of {sorted(COMBINERS)}")
    P = pair_array(embeddings, pair_table)
    F = COMBINERS[combine](P[:, 0], P[:, 1])
    same = check_same(pair_table["same"].to_numpy(), len(pair_table), "pair_table column 'same'")
    if same.all() or not same.any():
        raise ValueError("pair_difference_test needs both same-person and different-person pairs")
    return hotelling_two_sample(F[same], F[~same])


def permutation_two_sample(a, b, n_permutations: int = 999, seed: int = 0) -> tuple[float, float]:
    """(two-sample T² of `a` vs `b`, its permutation p-value) under exchangeable rows.

    The labels are permuted `n_permutations` times; p = (1 + #{T²_perm >= T²}) / (1 +
    n_permutations), exact in level for any distribution of independent, exchangeable rows.
    Each T² comes from the permuted mean difference alone: the total scatter is the same for
    every labelling, and the pooled covariance is it minus a rank-one term (Sherman-Morrison).
    """
    A, B = _as_matrix(a, "a"), _as_matrix(b, "b")
    observed = hotelling_two_sample(A, B).t2  # also checks shapes and degrees of freedom
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")
    X = np.vstack([A, B])
    n, n1 = len(X), len(A)
    n2 = n - n1
    Xc = X - X.mean(axis=0)
    total = Xc.T @ Xc / (n - 2)
    c = n1 * n2 / (n * (n - 2))
    rng = np.random.default_rng(seed)
    count = 0
    for start in range(0, n_permutations, 256):
        m = min(256, n_permutations - start)
        labels = np.zeros((m, n))
        for row in labels:
            row[rng.choice(n, n1, replace=False)] = 1.0
        # mean(a) - mean(b) of each labelling from the centred rows: sums over the n1 rows / (n1 n2 / n)
        D = labels @ Xc * (n / (n1 * n2))
        q = np.einsum("ij,ij->i", D, np.linalg.solve(total, D.T).T)
        t2 = n1 * n2 / n * q / (1 - c * q)
        count += int(np.sum(t2 >= observed * (1 - 1e-12)))
    return float(observed), (1 + count) / (1 + n_permutations)


def pair_difference_permutation_test(embeddings, pair_table: pd.DataFrame, identity,
                                     combine: str = "absdiff", n_permutations: int = 999,
                                     seed: int = 0) -> dict:
    """`pair_difference_test` with a permutation p-value that respects shared people.

    The test uses only `person_disjoint_pairs` (no person in two pairs), whose rows are
    independent, and permutes their same/different labels: no Gaussian model of the
    |difference| features is assumed. Returns the F test on all pairs (`pvalue_f_all`), the
    F test and the permutation test on the disjoint pairs, and how many pairs each used; when
    too few pairs share no person for T² in this dimension, the disjoint figures are NaN and
    `note` says why.
    """
    if combine not in COMBINERS:
        raise ValueError(f"unknown combine {combine!r}; choose one of {sorted(COMBINERS)}")
    every = pair_difference_test(embeddings, pair_table, combine)
    keep = person_disjoint_pairs(pair_table, identity, seed)
    sub = pair_table.iloc[keep]
    same = sub["same"].to_numpy().astype(bool)
    out = {"t2_all": every.t2, "pvalue_f_all": every.pvalue, "n_pairs_all": len(pair_table),
           "t2_disjoint": np.nan, "pvalue_f_disjoint": np.nan, "pvalue_permutation": np.nan,
           "n_pairs_disjoint": len(sub), "n_permutations": n_permutations, "p": every.p, "note": ""}
    if same.sum() < 2 or (~same).sum() < 2 or len(sub) <= every.p + 1:
        out["note"] = (f"not tested: {same.sum()} same- and {(~same).sum()} different-person pairs share no "
                       f"person, too few for T² in {every.p} dimensions (needs more than {every.p + 1}, at least "
                       "two of each kind): more people, or fewer dimensions")
        return out
    P = pair_array(embeddings, sub)
    F = COMBINERS[combine](P[:, 0], P[:, 1])
    out["pvalue_f_disjoint"] = hotelling_two_sample(F[same], F[~same]).pvalue
    out["t2_disjoint"], out["pvalue_permutation"] = permutation_two_sample(F[same], F[~same], n_permutations, seed)
    return out


class ProbeT2Score(PairScorer):
    """Hotelling-type test that a probe image belongs to a person's enrolled images.

    With pooled within-identity covariance Sw (df_w degrees of freedom, from training
    identities) and m the mean of n enrolled images of the claimed person,
    probe - m ~ N(0, (1 + 1/n) Sw) under "same person", so
    T² = n/(n+1) (probe - m)' Sw^-1 (probe - m) and
    F = (df_w - p + 1)/(p df_w) T² ~ F(p, df_w - p + 1).
    The verification score is log p (higher = fits better); for a pair (n = 1) it is a
    monotone function of the Mahalanobis distance.
    """

    labels = "identities"

    def __init__(self, shrinkage: float = 0.0, n_components: int | float | None = None):
        self.shrinkage = shrinkage
        self.n_components = n_components

    def _set(self, Sw, df):
        self.within_cov_ = shrink(Sw, self.shrinkage)
        self.precision_ = np.linalg.inv(self.within_cov_)
        self.df_ = df
        p = Sw.shape[0]
        if df - p + 1 < 1:
            raise ValueError(
                f"the within covariance has {df} degrees of freedom for {p} dimensions; "
                "need more training images per identity or fewer dimensions (n_components)"
            )

    def _fit_stats(self, X, identity):
        if identity is None:
            raise ValueError("ProbeT2Score.fit needs identity labels; use fit_pairs with pair labels instead")
        Sw, _, self.mean_, df = within_between_covariance(X, identity)
        self._set(Sw, df)

    def _fit_pair_stats(self, L, R, same):
        D = L[same] - R[same]
        self.mean_ = np.concatenate([L, R]).mean(axis=0)
        self._set(D.T @ D / (2.0 * D.shape[0]), int(D.shape[0]))

    def test(self, t2) -> tuple[np.ndarray, np.ndarray]:
        """F statistic and p-value for T² values."""
        p, df = self.dim_, self.df_
        f = np.asarray(t2) * (df - p + 1) / (p * df)
        return f, stats.f.sf(f, p, df - p + 1)

    def test_probe(self, probe, enrolled) -> HotellingResult:
        """Does one probe image fit the enrolled images (rows) of one person?"""
        E = _as_matrix(enrolled, "enrolled")
        probe = np.atleast_2d(np.asarray(probe, dtype=np.float64))
        m = self._project(E).mean(axis=0, keepdims=True)
        E_proj_dim = m.shape[1]
        t2 = float(self._t2_projected(self._project(probe), m, E.shape[0])[0])
        f, pval = self.test(t2)
        return HotellingResult(t2, float(f), E_proj_dim, self.df_ - E_proj_dim + 1, float(pval),
                               1, E.shape[0], E_proj_dim)

    def _t2_projected(self, P, M, n):
        D = P - M
        return n / (n + 1.0) * quadratic_forms(D, self.precision_)

    def score_probes(self, probes, claimed, gallery, gallery_identity) -> np.ndarray:
        """log p of each probe against the enrolled images of its claimed identity."""
        G = self._project(_as_matrix(gallery, "gallery"))
        gid = np.asarray(gallery_identity)
        P = self._project(_as_matrix(probes, "probes"))
        claimed = np.asarray(claimed)
        out = np.empty(P.shape[0])
        for person in np.unique(claimed):
            rows = gid == person
            if not rows.any():
                raise ValueError(f"no enrolled images for claimed identity {person}")
            sel = claimed == person
            t2 = self._t2_projected(P[sel], G[rows].mean(axis=0, keepdims=True), rows.sum())
            out[sel] = stats.f.logsf(self.test(t2)[0], self.dim_, self.df_ - self.dim_ + 1)
        return out

    def score_pairs(self, left, right):
        L, R = self._prepare(left, right)
        t2 = self._t2_projected(L, R, 1.0)
        return stats.f.logsf(self.test(t2)[0], self.dim_, self.df_ - self.dim_ + 1)


def latent_identity_tests(latents, identity, method: str = "anova", correction: str = "fdr_bh",
                          alpha: float = 0.05, names: list[str] | None = None) -> pd.DataFrame:
    """Test each latent separately for a difference between identities.

    method: "anova" (one-way F, equal variances), "welch" (Welch's heteroscedastic one-way
    F) or "kruskal" (rank-based). The p-values are corrected across latents with
    statsmodels `multipletests` (`correction` = "fdr_bh", "holm", "bonferroni", ...).
    Returns one row per latent: statistic, p, p_adj, reject, eta2 (share of the latent's
    variance explained by identity), sorted as given.
    """
    from statsmodels.stats.multitest import multipletests  # here: statsmodels is slow to import

    Z = _as_matrix(latents, "latents")
    ids = check_identity(identity, Z.shape[0])
    keep = ids >= 0
    Z, ids = Z[keep], ids[keep]
    people = np.unique(ids)
    if people.size < 2:
        raise ValueError("need at least two identities to test latents against identity")
    groups = [Z[ids == p] for p in people]
    if method in ("anova", "welch") and all(g.shape[0] < 2 for g in groups):
        raise ValueError("every identity has one image; a within-identity variance needs >= 2 per person")
    names = names or [f"z{i}" for i in range(Z.shape[1])]
    rows = []
    grand = Z.mean(axis=0)
    ss_tot = ((Z - grand) ** 2).sum(axis=0)
    ss_between = sum(g.shape[0] * (g.mean(axis=0) - grand) ** 2 for g in groups)
    for j in range(Z.shape[1]):
        cols = [g[:, j] for g in groups]
        if method == "anova":
            res = stats.f_oneway(*cols)
        elif method == "welch":
            res = stats.f_oneway(*[c for c in cols if c.size >= 2], equal_var=False)
        elif method == "kruskal":
            res = stats.kruskal(*cols)
        else:
            raise ValueError(f"unknown method {method!r}; choose anova, welch or kruskal")
        rows.append((names[j], float(res.statistic), float(res.pvalue)))
    out = pd.DataFrame(rows, columns=["latent", "statistic", "p"])
    untestable = out.loc[out["p"].isna(), "latent"].tolist()
    if untestable:
        warnings.warn(f"latent(s) {untestable} cannot be tested (constant within and between people: no "
                      "variance to compare), so p is NaN and p_adj is set to 1 (not rejected)", UserWarning,
                      stacklevel=2)
    pvals = out["p"].fillna(1.0).to_numpy()
    reject, p_adj, _, _ = multipletests(pvals, alpha=alpha, method=correction)
    out["p_adj"] = p_adj
    out["reject"] = reject
    out["eta2"] = np.where(ss_tot > 0, ss_between / np.where(ss_tot > 0, ss_tot, 1.0), 0.0)
    out["method"] = method
    out["correction"] = correction
    return out
