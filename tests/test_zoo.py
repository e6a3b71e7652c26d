"""The model zoo: recipes, build, sha256-checked loading, and the shipped models' headline metrics."""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import facelib
from facelib import zoo
from facelib.experiment import run
from facelib.train import TrainConfig, load_checkpoint
from facelib.zoo import Recipe, ZooError
from facelib.metrics import PCAReconstructor, grid_prominence
from facelib.train import held_out_terms, reconstruct, sample
from facelib.zoo.evaluation import REFINE_STEPS
from facelib.zoo.recipes import RECIPES, build_data, held_out_faces


def tiny(name: str = "synthetic-beta-vae-b4", **changes) -> Recipe:
    """A recipe trained in seconds: the named one at 16 steps on 256 faces."""
    r = RECIPES[name]
    options = {**r.data_options, "n": 256}
    return r.replace(name=f"tiny-{name}", steps=16, data_options=options, **changes)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    r = tiny()
    record = zoo.build(r, folder=folder, work_dir=folder / "runs")
    return folder, r, record


def test_build_records_file_hash_recipe_and_metrics(built):
    folder, r, record = built
    file = folder / record["file"]
    assert record["sha256"] == zoo.sha256(file)
    assert json.loads((folder / "manifest.json").read_text())["models"][r.name]["sha256"] == record["sha256"]
    as_json = json.loads(json.dumps(record["recipe"]))
    assert Recipe.from_dict(as_json) == Recipe.from_dict(json.loads(json.dumps(r.to_dict())))
    assert record["training"]["steps"] == 16
    factors = zoo.evaluation.factor_source(r).factor_names
    assert set(record["metrics"]) == {"beta_vae_score", "mig", *(f"mig_{f}" for f in factors)}
    assert record["metrics"]["mig"] == pytest.approx(np.mean([record["metrics"][f"mig_{f}"] for f in factors]))
    assert 0.0 <= record["metrics"]["mig"] <= 1.0
    assert record["training"]["hardware"]["cores"] >= 1
    curve, history = record["curve"], load_checkpoint(file)["history"]  # the run's own history, per epoch
    assert curve["step"] == [int(s) for s in history["step"]] and curve["step"][-1] == 16
    assert curve["train_loss"] == pytest.approx(list(history["train_loss"]), abs=1e-3)
    assert set(curve) == {"step", "train_loss", "val_loss", "val_recon_nll", "val_kl"}


def test_load_gives_the_trained_model_in_half_precision_storage(built):
    folder, r, record = built
    model = zoo.load(r.name, folder=folder)
    stored = torch.load(folder / record["file"], weights_only=True)
    assert all(v.dtype == torch.float16 for v in stored["state_dict"].values() if v.is_floating_point())
    trained = torch.load(folder / "runs" / r.name / "checkpoint.pt", weights_only=True)["state_dict"]
    for key, value in model.state_dict().items():
        assert torch.allclose(value, trained[key].float(), atol=1e-3, rtol=1e-3), key
    assert model.zoo_name == r.name and not model.training


def test_a_changed_byte_is_refused(built, tmp_path):
    folder, r, record = built
    import shutil

    copy = tmp_path / "zoo"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("runs"))
    file = copy / record["file"]
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0x01
    file.write_bytes(bytes(data))
    with pytest.raises(ZooError, match="sha256.*damaged or was replaced.*git checkout"):
        zoo.load(r.name, folder=copy)
    file.unlink()
    with pytest.raises(ZooError, match="missing.*zoo build"):
        zoo.load(r.name, folder=copy)


def test_unknown_name_lists_the_zoo_and_build_refuses_to_overwrite(built):
    folder, r, _ = built
    with pytest.raises(ZooError, match=f"no model 'nope'.*{r.name}"):
        zoo.load("nope", folder=folder)
    with pytest.raises(ZooError, match="already has.*overwrite"):
        zoo.build(r, folder=folder, work_dir=folder / "runs")


