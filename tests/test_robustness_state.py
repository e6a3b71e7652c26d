"""What a resume or a load reads is what was saved: the checkpoint's content hash covers the
training state (a flipped bit in Adam's moments is refused on resume), and a half-trained
checkpoint is never loaded without a word."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
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


# -- a resume compares the whole training configuration (issue #41, 2) ----------------------------
def test_a_resume_with_a_changed_lr_is_refused_and_change_records_it(tmp_path):
    """fit(resume=True, lr=...) compared only the split fields: the other lr went in without a word
    and the checkpoint said it for the whole run."""
    cfg = TrainConfig(epochs=6, max_steps=3, device="cpu", **QUIET)  # 4 batches an epoch: stops in epoch 1
    fit(model(), faces(), cfg, out=str(tmp_path))
    before = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.raises(ValueError, match=r"cannot resume .*lr was 0.001, now 0.005.*change=\{'lr': 0.005\}"):
        fit(model(), faces(), cfg, out=str(tmp_path), resume=True, lr=0.005, max_steps=None)
    with pytest.raises(ValueError, match="kl_warmup_steps was 0, now 5, hflip was False, now True"):
        fit(model(), faces(), cfg, out=str(tmp_path), resume=True, kl_warmup_steps=5, hflip=True, max_steps=None)
    with pytest.raises(ValueError, match="seed was 0, now 2.*decide the split"):
        fit(model(), faces(), cfg, out=str(tmp_path), resume=True, seed=2, change={"lr": 0.005})
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    with pytest.raises(ValueError, match="give resume=True"):
        fit(model(), faces(), cfg, out=str(tmp_path / "new"), change={"lr": 0.005})
    done = fit(model(), faces(), cfg, out=str(tmp_path), resume=True, max_steps=None, change={"lr": 0.005})
    assert done.history["changed"].fillna("").tolist() == ["", "lr 0.001 -> 0.005", "", "", "", ""]
    assert done.history["lr"].tolist()[1:] == [0.005] * 5
    assert load_checkpoint(tmp_path / "checkpoint.pt")["train_config"]["lr"] == 0.005


ROOT = Path(__file__).resolve().parents[1]
CHECKOUT_ENV = {"PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
TRAIN = [sys.executable, "-m", "facelib", "train", "--model", "vae", "--data", "synthetic", "--data-option", "n=256",
         "--image-size", "32", "--latent-dim", "4", "--no-progress", "--epochs", "8", "--out", "r"]


def _train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*TRAIN, *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **CHECKOUT_ENV})


def test_train_resume_with_a_changed_lr_is_refused_and_goes_through_change(tmp_path):
    """A real `train` Ctrl-C'd after its first checkpoint, then resumed with --lr 0.005."""
    proc = subprocess.Popen(TRAIN, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, **CHECKOUT_ENV},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        for _ in range(3000):
            if (tmp_path / "r" / "checkpoint.pt").exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "--resume" in err, out + err
    before = (tmp_path / "r" / "checkpoint.pt").read_bytes()
    refused = _train("--resume", "--lr", "0.005", cwd=tmp_path)
    assert refused.returncode == 1 and "lr 0.001 -> 0.005" in refused.stderr, refused.stdout + refused.stderr
    assert "--change FIELD=VALUE" in refused.stderr, refused.stderr
    assert (tmp_path / "r" / "checkpoint.pt").read_bytes() == before
    done = _train("--resume", "--change", "lr=0.005", cwd=tmp_path)
    assert done.returncode == 0 and "with lr -> 0.005" in done.stdout, done.stdout + done.stderr
    ckpt = load_checkpoint(tmp_path / "r" / "checkpoint.pt")
    assert ckpt["train_config"]["lr"] == 0.005 and ckpt["epoch"] == 8
    history = pd.read_csv(tmp_path / "r" / "history.csv")
    stopped = int(load_checkpoint(tmp_path / "r" / "checkpoint.pt")["history"]["epoch"][0])  # epoch 1 at least
    changed = history["changed"].fillna("")
    assert (changed != "").sum() == 1 and changed.iloc[history.index[history["lr"] == 0.005][0]] == "lr 0.001 -> 0.005"
    assert history["lr"].iloc[0] == 0.001 and stopped == 1
    assert "lr: 0.005" in (tmp_path / "r" / "spec.yaml").read_text()
    again = _train("--resume", "--change", "lr=0.005", cwd=tmp_path)  # the changed run, finished: reused
    assert again.returncode == 0 and "nothing to train" in again.stdout, again.stdout + again.stderr


def test_best_pt_of_an_unfinished_run_warns_like_its_run(tmp_path):
    """#41: a run stopped after epoch 1 of 3 left a best.pt that said 'completed' and loaded without
    the unfinished-run warning; a best.pt is now judged by its run's checkpoint.pt."""
    import shutil
    import warnings

    from facelib.data import load
    from facelib.models import build_model
    from facelib.train import TrainConfig, fit, load_model

    faces = load("synthetic", n=64, size=32)

    def stop_after_first_epoch(end):
        raise KeyboardInterrupt

    config = TrainConfig(epochs=3, batch_size=16, val_fraction=0.25, out=str(tmp_path / "run"), progress=False)
    with pytest.raises(KeyboardInterrupt):
        fit(build_model("vae", image_size=32, latent_dim=2), faces, config, callbacks=[stop_after_first_epoch])
    assert (tmp_path / "run" / "best.pt").is_file()
    with pytest.warns(UserWarning, match="unfinished training run"):
        load_model(tmp_path / "run" / "best.pt")
    fit(build_model("vae", image_size=32, latent_dim=2), faces, config.replace(out=str(tmp_path / "done")))
    shutil.copy(tmp_path / "done" / "best.pt", tmp_path / "copied.pt")
    for finished in (tmp_path / "done" / "best.pt", tmp_path / "copied.pt"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            load_model(finished)
