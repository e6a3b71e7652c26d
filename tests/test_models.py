"""The VAE family: registry and configs, shapes, likelihoods against torch.distributions,
importance sampling against a closed form, ModVAE clamping, FactorVAE's two-optimizer step,
and each model overfitting 64 small images."""

from __future__ import annotations

import dataclasses
import functools
import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, MultivariateNormal, Normal

from facelib.models import CONFIGS, MODELS, BaseVAE, build_model, losses
from facelib.models.networks import conv_layout
from facelib.train import train_step

#: Every registered model (a model added to the registry is tested here with no edit to this file).
NAMES = sorted(MODELS)
#: The models facelib ships.
SHIPPED = {"vae", "beta-vae", "modvae", "beta-tcvae", "factor-vae"}
TINY = dict(image_size=32, latent_dim=6, hidden_channels=8, hidden_dim=32)


def tiny(name, **fields):
    extra = {"dataset_size": 64} if name == "beta-tcvae" else {}
    return build_model(name, **{**TINY, **extra, **fields})


def half_planes(n=64, size=32, seed=0):
    """Soft half-planes at random angle and offset: 2 factors, lots of pixel mass."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    theta = torch.rand(n, generator=g) * 2 * math.pi
    offset = torch.rand(n, generator=g) - 0.5
    u = xx * torch.cos(theta)[:, None, None] + yy * torch.sin(theta)[:, None, None] - offset[:, None, None]
    return torch.sigmoid(8 * u)[:, None], theta, offset


def grouped_half_planes(n_groups=16, per_group=4, seed=0):
    """Groups sharing the angle (the 'identity'); the offset varies inside a group."""
    g = torch.Generator().manual_seed(seed)
    size = 32
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    theta = (torch.rand(n_groups, generator=g) * 2 * math.pi).repeat_interleave(per_group)
    offset = torch.rand(n_groups * per_group, generator=g) - 0.5
    u = xx * torch.cos(theta)[:, None, None] + yy * torch.sin(theta)[:, None, None] - offset[:, None, None]
    group = torch.arange(n_groups).repeat_interleave(per_group)
    varying = ["offset" if gid < n_groups // 2 else "nuisance" for gid in group.tolist()]
    return {"x": torch.sigmoid(8 * u)[:, None], "group": group, "varying": varying}


# -- registry and configs ------------------------------------------------------------------
def test_registry_names_and_build():
    assert SHIPPED <= set(MODELS)
    assert sorted(CONFIGS) == sorted(MODELS)
    for name in NAMES:
        m = tiny(name)
        assert isinstance(m, BaseVAE) and m.name == name and type(m).name == name
        assert isinstance(m.config, CONFIGS[name])
    assert build_model("beta_vae", **TINY).name == "beta-vae"  # underscores accepted


def test_unknown_model_lists_the_names():
    with pytest.raises(ValueError) as err:
        build_model("wae")
    for name in NAMES:
        assert name in str(err.value)


def test_unknown_field_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown config fields.*betta"):
        build_model("beta-vae", betta=4)


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trips_through_asdict_and_json(name):
    m = tiny(name)
    if name == "modvae":
        m = tiny(name, blocks={"identity": 3, "yaw": 1}, lam=2.5)
    fields = json.loads(json.dumps(dataclasses.asdict(m.config)))
    m2 = build_model(m.name, **fields)
    assert m2.config == m.config
    m2.load_state_dict(m.state_dict())
    x = torch.rand(2, 1, 32, 32)
    torch.testing.assert_close(m2.encode(x), m.encode(x), rtol=0, atol=0)
    # build_model(config) works too, with overrides
    assert build_model(m.config, latent_dim=4).config.latent_dim == 4


@pytest.mark.parametrize(
    "name, fields, match",
    [
        ("beta-vae", {"beta": -1.0}, "beta must be >= 0"),
        ("modvae", {"beta": -0.5}, "beta must be >= 0"),
        ("beta-tcvae", {"beta": -2.0}, "beta must be >= 0"),
        ("vae", {"latent_dim": 0}, "latent_dim must be >= 1"),
        ("vae", {"image_size": 41}, "even number from 8 to 256"),
        ("vae", {"image_size": 6}, "even number from 8 to 256"),
        ("vae", {"image_size": 272}, "even number from 8 to 256"),
        ("vae", {"channels": 2}, r"channels must be 1 \(grey\) or 3 \(RGB\)"),
        ("vae", {"likelihood": "poisson"}, r"likelihood must be one of \['bernoulli', 'gaussian'\]"),
        ("vae", {"likelihood": "gaussian", "gaussian_scale": 0.0}, "gaussian_scale must be a positive"),
        ("modvae", {"latent_dim": 6, "blocks": {"identity": 4, "yaw": 3}}, "blocks use 7 latents but latent_dim is 6"),
        ("modvae", {"blocks": {"nuisance": 2}}, "block names"),
        ("beta-vae", {"objective": "annealed"}, r"objective must be one of \['beta', 'capacity'\]"),
        ("factor-vae", {"gamma": -1.0}, "gamma must be >= 0"),
        ("beta-tcvae", {"dataset_size": 0}, "dataset_size must be >= 1"),
    ],
)
def test_bad_config_errors(name, fields, match):
    with pytest.raises(ValueError, match=match):
        build_model(name, **{**TINY, **fields})


def test_wrong_input_is_a_clear_error():
    m = tiny("vae")
    with pytest.raises(ValueError, match="model expects 1×32×32 images.*got 3×32×32"):
        m.encode(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="got 1×64×64"):
        m.encode(torch.rand(2, 1, 64, 64))
    with pytest.raises(ValueError, match="add a batch dimension"):
        m.encode(torch.rand(1, 32, 32))
    with pytest.raises(TypeError, match=r"x.float\(\) / 255"):
        m.encode(torch.zeros(2, 1, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="latent codes must have shape B×6"):
        m.decode(torch.zeros(2, 5))


# -- architecture --------------------------------------------------------------------------
def test_conv_layout_follows_image_size():
    assert conv_layout(32) == (3, 4)
    assert conv_layout(64) == (4, 4)
    assert conv_layout(128) == (5, 4)
    assert conv_layout(256) == (6, 4)
    assert conv_layout(48) == (3, 6)
    assert conv_layout(80) == (4, 5)
    for size in (48, 80):  # sizes that do not halve down to 4 still build and round-trip
        m = build_model("vae", image_size=size, latent_dim=3, hidden_channels=4, hidden_dim=8)
        with torch.no_grad():
            assert m(torch.rand(1, 1, size, size))["x_logits"].shape == (1, 1, size, size)


@pytest.mark.parametrize("size", [32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(size, channels):
    m = build_model("vae", image_size=size, channels=channels, latent_dim=5, hidden_channels=4, hidden_dim=16)
    n_conv = sum(isinstance(mod, torch.nn.Conv2d) for mod in m.encoder.modules())
    assert n_conv == conv_layout(size)[0]
    x = torch.rand(2, channels, size, size)
    out = m(x)
    assert out["mu"].shape == out["logvar"].shape == out["z"].shape == (2, 5)
    assert out["x_logits"].shape == out["x_mean"].shape == x.shape
    xm = m.decode(out["z"]).detach()
    assert xm.shape == x.shape and float(xm.min()) >= 0 and float(xm.max()) <= 1
    assert m.kl_per_dim(x).shape == (5,)


def test_channels_last_gives_the_same_outputs():
    m = build_model("vae", image_size=64, channels=3, latent_dim=4, hidden_channels=8, hidden_dim=16)
    x = torch.rand(3, 3, 64, 64)
    mu, logvar = m.encode(x)
    z = torch.randn(3, 4)
    logits = m.decode_logits(z)
    m.to(memory_format=torch.channels_last)
    mu2, logvar2 = m.encode(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(mu2, mu, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(m.decode_logits(z), logits, rtol=1e-4, atol=1e-5)


# -- losses of a model against references ----------------------------------------------------
def test_loss_terms_are_consistent_and_bernoulli_recon_matches_torch():
    m = tiny("vae")
    x = torch.rand(5, 1, 32, 32)
    torch.manual_seed(1)
    terms = m.loss({"x": x})
    torch.manual_seed(1)
    out = m(x)
    ref_recon = -Bernoulli(logits=out["x_logits"], validate_args=False).log_prob(x).flatten(1).sum(1).mean()
    q = Normal(out["mu"], torch.exp(0.5 * out["logvar"]))
    ref_kl = torch.distributions.kl_divergence(q, Normal(0.0, 1.0)).sum(1).mean()
    torch.testing.assert_close(terms["recon_nll"], ref_recon)
    torch.testing.assert_close(terms["kl"], ref_kl)
    torch.testing.assert_close(terms["loss"], ref_recon + ref_kl)
    torch.testing.assert_close(terms["elbo_nats"], -(ref_recon + ref_kl))
    torch.testing.assert_close(terms["bits_per_dim"], (ref_recon + ref_kl) / (32 * 32 * math.log(2)))
    assert all(v.ndim == 0 for v in terms.values())
    torch.testing.assert_close(m.kl_per_dim(x), losses.kl_normal_std(out["mu"], out["logvar"]).mean(0))


@pytest.mark.parametrize("learn", [False, True])
def test_gaussian_recon_matches_normal_log_prob(learn):
    m = tiny("vae", likelihood="gaussian", gaussian_scale=0.2, learn_scale=learn)
    if learn:
        with torch.no_grad():
            m.log_scale.fill_(math.log(0.35))
    scale = 0.35 if learn else 0.2
    x = torch.rand(4, 1, 32, 32)
    torch.manual_seed(1)
    terms = m.loss({"x": x})
    torch.manual_seed(1)
    out = m(x)
    # the density on [0, 1] pixels, moved to the 8-bit scale: + D log 256 per image
    ref = -Normal(out["x_mean"], scale).log_prob(x).flatten(1).sum(1).mean() + 32 * 32 * math.log(256)
    torch.testing.assert_close(terms["recon_nll"], ref)
    torch.testing.assert_close(terms["bits_per_dim"], (ref + terms["kl"]) / (32 * 32 * math.log(2)))
    assert (m.log_scale is not None) == learn


def test_beta_vae_objectives():
    x = torch.rand(4, 1, 32, 32)
    m = tiny("beta-vae", beta=3.0)
    torch.manual_seed(0)
    t = m.loss({"x": x})
    torch.testing.assert_close(t["loss"], t["recon_nll"] + 3.0 * t["kl"])
    c = tiny("beta-vae", objective="capacity", gamma=100.0, c_max=20.0, c_steps=1000)
    for step, target in [(0, 0.0), (250, 5.0), (5000, 20.0)]:
        torch.manual_seed(0)
        t = c.loss({"x": x}, step=step)
        assert float(t["capacity"]) == pytest.approx(target)
        torch.testing.assert_close(t["loss"], t["recon_nll"] + 100.0 * (t["kl"] - target).abs())
    # the capacity term is on the batch's mean KL: faces at 1 and 9 nats meet C = 5 exactly
    recon = torch.tensor([10.0, 20.0])
    out = c.objective({}, {}, recon, torch.tensor([[1.0], [9.0]]), step=250)
    torch.testing.assert_close(out["loss"].mean(), recon.mean())


def test_beta_tcvae_loss_and_dataset_size():
    m = build_model("beta-tcvae", alpha=2.0, beta=5.0, gamma=0.5, **TINY)
    x = torch.rand(6, 1, 32, 32)
    with pytest.raises(ValueError, match=r"set_dataset_size\(len\(train_set\)\)"):
        m.loss({"x": x})
    m.set_dataset_size(100)
    assert m.config.dataset_size == 100
    assert build_model("beta-tcvae", **dataclasses.asdict(m.config)).config.dataset_size == 100
    torch.manual_seed(0)
    t = m.loss({"x": x})
    torch.testing.assert_close(t["loss"], t["recon_nll"] + 2.0 * t["mi"] + 5.0 * t["tc"] + 0.5 * t["dim_kl"])
    torch.manual_seed(0)
    out = m(x)
    ref = losses.tc_decomposition(out["z"], out["mu"], out["logvar"], 100)
    for key in ("mi", "tc", "dim_kl"):
        torch.testing.assert_close(t[key], ref[key].mean())
    tiny("vae").set_dataset_size(10)  # a no-op for models without the field


def test_importance_sampling_equals_closed_form_log_px_for_linear_gaussian():
    """Replace the decoder by x = W z + b + N(0, s^2 I) (p(x) known) and the encoder by a
    proposal: the exact posterior (estimate exact for any K) and a mismatched one (converges)."""
    m = tiny("vae")
    d, n_pix, s = 6, 32 * 32, 0.5
    g = torch.Generator().manual_seed(0)
    q_, _ = torch.linalg.qr(torch.randn(n_pix, d, generator=g, dtype=torch.float64))
    w = q_ * torch.linspace(0.5, 2.0, d, dtype=torch.float64)  # orthogonal columns: diagonal posterior
    b = torch.rand(n_pix, generator=g, dtype=torch.float64)
    z_true = torch.randn(3, d, generator=g, dtype=torch.float64)
    x = (z_true @ w.T + b + s * torch.randn(3, n_pix, generator=g, dtype=torch.float64)).view(3, 1, 32, 32)
    ref = MultivariateNormal(b, w @ w.T + s**2 * torch.eye(n_pix, dtype=torch.float64)).log_prob(x.flatten(1))

    prec = 1.0 + (w * w).sum(0) / s**2  # posterior precision per latent
    post_mu = ((x.flatten(1) - b) @ w) / s**2 / prec
    post_logvar = (-prec.log()).expand_as(post_mu)
    m.log_px_given_z = lambda xx, zz: Normal(zz.double() @ w.T + b, s).log_prob(xx.flatten(1).double()).sum(1)

    m.encode = lambda xx: (post_mu, post_logvar)
    torch.testing.assert_close(m.log_likelihood_is(x, n_samples=3), ref, rtol=1e-7, atol=1e-6)

    bad_mu, bad_logvar = post_mu + 0.5 * torch.exp(0.5 * post_logvar), post_logvar + 0.7
    m.encode = lambda xx: (bad_mu, bad_logvar)
    # the ELBO of this proposal, exactly: E_q[log p(x|z)] - KL(q || p(z)) (Gaussian identities)
    var = bad_logvar.exp()
    resid = x.flatten(1) - b - bad_mu @ w.T
    exp_log_lik = (-0.5 * (resid**2).sum(1) - 0.5 * (var * (w * w).sum(0)).sum(1)) / s**2 \
        - n_pix * (math.log(s) + 0.5 * math.log(2 * math.pi))
    elbo = exp_log_lik - losses.kl_normal_std(bad_mu, bad_logvar).sum(1)
    assert torch.all(ref - elbo > 0.5)  # the proposal is poor ...
    torch.manual_seed(0)
    est = m.log_likelihood_is(x, n_samples=2000)
    assert torch.all((est - ref).abs() < 0.1 * (ref - elbo)), (est, ref, elbo)  # ... yet IS recovers log p(x)


def test_importance_sampled_log_px_is_at_least_the_elbo():
    """E[log p_IS(x)] >= ELBO (Burda et al. 2016); the gap is KL(q(z|x) || p(z|x)) and a
    briefly trained model's posterior is far from exact, so the gap is many standard errors."""
    torch.manual_seed(0)
    m = tiny("vae")
    x, _, _ = half_planes(n=8)
    opts = m.configure_optimizers(3e-3)
    for step in range(20):
        train_step(m.objectives(), {"x": x}, opts, step)
    with torch.no_grad():
        elbos = torch.stack([m.loss({"x": x})["elbo_nats"] for _ in range(50)])
        log_px = m.log_likelihood_is(x, n_samples=200)
    assert log_px.shape == (8,)
    se = elbos.std() / math.sqrt(elbos.numel())
    assert log_px.mean() > elbos.mean() + 5 * se, (float(log_px.mean()), float(elbos.mean()), float(se))


