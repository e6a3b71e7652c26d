"""Pair verification statistics: does a representation of faces tell people apart?

Everything works on numpy embeddings (N, d) plus a pair table (left, right, same, fold),
independent of how the embeddings were made. The names here are the ones the notebooks use;
everything else (constants such as `features.COMBINERS`, `roc.RESULT_COLUMNS`, the lower-level
estimators and helpers) stays in its module:

* representations refitted per fold: `Eigenfaces`, `Fisherfaces`, `RawPixels` (`baselines`),
  `VAEEmbedding`, `PatchVAEEmbedding` (`latents`, a facelib model trained inside `fit`);
* pair classifiers on pair features: `make_pipeline`, `PairFeatures`, `pair_array`,
  `logit_table` (`features`);
* pair scores, one interface (`fit_pairs` / `score_pairs`, see `scores`): `CosineScore`,
  `EuclideanScore`, `MahalanobisScore`, `TwoCovarianceScore`;
* Hotelling T² tests of latents: `latent_identity_tests`, `pair_difference_test`,
  `hotelling_one_sample`, `hotelling_two_sample`, and the permutation version on person-disjoint
  pairs, `pair_difference_permutation_test` (`hotelling`), with `person_disjoint_pairs`
  (`facelib.data.pairs`);
* protocols as objects, each yielding its folds: `View1`, `View2` (LFW), `Folds` (k-fold),
  `Split` (one given split), `HeldOutIdentities`, `AcrossFactor` (a `FaceDataset`'s held-out
  people, test pairs at random or across a factor), all run by one `evaluate(representation,
  methods, protocol)`; `held_out_pairs`, `compare_held_out` (representations x protocols on one
  data set), `best_methods` (best AUC with a bootstrap interval), `summarize` (`protocols`), with
  `person_folds` (`facelib.data.pairs`); scorers by name in `scores.SCORERS`;
  LFW results categories in `categories`; settings chosen on View 1 and run once on View 2 in
  `selection` (`python -m facelib lfw`);
* ROC figures: `auc`, `auc_bootstrap_ci` (`roc`); figures in `plots`;
* the end-to-end siamese CNN: `SiameseVerifier`, `siamese_pairs` (`siamese`).

The torch-model modules (`latents`, `siamese`) load on first use of their names.
"""

from __future__ import annotations

import importlib
from typing import Any

from facelib.data.pairs import person_disjoint_pairs, person_folds

from .baselines import Eigenfaces, Fisherfaces, RawPixels
from .features import PairFeatures, logit_table, make_pipeline, pair_array
from .hotelling import (hotelling_one_sample, hotelling_two_sample, latent_identity_tests,
                        pair_difference_permutation_test, pair_difference_test)
from .protocols import (AcrossFactor, Folds, HeldOutIdentities, Split, View1, View2, across_factor_table,
                        best_methods, compare_held_out, evaluate, held_out_pairs, summarize)
from .roc import auc, auc_bootstrap_ci
from .scores import CosineScore, EuclideanScore, MahalanobisScore, TwoCovarianceScore

_LAZY = {"VAEEmbedding": "latents", "PatchVAEEmbedding": "latents",
         "SiameseVerifier": "siamese", "siamese_pairs": "siamese"}

__all__ = [
    "Eigenfaces", "Fisherfaces", "RawPixels", "VAEEmbedding", "PatchVAEEmbedding",
    "make_pipeline", "PairFeatures", "pair_array", "logit_table",
    "CosineScore", "EuclideanScore", "MahalanobisScore", "TwoCovarianceScore",
    "latent_identity_tests", "pair_difference_test", "hotelling_one_sample", "hotelling_two_sample",
    "pair_difference_permutation_test", "person_disjoint_pairs",
    "evaluate", "View1", "View2", "Folds", "Split", "HeldOutIdentities", "AcrossFactor", "person_folds",
    "held_out_pairs", "compare_held_out", "best_methods", "summarize", "across_factor_table",
    "auc", "auc_bootstrap_ci",
    "SiameseVerifier", "siamese_pairs",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"facelib.verify.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'facelib.verify' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
