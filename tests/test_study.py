"""The notebooks' shared plumbing: parameters recorded, checkpoints reused only when they match."""

import importlib
import json
from pathlib import Path

import numpy as np

import pytest
import torch

from facelib import study

study_session = importlib.import_module("facelib.study.session")
runner = importlib.import_module("facelib.experiment.runner")


@pytest.fixture(autouse=True)
def _no_shared_run_folder(monkeypatch):
    monkeypatch.delenv("FACELIB_RUN_DIR", raising=False)


@pytest.fixture(scope="module")
def faces():
    return study.load_data("synthetic", size=32, n=64, n_identities=8, seed=0)


def test_start_records_parameters_and_versions(tmp_path, capsys):
    s = study.start("01_test", profile="quick", run_dir=tmp_path, seed=3, epochs=8, latent_dim=5)
    assert s["epochs"] == 8 and s["latent_dim"] == 5 and s["seed"] == 3
    record = json.loads((tmp_path / "parameters" / "01_test.json").read_text())
    assert record["parameters"]["latent_dim"] == 5
    assert record["versions"]["torch"].startswith(torch.__version__.split("+")[0])
    assert "profile=quick" in capsys.readouterr().out


def test_start_reads_the_parameters_from_a_notebooks_namespace(tmp_path):
    """A notebook names each parameter once (its parameters cell) and passes globals(): every plain
    value it set is a parameter, as given (nothing fills it in: the cell holds the real values);
    imports, functions, IPython's names and UPPER-CASE constants are not; keywords override."""
    namespace = {"profile": "full", "run_dir": tmp_path, "seed": 3, "device": "cpu", "latent_dim": 5,
                 "epochs": 6, "checkpoint": None, "np": np, "n_preview": 7, "channels": 3, "betas": [1.0, 4.0],
                 "In": [""], "_i1": "x", "NOTEBOOK": "01_ns", "start": study.start, "get_ipython": print}
    s = study.start("01_ns", namespace, channels=1)
    assert s.params == {"device": "cpu", "latent_dim": 5, "epochs": 6, "checkpoint": None, "n_preview": 7,
                        "channels": 1, "betas": [1.0, 4.0], "profile": "full", "seed": 3}
    assert s.run_dir == tmp_path and (tmp_path / "parameters" / "01_ns.json").exists()
    assert study.start("01_ns", {})["profile"] == "quick"