# -- ModVAE --------------------------------------------------------------------------------
def _modvae():
    return tiny("modvae", latent_dim=7, blocks={"identity": 3, "yaw": 2}).eval()  # "other" = 2 latents


def test_modvae_blocks():
    m = _modvae()
    assert m.block_of("identity") == slice(0, 3)
    assert m.block_of("yaw") == slice(3, 5)
    assert m.block_of("other") == slice(5, 7)
    assert tiny("modvae").config.blocks == {"identity": 3}  # default: half the latents
    from facelib.models import factor_blocks
    assert tiny("modvae").config.blocks == factor_blocks(TINY["latent_dim"])  # the one block policy


def test_modvae_forward_holds_clamped_latents_at_the_group_mean():
    m = _modvae()
    torch.manual_seed(0)
    x = torch.rand(9, 1, 32, 32)
    group = torch.tensor([5, 5, 5, 2, 2, 8, 8, 8, 8])
    varying = ["yaw"] * 3 + ["nuisance"] * 2 + ["other"] * 4
    out = m(x, group, varying)
    z, raw = out["z"], out["z_sampled"]
    free = {"yaw": [3, 4], "nuisance": [3, 4, 5, 6], "other": [5, 6]}
    for g in group.unique().tolist():
        rows = (group == g).nonzero().flatten()
        v = varying[int(rows[0])]
        held = [k for k in range(7) if k not in free[v]]
        ref_mean = raw[rows][:, held].mean(0)
        for r in rows:
            torch.testing.assert_close(z[r, held], ref_mean)  # clamped at the group mean
            torch.testing.assert_close(z[r, free[v]], raw[r, free[v]], rtol=0, atol=0)  # free block untouched
            assert out["clamp_mask"][r, held].all() and not out["clamp_mask"][r, free[v]].any()
    # the nuisance (identity) group shares its identity code, the rest differs between images
    assert torch.equal(z[3, :3], z[4, :3]) and not torch.equal(z[3, 3:], z[4, 3:])
    # the decoder saw the clamped codes
    torch.testing.assert_close(out["x_logits"], m.decode_logits(z))