def test_recipes_are_complete_and_seeded():
    assert {"synthetic-modvae", "synthetic-vae", "synthetic-beta-vae-b4", "synthetic-beta-tcvae",
            "synthetic-factor-vae", "lfw-beta-vae-b4", "lfw-modvae"} <= set(RECIPES)
    assert sum(r.model == "beta-vae" and r.data == "synthetic" for r in RECIPES.values()) >= 2
    r = tiny()
    data = build_data(r)
    a, b = r.spec().make_model(data), r.spec().make_model(data)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    other = r.replace(seed=1).spec().make_model(data)
    assert not torch.equal(next(iter(a.state_dict().values())), next(iter(other.state_dict().values())))
    with pytest.raises(KeyError, match="known recipes"):
        zoo.recipe("no-such-recipe")
    with pytest.raises(ValueError, match="steps must be a positive"):
        r.replace(steps=0)
    with pytest.raises(ValueError, match="unknown field"):
        Recipe.from_dict({**r.to_dict(), "colour": 1})


def test_modvae_blocks_follow_the_grouped_factors():
    r = tiny("synthetic-modvae")
    data = build_data(r)
    blocks = r.spec().model.config_for(data)["blocks"]
    assert blocks == {"identity": 1, "yaw": 1, "pitch": 1, "light_azimuth": 1, "light_elevation": 1, "expression": 1}
    with pytest.raises(ValueError, match="latent_dim=4"):
        r.spec().updated({"model.options.latent_dim": 4}).model.config_for(data)


def _config_data(r: Recipe, yaleb_available: bool):
    """A recipe's training data, or a stand-in with the same image shape and groups where its
    config depends on nothing else (LFW: no groups of its own; the identity groups come from fit)."""
    if r.data == "synthetic":
        return build_data(r.replace(data_options={**r.data_options, "n": 64}))
    if r.data == "yaleb":
        if not yaleb_available:
            pytest.skip("Extended Yale B is not under $FACELIB_DATA")
        return build_data(r)
    from facelib.data import FaceDataset
    side = int(r.patches.get("patch", 0)) or int(r.data_options["size"])
    channels = int(r.data_options.get("channels", 1))
    return FaceDataset(images=torch.zeros(8, channels, side, side, dtype=torch.uint8),
                       identity=np.zeros(8, dtype=np.int64), name="stand-in")


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_each_recipe_spec_builds_the_shipped_models_config(name, yaleb_available):
    """`Recipe.spec()` (the path every caller trains a recipe through) gives the configuration of
    the model the zoo ships: ModVAE's blocks from the one block policy included."""
    r = RECIPES[name]
    config = r.spec().model.config_for(_config_data(r, yaleb_available))
    shipped = zoo.load(name).config
    built = type(shipped)(**config)
    assert dataclasses.asdict(built) == {**dataclasses.asdict(shipped),
                                         **({"dataset_size": built.dataset_size} if hasattr(built, "dataset_size") else {})}


def test_patch_recipe_trains_on_the_grid_patches_of_its_images(monkeypatch):
    """A recipe with `patches` trains on `training_patches` of the loaded images (the same function
    PatchVAEEmbedding.fit uses), takes its sizes from the LFW setting, and refuses bad options."""
    from facelib.verify.latents import training_patches
    from facelib.verify.selection import LFWSetting
    from facelib.zoo.recipes import patch_vae_recipe

    setting = LFWSetting("patch-vae", "image-restricted", 32, 120, patch={"patch": 8, "stride": 8, "max_patches": 300,
                                                                         "epochs": 2}, pca=50, plda=20)
    r = patch_vae_recipe(setting)
    # epochs x full batches of 300 patches (fit drops the short last one), as PatchVAEEmbedding trains
    assert r.steps == 2 * 1 and r.batch_size == 256 and r.train_options == {"val_fraction": 0.0}
    assert r.evaluation_options == {"power": 0.5, "pca": 50, "plda": 20, "length_norm": False}
    assert (r.data_options["size"], r.data_options["crop"], r.data_options["split"]) == (32, 120, "train")
    faces = build_data(tiny())  # synthetic faces stand in for LFW here
    monkeypatch.setattr("facelib.data.load", lambda *a, **k: faces)
    data = build_data(r)
    want = training_patches(faces.images, 8, 8, 300, mirror=True, seed=r.seed)
    assert torch.equal(data.images, want) and data.images.shape[1:] == (1, 8, 8)
    assert (data.identity == -1).all()
    model = r.spec().make_model(data)
    assert model.config.image_size == 8 and model.config.latent_dim == 12
    with pytest.raises(ValueError, match="unknown patches option"):
        r.replace(patches={"patch": 12, "size": 3})
    with pytest.raises(ValueError, match="goes with patches"):
        r.replace(patches={})
    with pytest.raises(ValueError, match="patch-vae setting"):
        patch_vae_recipe(LFWSetting("pixels"))


