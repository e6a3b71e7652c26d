"""Baseline representations against scikit-learn references."""

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from facelib.verify import baselines as B


def test_flatten_scales_uint8():
    x = torch.full((2, 1, 3, 4), 255, dtype=torch.uint8)
    f = B.flatten_images(x)
    assert f.shape == (2, 12) and f.dtype == np.float32 and np.all(f == 1.0)


def test_eigenfaces_equal_pca_of_training_images():
    rng = np.random.default_rng(0)
    X = rng.random((40, 30))
    e = B.Eigenfaces(n_components=5, whiten=False).fit(X)
    ref = PCA(5).fit(X)
    assert np.allclose(np.abs(e.transform(X)), np.abs(ref.transform(X)), atol=1e-6)


def test_fisherfaces_separate_identities_and_need_labels():
    rng = np.random.default_rng(1)
    ids = np.repeat(np.arange(6), 8)
    X = rng.normal(size=(6, 50))[ids] * 0.5 + rng.normal(size=(48, 50))
    f = B.Fisherfaces(n_pca=20).fit(X, ids)
    Z = f.transform(X)
    assert Z.shape == (48, 5)
    ref = LinearDiscriminantAnalysis(n_components=5).fit(PCA(20).fit_transform(X), ids)
    # between/within ratio along the discriminants is large, as for sklearn's LDA
    means = np.stack([Z[ids == k].mean(0) for k in range(6)])
    within = np.mean([Z[ids == k].var(0) for k in range(6)], axis=0)
    assert (means.var(0) / within)[0] > 1.0
    assert ref.explained_variance_ratio_.shape == (5,)
    with pytest.raises(ValueError, match="identity"):
        B.Fisherfaces().fit(X)