def test_modvae_clamp_loss_matches_a_direct_computation():
    m = _modvae()
    x = torch.rand(6, 1, 32, 32)
    group = torch.tensor([0, 0, 0, 1, 1, 1])
    varying = ["yaw"] * 3 + ["nuisance"] * 3
    torch.manual_seed(3)
    t = m.loss({"x": x, "group": group, "varying": varying})
    mu, _ = m.encode(x)
    ref = 0.0
    for rows, held in [([0, 1, 2], [0, 1, 2, 5, 6]), ([3, 4, 5], [0, 1, 2])]:
        block = mu[rows][:, held]
        ref = ref + ((block - block.mean(0)) ** 2).sum()
    torch.testing.assert_close(t["clamp_mse"], ref / 6)
    torch.testing.assert_close(t["loss"], t["recon_nll"] + m.config.beta * t["kl"] + m.config.lam * t["clamp_mse"])


def test_modvae_without_groups_is_a_beta_vae():
    m = tiny("modvae", beta=2.0)
    x = torch.rand(4, 1, 32, 32)
    torch.manual_seed(0)
    t = m.loss({"x": x})
    torch.testing.assert_close(t["loss"], t["recon_nll"] + 2.0 * t["kl"])
    assert float(t["clamp_mse"]) == 0.0


