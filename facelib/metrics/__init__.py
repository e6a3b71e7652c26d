"""Supervised disentanglement metrics, as published and as in disentanglement_lib.

Each metric takes a representation (uint8 images N x C x H x W -> (N, d) array), a factor
source (see `FactorSource`) and a seed, uses disentanglement_lib's default settings (all
overridable) and returns a dict of numbers; `evaluate` runs several into a tidy DataFrame.
`reconstruction_metrics` takes a reconstructor (images -> reconstructions) the same way, with
`PCAReconstructor` as the linear baseline.
"""

from __future__ import annotations

from .beta_vae_score import beta_vae_score
from .clamping import block_spread, identity_spread, latent_blocks, pooled_within_variance
from .dci import dci, dci_from_importance
from .evaluate import METRICS, as_representation, evaluate
from .factor_vae_score import factor_vae_score
from .mig import mig, mig_from_codes, mutual_info_table
from .reconstruction import GRID_FREQUENCIES, PCAReconstructor, grid_prominence, high_frequency_energy, reconstruction_metrics
from .sap import sap
from .sources import (
    DatasetSource,
    FactorSource,
    ToySource,
    YaleBSource,
    check_source,
    ground_truth_representation,
    random_representation,
)
from .utils import discrete_entropy, discrete_mutual_info, histogram_discretize

__all__ = [
    "beta_vae_score", "factor_vae_score", "mig", "dci", "sap", "evaluate", "METRICS",
    "mig_from_codes", "mutual_info_table", "dci_from_importance", "as_representation",
    "FactorSource", "ToySource", "DatasetSource", "YaleBSource", "check_source",
    "ground_truth_representation", "random_representation",
    "discrete_mutual_info", "discrete_entropy", "histogram_discretize",
    "reconstruction_metrics", "PCAReconstructor", "high_frequency_energy", "grid_prominence", "GRID_FREQUENCIES",
    "block_spread", "identity_spread", "latent_blocks", "pooled_within_variance",
]
