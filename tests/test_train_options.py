"""The training options of `TrainConfig`: lr warm-up and cosine decay, gradient clipping, KL
warm-up, horizontal flips, AdamW, the calibrated (learned) Gaussian scale and best.pt, each
checked against a closed form or an independent computation, and exact resume with all of them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from facelib.models import build_model
from facelib.train import TrainConfig, fit, load_model, train_step
from facelib.train import batches, engine
from facelib.train.batches import _random_flips, _random_shifts, _split
from facelib.train.checkpoint import load_checkpoint
from facelib.train.config import kl_weight, lr_factor

from test_train import QUIET, SMALL, faces, model, same_weights

ALL_OPTIONS = dict(warmup_steps=3, lr_schedule="cosine", min_lr_ratio=0.1, max_grad_norm=5.0, kl_warmup_steps=5,
                   hflip=True, max_shift=2, weight_decay=0.01)


def test_lr_factor_is_linear_warmup_then_half_cosine():
    cfg = TrainConfig(warmup_steps=4, lr_schedule="cosine", min_lr_ratio=0.2)
    total = 24
    got = [lr_factor(cfg, s, total) for s in range(total)]
    assert got[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    for s in range(4, total):  # closed form: low + (1 - low) (1 + cos(pi t)) / 2, t from 0 to 1
        t = (s - 4) / (total - 4 - 1)
        assert got[s] == pytest.approx(0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi * t)))
    assert got[-1] == pytest.approx(0.2) and got[4] == pytest.approx(1.0)
    assert lr_factor(TrainConfig(), 10**6, 10) == 1.0  # constant without warm-up


def test_fit_sets_each_steps_lr_from_the_schedule():
    data = faces()
    cfg = TrainConfig(epochs=3, device="cpu", warmup_steps=2, lr_schedule="cosine", min_lr_ratio=0.0, lr=2e-3, **QUIET)
    result = fit(model(), data, cfg)
    total = int(result.history["step"].iloc[-1])
    for _, row in result.history.iterrows():  # the lr left in the optimizer after each epoch's last step
        assert row["lr"] == pytest.approx(2e-3 * lr_factor(cfg, int(row["step"]) - 1, total))
    assert result.history["lr"].iloc[-1] == pytest.approx(0.0, abs=1e-12)


def test_gradient_clipping_caps_the_norm_and_reports_the_unclipped_one():
    x = torch.rand(8, 1, 32, 32)
    m = model("vae")
    torch.manual_seed(5)
    m.loss({"x": x})["loss"].backward()
    unclipped = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in m.parameters() if p.grad is not None]))
    m.zero_grad()
    opt = torch.optim.SGD(m.parameters(), lr=0.0)  # lr 0: the step leaves the weights as they are
    torch.manual_seed(5)
    terms = train_step(m.objectives(), {"x": x}, [opt], 0, max_grad_norm=1e-3)
    clipped = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in m.parameters() if p.grad is not None]))
    assert terms["grad_norm"] == pytest.approx(float(unclipped), rel=1e-5)
    assert float(clipped) == pytest.approx(1e-3, rel=1e-4)


def test_kl_warmup_scales_everything_but_the_reconstruction():
    x = torch.rand(6, 1, 32, 32)
    m = model("beta-vae", beta=4.0)
    with torch.no_grad():
        torch.manual_seed(1)
        full = m.loss({"x": x})
        torch.manual_seed(1)
        warm = m.loss({"x": x, "kl_weight": 0.25})
    # per-image loss = recon + w * beta * KL; the batch means keep that form
    warm, full = {k: float(v) for k, v in warm.items()}, {k: float(v) for k, v in full.items()}
    assert warm["loss"] == pytest.approx(full["recon_nll"] + 0.25 * 4.0 * full["kl"], rel=1e-5)
    assert warm["kl"] == pytest.approx(full["kl"])  # the reported rate is the model's own
    assert [kl_weight(TrainConfig(kl_warmup_steps=4), s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert kl_weight(TrainConfig(), 0) is None


def test_fit_trains_with_the_warmed_up_loss():
    cfg = TrainConfig(epochs=1, device="cpu", kl_warmup_steps=4, history_every_step=True, **QUIET)
    steps = fit(model("beta-vae", beta=2.0), faces(), cfg).step_history
    for _, row in steps.iterrows():
        w = min(1.0, row["step"] / 4)
        assert row["loss"] == pytest.approx(row["recon_nll"] + w * 2.0 * row["kl"], rel=1e-4)


def test_random_flips_mirror_half_the_images_and_whole_groups():
    x = torch.rand(64, 1, 4, 4)
    out = _random_flips(x, None, seed=3)
    flipped = torch.tensor([torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x)])
    kept = torch.tensor([torch.equal(o, xi) for o, xi in zip(out, x)])
    assert bool((flipped ^ kept).all()) and 16 < int(flipped.sum()) < 48
    assert torch.equal(out, _random_flips(x, None, seed=3)) and not torch.equal(out, _random_flips(x, None, seed=4))
    group = torch.arange(64) // 8
    out = _random_flips(x, group, seed=3)
    flipped = torch.tensor([torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x)])
    per_group = flipped.view(8, 8)
    assert bool((per_group.all(1) | (~per_group).all(1)).all()) and 0 < int(per_group.all(1).sum()) < 8


def test_hflip_changes_training_and_never_validation(monkeypatch):
    data = faces()
    plain = fit(model(), data, TrainConfig(epochs=1, device="cpu", **QUIET))
    calls = []
    real = batches._random_flips
    monkeypatch.setattr(batches, "_random_flips", lambda x, group, seed: calls.append(len(x)) or real(x, group, seed))
    flipped = fit(model(), data, TrainConfig(epochs=2, device="cpu", hflip=True, **QUIET))
    assert not same_weights(plain.model, fit(model(), data, TrainConfig(epochs=1, device="cpu", hflip=True,
                                                                        **QUIET)).model)
    steps = int(flipped.history["step"].iloc[-1])
    assert len(calls) == steps + int(flipped.history["step"].iloc[0])  # the training batches only
    _, val_idx = _split(data, None, flipped.config)
    assert set(calls) == {16} and len(val_idx) not in calls  # never the validation batch


def test_random_shifts_translate_with_repeated_borders():
    x = torch.rand(32, 3, 10, 12)
    out = _random_shifts(x, None, seed=5, max_shift=3)
    found = set()
    for o, xi in zip(out, x):  # each output is one translate of its input (numpy pad "edge" as reference)
        padded = np.pad(xi.numpy(), ((0, 0), (3, 3), (3, 3)), mode="edge")
        hits = [(dy, dx) for dy in range(7) for dx in range(7)
                if np.array_equal(o.numpy(), padded[:, dy:dy + 10, dx:dx + 12])]
        assert len(hits) == 1
        found.add(hits[0])
    assert len(found) > 10  # the offsets vary over the batch
    assert torch.equal(_random_shifts(x, None, seed=5, max_shift=3), out)  # drawn from the seed alone
    group = torch.arange(32) // 8
    grouped = _random_shifts(x, group, seed=1, max_shift=3)
    for g in range(4):  # a group moves as a whole: one offset for its 8 images
        sl = slice(8 * g, 8 * g + 8)
        offsets = {(dy, dx) for dy in range(7) for dx in range(7)
                   if torch.equal(grouped[sl], torch.nn.functional.pad(x[sl], (3,) * 4, mode="replicate")
                                  [..., dy:dy + 10, dx:dx + 12])}
        assert len(offsets) == 1


def test_max_shift_changes_training_and_never_validation(monkeypatch):
    data = faces()
    plain = fit(model(), data, TrainConfig(epochs=1, device="cpu", **QUIET))
    calls = []
    real = batches._random_shifts
    monkeypatch.setattr(batches, "_random_shifts",
                        lambda x, group, seed, m: calls.append((len(x), m)) or real(x, group, seed, m))
    shifted = fit(model(), data, TrainConfig(epochs=1, device="cpu", max_shift=2, **QUIET))
    assert not same_weights(plain.model, shifted.model)
    assert set(calls) == {(16, 2)} and len(calls) == int(shifted.history["step"].iloc[-1])


def test_weight_decay_uses_adamw_with_decoupled_decay():
    m = model("vae")
    (opt,) = m.configure_optimizers(1e-3, weight_decay=0.1)
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]["weight_decay"] == 0.1
    (plain,) = m.configure_optimizers(1e-3)
    assert type(plain) is torch.optim.Adam
    # decoupled: with a zero gradient the step is exactly w <- w (1 - lr * wd)
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.AdamW([p], lr=0.5, weight_decay=0.1)
    p.grad = torch.zeros(3)
    opt.step()
    assert torch.allclose(p.detach(), torch.full((3,), 1 - 0.5 * 0.1))
    vae_opt, disc_opt = model("factor-vae").configure_optimizers(1e-3, weight_decay=0.1)
    assert isinstance(vae_opt, torch.optim.AdamW) and type(disc_opt) is torch.optim.Adam


def test_calibrated_gaussian_scale_is_stationary_at_the_rms_error():
    """sigma-VAE: with one shared sigma, -log p(x|z) = D log sigma + SSE / (2 sigma^2) + const,
    minimised at sigma^2 = SSE / D; the learned log_scale's gradient vanishes there and only there."""
    m = build_model("vae", **SMALL, likelihood="gaussian", learn_scale=True, gaussian_scale=0.3)
    x = torch.rand(5, 1, 32, 32)
    logits = torch.randn(5, 1, 32, 32)
    mse = float(((torch.sigmoid(logits) - x) ** 2).mean())
    for log_sigma, sign in [(0.5 * math.log(mse), 0), (0.5 * math.log(mse) - 0.3, -1), (0.5 * math.log(mse) + 0.3, 1)]:
        with torch.no_grad():
            m.log_scale.fill_(log_sigma)
        m.log_scale.grad = None
        m.recon_nll(logits, x).sum().backward()
        g = float(m.log_scale.grad)
        if sign == 0:
            assert abs(g) < 1e-2 * 5 * 1024
        else:  # below the optimum the NLL falls as sigma grows, above it rises
            assert np.sign(g) == sign and abs(g) > 100


