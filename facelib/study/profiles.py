"""Run profiles: the parameter defaults behind `quick` and `full`.

`models` is "zoo" in both: the analysis notebooks (04 traversals, 05 metrics, 06 LFW View 1,
08 summary) use the trained models the zoo ships, so a first run shows trained models;
`-p models train` trains everything in the run instead.

Notebook parameters default to None, meaning "whatever the profile says"; a value
given explicitly (papermill `-p`) always wins. Keeping the table here, not in each
notebook, makes the quick profile (CI, seconds per notebook on 2 CPU cores) and the
full profile (the real study) one edit away and consistent across notebooks.
"""

from __future__ import annotations

from typing import Any

from facelib.zoo.recipes import RECIPES

__all__ = ["PROFILES", "resolve"]

#: The zoo's synthetic-faces models, scored by 05_disentanglement when `models="zoo"`.
SYNTHETIC_ZOO = [name for name, r in RECIPES.items() if r.data == "synthetic"]

PROFILES: dict[str, dict[str, Any]] = {
    "quick": {
        "dataset": "synthetic",
        "image_size": 32,
        "channels": 1,
        "latent_dim": 10,
        "n_images": 3000,
        "n_identities": 60,
        "epochs": 8,
        "batch_size": 64,
        "lr": 1e-3,
        "betas": [1.0, 4.0],
        "beta": 4.0,
        "likelihood": "gaussian",
        "gaussian_scale": 0.05,
        "lam": 10.0,
        "n_pairs": 600,
        "metric_n_train": 300,
        "metric_n_eval": 150,
        "metric_batch_size": 16,
        "dci_model": "lasso",
        "verify_datasets": ["synthetic", "olivetti"],
        "siamese_epochs": 3,
        "bootstrap": 200,
        "patch_epochs": 1,
        "patch_max_patches": 20000,
        "models": "zoo",
        "traversal_models": ["synthetic-modvae", "synthetic-beta-vae-b4", "yaleb-modvae"],
        "zoo_models": SYNTHETIC_ZOO,
        # seconds of training: claims that need trained models are not checked (facelib.claims)
        "check_trained_claims": False,
        # the original study on LFW faces (01-03): off; steps of each LFW model when turned on
        "lfw_study": False,
        "lfw_steps": 60,
    },
    # The full study, sized to finish in under an hour on 2 CPU cores (the measured time:
    # benchmarks/results/pipeline_walltime.csv, written by benchmarks/pipeline_walltime.py --full). 64x64 faces and 32 latents
    # as in the Burgess et al. layout and the original project; the original beta sweep;
    # every model sees about 100k images (a GPU or more cores: raise epochs with -p).
    # Metric samples are a tenth of disentanglement_lib's 10,000/5,000 (batch 32, not
    # 64): the pair and vote metrics encode batch x points images, which at the
    # published sizes alone would take hours on 2 cores.
    # Both profiles decode with a Gaussian of std 0.05 (on 0-1 pixels), not the models'
    # Bernoulli default: the zoo's recipes' decoder, with which ModVAE (clamp weight lam 10)
    # learns pose (`benchmarks/disentanglement.py --likelihood bernoulli` trains the same
    # models with the Bernoulli decoder to compare).
    "full": {
        "dataset": "synthetic",
        "image_size": 64,
        "channels": 1,
        "latent_dim": 32,
        "n_images": 20000,
        "n_identities": 50,
        "epochs": 6,
        "batch_size": 64,
        "lr": 1e-3,
        "betas": [2.0, 4.0, 5.0, 10.0],
        "beta": 4.0,
        "likelihood": "gaussian",
        "gaussian_scale": 0.05,
        "lam": 10.0,
        "n_pairs": 3000,
        "metric_n_train": 1000,
        "metric_n_eval": 500,
        "metric_batch_size": 32,
        "dci_model": "gbt",
        "verify_datasets": ["synthetic", "olivetti", "yaleb", "lfw-pairs"],
        "siamese_epochs": 8,
        "bootstrap": 1000,
        "patch_epochs": 4,
        "patch_max_patches": 200000,
        "models": "zoo",
        "traversal_models": ["synthetic-modvae", "synthetic-beta-vae-b4", "yaleb-modvae", "lfw-beta-vae-b4", "lfw-modvae"],
        "zoo_models": SYNTHETIC_ZOO,
        "check_trained_claims": True,
        # 01-03 also train the original study on LFW faces (View 1's training pairs, 64 px colour,
        # the zoo's LFW recipes): a VAE, the beta sweep, ModVAE with identity groups, each for
        # lfw_steps steps (the zoo's LFW models, 6,000 steps, are shown beside them)
        "lfw_study": True,
        "lfw_steps": 600,
    },
}


def resolve(profile: str, **given: Any) -> dict[str, Any]:
    """Fill every parameter left as None from `PROFILES[profile]`.

    Returns a new dict of all given names (profile keys that were not asked for are
    not added). Unknown profiles and names the profile does not define (while None)
    raise a ValueError that lists what exists.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    table = PROFILES[profile]
    out: dict[str, Any] = {}
    for name, value in given.items():
        if value is None:
            if name not in table:
                raise ValueError(
                    f"parameter {name!r} is None and profile {profile!r} has no default for it; "
                    f"set it explicitly (profile defaults: {', '.join(sorted(table))})"
                )
            value = table[name]
            value = list(value) if isinstance(value, list) else value
        out[name] = value
    return out
