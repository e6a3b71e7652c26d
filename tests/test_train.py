"""fit(): learning, exact resume, NaN guard, overwrite refusal, grouped batches, inference, CLI."""

from __future__ import annotations

import importlib.util
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from facelib.data import FaceDataset
from facelib.models import build_model, losses
from facelib.train import (
    TrainConfig,
    TrainingDivergedError,
    embed,
    fit,
    load_checkpoint,
    load_model,
    reconstruct,
    refine_posterior,
    representation,
    sample,
    traversal_effect,
    traverse,
)
from facelib import cli
from facelib.train import engine, train_step

SMALL = dict(image_size=32, latent_dim=4, hidden_channels=8, hidden_dim=32)
QUIET = dict(progress=False, batch_size=16, num_threads=1)  # 1 thread: the test machine is shared


def faces(n_id: int = 8, per: int = 8, seed: int = 0, groups: bool = False) -> FaceDataset:
    """Tiny learnable faces: a bright square whose place is the identity, brightness varies."""
    g = torch.Generator().manual_seed(seed)
    n = n_id * per
    identity = np.repeat(np.arange(n_id), per)
    img = torch.zeros(n, 1, 32, 32)
    for p in range(n_id):
        r, c = 4 + 6 * (p // 4), 4 + 6 * (p % 4)
        img[identity == p, :, r:r + 8, c:c + 8] = 1.0
    img = img * torch.rand(n, 1, 1, 1, generator=g).mul(0.6).add(0.4) + 0.05 * torch.rand(n, 1, 32, 32, generator=g)
    images = img.clamp(0, 1).mul(255).round().to(torch.uint8)
    extra = {}
    if groups:  # factor groups of 4 images that share all but "yaw"
        extra = dict(groups=np.arange(n) // 4, group_varying=np.full(n, "yaw"))
    return FaceDataset(images=images, identity=identity, name="toy", **extra)


def model(name: str = "beta-vae", **fields):
    torch.manual_seed(0)
    extra = {"blocks": {"identity": 2, "yaw": 1}} if name == "modvae" else {}
    if name in ("beta-vae", "modvae"):
        extra["beta"] = 1.0
    return build_model(name, **{**SMALL, **extra, **fields})


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# -- learning and history ------------------------------------------------------------------
def test_fit_reduces_the_loss_and_records_history():
    data = faces()
    result = fit(model(), data, TrainConfig(epochs=6, lr=3e-3, **QUIET))
    h = result.history
    assert list(h["epoch"]) == list(range(1, 7))
    for col in ("train_loss", "train_recon_nll", "train_kl", "train_elbo_nats", "train_bits_per_dim",
                "val_loss", "val_elbo_nats", "val_recon_nll", "val_kl", "val_bits_per_dim", "lr", "time_s",
                "images_per_s"):
        assert col in h, col
    assert h["train_loss"].iloc[-1] < 0.8 * h["train_loss"].iloc[0]
    assert h["val_loss"].iloc[-1] < 0.8 * h["val_loss"].iloc[0]
    assert result.best["val_loss"] == h["val_loss"].min()
    assert result.checkpoint is None and result.stopped == "epochs"
    assert not result.model.training


def test_max_steps_and_step_history():
    result = fit(model(), faces(), epochs=5, max_steps=4, history_every_step=True, **QUIET)
    assert result.stopped == "max_steps"
    assert int(result.history["step"].iloc[-1]) == 4
    assert list(result.step_history["step"]) == [1, 2, 3, 4]


def test_bad_config_and_precision_errors_are_clear():
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainConfig(precision="fp8")
    with pytest.raises(TypeError, match="unknown TrainConfig field"):
        fit(model(), faces(), epochs=1, batchsize=3)
    with pytest.raises(ValueError, match="fp16' needs a CUDA device"):
        fit(model(), faces(), epochs=1, device="cpu", precision="fp16", **QUIET)
    with pytest.raises(ValueError, match="model expects 64x64 images, data set 'toy' has 32x32"):
        fit(build_model("vae", image_size=64, latent_dim=4), faces(), epochs=1, **QUIET)


@pytest.mark.parametrize("tty, progress, shown", [(True, True, True), (True, False, False), (False, True, False)])
def test_progress_bar_only_on_a_terminal_and_when_asked(monkeypatch, tty, progress, shown):
    import io
    import sys

    class Stream(io.StringIO):
        def isatty(self):
            return tty

    stream = Stream()
    monkeypatch.setattr(sys, "stderr", stream)
    fit(model(), faces(), epochs=1, max_steps=2, **{**QUIET, "progress": progress})
    assert ("loss=" in stream.getvalue() and "2/2" in stream.getvalue()) == shown


@pytest.mark.skipif(not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="CPU without bf16")
def test_bf16_autocast_trains_on_cpu():
    result = fit(model(), faces(), epochs=1, max_steps=2, device="cpu", precision="bf16", **QUIET)
    assert result.precision == "bf16"
    assert math.isfinite(result.last["train_loss"])


def test_auto_layout_is_nhwc_only_where_it_was_measured_faster():
    from facelib.train.precision import auto_channels_last

    assert auto_channels_last(torch.device("cuda"), torch.float16)
    assert auto_channels_last(torch.device("cuda"), None)
    assert auto_channels_last(torch.device("cpu"), torch.bfloat16)
    assert not auto_channels_last(torch.device("cpu"), None)
    assert not auto_channels_last(torch.device("mps"), None)
    # and fit follows it: fp32 on the CPU keeps the model's convolution weights NCHW
    net = fit(model(), faces(), epochs=1, max_steps=1, device="cpu", precision="fp32", **QUIET).model
    conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)
    assert conv.weight.is_contiguous() and not conv.weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_the_cpu_trains_channels_last_and_warns_where_it_is_emulated(monkeypatch, native):
    """A bf16 recipe (the LFW zoo's) trains on any CPU: where the CPU lacks native bf16 torch
    emulates it, and the user is told that fp32 may be faster."""
    from facelib.train import precision

    if native and not precision._cpu_bf16_supported():
        pytest.skip("this CPU has no native bf16")
    monkeypatch.setattr(precision, "_cpu_bf16_supported", lambda: native)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = fit(model(), faces(), epochs=1, max_steps=1, device="cpu", precision="bf16", **QUIET).model
    told = [w for w in caught if "without native bf16" in str(w.message)]
    assert len(told) == (0 if native else 1)
    assert all(torch.isfinite(p).all() for p in net.parameters())
    conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


# -- checkpoints, resume, overwrite, divergence ---------------------------------------------
@pytest.mark.parametrize("name", ["beta-vae", "factor-vae", "modvae"])
def test_resume_gives_bit_identical_weights(tmp_path, name):
    data = faces()
    cfg = TrainConfig(epochs=2, device="cpu", seed=3, **QUIET)
    full = fit(model(name), data, cfg, out=str(tmp_path / "full"))

    fit(model(name), data, cfg, epochs=1, out=str(tmp_path / "part"))
    fresh = model(name)
    torch.manual_seed(123)  # the resumed run must not depend on the caller's state
    with torch.no_grad():
        for p in fresh.parameters():
            p.add_(torch.randn_like(p))
    resumed = fit(fresh, data, cfg, out=str(tmp_path / "part"), resume=True)

    assert same_weights(full.model, resumed.model)
    cols = [c for c in full.history if c not in ("time_s", "images_per_s")]
    pd.testing.assert_frame_equal(full.history[cols], resumed.history[cols])
    ckpt = load_checkpoint(resumed.checkpoint)
    assert ckpt["epoch"] == 2 and ckpt["train_config"]["seed"] == 3
    assert ckpt["dataset"]["name"] == "toy" and ckpt["dataset"]["n"] == 64 and ckpt["dataset"]["shape"] == [1, 32, 32]
    assert isinstance(ckpt["history"], dict) and ckpt["history"]["epoch"] == [1, 2]
    assert all(type(v) in (int, float, bool) for v in ckpt["history"]["train_loss"] + ckpt["history"]["partial"])


def test_resume_from_a_mid_epoch_stop_is_exact(tmp_path):
    data = faces()
    cfg = TrainConfig(epochs=2, device="cpu", **QUIET)
    full = fit(model(), data, cfg)
    fit(model(), data, cfg, max_steps=4, out=str(tmp_path / "r"))  # 3 steps per epoch: stops inside epoch 2
    resumed = fit(model(), data, cfg, out=str(tmp_path / "r"), resume=True)
    assert same_weights(full.model, resumed.model)
    assert list(resumed.history["epoch"]) == [1, 2]
    assert resumed.history["train_loss"].tolist() == full.history["train_loss"].tolist()


def test_resume_refuses_a_changed_split_or_model(tmp_path):
    data = faces()
    fit(model(), data, epochs=1, out=str(tmp_path), **QUIET)
    with pytest.raises(ValueError, match="seed was 0, now 5"):
        fit(model(), data, epochs=2, seed=5, out=str(tmp_path), resume=True, **QUIET)
    with pytest.raises(ValueError, match="written for config"):
        fit(model(latent_dim=6), data, epochs=2, out=str(tmp_path), resume=True, **QUIET)


def test_an_existing_checkpoint_is_never_silently_overwritten(tmp_path):
    data = faces()
    first = fit(model(), data, epochs=1, out=str(tmp_path), **QUIET)
    before = first.checkpoint.read_bytes()
    with pytest.raises(FileExistsError, match="resume=True .* new out folder.*overwrite=True"):
        fit(model(), data, epochs=1, out=str(tmp_path), **QUIET)
    assert first.checkpoint.read_bytes() == before
    again = fit(model(), data, epochs=1, out=str(tmp_path), overwrite=True, seed=1, **QUIET)
    assert again.checkpoint.read_bytes() != before


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    data = faces()
    m = model()
    real_loss = m.loss

    def poisoned(batch, step=0):
        terms = real_loss(batch, step)
        if step >= 7:  # 3 steps per epoch: step index 7 is epoch 3, batch 2, the 8th step
            terms["loss"] = terms["loss"] * float("nan")
        return terms

    m.loss = poisoned
    with pytest.raises(TrainingDivergedError, match=r"epoch 3, step 8 \(batch 2 of 3\).*non-finite loss") as info:
        fit(m, data, epochs=5, out=str(tmp_path), **QUIET)
    assert "last good checkpoint is kept" in str(info.value)
    assert info.value.step == 8 and math.isnan(info.value.terms["loss"])
    good = load_checkpoint(tmp_path / "checkpoint.pt")
    assert good["epoch"] == 2 and good["step"] == 6
    restored = load_model(tmp_path / "checkpoint.pt")
    assert all(torch.isfinite(p).all() for p in restored.parameters())


def test_nan_weights_are_never_checkpointed_even_without_validation(tmp_path, monkeypatch):
    m = model()

    def step_then_poison(objectives, batch, optimizers, step, **kw):
        terms = train_step(objectives, batch, optimizers, step, **kw)
        if step == 7:  # 4 steps per epoch: the last of epoch 2 has a finite loss, then bad weights
            with torch.no_grad():
                next(m.parameters()).fill_(float("nan"))
        return terms

    monkeypatch.setattr(engine, "train_step", step_then_poison)
    with pytest.raises(TrainingDivergedError, match="epoch 2.*non-finite weights of"):
        fit(m, faces(), epochs=3, val_fraction=0.0, out=str(tmp_path), **QUIET)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 1


def test_stopping_at_max_steps_always_writes_a_checkpoint(tmp_path):
    result = fit(model(), faces(), epochs=5, max_steps=6, checkpoint_every=10, out=str(tmp_path), **QUIET)
    assert result.stopped == "max_steps"
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt["epoch"] == 2 and ckpt["step"] == 6


def test_grad_scaler_path_saves_its_state_and_stops_on_nan(tmp_path, monkeypatch):
    """The fp16 code path (GradScaler) exercised on the CPU: scaler state in the checkpoint, NaN guard."""
    from facelib.train import precision

    monkeypatch.setattr(precision, "resolve_precision", lambda setting, device: ("fp16", None, True))
    result = fit(model(), faces(), epochs=1, out=str(tmp_path / "ok"), **QUIET)
    assert result.precision == "fp16"
    assert load_checkpoint(result.checkpoint)["grad_scaler"]["scale"] > 0

    m = model()
    real_loss = m.loss
    m.loss = lambda batch, step=0: {**real_loss(batch, step), "loss": torch.tensor(float("inf"))} if step >= 1 \
        else real_loss(batch, step)
    with pytest.raises(TrainingDivergedError, match="epoch 1, step 2"):
        fit(m, faces(), epochs=1, **QUIET)


# -- grouped batches -------------------------------------------------------------------------
def _capture_batches(monkeypatch):
    seen = []

    def spy(objectives, batch, optimizers, step, **kw):
        seen.append({"x": batch["x"].clone(), "group": batch["group"].clone(), "varying": list(batch["varying"])})
        return train_step(objectives, batch, optimizers, step, **kw)

    monkeypatch.setattr(engine, "train_step", spy)
    return seen


def test_factor_groups_arrive_whole(monkeypatch):
    data = faces(groups=True)  # 16 groups of 4
    m = model("modvae")
    seen = _capture_batches(monkeypatch)
    fit(m, data, epochs=2, group_size=4, groups_per_batch=3, val_fraction=0.25, **QUIET)
    key = {bytes(img.numpy().tobytes()): i for i, img in enumerate(data.images)}
    train_groups = set()
    for b in seen:
        idx = np.array([key[bytes((x * 255).round().to(torch.uint8).numpy().tobytes())] for x in b["x"]])
        assert len(idx) == 12 and b["varying"] == ["yaw"] * 12
        for g in b["group"].unique():
            members = idx[(b["group"] == g).numpy()]
            assert len(set(data.groups[members])) == 1  # one data-set group per batch group
            assert sorted(members) == list(np.flatnonzero(data.groups == data.groups[members[0]]))  # the whole group
            train_groups.add(int(data.groups[members[0]]))
    assert len(train_groups) == 12  # 4 of 16 groups held out whole for validation


def test_identity_groups_take_k_images_of_one_person(monkeypatch):
    data = faces(n_id=10, per=6)
    m = model("modvae")
    seen = _capture_batches(monkeypatch)
    fit(m, data, epochs=1, group_size=3, groups_per_batch=4, **QUIET)
    assert seen
    ident = {bytes(img.numpy().tobytes()): int(p) for img, p in zip(data.images, data.identity)}
    for b in seen:
        assert b["varying"] == ["nuisance"] * 12
        people = np.array([ident[bytes((x * 255).round().to(torch.uint8).numpy().tobytes())] for x in b["x"]])
        for g in range(4):
            assert len(set(people[(b["group"] == g).numpy()])) == 1


# -- inference ---------------------------------------------------------------------------------
def test_embed_and_friends_shapes_and_determinism():
    data = faces()
    m = fit(model(), data, epochs=1, max_steps=2, **QUIET).model
    m.train()
    frame = embed(m, data, batch_size=10, device="cpu")
    assert frame.shape == (64, 4 + 4 + 2)
    assert list(frame.columns) == [f"mu_{i}" for i in range(4)] + [f"logvar_{i}" for i in range(4)] + ["identity", "index"]
    assert (frame["identity"].to_numpy() == data.identity).all() and (frame["index"] == np.arange(64)).all()
    assert m.training  # mode restored
    with torch.no_grad():
        mu, _ = m.eval().encode(data.float_images(slice(0, 5)))
    np.testing.assert_allclose(frame.loc[:4, [f"mu_{i}" for i in range(4)]].to_numpy(), mu.numpy(), rtol=1e-5, atol=1e-6)
    rep = representation(m, device="cpu")(data.images[:7])
    assert isinstance(rep, np.ndarray) and rep.shape == (7, 4)
    np.testing.assert_allclose(rep, frame.iloc[:7, :4].to_numpy(), rtol=1e-5, atol=1e-6)
    rec = reconstruct(m, data.images[:3], device="cpu")
    assert rec.shape == (3, 1, 32, 32) and rec.dtype == torch.float32 and 0 <= rec.min() and rec.max() <= 1
    assert torch.equal(sample(m, 5, seed=1, device="cpu"), sample(m, 5, seed=1, device="cpu"))
    z = torch.zeros(4)
    t = traverse(m, z, dim=2, values=[-2.0, 0.0, 2.0], device="cpu")
    assert t.shape == (3, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(t[0], m.decode(torch.tensor([[0.0, 0.0, -2.0, 0.0]]))[0])
    assert traverse(m, torch.zeros(2, 4), 0, [1.0, 2.0], device="cpu").shape == (2, 2, 1, 32, 32)
    with pytest.raises(ValueError, match=r"z must have shape \(4,\)"):
        traverse(m, torch.zeros(5), 0, [1.0])


def _negative_elbo(m, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, draws: int = 64) -> torch.Tensor:
    """Per-face -ELBO estimated afresh (many draws, another seed than the refinement's)."""
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        recon = torch.stack([m.recon_nll(m.decode_logits(mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g)), x)
                             for _ in range(draws)]).mean(0)
        return recon + losses.kl_normal_std(mu, logvar).sum(1)


def test_refined_posteriors_raise_each_faces_elbo_and_leave_the_model_alone():
    data = faces()
    m = fit(model("vae", likelihood="gaussian", gaussian_scale=0.1), data, epochs=6, lr=3e-3, **QUIET).model.eval()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    grads = [None if p.grad is None else p.grad.clone() for p in m.parameters()]
    x = data.float_images(slice(0, 16))
    with torch.no_grad():
        mu, logvar = m.encode(x)
    mu2, logvar2 = refine_posterior(m, x, mu, logvar, 40)
    assert (_negative_elbo(m, x, mu2, logvar2) < _negative_elbo(m, x, mu, logvar)).all()
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in before.items())
    assert all((g is None and p.grad is None) or torch.equal(g, p.grad) for g, p in zip(grads, m.parameters()))
    assert torch.equal(refine_posterior(m, x, mu, logvar, 40)[0], mu2)  # one seed, one result
    assert refine_posterior(m, x, mu, logvar, 0)[0] is mu  # 0 steps: the encoder's posterior
    # the public paths: refined codes and reconstructions come from the same refinement
    rec = reconstruct(m, data.images[:16], device="cpu", refine_steps=40)
    with torch.no_grad():
        assert torch.allclose(rec, m.decode(mu2), atol=1e-6)
    np.testing.assert_allclose(representation(m, device="cpu", refine_steps=40)(data.images[:16]), mu2.numpy(),
                               rtol=1e-5, atol=1e-6)
    assert ((rec - x) ** 2).mean() < ((reconstruct(m, data.images[:16], device="cpu") - x) ** 2).mean()


