"""The baseline transformers follow scikit-learn's conventions: each passes every check of
`check_estimator` (input validation, n_features_in_, NaN / inf and empty-data messages, cloning,
pickling, fit idempotence), and they take `random_state` as scikit-learn names it."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from facelib.verify.baselines import Eigenfaces, Fisherfaces, RawPixels


@parametrize_with_checks([RawPixels(), Eigenfaces(n_components=2), Fisherfaces(n_pca=3)])
def test_scikit_learn_conventions(estimator, check):
    check(estimator)


@pytest.mark.parametrize("cls, options", [(Eigenfaces, {"n_components": 5}), (Fisherfaces, {"n_pca": 5})])
def test_random_state_and_its_older_name_seed(cls, options):
    rng = np.random.default_rng(0)
    X, y = rng.random((40, 600)), np.repeat(np.arange(8), 5)  # image-sized: PCA's randomized solver
    by_name = cls(random_state=3, **options).fit(X, y).transform(X)
    assert np.allclose(cls(seed=3, **options).fit(X, y).transform(X), by_name)
    assert not np.allclose(cls(random_state=4, **options).fit(X, y).transform(X), by_name)
    assert clone(cls(random_state=3)).get_params()["random_state"] == 3
