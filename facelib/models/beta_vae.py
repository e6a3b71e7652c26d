"""`beta-vae`: Higgins et al. (2017) and the capacity variant of Burgess et al. (2018).

objective="beta":     loss = recon + beta * KL
objective="capacity": loss = recon + gamma * |KL - C(step)| (KL: the batch mean), C raised linearly from 0 to
                      c_max nats over c_steps training steps, then held (reported as "capacity").
The other objective's weights are kept in the config but unused, so one dataclass round-trips.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from facelib.models import losses
from facelib.models.base import BaseVAE, ModelConfig, _check_int, _check_weight, register

__all__ = ["BetaVAEConfig", "BetaVAE"]

OBJECTIVES = ("beta", "capacity")


@dataclass
class BetaVAEConfig(ModelConfig):
    """beta: KL weight (Higgins et al.; 4 is a common face setting). gamma, c_max (nats),
    c_steps: the capacity objective (Burgess et al. used gamma=1000, c_max=25 on dSprites)."""

    beta: float = 4.0
    objective: str = "beta"
    gamma: float = 1000.0
    c_max: float = 25.0
    c_steps: int = 100_000

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_weight("beta", self.beta)
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {list(OBJECTIVES)}, got {self.objective!r}")
        _check_weight("gamma", self.gamma)
        _check_weight("c_max", self.c_max)
        _check_int("c_steps", self.c_steps, lo=1)
        self.beta, self.gamma, self.c_max = float(self.beta), float(self.gamma), float(self.c_max)


@register
class BetaVAE(BaseVAE):
    """beta-VAE; see the module docstring for the two objectives."""

    name = "beta-vae"
    config_class = BetaVAEConfig

    def objective(self, batch, out, recon, kl_dims, step):
        c = self.config
        kl = kl_dims.sum(1)
        if c.objective == "beta":
            return {"loss": recon + c.beta * kl}
        target = losses.capacity(step, c.c_max, c.c_steps)
        # |E[KL] - C| on the batch's mean KL, as Burgess et al. write it: a per-image |KL_i - C|
        # would press every face to the same KL, which a constant, uninformative code satisfies
        return {"loss": recon + c.gamma * (kl.mean() - target).abs().expand_as(recon),
                "capacity": torch.tensor(target, device=recon.device)}
