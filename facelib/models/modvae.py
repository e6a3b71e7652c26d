"""`modvae`: grouped training after DC-IGN (Kulkarni et al. 2015), the original project's model.

Latents are split into named blocks in `blocks` order (e.g. {"identity": 16, "yaw": 2}); the
remaining latents form the block "other". A grouped batch carries `group` (long, B) and
`varying` (B strings): inside a group every image shares all factors but `varying`.

For each group the encoder's samples z are averaged, and every latent OUTSIDE the varying
factor's block is replaced by the group mean before decoding, so only that block can
explain what changes within the group. `varying="nuisance"` marks identity groups (all
images of one person): then only the "identity" block is held at the group mean and every
other block, "other" included, stays free. `varying="other"` frees the "other" block.

The clamp term adds lam * sum over clamped latents of (mu - group mean of mu)^2 per image
(summed, like the KL, so lam is on the scale of the per-image recon). The group mean is not
detached: the gradient of sum_i (mu_i - mean)^2 is the same either way, because the
deviations from a mean sum to zero.

Batches without `group` (plain data) train it as a beta-VAE (loss = recon + beta KL), so
the same model can be pre-trained or evaluated on ungrouped sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from facelib.models import losses
from facelib.models.base import BaseVAE, ModelConfig, _check_int, _check_weight, register

__all__ = ["ModVAEConfig", "ModVAE", "NUISANCE", "OTHER", "factor_blocks"]

NUISANCE = "nuisance"
OTHER = "other"


def factor_blocks(latent_dim: int, factors: list[str] | tuple[str, ...] = (), identity: int | None = None,
                  per_factor: int = 1) -> dict[str, int]:
    """ModVAE's one block policy: which latents each factor gets.

    "identity" (also what identity groups, `"nuisance"`, clamp) gets `identity` latents, by
    default half of them; every other factor `per_factor` (one, as DC-IGN gives each extrinsic
    factor one latent); what is left is the free "other" block. Blocks follow the order of
    `factors`; identity comes first unless it is listed there itself. The config default (`blocks=None`), the
    blocks `experiment` derives from the factors a data set's groups vary, the notebooks and the
    zoo all come from here. Raises when the blocks need more latents than `latent_dim`.
    """
    _check_int("latent_dim", latent_dim, lo=1)
    _check_int("per_factor", per_factor, lo=1)
    names = list(dict.fromkeys(str(f) for f in factors if str(f) != NUISANCE))  # once each, in order
    if "identity" not in names:
        names.insert(0, "identity")
    id_size = max(1, latent_dim // 2) if identity is None else identity
    _check_int("identity", id_size, lo=1)
    blocks = {n: (id_size if n == "identity" else per_factor) for n in names}
    if sum(blocks.values()) > latent_dim:
        raise ValueError(f"ModVAE blocks {blocks} need {sum(blocks.values())} latents, more than "
                         f"latent_dim={latent_dim}; raise latent_dim, give fewer identity latents or fewer factors")
    return blocks


@dataclass
class ModVAEConfig(ModelConfig):
    """blocks: factor name -> number of latents, in latent order (None: `factor_blocks(latent_dim)`,
    half the latents for identity); lam: weight of the clamp term; beta: KL weight."""

    blocks: dict | None = None
    lam: float = 1.0
    beta: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.blocks is None:
            self.blocks = factor_blocks(self.latent_dim)
        if not isinstance(self.blocks, dict) or not self.blocks:
            raise ValueError(f"blocks must be a non-empty dict factor name -> number of latents, got {self.blocks!r}")
        blocks = {}
        for key, size in self.blocks.items():
            if not isinstance(key, str) or key in (NUISANCE, OTHER):
                raise ValueError(f"block names must be strings other than {NUISANCE!r} and {OTHER!r}, got {key!r}")
            _check_int(f"blocks[{key!r}]", size, lo=1)
            blocks[key] = int(size)
        total = sum(blocks.values())
        if total > self.latent_dim:
            raise ValueError(
                f"blocks use {total} latents but latent_dim is {self.latent_dim}; "
                "shrink the blocks or raise latent_dim"
            )
        self.blocks = blocks
        _check_weight("lam", self.lam)
        _check_weight("beta", self.beta)
        self.lam, self.beta = float(self.lam), float(self.beta)


@register
class ModVAE(BaseVAE):
    """Grouped (DC-IGN style) VAE; extras "clamp_mse" and "clamped_fraction"."""

    name = "modvae"
    config_class = ModVAEConfig
    trains_on_groups = True

    def __init__(self, config: ModVAEConfig | None = None, **fields: Any):
        super().__init__(config, **fields)
        d = self.config.latent_dim
        self.block_slices: dict[str, slice] = {}
        start = 0
        for key, size in self.config.blocks.items():
            self.block_slices[key] = slice(start, start + size)
            start += size
        self.block_slices[OTHER] = slice(start, d)
        # Row k of the table: which latents are held at the group mean when factor k varies.
        names = list(self.block_slices) + [NUISANCE]
        table = torch.ones(len(names), d, dtype=torch.bool)
        for k, key in enumerate(names[:-1]):
            table[k, self.block_slices[key]] = False
        table[-1] = False
        if "identity" in self.block_slices:
            table[-1, self.block_slices["identity"]] = True
        self._varying_names = names
        self.register_buffer("_mask_table", table, persistent=False)

    @classmethod
    def options_for_data(cls, options: dict[str, Any], data: Any) -> dict[str, Any]:
        """Without `blocks`, the blocks `factor_blocks` gives the factors the data's groups vary
        (identity groups clamp "identity"); `identity_latents` (an option of this step, not of
        the config) sizes the identity block."""
        options = dict(options)
        identity = options.pop("identity_latents", None)
        if "blocks" not in options or options["blocks"] is None:
            varying = getattr(data, "group_varying", None)
            factors = [] if varying is None else [str(v) for v in np.unique(np.asarray(varying))]
            options["blocks"] = factor_blocks(int(options.get("latent_dim", cls.config_class.latent_dim)), factors,
                                              identity=identity)
        return options

    def latent_names(self) -> list[str]:
        """Each latent's block ("yaw", "identity0", ...; "other" for the free latents)."""
        names = [""] * self.config.latent_dim
        for key, sl in self.block_slices.items():
            for j, k in enumerate(range(sl.start, sl.stop)):
                names[k] = key if sl.stop - sl.start == 1 else f"{key}{j}"
        return names

    def block_of(self, name: str) -> slice:
        """Latent positions of a block ("other" included)."""
        return self.block_slices[name]

    def clamp_mask(self, varying: list[str] | tuple[str, ...], device: Any = None) -> torch.Tensor:
        """(B, latent_dim) bool: True where a latent is held at its group mean."""
        index = []
        for v in varying:
            v = str(v)
            if v not in self._varying_names:
                raise ValueError(
                    f"varying factor {v!r} has no latent block; blocks are {list(self.config.blocks)} "
                    f"(plus {OTHER!r} and {NUISANCE!r} for identity groups); add it to blocks"
                )
            if v == NUISANCE and "identity" not in self.config.blocks:
                raise ValueError("'nuisance' (identity) groups need an 'identity' block in blocks")
            index.append(self._varying_names.index(v))
        idx = torch.tensor(index, dtype=torch.long, device=self._mask_table.device)
        mask = self._mask_table[idx]
        return mask if device is None else mask.to(device)

    def _check_groups(self, values: torch.Tensor, group: torch.Tensor, varying: Any) -> torch.Tensor:
        b = values.shape[0]
        group = torch.as_tensor(group, device=values.device)
        if group.shape != (b,) or group.is_floating_point():
            raise ValueError(f"group must be an integer tensor of shape ({b},), got {tuple(group.shape)} {group.dtype}")
        if isinstance(varying, str) or len(varying) != b:
            raise ValueError(f"varying must be a list of {b} factor names (one per image), got {varying!r}")
        # one varying factor per group, checked without a per-image Python loop
        names, codes = np.unique(np.asarray(varying, dtype=str), return_inverse=True)
        g = group.detach().cpu().numpy()
        pairs = np.unique(np.stack([g, codes.reshape(-1)], axis=1), axis=0)
        groups, counts = np.unique(pairs[:, 0], return_counts=True)
        if (counts > 1).any():
            bad = groups[counts > 1][0]
            mixed = names[pairs[pairs[:, 0] == bad, 1]].tolist()
            raise ValueError(f"group {bad} mixes varying factors {mixed}; one factor per group")
        return group

    def clamp(self, values: torch.Tensor, group: torch.Tensor, varying: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(clamped, mask): latents outside each image's varying block set to their group mean."""
        group = self._check_groups(values, group, varying)
        mask = self.clamp_mask(varying, values.device)
        means = losses.group_mean(values, group)
        return torch.where(mask, means, values), mask

    def forward(self, x: torch.Tensor, group: torch.Tensor | None = None,
                varying: list[str] | None = None) -> dict[str, torch.Tensor]:
        """As `BaseVAE.forward`; with group/varying, z is clamped ("z_sampled" is the raw sample)."""
        if (group is None) != (varying is None):
            raise ValueError("pass both group and varying (grouped batch) or neither (plain batch)")
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        out = {"mu": mu, "logvar": logvar}
        if group is not None:
            out["z_sampled"] = z
            z, out["clamp_mask"] = self.clamp(z, group, varying)
            out["group"] = torch.as_tensor(group, device=mu.device)
        logits = self.decode_logits(z)
        out.update(z=z, x_logits=logits, x_mean=torch.sigmoid(logits))
        return out

    def forward_batch(self, batch, x):
        return self.forward(x, batch.get("group"), batch.get("varying"))

    def objective(self, batch, out, recon, kl_dims, step):
        c = self.config
        loss = recon + c.beta * kl_dims.sum(1)
        if "clamp_mask" not in out:
            zero = torch.zeros((), device=recon.device)
            return {"loss": loss, "clamp_mse": zero, "clamped_fraction": zero}
        mu = out["mu"].float()
        mask = out["clamp_mask"]
        dev = (mu - losses.group_mean(mu, out["group"])).pow(2) * mask
        clamp_mse = dev.sum(1)
        return {"loss": loss + c.lam * clamp_mse, "clamp_mse": clamp_mse,
                "clamped_fraction": mask.float().mean()}
