"""Pair verification statistics: pair features and classifiers, distance and
likelihood-ratio scores, Hotelling T² tests, ROC metrics, LFW / held-out-identity
protocols, baseline representations and the end-to-end siamese CNN.

Everything works on numpy embeddings (N, d) plus a pair table (left, right, same, fold),
independent of how the embeddings were made. The siamese CNN and the per-fold
VAE representation `VAEEmbedding` (torch) and plots (seaborn) are imported on first use.
"""

from __future__ import annotations

from .baselines import BASELINES, Eigenfaces, Fisherfaces, RawPixels, flatten_images
from .features import (CLASSIFIERS, COMBINERS, PARAM_GRIDS, SYMMETRIC_COMBINERS, PairFeatures,
                       logit_table, make_pipeline, pair_array, pair_scores, tuned_pipeline)
from .hotelling import (HotellingResult, ProbeT2Score, hotelling_one_sample, hotelling_two_sample,
                        latent_identity_tests, pair_difference_test)
from facelib.data.pairs import across_factor_pairs, person_folds

from .categories import lfw_category
from .protocols import (evaluate_folds, evaluate_split, held_out_identity,
                        held_out_pairs, held_out_protocol, summarize, view1, view2)
from .roc import (RESULT_COLUMNS, accuracy_at, auc, auc_bootstrap_ci, best_threshold,
                  equal_error_rate, roc_frame, tar_at_far, verification_metrics)
from .scores import (SCORERS, CosineScore, EuclideanScore, MahalanobisScore, PairScorer,
                     TwoCovarianceScore)

__all__ = [
    "BASELINES", "Eigenfaces", "Fisherfaces", "RawPixels", "flatten_images",
    "CLASSIFIERS", "COMBINERS", "PARAM_GRIDS", "SYMMETRIC_COMBINERS", "PairFeatures", "logit_table",
    "make_pipeline", "pair_array", "pair_scores", "tuned_pipeline",
    "HotellingResult", "ProbeT2Score", "hotelling_one_sample", "hotelling_two_sample",
    "latent_identity_tests", "pair_difference_test",
    "across_factor_pairs", "person_folds", "evaluate_folds", "evaluate_split", "held_out_identity",
    "held_out_pairs", "held_out_protocol", "lfw_category", "summarize", "view1", "view2",
    "RESULT_COLUMNS", "accuracy_at", "auc", "auc_bootstrap_ci", "best_threshold",
    "equal_error_rate", "roc_frame", "tar_at_far", "verification_metrics",
    "SCORERS", "CosineScore", "EuclideanScore", "MahalanobisScore", "PairScorer", "TwoCovarianceScore",
    "SiameseVerifier", "SiameseNet", "siamese_pairs", "VAEEmbedding", "PatchVAEEmbedding", "grid_patches",
]


def __getattr__(name):
    if name in ("SiameseVerifier", "SiameseNet", "siamese_pairs"):
        from . import siamese

        return getattr(siamese, name)
    if name in ("VAEEmbedding", "PatchVAEEmbedding", "grid_patches"):
        from . import latents

        return getattr(latents, name)
    raise AttributeError(f"module 'facelib.verify' has no attribute {name!r}")
