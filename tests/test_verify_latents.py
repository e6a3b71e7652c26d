"""VAEEmbedding: a VAE trained inside fit, so the protocols retrain it per fold."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone

from facelib.data.synthetic import load_synthetic
from facelib.train import representation
from facelib.verify import CosineScore, HeldOutIdentities, Split, evaluate
from facelib.verify.latents import PatchVAEEmbedding, VAEEmbedding, grid_patches


@pytest.fixture(scope="module")
def faces():
    return load_synthetic(n=48, size=32, n_identities=6, seed=3)


def small(**kw):
    return VAEEmbedding(**{"model": "vae", "latent_dim": 4, "epochs": 1, "batch_size": 16,
                           "device": "cpu", **kw})


def test_mirror_embedding_is_flip_invariant_and_plain_one_is_not(faces):
    x = faces.images[:8]
    mirrored = small(mirror=True).fit(faces.images)
    assert np.allclose(mirrored.transform(x), mirrored.transform(x.flip(-1)), atol=1e-6)
    plain = small(mirror=False).fit(faces.images)
    assert not np.allclose(plain.transform(x), plain.transform(x.flip(-1)), atol=1e-3)


def test_same_seed_same_embedding_and_clone_keeps_params(faces):
    a = small(seed=1).fit(faces.images).transform(faces.images[:5])
    b = clone(small(seed=1)).fit(faces.images).transform(faces.images[:5])
    assert a.shape == (5, 4)
    assert np.array_equal(a, b)


def test_refined_embedding_is_the_refined_representation(faces):
    """refine_steps reads each image's posterior mean after refining it on that image."""
    est = small(mirror=False, refine_steps=5).fit(faces.images)
    z = est.transform(faces.images[:6])
    np.testing.assert_allclose(z, representation(est.model_, refine_steps=5)(faces.images[:6]), rtol=1e-5, atol=1e-6)
    assert not np.allclose(z, representation(est.model_)(faces.images[:6]), atol=1e-4)
    assert clone(est).get_params()["refine_steps"] == 5


def test_identity_groups_train_modvae_and_keep_the_identity_block(faces):
    est = VAEEmbedding(model="modvae", latent_dim=6, epochs=1, batch_size=16, labels="identities",
                       latents="identity", model_options={"blocks": {"identity": 2}}, device="cpu")
    z = est.fit(faces.images, faces.identity).transform(faces.images[:3])
    assert z.shape == (3, 2)
    with pytest.raises(ValueError, match="identity of every training image"):
        clone(est).fit(faces.images)


@pytest.mark.parametrize("bad, match", [
    (dict(labels="names"), "labels must be one of"),
    (dict(labels="identities"), "use model='modvae'"),
    (dict(latents="identity"), "not a block of this model"),
    (dict(model_options={"likelihood": "bernoulli"}), "as VAEEmbedding parameters"),
    (dict(refine_steps=-3), "refine_steps must be a whole number"),
    (dict(refine_steps=2.5), "refine_steps must be a whole number"),
])
def test_bad_parameters_say_what_to_do(faces, bad, match):
    with pytest.raises(ValueError, match=match):
        small(**bad).fit(faces.images, faces.identity)


def test_flat_pixels_are_refused_with_a_hint(faces):
    with pytest.raises(ValueError, match="not flattened pixels"):
        small().fit(faces.images.reshape(len(faces.images), -1).numpy())


def test_per_split_refit_never_sees_the_test_images(faces):
    """The representation fitted on a split's training rows is the same whatever the test images are."""
    table = pd.DataFrame({"left": [0, 2, 4, 24, 26, 28], "right": [1, 3, 5, 25, 27, 29],
                          "same": [True, False, True, False, True, False]})
    train, test = table.iloc[:3], table.iloc[3:].reset_index(drop=True)
    probe = faces.images[:6]
    outs = []
    for noise in (0, 1):
        images = faces.images.clone()
        if noise:
            images[24:30] = torch.randint(0, 256, images[24:30].shape, dtype=torch.uint8)
        fitted = evaluate(small(), {"cosine": CosineScore()}, Split(images, train, test, train_rows=np.arange(24)),
                          return_details=True).fitted
        outs.append(fitted[(0, "representation")].transform(probe))
    assert np.array_equal(outs[0], outs[1])


def test_decoder_is_gaussian_by_default_and_settable(faces):
    default = small().fit(faces.images[:16]).model_
    assert (default.config.likelihood, default.config.gaussian_scale) == ("gaussian", 0.05)
    bern = small(likelihood="bernoulli").fit(faces.images[:16]).model_
    assert bern.config.likelihood == "bernoulli"


# --- PatchVAEEmbedding: one small VAE shared over a grid of patches -------------------------


def patchy(**kw):
    return PatchVAEEmbedding(**{"patch": 16, "stride": 8, "latent_dim": 3, "epochs": 1, "batch_size": 32,
                                "max_patches": 300, "device": "cpu", **kw})


def test_grid_patches_are_the_windows_a_loop_cuts():
    x = torch.arange(2 * 3 * 10 * 12, dtype=torch.int64).reshape(2, 3, 10, 12)
    got = grid_patches(x, 4, 3)
    want = [x[:, :, i:i + 4, j:j + 4] for i in range(0, 7, 3) for j in range(0, 9, 3)]
    assert got.shape == (2, 9, 3, 4, 4)
    assert torch.equal(got, torch.stack(want, dim=1))
    with pytest.raises(ValueError, match="does not fit"):
        grid_patches(x, 11, 1)


