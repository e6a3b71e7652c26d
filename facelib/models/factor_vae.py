"""`factor-vae`: Kim & Mnih (2018), "Disentangling by factorising".

VAE loss = recon + KL + gamma * TC, with TC estimated by a discriminator D that tells codes
z ~ q(z) ("real") from codes with each dimension shuffled across the batch ("fake",
`permute_dims`, a sample of prod_d q(z_d)). D outputs one logit for "real", so
TC ~= E[log D/(1-D)] = mean logit over real codes ("tc_estimate").

D is an MLP with LeakyReLU(0.2). The paper uses 6 layers of 1000 units
(``disc_hidden=[1000] * 5``, i.e. 5 hidden layers plus the output); the default here,
3 x 256, trains about 20 times faster and is enough for 10-32 latents.

Two objectives (`objectives()`) with an optimizer each (``configure_optimizers(lr)``: Adam on
the VAE, Adam(disc_lr, disc_betas) on D, the paper's 1e-4 and (0.5, 0.9)), which the trainer
steps in order:
  1. the VAE (`vae_terms`): D's weights are frozen (requires_grad off) while the VAE loss is
     built, so its backward reaches only the VAE and only the VAE optimizer steps;
  2. D (`disc_terms`, an objective around D alone, so data-parallel training wraps D on its
     own): on the same batch's codes, detached, so the VAE gets no gradient; real = z,
     fake = permute_dims(z). (The paper draws a second batch for the fake codes; we permute
     the same batch, as common reimplementations do, saving an encoder pass.)
When the VAE loss is not finite, neither steps (the trainer's rule for every model).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facelib.models import losses
from facelib.models.base import BaseVAE, ModelConfig, Objective, _check_int, _check_weight, adam, register

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
    """FactorVAE; extras "tc_estimate" (and "disc_loss", "disc_acc" from the discriminator's objective)."""

    name = "factor-vae"
    config_class = FactorVAEConfig

    def __init__(self, config: FactorVAEConfig | None = None, **fields: Any):
        super().__init__(config, **fields)
        self.discriminator = Discriminator(self.config.latent_dim, self.config.disc_hidden)

    def vae_parameters(self):
        return (p for name, p in self.named_parameters() if not name.startswith("discriminator."))

    def configure_optimizers(self, lr: float = 1e-4, weight_decay: float = 0.0) -> list[torch.optim.Optimizer]:
        """[VAE Adam(lr) (AdamW with `weight_decay`), discriminator Adam(disc_lr, disc_betas)], the
        order of `objectives`."""
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

    def disc_terms(self, batch: dict[str, Any], step: int = 0) -> dict[str, torch.Tensor]:
        """`disc_loss` on the codes the VAE objective handed on in `batch["z"]`."""
        return self.disc_loss(batch["z"])

    def objectives(self) -> list[Objective]:
        """The VAE's loss (with the codes "z" for D), then D's on its own."""
        return [Objective(self, self.vae_terms), Objective(self.discriminator, self.disc_terms, minimises="disc_loss")]