def test_every_notebook_names_its_parameters_once():
    """The parameters cell is the one place: `study.start` gets globals(), and no parameter of the
    cell is named again in the call."""
    import ast

    import nbformat

    for path in sorted(Path(__file__).parents[1].glob("notebooks/0*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        names = {t.id for c in cells if "parameters" in c.metadata.get("tags", [])
                 for node in ast.parse(c.source).body if isinstance(node, ast.Assign) for t in node.targets}
        calls = [n for c in cells if c.cell_type == "code" and "study.start(" in c.source
                 for n in ast.walk(ast.parse(c.source)) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "start"]
        assert len(calls) == 1, path.name
        call = calls[0]
        assert [ast.unparse(a) for a in call.args[1:]] == ["globals()"], path.name
        assert not names & {k.arg for k in call.keywords}, path.name


def test_outputs_go_to_the_run_folder_only_when_there_is_one(tmp_path):
    import pandas as pd

    table = pd.DataFrame({"a": [1, 2]})
    assert study.start("x", run_dir=None).save_table(table, "t") is None
    path = study.start("x", run_dir=tmp_path).save_table(table, "t")
    assert path == tmp_path / "tables" / "x_t.csv" and pd.read_csv(path).equals(table)


def test_train_or_load_reuses_a_matching_checkpoint(tmp_path, faces, capsys):
    s = study.start("t", run_dir=tmp_path, epochs=1)
    opts = {"max_steps": 2, "val_fraction": 0.0}
    first, _ = s.train_or_load("m", "vae", faces, image_size=32, latent_dim=4, train_options=opts)
    assert (tmp_path / "checkpoints" / "m" / "checkpoint.pt").exists()
    capsys.readouterr()
    again, _ = s.train_or_load("m", "vae", faces, image_size=32, latent_dim=4, train_options=opts)
    assert "reusing" in capsys.readouterr().out
    for a, b in zip(first.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a.cpu(), b.cpu())
    # a different config under the same key is trained anew beside it, never reused
    other, _ = s.train_or_load("m", "vae", faces, image_size=32, latent_dim=6, train_options=opts)
    assert other.config.latent_dim == 6
    assert len(list((tmp_path / "checkpoints").iterdir())) == 2


def test_train_or_load_never_reuses_a_shorter_training(tmp_path, faces, capsys):
    """The regression of #33: epochs=1 then epochs=3 under one key returned the 1-epoch model."""
    s = study.start("t", run_dir=tmp_path)
    opts = {"val_fraction": 0.0}
    _, one = s.train_or_load("vae", "vae", faces, epochs=1, image_size=32, latent_dim=4, train_options=opts)
    capsys.readouterr()
    model, three = s.train_or_load("vae", "vae", faces, epochs=3, image_size=32, latent_dim=4, train_options=opts)
    out = capsys.readouterr().out
    assert "reusing" not in out and "another training" in out
    assert len(one) == 1 and len(three) == 3 and int(three["step"].iloc[-1]) == 3 * int(one["step"].iloc[-1])
    assert len(list((tmp_path / "checkpoints").iterdir())) == 2  # the 1-epoch model is kept beside it
    # each budget finds its own model again; a steps budget too
    _, again = s.train_or_load("vae", "vae", faces, epochs=3, image_size=32, latent_dim=4, train_options=opts)
    assert "reusing" in capsys.readouterr().out and len(again) == 3
    _, steps = s.train_or_load("vae", "vae", faces, steps=5, image_size=32, latent_dim=4, train_options=opts)
    assert int(steps["step"].iloc[-1]) == 5 and "reusing" not in capsys.readouterr().out


def test_train_or_load_resumes_an_unfinished_training_of_the_same_identity(tmp_path, faces, capsys, monkeypatch):
    s = study.start("t", run_dir=tmp_path)
    opts = {"val_fraction": 0.0}
    real_fit = runner.fit
    calls = []

    def stopped_fit(model, data, config, callbacks=()):  # the first call stops after one of its three epochs
        calls.append(config)
        if len(calls) == 1:
            return real_fit(model, data, config.replace(epochs=1)) and _mark_unfinished(config)
        return real_fit(model, data, config)

    def _mark_unfinished(config):
        path = Path(config.out) / "checkpoint.pt"
        ckpt = torch.load(path, weights_only=True)
        ckpt["train_config"]["epochs"], ckpt["completed"] = 3, False
        del ckpt["content_sha256"]
        torch.save(ckpt, path)
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "fit", stopped_fit)
    with pytest.raises(KeyboardInterrupt):
        s.train_or_load("vae", "vae", faces, epochs=3, image_size=32, latent_dim=4, train_options=opts)
    capsys.readouterr()
    _, history = s.train_or_load("vae", "vae", faces, epochs=3, image_size=32, latent_dim=4, train_options=opts)
    assert "resuming the unfinished run" in capsys.readouterr().out
    assert calls[-1].resume and len(list((tmp_path / "checkpoints").iterdir())) == 1 and len(history) == 3


