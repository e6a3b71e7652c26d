"""Headline metrics of a zoo model, recomputed from its weights in seconds.

Each recipe names its evaluation: "disentanglement" scores the beta-VAE score (Higgins et al.
2017) and MIG (Chen et al. 2018) on the synthetic factor source the model was trained for;
"lfw-view1" scores LFW View 1 (fit on pairsDevTrain, test on pairsDevTest) with a two-covariance
(PLDA) scorer on the posterior means; "lfw-view1-patches" the same on a patch VAE's latents over
the face's patch grid, through the PCA and PLDA sizes of the recipe; an "lfw-view1" model also
reports `recon_mse`, its per-pixel reconstruction MSE on every View 1 test face. Sample sizes are the quick ones of
`benchmarks/disentanglement.py` (300 / 150 points for the beta-VAE score, 2,000 draws for MIG),
fixed with the seed, so the same weights give the same numbers; the zoo's manifest stores
them and `tests/test_zoo.py` recomputes them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.decomposition import PCA

from facelib import data as fdata
from facelib.data.synthetic import SyntheticFaces
from facelib.metrics import YaleBSource, evaluate, reconstruction_metrics
from facelib.models import AggregatePosterior
from facelib.train import latent_spread, reconstruct, representation
from facelib.verify import protocols
from facelib.verify.baselines import Eigenfaces, Fisherfaces, RawPixels
from facelib.verify.latents import PatchVAEEmbedding
from facelib.verify.scores import TwoCovarianceScore

from .recipes import Recipe, build_data, held_out_faces, held_out_inputs, held_out_options, recipe

__all__ = ["headline_metrics", "DISENTANGLEMENT_SAMPLES", "TOLERANCE", "factor_source", "lfw_view1_results",
           "lfw_view1_patch_results", "view1_results", "held_out_reconstruction", "yaleb_source", "yaleb_results",
           "YALEB_SAMPLES", "YALEB_MODELS", "yaleb_lighting_table", "reference_spread", "SPREAD_FACES",
           "aggregate_posterior", "AGGREGATE_CODES", "REFINE_STEPS"]

#: Metric sample sizes of the "disentanglement" evaluation (the benchmark's quick sizes).
DISENTANGLEMENT_SAMPLES: dict[str, dict[str, int]] = {
    "beta_vae": {"n_train": 300, "n_eval": 150},
    "mig": {"n_train": 2000},
}

#: How far a recomputed headline metric may move from the manifest before the zoo test fails
#: (absolute; the same weights and seeds give the same samples, so only floating-point
#: differences between machines remain).
TOLERANCE: dict[str, float] = {"beta_vae_score": 0.02, "mig": 0.02, "accuracy": 0.01, "auc": 0.01,
                               "recon_mse": 2e-4}


def factor_source(r: Recipe | str):
    """The synthetic factor source a synthetic recipe's model is scored on (its people, its size)."""
    r = recipe(r)
    o = r.data_options
    return SyntheticFaces(size=int(o["size"]), channels=int(o.get("channels", 1)),
                          n_identities=int(o["n_identities"]), seed=int(o["seed"]))


#: Metric sample sizes of the "yaleb-held-out" evaluation: the held-out people's 507 images.
YALEB_SAMPLES: dict[str, dict[str, int]] = {
    "beta_vae": {"n_train": 300, "n_eval": 150},
    "mig": {"n_train": 2000},
    "dci": {"n_train": 400, "n_eval": 107},
    "sap": {"n_train": 400, "n_eval": 107},
}


def yaleb_source(r: Recipe | str) -> YaleBSource:
    """The factor source of a Yale B recipe's scores: the images of the 8 people it never saw
    (identity, light azimuth and elevation)."""
    return YaleBSource(held_out_faces(r))


