"""`beta-tcvae`: Chen et al. (2018), "Isolating sources of disentanglement in VAEs".

loss = recon + alpha * MI + beta * TC + gamma * dimension-wise KL, each term estimated with
minibatch-weighted sampling, which needs the training-set size N: set `dataset_size` in
the config, or call `model.set_dataset_size(len(train_set))` (facelib.train.fit does so
when the config leaves it None; the value is then stored with the checkpoint). The
reported "kl" stays the closed-form KL, so "elbo_nats" is comparable across models.
"""

from __future__ import annotations

from dataclasses import dataclass

from facelib.models import losses
from facelib.models.base import BaseVAE, ModelConfig, _check_int, _check_weight, register

__all__ = ["BetaTCVAEConfig", "BetaTCVAE"]


@dataclass
class BetaTCVAEConfig(ModelConfig):
    """alpha, beta, gamma: weights of MI, TC and dimension-wise KL (paper: 1, 6, 1);
    dataset_size: N for minibatch-weighted sampling (None until the trainer sets it)."""

    alpha: float = 1.0
    beta: float = 6.0
    gamma: float = 1.0
    dataset_size: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("alpha", "beta", "gamma"):
            _check_weight(name, getattr(self, name))
            setattr(self, name, float(getattr(self, name)))
        if self.dataset_size is not None:
            _check_int("dataset_size", self.dataset_size, lo=1)


@register
class BetaTCVAE(BaseVAE):
    """beta-TCVAE with minibatch-weighted sampling; extras "mi", "tc", "dim_kl"."""

    name = "beta-tcvae"
    config_class = BetaTCVAEConfig

    def objective(self, batch, out, recon, kl_dims, step):
        c = self.config
        if c.dataset_size is None:
            raise ValueError(
                "beta-tcvae needs the training-set size for minibatch-weighted sampling: pass "
                "dataset_size=... to build_model or call model.set_dataset_size(len(train_set)) "
                "(facelib.train.fit does this for you)"
            )
        # N >= M always (a validation batch may exceed a tiny training set).
        n = max(c.dataset_size, out["z"].shape[0])
        parts = losses.tc_decomposition(out["z"], out["mu"], out["logvar"], n)
        loss = recon + c.alpha * parts["mi"] + c.beta * parts["tc"] + c.gamma * parts["dim_kl"]
        return {"loss": loss, **parts}