def test_train_or_load_does_not_reuse_a_model_trained_on_other_data(tmp_path, faces, capsys):
    s = study.start("t", run_dir=tmp_path, epochs=1)
    opts = {"max_steps": 1, "val_fraction": 0.0}
    s.train_or_load("m", "vae", faces, image_size=32, latent_dim=4, train_options=opts)
    fewer = faces.subset(np.arange(len(faces) // 2))
    capsys.readouterr()
    s.train_or_load("m", "vae", fewer, image_size=32, latent_dim=4, train_options=opts)
    assert "reusing" not in capsys.readouterr().out
    assert len(list((tmp_path / "checkpoints").iterdir())) == 2
    # and each is found again with its own data
    s.train_or_load("m", "vae", fewer, image_size=32, latent_dim=4, train_options=opts)
    assert "reusing" in capsys.readouterr().out


def test_beta_tcvae_checkpoint_is_reused_despite_dataset_size(tmp_path, faces, capsys):
    s = study.start("t", run_dir=tmp_path, epochs=1)
    opts = {"max_steps": 1, "val_fraction": 0.0}
    s.train_or_load("tc", "beta-tcvae", faces, image_size=32, latent_dim=4, train_options=opts)
    capsys.readouterr()
    s.train_or_load("tc", "beta-tcvae", faces, image_size=32, latent_dim=4, train_options=opts)
    assert "reusing" in capsys.readouterr().out


def test_load_data_rejects_colour_for_grey_sets():
    with pytest.raises(ValueError, match="grey"):
        study.load_data("olivetti", size=32, channels=3)


def test_people_outside_pairs_drops_every_person_of_the_pairs():
    import numpy as np

    from facelib.data import FaceDataset

    img = torch.zeros(6, 1, 4, 4, dtype=torch.uint8)
    people = FaceDataset(img, identity=np.array([0, 0, 1, 2, 2, 3]), name="people",
                         identity_names=["Ann", "Bob", "Cid", "Dee"])
    pairs = FaceDataset(img[:4], identity=np.array([0, 1, 1, 0]), name="pairs", identity_names=["Cid", "Ann"])
    kept = study.people_outside_pairs(people, pairs)
    assert [kept.identity_names[i] for i in kept.identity] == ["Bob", "Dee"]
    with pytest.raises(ValueError, match="identity_names"):
        study.people_outside_pairs(people, FaceDataset(img[:2], identity=np.array([0, 1])))


def test_read_tables_returns_what_save_table_wrote(tmp_path):
    import pandas as pd

    assert study.read_tables(None) == {} and study.read_tables(tmp_path) == {}
    s = study.start("06_x", run_dir=tmp_path)
    s.save_table(pd.DataFrame({"auc": [0.9]}), "results")
    tables = study.read_tables(tmp_path)
    assert list(tables) == ["06_x_results"] and tables["06_x_results"]["auc"].tolist() == [0.9]


def test_run_folder_falls_back_to_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FACELIB_RUN_DIR", str(tmp_path))
    assert study.start("n", run_dir=None).run_dir == tmp_path
    monkeypatch.delenv("FACELIB_RUN_DIR")
    assert study.start("n", run_dir=None).run_dir is None


def test_matched_epochs_give_small_sets_as_many_images_within_a_cap():
    s = study.start("n", epochs=8, n_images=3000)
    assert s.matched_epochs(3000) == 8
    assert s.matched_epochs(300) == 80
    assert s.matched_epochs(30000) == 8  # never fewer than the profile's epochs
    assert s.matched_epochs(10, cap=50) == 50


def test_held_out_sets_skip_lfw_pairs_and_missing_sets(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FACELIB_DATA", str(tmp_path))  # an empty data root: olivetti is missing
    def offline(**kw):
        raise OSError("no network")

    monkeypatch.setattr("sklearn.datasets.fetch_olivetti_faces", offline)
    s = study.start("n", verify_datasets=["synthetic", "olivetti", "lfw-pairs"], image_size=32, n_images=40,
                    n_identities=4)
    got = list(s.held_out_sets())
    assert [name for name, _ in got] == ["synthetic"]
    assert got[0][1].images.shape[1:] == (1, 32, 32) and len(got[0][1]) == 40
    assert "skipping olivetti" in capsys.readouterr().out


def test_the_runs_decoder_choice_reaches_every_model_unless_a_call_sets_its_own(faces):
    opts = {"max_steps": 1, "val_fraction": 0.0}
    s = study.start("t", run_dir=None, epochs=1, likelihood="gaussian", gaussian_scale=0.05)  # the notebooks' values
    model, _ = s.train_or_load("m", "vae", faces, image_size=32, latent_dim=4, train_options=opts)
    assert (model.config.likelihood, model.config.gaussian_scale) == (s["likelihood"], s["gaussian_scale"])
    own, _ = s.train_or_load("m", "vae", faces, image_size=32, latent_dim=4, likelihood="bernoulli",
                             train_options=opts)
    assert own.config.likelihood == "bernoulli"
    s = study.start("t", run_dir=None, epochs=1, likelihood="bernoulli", gaussian_scale=0.2)
    model, _ = s.train_or_load("m", "vae", faces, image_size=32, latent_dim=4, train_options=opts)
    assert (model.config.likelihood, model.config.gaussian_scale) == ("bernoulli", 0.2)


def test_train_or_load_does_not_reuse_a_model_trained_on_other_factor_ranges(tmp_path, faces, capsys):
    from facelib.data.synthetic import NO_JITTER

    s = study.start("t", run_dir=tmp_path, epochs=1)
    opts = {"max_steps": 1, "val_fraction": 0.0}
    s.train_or_load("m", "vae", faces, image_size=32, latent_dim=4, train_options=opts)
    steady = study.load_data("synthetic", size=32, n=64, n_identities=8, seed=0, **NO_JITTER)
    assert steady.meta["ranges"]["tx"] == [0.0, 0.0] != faces.meta["ranges"]["tx"]
    capsys.readouterr()
    s.train_or_load("m", "vae", steady, image_size=32, latent_dim=4, train_options=opts)
    assert "reusing" not in capsys.readouterr().out
    assert len(list((tmp_path / "checkpoints").iterdir())) == 2


def test_checkpoint_key_is_one_spelling_for_every_notebook():
    assert study.checkpoint_key("beta-vae", beta=4) == "beta-vae_b4"
    assert study.checkpoint_key("beta-vae", beta=4.0, dataset="synthetic") == "beta-vae_b4"
    assert study.checkpoint_key("beta-vae", beta=2.5, dataset="olivetti") == "beta-vae_b2.5_olivetti"
    assert study.checkpoint_key("modvae", lam=10, dataset="lfw") == "modvae_lam10_lfw"
    assert study.checkpoint_key("vae", beta=None) == "vae"


def test_models_used_are_recorded_per_notebook(tmp_path, faces):
    s = study.start("07_t", run_dir=tmp_path, epochs=1)
    s.train_or_load("m", "vae", faces, image_size=32, latent_dim=4, train_options={"max_steps": 1, "val_fraction": 0.0})
    s.train_or_load("m", "vae", faces, image_size=32, latent_dim=4, train_options={"max_steps": 1, "val_fraction": 0.0})
    record = json.loads((tmp_path / "models" / "07_t.json").read_text())
    assert [(r["key"], r["source"], r["model"]) for r in record] == [("m", "trained", "vae"), ("m", "reused", "vae")]
    assert record[0]["checkpoint"] == record[1]["checkpoint"] == str(tmp_path / "checkpoints" / "m" / "checkpoint.pt")


def test_zoo_model_is_loaded_checked_and_recorded(tmp_path, monkeypatch, faces):
    from facelib import zoo
    from facelib.models import build_model
    from facelib.zoo.store import write_entry

    folder = tmp_path / "zoo"
    model = build_model("vae", image_size=32, latent_dim=4)
    file = zoo.export(model, folder / "tiny.pt")
    write_entry("tiny", {"file": "tiny.pt", "sha256": zoo.sha256(file), "description": "a test model",
                         "training": {"steps": 0}, "metrics": {"mig": 0.5}}, folder)
    monkeypatch.setenv("FACELIB_ZOO", str(folder))
    s = study.start("04_t", run_dir=tmp_path / "run", models="zoo")
    assert s.use_zoo
    loaded = s.zoo_model("tiny")
    assert loaded.config.latent_dim == 4 and loaded.zoo_name == "tiny"
    record = json.loads((tmp_path / "run" / "models" / "04_t.json").read_text())
    assert record == [{"key": "tiny", "source": "zoo", "zoo_name": "tiny", "sha256": zoo.sha256(file),
                       "metrics": {"mig": 0.5}}]
    with pytest.raises(ValueError, match="models must be 'zoo'.*or 'train'"):
        study.start("04_t", models="pretrained").use_zoo
    assert not study.start("04_t", models="train").use_zoo


def test_models_used_collects_every_notebooks_record(tmp_path):
    assert study.models_used(None).empty and study.models_used(tmp_path).empty
    study.start("04_a", run_dir=tmp_path).record_model("synthetic-modvae", source="zoo", sha256="ab", metrics={"mig": 1})
    study.start("05_b", run_dir=tmp_path).record_model("vae", source="trained", checkpoint="c.pt")
    used = study.models_used(tmp_path)
    assert used[["notebook", "key", "source"]].values.tolist() == [
        ["04_a", "synthetic-modvae", "zoo"], ["05_b", "vae", "trained"]]
    assert "metrics" not in used


def test_train_recipe_trains_every_zoo_recipe_one_way_at_the_profiles_scale(tmp_path, capsys):
    """ModVAE and the unsupervised models through the same call: the recipe's model, objective
    and grouping, the profile's images, size, people and latents; a second call reuses it."""
    from facelib.zoo import RECIPES

    s = study.start("05_t", run_dir=tmp_path, epochs=1, n_images=64, image_size=32, n_identities=4,
                    latent_dim=6, batch_size=16)
    modvae, _ = s.train_recipe("synthetic-modvae")
    assert type(modvae).__name__ == "ModVAE" and modvae.config.latent_dim == 6
    assert modvae.config.image_size == 32 and modvae.config.lam == RECIPES["synthetic-modvae"].model_options["lam"]
    assert set(modvae.config.blocks) >= {"identity", "yaw", "pitch"}  # from the recipe's grouped factors
    beta, _ = s.train_recipe("synthetic-beta-vae-b16")
    assert beta.config.beta == 16.0 and beta.config.latent_dim == 6
    assert [m["source"] for m in s.models] == ["trained", "trained"]
    s.train_recipe("synthetic-beta-vae-b16")
    assert s.models[-1]["source"] == "reused"
    with pytest.raises(ValueError, match="for the run's lfw_steps steps"):
        s.train_recipe("lfw-beta-vae-b4")


def test_train_recipe_trains_a_recipe_exactly_as_the_zoo_does(tmp_path):
    """Study.train_recipe and the zoo are one path (`Recipe.spec()` through `experiment.run`): the run's recipe keeps
    the recipe's batch size and lr (not the profile's), its epochs become the recipe's steps, and
    both give the same training identity and, built under the seed whatever ran before, the same
    weights."""
    from facelib.experiment import prepare, run
    from facelib.train import load_checkpoint
    from facelib.train.checkpoint import checkpoint_identity, dataset_digest, model_config_dict, run_identity
    from facelib.zoo import recipes

    name = "synthetic-beta-vae-b4"
    s = study.start("05_t", run_dir=tmp_path, epochs=2, n_images=64, image_size=32, n_identities=4, latent_dim=4,
                    batch_size=16, lr=0.5, seed=3)
    r, base = s.recipe(name), recipes.RECIPES[name]
    assert (r.batch_size, r.lr, r.seed, r.steps) == (base.batch_size, base.lr, 3, 2)  # 2 epochs of 64 at 64
    torch.manual_seed(123)  # the caller's generator must not reach the initial weights
    model, history = s.train_recipe(name)
    assert int(history["step"].iloc[-1]) == r.steps
    stored = load_checkpoint(s.models[-1]["checkpoint"])
    assert {k: stored["train_config"][k] for k in ("max_steps", "batch_size", "lr", "seed")} == {
        "max_steps": 2, "batch_size": base.batch_size, "lr": base.lr, "seed": 3}

    fresh, config, data = prepare(r.spec())
    assert model_config_dict(fresh) == model_config_dict(model)
    assert checkpoint_identity(stored) == run_identity(fresh.name, model_config_dict(fresh), config, dataset_digest(data))
    torch.manual_seed(456)
    zoo_model = run(r.spec(), dataset=data).model
    for (k, a), b in zip(model.state_dict().items(), zoo_model.state_dict().values()):
        assert torch.equal(a.cpu(), b.cpu()), k


def _stand_in_lfw(name, split="train", size=64, channels=3, other_images=False, **_):
    """Faces of 6 people (4 images each with other_images=True or from "lfw-people", every image of
    each person, as the real loaders give; else 2), for the LFW study plumbing."""
    per = 4 if other_images or name == "lfw-people" else 2
    g = torch.Generator().manual_seed({"train": 0, "test": 1}[split])
    images = torch.randint(0, 255, (6 * per, channels, 32, 32), generator=g, dtype=torch.uint8)
    from facelib.data import FaceDataset

    return FaceDataset(images=images, identity=np.repeat(np.arange(6), per), name="lfw-pairs",
                       meta={"options": {"split": split, "other_images": other_images}})


def test_the_lfw_study_trains_zoo_recipe_variants_for_lfw_steps_on_view1(tmp_path, monkeypatch, capsys):
    import facelib.data as data_module
    from facelib.zoo import recipes

    monkeypatch.setattr(data_module, "load", _stand_in_lfw)
    off = study.start("02_t", run_dir=tmp_path, lfw_study=False)
    assert not off.lfw_study()
    assert "lfw_study is off" in capsys.readouterr().out
    s = study.start("02_t", run_dir=tmp_path, lfw_study=True, lfw_steps=3, batch_size=4)
    assert s.lfw_study() and len(s.lfw_test_faces("lfw-modvae")) == 12
    key = study.checkpoint_key("beta-vae", beta=10, dataset="lfw")
    model, history = s.train_recipe(recipes.variant("lfw-beta-vae-b4", key, beta=10.0))
    assert model.config.beta == 10.0 and model.config.channels == 3 and model.config.latent_dim == 32
    assert int(history["step"].iloc[-1]) == 3  # lfw_steps, not the recipe's 6,000
    assert s.models[-1] == {**s.models[-1], "key": "beta-vae_b10_lfw", "source": "trained"}
    modvae, _ = s.train_recipe("lfw-modvae", key="modvae_lfw")
    assert type(modvae).__name__ == "ModVAE" and set(modvae.config.blocks) == {"identity"}
    s.train_recipe(recipes.variant("lfw-beta-vae-b4", key, beta=10.0))
    assert s.models[-1]["source"] == "reused"


def test_the_lfw_study_is_skipped_with_the_reason_when_lfw_is_missing(tmp_path, monkeypatch, capsys):
    import facelib.data as data_module
    from facelib.data import DataNotFoundError

    def missing(*a, **k):
        raise DataNotFoundError("data set 'lfw-pairs' not found: looked for ...\nmore")

    monkeypatch.setattr(data_module, "load", missing)
    assert not study.start("01_t", run_dir=tmp_path, lfw_study=True).lfw_study()
    assert "skipping the LFW study: data set 'lfw-pairs' not found" in capsys.readouterr().out


def test_figures_name_a_run_model_and_a_zoo_model_with_how_long_they_trained(tmp_path, monkeypatch, capsys):
    import pandas as pd

    from facelib import zoo

    history = pd.DataFrame({"epoch": [1, 2], "step": [30, 60], "time_s": [4.0, 5.5]})
    assert study.Study.run_label("vae", history) == "this run's vae (60 steps, 10 s)"
    s = study.start("n", profile="quick", run_dir=tmp_path)
    name = zoo.available()[0]
    models = s.zoo_models([name])
    e = zoo.entry(name)
    (label,) = models
    assert label.startswith(f"zoo {name} ({e['training']['steps']:,} steps, ")
    assert f"{e['training']['train_seconds'] / 60:.0f} min" in label


def test_lfw_available_says_when_the_zoo_shows_its_synthetic_models(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FACELIB_DATA", str(tmp_path))
    s = study.start("n", profile="quick", run_dir=None)
    assert s.lfw_available() is False and "synthetic-faces models" in capsys.readouterr().out
    home = tmp_path / "scikit_learn_data" / "lfw_home"
    (home / "lfw_funneled").mkdir(parents=True)
    (home / "pairsDevTest.txt").write_text("1\n")
    assert s.lfw_available() is True


def test_a_model_list_may_name_a_spec_the_zoo_does_not_ship(tmp_path, capsys):
    """`Study.model`: a spec file in a notebook's model list is trained here (and reused by the next
    notebook of the run); a zoo name is the zoo's stored model."""
    from facelib.experiment import DataSpec, ExperimentSpec, ModelSpec

    spec = ExperimentSpec(data=DataSpec("synthetic", {"n": 64, "size": 32, "n_identities": 4}),
                          model=ModelSpec("beta-vae", {"latent_dim": 3, "beta": 8.0}),
                          training={"epochs": 1, "val_fraction": 0.0, "progress": False})
    path = spec.save(tmp_path / "my-beta8.yaml")
    s = study.start("05_t", run_dir=tmp_path / "run", models="zoo")
    model = s.model(str(path))
    assert model.name == "beta-vae" and model.config.beta == 8.0 and model.config.latent_dim == 3
    assert s.models[-1]["source"] == "trained" and s.model_label(str(path)) == "my-beta8"
    capsys.readouterr()
    again = study.start("06_t", run_dir=tmp_path / "run").model(spec)
    assert "reusing" in capsys.readouterr().out
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a.cpu(), b.cpu())
    zoo_one = s.model("synthetic-vae")
    assert s.models[-1]["source"] == "zoo" and zoo_one.zoo_name == "synthetic-vae"
