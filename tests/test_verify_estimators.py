"""The verification transformers follow scikit-learn's conventions: each passes every check of
`check_estimator` (input validation, n_features_in_, NaN / inf and empty-data messages, cloning,
pickling, fit idempotence), or the checks it cannot pass are listed with why, and they take
`random_state` as scikit-learn names it (`seed`: the older name, kept)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import check_estimator, parametrize_with_checks

from facelib.data.synthetic import load_synthetic
from facelib.verify.baselines import Eigenfaces, Fisherfaces, RawPixels
from facelib.verify.fisher import FisherVectorEncoder
from facelib.verify.latents import PatchVAEEmbedding, VAEEmbedding


@parametrize_with_checks([RawPixels(), Eigenfaces(n_components=2), Fisherfaces(n_pca=3),
                          FisherVectorEncoder(local_dim=1, n_components=2, spatial=False, max_iter=5)])
def test_scikit_learn_conventions(estimator, check):
    check(estimator)


#: Why the VAE embeddings fail these checks: each fits on scikit-learn's 2-D float rows
#: (make_blobs: 2-5 columns, negative values), and a VAE embedding takes uint8 face images
#: N x C x H x W (its convolutional VAE needs an image's shape). Every other check passes
#: (cloning, parameters, repr, tags, unfitted transform, and the input checks that come before
#: the image shape: sparse, complex, empty and 1-D input refused with scikit-learn's messages);
#: `test_image_transformers_keep_the_conventions_on_images` runs the fitted checks on images.
NEEDS_IMAGES = "fits on 2-D float rows (make_blobs); a VAE embedding takes uint8 images N x C x H x W"
IMAGE_ONLY_CHECKS = {name: NEEDS_IMAGES for name in (
    "check_fit_score_takes_y", "check_estimators_overwrite_params", "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self", "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit", "check_estimators_dtypes", "check_dtype_object",
    "check_pipeline_consistency", "check_estimators_nan_inf", "check_estimators_pickle",
    "check_f_contiguous_array_estimator", "check_transformer_data_not_an_array", "check_transformer_general",
    "check_transformer_preserve_dtypes", "check_methods_sample_order_invariance", "check_methods_subset_invariance",
    "check_fit2d_1sample", "check_fit2d_1feature", "check_dict_unchanged", "check_fit_idempotent",
    "check_fit_check_is_fitted", "check_n_features_in", "check_fit2d_predict1d")}


def tiny_vae(**kw):
    return VAEEmbedding(**{"model": "vae", "latent_dim": 2, "epochs": 1, "batch_size": 16, "device": "cpu", **kw})


def tiny_patch_vae(**kw):
    return PatchVAEEmbedding(**{"patch": 8, "stride": 8, "latent_dim": 2, "epochs": 1, "max_patches": 200,
                                "batch_size": 64, "device": "cpu", **kw})


@pytest.fixture(scope="module")
def faces():
    return load_synthetic(n=24, size=32, n_identities=4, seed=1)


@pytest.mark.parametrize("make", [tiny_vae, tiny_patch_vae])
def test_image_transformers_pass_every_check_but_the_listed_ones(make):
    """No check fails outside the list, and every listed one still fails (the list stays true)."""
    results = check_estimator(make(), on_fail=None, expected_failed_checks=IMAGE_ONLY_CHECKS)
    failed = sorted({r["check_name"] for r in results if r["status"] == "failed"})
    assert failed == []
    assert {r["check_name"] for r in results if r["status"] == "xfail"} == set(IMAGE_ONLY_CHECKS)
    assert sum(r["status"] == "passed" for r in results) >= 19


@pytest.mark.parametrize("make", [tiny_vae, tiny_patch_vae])
def test_image_transformers_keep_the_conventions_on_images(make, faces):
    """The fitted checks, on images: fit returns self, n_features_in_ counts pixels, other
    shapes, NaN and empty input are refused with scikit-learn's messages, a refit with the same
    random_state and a pickled copy give the same embedding."""
    x = faces.images
    est = make(random_state=5)
    assert est.fit(x) is est and est.n_features_in_ == 32 * 32
    z = est.transform(x[:6])
    assert np.array_equal(clone(est).fit(x).transform(x[:6]), z)  # idempotent fit
    assert np.array_equal(pickle.loads(pickle.dumps(est)).transform(x[:6]), z)
    with pytest.raises(ValueError, match="X has 256 features .* expecting 1024 features"):
        est.transform(x[:2, :, :16, :16])
    with pytest.raises(ValueError, match="contains NaN"):
        make().fit(np.full((4, 1, 32, 32), np.nan))
    with pytest.raises(ValueError, match="0 sample"):
        make().fit(np.zeros((0, 1, 32, 32), dtype=np.uint8))


@pytest.mark.parametrize("cls, options", [(Eigenfaces, {"n_components": 5}), (Fisherfaces, {"n_pca": 5}),
                                          (FisherVectorEncoder, {"local_dim": 6, "n_components": 3})])
def test_random_state_and_its_older_name_seed(cls, options):
    rng = np.random.default_rng(0)
    X, y = rng.random((40, 600)), np.repeat(np.arange(8), 5)  # image-sized: PCA's randomized solver
    by_name = cls(random_state=3, **options).fit(X, y).transform(X)
    assert np.allclose(cls(seed=3, **options).fit(X, y).transform(X), by_name)
    assert not np.allclose(cls(random_state=4, **options).fit(X, y).transform(X), by_name)
    assert clone(cls(random_state=3)).get_params()["random_state"] == 3


@pytest.mark.parametrize("make", [tiny_vae, tiny_patch_vae])
def test_vae_embeddings_take_random_state_and_its_older_name_seed(make, faces):
    x = faces.images
    by_name = make(random_state=3).fit(x).transform(x[:4])
    assert np.array_equal(make(seed=3).fit(x).transform(x[:4]), by_name)
    assert not np.allclose(make(random_state=4).fit(x).transform(x[:4]), by_name)
    assert clone(make(random_state=3)).get_params()["random_state"] == 3
