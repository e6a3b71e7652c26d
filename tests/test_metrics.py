"""facelib.metrics: each metric against known cases (ground truth, noise, mixing, duplication),
invariances that must hold, and the helpers against scikit-learn / closed forms."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import mutual_info_score

from facelib.metrics import (
    DatasetSource,
    FactorSource,
    ToySource,
    YaleBSource,
    beta_vae_score,
    dci,
    dci_from_importance,
    discrete_entropy,
    discrete_mutual_info,
    evaluate,
    factor_vae_score,
    ground_truth_representation,
    histogram_discretize,
    mig,
    mig_from_codes,
    mutual_info_table,
    random_representation,
    sap,
)
import facelib.metrics
from facelib.data.synthetic import SyntheticFaces
from facelib.metrics.sap import sap_score_matrix
from facelib.models import build_model
from facelib.train import representation
from facelib.metrics.utils import sample_codes_and_factors

SIZES = (3, 4, 5, 6)
K = len(SIZES)
# small settings (the defaults stay disentanglement_lib's)
SMALL = dict(
    beta_vae=dict(n_train=600, n_eval=300, batch_size=32),
    factor_vae=dict(n_train=800, n_eval=400, batch_size=32, num_variance_estimate=2000),
    mig=dict(n_train=3000),
    dci=dict(n_train=600, n_eval=300),
    sap=dict(n_train=600, n_eval=300),
)
FUNCS = dict(beta_vae=beta_vae_score, factor_vae=factor_vae_score, mig=mig, dci=dci, sap=sap)


def run_all(rep, source, seed=0, settings=SMALL):
    return {name: FUNCS[name](rep, source, seed=seed, **settings[name]) for name in FUNCS}


TINY = dict(
    beta_vae=dict(n_train=300, n_eval=150, batch_size=16),
    factor_vae=dict(n_train=300, n_eval=150, batch_size=16, num_variance_estimate=1000),
    mig=dict(n_train=1000),
    dci=dict(n_train=300, n_eval=150),
    sap=dict(n_train=300, n_eval=150),
)


@pytest.fixture(scope="module")
def toy():
    return ToySource(SIZES)


@pytest.fixture(scope="module")
def gt_scores(toy):
    return run_all(ground_truth_representation(toy), toy)


# -- helpers against references --------------------------------------------------------------
def test_mutual_info_matches_sklearn_and_hand_cases():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 7, size=(500, 3))
    factors = np.stack([codes[:, 0] // 2, rng.integers(0, 4, 500)], axis=1)
    m = discrete_mutual_info(codes, factors)
    ref = np.array([[mutual_info_score(factors[:, k], codes[:, j]) for k in range(2)] for j in range(3)])
    np.testing.assert_allclose(m, ref, atol=1e-12)
    a = np.array([0, 0, 1, 1])
    assert discrete_mutual_info(a[:, None], a[:, None])[0, 0] == pytest.approx(np.log(2))
    assert discrete_mutual_info(a[:, None], np.array([[0], [1], [0], [1]]))[0, 0] == pytest.approx(0.0, abs=1e-15)
    np.testing.assert_allclose(discrete_entropy(np.array([[0, 5], [1, 5], [2, 5], [3, 5]])), [np.log(4), 0.0])


def test_histogram_discretize_is_numpy_histogram():
    x = np.random.default_rng(1).standard_normal((1000, 2))
    d = histogram_discretize(x, 20)
    assert d.min() >= 0 and d.max() <= 19
    for j in range(2):
        np.testing.assert_array_equal(np.bincount(d[:, j], minlength=20), np.histogram(x[:, j], 20)[0])


def test_dci_from_importance_known_matrices():
    assert dci_from_importance(np.eye(3)) == pytest.approx({"disentanglement": 1.0, "completeness": 1.0})
    assert dci_from_importance(np.ones((3, 3))) == pytest.approx({"disentanglement": 0.0, "completeness": 0.0}, abs=1e-9)
    # two codes both only for factor 0: perfectly disentangled, not complete
    assert dci_from_importance(np.array([[1.0, 0.0], [1.0, 0.0]])) == pytest.approx(
        {"disentanglement": 1.0, "completeness": 0.0}, abs=1e-9)
    # half-importance code: D = weighted 1 - H_2 closed form
    R = np.array([[1.0, 0.0], [0.5, 0.5]])
    expect_d = (1.0 * 1 + 1.0 * 0) / 2.0  # code 0: D=1 (weight 1/2), code 1: D=0 (weight 1/2)
    assert dci_from_importance(R)["disentanglement"] == pytest.approx(expect_d, abs=1e-9)


def test_mig_from_codes_closed_form():
    # factor 0 copied into dim 0, dim 1 carries half of it (its parity is lost): gap is
    # H(f) - I(dim1; f) = log 4 - log 2, normalised by log 4 -> 0.5
    f = np.repeat(np.arange(4), 50)[:, None]
    z = np.stack([f[:, 0], f[:, 0] // 2], axis=1).astype(float)
    assert mig_from_codes(z, f, num_bins=20)["mig"] == pytest.approx(0.5, abs=1e-12)


def test_mutual_info_table_against_sklearn_and_mig(toy):
    """Entries are sklearn's plug-in MI of the discretised codes over scipy's factor entropy,
    and each column's top-two gap is mig()'s per-factor value (same seed, same sample)."""
    from scipy.stats import entropy

    A = np.concatenate([np.eye(K), np.eye(K)[:, :1]], axis=1)  # f0 in dims 0 and 4: a spread factor
    A[:2, :2] = _rotation(np.pi / 6)[:2, :2]                   # f0 / f1 mixed
    rep = ground_truth_representation(toy, A)
    t = mutual_info_table(rep, toy, seed=4, n_train=1500)
    assert list(t.index) == [f"z{j}" for j in range(K + 1)] and list(t.columns) == list(toy.factor_names)

    mus, f = sample_codes_and_factors(rep, toy, 1500, np.random.default_rng(4))
    codes = histogram_discretize(mus, 20)
    for j in range(K + 1):
        for k in range(K):
            h = entropy(np.bincount(f[:, k]))
            assert t.iloc[j, k] == pytest.approx(mutual_info_score(codes[:, j], f[:, k]) / h, abs=1e-10)
    m = mig(rep, toy, seed=4, n_train=1500)
    top = np.sort(t.to_numpy(), axis=0)[::-1]
    for k, name in enumerate(toy.factor_names):
        assert top[0, k] - top[1, k] == pytest.approx(m[f"mig_{name}"], abs=1e-12)
    # the spread factor shows as two full entries in its column, the clean ones as one
    assert t.loc["z4", "f0"] > 0.5 and t.loc["z0", "f0"] > 0.5
    assert t["f2"].max() == pytest.approx(1.0) and np.sort(t["f2"])[-2] < 0.05


def test_mutual_info_table_rows_follow_a_permutation(toy):
    perm = np.array([2, 0, 3, 1])
    base = mutual_info_table(ground_truth_representation(toy), toy, seed=1, n_train=800)
    moved = mutual_info_table(ground_truth_representation(toy, np.eye(K)[:, perm]), toy, seed=1, n_train=800)
    np.testing.assert_allclose(moved.to_numpy(), base.to_numpy()[perm], atol=1e-12)
    np.testing.assert_allclose(np.diag(base.to_numpy()), 1.0)  # each factor's own latent carries all of it


# -- ground truth at the top, noise at the bottom --------------------------------------------
def test_ground_truth_scores_maximal(gt_scores):
    s = gt_scores
    assert s["beta_vae"]["eval_accuracy"] == pytest.approx(1.0)
    assert s["factor_vae"]["eval_accuracy"] == pytest.approx(1.0)
    assert s["factor_vae"]["num_active_dims"] == K
    assert s["mig"]["mig"] > 0.98
    assert s["dci"]["disentanglement"] > 0.98 and s["dci"]["completeness"] > 0.98
    assert s["dci"]["informativeness_test"] > 0.98
    # discrete SAP scores one-dimensional linear SVMs: the own factor's dim beats chance by a wide margin
    assert s["sap"]["sap"] > 0.3


def test_random_representation_scores_minimal(toy):
    s = run_all(random_representation(K, seed=3), toy)
    chance = 1.0 / K
    assert s["beta_vae"]["eval_accuracy"] < chance + 0.12
    assert s["factor_vae"]["eval_accuracy"] < chance + 0.12
    assert s["mig"]["mig"] < 0.02
    assert s["dci"]["disentanglement"] < 0.1
    assert s["dci"]["informativeness_test"] < 0.5
    assert s["sap"]["sap"] < 0.05


def test_sap_binary_factors_score_matrix_and_continuous_variant():
    src = ToySource((2, 2, 2))
    rep = ground_truth_representation(src)
    rng = np.random.default_rng(0)
    f, ft = src.sample_factors(400, rng), src.sample_factors(200, rng)
    S = sap_score_matrix(f.astype(float), f, ft.astype(float), ft)
    np.testing.assert_allclose(np.diag(S), 1.0)
    assert np.all(np.abs(S[~np.eye(3, dtype=bool)] - 0.5) < 0.15)  # independent dims: chance
    assert sap(rep, src, n_train=400, n_eval=200, continuous_factors=True)["sap"] > 0.95


# -- changes of the representation ------------------------------------------------------------
def _rotation(theta):
    A = np.eye(K)
    c, s = np.cos(theta), np.sin(theta)
    A[:2, :2] = [[c, -s], [s, c]]
    return A


def test_rotation_lowers_mig_and_dci_disentanglement(toy, gt_scores):
    rep = ground_truth_representation(toy, _rotation(np.pi / 4))
    m = mig(rep, toy, seed=0, **SMALL["mig"])
    d = dci(rep, toy, seed=0, **SMALL["dci"])
    assert m["mig"] < gt_scores["mig"]["mig"] - 0.2
    assert m["mig_f0"] < 0.5 and m["mig_f2"] > 0.95  # only the rotated factors suffer
    assert d["disentanglement"] < gt_scores["dci"]["disentanglement"] - 0.1


def test_duplicated_factor_lowers_mig_not_informativeness(toy, gt_scores):
    A = np.concatenate([np.eye(K), np.eye(K)[:, :1]], axis=1)  # factor 0 in dims 0 and 4
    rep = ground_truth_representation(toy, A)
    m = mig(rep, toy, seed=0, **SMALL["mig"])
    d = dci(rep, toy, seed=0, **SMALL["dci"])
    assert m["mig_f0"] < 0.05 and m["mig"] < gt_scores["mig"]["mig"] - 0.2
    assert d["informativeness_test"] > 0.98
    assert d["completeness"] < gt_scores["dci"]["completeness"] - 0.05


def test_permuting_latent_dimensions_changes_nothing(toy):
    rng = np.random.default_rng(5)
    A = np.eye(K) + 0.3 * rng.standard_normal((K, K))
    A = np.concatenate([A, rng.standard_normal((K, 1))], axis=1)  # one extra mixed dim
    perm = np.array([3, 0, 4, 2, 1])
    a = run_all(ground_truth_representation(toy, A), toy, settings=TINY)
    b = run_all(ground_truth_representation(toy, A[:, perm]), toy, settings=TINY)
    for name in ("factor_vae", "mig", "sap"):
        for key in a[name]:
            assert b[name][key] == pytest.approx(a[name][key], abs=1e-9), (name, key)
    assert b["beta_vae"]["eval_accuracy"] == pytest.approx(a["beta_vae"]["eval_accuracy"], abs=0.02)
    for key in a["dci"]:
        assert b["dci"][key] == pytest.approx(a["dci"][key], abs=0.03), key


def test_factor_vae_prunes_collapsed_dimensions(toy):
    A = np.concatenate([np.eye(K), 1e-3 * np.ones((K, 1))], axis=1)  # dim 4 has std < 0.05
    s = factor_vae_score(ground_truth_representation(toy, A), toy, **SMALL["factor_vae"])
    assert s["num_active_dims"] == K and s["eval_accuracy"] == pytest.approx(1.0)
    flat = factor_vae_score(lambda x: np.zeros((x.shape[0], 3)), toy, **SMALL["factor_vae"])
    assert flat == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0.0}


def test_dci_lasso_variant(toy):
    gt = dci(ground_truth_representation(toy), toy, model="lasso", n_train=600, n_eval=300)
    assert gt["disentanglement"] > 0.98 and gt["informativeness_test"] > 0.95 and gt["nrmse_test"] < 0.2
    noise = dci(random_representation(K, 1), toy, model="lasso", n_train=600, n_eval=300)
    assert noise["informativeness_test"] < 0.05 and noise["nrmse_test"] > 0.95


# -- determinism, evaluate, errors ------------------------------------------------------------
def test_evaluate_tidy_and_deterministic(toy):
    over = dict(n_train=150, n_eval=100, batch_size=8, num_variance_estimate=300)
    a = evaluate(ground_truth_representation(toy, _rotation(0.3)), toy, seed=7, **over)
    b = evaluate(ground_truth_representation(toy, _rotation(0.3)), toy, seed=7, **over)
    assert list(a.columns) == ["metric", "submetric", "value", "seed", "config"]
    assert set(a.metric) == {"beta_vae", "factor_vae", "mig", "dci", "sap"}
    pd.testing.assert_frame_equal(a, b)
    # a random representation (fresh generator from the same seed) is reproducible too
    r1 = beta_vae_score(random_representation(K, 2), toy, seed=1, n_train=200, n_eval=100, batch_size=8)
    r2 = beta_vae_score(random_representation(K, 2), toy, seed=1, n_train=200, n_eval=100, batch_size=8)
    assert r1 == r2
    lasso = evaluate(ground_truth_representation(toy), toy, metrics=["dci"], n_train=300, n_eval=150,
                     dci={"model": "lasso"})
    assert "nrmse_test" in set(lasso.submetric) and '"model": "lasso"' in lasso.config.iloc[0]


class _TinyEncoder(torch.nn.Module):
    """Stand-in model: encode returns the pixel rows (the codes, scaled) as the mean."""

    latent_dim = K

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))

    def encode(self, x):
        mu = x[:, 0, :, 0] * self.scale
        return mu, torch.zeros_like(mu)


def test_mutual_info_table_accepts_a_model(toy):
    t = mutual_info_table(_TinyEncoder(), toy, seed=2, n_train=500)
    np.testing.assert_allclose(np.diag(t.to_numpy()), 1.0)  # the pixel rows are the codes


def test_evaluate_accepts_a_model(toy, monkeypatch):
    t = evaluate(_TinyEncoder(), toy, metrics=("mig",), n_train=2000)
    assert t.value.iloc[0] > 0.98
    # one posterior-mean representation (facelib.train.inference's): no second copy to fall back on
    import facelib.train

    monkeypatch.delattr(facelib.train, "representation", raising=False)
    t2 = evaluate(_TinyEncoder(), toy, metrics=("mig",), n_train=2000)
    assert t2.value.iloc[0] == pytest.approx(t.value.iloc[0], abs=1e-12)


def test_bad_input_raises_clear_errors(toy):
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        mig(lambda x: np.zeros((3, 2)), toy, n_train=100)
    with pytest.raises(ValueError, match="NaN"):
        mig(lambda x: np.full((x.shape[0], 2), np.nan), toy, n_train=100)
    with pytest.raises(TypeError, match="not a factor source"):
        mig(ground_truth_representation(toy), object(), n_train=100)
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate(ground_truth_representation(toy), toy, metrics=["nope"])
    with pytest.raises(TypeError, match="no selected metric takes"):
        evaluate(ground_truth_representation(toy), toy, metrics=["mig"], n_trian=10)
    with pytest.raises(ValueError, match="positive integer"):
        sap(ground_truth_representation(toy), toy, n_train=0)
    assert isinstance(toy, FactorSource)


# -- sources with incomplete grids --------------------------------------------------------------
def _holey_source():
    """6 x 4 grid with one value of f1 never seen together with some f0 values."""
    f0, f1 = np.meshgrid(np.arange(6), np.arange(4), indexing="ij")
    f0, f1 = f0.ravel(), f1.ravel()
    keep = ~((f1 == 3) & (f0 >= 3))
    f0, f1 = f0[keep], f1[keep]
    img = np.stack([f0 * 40, f1 * 80], axis=1).astype(np.uint8)[:, None, :, None]  # 1 x 2 x 1
    return DatasetSource(img, {"a": f0 * 10, "b": f1 - 5}), set(zip(f0.tolist(), f1.tolist()))


def test_dataset_source_samples_only_existing_combinations():
    src, existing = _holey_source()
    assert src.factor_sizes == [6, 4]
    rng = np.random.default_rng(0)
    assert set(map(tuple, src.sample_factors(2000, rng).tolist())) <= existing
    fixed = src.sample_fixed(1, 3, 500, rng)
    assert (fixed[:, 1] == 3).all() and set(map(tuple, fixed.tolist())) <= existing
    assert set(fixed[:, 0].tolist()) == {0, 1, 2}  # conditional on b, every matching row is reachable
    per_row = src.sample_fixed(0, np.array([4, 5, 4]), 3, rng)
    np.testing.assert_array_equal(per_row[:, 0], [4, 5, 4])
    imgs = src.render_codes(fixed, rng)
    np.testing.assert_array_equal(imgs[:, 0, 1, 0].numpy(), fixed[:, 1] * 80)
    with pytest.raises(ValueError, match="no image has codes"):
        src.render_codes(np.array([[5, 3]]), rng)
    rep = lambda x: x[:, 0, :, 0].numpy().astype(float)  # noqa: E731
    assert beta_vae_score(rep, src, n_train=200, n_eval=100, batch_size=16)["eval_accuracy"] == pytest.approx(1.0)
    assert factor_vae_score(rep, src, n_train=200, n_eval=100, num_variance_estimate=500)["eval_accuracy"] == 1.0


class _NamedSampler(ToySource):
    """A complete-grid source with a by-name sampler (as SyntheticFaces.sample_holding), no sample_fixed."""

    def sample_holding(self, factor, batch_size, seed):
        raise AssertionError("the metrics must not call a sampler of another contract")


class _LyingSampler(ToySource):
    def sample_fixed(self, k, value, n, rng):
        return self.sample_factors(n, rng)  # ignores the fixed value


def test_sample_fixed_contract_is_checked():
    named = _NamedSampler(SIZES)
    s = beta_vae_score(ground_truth_representation(named), named, n_train=100, n_eval=50, batch_size=16)
    assert s["eval_accuracy"] == pytest.approx(1.0)  # fell back to overwriting the column
    lying = _LyingSampler(SIZES)
    with pytest.raises(ValueError, match="column k equals value"):
        beta_vae_score(ground_truth_representation(lying), lying, n_train=100, n_eval=50, batch_size=16)


def _yaleb_file():
    root = os.environ.get("FACELIB_DATA")
    path = Path(root or "data") / "extended_yale_b" / "extended_yale_b_cropped.npz"
    return path if path.exists() else None


@pytest.mark.skipif(_yaleb_file() is None, reason="Extended Yale B not found under $FACELIB_DATA")
def test_yaleb_source_on_real_file():
    src = YaleBSource()
    assert src.factor_names == ["identity", "azimuth", "elevation"]
    assert src.factor_sizes == [38, 29, 12]
    with np.load(_yaleb_file()) as d:
        x, y, az, el = d["images_64x64"], d["label"], d["azimuth"], d["elevation"]
    rng = np.random.default_rng(0)
    codes = src.sample_fixed(0, 5, 20, rng)
    imgs = src.render_codes(codes, rng)
    assert imgs.shape == (20, 1, 64, 64) and imgs.dtype == torch.uint8
    for c, im in zip(codes, imgs):
        row = np.flatnonzero((y == c[0]) & (az == src.levels[1][c[1]]) & (el == src.levels[2][c[2]]))
        assert row.size == 1 and np.array_equal(x[row[0]], im[0].numpy())
    # ground truth on real data: look each image's codes up by its pixels
    by_pixels = {src.images[i].numpy().tobytes(): src.codes[i] for i in range(src.codes.shape[0])}
    assert len(by_pixels) == src.codes.shape[0]  # every image distinct, so the lookup is exact
    rep = lambda im: np.stack([by_pixels[x.numpy().tobytes()] for x in im]).astype(float)  # noqa: E731
    # fixing the light's elevation often fixes its azimuth too (only 64 directions exist), so
    # ground truth ties there and lands well above chance (1/3) but below 1
    assert factor_vae_score(rep, src, n_train=300, n_eval=150, num_variance_estimate=1000)["eval_accuracy"] > 0.6
    m = mig(rep, src, n_train=2000, num_bins=40)  # 40 bins keep the 38 identities apart
    assert m["mig_identity"] > 0.9  # identity is (nearly) independent of the light
    noise = mig(random_representation(3, 0), src, n_train=2000)
    assert noise["mig"] < 0.05


def test_metrics_run_on_the_synthetic_faces():
    synthetic = pytest.importorskip("facelib.data.synthetic")
    src = synthetic.SyntheticFaces(size=32, n_identities=4, levels={"yaw": 3, "light_azimuth": 3})
    # its sample_holding(factor, batch_size, seed) is another contract: the metrics overwrite
    # a column (its grid is complete) rather than call it
    rep = lambda im: torch.nn.functional.avg_pool2d(im.float(), 8).flatten(1).numpy()  # noqa: E731
    s = factor_vae_score(rep, src, n_train=10, n_eval=5, batch_size=4, num_variance_estimate=40)
    assert 0.0 <= s["eval_accuracy"] <= 1.0 and s["num_active_dims"] >= 1
    t = evaluate(rep, src, metrics=("mig",), n_train=100)
    assert list(t.submetric) == ["mig", "mig_identity", "mig_yaw", "mig_light_azimuth"]


def _unique_image_source(n=120):
    """A fixed data set of n distinct images (image i shows i in its first pixels), two factors."""
    from facelib.metrics.sources import DatasetSource

    images = np.zeros((n, 1, 4, 4), dtype=np.uint8)
    images[:, 0, 0, 0], images[:, 0, 0, 1] = np.arange(n) % 256, np.arange(n) // 256
    return DatasetSource(images, {"a": np.arange(n) % 3, "b": np.arange(n) % 4}, name="toy-fixed")


class _Recorder:
    """A representation that notes which images (by index) each call saw."""

    def __init__(self):
        self.calls = []

    def __call__(self, images):
        idx = images[:, 0, 0, 0].long() + 256 * images[:, 0, 0, 1].long()
        self.calls.append(idx.numpy().copy())
        return np.random.default_rng(int(idx.sum())).normal(size=(images.shape[0], 3))


@pytest.mark.parametrize("metric", ["dci", "sap"])
def test_fixed_data_sets_test_on_images_the_predictor_never_saw(metric):
    from facelib.metrics import dci, sap

    source, rep = _unique_image_source(), _Recorder()
    fn = {"dci": lambda: dci(rep, source, seed=0, n_train=80, n_eval=40, model="lasso"),
          "sap": lambda: sap(rep, source, seed=0, n_train=80, n_eval=40)}[metric]
    fn()
    train, test = rep.calls[0], rep.calls[1]
    assert len(rep.calls) == 2 and len(train) == 80 and len(test) == 40
    assert not set(train) & set(test), "a test point is a training point"
    assert len(set(train)) == 80  # drawn without replacement


def test_a_small_fixed_data_set_is_split_in_the_asked_ratio():
    source = _unique_image_source(30)
    train, test = source.disjoint_rows(10000, 5000, np.random.default_rng(0))
    assert (len(train), len(test)) == (20, 10) and not set(train) & set(test)
    assert sorted(np.r_[train, test]) == list(range(30))
    with pytest.raises(ValueError, match="at least 2 images"):
        _unique_image_source(1).disjoint_rows(5, 5, np.random.default_rng(0))


@pytest.mark.parametrize("metric", ["mig", "sap", "dci", "beta_vae_score", "factor_vae_score", "mutual_info_table"])
def test_every_metric_takes_a_model_as_its_posterior_mean(metric):
    """A model passed where a representation goes is read through its posterior mean, by every
    metric alike (`mig(model, source)` used to fail with the model's uint8 message)."""
    torch.manual_seed(0)
    model = build_model("vae", image_size=32, latent_dim=3).eval()
    source = SyntheticFaces(size=32, n_identities=4, seed=0)
    fn = getattr(facelib.metrics, metric)
    options = dict(seed=1, n_train=60) if metric in ("mig", "mutual_info_table") else \
        dict(seed=1, n_train=60, n_eval=40) if metric in ("sap", "dci") else dict(seed=1, n_train=40, n_eval=20, batch_size=8)
    by_model = fn(model, source, **options)
    by_function = fn(representation(model), source, **options)
    if isinstance(by_model, dict):
        assert by_model == pytest.approx(by_function)
    else:
        assert by_model.equals(by_function)
    with pytest.raises(TypeError, match="torch model or a representation callable"):
        fn("model.pt", source, **options)