def test_refinement_finds_the_prior_when_the_decoder_ignores_the_code():
    """A decoder whose output does not depend on z: the ELBO is maximised by q = p = N(0, I)
    (KL 0, the closed form), wherever the encoder started."""
    m = model().eval()
    with torch.no_grad():
        first = next(layer for layer in m.decoder.modules() if isinstance(layer, torch.nn.Linear))
        first.weight.zero_()
    x = faces().float_images(slice(0, 8))
    mu = torch.randn(8, 4, generator=torch.Generator().manual_seed(0)) * 2
    logvar = torch.full((8, 4), -3.0)
    mu2, logvar2 = refine_posterior(m, x, mu, logvar, 400, lr=0.05)
    assert mu2.abs().max() < 0.05 and logvar2.abs().max() < 0.1


def test_refining_with_a_model_in_training_mode_leaves_its_batch_norm_alone():
    """Batch norm reads its running statistics during refinement and does not update them; the
    model's mode comes back as it was."""
    m = build_model("vae", image_size=32, channels=1, latent_dim=4, architecture="resnet",
                    likelihood="gaussian", gaussian_scale=0.1)
    m.train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    x = faces().float_images(slice(0, 8))
    with torch.no_grad():
        mu, logvar = m.eval().encode(x)
    m.train()
    refine_posterior(m, x, mu, logvar, 3)
    assert m.training
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in before.items())
    with pytest.raises(ValueError, match="lr must be a positive number"):
        refine_posterior(m, x, mu, logvar, 3, lr=0.0)
    with pytest.raises(ValueError, match="B x latent_dim for the B = 8 faces"):
        refine_posterior(m, x, mu[:4], logvar[:4], 3)


