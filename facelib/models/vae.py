"""`vae`: the plain VAE of Kingma & Welling (2013): minimise recon + KL (the negative ELBO)."""

from __future__ import annotations

from dataclasses import dataclass

from facelib.models.base import BaseVAE, ModelConfig, register

__all__ = ["VAEConfig", "VAE"]


@dataclass
class VAEConfig(ModelConfig):
    """The shared fields only (see `ModelConfig`)."""


@register
class VAE(BaseVAE):
    """Kingma & Welling (2013): loss = recon + KL, per image."""

    name = "vae"
    config_class = VAEConfig