def test_learned_scale_moves_towards_the_reconstruction_error():
    data = faces()
    m = model("vae", likelihood="gaussian", learn_scale=True, gaussian_scale=0.5)
    result = fit(m, data, TrainConfig(epochs=10, device="cpu", lr=0.03, val_fraction=0.0, **QUIET))
    x = data.images.float() / 255
    with torch.no_grad():
        sigma = float(result.model.log_scale.exp())
        rms = float(((result.model(x)["x_mean"] - x) ** 2).mean().sqrt())
    assert abs(math.log(sigma / rms)) < 0.5 * abs(math.log(0.5 / rms))  # from 0.5 most of the way to the rms


def test_best_checkpoint_holds_the_lowest_validation_loss(tmp_path):
    data = faces()
    cfg = TrainConfig(epochs=4, device="cpu", lr=3e-3, val_fraction=0.25, **QUIET)
    result = fit(model(), data, cfg, out=str(tmp_path))
    best = load_checkpoint(result.best_checkpoint)
    hist = result.history
    i = int(hist["val_loss"].idxmin())
    assert best["best"]["epoch"] == int(hist["epoch"][i]) and best["best"]["val_loss"] == pytest.approx(hist["val_loss"][i])
    # recompute: the stored weights score that validation loss on the validation images (same noise seed)
    reloaded = load_model(result.best_checkpoint)
    assert reloaded.config == result.model.config
    if i == len(hist) - 1:
        assert same_weights(reloaded, result.model)
    else:
        assert not same_weights(reloaded, result.model)
    assert not (tmp_path / "best.pt").with_name("best.pt.tmp").exists()


