"""Likelihood units: every log-likelihood figure facelib reports goes through here.

Pixels are 8-bit levels k = 0..255, fed to the models as x = k / 255 in [0, 1]. A figure in
"bits per dimension" means what the literature means (PixelCNN, Glow, VAE papers): the code
length of the 8-bit data, -log2 P(levels) / D, which lies in [0, 8] for a proper model (8 is a
uniform model). The two decoders get there differently:

* ``"gaussian"``: p(x | z) is a density on the [0, 1] pixel scale, which can exceed 1 (with
  std 0.05 its log is positive), so its raw nats say nothing about 8-bit data. We use the
  dequantisation convention: the 256 levels are bins of width 1/256 on [0, 1], and the
  probability of a level's bin is the density times the bin width,
  ``log P_256(x) = log p_[0,1](x) - D log 256`` (the change of variables from [0, 1] to
  [0, 256)). The density is evaluated at the pixel value itself, not at a uniformly
  dequantised one: with std 0.05 (12.8 levels) the density is nearly flat over a bin, so this
  is the discretised likelihood to within a few hundredths of a bit per dimension
  (tests/test_units.py checks it against scipy's normal CDF). Mass the Gaussian puts outside
  [0, 1] is lost, so the figure is a conservative (too high) code length, never too low.
* ``"bernoulli"``: on grey levels, -log p(x | z) is the binary cross-entropy of x in [0, 1],
  which is not a likelihood of 8-bit data (the Bernoulli's support is {0, 1}); it is reported
  as it is, in nats per image, and its "bits per dimension" is that cross-entropy in bits per
  pixel. Its numbers are NOT comparable with the Gaussian decoder's (see `scale_note`).

Sign convention everywhere (model terms, training histories, tables): a ``*_nll``, a
``loss`` and ``bits_per_dim`` are lower-is-better costs; ``elbo_nats`` and ``log_px_nats``
are log-likelihoods, higher is better; ``kl`` is a rate in nats (no better direction).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["LEVELS", "LOG_LEVELS", "LIKELIHOODS", "nll_8bit", "bits_per_dim", "scale_note"]

#: Levels of an 8-bit pixel.
LEVELS = 256
#: log 256: nats per dimension between the [0, 1] density and the 8-bit scale.
LOG_LEVELS = math.log(LEVELS)
LIKELIHOODS = ("bernoulli", "gaussian")


def _check_likelihood(likelihood: str) -> None:
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {list(LIKELIHOODS)}, got {likelihood!r}")


def _check_dims(n_dims: Any) -> int:
    if isinstance(n_dims, bool) or not isinstance(n_dims, int) or n_dims < 1:
        raise ValueError(f"n_dims must be a positive int (C * H * W of one image), got {n_dims!r}")
    return n_dims


def nll_8bit(nll: Any, n_dims: int, likelihood: str) -> Any:
    """-log p(x | z) (nats per image, decoder's own scale) on the 8-bit scale of the data.

    Gaussian: ``nll + D log 256`` (density on [0, 1] -> probability of the 8-bit bin; see the
    module docstring). Bernoulli: unchanged (a cross-entropy of grey levels, not an 8-bit
    likelihood). Works on floats and tensors alike.
    """
    _check_likelihood(likelihood)
    n_dims = _check_dims(n_dims)
    if likelihood == "gaussian":
        return nll + n_dims * LOG_LEVELS
    return nll


def bits_per_dim(log_likelihood_nats: Any, n_dims: int) -> Any:
    """Code length in bits per dimension, ``-log p / (D ln 2)``, of a log-likelihood in nats
    per image that is already on the 8-bit scale (`nll_8bit`): lower is better."""
    n_dims = _check_dims(n_dims)
    return -log_likelihood_nats / (n_dims * math.log(2.0))


def scale_note(likelihood: str) -> str:
    """One sentence for tables and figures saying what the likelihood numbers are."""
    _check_likelihood(likelihood)
    if likelihood == "gaussian":
        return ("Gaussian decoder: nats per image and bits/dim of the 8-bit pixels (density on [0, 1] "
                "minus D log 256 per image; uniform noise = 8 bits/dim); not comparable with a Bernoulli "
                "decoder's figures")
    return ("Bernoulli decoder on grey levels: nats are a binary cross-entropy, not a likelihood of the "
            "8-bit data, and bits/dim is that cross-entropy per pixel; not comparable with a Gaussian "
            "decoder's figures (nor with published bits/dim)")
