"""Using a trained model: embeddings, reconstructions, samples and latent traversals.

All functions run batched under `torch.inference_mode` (`refine_posterior` takes its gradient
steps on the codes alone), accept uint8 images (0..255, as `FaceDataset.images` holds them) or
float images in [0, 1], return CPU results, and leave the model's device and train/eval mode as
they found them.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch

from facelib.data.pixels import image_batch, to_float
from facelib.models import ACTIVE_KL_NATS, count_active, losses, units
from facelib.models.base import LOGVAR_RANGE, latent_dim
from facelib.utils import model_device, select_device

__all__ = ["embed", "representation", "reconstruct", "refine_posterior", "REFINE_LR", "check_refine_steps", "sample",
           "traverse", "swap_latents", "traversal_effect", "latent_spread", "held_out_terms"]


@contextlib.contextmanager
def _using(model: torch.nn.Module, device: Any) -> Iterator[torch.device]:
    """Eval mode on `device` ("auto", a device, or None = where the model is) for the block.

    The model is moved back afterwards, so a caller's model never changes device under it.
    """
    home = model_device(model)
    target = home if device is None else select_device(device)
    was_training = model.training
    model.eval()
    if target != home:
        model.to(target)
    try:
        with torch.inference_mode():
            yield target
    finally:
        if target != home:
            model.to(home)
        model.train(was_training)


def _batches(n: int, batch_size: int) -> Iterator[slice]:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


#: Adam's step size on a face's posterior mean and log-variance in `refine_posterior`.
REFINE_LR = 0.1


def check_refine_steps(refine_steps: Any) -> int:
    """`refine_steps` as an int, or a ValueError saying what it must be (every caller's one check)."""
    if isinstance(refine_steps, bool) or not isinstance(refine_steps, (int, np.integer)) or refine_steps < 0:
        raise ValueError(f"refine_steps must be a whole number of gradient steps >= 0 (0: the encoder's posterior "
                         f"as it is), got {refine_steps!r}")
    return int(refine_steps)


def refine_posterior(model: torch.nn.Module, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, steps: int,
                     lr: float = REFINE_LR, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Each face's posterior (mu, logvar) after `steps` Adam steps on its own ELBO, the decoder fixed.

    An encoder is one network guessing every face's posterior; on faces unlike its training ones
    the guess falls short of what the decoder can draw (the amortization gap, Cremer et al. 2018).
    Starting from the guess and following the gradient of -ELBO = -log p(x|z) + KL(q || N(0, I))
    (one reparameterized draw per step from `seed`) closes it per face, as semi-amortized
    inference does (Kim et al. 2018). The model's weights get no gradient and do not change.
    Each face's steps depend only on that face (Adam works elementwise; the decoder runs in eval
    mode); the draws follow the face's place in the batch, so a batch size fixes the result.
    """
    steps = check_refine_steps(steps)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a positive number (Adam's step on the codes; default {REFINE_LR}), got {lr!r}")
    if mu.shape != logvar.shape or mu.ndim != 2 or mu.shape[0] != x.shape[0]:
        raise ValueError(f"mu and logvar must both be B x latent_dim for the B = {x.shape[0]} faces of x (as "
                         f"model.encode(x) gives them), got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    if steps == 0:
        return mu, logvar
    generator = torch.Generator(device=x.device).manual_seed(int(seed))
    was_training = model.training
    model.eval()  # batch norm on its running statistics, which stay as they are
    try:
        return _refine(model, x, mu, logvar, steps, float(lr), generator)
    finally:
        model.train(was_training)


def _refine(model, x, mu, logvar, steps: int, lr: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.inference_mode(False), torch.enable_grad():
        x = x.clone()
        mu = mu.detach().clone().float().requires_grad_(True)
        logvar = logvar.detach().clone().float().requires_grad_(True)
        optimizer = torch.optim.Adam([mu, logvar], lr=lr)
        for _ in range(steps):
            eps = torch.randn(mu.shape, generator=generator, device=mu.device)
            z = mu + torch.exp(0.5 * logvar) * eps
            loss = (model.recon_nll(model.decode_logits(z), x) + losses.kl_normal_std(mu, logvar).sum(1)).sum()
            grad_mu, grad_logvar = torch.autograd.grad(loss, [mu, logvar])
            mu.grad, logvar.grad = grad_mu, grad_logvar
            optimizer.step()
            with torch.no_grad():
                logvar.clamp_(*LOGVAR_RANGE)
    return mu.detach(), logvar.detach()


def _encode_all(model, images: torch.Tensor, batch_size: int, device,
                refine_steps: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    refine_steps = check_refine_steps(refine_steps)
    mus, logvars = [], []
    with _using(model, device) as dev:
        for sl in _batches(images.shape[0], batch_size):
            x = to_float(images[sl], dev)
            mu, logvar = refine_posterior(model, x, *model.encode(x), refine_steps)
            mus.append(mu.float().cpu())
            logvars.append(logvar.float().cpu())
    d = latent_dim(model)
    if not mus:
        return torch.empty(0, d), torch.empty(0, d)
    return torch.cat(mus), torch.cat(logvars)


def embed(model: torch.nn.Module, dataset: Any, batch_size: int = 256, device: Any = "auto",
          refine_steps: int = 0) -> pd.DataFrame:
    """Posterior means and log-variances of every image of `dataset`, one row per image.

    Columns mu_0..mu_{d-1}, logvar_0..logvar_{d-1}, identity (-1 unknown) and index
    (row in the data set), so pandas/statsmodels code reads the latents directly.
    `refine_steps` > 0: each posterior refined on its own face first (`refine_posterior`).
    """
    images = image_batch(dataset)
    n = images.shape[0]
    mu, logvar = _encode_all(model, images, batch_size, device, refine_steps)
    d = mu.shape[1]
    frame = pd.DataFrame(
        np.concatenate([mu.numpy(), logvar.numpy()], axis=1),
        columns=[f"mu_{i}" for i in range(d)] + [f"logvar_{i}" for i in range(d)],
    )
    identity = getattr(dataset, "identity", None)
    frame["identity"] = np.asarray(identity, dtype=np.int64) if identity is not None else np.full(n, -1, np.int64)
    frame["index"] = np.arange(n, dtype=np.int64)
    return frame


def representation(model: torch.nn.Module, batch_size: int = 256, device: Any = None,
                   refine_steps: int = 0) -> Callable[[Any], np.ndarray]:
    """The model as a representation: images (uint8 N x C x H x W) -> posterior means (N, d).

    This is the callable the disentanglement metrics and the verification code take; they
    call it many times, so by default it runs where the model already is (device=None)
    rather than moving the model for every call. `refine_steps` as in `embed`.
    """
    refine_steps = check_refine_steps(refine_steps)

    def represent(images: Any) -> np.ndarray:
        mu, _ = _encode_all(model, image_batch(images), batch_size, device, refine_steps)
        return mu.numpy()

    refined = f"_refined_{refine_steps}" if refine_steps else ""
    represent.__name__ = f"{getattr(model, 'name', type(model).__name__)}_posterior_mean{refined}"
    return represent


def reconstruct(model: torch.nn.Module, images: Any, batch_size: int = 256, device: Any = "auto",
                refine_steps: int = 0) -> torch.Tensor:
    """Decoded posterior means (float in [0, 1], same shape as `images`), deterministic.

    `refine_steps` > 0: each face's posterior is first refined on that face (`refine_posterior`),
    which recovers what the encoder misses on faces unlike its training ones."""
    images = image_batch(images)
    refine_steps = check_refine_steps(refine_steps)
    out = []
    with _using(model, device) as dev:
        for sl in _batches(images.shape[0], batch_size):
            x = to_float(images[sl], dev)
            mu, _ = refine_posterior(model, x, *model.encode(x), refine_steps)
            out.append(model.decode(mu).float().cpu())
    return torch.cat(out) if out else torch.empty(0, *images.shape[1:])


def _decode_all(model, z: torch.Tensor, batch_size: int, device) -> torch.Tensor:
    out = []
    with _using(model, device) as dev:
        for sl in _batches(z.shape[0], batch_size):
            out.append(model.decode(z[sl].to(dev)).float().cpu())
    return torch.cat(out)


def sample(model: torch.nn.Module, n: int, seed: int = 0, batch_size: int = 256, device: Any = "auto",
           source: str = "prior", density: str = "mixture") -> torch.Tensor:
    """`n` images (float in [0, 1]) decoded from latent draws; same seed, same images.

    `source="prior"`: z ~ N(0, I). `source="aggregate"`: z from the density fitted to the model's
    training codes (`model.aggregate_posterior`, a `models.AggregatePosterior`; zoo models carry
    one): its `density` "mixture" (default) or "gaussian" - where the faces' codes are, not the
    prior's centre."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if source == "prior":
        z = torch.randn(n, latent_dim(model), generator=torch.Generator().manual_seed(seed))
    elif source == "aggregate":
        fitted = getattr(model, "aggregate_posterior", None)
        if fitted is None:
            raise ValueError("source='aggregate' draws from the density of the model's training codes, and this "
                             "model has none: fit one (model.aggregate_posterior = models.AggregatePosterior.fit("
                             "train.representation(model)(training_images))), load a zoo model, or use source='prior'")
        if fitted.latent_dim != latent_dim(model):
            raise ValueError(f"the aggregate posterior has {fitted.latent_dim} latents, the model "
                             f"{latent_dim(model)}: it was fitted to another model")
        z = torch.as_tensor(fitted.sample(n, seed=seed, density=density), dtype=torch.float32)
    else:
        raise ValueError(f"source must be 'prior' or 'aggregate', got {source!r}")
    return _decode_all(model, z, batch_size, device)


def swap_latents(model: torch.nn.Module, base: Any, donors: Any, dims: slice | Sequence[int],
                 batch_size: int = 256, device: Any = "auto") -> torch.Tensor:
    """Each base image decoded with latents `dims` taken from each donor image (posterior means):
    len(base) x len(donors) x C x H x W. With a ModVAE block (`model.block_of("light")`), row i
    column j shows base face i under donor j's light: what DC-IGN's clamped blocks are for."""
    base, donors = image_batch(base), image_batch(donors)
    d = latent_dim(model)
    where = torch.zeros(d, dtype=torch.bool)
    where[dims] = True
    if not where.any():
        raise ValueError(f"dims select no latent of the model's {d}; give a block slice or latent indices")
    zb = _encode_all(model, base, batch_size, device)[0].float()
    zd = _encode_all(model, donors, batch_size, device)[0].float()
    codes = torch.where(where, zd[None, :, :], zb[:, None, :])
    images = _decode_all(model, codes.reshape(-1, d), batch_size, device)
    return images.reshape(zb.shape[0], zd.shape[0], *images.shape[1:])


def traverse(model: torch.nn.Module, z: Any, dim: int, values: Sequence[float] | torch.Tensor,
             batch_size: int = 256, device: Any = "auto") -> torch.Tensor:
    """Decode `z` with latent `dim` set to each of `values`.

    z of shape (d,) gives len(values) x C x H x W; z of shape (B, d) gives
    B x len(values) x C x H x W (row b: traversal of code b).
    """
    d = latent_dim(model)
    z = torch.as_tensor(z, dtype=torch.float32).detach().cpu()
    single = z.ndim == 1
    if single:
        z = z[None]
    if z.ndim != 2 or z.shape[1] != d:
        raise ValueError(f"z must have shape ({d},) or (B, {d}), got {tuple(z.shape)}")
    if not isinstance(dim, int) or not -d <= dim < d:
        raise ValueError(f"dim must be an integer latent index in [0, {d}), got {dim!r}")
    values = torch.as_tensor(values, dtype=torch.float32).reshape(-1)
    if values.numel() == 0:
        raise ValueError("values must hold at least one latent value")
    b, k = z.shape[0], values.numel()
    codes = z[:, None, :].repeat(1, k, 1)
    codes[:, :, dim] = values[None, :]
    images = _decode_all(model, codes.reshape(b * k, d), batch_size, device)
    images = images.reshape(b, k, *images.shape[1:])
    return images[0] if single else images


def latent_spread(model: torch.nn.Module, images: Any, batch_size: int = 256, device: Any = "auto") -> np.ndarray:
    """Each latent's spread over the data: the standard deviation of the posterior means of
    `images` (shape (latent_dim,)). The unit in which a traversal moves as far as faces differ:
    a face's own posterior is often far narrower, and the aggregate of the codes wider than the
    N(0, I) prior, so neither of those units shows how the data vary."""
    x = image_batch(images)
    if x.shape[0] < 2:
        raise ValueError(f"latent_spread needs at least 2 faces to measure a spread, got {x.shape[0]}")
    mu, _ = _encode_all(model, x, batch_size, device)
    return mu.double().std(0).float().numpy()


def traversal_effect(model: torch.nn.Module, images: Any, dims: Sequence[int] | None = None, span: float = 2.0,
                     batch_size: int = 256, device: Any = "auto") -> np.ndarray:
    """How much each latent changes the decoded faces: the mean absolute pixel change (on the [0, 1]
    scale) between decoding each image's posterior mean with latent k at -span and at +span (prior
    standard deviations), per latent in `dims` (default all). A latent the decoder ignores scores
    0, so this is what a KL ordering of the latents claims to predict, measured on the pictures."""
    d = latent_dim(model)
    dims = list(range(d)) if dims is None else [int(k) for k in dims]
    if not span > 0:
        raise ValueError(f"span must be a positive number of prior standard deviations, got {span!r}")
    mu, _ = _encode_all(model, image_batch(images), batch_size, device)
    out = []
    for k in dims:
        pair = traverse(model, mu, k, [-float(span), float(span)], batch_size=batch_size, device=device)
        out.append(float((pair[:, 1] - pair[:, 0]).abs().mean()))
    return np.asarray(out)


def held_out_terms(model: torch.nn.Module, images: Any, batch_size: int = 256, seed: int = 0,
                   device: Any = "auto") -> dict[str, float]:
    """The loss terms of a model on images it did not train on, averaged per image: the
    distortion `recon_nll` and the rate `kl` (nats/image, 8-bit scale), `elbo_nats` (higher is
    better), `bits_per_dim` (lower is better) and `active_latents` (mean KL > ACTIVE_KL_NATS).

    The posterior draws come from `seed`, so the same call gives the same figures; the
    notebooks' tables of a sweep, a run's model and a zoo model are made by this one function.
    """
    images = image_batch(images)
    n = int(images.shape[0])
    if n == 0:
        raise ValueError("held_out_terms needs at least one image")
    sums = {"recon_nll": 0.0, "kl": 0.0}
    kl_dims = torch.zeros(latent_dim(model), dtype=torch.float64)
    with _using(model, device) as dev, torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        for sl in _batches(n, batch_size):
            x = to_float(images[sl], dev)
            terms = model.loss({"x": x})
            m = x.shape[0]
            for k in sums:
                sums[k] += float(terms[k]) * m
            kl_dims += model.kl_per_dim(x).double().cpu() * m
    recon, kl = sums["recon_nll"] / n, sums["kl"] / n
    elbo = -(recon + kl)
    return {"recon_nll": recon, "kl": kl, "elbo_nats": elbo, "bits_per_dim": units.bits_per_dim(elbo, model.n_dims),
            "active_latents": count_active((kl_dims / n).numpy(), ACTIVE_KL_NATS)}