@pytest.mark.parametrize("bad", [-1, 2.5, True, "10"])
def test_refine_steps_must_be_a_whole_number(bad):
    m = model()
    with pytest.raises(ValueError, match="refine_steps must be a whole number"):
        reconstruct(m, faces().images[:2], device="cpu", refine_steps=bad)
    with pytest.raises(ValueError, match="refine_steps must be a whole number"):
        representation(m, refine_steps=bad)


# -- command line ----------------------------------------------------------------------------------
def _cli_data() -> list[str] | None:
    """Data for the CLI smoke test: synthetic if it exists, else olivetti if installed."""
    if importlib.util.find_spec("facelib.data.synthetic") is not None:
        return ["--data", "synthetic", "--image-size", "32", "--data-option", "n=48",
                "--data-option", "n_identities=6", "--data-option", "supersample=1"]
    try:
        from facelib.data import load

        load("olivetti", size=32, download=False)
        return ["--data", "olivetti", "--image-size", "32"]
    except Exception:
        return None


def _run_cli(argv: list[str]) -> int:
    return cli.main(["train", *argv])


def test_cli_trains_and_writes_a_loadable_checkpoint(tmp_path, capsys):
    data = _cli_data()
    if data is None:
        pytest.skip("neither facelib.data.synthetic nor olivetti under $FACELIB_DATA is available")
    out = tmp_path / "run"
    argv = ["--model", "beta-vae", "--beta", "2", *data, "--latent-dim", "4", "--epochs", "2",
            "--max-steps", "2", "--batch-size", "16", "--set", "hidden_channels=8", "--set", "hidden_dim=32",
            "--out", str(out), "--no-progress", "--num-threads", "1"]
    assert _run_cli(argv) == 0
    printed = capsys.readouterr().out
    assert "trained beta-vae" in printed and "checkpoint:" in printed
    assert "lower is better" in printed and "higher is better" in printed  # signs said
    assert "Bernoulli decoder on grey levels" in printed  # the model's default decoder, labelled
    m = load_model(out / "checkpoint.pt")
    assert m.config.beta == 2.0 and m.config.latent_dim == 4 and m.config.hidden_channels == 8
    assert (out / "history.csv").exists()
    # the same command again finds this very run finished and trains nothing
    before = (out / "checkpoint.pt").read_bytes()
    assert _run_cli(argv) == 0
    assert "holds this very run, finished" in capsys.readouterr().out
    assert (out / "checkpoint.pt").read_bytes() == before
    # another training into the same folder is refused, naming what differs, and leaves the run alone
    assert _run_cli(argv + ["--max-steps", "3"]) == 1
    assert "holds another run (training max_steps 2 -> 3)" in capsys.readouterr().err
    assert (out / "checkpoint.pt").read_bytes() == before
    assert _run_cli(argv + ["--max-steps", "3", "--overwrite"]) == 0
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 3


