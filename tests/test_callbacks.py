"""fit's per-epoch callbacks (facelib.train.callbacks): PNG snapshots, TensorBoard, never changing training."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from facelib.data.pixels import to_uint8
from facelib.train import EpochEnd, Snapshots, TensorBoard, fit, load_checkpoint, reconstruct, sample
from facelib.train.callbacks import fixed_faces

from test_train import QUIET, _cli_data, _run_cli, faces, model, same_weights

RUN = dict(epochs=2, device="cpu", seed=4, val_fraction=0.25, **QUIET)


def _png(path) -> np.ndarray:
    image = np.asarray(Image.open(path))
    return image[..., None] if image.ndim == 2 else image


def _tiles(row: np.ndarray, n: int) -> np.ndarray:
    """H x (n W) x C -> n x C x H x W."""
    h, nw, c = row.shape
    return row.reshape(h, n, nw // n, c).transpose(1, 3, 0, 2)


def test_snapshots_are_the_reconstructions_and_samples_of_fixed_faces(tmp_path):
    data = faces()
    result = fit(model(), data, out=str(tmp_path), callbacks=[Snapshots(n=4, seed=7)], **RUN)
    folder = tmp_path / "snapshots"
    assert sorted(p.name for p in folder.iterdir()) == [
        "epoch_0001_reconstructions.png", "epoch_0001_samples.png",
        "epoch_0002_reconstructions.png", "epoch_0002_samples.png"]
    shown = fixed_faces(data, 4)
    assert torch.equal(shown, data.images[[0, 21, 42, 63]])  # spread evenly, the same every epoch
    recon = _png(folder / "epoch_0002_reconstructions.png")
    assert recon.shape == (64, 128, 1)
    np.testing.assert_array_equal(_tiles(recon[:32], 4), shown.numpy())
    np.testing.assert_array_equal(_tiles(recon[32:], 4), to_uint8(reconstruct(result.model, shown)))
    np.testing.assert_array_equal(_tiles(_png(folder / "epoch_0002_samples.png"), 4),
                                  to_uint8(sample(result.model, 4, seed=7)))
    # the first epoch's are of the model as it was then
    assert not np.array_equal(_png(folder / "epoch_0001_reconstructions.png"), recon)


def test_callbacks_see_each_epoch_and_never_change_the_training(tmp_path):
    data = faces()
    seen = []

    def draws_and_records(end: EpochEnd) -> None:
        torch.rand(5)  # a callback that draws from torch's RNG ...
        seen.append((end.epoch, end.step, dict(end.row), end.out))

    plain = fit(model(), data, out=str(tmp_path / "plain"), **RUN)
    called = fit(model(), data, out=str(tmp_path / "called"), callbacks=[draws_and_records, Snapshots(n=2)], **RUN)
    assert same_weights(plain.model, called.model)  # ... leaves the training alone
    cols = [c for c in plain.history if c not in ("time_s", "images_per_s")]
    assert plain.history[cols].equals(called.history[cols])
    assert [(e, s) for e, s, _, _ in seen] == [(1, 3), (2, 6)]
    assert [r["train_loss"] for _, _, r, _ in seen] == list(called.history["train_loss"])
    assert all(out == tmp_path / "called" for _, _, _, out in seen)
    ckpt = load_checkpoint(tmp_path / "called" / "checkpoint.pt")
    assert "callbacks" not in ckpt["train_config"] and ckpt["content_sha256"]


def test_callbacks_must_be_callables_and_snapshots_need_a_folder():
    with pytest.raises(TypeError, match="callbacks must be callables"):
        fit(model(), faces(), callbacks=["snapshots"], **RUN)
    with pytest.raises(ValueError, match="Snapshots writes into the run folder.*out="):
        fit(model(), faces(), callbacks=[Snapshots()], **{**RUN, "epochs": 1})


def test_tensorboard_logs_every_loss_term_and_the_images(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install 'facelib[tensorboard]')")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    callback = TensorBoard(n=3)
    result = fit(model("factor-vae"), faces(), out=str(tmp_path), callbacks=[callback], **RUN)
    callback.close()
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    history = result.history
    terms = [c for c in history if c.startswith(("train_", "val_"))]
    assert {"train_disc_loss", "train_tc_estimate", "val_loss"} <= set(terms)
    for column in terms + ["lr"]:
        tag = column.replace("train_", "train/", 1).replace("val_", "val/", 1)
        logged = events.Scalars(tag)
        assert [e.step for e in logged] == list(history["step"]), tag
        np.testing.assert_allclose([e.value for e in logged], history[column], rtol=1e-6, err_msg=tag)
    assert set(events.Tags()["images"]) == {"reconstructions", "samples"}
    assert [e.step for e in events.Images("samples")] == list(history["step"])


def test_tensorboard_without_the_extra_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as when it is missing
    with pytest.raises(ImportError, match=r"pip install 'facelib\[tensorboard\]'"):
        TensorBoard()


def test_cli_snapshots_need_out_and_write_into_it(tmp_path, capsys):
    data = _cli_data()
    if data is None:
        pytest.skip("neither facelib.data.synthetic nor olivetti under $FACELIB_DATA is available")
    argv = ["--model", "vae", *data, "--latent-dim", "4", "--epochs", "1", "--batch-size", "16",
            "--set", "hidden_channels=8", "--set", "hidden_dim=32", "--no-progress", "--num-threads", "1",
            "--snapshots"]
    assert _run_cli(argv) == 2  # a bad combination of arguments
    assert "--snapshots write into the run folder: give --out" in capsys.readouterr().err
    assert _run_cli(argv + ["--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == [
        "epoch_0001_reconstructions.png", "epoch_0001_samples.png"]