def test_the_zoo_patch_vae_is_the_system_frozen_on_view1():
    from facelib.results import shipped_results_dir
    from facelib.verify.selection import frozen_setting
    from facelib.zoo.recipes import patch_vae_recipe

    chosen = frozen_setting(shipped_results_dir() / "lfw_frozen.json", "patch-vae", "image-restricted")
    assert RECIPES["lfw-patch-vae"] == patch_vae_recipe(chosen)


# -- the shipped zoo -------------------------------------------------------------------------------
SHIPPED = zoo.manifest()


def _needs_data(name):
    return SHIPPED[name]["recipe"]["data"] != "synthetic"


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model_reproduces_its_headline_metrics(name, lfw_available, yaleb_available):
    data = SHIPPED[name]["recipe"]["data"]
    if data == "yaleb" and not yaleb_available:
        pytest.skip("Extended Yale B is not under $FACELIB_DATA")
    if data.startswith("lfw") and not lfw_available:
        pytest.skip("LFW is not under $FACELIB_DATA")
    stored = SHIPPED[name]
    now = zoo.headline_metrics(zoo.load(name), Recipe.from_dict(stored["recipe"]))
    moved = zoo.within_tolerance(now, stored["metrics"], stored.get("tolerance"))
    assert moved == {}, f"{name}: headline metrics moved beyond the stated tolerance (stored, now): {moved}"
    if name == "synthetic-modvae":  # the level reached, on the recomputed figures
        _holds_modvae_level(now)


_REFERENCE_FACES: dict = {}