def test_modvae_group_errors():
    m = _modvae()
    x = torch.rand(4, 1, 32, 32)
    with pytest.raises(ValueError, match="varying factor 'light' has no latent block"):
        m(x, torch.tensor([0, 0, 1, 1]), ["light"] * 4)
    with pytest.raises(ValueError, match="group 0 mixes varying factors"):
        m(x, torch.tensor([0, 0, 1, 1]), ["yaw", "nuisance", "yaw", "yaw"])
    with pytest.raises(ValueError, match="list of 4 factor names"):
        m(x, torch.tensor([0, 0, 1, 1]), ["yaw"] * 3)
    with pytest.raises(ValueError, match="both group and varying"):
        m(x, torch.tensor([0, 0, 1, 1]))
    no_id = tiny("modvae", blocks={"yaw": 2})
    with pytest.raises(ValueError, match="'identity' block"):
        no_id(x, torch.tensor([0, 0, 1, 1]), ["nuisance"] * 4)


# -- FactorVAE -----------------------------------------------------------------------------
def _snapshot(params):
    return [p.detach().clone() for p in params]


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_factor_vae_discriminator_step_leaves_the_vae_alone_and_vice_versa():
    torch.manual_seed(0)
    m = tiny("factor-vae", gamma=10.0)
    x, _, _ = half_planes(n=16)
    vae_params, disc_params = list(m.vae_parameters()), list(m.discriminator.parameters())
    assert len(vae_params) + len(disc_params) == len(list(m.parameters()))

    # the VAE optimizer with lr = 0: only the discriminator may move
    vae_opt, disc_opt = m.configure_optimizers(lr=0.0)
    in_vae_opt = {id(p) for g in vae_opt.param_groups for p in g["params"]}
    assert not in_vae_opt & {id(p) for p in disc_params}
    assert {id(p) for g in disc_opt.param_groups for p in g["params"]} == {id(p) for p in disc_params}
    v0, d0 = _snapshot(vae_params), _snapshot(disc_params)
    terms = train_step(m.objectives(), {"x": x}, [vae_opt, disc_opt], 0)
    assert _same(v0, _snapshot(vae_params))
    assert not _same(d0, _snapshot(disc_params))
    assert {"loss", "recon_nll", "kl", "elbo_nats", "tc_estimate", "disc_loss", "disc_acc"} <= set(terms)
    assert all(isinstance(v, float) for v in terms.values())

    # the discriminator optimizer with lr = 0: only the VAE may move
    vae_opt, disc_opt = m.configure_optimizers(lr=1e-3)
    for group in disc_opt.param_groups:
        group["lr"] = 0.0
    v0, d0 = _snapshot(vae_params), _snapshot(disc_params)
    train_step(m.objectives(), {"x": x}, [vae_opt, disc_opt], 1)
    assert not _same(v0, _snapshot(vae_params))
    assert _same(d0, _snapshot(disc_params))
    assert all(p.requires_grad for p in disc_params)  # unfrozen again after the VAE step


