"""The VAE family, by name.

``build_model("beta-vae", beta=4, latent_dim=10, image_size=64)`` or
``build_model(config)``; `MODELS` maps names to classes and `CONFIGS` to their dataclass
configs. Names: "vae", "beta-vae", "modvae", "beta-tcvae", "factor-vae". The encoder/decoder
pair is chosen by name (`architecture="small"` or `"resnet"`); `register_architecture` adds a
user's own pair, which checkpoints then name without storing code.
`BaseVAE.objectives()` are the losses the trainer minimises (`Objective`: one per optimizer).
`units` says what the likelihood numbers mean (8-bit scale, signs); `count_active` counts
the latents whose KL exceeds `ACTIVE_KL_NATS`.
"""

from __future__ import annotations

from facelib.models import units
from facelib.models.architectures import ARCHITECTURES, register_architecture
from facelib.models.activity import ACTIVE_KL_NATS, active_latents, count_active
from facelib.models.base import (CONFIGS, MODELS, BaseVAE, ModelConfig, Objective, build_model, latent_dim, register,
                                 unregister)
from facelib.models.beta_tcvae import BetaTCVAE, BetaTCVAEConfig
from facelib.models.density import AggregatePosterior
from facelib.models.beta_vae import BetaVAE, BetaVAEConfig
from facelib.models.factor_vae import FactorVAE, FactorVAEConfig
from facelib.models.modvae import ModVAE, ModVAEConfig, factor_blocks
from facelib.models.vae import VAE, VAEConfig

__all__ = [
    "register", "unregister", "AggregatePosterior",
    "MODELS", "CONFIGS", "build_model", "BaseVAE", "ModelConfig", "Objective", "latent_dim",
    "VAE", "VAEConfig", "BetaVAE", "BetaVAEConfig", "ModVAE", "ModVAEConfig", "factor_blocks",
    "BetaTCVAE", "BetaTCVAEConfig", "FactorVAE", "FactorVAEConfig",
    "ARCHITECTURES", "register_architecture",
    "units", "ACTIVE_KL_NATS", "active_latents", "count_active",
]
