"""`factor-vae`: Kim & Mnih (2018), "Disentangling by factorising".

VAE loss = recon + KL + gamma * TC, with TC estimated by a discriminator D that tells codes
z ~ q(z) ("real") from codes with each dimension shuffled across the batch ("fake",
`permute_dims`, a sample of prod_d q(z_d)). D outputs one logit for "real", so
TC ~= E[log D/(1-D)] = mean logit over real codes ("tc_estimate").

D is an MLP with LeakyReLU(0.2). The paper uses 6 layers of 1000 units
(``disc_hidden=[1000] * 5``, i.e. 5 hidden layers plus the output); the default here,
3 x 256, trains about 20 times faster and is enough for 10-32 latents.

Two optimizers (``configure_optimizers(lr)``: Adam on the VAE, Adam(disc_lr, disc_betas)
on D, the paper's 1e-4 and (0.5, 0.9)). `training_step` does, in order:
  1. VAE step: D's weights are frozen (requires_grad off) while the VAE loss is built, so
     its backward reaches only the VAE and only the VAE optimizer steps;
  2. D step: on the same batch's codes, detached, so the VAE gets no gradient; real =
     z, fake = permute_dims(z). (The paper draws a second batch for the fake codes; we
     permute the same batch, as common reimplementations do, saving an encoder pass.)
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facelib.models import losses
from facelib.models.base import (
    BaseVAE, ModelConfig, _as_list, _backward_step, _check_int, _check_weight, _to_floats, adam, register,
)

__all__ = ["FactorVAEConfig", "FactorVAE", "Discriminator"]


@dataclass
class FactorVAEConfig(ModelConfig):
    """gamma: TC weight (6.4 is the paper's dSprites value); disc_hidden: D's hidden widths;
    disc_lr, disc_betas: D's Adam settings."""

    gamma: float = 6.4
    disc_hidden: list | None = None
    disc_lr: float = 1e-4
    disc_betas: list | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_weight("gamma", self.gamma)
        self.gamma = float(self.gamma)
        if self.disc_hidden is None:
            self.disc_hidden = [256, 256, 256]
        self.disc_hidden = list(self.disc_hidden)
        for i, h in enumerate(self.disc_hidden):
            _check_int(f"disc_hidden[{i}]", h, lo=1)
        if isinstance(self.disc_lr, bool) or not isinstance(self.disc_lr, (int, float)) or not self.disc_lr > 0:
            raise ValueError(f"disc_lr must be a positive number, got {self.disc_lr!r}")
        self.disc_lr = float(self.disc_lr)
        if self.disc_betas is None:
            self.disc_betas = [0.5, 0.9]
        betas = list(self.disc_betas)
        if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
            raise ValueError(f"disc_betas must be two numbers in [0, 1), got {self.disc_betas!r}")
        self.disc_betas = [float(b) for b in betas]


class Discriminator(nn.Module):
    """MLP latent_dim -> hidden... -> 1 logit (of the "real", q(z), class)."""

    def __init__(self, latent_dim: int, hidden: list[int]):
        super().__init__()
        layers: list[nn.Module] = []
        d = latent_dim
        for h in hidden:
            layers += [nn.Linear(d, h), nn.LeakyReLU(0.2, inplace=True)]
            d = h
        layers.append(nn.Linear(d, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).squeeze(-1)


@contextlib.contextmanager
def _frozen(module: nn.Module):
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(module.parameters(), flags):
            p.requires_grad_(f)


@register
class FactorVAE(BaseVAE):
    """FactorVAE; extras "tc_estimate" (and "disc_loss", "disc_acc" from `training_step`)."""

    name = "factor-vae"
    config_class = FactorVAEConfig

    def __init__(self, config: FactorVAEConfig | None = None, **fields: Any):
        super().__init__(config, **fields)
        self.discriminator = Discriminator(self.config.latent_dim, self.config.disc_hidden)

    def vae_parameters(self):
        return (p for name, p in self.named_parameters() if not name.startswith("discriminator."))

    def configure_optimizers(self, lr: float = 1e-4, weight_decay: float = 0.0) -> list[torch.optim.Optimizer]:
        """[VAE Adam(lr) (AdamW with `weight_decay`), discriminator Adam(disc_lr, disc_betas)], the
        order `training_step` expects."""
        c = self.config
        return [
            adam(self.vae_parameters(), lr, weight_decay),
            torch.optim.Adam(self.discriminator.parameters(), lr=c.disc_lr, betas=tuple(c.disc_betas)),
        ]

    def objective(self, batch, out, recon, kl_dims, step):
        tc = self.discriminator(out["z"]).float()
        return {"loss": recon + kl_dims.sum(1) + self.config.gamma * tc, "tc_estimate": tc}

    def disc_loss(self, z: torch.Tensor, z_other: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Discriminator loss on detached codes: BCE(D(z), real) + BCE(D(permute_dims(z')), fake).

        z' defaults to z. Returns "disc_loss" (mean of the two class losses) and "disc_acc".
        """
        z = z.detach()
        fake = losses.permute_dims((z if z_other is None else z_other).detach())
        logit_real = self.discriminator(z).float()
        logit_fake = self.discriminator(fake).float()
        loss = 0.5 * (F.binary_cross_entropy_with_logits(logit_real, torch.ones_like(logit_real))
                      + F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake)))
        acc = 0.5 * ((logit_real > 0).float().mean() + (logit_fake < 0).float().mean())
        return {"disc_loss": loss, "disc_acc": acc}

    def vae_terms(self, batch: dict[str, Any], step: int = 0) -> dict[str, torch.Tensor]:
        """The VAE loss terms with D frozen, plus the codes "z" (for the discriminator step)."""
        with _frozen(self.discriminator):
            x = self._batch_x(batch)
            out = self.forward(x)
            batch = {**batch, "x": x} if isinstance(batch, dict) else {"x": x}
            return {**self.terms(batch, x, out, step), "z": out["z"]}

    def training_step(self, batch, optimizers, step=0, grad_scaler=None, autocast=None, max_grad_norm=None):
        """VAE step then discriminator step (see the module docstring); floats out. When the VAE
        loss is not finite neither network steps (the discriminator's terms are still reported)."""
        vae_opt, disc_opt = _as_list(optimizers, 2, self.name)
        ctx = autocast if autocast is not None else contextlib.nullcontext
        vae_opt.zero_grad(set_to_none=True)
        with ctx():
            terms = self.through("vae_terms", batch, step)
        z = terms.pop("z")
        stepped = self.all_finite(terms["loss"]) and _backward_step(terms["loss"], vae_opt, grad_scaler,
                                                                     max_grad_norm, terms)
        disc_opt.zero_grad(set_to_none=True)
        if stepped:
            with ctx():
                terms.update(self.through("disc_loss", z))
            if self.all_finite(terms["disc_loss"]):
                _backward_step(terms["disc_loss"], disc_opt, grad_scaler, max_grad_norm)
        else:
            with ctx(), torch.no_grad():
                terms.update(self.disc_loss(z))
        if grad_scaler is not None and stepped:  # update() needs the inf checks of a step taken
            grad_scaler.update()
        return _to_floats(terms)
