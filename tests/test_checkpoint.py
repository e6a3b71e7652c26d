"""Checkpoint files: round trip, weights_only loading, clear errors, atomic writes."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from facelib.models import build_model
from facelib.train.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    CheckpointError,
    load_checkpoint,
    load_model,
    load_state_into,
    rng_states,
    save_checkpoint,
    set_rng_states,
)

SMALL = dict(image_size=32, latent_dim=4, hidden_channels=8, hidden_dim=32)


def _model(name: str, **fields):
    torch.manual_seed(1)
    extra = {"blocks": {"identity": 2, "yaw": 1}} if name == "modvae" else {}
    return build_model(name, **{**SMALL, **extra, **fields})


def _x(n: int = 5) -> torch.Tensor:
    return torch.rand(n, 1, 32, 32, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("name", ["vae", "beta-vae", "modvae", "factor-vae", "beta-tcvae"])
def test_round_trip_gives_identical_outputs(tmp_path, name):
    model = _model(name).eval()
    path = save_checkpoint(tmp_path / "m.pt", model)
    loaded = load_model(path)
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.config == model.config
    with torch.no_grad():
        mu, logvar = model.encode(_x())
        mu2, logvar2 = loaded.encode(_x())
        z = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
        assert torch.equal(mu, mu2) and torch.equal(logvar, logvar2)
        assert torch.equal(model.decode(z), loaded.decode(z))
    # every tensor of the state dict (FactorVAE's discriminator included) comes back
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key


def test_file_loads_with_weights_only_and_holds_the_contract_fields(tmp_path):
    model = _model("factor-vae")
    opts = model.configure_optimizers(1e-3)
    path = save_checkpoint(tmp_path / "c.pt", model, optimizers=opts, train_config={"lr": 1e-3},
                           history={"epoch": [1, 2], "loss": [3.0, np.float32(2.5)]}, epoch=2, step=10)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["format"] == FORMAT and raw["format_version"] == FORMAT_VERSION
    assert raw["model_name"] == "factor-vae"
    assert raw["model_config"]["latent_dim"] == 4
    assert any(k.startswith("discriminator.") for k in raw["state_dict"])
    assert len(raw["optimizer_states"]) == 2
    assert raw["history"] == {"epoch": [1, 2], "loss": [3.0, 2.5]}
    assert type(raw["history"]["loss"][1]) is float  # numpy scalars stored as plain floats
    assert raw["epoch"] == 2 and raw["step"] == 10
    assert raw["versions"]["torch"] not in ("", "not installed")
    assert set(raw["rng_states"]) >= {"python", "numpy", "torch"}


def test_loading_into_another_config_errors_clearly(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", _model("beta-vae", beta=4.0))
    ckpt = load_checkpoint(path)
    other = _model("beta-vae", beta=2.0)
    with pytest.raises(CheckpointError, match=r"written for config .*model has .*beta: 4\.0 vs 2\.0"):
        load_state_into(other, ckpt)
    with pytest.raises(CheckpointError, match="written for model 'beta-vae'; the model given is 'vae'"):
        load_state_into(_model("vae"), ckpt)
    # same config but weights that do not fit (a tampered file)
    del ckpt["state_dict"][next(iter(ckpt["state_dict"]))]
    with pytest.raises(CheckpointError, match="weights do not fit"):
        load_state_into(_model("beta-vae", beta=4.0), ckpt)


def test_unreadable_foreign_and_future_files_error_clearly(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match="could not read .* corrupt"):
        load_model(garbage)

    good = save_checkpoint(tmp_path / "good.pt", _model("vae"))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="could not read"):
        load_model(truncated)

    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a facelib checkpoint"):
        load_model(foreign)

    future = tmp_path / "future.pt"
    payload = torch.load(good, weights_only=True)
    payload["format_version"] = FORMAT_VERSION + 1
    torch.save(payload, future)
    with pytest.raises(CheckpointError, match="upgrade facelib"):
        load_model(future)

    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_model(tmp_path / "missing.pt")


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "c.pt", _model("vae"))
    before = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, _model("vae", latent_dim=6))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["c.pt"]


def test_rng_states_restore_every_generator():
    states = rng_states()
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_states(states)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_package_level_load_model_accepts_a_run_folder(tmp_path):
    import facelib

    save_checkpoint(tmp_path / "checkpoint.pt", _model("vae"))
    assert facelib.load_model(tmp_path).name == "vae"