def test_cli_rejects_bad_input_with_a_message(capsys):
    """Bad values exit 2 (a failure at run time exits 1: tests/test_robustness_cli.py)."""
    assert _run_cli(["--model", "vae", "--data", "olivetti", "--set", "latent_dim"]) == 2
    assert "--set expects KEY=VALUE" in capsys.readouterr().err
    assert _run_cli(["--model", "vae", "--data", "no-such-set", "--no-progress"]) == 2
    assert "unknown data set 'no-such-set'" in capsys.readouterr().err
    assert _run_cli(["--model", "vae", "--data", "olivetti", "--epochs", "0"]) == 2
    assert "epochs must be a positive integer" in capsys.readouterr().err
    assert _run_cli(["--model", "vae", "--data", "olivetti", "--set", "latent_dim=four"]) == 2
    assert "--set latent_dim expects an integer, got four" in capsys.readouterr().err


def test_cli_image_size_and_channels_become_every_data_sets_size_and_channels(capsys):
    import yaml

    from facelib.data import available, dataset_info

    for name in available():  # the registry's contract: every set takes size and channels
        channels = max(dataset_info(name).channels)
        assert _run_cli(["--model", "vae", "--data", name, "--image-size", "32", "--channels", str(channels),
                         "--dump-spec"]) == 0
        data = yaml.safe_load(capsys.readouterr().out)["data"]
        assert data["options"] == {"size": 32, "channels": channels}, name
    # an option given by its old name is translated (with a warning), and the flag does not override it
    with pytest.warns(DeprecationWarning, match="color=False is now channels=1"):
        assert _run_cli(["--model", "vae", "--data", "lfw-pairs", "--channels", "3", "--data-option", "color=false",
                         "--data-option", "subset=test", "--dump-spec"]) == 0
    data = yaml.safe_load(capsys.readouterr().out)["data"]
    assert data["options"] == {"channels": 1, "split": "test"}