def test_no_best_checkpoint_without_validation(tmp_path):
    result = fit(model(), faces(), TrainConfig(epochs=1, device="cpu", val_fraction=0.0, **QUIET), out=str(tmp_path))
    assert result.best_checkpoint is None and not (tmp_path / "best.pt").exists()


def test_bad_training_options_are_refused_with_the_field():
    for bad in [dict(warmup_steps=-1), dict(lr_schedule="step"), dict(min_lr_ratio=2.0), dict(max_grad_norm=0),
                dict(kl_warmup_steps=1.5), dict(hflip="yes"), dict(max_shift=-1), dict(max_shift=1.5),
                dict(weight_decay=-0.1), dict(keep_best=None)]:
        with pytest.raises(ValueError, match=next(iter(bad))):
            TrainConfig(**bad)


class _Killed(RuntimeError):
    pass


@pytest.mark.parametrize("name", ["beta-vae", "factor-vae", "modvae"])
def test_resume_after_a_kill_is_exact_with_every_option(tmp_path, name, monkeypatch):
    """A run killed mid-epoch and resumed with the same config ends bit-identical to one that
    was never stopped: schedule, clipping, KL warm-up, flips, AdamW and best.pt included."""
    data = faces(groups=name == "modvae")
    cfg = TrainConfig(epochs=3, device="cpu", seed=2, val_fraction=0.25, **ALL_OPTIONS, **QUIET)
    full = fit(model(name), data, cfg, out=str(tmp_path / "full"))

    killed = model(name)

    def step_then_die(objectives, batch, optimizers, step=0, **kw):
        if step == 4:  # inside epoch 2, after epoch 1's checkpoint
            raise _Killed("killed")
        return train_step(objectives, batch, optimizers, step, **kw)

    monkeypatch.setattr(engine, "train_step", step_then_die)
    with pytest.raises(_Killed):
        fit(killed, data, cfg, out=str(tmp_path / "part"))
    monkeypatch.setattr(engine, "train_step", train_step)
    resumed = fit(model(name), data, cfg, out=str(tmp_path / "part"), resume=True)

    assert same_weights(full.model, resumed.model)
    cols = [c for c in full.history if c not in ("time_s", "images_per_s")]
    pd.testing.assert_frame_equal(full.history[cols], resumed.history[cols])
    assert same_weights(load_model(full.best_checkpoint), load_model(resumed.best_checkpoint))