def test_factor_vae_tc_gradient_reaches_the_encoder_only_through_the_vae_step():
    torch.manual_seed(0)
    m = tiny("factor-vae", gamma=10.0)
    x = torch.rand(8, 1, 32, 32)
    torch.manual_seed(1)
    out = m(x)
    tc = m.discriminator(out["z"]).mean()
    grad = torch.autograd.grad(tc, m.encoder.dense[-1].weight)[0]
    assert grad.abs().sum() > 0  # the TC penalty does train the encoder
    d = m.disc_loss(out["z"])
    d["disc_loss"].backward()
    assert all(p.grad is None for p in m.encoder.parameters())  # D's loss never reaches the encoder


def test_factor_vae_wants_two_optimizers():
    m = tiny("factor-vae")
    with pytest.raises(ValueError, match="needs 2 optimizer"):
        train_step(m.objectives(), {"x": torch.rand(4, 1, 32, 32)}, m.configure_optimizers(1e-3)[:1], 0)


# -- the training step (facelib.train.train_step over model.objectives()) ---------------------------------------------------------------------
def test_non_finite_loss_changes_no_weight():
    m = tiny("vae")
    opts = m.configure_optimizers(1e-3)
    before = _snapshot(m.parameters())
    x = torch.rand(4, 1, 32, 32)
    x[0, 0, 0, 0] = float("nan")
    terms = train_step(m.objectives(), {"x": x}, opts, 0)
    assert math.isnan(terms["loss"])
    assert _same(before, _snapshot(m.parameters()))