# -- held-out loss terms ---------------------------------------------------------------------
def test_held_out_terms_are_the_models_loss_averaged_over_batches():
    from facelib.models import units
    from facelib.train import held_out_terms

    m, data = model(), faces()
    x = data.float_images()
    whole = held_out_terms(m, data.images, batch_size=len(data), seed=3)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        m.eval()
        torch.manual_seed(3)
        terms = m.loss({"x": x})
        kl_dims = m.kl_per_dim(x)
    assert whole["recon_nll"] == pytest.approx(float(terms["recon_nll"]), rel=1e-5)
    assert whole["kl"] == pytest.approx(float(kl_dims.sum()), rel=1e-5)
    assert whole["elbo_nats"] == pytest.approx(-(whole["recon_nll"] + whole["kl"]))
    assert whole["bits_per_dim"] == pytest.approx(units.bits_per_dim(whole["elbo_nats"], m.n_dims))
    assert whole["active_latents"] == int((kl_dims > 0.1).sum())
    batched = held_out_terms(m, data.images, batch_size=5, seed=3)  # 64 images in 13 uneven batches
    assert batched["kl"] == pytest.approx(whole["kl"], rel=1e-5)  # the KL is deterministic
    assert held_out_terms(m, data.images, batch_size=5, seed=3) == batched
    with pytest.raises(ValueError, match="at least one image"):
        held_out_terms(m, data.images[:0])