def test_config_types_are_checked_not_coerced(monkeypatch):
    """#41 item 7: a bool is not a number, a seed is a whole number in range, a shift is smaller
    than the faces, and a size that cannot fit in memory is refused before anything is allocated."""
    from facelib.data import load
    from facelib.models import build_model
    from facelib.train import TrainConfig, fit

    for fields, message in [({"seed": "a"}, "seed must be a whole number"), ({"seed": 10**23}, "seed must be"),
                            ({"seed": -1}, "seed must be"), ({"lr": True}, "lr must be a positive number"),
                            ({"epochs": True}, "epochs must be a positive integer"),
                            ({"batch_size": False}, "batch_size"), ({"val_fraction": True}, "val_fraction"),
                            ({"progress": "yes"}, "progress must be True or False"),
                            ({"max_steps": 2.5}, "max_steps")]:
        with pytest.raises(ValueError, match=message):
            TrainConfig(**fields)
    faces = load("synthetic", n=32, size=32)
    with pytest.raises(ValueError, match="max_shift=100 moves the 32-pixel faces.*max_shift < 32"):
        fit(build_model("vae", image_size=32, latent_dim=2), faces, TrainConfig(max_shift=100, progress=False))
    monkeypatch.setattr("facelib.utils.memory_bytes", lambda: 16 * 2**30)  # whatever this machine has
    with pytest.raises(MemoryError, match=r"n_identities=1000000000 people would need 74.5 GiB.*16.0 GiB"):
        load("synthetic", n=8, size=32, n_identities=10**9)
