"""ROC metrics against scikit-learn and hand-checked cases."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from facelib.verify import roc


def test_hand_checked_table():
    # scores 0.9 S, 0.8 D, 0.7 S, 0.6 S, 0.4 D, 0.3 D  (S = same person)
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.4, 0.3])
    y = np.array([1, 0, 1, 1, 0, 0], bool)
    # AUC: 0.9 beats 3 negatives, 0.7 and 0.6 beat 2 each -> 7/9
    assert roc.auc(y, s) == pytest.approx(7 / 9)
    # ROC point (FAR 1/3, TAR 2/3) has FRR = 1/3 = FAR exactly
    assert roc.equal_error_rate(y, s) == pytest.approx(1 / 3)
    assert roc.tar_at_far(y, s, 0.0) == pytest.approx(1 / 3)
    assert roc.tar_at_far(y, s, 0.34) == pytest.approx(1.0)
    # best cut: accept the top four -> 3 same + 2 different correct = 5/6, midway 0.6 / 0.4
    thr = roc.best_threshold(y, s)
    assert thr == pytest.approx(0.5)
    assert roc.accuracy_at(y, s, thr) == pytest.approx(5 / 6)


def test_eer_interpolates_between_roc_points():
    # same 0.9, 0.8, 0.3; different 0.7, 0.2. ROC (0, 2/3) -> (1/2, 2/3): FRR stays 1/3 while
    # FAR goes 0 -> 1/2, so FAR = FRR at FAR = 1/3, between the two points.
    s = np.array([0.9, 0.8, 0.3, 0.7, 0.2])
    y = np.array([1, 1, 1, 0, 0], bool)
    assert roc.equal_error_rate(y, s) == pytest.approx(1 / 3)


def test_separable_gives_auc_one_eer_zero():
    y = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    s = np.r_[np.linspace(1, 2, 50), np.linspace(-2, -1, 50)]
    m = roc.verification_metrics(y, s, y, s)
    assert m["auc"] == 1.0 and m["eer"] == 0.0 and m["accuracy"] == 1.0
    assert m["tar@far=0.001"] == 1.0
    # reversed scores: everything wrong
    assert roc.auc(y, -s) == 0.0 and roc.equal_error_rate(y, -s) == 1.0


def test_auc_and_bootstrap_against_sklearn():
    rng = np.random.default_rng(1)
    y = rng.random(300) < 0.5
    s = np.round(rng.normal(size=300) + y, 1)  # rounding makes ties
    assert roc.auc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert roc._mann_whitney_auc(s[y], s[~y]) == pytest.approx(roc_auc_score(y, s))
    lo, hi = roc.auc_bootstrap_ci(y, s, n_boot=300, seed=3)
    assert lo < roc.auc(y, s) < hi and hi - lo < 0.2
    assert (lo, hi) == roc.auc_bootstrap_ci(y, s, n_boot=300, seed=3)  # seeded
    # EER sits where FAR and FRR cross on sklearn's ROC
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, s)
    eer = roc.equal_error_rate(y, s)
    k = np.argmin(np.abs(fpr - (1 - tpr)))
    assert abs(eer - fpr[k]) < 0.05


def test_threshold_from_train_applied_to_test():
    y_tr = np.array([1, 1, 0, 0], bool)
    s_tr = np.array([3.0, 2.0, 1.0, 0.0])
    y_te = np.array([1, 0], bool)
    s_te = np.array([1.6, 1.4])
    m = roc.verification_metrics(y_te, s_te, y_tr, s_tr)
    assert m["threshold"] == pytest.approx(1.5) and m["accuracy"] == 1.0


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match="both"):
        roc.auc(np.ones(4, bool), np.arange(4.0))
    with pytest.raises(ValueError, match="NaN"):
        roc.auc(np.array([1, 0]), np.array([np.nan, 1.0]))
    with pytest.raises(ValueError, match="equal length"):
        roc.auc(np.array([1, 0, 1]), np.array([0.1, 1.0]))


def test_tar_curve_hand_checked_between_and_at_roc_points():
    # the table above: ROC vertices (0, 0) (0, 1/3) (1/3, 1/3) (1/3, 2/3) (1/3, 1) (2/3, 1) (1, 1)
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.4, 0.3])
    y = np.array([1, 0, 1, 1, 0, 0], bool)
    got = roc.tar_curve(y, s, [0.0, 1 / 6, 1 / 3, 0.5, 1.0])
    # at FAR 0 and 1/3 the top of the vertical step there; at 1/6 on the ROC's flat segment
    # (0, 1/3) -> (1/3, 1/3): 1/3 (joining the steps' tops, 2/3, would be above the curve)
    np.testing.assert_allclose(got, [1 / 3, 1 / 3, 1.0, 1.0, 1.0])
    m = roc.verification_metrics(y, s, roc_fars=(0.0, 1 / 6))
    assert m["roc_tar@far=0"] == pytest.approx(1 / 3) and m["roc_tar@far=0.166667"] == pytest.approx(1 / 3)
    assert "roc_tar@far=0" not in roc.verification_metrics(y, s)


def test_tar_curve_matches_the_binormal_closed_form():
    # same ~ N(d, 1), different ~ N(0, 1): TAR(FAR) = 1 - Phi(Phi^-1(1 - FAR) - d)
    from scipy.stats import norm

    rng = np.random.default_rng(0)
    n, d = 200_000, 1.5
    y = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    s = np.r_[rng.normal(d, 1, n), rng.normal(0, 1, n)]
    fars = np.array(roc.ROC_FARS[1:-1])
    expected = norm.sf(norm.isf(fars) - d)
    np.testing.assert_allclose(roc.tar_curve(y, s, fars), expected, atol=0.005)
    assert roc.ROC_FARS[0] == 0.0 and roc.ROC_FARS[-1] == 1.0 and np.all(np.diff(roc.ROC_FARS) > 0)


def test_tar_curve_refuses_rates_outside_zero_one():
    y = np.array([1, 0, 1, 0], bool)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        roc.tar_curve(y, np.arange(4.0), [0.5, 1.5])


def test_eer_bootstrap_ci_known_cases_and_one_resampling_with_the_auc():
    from facelib.verify.roc import auc_bootstrap_ci, bootstrap_ci, eer_bootstrap_ci, equal_error_rate

    same = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    apart = np.r_[np.linspace(2, 3, 50), np.linspace(0, 1, 50)]
    assert eer_bootstrap_ci(same, apart, n_boot=50) == (0.0, 0.0)
    assert eer_bootstrap_ci(same, -apart, n_boot=50) == (1.0, 1.0)
    noisy = np.random.default_rng(0).normal(size=100) + same
    lo, hi = eer_bootstrap_ci(same, noisy, n_boot=300)
    assert lo < equal_error_rate(same, noisy) < hi
    # the AUC interval is the same resampling with the Mann-Whitney AUC as the statistic
    from sklearn.metrics import roc_auc_score
    ref = bootstrap_ci(same, noisy, lambda p, q: roc_auc_score(np.r_[np.ones(p.size), np.zeros(q.size)], np.r_[p, q]),
                       n_boot=300)
    assert np.allclose(auc_bootstrap_ci(same, noisy, n_boot=300), ref)