def yaleb_results(model, r: Recipe | str, seed: int = 0):
    """Tidy MIG, DCI, SAP and beta-VAE score of a model against identity, azimuth and elevation on
    a Yale B recipe's held-out people (`metrics.evaluate` rows)."""
    return evaluate(model, yaleb_source(r), metrics=tuple(YALEB_SAMPLES), seed=seed, **YALEB_SAMPLES)


#: The zoo's Extended Yale B models, scored on the same held-out people.
YALEB_MODELS = ("yaleb-modvae", "yaleb-beta-vae", "yaleb-beta-tcvae")


def yaleb_lighting_table(models: dict, n_pairs: int = 1000, n_boot: int = 1000, seed: int = 0):
    """Verification of Yale B's held-out people across lighting (`verify.across_factor_table`):
    ModVAE's identity block and all its latents, every other model's latents, and the classical
    baselines fitted on the 30 training people - pixels, Eigenfaces and Fisherfaces (Belhumeur,
    Hespanha & Kriegman 1997, the method made for exactly this setting). `models`: zoo name -> model."""
    size = recipe(YALEB_MODELS[0]).data_options["size"]
    train = fdata.load("yaleb", size=size, split="train")
    reps: dict[str, Any] = {}
    for name, model in models.items():
        embed = representation(model)
        if hasattr(model, "block_of"):
            where = model.block_of("identity")
            reps[f"{name} identity block"] = lambda images, e=embed, w=where: e(images)[:, w]
            reps[f"{name} all latents"] = embed
        else:
            reps[f"{name} latents"] = embed
    reps.update({"pixels": RawPixels(), "Eigenfaces (100)": Eigenfaces(100),
                 "Fisherfaces (PCA 150)": Fisherfaces(n_pca=150)})
    return protocols.across_factor_table(train, held_out_faces(YALEB_MODELS[0]), reps, n_pairs=n_pairs,
                                         n_boot=n_boot, seed=seed)


def _yaleb(model, r: Recipe, seed: int) -> dict[str, float]:
    """The headline: beta-VAE score and MIG per factor (seconds); DCI and SAP, whose predictors take
    minutes, are in `yaleb_results` and benchmarks/yaleb.py."""
    table = evaluate(model, yaleb_source(r), metrics=("beta_vae", "mig"), seed=seed,
                     beta_vae=YALEB_SAMPLES["beta_vae"], mig=YALEB_SAMPLES["mig"])
    value = {(m, s): v for m, s, v in table[["metric", "submetric", "value"]].itertuples(index=False)}
    return {"beta_vae_score": float(value[("beta_vae", "eval_accuracy")]), "mig": float(value[("mig", "mig")]),
            **{f"mig_{f}": float(value[("mig", f"mig_{f}")]) for f in ("identity", "azimuth", "elevation")}}


def _disentanglement(model, r: Recipe, seed: int) -> dict[str, float]:
    table = evaluate(model, factor_source(r), metrics=tuple(DISENTANGLEMENT_SAMPLES), seed=seed,
                     **DISENTANGLEMENT_SAMPLES)
    value = {(m, s): v for m, s, v in table[["metric", "submetric", "value"]].itertuples(index=False)}
    return {"beta_vae_score": float(value[("beta_vae", "eval_accuracy")]), "mig": float(value[("mig", "mig")]),
            **{s: float(v) for (m, s), v in value.items() if m == "mig" and s.startswith("mig_")}}


def _view1_sets(r: Recipe):
    """View 1's training and test pair sets with the images the recipe's model takes."""
    options = held_out_options(r)
    return fdata.load("lfw-pairs", split="train", **options), fdata.load("lfw-pairs", split="test", **options)