def _reference_faces(name, lfw_available, yaleb_available):
    """The faces behind a shipped model's `latent_spread` (`evaluation.reference_spread`), loaded
    once per kind of face for the whole module; skips when their data set is absent."""
    from facelib.zoo.evaluation import SPREAD_FACES
    from facelib.zoo.recipes import held_out_inputs, held_out_options

    r = RECIPES[name]
    if r.data == "yaleb" and not yaleb_available:
        pytest.skip("Extended Yale B is not under $FACELIB_DATA")
    if r.data.startswith("lfw") and not lfw_available:
        pytest.skip("LFW is not under $FACELIB_DATA")
    key = (r.data, repr(sorted(held_out_options(r).items())), repr(r.patches))
    if key not in _REFERENCE_FACES:
        _REFERENCE_FACES[key] = held_out_inputs(r, SPREAD_FACES)
    return _REFERENCE_FACES[key]


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model_carries_its_latent_spread(name, lfw_available, yaleb_available):
    """The traversals' data unit stored in the manifest is each latent's spread over the
    reference faces, recomputed here from the weights (`train.latent_spread`: std of the
    posterior means), and `zoo.load` hands it to the model."""
    from facelib.zoo.evaluation import reference_spread

    faces = _reference_faces(name, lfw_available, yaleb_available)
    model = zoo.load(name)
    stored = SHIPPED[name]["latent_spread"]
    now = reference_spread(model, name, faces=faces)
    assert now["reference"] == stored["reference"]
    np.testing.assert_allclose(now["std"], stored["std"], rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(model.latent_spread, stored["std"], rtol=1e-6)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_traversals_of_every_shipped_model_move_the_face_visibly(name, lfw_available, yaleb_available):
    """#42: between the ends of the default range (viz.DEFAULT_VALUES, in data units), each of the
    8 most informative latents (KL > 0.1 nats) changes the decoded face by at least 5 grey levels
    (mean absolute difference over pixels and 8 faces). With the old posterior units the LFW
    VAE moved by a quarter of a grey level."""
    from facelib import viz
    from facelib.viz._common import kl_per_dim

    faces = _reference_faces(name, lfw_available, yaleb_available).images[:8]
    model = zoo.load(name)
    kl = kl_per_dim(model, faces.float() / 255)
    informative = [int(k) for k in np.argsort(-kl, kind="stable") if kl[k] > 0.1][:8]
    assert informative, f"{name} has no latent with KL > 0.1 nats on these faces"
    ends = [float(viz.DEFAULT_VALUES[0]), float(viz.DEFAULT_VALUES[-1])]
    change = np.zeros(len(informative))
    for face in faces:
        grid = viz.traversal_grid(model, face, informative, values=ends, order_by_kl=False)
        change += (grid[:, 1] - grid[:, 0]).abs().mean(dim=(1, 2, 3)).numpy() * 255 / len(faces)
    weak = {k: round(float(c), 2) for k, c in zip(informative, change) if c < 5}
    assert not weak, f"{name}: latents moving the face by under 5 grey levels: {weak}"


LFW_FACE_MODELS = sorted(n for n in SHIPPED if n.startswith("lfw-") and n != "lfw-patch-vae")


@pytest.mark.parametrize("name", LFW_FACE_MODELS)
def test_lfw_samples_carry_no_decoder_grid(name):
    """#42: faces decoded from N(0, I) show no peak at a stride-2 grid's frequencies
    (`metrics.grid_prominence` at most 1.25; View 1 test faces: 0.9). The models that upsampled by
    transposed convolutions before #42 measured 3.4-3.6: their checkerboard."""
    prominence = grid_prominence(sample(zoo.load(name), 512, seed=0, device="cpu"))
    assert prominence <= 1.25, f"{name}: its samples peak {prominence:.2f} x at the grid frequencies"


def test_refined_codes_close_the_lfw_vaes_amortization_gap(lfw_available):
    """#42: on people it never saw, the VAE's encoder guesses each posterior short of what its decoder
    can draw. Refined on its own face (`train.refine_posterior`, the zoo's REFINE_STEPS), 256 View 1
    test faces are reconstructed better: below the encoder's MSE by at least 8 % (on all 2,000,
    reconstruction.csv: 0.0101 -> 0.0088) and below 0.8 x the MSE of PCA-32 (fitted on the same
    training faces) on the same faces, where the encoder's codes give 0.86 x."""
    if not lfw_available:
        pytest.skip("needs LFW ($FACELIB_DATA)")
    recipe = zoo.Recipe.from_dict(zoo.entry("lfw-vae")["recipe"])
    faces = held_out_faces(recipe).images[:256]
    x = faces.float() / 255
    model = zoo.load("lfw-vae")
    encoder = float(((reconstruct(model, faces, device="cpu") - x) ** 2).mean())
    refined = float(((reconstruct(model, faces, device="cpu", refine_steps=REFINE_STEPS) - x) ** 2).mean())
    pca = float(((PCAReconstructor(32).fit(build_data(recipe).images)(faces).clamp(0, 1) - x) ** 2).mean())
    assert refined <= 0.92 * encoder, f"refining moved the MSE from {encoder:.5f} only to {refined:.5f}"
    assert refined <= 0.8 * pca, f"refined MSE {refined:.5f} is {refined / pca:.3f} x PCA-32's {pca:.5f}"


def test_the_lfw_beta_sweep_trades_rate_for_distortion(lfw_available):
    """#42: on View 1 test faces the shipped sweep's rate falls and its error rises at every step of
    beta (2, 4, 5, 10), and beta 10 keeps at most half of beta 2's rate. At the VAE's decoder std
    of 0.05 (the sweep before #42) the MSE of betas 2 to 10 stayed within 0.0104-0.0105."""
    if not lfw_available:
        pytest.skip("needs LFW ($FACELIB_DATA)")
    names = [f"lfw-beta-vae-b{b:g}" for b in zoo.recipes.LFW_BETAS]
    faces = held_out_faces(names[0]).images[:500]
    kl, mse = [], []
    for name in names:
        model = zoo.load(name)
        kl.append(held_out_terms(model, faces, seed=0, device="cpu")["kl"])
        mse.append(float(((reconstruct(model, faces, device="cpu") - faces.float() / 255) ** 2).mean()))
    assert all(a > b for a, b in zip(kl, kl[1:])), f"the KL does not fall with beta: {kl}"
    assert all(a < b for a, b in zip(mse, mse[1:])), f"the MSE does not rise with beta: {mse}"
    assert kl[-1] <= 0.5 * kl[0], f"beta 10 keeps more than half of beta 2's rate: {kl}"


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model_samples_from_the_density_of_its_training_codes(name):
    """#42: every zoo model carries the density of its training codes and samples from it; the
    stored prior mismatch is the closed form of the stored Gaussian (test_density checks it)."""
    model = zoo.load(name)
    fitted = model.aggregate_posterior
    assert fitted.latent_dim == model.config.latent_dim and fitted.n_codes >= 2 * fitted.latent_dim
    faces = sample(model, 4, seed=0, source="aggregate", device="cpu")
    assert faces.shape == (4, model.config.channels, model.config.image_size, model.config.image_size)
    assert not torch.equal(faces, sample(model, 4, seed=0, device="cpu"))


@pytest.mark.parametrize("name", ["synthetic-vae", "yaleb-beta-vae"])
def test_a_shipped_aggregate_posterior_is_refitted_from_the_training_codes(name, yaleb_available):
    """The stored density recomputes from the model and its recipe's training faces (a synthetic
    and a Yale B model: the LFW ones take the same path on 10,000 faces)."""
    from facelib.zoo.evaluation import aggregate_posterior

    if RECIPES[name].data == "yaleb" and not yaleb_available:
        pytest.skip("Extended Yale B is not under $FACELIB_DATA")
    model = zoo.load(name)
    now = aggregate_posterior(model, name)
    stored = model.aggregate_posterior
    assert now.reference == stored.reference
    np.testing.assert_allclose(now.mean, stored.mean, atol=1e-4)
    np.testing.assert_allclose(now.cov, stored.cov, atol=1e-4)
    np.testing.assert_allclose(now.weights, stored.weights, atol=1e-3)


def test_every_shipped_model_has_its_recipe_unchanged():
    """The zoo is the cache of named specs that were trained: a recipe may exist without weights
    (`zoo build` makes them; a notebook trains it meanwhile), but a shipped model's recipe may not
    change under it."""
    unknown = sorted(set(SHIPPED) - set(RECIPES))
    assert not unknown, f"the zoo ships {unknown}, which no recipe describes"
    for name in SHIPPED:
        r = RECIPES[name]
        stored = Recipe.from_dict(SHIPPED[name]["recipe"])
        assert stored == Recipe.from_dict(json.loads(json.dumps(r.to_dict()))), (
            f"{name}: the recipe changed since the zoo model was built; rebuild it "
            f"(`python -m facelib zoo build {name} --overwrite`)")


def _holds_modvae_level(metrics: dict) -> None:
    """What the synthetic ModVAE reaches: MIG 0.49 with every factor's own MIG at least 0.24 (the
    goal of 0.6 / 0.3 is not met: README, benchmarks/results/modvae_trials.csv)."""
    per_factor = {k: v for k, v in metrics.items() if k.startswith("mig_")}
    assert len(per_factor) == 6, metrics
    assert metrics["mig"] >= 0.45 and metrics["beta_vae_score"] >= 0.95, metrics
    assert min(per_factor.values()) >= 0.2, per_factor


def test_stored_recipes_with_old_data_option_names_load_under_the_loader_contract():
    """The manifest keeps the data options its models were built with (`color`, `subset`, `people`
    in older entries); `Recipe.from_dict` reads them as the loader contract's names, silently."""
    from facelib.data import dataset_info

    for name, e in SHIPPED.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            r = Recipe.from_dict(e["recipe"])
        dataset_info(r.data).check(r.data_options)  # refuses an option the loader does not take
        assert r.spec().data.options == r.data_options, name


def test_shipped_modvae_reaches_its_disentanglement_level():
    # the manifest's figures, which test_shipped_model_reproduces_its_headline_metrics recomputes
    _holds_modvae_level(SHIPPED["synthetic-modvae"]["metrics"])


def test_shipped_zoo_fits_its_budget():
    """The zoo is package data (every wheel carries it): the packaged folder, all of it, under 40 MB."""
    folder = zoo.shipped_dir()
    assert folder == Path(facelib.__file__).resolve().parent / "zoo" / "shipped"
    files = [f for f in folder.iterdir() if f.is_file()]
    assert {e["file"] for e in SHIPPED.values()} | {"manifest.json"} <= {f.name for f in files}
    assert sum(f.stat().st_size for f in files) < 40e6


def test_zoo_reads_one_folder_and_never_builds_into_an_installed_package(tmp_path, monkeypatch):
    from facelib.zoo import store

    monkeypatch.delenv("FACELIB_ZOO", raising=False)
    assert zoo.zoo_dir() == zoo.shipped_dir() and zoo.build_dir() == zoo.shipped_dir()  # a checkout: commit builds
    with pytest.raises(ZooError, match=r"zoo shipped with facelib.*set \$FACELIB_ZOO=DIR"):
        zoo.load("no-such-model")
    monkeypatch.setenv("FACELIB_ZOO", str(tmp_path))
    assert zoo.zoo_dir() == zoo.build_dir() == tmp_path and zoo.available() == []
    with pytest.raises(ZooError, match=re.escape(f"zoo in {tmp_path} ($FACELIB_ZOO; unset it")):
        zoo.load("synthetic-vae")
    # an installed facelib (no checkout around it): builds go to the user zoo, the shipped one is refused
    monkeypatch.delenv("FACELIB_ZOO")
    monkeypatch.setattr(store, "source_checkout", lambda: None)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    assert zoo.build_dir() == zoo.user_zoo_dir() == tmp_path / "share" / "facelib" / "zoo"
    with pytest.raises(ZooError, match="read-only.*--folder DIR.*FACELIB_ZOO"):
        zoo.build_dir(zoo.shipped_dir())
    with pytest.raises(ZooError, match="read-only"):
        store.write_entry("synthetic-vae", {"file": "x.pt", "sha256": "00"})
    with pytest.raises(ZooError, match="reinstall facelib"):  # not `git checkout`: there is no checkout
        store._checked([], zoo.shipped_dir() / "manifest.json")


def test_cli_lists_the_zoo_and_refuses_unknown_recipes(capsys):
    from facelib.cli import main

    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in RECIPES) and "mig" in out
    assert main(["zoo", "build", "no-such-recipe"]) == 2
    assert "unknown recipe" in capsys.readouterr().err
    assert main(["zoo", "check", "no-such-model"]) == 1
    assert "no model 'no-such-model'" in capsys.readouterr().err  # per-model failures go to stderr


