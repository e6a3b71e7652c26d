"""LFW results categories: which labels and data a number used, after Huang & Learned-Miller.

"Labeled Faces in the Wild: Updates and New Reporting Procedures" (UMass TR UM-CS-2014-003).
The rule `lfw_category` applies:

* labeled outside data used by the representation -> "unrestricted, labeled outside data";
* no labels anywhere (representation and verifier) -> "unsupervised" (ROC figures only: an
  accuracy needs a threshold chosen on labelled training pairs, so it is image-restricted);
* identity labels of LFW training images used by any stage (Fisherfaces, a covariance
  estimated from identities) -> "unrestricted, no outside data" (or
  "unrestricted, label-free outside data" if the representation was trained on other images);
* otherwise only the training pairs' same/different labels -> "image-restricted, no outside
  data" (or "image-restricted, label-free outside data").

A representation trained on LFW test-fold images (e.g. a VAE trained on all of LFW) gets
the suffix " [not valid: representation saw test-fold images]".
"""

from __future__ import annotations

from typing import Any

from .scores import as_verifier

__all__ = ["lfw_category", "method_labels", "THRESHOLD_METRICS"]

_INVALID = " [not valid: representation saw test-fold images]"

#: Metrics that need an accept threshold, which the protocols choose on the training pairs' labels:
#: for a label-free score (cosine, Euclidean) they belong to the image-restricted category, while
#: its ROC figures (AUC, EER, TAR at FAR) are unsupervised.
THRESHOLD_METRICS = ("threshold", "train_accuracy", "accuracy", "accuracy_clf")


def lfw_category(verifier_labels: str = "pairs", representation_labels: str = "none",
                 outside_data: str | None = None, saw_test_images: bool = False) -> str:
    """LFW results category of one number (the rule is in the module docstring).

    Args:
        verifier_labels: what the verifier was fitted with: "none", "pairs" or "identities".
        representation_labels: LFW labels the representation used: "none" or "identities".
        outside_data: data outside LFW used by the representation: None, "label-free" or "labeled".
        saw_test_images: the representation was trained on images of the test folds.
    """
    for name, v, ok in (("verifier_labels", verifier_labels, ("none", "pairs", "identities")),
                        ("representation_labels", representation_labels, ("none", "identities")),
                        ("outside_data", outside_data, (None, "label-free", "labeled"))):
        if v not in ok:
            raise ValueError(f"{name} must be one of {ok}, got {v!r}")
    if outside_data == "labeled":
        cat = "unrestricted, labeled outside data"
    elif verifier_labels == "none" and representation_labels == "none":
        cat = "unsupervised" + (", label-free outside data" if outside_data == "label-free" else "")
    else:
        restricted = "identities" not in (verifier_labels, representation_labels)
        outside = "label-free outside data" if outside_data == "label-free" else "no outside data"
        cat = f"{'image-restricted' if restricted else 'unrestricted'}, {outside}"
    return cat + (_INVALID if saw_test_images else "")


def method_labels(method: Any, training: str) -> str:
    """What labels fitting `method` uses: "none", "pairs" (classifiers), or for a scorer that
    can use identities, `training`."""
    labels = as_verifier(method).labels
    return labels if labels in ("none", "pairs") else training