@pytest.mark.parametrize("name", ["vae", "factor-vae"])
def test_train_step_with_grad_scaler_and_autocast(name):
    torch.manual_seed(0)
    m = tiny(name)
    opts = m.configure_optimizers(1e-3)
    scaler = torch.amp.GradScaler("cpu")
    autocast = functools.partial(torch.autocast, "cpu", dtype=torch.bfloat16)
    before = _snapshot(m.parameters())
    terms = train_step(m.objectives(), {"x": torch.rand(4, 1, 32, 32)}, opts, 0, grad_scaler=scaler, autocast=autocast)
    assert all(math.isfinite(v) for v in terms.values())
    assert not _same(before, _snapshot(m.parameters()))


# -- every model learns ----------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_each_model_overfits_64_images(name):
    """Loss falls by 45 % in 120 steps and recon beats the best latent-free model (the mean
    image) by a wide margin, so the latents carry information."""
    torch.manual_seed(0)
    if name == "modvae":
        batch = grouped_half_planes()
        m = tiny(name, blocks={"identity": 3, "offset": 1}, hidden_channels=16, hidden_dim=64)
    else:
        batch = {"x": half_planes()[0]}
        m = tiny(name, hidden_channels=16, hidden_dim=64)
    x = batch["x"]
    mean_image = x.mean(0, keepdim=True).expand_as(x)
    baseline = F.binary_cross_entropy(mean_image, x, reduction="none").flatten(1).sum(1).mean().item()
    opts = m.configure_optimizers(3e-3)
    hist = [train_step(m.objectives(), batch, opts, step) for step in range(120)]
    first = hist[0]["loss"]
    last = sum(h["loss"] for h in hist[-5:]) / 5
    recon = sum(h["recon_nll"] for h in hist[-5:]) / 5
    assert last < 0.55 * first, (first, last)
    assert recon < 0.5 * baseline, (recon, baseline)


def test_factor_blocks_split_latents_and_refuse_too_many():
    from facelib.models import factor_blocks

    factors = ["yaw", "pitch", "light_azimuth", "light_elevation", "expression"]
    assert factor_blocks(10, factors) == {"identity": 5, **{f: 1 for f in factors}}
    assert factor_blocks(32, ["identity"] + factors) == {"identity": 16, **{f: 1 for f in factors}}
    assert factor_blocks(8, ["yaw"], identity=2, per_factor=3) == {"identity": 2, "yaw": 3}
    # identity groups ("nuisance") clamp identity, which then comes first; a listed "identity" keeps its place
    assert list(factor_blocks(18, ["azimuth", "elevation", "nuisance"], identity=16).items()) == [
        ("identity", 16), ("azimuth", 1), ("elevation", 1)]
    assert list(factor_blocks(18, ["azimuth", "identity"], identity=4)) == ["azimuth", "identity"]
    blocks = factor_blocks(12, factors)
    build_model("modvae", image_size=32, latent_dim=12, blocks=blocks)  # a valid ModVAE config
    with pytest.raises(ValueError, match="latent_dim"):
        factor_blocks(4, factors)
