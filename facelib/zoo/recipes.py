"""Named training recipes: what a zoo model is, as data (model, data, size, latents, steps, seed).

A `Recipe` says everything that decides a trained model: the registry model and its config
fields, the data set and its loader options, the optimiser steps, batch size, learning rate and
seed. A recipe is a named experiment plus how the zoo evaluates it: `Recipe.spec()` is the
`facelib.experiment.ExperimentSpec` that the zoo (`python -m facelib zoo build NAME`), the GPU
check and the notebooks (`Study.train_recipe`) give to `experiment.run`, so a recipe trains the same
way wherever it is used; `build_data(recipe)` is its training `FaceDataset`.

The synthetic-faces recipes are the disentanglement setting of `benchmarks/disentanglement.py`:
20,000 faces at 32 px of 10 people, no scale / shift jitter (the faces the metrics' factor source
renders), a Gaussian decoder of std 0.05, 10 latents. The LFW recipes train on View 1's
training pairs (pairsDevTrain), never on a View 2 or View 1 test image. A recipe with `patches`
trains on grid patches of its data's images (the patch VAE of LFW verification,
`facelib.verify.PatchVAEEmbedding`); `patch_vae_recipe` makes one from an LFW setting, such as
the one frozen on View 1 by `facelib lfw select`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facelib import data as fdata
from facelib.data import FaceDataset
from facelib.data.patches import training_patches
from facelib.data.synthetic import FactorRanges, SyntheticFaces
from facelib.experiment import DataSpec, ExperimentSpec, ModelSpec

__all__ = ["Recipe", "RECIPES", "recipe", "build_data", "preview_faces", "at_scale", "variant", "held_out_options", "held_out_faces", "held_out_inputs", "patch_vae_recipe",
           "SYNTHETIC_DISENTANGLEMENT"]

#: The synthetic-faces disentanglement setting shared by the zoo and the benchmark.
SYNTHETIC_DISENTANGLEMENT: dict[str, Any] = {
    "image_size": 32, "n_images": 20000, "n_identities": 10, "latent_dim": 10,
    "likelihood": "gaussian", "gaussian_scale": 0.05, "seed": 0,
}


@dataclass(frozen=True)
class Recipe:
    """How one model is trained.

    Attributes:
        name: the zoo name (also the checkpoint file's stem).
        model: registry name (`facelib.models.MODELS`).
        data: "synthetic" (rendered on demand), "lfw-pairs" or "lfw-people" (need `$FACELIB_DATA`).
        data_options: keyword options of `facelib.data.load` (for synthetic, `group_size`
            makes grouped batches for ModVAE).
        model_options: config fields of the model (image size and channels come from the data).
        steps: optimiser steps; batch_size, lr, seed: as in `TrainConfig`.
        train_options: further `TrainConfig` fields (e.g. `group_size` for identity groups).
        evaluation: which headline metrics the zoo measures on it ("disentanglement": beta-VAE
            score and MIG on the synthetic factor source; "lfw-view1": View 1 verification).
        identity_latents: ModVAE only; size of the identity block (the other factors the
            training groups vary get one latent each: `models.factor_blocks`).
        patches: train on grid patches of the images instead of the images: `patch`, `stride`,
            `max_patches`, `mirror` (as `data.patches.training_patches`).
        evaluation_options: settings of the evaluation (for "lfw-view1-patches": the latents'
            `power`, the pyramid `scales` (if any), the `pca` and `plda` dimensions).
        description: one line for `zoo list` and the README.
    """

    name: str
    model: str
    data: str
    data_options: dict[str, Any] = field(default_factory=dict)
    model_options: dict[str, Any] = field(default_factory=dict)
    steps: int = 30000
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    train_options: dict[str, Any] = field(default_factory=dict)
    evaluation: str = "disentanglement"
    identity_latents: int | None = None
    patches: dict[str, Any] = field(default_factory=dict)
    evaluation_options: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"recipe {self.name!r}: steps must be a positive integer, got {self.steps!r}")
        if self.evaluation not in EVALUATIONS:
            raise ValueError(f"recipe {self.name!r}: evaluation must be one of {EVALUATIONS}, got {self.evaluation!r}")
        unknown = set(self.patches) - {"patch", "stride", "max_patches", "mirror"}
        if unknown:
            raise ValueError(f"recipe {self.name!r}: unknown patches option(s) {sorted(unknown)}; "
                             "known: patch, stride, max_patches, mirror")
        if (self.evaluation == "lfw-view1-patches") != bool(self.patches):
            raise ValueError(f"recipe {self.name!r}: evaluation 'lfw-view1-patches' goes with patches (and only it)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Recipe":
        """Rebuild from `to_dict` output (e.g. a manifest's recipe); unknown keys are an error.

        Data options stored under old names (the manifest's ``color``, ``subset``, ``people``) are
        translated to the loader contract's (`facelib.data.translate_options`; silently: the
        manifest is not rewritten, since its models must keep reproducing), so a stored recipe and
        the current one compare equal."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"recipe has unknown field(s) {unknown}; this facelib knows {sorted(known)}")
        data = dict(data)
        if "data" in data and isinstance(data.get("data_options"), dict):
            data["data_options"] = fdata.translate_options(data["data"], data["data_options"], warn=False)
        return cls(**data)

    def replace(self, **changes: Any) -> "Recipe":
        """A copy with some fields changed (e.g. fewer `steps` for a smoke test)."""
        return dataclasses.replace(self, **changes)

    def spec(self) -> ExperimentSpec:
        """The experiment this recipe trains (`facelib.experiment.run` trains it for every caller:
        the zoo build, the notebooks, the GPU check): its steps as `max_steps`, its batch size, lr,
        seed and `train_options`; a ModVAE's blocks from the factors its groups vary, the identity
        block `identity_latents` long."""
        options = dict(self.model_options)
        if self.identity_latents is not None:
            options["identity_latents"] = self.identity_latents
        training = {"epochs": 10**6, "max_steps": self.steps, "batch_size": self.batch_size, "lr": self.lr,
                    "seed": self.seed, "progress": False, **self.train_options}
        return ExperimentSpec(data=DataSpec(self.data, self.data_options, self.patches or None),
                              model=ModelSpec(self.model, options), training=training)


EVALUATIONS = ("disentanglement", "lfw-view1", "lfw-view1-patches", "yaleb-held-out")
#: The LFW loaders a recipe can train on: View 1's training pairs, or the people of LFW outside a
#: pair list (`exclude_pairs`).
LFW_DATA = ("lfw-pairs", "lfw-people")


def _synthetic(name: str, model: str, steps: int, description: str, grouped: bool = False,
               identity_latents: int | None = None, **model_options: Any) -> Recipe:
    s = SYNTHETIC_DISENTANGLEMENT
    data = {"n": s["n_images"], "size": s["image_size"], "seed": s["seed"], "n_identities": s["n_identities"],
            "scale": (1.0, 1.0), "tx": (0.0, 0.0), "ty": (0.0, 0.0)}
    if grouped:
        data["group_size"] = 8
    return Recipe(name=name, model=model, data="synthetic", data_options=data,
                  model_options={"latent_dim": s["latent_dim"], "likelihood": s["likelihood"],
                                 "gaussian_scale": s["gaussian_scale"], **model_options},
                  steps=steps, seed=s["seed"], evaluation="disentanglement",
                  identity_latents=identity_latents, description=description)


#: The residual networks of the LFW models (`models.resnet`), sized for a 2-core CPU; the decoder
#: doubles the side by nearest resizing and a 3x3 conv, which paints no checkerboard in samples
#: (stride-2 transposed convolutions did: `metrics.grid_prominence` 3.4 against 0.8-0.9, #42).
LFW_NETWORK: dict[str, Any] = {"architecture": "resnet",
                               "architecture_options": {"width": 16, "depth": 1, "max_width": 128, "norm": "batch",
                                                        "upsample": "nearest"}}
#: How the LFW models train (`TrainConfig` fields): lr warm-up then cosine decay, KL warm-up, flips;
#: bf16 autocast (fp32 weights and losses), channels-last with it: 2.4 x faster steps than fp32 NCHW
#: on a CPU with AMX (this 2-core Xeon, Dec 6: 0.16 s against 0.40 s for a batch of 64, one thread).
LFW_TRAINING: dict[str, Any] = {"warmup_steps": 200, "lr_schedule": "cosine", "min_lr_ratio": 0.02,
                                "kl_warmup_steps": 500, "hflip": True, "val_fraction": 0.05, "precision": "bf16"}
#: LFW faces of every person outside View 1's test pairs (64 px colour, 150 px centre crop).
LFW_FACES: dict[str, Any] = {"size": 64, "crop": 150, "channels": 3, "exclude_pairs": "test"}


def _lfw(name: str, model: str, steps: int, description: str,
         train_options: dict[str, Any] | None = None, identity_latents: int | None = None,
         gaussian_scale: float = 0.05, **model_options: Any) -> Recipe:
    """An LFW face model: trained on every image of the people outside View 1's test pairs (10,492
    faces), shown and scored on View 1's test faces, whose people it never saw."""
    return Recipe(name=name, model=model, data="lfw-people", data_options=dict(LFW_FACES),
                  model_options={"latent_dim": 32, "likelihood": "gaussian", "gaussian_scale": gaussian_scale,
                                 **LFW_NETWORK, **model_options},
                  steps=steps, batch_size=64, lr=2e-3, seed=0, evaluation="lfw-view1", identity_latents=identity_latents,
                  train_options={**LFW_TRAINING, **(train_options or {})}, description=description)


#: The original project's beta sweep on LFW faces.
LFW_BETAS = (2.0, 4.0, 5.0, 10.0)
#: The sweep's decoder std (#42): the original project's Bernoulli decoder (binary cross-entropy)
#: weighs an error like a Gaussian of variance p(1 - p), 0.25 at mid-grey; at the plain VAE's 0.05
#: the KL term is so small beside the reconstruction term that beta 2 to 10 all reconstruct alike.
LFW_SWEEP_SCALE = 0.5
#: The plain VAE's decoder std (#42): at 0.05 it fitted its training people (held-out loss 10 % above
#: the training loss) and reconstructed unseen ones worse than beta 2 at std 0.5; the trials at 0.05,
#: 0.15 and 0.3 are in benchmarks/results/lfw_recipe_trials.csv.
LFW_VAE_SCALE = 0.15


def _frozen_patch_vae() -> Recipe:
    """The image-restricted patch-VAE system frozen on LFW View 1 (benchmarks/results/lfw_frozen.json)
    as a zoo recipe: what `patch_vae_recipe` makes of that setting, which tests/test_zoo.py checks."""
    return Recipe(
        name="lfw-patch-vae", model="vae", data="lfw-pairs",
        data_options={"split": "train", "size": 64, "crop": 120, "channels": 1, "other_images": False},
        model_options={"latent_dim": 12, "likelihood": "gaussian", "gaussian_scale": 0.02},
        patches={"patch": 12, "stride": 6, "max_patches": 200_000, "mirror": True},
        steps=4 * 781, batch_size=256, seed=0, train_options={"val_fraction": 0.0}, evaluation="lfw-view1-patches",
        evaluation_options={"power": 0.5, "scales": [32], "pca": 200, "plda": 100, "length_norm": False},
        description="patch VAE of LFW verification (patch VAE 64 px crop 120, 12 px patches step 6, d=12, "
                    "Gaussian 0.02, 4 ep, also read at 32 px, PCA 200, PLDA 100) on View 1 training pairs")


#: Extended Yale B (64 px grey) of the 30 training people; the zoo scores on the 8 held out.
YALEB_FACES: dict[str, Any] = {"size": 64, "split": "train"}
#: DC-IGN's light experiment on real faces: groups in which only the light azimuth, only the light
#: elevation (one person, the other angle fixed) or only the person (one light direction) varies.
YALEB_GROUPING = ["azimuth", "elevation", "identity"]
YALEB_STEPS = 3000


def _yaleb(name: str, model: str, description: str, grouped: bool = False, **model_options: Any) -> Recipe:
    """A Yale B model: 18 latents (ModVAE: 16 identity, one for azimuth, one for elevation), the
    Burgess network, trained on the 30 training people and scored on the 8 held out."""
    data = {**YALEB_FACES, **({"groups": list(YALEB_GROUPING)} if grouped else {})}
    return Recipe(name=name, model=model, data="yaleb", data_options=data,
                  model_options={"latent_dim": 18, "likelihood": "gaussian", "gaussian_scale": 0.05, **model_options},
                  steps=YALEB_STEPS, batch_size=64, lr=1e-3, seed=0, evaluation="yaleb-held-out",
                  identity_latents=16 if grouped else None,
                  train_options={"val_fraction": 0.0, **({"group_size": 4} if grouped else {})},
                  description=description)


#: Optimiser steps of every LFW face model (51 epochs of the 10,492 faces at batch 64).
LFW_STEPS = 8000

#: Every recipe the zoo ships, by name.
RECIPES: dict[str, Recipe] = {r.name: r for r in [
    _synthetic("synthetic-vae", "vae", 10000, description="plain VAE (Kingma & Welling)"),
    _synthetic("synthetic-beta-vae-b4", "beta-vae", 10000, beta=4.0, description="beta-VAE, beta 4"),
    _synthetic("synthetic-beta-vae-b16", "beta-vae", 10000, beta=16.0, description="beta-VAE, beta 16"),
    _synthetic("synthetic-beta-tcvae", "beta-tcvae", 10000, description="beta-TCVAE (Chen et al.), TC weight 6"),
    _synthetic("synthetic-factor-vae", "factor-vae", 10000, description="FactorVAE (Kim & Mnih)"),
    # beta 4: a latent repeating another's information costs enough KL that the pose stays in its own
    # latent (beta 1 spread yaw over the free latents), not so much that expression, the faintest
    # factor, is dropped (beta 16); benchmarks/modvae_trials.py has the trials
    _synthetic("synthetic-modvae", "modvae", 30000, grouped=True, identity_latents=1, lam=10.0, beta=4.0,
               description="ModVAE (DC-IGN): groups of 8 faces in which one factor varies, one latent per factor"),
    _lfw("lfw-vae", "vae", LFW_STEPS, gaussian_scale=LFW_VAE_SCALE,
         description=f"VAE (Kingma & Welling), decoder std {LFW_VAE_SCALE:g}, residual networks with nearest "
                     "upsampling, on LFW faces of people outside View 1's test pairs (64 px colour, 150 px centre crop)"),
    *[_lfw(f"lfw-beta-vae-b{b:g}", "beta-vae", LFW_STEPS, beta=b, gaussian_scale=LFW_SWEEP_SCALE,
           description=f"beta-VAE, beta {b:g}, decoder std {LFW_SWEEP_SCALE:g}, residual networks with nearest "
                       "upsampling, on LFW faces of people outside View 1's test pairs")
      for b in LFW_BETAS],
    _lfw("lfw-modvae", "modvae", LFW_STEPS, train_options={"group_size": 4}, identity_latents=10, lam=10.0,
         description="ModVAE with identity groups (4 images of one person), residual networks, on LFW people "
                     "outside View 1's test pairs"),
    _frozen_patch_vae(),
    # lam 1000: the clamp term on the scale of the recon term (a 64 x 64 Gaussian of std 0.05 costs
    # thousands of nats); at lam 10 the identity block still varied with the light within a person
    # (within-person sd 76 % of its total on the training people; MIG azimuth 0.25, elevation 0.14)
    _yaleb("yaleb-modvae", "modvae", grouped=True, lam=1000.0,
           description="ModVAE (DC-IGN) on Extended Yale B: groups where only light azimuth, only light elevation "
                       "or only the person varies; 30 people, 8 held out"),
    _yaleb("yaleb-beta-vae", "beta-vae", beta=4.0,
           description="beta-VAE, beta 4, on Extended Yale B (same people, size and latents as yaleb-modvae)"),
    _yaleb("yaleb-beta-tcvae", "beta-tcvae",
           description="beta-TCVAE (Chen et al.) on Extended Yale B (same people, size and latents as yaleb-modvae)"),
]}


def patch_vae_recipe(setting, name: str = "lfw-patch-vae", batch_size: int = 256) -> Recipe:
    """The recipe of an LFW patch-VAE system (a `verify.selection.LFWSetting`, e.g. the one frozen
    on View 1): its patch VAE trained on View 1's training pairs for the epochs
    `PatchVAEEmbedding` trains, scored on View 1 with the setting's PCA and PLDA sizes."""
    if setting.family != "patch-vae":
        raise ValueError(f"patch_vae_recipe takes a patch-vae setting, got family {setting.family!r}")
    p = setting.patch_params
    return Recipe(
        name=name, model="vae", data="lfw-pairs",
        data_options={"split": "train", "size": setting.size, "crop": setting.crop, "channels": 1,
                      "other_images": False},
        model_options={"latent_dim": p["latent_dim"], "likelihood": "gaussian", "gaussian_scale": p["gaussian_scale"]},
        patches={"patch": p["patch"], "stride": p["stride"], "max_patches": p["max_patches"], "mirror": True},
        # as `PatchVAEEmbedding` trains it: every patch for training (no validation split), whole
        # epochs of full batches (`fit` drops a short last batch unless it is the only one)
        steps=int(p["epochs"]) * max(1, int(p["max_patches"]) // batch_size), batch_size=batch_size, seed=setting.seed,
        train_options={"val_fraction": 0.0}, evaluation="lfw-view1-patches",
        evaluation_options={"power": p["power"], **({"scales": list(p["scales"])} if p["scales"] else {}),
                            "pca": setting.pca, "plda": setting.plda, "length_norm": setting.length_norm},
        description=f"patch VAE of LFW verification ({setting.describe()}) on View 1 training pairs")


def at_scale(r: Recipe | str, *, n_images: int, image_size: int, n_identities: int, latent_dim: int,
             seed: int = 0, epochs: int | None = None) -> Recipe:
    """A synthetic-faces recipe at another scale (a notebook profile's): its images, size, people,
    latents and seed replaced, and with `epochs` its steps: that many passes over `n_images` at
    the recipe's batch size. The model, objective, grouping, decoder, batch size and lr stay the
    recipe's."""
    r = recipe(r)
    if r.data != "synthetic":
        raise ValueError(f"recipe {r.name!r} trains on {r.data!r}; only synthetic-faces recipes can be rescaled")
    data = {**r.data_options, "n": int(n_images), "size": int(image_size), "n_identities": int(n_identities),
            "seed": int(seed)}
    steps = r.steps if epochs is None else int(epochs) * -(-int(n_images) // r.batch_size)
    return r.replace(name=f"{r.name}@{image_size}px-{n_images}", data_options=data, seed=int(seed), steps=steps,
                     model_options={**r.model_options, "latent_dim": int(latent_dim)})


def variant(r: Recipe | str, name: str, *, model: str | None = None, steps: int | None = None,
            **model_options: Any) -> Recipe:
    """A recipe's sibling called `name`: another registry `model`, other `steps`, or changed model
    options (an option set to None is dropped, e.g. `beta=None` when the model has no beta).
    Data, grouping, decoder and seed stay the recipe's, so the sibling is trained on the same
    faces (the notebooks' beta sweep on LFW is `variant("lfw-beta-vae-b4", ..., beta=b)`)."""
    r = recipe(r)
    options = {**r.model_options, **model_options}
    options = {k: v for k, v in options.items() if v is not None}
    return r.replace(name=str(name), model=model or r.model, steps=int(steps) if steps is not None else r.steps,
                     model_options=options)


def recipe(name: str | Recipe) -> Recipe:
    """The recipe called `name` (a Recipe is returned as is); unknown names list the known ones."""
    if isinstance(name, Recipe):
        return name
    if name not in RECIPES:
        raise KeyError(f"no zoo recipe {name!r}; known recipes: {', '.join(RECIPES)}")
    return RECIPES[name]


def build_data(r: Recipe | str):
    """The training `FaceDataset` of a recipe (its spec's data set)."""
    return recipe(r).spec().make_dataset()


def held_out_options(r: Recipe | str) -> dict[str, Any]:
    """The loader options that decide an LFW recipe's held-out faces (size, crop, colour): its
    data options without the training choices (`split`, `other_images`, `exclude_pairs`, `groups`); recipes that agree on them
    are shown on the same View 1 test faces."""
    return {k: v for k, v in recipe(r).data_options.items()
            if k not in ("split", "other_images", "exclude_pairs", "groups")}


def held_out_faces(r: Recipe | str):
    """The held-out faces of an LFW recipe: every image of View 1's test pairs (pairsDevTest),
    at the recipe's size, crop and colour; no person of them is in View 1's training pairs. For a
    Yale B recipe: every image of the 8 held-out people (`data.yaleb.YALEB_HELD_OUT`)."""
    r = recipe(r)
    if r.data == "yaleb":
        test = fdata.load("yaleb", size=r.data_options.get("size", 64), split="test")
        return test.subset(np.arange(len(test)), name=f"{test.name}[held-out people]")
    if r.data not in LFW_DATA:
        raise ValueError(f"recipe {r.name!r} trains on {r.data!r}; held_out_faces is for LFW recipes "
                         "(synthetic recipes render fresh faces: preview_faces)")
    test = fdata.load("lfw-pairs", **{**held_out_options(r), "split": "test"})
    return test.subset(np.arange(len(test)), name=f"{test.name}[View 1 test]")


#: Offset of the sample seed of a synthetic recipe's held-out faces (the same people, new draws).
HELD_OUT_SEED_OFFSET = 10_000


def held_out_inputs(r: Recipe | str, n: int = 2000):
    """What a recipe's model takes, drawn from faces it never trained on, for reconstruction
    figures: LFW recipes every View 1 test face (`held_out_faces`, at most `n`); synthetic recipes
    `n` fresh draws of the recipe's people (another sample seed than the training set's); a patch
    recipe `n` patches of View 1 test faces on its grid."""
    r = recipe(r)
    if r.data == "synthetic":
        o = r.data_options
        ranges = {k: v for k, v in o.items() if k not in ("n", "size", "seed", "n_identities", "channels",
                                                           "group_size", "group_factor")}
        faces = SyntheticFaces(size=int(o["size"]), channels=int(o.get("channels", 1)),
                               n_identities=int(o["n_identities"]), seed=int(o["seed"]),
                               ranges=FactorRanges.from_options(**ranges))
        return faces.sample(int(n), seed=int(o["seed"]) + HELD_OUT_SEED_OFFSET)
    faces = held_out_faces(r)
    if not r.patches:
        return faces.subset(np.arange(min(int(n), len(faces))), name=faces.name)

    p = r.patches
    x = training_patches(faces.images, int(p["patch"]), int(p["stride"]), int(n), False, seed=r.seed)
    return FaceDataset(images=x, identity=np.full(len(x), -1, dtype=np.int64), name=f"{faces.name} patches")


def preview_faces(r: Recipe | str, n: int = 16):
    """`n` faces of the kind a recipe's model was trained on, for traversals and the widget.

    Synthetic recipes: independent draws with the recipe's people, size and factor ranges.
    LFW recipes: the first images of View 1's test pairs (pairsDevTest), which no zoo model saw.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a whole number of faces >= 1, got {n!r}")
    r = recipe(r)
    if r.data == "synthetic":
        options = {k: v for k, v in r.data_options.items() if k not in ("group_size", "group_factor")}
        return fdata.load("synthetic", **{**options, "n": int(n)})
    test = held_out_faces(r)
    return test.subset(np.arange(min(int(n), len(test))), name=test.name)
