"""What a resume or a load reads is what was saved: the checkpoint's content hash covers the
training state (a flipped bit in Adam's moments is refused on resume), and a half-trained
checkpoint is never loaded without a word."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from facelib import zoo
from facelib.models import build_model
from facelib.train import TrainConfig, fit, load_model
from facelib.train.batches import _check_group_size
from facelib.train.checkpoint import CheckpointError, content_digest, load_checkpoint, save_checkpoint
from facelib.zoo.store import write_entry

from test_train import QUIET, faces, model


@pytest.fixture
def run(tmp_path):
    fit(model(), faces(), TrainConfig(epochs=1, device="cpu", **QUIET), out=str(tmp_path))
    return tmp_path


def _flip_one_bit(t: torch.Tensor) -> None:
    t.view(-1).view(torch.uint8)[5] ^= 0x40


def test_a_flipped_bit_in_an_adam_moment_is_refused_on_resume(run):
    path = run / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=True)
    state = ckpt["optimizer_states"][0]["state"]
    _flip_one_bit(next(iter(state.values()))["exp_avg"])
    torch.save(ckpt, path)  # the weights and their hash untouched
    with pytest.raises(CheckpointError, match="training state is damaged"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="resume from another copy"):
        fit(model(), faces(), TrainConfig(epochs=2, device="cpu", resume=True, **QUIET), out=str(run))
    with pytest.warns(UserWarning, match="training state is damaged"):
        assert load_model(path).config.latent_dim == model().config.latent_dim  # the weights are fine


@pytest.mark.parametrize("field", ["rng_states", "history", "train_config", "step"])
def test_the_content_hash_covers_everything_a_resume_reads(run, field):
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    before = content_digest(ckpt)
    assert before == ckpt["content_sha256"]  # the same after a weights_only load as at save
    if field == "rng_states":
        _flip_one_bit(ckpt["rng_states"]["torch"])
    elif field == "history":
        ckpt["history"]["train_loss"][0] += 1e-3
    elif field == "train_config":
        ckpt["train_config"]["lr"] *= 2
    else:
        ckpt["step"] += 1
    assert content_digest(ckpt) != before


def test_an_unfinished_checkpoint_loads_with_a_warning(tmp_path):
    m = model()
    path = save_checkpoint(tmp_path / "half.pt", m, train_config=TrainConfig(epochs=5), epoch=2, step=10)
    with pytest.warns(UserWarning, match="unfinished training run.*epoch 2 of 5"):
        load_model(path)
    done = save_checkpoint(tmp_path / "done.pt", m, train_config=TrainConfig(epochs=5), epoch=5, step=25)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(done)


def test_a_group_size_no_group_reaches_is_refused(tmp_path):
    data = faces()  # 64 synthetic faces of 8 people: 8 images each
    with pytest.raises(ValueError, match="group_size 500 is larger than the largest group.*8 images"):
        fit(model("modvae"), data, TrainConfig(epochs=1, device="cpu", group_size=500, **QUIET))
    fit(model("modvae"), data, TrainConfig(epochs=1, device="cpu", group_size=8, **QUIET))  # the largest is fine
    groups = np.repeat(np.arange(5), [10, 3, 3, 3, 3])  # 12 of 22 images in groups shorter than 5
    with pytest.warns(UserWarning, match="4 of 5 groups.*topped up with repeats"):
        _check_group_size(data, groups, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _check_group_size(data, groups, 3)


def test_zoo_load_refuses_another_models_file_under_an_entry(tmp_path, monkeypatch):
    """Another model's file given the entry's sha256 loaded silently as the wrong model."""

    recipe = {"name": "tiny", "model": "beta-vae", "model_options": {"latent_dim": 4, "beta": 4.0}}
    for beta, model_name in [(4.0, "beta-vae"), (2.0, "beta-vae")]:
        file = zoo.export(build_model(model_name, image_size=32, latent_dim=4, beta=beta), tmp_path / "tiny.pt")
        write_entry("tiny", {"file": "tiny.pt", "sha256": zoo.sha256(file), "recipe": recipe,
                             "training": {"steps": 0}, "metrics": {}}, tmp_path)
        if beta == 4.0:
            assert zoo.load("tiny", tmp_path).config.beta == 4.0
    with pytest.raises(zoo.ZooError, match="another model than the manifest's recipe.*beta: recipe 4.0, file 2.0"):
        zoo.load("tiny", tmp_path)
    file = zoo.export(build_model("vae", image_size=32, latent_dim=4), tmp_path / "tiny.pt")
    write_entry("tiny", {"file": "tiny.pt", "sha256": zoo.sha256(file), "recipe": recipe,
                         "training": {"steps": 0}, "metrics": {}}, tmp_path)
    with pytest.raises(zoo.ZooError, match="model: recipe 'beta-vae', file 'vae'"):
        zoo.load("tiny", tmp_path)


# -- named pipes where a file is read (#41 item 6) ---------------------------------------------------
@pytest.fixture
def alarm():
    """Fail instead of hanging for ever if something opens a pipe for reading."""
    import signal

    def hung(*_):
        raise AssertionError("a read of a named pipe hung: it was opened instead of refused")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_named_pipes_are_refused_wherever_facelib_reads_a_file(tmp_path, alarm, monkeypatch):
    import os

    from facelib import data as fdata
    from facelib import zoo
    from facelib.experiment import load_spec
    from facelib.files import NotARegularFileError
    from facelib.train import load_model

    fifo = tmp_path / "checkpoint.pt"
    os.mkfifo(fifo)
    with pytest.raises(NotARegularFileError, match="checkpoint .*checkpoint.pt is a named pipe"):
        load_model(fifo)
    with pytest.raises(NotARegularFileError, match="named pipe"):
        load_model(tmp_path)  # the run folder's checkpoint.pt
    with pytest.raises(NotARegularFileError, match="spec file"):
        load_spec(fifo)
    root = tmp_path / "root"
    (root / "frey_faces").mkdir(parents=True)
    os.mkfifo(root / "frey_faces" / "frey_rawface.mat")
    monkeypatch.setenv("FACELIB_DATA", str(root))
    with pytest.raises(NotARegularFileError, match="data set 'frey'.*frey_rawface.mat is a named pipe"):
        fdata.load("frey")
    folder = tmp_path / "zoo"
    folder.mkdir()
    (folder / "manifest.json").write_text(zoo.store.manifest_text({"m": {**zoo.entry("synthetic-vae"), "file": "m.pt"}}))
    os.mkfifo(folder / "m.pt")
    with pytest.raises(NotARegularFileError, match="zoo model 'm': file .*m.pt is a named pipe"):
        zoo.load("m", folder=folder)


def test_tracebacks_and_misleading_messages_of_round_three(tmp_path, monkeypatch):
    """#41's tracebacks and misleading messages, each now a message naming what happened."""
    import json

    import numpy as np
    import torch

    from facelib import data as fdata
    from facelib import zoo
    from facelib.models import build_model
    from facelib.train import TrainConfig, fit, load_model, save_checkpoint
    from facelib.train.distributed import rendezvous_timeout
    from facelib.verify import MahalanobisScore
    from facelib.verify.hotelling import latent_identity_tests
    from facelib.verify.roc import auc_bootstrap_ci
    from facelib.zoo.store import ManifestError, manifest_text

    monkeypatch.setenv("FACELIB_DIST_TIMEOUT", "inf")
    with pytest.raises(ValueError, match="FACELIB_DIST_TIMEOUT='inf' is not a number of seconds"):
        rendezvous_timeout()
    same = np.r_[np.ones(10, bool), np.zeros(10, bool)]
    with pytest.raises(ValueError, match="n_boot must be a whole number of resamples >= 1"):
        auc_bootstrap_ci(same, np.arange(20.0), n_boot=0)
    with pytest.raises(TypeError, match="folder's path= must be a path"):
        fdata.load("folder", path=5)
    with pytest.raises(TypeError, match="the checkpoint path must be a path"):
        load_model(None)
    with pytest.raises(ValueError, match="out must be a run folder's path"):
        fit(build_model("vae", image_size=32, latent_dim=2), fdata.load("synthetic", n=8, size=32),
            TrainConfig(out=5))
    with pytest.raises(ValueError, match="n must be a whole number of faces"):
        zoo.preview_faces("synthetic-vae", n=2.5)
    model = build_model("vae", image_size=32, latent_dim=2)
    ckpt = save_checkpoint(tmp_path / "m.pt", model)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="asks for CUDA, which this machine does not have.*map_location='cpu'"):
            load_model(ckpt, map_location="cuda")
    with pytest.raises(ValueError, match="no person with two different embeddings.*covariance is singular"):
        MahalanobisScore().fit(np.ones((200, 8)), np.repeat(np.arange(40), 5))
    latents = np.random.default_rng(0).normal(size=(40, 3))
    latents[:, 1] = 2.0
    with pytest.warns(UserWarning, match=r"latent\(s\) \['z1'\] cannot be tested"):
        latent_identity_tests(latents, np.repeat(np.arange(8), 5))
    # the zoo's manifest: a recipe option that is not an object, steps that are not a number, an
    # uppercase digest (the same digest) and a file that is a folder
    good = zoo.entry("synthetic-vae")
    folder = tmp_path / "zoo"
    folder.mkdir()
    for bad, message in [({"recipe": {**good["recipe"], "model_options": "x"}}, "recipe 'model_options' is a JSON str"),
                         ({"training": {**good["training"], "steps": "many"}}, "training 'steps' is 'many'"),
                         ({"file": ".."}, "not the name of a file in the zoo folder")]:
        (folder / "manifest.json").write_text(manifest_text({"m": {**good, **bad}}))
        with pytest.raises(ManifestError, match=message):
            zoo.manifest(folder)
    import shutil
    shutil.copy(zoo.path("synthetic-vae"), folder / good["file"])
    (folder / "manifest.json").write_text(manifest_text({"m": {**good, "sha256": good["sha256"].upper()}}))
    assert zoo.load("m", folder=folder).config == zoo.load("synthetic-vae").config
    assert json.loads((folder / "manifest.json").read_text())["models"]["m"]["sha256"].isupper()