def test_variant_keeps_the_recipes_data_and_changes_only_what_it_is_told():
    from facelib.zoo.recipes import variant

    base = RECIPES["lfw-beta-vae-b4"]
    v = variant("lfw-beta-vae-b4", "vae_lfw", model="vae", beta=None)
    assert v.name == "vae_lfw" and v.model == "vae" and "beta" not in v.model_options
    assert v.data == base.data and v.data_options == base.data_options and v.seed == base.seed
    assert {k: x for k, x in v.model_options.items()} == {k: x for k, x in base.model_options.items() if k != "beta"}
    b10 = variant(base, "beta-vae_b10_lfw", beta=10.0, steps=50)
    assert b10.model_options["beta"] == 10.0 and b10.steps == 50 and b10.model == "beta-vae"
    assert base.model_options["beta"] == 4.0  # the zoo's recipe is not changed


def test_held_out_faces_are_view1_test_at_the_recipes_options(monkeypatch):
    import facelib.data as data_module
    from facelib.data import FaceDataset
    from facelib.zoo.recipes import preview_faces

    calls = []

    def fake_load(name, **options):
        calls.append((name, options))
        return FaceDataset(images=torch.zeros(10, 3, 8, 8, dtype=torch.uint8), identity=np.arange(10) // 2)

    monkeypatch.setattr(data_module, "load", fake_load)
    faces = held_out_faces("lfw-modvae")
    assert len(faces) == 10 and "View 1 test" in faces.name
    options = dict(RECIPES["lfw-modvae"].data_options, split="test")
    del options["exclude_pairs"]
    assert calls == [("lfw-pairs", options)]  # View 1's test pairs, not the training faces
    assert len(preview_faces("lfw-modvae", n=4)) == 4
    with pytest.raises(ValueError, match="held_out_faces is for LFW recipes"):
        held_out_faces("synthetic-vae")
    from facelib.zoo.recipes import held_out_options

    # every LFW face model (and the patch VAE at its own crop) is shown on View 1 test faces
    assert held_out_options("lfw-modvae") == held_out_options("lfw-beta-vae-b4") == {"size": 64, "crop": 150,
                                                                                       "channels": 3}
    assert held_out_options("lfw-patch-vae") == {"size": 64, "crop": 120, "channels": 1}


def test_lfw_face_recipes_train_on_people_outside_view1_test_with_the_residual_networks():
    lfw = {n: r for n, r in RECIPES.items() if r.data == "lfw-people"}
    assert {"lfw-vae", "lfw-beta-vae-b2", "lfw-beta-vae-b4", "lfw-beta-vae-b5", "lfw-beta-vae-b10", "lfw-modvae"} <= set(lfw)
    assert sorted(r.model_options["beta"] for r in lfw.values() if r.model == "beta-vae") == [2.0, 4.0, 5.0, 10.0]
    for r in lfw.values():
        assert r.data_options["exclude_pairs"] == "test" and r.model_options["architecture"] == "resnet"
        assert r.model_options["latent_dim"] == 32 and r.data_options["size"] == 64
        TrainConfig(**r.train_options)  # every training option is a valid TrainConfig field


def test_held_out_inputs_are_faces_the_recipe_never_trained_on():
    from facelib.zoo.recipes import held_out_inputs

    r = tiny("synthetic-vae")
    train_faces, fresh = build_data(r), held_out_inputs(r, n=64)
    seen = {bytes(img.numpy()) for img in train_faces.images}
    assert len(fresh) == 64 and not any(bytes(img.numpy()) in seen for img in fresh.images)
    assert set(np.unique(fresh.identity)) <= set(range(r.data_options["n_identities"]))


# -- the README's figures of the zoo ---------------------------------------------------------------
DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_the_readme_figures_are_not_older_than_the_zoo():
    from facelib.zoo.figures import stale

    reasons = stale(DOCS)
    assert reasons == [], f"docs/ figures are stale ({reasons}); redraw them with `python -m facelib zoo figures docs/`"
    for name in ("zoo_reconstructions.png", "zoo_samples.png"):
        assert (DOCS / name).stat().st_size > 10_000


def _fake_zoo(folder, models):
    entries = {n: {"file": f"{n}.pt", "sha256": sha,
                   "recipe": {"data": "lfw-people", "evaluation": "lfw-view1", "model": m, "model_options": {"beta": b}}}
               for n, (m, b, sha) in models.items()}
    (folder / "manifest.json").write_text(json.dumps({"models": entries}))


def test_stale_figures_name_what_changed(tmp_path):
    from facelib.zoo.figures import STAMP, face_models, stale

    _fake_zoo(tmp_path, {"lfw-b4": ("beta-vae", 4.0, "a" * 64), "lfw-vae": ("vae", 1.0, "b" * 64), "lfw-b2": ("beta-vae", 2.0, "c" * 64)})
    assert face_models(tmp_path) == ["lfw-vae", "lfw-b2", "lfw-b4"]
    out = tmp_path / "docs"
    out.mkdir()
    assert "missing" in stale(out, tmp_path)[0]
    (out / STAMP).write_text(json.dumps({"models": {"lfw-b4": "a" * 64, "lfw-vae": "b" * 64, "lfw-b2": "c" * 64}}))
    assert stale(out, tmp_path) == []
    _fake_zoo(tmp_path, {"lfw-b4": ("beta-vae", 4.0, "e" * 64), "lfw-vae": ("vae", 1.0, "b" * 64), "lfw-new": ("vae", 1.0, "d" * 64)})
    assert sorted(stale(out, tmp_path)) == ["lfw-b2 is no longer in the zoo", "lfw-b4 changed since the figures were drawn",
                                            "lfw-new is not in the figures"]


def test_yaleb_recipes_train_on_thirty_people_and_modvae_clamps_light_and_identity():
    from facelib.data.yaleb import YALEB_HELD_OUT

    yale = {n: r for n, r in RECIPES.items() if r.data == "yaleb"}
    assert set(yale) == {"yaleb-modvae", "yaleb-beta-vae", "yaleb-beta-tcvae"}
    assert all(r.data_options["split"] == "train" and r.evaluation == "yaleb-held-out" for r in yale.values())
    assert len({(r.model_options["latent_dim"], r.steps, r.data_options["size"]) for r in yale.values()}) == 1
    assert yale["yaleb-modvae"].data_options["groups"] == ["azimuth", "elevation", "identity"]
    assert len(YALEB_HELD_OUT) == 8


def test_yaleb_lighting_table_rows_and_fisherfaces_as_scored_alone(yaleb_available):
    if not yaleb_available:
        pytest.skip("Extended Yale B is not under $FACELIB_DATA")
    from facelib import data as fdata
    from facelib.models import build_model
    from facelib.verify import across_factor_table
    from facelib.verify.baselines import Fisherfaces
    from facelib.zoo.evaluation import yaleb_lighting_table

    torch.manual_seed(0)
    mod = build_model("modvae", image_size=64, channels=1, latent_dim=18,
                      blocks={"azimuth": 1, "elevation": 1, "identity": 16})
    vae = build_model("beta-vae", image_size=64, channels=1, latent_dim=18)
    t = yaleb_lighting_table({"m": mod, "b": vae}, n_pairs=200, n_boot=20).set_index("representation")
    assert list(t.index) == ["m identity block", "m all latents", "b latents", "pixels", "Eigenfaces (100)",
                             "Fisherfaces (PCA 150)"]
    assert t.loc["m identity block", "dims"] == 16 and t.loc["m all latents", "dims"] == 18
    alone = across_factor_table(fdata.load("yaleb", split="train"), zoo.recipes.held_out_faces("yaleb-modvae"),
                                {"f": Fisherfaces(n_pca=150)}, n_pairs=200, n_boot=20).iloc[0]
    assert t.loc["Fisherfaces (PCA 150)", "auc"] == pytest.approx(alone["auc"])


def test_a_patch_recipe_trains_the_weights_patch_vae_embedding_trains(monkeypatch):
    """#33 item 8: the zoo's patch VAE is trained exactly as the View 1 system it stands for."""
    from facelib.data import FaceDataset
    from facelib.verify.latents import PatchVAEEmbedding
    from facelib.verify.selection import LFWSetting
    from facelib.zoo.recipes import patch_vae_recipe

    g = torch.Generator().manual_seed(3)
    faces = FaceDataset(images=(torch.rand(12, 1, 24, 24, generator=g) * 255).to(torch.uint8),
                        identity=np.arange(12) // 2, name="lfw-pairs")
    monkeypatch.setattr(zoo.recipes.fdata, "load", lambda name, **options: faces)
    params = dict(patch=8, stride=4, latent_dim=3, epochs=2, max_patches=300, power=0.5, gaussian_scale=0.02)
    setting = LFWSetting(family="patch-vae", size=24, crop=100, patch=params, pca=4, plda=2, seed=0)
    r = patch_vae_recipe(setting, batch_size=64)
    assert r.train_options["val_fraction"] == 0.0 and r.steps == 2 * (300 // 64)
    ours = run(r.spec(), device="cpu").model
    emb = PatchVAEEmbedding(**{k: v for k, v in params.items() if k != "power"}, batch_size=64, device="cpu",
                            random_state=0).fit(faces.images)
    for (k, a), b in zip(ours.state_dict().items(), emb.model_.state_dict().values()):
        assert torch.equal(a, b), k


def test_zoo_check_fails_on_every_figure_it_cannot_compare():
    """#41 item 4: a stored figure that is NaN or not a number, one not measured now, and one moved
    beyond the entry's own stated tolerance each fail (none is skipped as 'ok')."""
    now = {"mig": 0.500, "beta_vae_score": 0.90, "accuracy": 0.75}
    assert zoo.within_tolerance(now, {"mig": 0.505, "beta_vae_score": 0.91}) == {}
    problems = zoo.within_tolerance(now, {"mig": float("nan"), "beta_vae_score": "high", "auc": 0.8})
    assert set(problems) == {"mig", "beta_vae_score", "auc"}
    assert "not a finite number" in problems["mig"] and "'high'" in problems["beta_vae_score"]
    assert "not measured now" in problems["auc"]
    # the entry's own tolerance applies, not the code's default (0.015 > 0.001)
    problems = zoo.within_tolerance(now, {"mig": 0.515}, {"mig": 0.001})
    assert "moved from 0.515 to 0.5 (tolerance 0.001)" in problems["mig"]
    assert zoo.within_tolerance(now, {"mig": 0.515}) == {}  # within the default 0.02
    assert "not a number >= 0" in zoo.within_tolerance(now, {"mig": 0.5}, {"mig": "tight"})["mig"]
    assert zoo.within_tolerance({"mig": float("nan")}, {"mig": 0.5})["mig"].startswith("moved from 0.5 to nan")
    labelled = {"accuracy": 0.8, "category": "image-restricted, no outside data"}
    assert zoo.within_tolerance(labelled, labelled) == {}  # a label is compared as text
    assert "is now 'unrestricted'" in zoo.within_tolerance({**labelled, "category": "unrestricted"}, labelled)["category"]


def test_zoo_check_command_reports_a_figure_it_cannot_compare(monkeypatch, capsys):
    from facelib.cli import main

    stored = json.loads(json.dumps(SHIPPED["synthetic-vae"]))
    stored["metrics"]["mig"] = "high"
    monkeypatch.setattr("facelib.zoo.cli.entry", lambda name: stored)
    monkeypatch.setattr("facelib.zoo.cli.headline_metrics", lambda model, r: dict(SHIPPED["synthetic-vae"]["metrics"]))
    assert main(["zoo", "check", "synthetic-vae"]) == 1
    out = capsys.readouterr().out
    assert "NOT REPRODUCED: mig the stored figure 'high' is not a finite number" in out