def lfw_view1_results(model, r: Recipe | str, sets=None):
    """Tidy View 1 results (test pairs) of a model's posterior means with a PLDA scorer.

    The LFW results category follows what the model was trained with: identity groups
    (ModVAE on `other_images=True`) make it unrestricted; the pairs' images alone, image-restricted.
    """
    r = recipe(r)
    train, test = _view1_sets(r) if sets is None else sets
    embed = representation(model)
    uses_identities = r.model == "modvae"
    # a model trained on LFW faces beyond View 1's training pairs (lfw-people) saw images outside the
    # pairs without their labels (or, in identity groups, with the labels of training people only)
    beyond_pairs = r.data == "lfw-people" and not uses_identities
    view1 = protocols.View1(embed(train.images), train.pair_table, embed(test.images), test.pair_table)
    return protocols.evaluate(None, {"plda": TwoCovarianceScore()}, view1, representation_name=r.name,
                              representation_labels="identities" if uses_identities else "none",
                              outside_data="label-free" if beyond_pairs else None)


def lfw_view1_patch_results(model, r: Recipe | str):
    """Tidy View 1 results of a patch VAE: its patches' latent means (`PatchVAEEmbedding`), PCA
    and PLDA fitted on the training pairs (image-restricted, no outside data)."""
    r = recipe(r)
    train, test = _view1_sets(r)
    o = r.evaluation_options
    emb = PatchVAEEmbedding.from_model(model, patch=int(r.patches["patch"]), stride=int(r.patches["stride"]),
                                       power=float(o.get("power", 0.5)), mirror=bool(r.patches.get("mirror", True)),
                                       scales=tuple(int(v) for v in o.get("scales", ())))
    view1 = protocols.View1(emb.transform(train.images), train.pair_table, emb.transform(test.images),
                            test.pair_table)
    plda = TwoCovarianceScore(n_components=int(o["plda"]), length_norm=bool(o.get("length_norm")))
    return protocols.evaluate(PCA(int(o["pca"]), random_state=0), {"plda": plda}, view1, representation_name=r.name)


def view1_results(model, r: Recipe | str):
    """Tidy LFW View 1 results of an LFW zoo model, by its recipe's evaluation."""
    r = recipe(r)
    if r.evaluation == "lfw-view1-patches":
        return lfw_view1_patch_results(model, r)
    if r.evaluation == "lfw-view1":
        return lfw_view1_results(model, r)
    raise ValueError(f"recipe {r.name!r} is not scored on LFW (evaluation {r.evaluation!r})")


def held_out_reconstruction(model, r: Recipe | str, faces=None) -> dict[str, float]:
    """MSE / PSNR / SSIM of an LFW model's reconstructions (decoded posterior means) of every View 1
    test face (`faces`, default `recipes.held_out_faces`), people no LFW recipe trains on
    (`metrics.reconstruction_metrics`)."""
    faces = held_out_faces(r) if faces is None else faces
    return reconstruction_metrics(lambda images: reconstruct(model, images, device="cpu"), faces.images)


def _lfw_view1(model, r: Recipe, seed: int) -> dict[str, Any]:
    if r.evaluation != "lfw-view1":
        results = view1_results(model, r)
    else:  # View 1's test faces are both the verification test set and the held-out reconstructions
        sets = _view1_sets(r)
        results = lfw_view1_results(model, r, sets)
    value = dict(zip(results.metric, results.value))
    out = {"accuracy": float(value["accuracy"]), "auc": float(value["auc"]),
           "category": str(results["category"].iloc[0])}
    if r.evaluation == "lfw-view1":
        out["recon_mse"] = held_out_reconstruction(model, r, sets[1])["mse"]
    return out


def headline_metrics(model, r: Recipe | str, seed: int = 0) -> dict[str, Any]:
    """The recipe's headline metrics of `model` (numbers, plus the LFW category where relevant)."""
    r = recipe(r)
    model.eval()
    if r.evaluation == "disentanglement":
        return _disentanglement(model, r, seed)
    if r.evaluation == "yaleb-held-out":
        return _yaleb(model, r, seed)
    return _lfw_view1(model, r, seed)