def test_patch_embedding_concatenates_positions_and_is_flip_invariant(faces):
    est = patchy().fit(faces.images)
    assert est.n_positions_ == 9 and est.n_train_patches_ == 300   # (32 - 16) / 8 + 1 = 3 per side
    x = faces.images[:6]
    z = est.transform(x)
    assert z.shape == (6, 9 * 3)
    assert np.allclose(z, est.transform(x.flip(-1)), atol=1e-6)
    # position p's columns are the shared VAE's latent means of that patch (power 1, no mirror)
    plain = patchy(mirror=False, power=1.0).fit(faces.images)
    from facelib.train import representation
    mu = representation(plain.model_)(grid_patches(x, 16, 8)[:, 4].contiguous())
    assert np.allclose(plain.transform(x)[:, 4 * 3:5 * 3], mu, atol=1e-6)


def test_scales_append_the_same_vaes_latents_of_the_downsampled_faces(faces):
    """A pyramid level's columns are the plain embedding of the images area-averaged to that
    side (adaptive average pooling: the area average written another way)."""
    est = patchy().fit(faces.images)
    x = faces.images[:5]
    pyramid = PatchVAEEmbedding.from_model(est.model_, patch=16, stride=8, scales=(24, 16))
    z = pyramid.transform(x)
    base = PatchVAEEmbedding.from_model(est.model_, patch=16, stride=8)
    assert z.shape == (5, (9 + 2 * 2 + 1) * 3)   # 32 px: 3 x 3 positions, 24 px: 2 x 2, 16 px: 1
    assert np.allclose(z[:, :27], base.transform(x), atol=1e-6)
    for side, cols in ((24, slice(27, 39)), (16, slice(39, 42))):
        small_x = torch.nn.functional.adaptive_avg_pool2d(x.float(), side).round().to(torch.uint8)
        assert np.allclose(z[:, cols], base.transform(small_x), atol=1e-5)


def test_from_model_wraps_a_trained_patch_vae_as_the_fitted_embedding(faces):
    """A patch VAE trained elsewhere (a zoo model) embeds as the estimator that trained it."""
    est = patchy().fit(faces.images)
    again = PatchVAEEmbedding.from_model(est.model_, patch=16, stride=8)
    assert np.allclose(again.transform(faces.images[:5]), est.transform(faces.images[:5]))
    with pytest.raises(ValueError, match="trained on 16 px patches"):
        PatchVAEEmbedding.from_model(est.model_, patch=12, stride=6)


def test_power_is_the_signed_root_of_the_same_means(faces):
    one = patchy(power=1.0, seed=2).fit(faces.images).transform(faces.images[:4])
    half = clone(patchy(power=0.5, seed=2)).fit(faces.images).transform(faces.images[:4])
    assert np.allclose(half, np.sign(one) * np.sqrt(np.abs(one)), atol=1e-6)


@pytest.mark.parametrize("bad, match", [
    (dict(patch=7), "even number >= 8"),
    (dict(patch=40), "does not fit"),
    (dict(power=0), "power must be > 0"),
    (dict(max_patches=0), "max_patches must be >= 1"),
    (dict(scales=(32,)), "scales \\[32\\] must be image sides"),
    (dict(scales=(8,)), "scales \\[8\\] must be image sides"),
])
def test_bad_patch_parameters_say_what_to_do(faces, bad, match):
    with pytest.raises(ValueError, match=match):
        patchy(**bad).fit(faces.images)


@pytest.mark.parametrize("union", [False, True])
def test_held_out_identities_hand_images_to_a_patch_vae_pipeline(faces, union):
    """evaluate flattens a held-out protocol's images for pixel baselines but must pass the patch VAE (even
    inside a Pipeline, or two scales of it in a FeatureUnion) the images themselves: it
    refuses pixel rows."""
    from sklearn.decomposition import PCA
    from sklearn.pipeline import FeatureUnion, Pipeline

    first = FeatureUnion([("fine", patchy()), ("coarse", patchy(patch=24, stride=8))]) if union else patchy()
    rep = Pipeline([("patch_vae", first), ("pca", PCA(5))])
    res = evaluate(rep, {"cosine": CosineScore()},
                   HeldOutIdentities(faces, n_train_pairs=20, n_test_pairs=10, test_fraction=0.34, seed=0),
                   representation_name="patch VAE")
    auc = res[(res.metric == "auc")].value
    assert len(auc) == 1 and 0 <= auc.iloc[0] <= 1


def test_contrast_normalised_patches_ignore_a_change_of_brightness_and_contrast(faces):
    est = patchy(contrast=True)
    x = faces.images[:4]
    dim = (x.float() * 0.5 + 40).round().to(torch.uint8)   # half the contrast, brighter
    a, b = est._normalise(grid_patches(x, 16, 8)).float(), est._normalise(grid_patches(dim, 16, 8)).float()
    flat = a.reshape(-1, 16 * 16)
    textured = flat.std(1) > 10                            # flat background patches stay flat
    assert torch.allclose(flat[textured].mean(1), torch.full((int(textured.sum()),), 128.0), atol=1.0)
    assert (a - b).abs().reshape(-1, 256)[textured].mean() < 4     # of 0-255, rounding aside
    raw = patchy()._normalise(grid_patches(x, 16, 8)).float()
    assert (raw - patchy()._normalise(grid_patches(dim, 16, 8)).float()).abs().mean() > 20