def test_traversal_effect_is_the_decoded_change_and_zero_for_an_ignored_latent():
    torch.manual_seed(0)
    m = build_model("vae", image_size=32, latent_dim=4).eval()
    with torch.no_grad():
        m.decoder.dense[0].weight[:, 2] = 0.0  # the decoder ignores latent 2
    images = faces().images[:10]
    effect = traversal_effect(m, images, span=1.5, device="cpu")
    assert effect.shape == (4,) and effect[2] == 0.0 and (np.delete(effect, 2) > 0).all()
    with torch.no_grad():  # independently: decode the posterior means with latent k at -1.5 and +1.5
        mu, _ = m.encode(images.float() / 255)
        for k in (0, 3):
            lo, hi = mu.clone(), mu.clone()
            lo[:, k], hi[:, k] = -1.5, 1.5
            assert effect[k] == pytest.approx(float((m.decode(hi) - m.decode(lo)).abs().mean()), rel=1e-5)
    assert traversal_effect(m, images, dims=[3, 0], span=1.5, device="cpu") == pytest.approx(effect[[3, 0]])
    with pytest.raises(ValueError, match="span"):
        traversal_effect(m, images, span=0)


def test_cli_layout_reaches_the_training_config(tmp_path):
    data = _cli_data()
    if data is None:
        pytest.skip("neither facelib.data.synthetic nor olivetti under $FACELIB_DATA is available")
    for layout, want in (("channels-last", True), ("nchw", False), ("auto", "auto")):
        out = tmp_path / layout
        argv = ["--model", "vae", *data, "--latent-dim", "4", "--epochs", "1", "--max-steps", "1", "--batch-size", "8",
                "--set", "hidden_channels=8", "--set", "hidden_dim=32", "--out", str(out), "--no-progress",
                "--num-threads", "1", "--layout", layout]
        assert _run_cli(argv) == 0
        assert load_checkpoint(out / "checkpoint.pt")["train_config"]["channels_last"] == want