def within_tolerance(measured: dict[str, Any], stored: dict[str, Any],
                     tolerance: dict[str, Any] | None = None) -> dict[str, str]:
    """Every stored figure that the measured ones do not reproduce: name -> why (empty when all do).

    Each stored figure is compared with the tolerance the manifest entry states for it
    (`tolerance`, the entry's "tolerance"), else `TOLERANCE`'s, else 0.02 (absolute); a label
    (such as an LFW result's category) must be the same text. A figure
    that cannot be compared is a failure too, never skipped: a stored value that is not a finite
    number, a figure not measured now, a tolerance that is not a number >= 0."""
    problems: dict[str, str] = {}
    tolerance = tolerance or {}
    if not isinstance(tolerance, dict):
        return {"tolerance": f"the entry's tolerance must be a mapping figure -> number, got {tolerance!r}"}
    for name, want in stored.items():
        tol = tolerance.get(name, TOLERANCE.get(name, 0.02))
        if isinstance(want, str) and isinstance(measured.get(name), str):  # a label (an LFW category): equal
            if measured[name] != want:
                problems[name] = f"was {want!r}, is now {measured[name]!r}"
            continue
        if isinstance(want, bool) or not isinstance(want, (int, float)) or not np.isfinite(want):
            problems[name] = f"the stored figure {want!r} is not a finite number, so it cannot be checked"
        elif name not in measured:
            problems[name] = "stored but not measured now (this facelib no longer computes it)"
        elif isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol >= 0:
            problems[name] = f"its tolerance {tol!r} is not a number >= 0"
        else:
            now = measured[name]
            if not np.isfinite(now) or abs(float(now) - float(want)) > float(tol):
                problems[name] = f"moved from {float(want):.6g} to {float(now):.6g} (tolerance {float(tol):g})"
    return problems


#: Gradient steps of the refined posteriors the zoo's figures and `benchmarks/reconstruction.py`
#: show (`train.refine_posterior`): on LFW View 1 test faces `lfw-vae`'s MSE moves < 1 % beyond them.
REFINE_STEPS = 50

#: Faces of the reference set behind a zoo model's `latent_spread`.
SPREAD_FACES = 1000


def reference_spread(model, r: Recipe | str, faces=None) -> dict[str, Any]:
    """Each latent's spread over faces of the kind the model is shown (`recipes.held_out_inputs`:
    fresh draws of a synthetic recipe's people, View 1 test faces for LFW, the held-out people of
    Yale B, patches of those for a patch VAE), as the manifest stores it: {"std": [...],
    "reference": what the faces were}. It is the unit of the traversals (`viz`): a latent moved by
    +-2 of it changes the face as much as faces differ along it. `faces`: those faces, when the
    caller has them already."""
    r = recipe(r)
    faces = held_out_inputs(r, SPREAD_FACES) if faces is None else faces
    return {"std": [round(float(v), 6) for v in latent_spread(model, faces.images)],
            "reference": f"{len(faces)} faces: {faces.name}"}


#: Training faces (at most) whose codes the zoo's aggregate posterior is fitted to.
AGGREGATE_CODES = 10_000


def aggregate_posterior(model, r: Recipe | str, data=None) -> AggregatePosterior:
    """The density of a zoo model's training codes (`models.AggregatePosterior`: a full Gaussian and
    a 10-component mixture), fitted to the posterior means of at most 10,000 of its training faces
    (a seeded draw; `data`: the training set, when the caller has it), which `train.sample(...,
    source="aggregate")` draws from."""
    r = recipe(r)
    data = build_data(r) if data is None else data
    n = len(data)
    rows = np.sort(np.random.default_rng(r.seed).choice(n, size=min(n, AGGREGATE_CODES), replace=False))
    codes = representation(model)(data.images[torch.as_tensor(rows)])
    return AggregatePosterior.fit(codes, seed=r.seed, reference=f"{len(rows)} of the {n} training faces ({data.name})")
