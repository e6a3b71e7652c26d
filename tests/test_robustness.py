"""Bad inputs a careless or hostile user gives, across data, checkpoints, training, pipeline
and verification: each must fail with its own error type and a message that names the file
or value and says what to do, and must leave what was already written as it was.

Slow cases use small stand-ins that run the real code path: a patched writer for a full
disk, a lock held in this process for a second training, a record with a dead pid for a
killed run.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import zmq

from facelib.data import DataNotFoundError, load
from facelib.data._common import CorruptDataError
from facelib.data.dataset import FaceDataset
from facelib.data.folder import UnreadableImageError
from facelib.models import build_model
from facelib.train import TrainConfig, fit
from facelib.train.checkpoint import (
    CheckpointError,
    RunLockedError,
    checkpoint_complete,
    load_checkpoint,
    load_model,
    run_lock,
    save_checkpoint,
)

SMALL = dict(image_size=32, latent_dim=4, hidden_channels=8, hidden_dim=32)
SHARED = Path(os.environ.get("FACELIB_DATA", "/nonexistent"))


def tiny_model(name: str = "vae", **fields):
    torch.manual_seed(0)
    return build_model(name, **{**SMALL, **fields})


def tiny_data(seed: int = 0, name: str = "faces", n: int = 24) -> FaceDataset:
    g = torch.Generator().manual_seed(seed)
    return FaceDataset(images=torch.randint(0, 256, (n, 1, 32, 32), dtype=torch.uint8, generator=g),
                       identity=np.repeat(np.arange(n // 4), 4), name=name,
                       meta={"options": {"seed": seed}})


def quick(out, **kw) -> TrainConfig:
    return TrainConfig(**{"epochs": 1, "batch_size": 8, "val_fraction": 0.0, "progress": False,
                          "device": "cpu", "out": str(out), **kw})


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes (to prove nothing was lost or changed)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
            and p.name != ".lock"}


@pytest.fixture
def trained(tmp_path):
    """A finished run folder with its checkpoint."""
    out = tmp_path / "run"
    fit(tiny_model(), tiny_data(), quick(out))
    return out / "checkpoint.pt"


# -- 1. unfinished checkpoints are not reused as finished -------------------------------------
def _interrupt_after_first_epoch(monkeypatch):
    import facelib.train.engine as engine

    real, calls = engine._evaluate, {"n": 0}

    def evaluate(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(engine, "_evaluate", evaluate)


def test_interrupted_run_is_marked_unfinished(tmp_path, monkeypatch):
    _interrupt_after_first_epoch(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(), tiny_data(), quick(tmp_path / "r", epochs=3))
    ckpt = load_checkpoint(tmp_path / "r" / "checkpoint.pt")
    assert ckpt["epoch"] == 1 and ckpt["completed"] is False and not checkpoint_complete(ckpt)


def test_train_or_load_resumes_an_unfinished_checkpoint(tmp_path, monkeypatch, capsys):
    from facelib.study import Study

    study = Study("01_vae", {"epochs": 3, "batch_size": 8, "lr": 1e-3, "seed": 0, "device": "cpu"}, tmp_path)
    _interrupt_after_first_epoch(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        study.train_or_load("vae", "vae", tiny_data(), train_options={"val_fraction": 0.0}, **SMALL)
    monkeypatch.undo()
    capsys.readouterr()
    _, history = study.train_or_load("vae", "vae", tiny_data(), train_options={"val_fraction": 0.0}, **SMALL)
    said = capsys.readouterr().out
    assert "resuming the unfinished" in said and "epoch 1 of 3" in said and "reusing" not in said
    assert list(history["epoch"]) == [1, 2, 3]
    assert checkpoint_complete(load_checkpoint(tmp_path / "checkpoints" / "vae" / "checkpoint.pt"))


def test_old_checkpoint_without_flag_is_judged_by_its_epochs(trained):
    ckpt = load_checkpoint(trained)
    del ckpt["completed"]
    assert checkpoint_complete(ckpt)
    ckpt["train_config"]["epochs"] = 5
    assert not checkpoint_complete(ckpt)


# -- 2. --resume on other data ------------------------------------------------------------
@pytest.mark.parametrize("other", [
    dict(seed=1, name="synthetic"),  # another set with the same n and shape
    dict(seed=1, name="faces"),  # same name, other options and images
])
def test_resume_refuses_other_data(trained, other):
    before = trained.read_bytes()
    with pytest.raises(ValueError, match="cannot resume") as err:
        fit(tiny_model(), tiny_data(**other), quick(trained.parent, epochs=2, resume=True))
    assert str(trained) in str(err.value) and "new out folder" in str(err.value)
    assert trained.read_bytes() == before


def test_resume_on_the_same_data_continues(trained):
    result = fit(tiny_model(), tiny_data(), quick(trained.parent, epochs=2, resume=True))
    assert list(result.history["epoch"]) == [1, 2]


# -- 3. two trainings into one out folder -------------------------------------------------
def test_second_training_into_a_locked_folder_is_refused(tmp_path):
    out = tmp_path / "shared-out"
    with run_lock(out):
        with pytest.raises(RunLockedError) as err:
            fit(tiny_model(), tiny_data(), quick(out))
        assert str(out) in str(err.value) and str(os.getpid()) in str(err.value)
        assert "another out folder" in str(err.value)
        assert not (out / "checkpoint.pt").exists()
    fit(tiny_model(), tiny_data(), quick(out))  # free again once the holder is done
    assert (out / "checkpoint.pt").exists()


def test_training_after_another_finished_does_not_overwrite(trained):
    before = trained.read_bytes()
    with pytest.raises(FileExistsError, match="--resume"):
        fit(tiny_model(), tiny_data(), quick(trained.parent))
    assert trained.read_bytes() == before


# -- 5. output that cannot be written -------------------------------------------------------
def test_read_only_out_fails_before_training(tmp_path, monkeypatch):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    model = tiny_model()
    steps = {"n": 0}
    real = model.loss

    def counting(*a, **k):
        steps["n"] += 1
        return real(*a, **k)

    monkeypatch.setattr(model, "loss", counting)
    try:
        with pytest.raises(PermissionError) as err:
            fit(model, tiny_data(), quick(out))
    finally:
        out.chmod(0o755)
    assert str(out) in str(err.value) and "writable" in str(err.value) and steps["n"] == 0


@pytest.mark.parametrize("failure", [
    RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4096 vs 1024"),
    OSError(errno.ENOSPC, "No space left on device"),
])
def test_full_disk_names_the_file_and_keeps_the_old_checkpoint(trained, monkeypatch, failure):
    import facelib.train.checkpoint as ck

    before = snapshot(trained.parent)

    def full_disk(obj, f, *a, **k):
        f.write(b"partial")
        raise failure

    monkeypatch.setattr(ck.torch, "save", full_disk)
    with pytest.raises(OSError) as err:
        save_checkpoint(trained, tiny_model())
    msg = str(err.value)
    assert err.value.errno == errno.ENOSPC and str(trained) in msg and "disk is full" in msg
    assert "unchanged" in msg and "free some space" in msg
    assert snapshot(trained.parent) == before  # old checkpoint intact, no temp file left


# -- 7. damaged checkpoints ------------------------------------------------------------------
def test_flipped_byte_in_a_weight_is_refused(trained):
    ckpt = torch.load(trained, weights_only=True)
    weight = ckpt["state_dict"]["encoder.dense.0.weight"]
    raw = trained.read_bytes()
    needle = weight.reshape(-1)[:16].numpy().tobytes()
    at = raw.find(needle)
    assert at > 0
    damaged = bytearray(raw)
    damaged[at + 5] ^= 0x40
    trained.write_bytes(bytes(damaged))
    with pytest.raises(CheckpointError, match="weights are damaged") as err:
        load_model(trained)
    assert str(trained) in str(err.value) and "retrain" in str(err.value)


def test_nan_weights_are_refused(tmp_path):
    model = tiny_model()
    with torch.no_grad():
        model.decoder.dense[0].weight[0, 0] = float("nan")
    path = save_checkpoint(tmp_path / "nan.pt", model)
    with pytest.raises(CheckpointError, match="NaN") as err:
        load_model(path)
    assert "decoder.dense.0.weight" in str(err.value) and "retrain" in str(err.value)


def test_file_without_hash_still_loads(trained):
    ckpt = torch.load(trained, weights_only=True)
    del ckpt["weights_sha256"], ckpt["content_sha256"]  # as written before either hash existed
    torch.save(ckpt, trained)
    assert load_model(trained).config.latent_dim == 4


def test_file_from_before_a_config_field_existed_loads_with_its_default(trained):
    ckpt = torch.load(trained, weights_only=True)
    del ckpt["model_config"]["learn_scale"], ckpt["content_sha256"]  # as written before both existed
    torch.save(ckpt, trained)
    with pytest.warns(UserWarning, match="predates config field"):
        model = load_model(trained)
    assert model.config.learn_scale is False


def test_missing_field_whose_default_does_not_fit_says_so(trained):
    ckpt = torch.load(trained, weights_only=True)
    del ckpt["model_config"]["hidden_dim"]  # the file's weights are 32 wide, the default 256
    torch.save(ckpt, trained)
    with pytest.warns(UserWarning), pytest.raises(CheckpointError) as err:
        load_model(trained)
    msg = str(err.value)
    assert str(trained) in msg and "written before config field(s) hidden_dim" in msg
    assert "facelib version that wrote it" in msg and "call `load_model`" not in msg


def test_unknown_config_field_asks_for_a_newer_facelib(trained):
    ckpt = torch.load(trained, weights_only=True)
    ckpt["model_config"]["from_the_future"] = 1
    torch.save(ckpt, trained)
    with pytest.raises(CheckpointError, match="upgrade facelib") as err:
        load_model(trained)
    assert "from_the_future" in str(err.value)


# -- 8. image sizes that are not powers of two -------------------------------------------
def _params(size: int) -> int:
    return sum(p.numel() for p in build_model("beta-vae", image_size=size).parameters())


@pytest.mark.parametrize("size", [150, 250])
def test_odd_halving_sizes_give_a_small_model_of_the_exact_size(size):
    assert _params(size) < 2 * _params(64), f"{size} px: {_params(size):,} parameters"
    model = build_model("vae", image_size=size, latent_dim=4, hidden_channels=4, hidden_dim=16).eval()
    with torch.no_grad():
        x = torch.rand(2, 1, size, size)
        mu, _ = model.encode(x)
        assert model.decode(mu).shape == (2, 1, size, size)


@pytest.mark.parametrize("size", [32, 64, 128, 256])
def test_power_of_two_layouts_are_unchanged(size):
    """The layout existing checkpoints (and the model zoo) were saved with."""
    state = build_model("vae", image_size=size, latent_dim=4, hidden_channels=8, hidden_dim=32).state_dict()
    n_convs = int(np.log2(size // 4))
    assert sum(k.startswith("encoder.conv.") and k.endswith(".weight") for k in state) == n_convs
    assert state["encoder.dense.0.weight"].shape == (32, 8 * 4 * 4)
    assert state["decoder.dense.4.weight"].shape == (8 * 4 * 4, 32)
    assert sum(k.startswith("decoder.deconv.") and k.endswith(".weight") for k in state) == n_convs


# -- 9. stale or misleading traces ---------------------------------------------------------
def test_stale_temp_files_are_removed_at_the_next_save(trained):
    dead = trained.parent / f".{trained.name}.999999999.abcd1234.tmp"  # a pid no process has
    dead.write_bytes(b"half")
    old = trained.parent / f".{trained.name}.zz9x.tmp"  # written by an older facelib, long ago
    old.write_bytes(b"half")
    os.utime(old, (0, 0))
    live = trained.parent / f".{trained.name}.{os.getpid()}.live.tmp"  # a writer still running
    live.write_bytes(b"busy")
    mine = trained.parent / "my-notes.txt"
    mine.write_text("keep me")
    save_checkpoint(trained, tiny_model())
    assert not dead.exists() and not old.exists() and live.exists() and mine.read_text() == "keep me"


def _cli(argv, monkeypatch, capsys, target, raiser):
    from facelib import cli

    monkeypatch.setattr(target[0], target[1], raiser)
    rc = cli.main(argv)
    return rc, capsys.readouterr().err


def _interrupt(*a, **k):
    raise KeyboardInterrupt


def test_sigint_before_any_checkpoint_does_not_name_one(tmp_path, monkeypatch, capsys):
    import facelib.experiment.cli as tcli

    out = tmp_path / "x"
    rc, err = _cli(["train", "--model", "vae", "--data", "synthetic", "--out", str(out)], monkeypatch, capsys,
                   (tcli, "_train"), _interrupt)
    assert rc == 130 and "no checkpoint was written" in err and "rerun from the start" in err
    assert "the last checkpoint is" not in err


def test_sigint_after_a_checkpoint_names_it_and_its_progress(trained, monkeypatch, capsys):
    import facelib.experiment.cli as tcli

    rc, err = _cli(["train", "--model", "vae", "--data", "synthetic", "--out", str(trained.parent)],
                   monkeypatch, capsys, (tcli, "_train"), _interrupt)
    assert rc == 130 and str(trained) in err and "epoch 1 of 1" in err and "--resume" in err


def test_sigint_in_the_pipeline_is_one_line(tmp_path, monkeypatch, capsys):
    import facelib.study.pipeline as pipeline

    rc, err = _cli(["run", "--out", str(tmp_path)], monkeypatch, capsys, (pipeline, "run_pipeline"), _interrupt)
    assert rc == 130 and "interrupted" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_run_killed_outright_reads_as_interrupted(tmp_path):
    import platform

    from facelib.study.pipeline import _new_run, read_run

    run = _new_run(tmp_path, "killed", "pipeline", "quick", {}, "python3")
    record = json.loads((run.dir / "run.json").read_text())
    assert record["status"] == "running" and record["pid"] == os.getpid()
    assert read_run(run.dir)["status"] == "running"  # this process is alive
    record["pid"] = 999999999  # as after SIGKILL: the writer is gone
    (run.dir / "run.json").write_text(json.dumps(record))
    seen = read_run(run.dir)
    assert seen["status"] == "interrupted" and "999999999" in seen["error"]
    assert json.loads((run.dir / "run.json").read_text())["status"] == "running"  # the file is left as is
    assert record["host"] == platform.node()


def test_kernel_tcp_warning_is_dropped_and_nothing_else():
    import runpy

    from facelib.study.pipeline import KERNEL_CONFIG, kernel_arguments

    assert kernel_arguments("python3") == [f"--IPKernelApp.extra_config_file={KERNEL_CONFIG}"]
    assert kernel_arguments("no-such-kernel") == []
    flt = runpy.run_path(str(KERNEL_CONFIG))["KernelNoise"]()

    def record(msg):
        return logging.LogRecord("IPKernelApp", logging.WARNING, __file__, 1, msg, None, None)

    assert not flt.filter(record("Kernel is running over TCP without encryption. All communication ..."))
    assert not flt.filter(record("KeyboardInterrupt caught in kernel."))  # the shutdown interrupt of a clean run
    assert flt.filter(record("some other kernel warning"))
    assert flt.filter(record("Exception in message handler: KeyboardInterrupt caught in kernel"))
    # the interrupted cell's reply meeting the socket the shutdown closed (a run stopped by Ctrl-C)
    closed, other = zmq.ZMQError(errno.ENOTSOCK), zmq.ZMQError(errno.EAGAIN)
    for exc, kept in ((closed, False), (other, True), (RuntimeError("a real defect"), True)):
        rec = logging.LogRecord("IPKernelApp", logging.ERROR, __file__, 1, "Exception in message handler:", None,
                                (type(exc), exc, None))
        assert flt.filter(rec) == kept, exc


def test_pipeline_kernel_prints_no_tcp_warning(tmp_path, capfd):
    import nbformat

    from facelib.study.pipeline import _execute

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("1 + 1")]
    nbformat.write(nb, str(tmp_path / "t.ipynb"))
    _execute(tmp_path / "t.ipynb", tmp_path / "o.ipynb", {}, "python3")
    err = capfd.readouterr().err
    assert "without encryption" not in err and "ERROR" not in err, err  # a clean run prints no kernel ERROR line


# -- 4. the folder loader --------------------------------------------------------------------
@pytest.fixture
def people(tmp_path):
    from PIL import Image

    root = tmp_path / "photos"
    for person, level in (("alice", 60), ("bob", 190)):
        (root / person).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((12, 12), level + i, np.uint8)).save(root / person / f"{i}.png")
    return root


def test_16bit_png_is_scaled_not_saturated(people):
    from PIL import Image

    level16 = 75 * 257  # 8-bit grey 75 stored on 16 bits
    Image.fromarray(np.full((12, 12), level16, np.uint16)).save(people / "alice" / "wide.png")
    d = load("folder", path=people, size=12)
    img = d.images[d.meta["files"].index("alice/wide.png")].float()
    assert abs(img.mean().item() - 75) < 1


def test_path_one_level_too_high_is_refused(people):
    before = snapshot(people.parent)
    with pytest.raises(ValueError, match="one level too high") as err:
        load("folder", path=people.parent)
    assert "photos/alice" in str(err.value) and str(people) in str(err.value)
    assert snapshot(people.parent) == before


def test_nested_albums_load_when_asked(people):
    for person in ("alice", "bob"):
        (people / person / "album").mkdir()
        for i in range(2):
            shutil.move(str(people / person / f"{i}.png"), people / person / "album" / f"{i}.png")
    with pytest.raises(ValueError, match="nested=True"):
        load("folder", path=people)
    d = load("folder", path=people, size=8, nested=True)
    assert len(d) == 4 and d.identity_names == ["alice", "bob"]


def test_valid_gif_is_read(people):
    from PIL import Image

    Image.fromarray(np.full((12, 12), 128, np.uint8)).save(people / "bob" / "anim.gif")
    d = load("folder", path=people, size=12)
    assert "bob/anim.gif" in d.meta["files"] and len(d) == 5


def test_stray_text_file_does_not_refuse_the_load(people):
    (people / "bob" / "notes.txt").write_text("who is who")
    with pytest.warns(UserWarning, match="notes.txt"):
        d = load("folder", path=people, size=8)
    assert len(d) == 4 and (people / "bob" / "notes.txt").read_text() == "who is who"


def test_truncated_photo_is_named(people):
    jpg = people / "bob" / "cut.png"
    full = (people / "bob" / "0.png").read_bytes()
    jpg.write_bytes(full[: len(full) // 2])
    with pytest.raises(UnreadableImageError, match="cut.png") as err:
        load("folder", path=people)
    assert "skip_unreadable=True" in str(err.value)


# -- 6. corrupt or missing data files ---------------------------------------------------------
def _corrupt(path: Path, how: str, good: bytes | None = None) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"empty": b"", "garbage": b"this is not a data file at all" * 10,
            "truncated": (good or b"")[: len(good or b"") // 2]}[how]
    path.write_bytes(data)
    return data


@pytest.mark.parametrize("how", ["empty", "garbage", "truncated"])
def test_corrupt_olivetti_pkz(tmp_path, how):
    good = (SHARED / "scikit_learn_data" / "olivetti_py3.pkz")
    if how == "truncated" and not good.exists():
        pytest.skip("needs the shared olivetti_py3.pkz")
    pkz = tmp_path / "scikit_learn_data" / "olivetti_py3.pkz"
    data = _corrupt(pkz, how, good.read_bytes() if how == "truncated" else None)
    with pytest.raises(CorruptDataError) as err:
        load("olivetti", root=tmp_path)
    assert str(pkz) in str(err.value) and "python -m facelib data fetch olivetti --force" in str(err.value)
    assert pkz.read_bytes() == data  # the user's file is left for them to inspect


@pytest.mark.parametrize("how", ["empty", "garbage"])
def test_corrupt_frey_mat(tmp_path, how):
    mat = tmp_path / "frey_faces" / "frey_rawface.mat"
    _corrupt(mat, how)
    with pytest.raises(CorruptDataError) as err:
        load("frey", root=tmp_path)
    assert str(mat) in str(err.value) and "python -m facelib data fetch frey --force" in str(err.value)


def test_frey_mat_without_its_variable(tmp_path):
    from scipy.io import savemat

    mat = tmp_path / "frey_faces" / "frey_rawface.mat"
    mat.parent.mkdir(parents=True)
    savemat(mat, {"faces": np.zeros((560, 3), np.uint8)})
    with pytest.raises(CorruptDataError, match="no variable 'ff'") as err:
        load("frey", root=tmp_path)
    assert str(mat) in str(err.value)


@pytest.mark.parametrize("how", ["empty", "garbage", "truncated"])
def test_corrupt_yaleb_npz(tmp_path, how):
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, images_64x64=np.zeros((4, 64, 64), np.uint8), label=np.arange(4))
    npz = tmp_path / "extended_yale_b" / "extended_yale_b_cropped.npz"
    _corrupt(npz, how, buf.getvalue())
    with pytest.raises(CorruptDataError) as err:
        load("yaleb", root=tmp_path)
    assert str(npz) in str(err.value) and "python -m facelib data fetch yaleb --force" in str(err.value)


def test_yaleb_npz_missing_an_array(tmp_path):
    npz = tmp_path / "extended_yale_b" / "extended_yale_b_cropped.npz"
    npz.parent.mkdir(parents=True)
    np.savez(npz, images_64x64=np.zeros((4, 64, 64), np.uint8), label=np.arange(4))
    with pytest.raises(CorruptDataError, match="subject_id") as err:
        load("yaleb", root=tmp_path)
    assert str(npz) in str(err.value)


def test_lfw_missing_offline_is_data_not_found_and_leaves_nothing(tmp_path, monkeypatch):
    import sklearn.datasets._lfw as sk_lfw

    def offline(*a, **k):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(sk_lfw, "_fetch_remote", offline)
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(DataNotFoundError) as err:
        load("lfw-people", root=root, cache=tmp_path / "cache")
    msg = str(err.value)
    assert "lfw_home" in msg and "internet" in msg and "FACELIB_DATA" in msg
    assert list(root.iterdir()) == []  # no empty scikit_learn_data/lfw_home left behind


def test_truncated_lfw_jpeg_is_named(tmp_path):
    from PIL import Image

    home = tmp_path / "scikit_learn_data" / "lfw_home"
    for f in ("pairs.txt", "pairsDevTrain.txt", "pairsDevTest.txt"):
        (home / f).parent.mkdir(parents=True, exist_ok=True)
        (home / f).write_text("1\n")
    rng = np.random.default_rng(0)
    for person in ("Ann_Lee", "Bo_Yu"):
        folder = home / "lfw_funneled" / person
        folder.mkdir(parents=True)
        for i in (1, 2):
            Image.fromarray(rng.integers(0, 255, (250, 250, 3), dtype=np.uint8)).save(
                folder / f"{person}_{i:04d}.jpg", quality=90)
    bad = home / "lfw_funneled" / "Bo_Yu" / "Bo_Yu_0002.jpg"
    bad.write_bytes(bad.read_bytes()[:3000])
    with pytest.raises(CorruptDataError) as err:
        load("lfw-people", root=tmp_path, download=False, size=16)
    assert str(bad) in str(err.value) and "good copy" in str(err.value)


# -- 10. verification inputs --------------------------------------------------------------------
def _emb_pairs(n: int = 40, d: int = 3):
    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(n // 4), 4)
    E = rng.normal(size=(n, d)) + ids[:, None]
    table = pd.DataFrame({"left": np.arange(0, n, 2), "right": np.arange(1, n, 2),
                          "same": (ids[0::2] == ids[1::2]), "fold": np.arange(n // 2) % 2})
    table.loc[::3, "right"] = (table.loc[::3, "left"] + 5) % n
    table["same"] = ids[table["left"]] == ids[table["right"]]
    return E, ids, table


def _split(E, ids, table, **kw):
    from facelib.verify import MahalanobisScore, Split, evaluate

    return evaluate(None, {"m": MahalanobisScore()}, Split(E, table[table.fold == 0], table[table.fold == 1], **kw))


@pytest.mark.parametrize("cut", [-3, +3])
def test_identity_of_the_wrong_length(cut):
    E, ids, table = _emb_pairs()
    wrong = ids[:cut] if cut < 0 else np.r_[ids, np.zeros(cut, int)]
    with pytest.raises(ValueError, match=f"expected {len(E)} labels") as err:
        _split(E, wrong, table, identity=wrong, labels="unrestricted")
    assert "same images" in str(err.value)


@pytest.mark.parametrize("bad", [np.array(["a", "b"] * 20), np.r_[np.zeros(39), np.nan]])
def test_identity_that_is_not_integer_labels(bad):
    E, _, table = _emb_pairs()
    with pytest.raises(ValueError, match="identity must be"):
        _split(E, bad, table, identity=bad, labels="unrestricted")


@pytest.mark.parametrize("labels", [["yes", "no"], ["True", "False"]])
def test_same_given_as_strings(labels):
    from facelib.verify import auc

    E, ids, table = _emb_pairs()
    table["same"] = np.where(table["same"], labels[0], labels[1])
    with pytest.raises(ValueError, match="same") as err:
        _split(E, ids, table)
    assert labels[0] in str(err.value) and "convert" in str(err.value)
    with pytest.raises(ValueError, match="strings"):
        auc(np.array(labels * 5), np.arange(10.0))


@pytest.mark.parametrize("value", [1.5, np.nan])
def test_float_or_nan_pair_indices(value):
    from facelib.verify import pair_array, pair_difference_test

    E, _, table = _emb_pairs()
    table["left"] = table["left"].astype(float)
    table.loc[2, "left"] = value
    for call in (lambda: pair_array(E, table), lambda: pair_difference_test(E, table), lambda: _split(E, None, table)):
        with pytest.raises(ValueError, match="column 'left'") as err:
            call()
        assert "whole row numbers" in str(err.value) and "fix those pairs" in str(err.value)


def test_whole_float_indices_still_work():
    from facelib.verify import pair_array

    E, _, table = _emb_pairs()
    assert np.allclose(pair_array(E, table.astype({"left": float})), pair_array(E, table))


def test_hotelling_with_a_one_row_sample_is_finite():
    from facelib.verify import hotelling_two_sample

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(1, 2)), rng.normal(size=(6, 2)) + 1
    res = hotelling_two_sample(a, b)
    S = np.cov(b, rowvar=False) * 5 / 5  # only b contributes scatter: (n2 - 1) S_b / (n1 + n2 - 2)
    d = a.mean(0) - b.mean(0)
    assert np.isfinite(res.t2) and np.isfinite(res.pvalue)
    assert np.isclose(res.t2, 1 * 6 / 7 * d @ np.linalg.solve(S, d))


def test_hotelling_constant_column_is_named():
    from facelib.verify import hotelling_one_sample, hotelling_two_sample

    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(10, 3)), rng.normal(size=(12, 3))
    a[:, 2] = b[:, 2] = 4.0
    with pytest.raises(ValueError, match=r"column\(s\) \[2\]") as err:
        hotelling_two_sample(a, b)
    assert "drop them" in str(err.value)
    with pytest.raises(ValueError, match=r"\[2\]"):
        hotelling_one_sample(a)


def test_scorer_fit_checks_identity_and_same():
    from facelib.verify import MahalanobisScore

    E, ids, table = _emb_pairs()
    with pytest.raises(ValueError, match="expected 40 labels"):
        MahalanobisScore().fit(E, ids[:-1])
    with pytest.raises(ValueError, match="True/False"):
        MahalanobisScore().fit_pairs(E[:5], E[5:10], ["x"] * 5)


# -- 11. Python 3.10 -----------------------------------------------------------------------------
def test_packaging_tests_collect_without_tomllib(monkeypatch):
    """On 3.10 there is no tomllib; the packaging tests must still read pyproject.toml."""
    import importlib

    monkeypatch.setitem(sys.modules, "tomllib", None)  # import tomllib now raises ImportError
    monkeypatch.setitem(sys.modules, "tomli", None)
    spec = importlib.util.spec_from_file_location("packaging_tests_310", Path(__file__).with_name("test_packaging.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.pyproject()["project"]["name"] == "facelib"
    requires = module.pyproject()["project"]["requires-python"]
    assert requires == ">=3.10"
    dev = module.pyproject()["project"]["optional-dependencies"]["dev"]
    assert any(d.startswith("tomli") and "3.11" in d for d in dev)
