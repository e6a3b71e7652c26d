"""LFW by the book: choose every setting on View 1, freeze it, run View 2 once.

LFW keeps View 2 (ten person-disjoint folds) for the final figure; development -- the crop,
the image size, the representation's parameters, the PCA and PLDA dimensions, the PLDA
variant, the scorer -- belongs on View 1 (train on pairsDevTrain, test on pairsDevTest). Here:

* `LFWSetting` is every choice that decides one verification system, and its LFW category
  ("image-restricted": PLDA fitted from the training pairs' labels; "unrestricted": from the
  identities of every LFW image of the training people). Its scorer is PLDA unless `scorer`
  names another registered one (`scores.SCORERS`, with `scorer_options`).
* `select(candidates)` scores every candidate on View 1 and keeps, per setting, the one with
  the best View 1 test accuracy (and the best pixels system as the reference baseline); `freeze`
  writes that choice with its View 1 figures to a JSON file. Candidates that lose on View 1 are
  not run on View 2: that would make View 2 the judge.
* `run_view2(frozen)` runs exactly the frozen settings on View 2 (every stage refitted on the
  nine training folds of each test fold) and returns the View 2 rows beside the View 1 choice.

`python -m facelib lfw select` and `python -m facelib lfw view2` are the command lines;
`benchmarks/results/lfw_view1_selection.csv`, `lfw_frozen.json` and `lfw_view2.csv` their output.
Representations are fitted on the training pairs' images only (no outside data), so the
categories are "image-restricted, no outside data" and "unrestricted, no outside data".
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import PCA

from facelib.data import load
from facelib.data.lfw import LFW_PAIR_FILES, read_lfw_pairs_file
from facelib.data.pairs import person_folds
from facelib.data.paths import data_root
from facelib.results import PROVENANCE
from facelib.utils import git_commit

from .baselines import flatten_images
from .fisher import FisherVectorEncoder
from .latents import PatchVAEEmbedding
from .protocols import Split, View1, evaluate, summarize
from .roc import ROC_FARS, tar_curve
from .scores import SCORERS, TwoCovarianceScore
from facelib.data.checks import check_same

__all__ = ["LFWSetting", "FAMILIES", "SETTINGS", "BASELINES", "candidates", "choose", "select", "freeze", "read_frozen",
           "frozen_setting",
           "run_view2", "view2_table", "roc_table", "roc_table_from_scores", "fold_roc_rows", "score_column",
           "check_scores", "VIEW2_FOLDS", "SCORE_KEYS", "PUBLISHED"]

#: Representation families: how images become the vectors the PLDA scores.
FAMILIES = ("pixels", "patch-vae", "patch-vae-fisher")
#: LFW training settings (both with no outside data).
SETTINGS = ("image-restricted", "unrestricted")
#: The test folds of LFW View 2 as the loader numbers them (pairs.txt's ten folds, from 0).
VIEW2_FOLDS = tuple(range(10))
#: Columns of the stored View 2 pair scores beside one score column per system (`score_column`).
SCORE_KEYS = ("fold", "pair", "same", "frozen_sha256")
#: Same and different pairs of each View 2 fold in LFW's pairs.txt.
VIEW2_PAIRS_PER_FOLD = (300, 300)

#: Published LFW View 2 anchors (mean accuracy ± SE; LFW results page): category -> name -> (mean, se).
PUBLISHED = {
    "image-restricted, no outside data": {
        "Eigenfaces, original (Turk & Pentland 1991)": (0.6002, 0.0079),
        "Nowak, funneled (Nowak & Jurie 2007)": (0.7393, 0.0049),
        "LDML, funneled (Guillaumin et al. 2009)": (0.7927, 0.0060),
        "V1-like/MKL, funneled (Pinto et al. 2009)": (0.7935, 0.0055),
        "Fisher vector faces (Simonyan et al. 2013)": (0.8747, 0.0149),
    },
    "unrestricted, no outside data": {
        "Fisher vector faces (Simonyan et al. 2013)": (0.9303, 0.0105),
    },
}

_PATCH_DEFAULTS = {"patch": 12, "stride": 6, "latent_dim": 12, "gaussian_scale": 0.02, "epochs": 4,
                   "max_patches": 200_000, "power": 0.5, "scales": ()}
#: Patch parameters that change how a trained patch VAE reads faces, not what it learns.
_READ_PARAMS = ("power", "scales")
#: Fisher vectors: `stride` is the descriptor grid's step (denser than the patch VAE's training grid).
_FISHER_DEFAULTS = {"n_components": 32, "spatial": True, "stride": 3}


@dataclasses.dataclass(frozen=True)
class LFWSetting:
    """Every choice that decides one LFW verification system.

    family: "pixels" (the crop's pixels), "patch-vae" (`PatchVAEEmbedding` latents) or
        "patch-vae-fisher" (the same patch VAE's latents, Fisher-vector encoded).
    setting: "image-restricted" or "unrestricted" (how the PLDA learns; see the module).
    size, crop: images are the centre `crop` x `crop` of the 250 px LFW images, resized to `size`.
    patch: `PatchVAEEmbedding` parameters (family patch-vae*); fisher: `FisherVectorEncoder`'s.
    pca: PCA components after the representation (None: none); plda: the PLDA's own PCA.
    estimator: PLDA covariances by "moments" or "em" (EM needs identities: unrestricted only).
    length_norm: whiten and length-normalise before the PLDA.
    seed: every random choice of the representation.
    scorer: the pair scorer, a name registered in `scores.SCORERS` ("plda" by default: the
        PLDA of `plda`, `estimator`, `length_norm`); another scorer is built as
        ``SCORERS[scorer](**scorer_options)`` and the three PLDA fields are not used.
    scorer_options: keyword arguments of a scorer other than "plda".

    A PLDA setting's `to_dict` / `key` leave `scorer` and `scorer_options` out, so settings
    frozen before they existed (which mean PLDA) read back, and key, as they were written.
    """

    family: str = "patch-vae"
    setting: str = "image-restricted"
    size: int = 64
    crop: int = 120
    patch: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    fisher: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    pca: int | None = 300
    plda: int = 100
    estimator: str = "moments"
    length_norm: bool = False
    seed: int = 0
    scorer: str = "plda"
    scorer_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}")
        if self.setting not in SETTINGS:
            raise ValueError(f"setting must be one of {SETTINGS}, got {self.setting!r}")
        if self.estimator not in ("moments", "em"):
            raise ValueError(f"estimator must be 'moments' or 'em', got {self.estimator!r}")
        if self.estimator == "em" and self.setting == "image-restricted":
            raise ValueError("estimator='em' needs identity labels, which the image-restricted setting "
                             "does not have; use 'moments' or setting='unrestricted'")
        for name in ("size", "crop", "plda"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.pca is not None and self.pca < 1:
            raise ValueError(f"pca must be None or >= 1, got {self.pca}")
        for what, given, known in (("patch", self.patch, _PATCH_DEFAULTS), ("fisher", self.fisher, _FISHER_DEFAULTS)):
            unknown = set(given) - set(known)
            if unknown:
                raise ValueError(f"unknown {what} parameter(s) {sorted(unknown)}; known: {sorted(known)}")
        if self.family == "patch-vae-fisher" and self.patch.get("scales"):
            raise ValueError("patch scales (an image pyramid) go with family 'patch-vae'; the Fisher vectors "
                             "encode the full-size grid's latents")
        patch = dict(self.patch)
        if "scales" in patch:  # one form (a tuple of sides) however it came, e.g. a list read back from JSON
            patch["scales"] = tuple(int(v) for v in patch["scales"])
        object.__setattr__(self, "patch", patch)
        object.__setattr__(self, "fisher", dict(self.fisher))
        self._check_scorer()

    def _check_scorer(self) -> None:
        object.__setattr__(self, "scorer", SCORERS.canonical(self.scorer))  # unknown: lists the known names
        options = dict(self.scorer_options)
        object.__setattr__(self, "scorer_options", options)
        if self.scorer == "plda":
            if options:
                raise ValueError(f"scorer_options {sorted(options)} are for scorers other than 'plda'; the PLDA's "
                                 "settings are the fields plda, estimator and length_norm")
            return
        if self.estimator != "moments" or self.length_norm:
            raise ValueError(f"estimator and length_norm are the PLDA's; scorer {self.scorer!r} takes its settings "
                             "from scorer_options")
        try:
            SCORERS[self.scorer](**options)
        except TypeError as err:
            raise ValueError(f"scorer {self.scorer!r} does not take scorer_options {options} ({err}); "
                             "give the keyword arguments its class takes") from None

    @property
    def category(self) -> str:
        return f"{self.setting}, no outside data"

    @property
    def patch_params(self) -> dict:
        return {**_PATCH_DEFAULTS, **self.patch}

    @property
    def fisher_params(self) -> dict:
        """`FisherVectorEncoder` parameters plus `stride`, the descriptor grid's step."""
        return {**_FISHER_DEFAULTS, **self.fisher, "local_dim": self.patch_params["latent_dim"]}

    def representation_key(self) -> tuple:
        """What decides the trained representation (candidates sharing it share one fit)."""
        if self.family == "pixels":
            return ("pixels", self.size, self.crop)
        vae = {k: v for k, v in self.patch_params.items() if k not in _READ_PARAMS}
        return ("patch-vae", self.size, self.crop, self.seed, tuple(sorted(vae.items())))

    def describe(self) -> str:
        if self.family == "pixels":
            rep = f"pixels {self.size} px crop {self.crop}"
        else:
            p = self.patch_params
            rep = (f"patch VAE {self.size} px crop {self.crop}, {p['patch']} px patches step {p['stride']}, "
                   f"d={p['latent_dim']}, Gaussian {p['gaussian_scale']:g}, {p['epochs']} ep")
            if p["scales"]:
                rep += f", also read at {'+'.join(map(str, p['scales']))} px"
            if self.family == "patch-vae-fisher":
                f = self.fisher_params
                rep += (f", Fisher vectors K={f['n_components']}{' +xy' if f['spatial'] else ''}"
                        f" of descriptors every {f['stride']} px")
        pca = f", PCA {self.pca}" if self.pca else ""
        if self.scorer != "plda":
            options = "".join(f" {k}={v}" for k, v in sorted(self.scorer_options.items()))
            return f"{rep}{pca}, {self.scorer}{options}"
        plda = f"PLDA {self.plda}{' EM' if self.estimator == 'em' else ''}{' length-norm' if self.length_norm else ''}"
        return f"{rep}{pca}, {plda}"

    def to_dict(self) -> dict:
        """The fields; `scorer` and `scorer_options` only for a scorer other than PLDA (see the class)."""
        d = dataclasses.asdict(self)
        if self.scorer == "plda":
            del d["scorer"], d["scorer_options"]
        return d

    def key(self) -> str:
        """The setting as canonical JSON: its identity in the View 1 table (`setting_json`)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LFWSetting":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown LFWSetting field(s) {sorted(unknown)}; known: {sorted(names)}")
        return cls(**d)


def candidates(profile: str = "full") -> list[LFWSetting]:
    """The View 1 search space: "full" (the study's) or "quick" (a smoke run of every family)."""
    if profile == "quick":
        small = {"epochs": 1, "max_patches": 5_000}
        out = [LFWSetting("pixels", s, 32, 110, pca=None, plda=20) for s in SETTINGS]
        for fam in ("patch-vae", "patch-vae-fisher"):
            for s in SETTINGS:
                out.append(LFWSetting(fam, s, 32, 110, patch={**small, "patch": 16, "stride": 8},
                                      fisher={"n_components": 4, "stride": 4}, pca=30, plda=10))
        return out
    if profile != "full":
        raise ValueError(f"profile must be 'quick' or 'full', got {profile!r}")
    out = []
    for s in SETTINGS:
        variants = [("moments", False), ("moments", True)] + (
            [("em", False), ("em", True)] if s == "unrestricted" else [])
        for crop in (90, 110, 150):
            for k in (50, 100):
                out += [LFWSetting("pixels", s, 32, crop, pca=None, plda=k, estimator=e, length_norm=ln)
                        for e, ln in variants]
        for crop in (110, 120):
            for pca, k in ((200, 100), (300, 100), (300, 150)):
                out += [LFWSetting("patch-vae", s, 64, crop, pca=pca, plda=k, estimator=e, length_norm=ln)
                        for e, ln in variants]
                for K in (32, 64):
                    out += [LFWSetting("patch-vae-fisher", s, 64, crop, fisher={"n_components": K}, pca=pca,
                                       plda=k, estimator=e, length_norm=ln) for e, ln in variants]
        # the same patch VAE also reading an image pyramid (added after the first selection run;
        # `lfw select --append` scores them)
        for scales in ((32,), (48, 32)):
            for pca, k in ((200, 100), (300, 100)):
                out += [LFWSetting("patch-vae", s, 64, 120, patch={"scales": scales}, pca=pca, plda=k,
                                   estimator=e, length_norm=ln) for e, ln in variants]
    return out


# ---------------------------------------------------------------- representations and scorers

def representation_features(setting: LFWSetting, images, fit_rows, rows, cache: dict | None = None) -> np.ndarray:
    """The trained part of a setting fitted on `images[fit_rows]` (uint8 N x C x H x W) and applied
    to `images[rows]`: an (N, d) array, zero outside `rows` (which must include `fit_rows`).

    `cache` (one per training set) shares what settings have in common: one patch VAE for every
    setting with its training parameters, its latents per (power, stride), one Fisher mixture per
    size. Nothing outside `fit_rows` is ever fitted on."""
    cache = {} if cache is None else cache
    fit_rows, rows = np.asarray(fit_rows), np.asarray(rows)
    if not np.isin(fit_rows, rows).all():
        raise ValueError("rows must include fit_rows (the features of the training rows are needed)")

    def memo(key, make):
        if key not in cache:
            cache[key] = make()
        return cache[key]

    if setting.family == "pixels":
        return memo(("pixels", setting.size, setting.crop), lambda: _features(flatten_images, images, rows))
    key = setting.representation_key()
    params = {k: v for k, v in setting.patch_params.items() if k not in _READ_PARAMS}
    vae = memo(key, lambda: PatchVAEEmbedding(**params, random_state=setting.seed).fit(images[fit_rows]))
    if setting.family == "patch-vae":
        power, scales = setting.patch_params["power"], setting.patch_params["scales"]
        return memo(key + ("latents", power, vae.stride, scales),
                    lambda: _features(_with_params(vae, power=power, scales=scales).transform, images, rows))
    fisher = dict(setting.fisher_params)
    stride = fisher.pop("stride")
    local = memo(key + ("latents", 1.0, stride),
                 lambda: _features(_with_params(vae, power=1.0, stride=stride).transform, images, rows))

    def encode():
        fv = FisherVectorEncoder(**fisher, random_state=setting.seed).fit(local[fit_rows])
        Z = fv.transform(local[rows])
        out = np.zeros((len(local), Z.shape[1]))
        out[rows] = Z
        return out

    return memo(key + ("fisher", tuple(sorted(setting.fisher_params.items()))), encode)


def _with_params(vae, **params):
    """The fitted patch VAE `vae` transforming with other `power` / `stride` (a shallow copy that
    shares the trained model: neither parameter changes what the VAE learned)."""
    out = copy.copy(vae)
    for k, v in params.items():
        setattr(out, k, v)
    return out


def _scorer(setting: LFWSetting):
    """The setting's pair scorer, unfitted: its PLDA, or the registered scorer it names."""
    if setting.scorer == "plda":
        return TwoCovarianceScore(n_components=setting.plda, estimator=setting.estimator,
                                  length_norm=setting.length_norm)
    return SCORERS[setting.scorer](**setting.scorer_options)


def _head(setting: LFWSetting):
    """The representation stage refitted inside the protocol on fixed features: the PCA."""
    return PCA(setting.pca, random_state=setting.seed) if setting.pca else None


def _features(fn, images, rows, batch: int = 2048) -> np.ndarray:
    """fn(images[rows]) in batches, as an (N, d) array with zeros for rows not asked for."""
    rows = np.asarray(rows)
    parts = [np.asarray(fn(images[torch.as_tensor(rows[i:i + batch])])) for i in range(0, len(rows), batch)]
    Z = np.concatenate(parts).astype(np.float64)
    out = np.zeros((len(images), Z.shape[1]))
    out[rows] = Z
    return out


def _label(setting: LFWSetting) -> tuple[str, str]:
    """(method, representation) names of a setting's result rows."""
    labels = f"({'identities' if setting.setting == 'unrestricted' else 'pairs'})"
    if setting.scorer != "plda":
        return f"{setting.scorer}{labels}", setting.describe()
    method = f"plda{' EM' if setting.estimator == 'em' else ''}{' length-norm' if setting.length_norm else ''}" + labels
    return method, setting.describe()


# ---------------------------------------------------------------- View 1 selection

def _load(split: str, size: int, crop: int, other_images: bool, root=None):
    return load("lfw-pairs", split=split, size=size, crop=crop, other_images=other_images, download=False,
                **({"root": root} if root else {}))


def _by_images(settings: Sequence[LFWSetting]):
    """(size, crop, settings, whether any is unrestricted) per image preparation, in order."""
    groups: dict[tuple, list[LFWSetting]] = {}
    for s in settings:
        groups.setdefault((s.size, s.crop), []).append(s)
    for (size, crop), group in groups.items():
        yield size, crop, group, any(s.setting == "unrestricted" for s in group)


def _evaluate(s: LFWSetting, protocol, roc_fars=(), details: bool = False):
    """One setting's tidy rows on a protocol over fixed features (`View1`, or one View 2 fold as a
    `Split`): the PCA refitted on the training pairs' images, the scorer on their pairs
    (image-restricted) or on the training people's images (unrestricted); `roc_fars` adds the test
    ROC at those FARs (`roc.tar_curve`). `details`: (rows, the test pairs' scores as
    `protocols.SplitResult.scores` gives them)."""
    method, rep_name = _label(s)
    res = evaluate(_head(s), {method: _scorer(s)}, protocol, representation_name=rep_name, roc_fars=roc_fars,
                   return_details=True)
    out = res.results
    out["family"], out["setting"] = s.family, s.setting
    return (out, pd.concat(res.scores, ignore_index=True)) if details else out


def evaluate_view1(settings: Sequence[LFWSetting], *, root=None, progress=print, test_images=None) -> pd.DataFrame:
    """Every setting on View 1 (fit on pairsDevTrain, test on pairsDevTest); tidy rows plus the
    setting's JSON in column `setting_json`. Settings sharing a trained representation share one fit.

    `test_images`: the View 1 test faces a system is shown instead of the real ones (uint8, the
    loader's rows and order at the settings' size and crop, e.g. a model's reconstructions of
    them): what the frozen system, fitted on the training faces as they are, makes of them. Every
    setting must then read the same size and crop."""
    rows = []
    for size, crop, group, people in _by_images(settings):
        train, test = _load("train", size, crop, people, root), _load("test", size, crop, False, root)
        if test_images is not None:
            shown = torch.as_tensor(test_images)
            if shown.dtype != torch.uint8 or tuple(shown.shape) != tuple(test.images.shape):
                raise ValueError(f"test_images must be uint8 images shaped like View 1's test faces at size {size} "
                                 f"and crop {crop}, {tuple(test.images.shape)}; got {shown.dtype} "
                                 f"{tuple(shown.shape)}")
            test = dataclasses.replace(test, images=shown, name=f"{test.name}[images replaced]")
        n_train = len(train.images)
        images = torch.cat([train.images, test.images])
        pair_rows = np.unique(train.pair_table[["left", "right"]].to_numpy())
        cache: dict = {}
        # every training row when some setting of the group is unrestricted
        feature_rows = np.r_[np.arange(n_train) if people else pair_rows, np.arange(n_train, len(images))]
        for s in group:
            E = representation_features(s, images, pair_rows, feature_rows, cache)
            view1 = View1(E[:n_train], train.pair_table, E[n_train:], test.pair_table, train_identity=train.identity,
                          labels=s.setting, representation_on="pairs")
            out = _evaluate(s, view1)
            out["setting_json"] = s.key()
            rows.append(out)
            acc = out.loc[out.metric == "accuracy", "value"].iloc[0]
            progress(f"  View 1 {s.setting:16s} {acc:.3f}  {out.representation.iloc[0]} / {out.method.iloc[0]}")
        cache.clear()
    return pd.concat(rows, ignore_index=True)


#: Families frozen as reference systems whatever they score (the others compete for the choice).
BASELINES = ("pixels",)


def choose(view1: pd.DataFrame, metric: str = "accuracy", baselines: Sequence[str] = BASELINES) -> list[LFWSetting]:
    """From a View 1 table: per LFW setting, the best candidate of the non-baseline families (the
    system LFW View 2 reports) and the best of each baseline family (its reference), by `metric`.
    Ties go to the earlier candidate (the search space lists simpler settings first)."""
    scores = view1[view1.metric == metric].reset_index(drop=True)
    scores = scores.assign(pool=np.where(scores.family.isin(list(baselines)), scores.family, "system"))
    best = []
    for _, g in scores.groupby(["pool", "setting"], sort=False):
        top = g.loc[g["value"].idxmax()]
        best.append(LFWSetting.from_dict(json.loads(top["setting_json"])))
    return best


def select(settings: Sequence[LFWSetting], *, metric: str = "accuracy", root=None,
           progress=print) -> tuple[pd.DataFrame, list[LFWSetting]]:
    """(View 1 table of every candidate, `choose`'s settings). Only the chosen settings go on to
    View 2; every candidate's View 1 figures stay in the table."""
    table = evaluate_view1(settings, root=root, progress=progress)
    return table, choose(table, metric)


def freeze(best: Iterable[LFWSetting], view1: pd.DataFrame, path: str | Path) -> Path:
    """Write the chosen settings with their View 1 figures to `path` (JSON); refuses to overwrite."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists: a frozen choice is made once; move it away to select again")
    entries = []
    for s in best:
        mine = view1[view1.setting_json == s.key()]
        figures = {m: float(mine.loc[mine.metric == m, "value"].iloc[0]) for m in ("accuracy", "auc", "eer")}
        entries.append({"setting": s.to_dict(), "description": s.describe(), "category": s.category,
                        "view1": figures})
    doc = {"protocol": "chosen on LFW View 1 (pairsDevTrain -> pairsDevTest) by test accuracy",
           "candidates": int(view1.setting_json.nunique()), "commit": git_commit(Path(__file__).parent),
           "date": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"), "frozen": entries}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def read_frozen(path: str | Path) -> tuple[dict, str]:
    """(the frozen document, its sha256). A clear error for a file that is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no frozen LFW choice at {path}; make one with `python -m facelib lfw select`")
    raw = path.read_bytes()
    try:
        doc = json.loads(raw)
        for e in doc["frozen"]:
            LFWSetting.from_dict(e["setting"])
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a frozen LFW choice written by `facelib lfw select` ({err})") from None
    return doc, hashlib.sha256(raw).hexdigest()


def frozen_setting(path: str | Path, family: str, setting: str) -> LFWSetting:
    """The one setting of `family` frozen for LFW `setting` in the file at `path`."""
    doc, _ = read_frozen(path)
    found = [LFWSetting.from_dict(e["setting"]) for e in doc["frozen"]
             if e["setting"]["family"] == family and e["setting"]["setting"] == setting]
    if len(found) != 1:
        raise ValueError(f"{path} freezes {len(found)} {family} system(s) for {setting}, not one; "
                         "select again with `python -m facelib lfw select`")
    return found[0]


# ---------------------------------------------------------------- the one View 2 run

def score_column(setting: LFWSetting) -> str:
    """The column of a system's pair scores in the stored View 2 scores (its result rows' labels)."""
    method, rep = _label(setting)
    return f"{method} | {rep}"


def check_test_folds(folds) -> list[int]:
    """`folds` as a list of View 2 folds, refusing folds View 2 lacks and repeated ones (by name)."""
    folds = [int(k) for k in folds]
    unknown = sorted({k for k in folds if k not in VIEW2_FOLDS})
    twice = sorted({k for k in folds if folds.count(k) > 1})
    if unknown:
        raise ValueError(f"test fold(s) {unknown} are not View 2 folds; View 2 has folds "
                         f"{VIEW2_FOLDS[0]}-{VIEW2_FOLDS[-1]}")
    if twice:
        raise ValueError(f"test fold(s) {twice} given more than once; give each fold once")
    return folds


def run_view2(frozen: str | Path, *, test_folds=None, root=None, progress=print, with_scores: bool = False):
    """Every frozen setting on LFW View 2: for each test fold, the representation is trained on
    the other nine folds' pair images, the PCA on them, the PLDA on their pairs (restricted) or
    on every image of their people (unrestricted). Tidy rows, one per fold and metric, with
    each fold's ROC at `roc.ROC_FARS` (roc_tar@far=...; `roc_table` averages them).

    `with_scores=True` returns (rows, scores): every test pair's score too, one row per pair
    (`SCORE_KEYS`) and one column per system (`score_column`), so that any figure of the run can
    be recomputed from the scores alone (`roc_table_from_scores`) without running it again.
    """
    doc, sha = read_frozen(frozen)
    settings = [LFWSetting.from_dict(e["setting"]) for e in doc["frozen"]]
    asked = None if test_folds is None else check_test_folds(test_folds)
    rows, scores = [], []
    for size, crop, group, people in _by_images(settings):
        ds = _load("10_folds", size, crop, people, root)
        table = ds.pair_table
        image_folds = person_folds(ds.identity, table) if people else None
        folds = sorted(table.fold.unique()) if asked is None else asked
        absent = sorted(set(folds) - set(table.fold))
        if absent:
            raise ValueError(f"the View 2 pair table has no fold(s) {absent}; its folds are {sorted(table.fold.unique())}")
        for k in folds:
            t0 = time.time()
            train, test = table[table.fold != k], table[table.fold == k]
            pair_rows = np.unique(train[["left", "right"]].to_numpy())
            test_rows = np.unique(test[["left", "right"]].to_numpy())
            people_rows = np.flatnonzero((image_folds >= 0) & (image_folds != k)) if people else pair_rows
            cache: dict = {}
            feature_rows = np.unique(np.r_[people_rows, pair_rows, test_rows])
            for s in group:
                E = representation_features(s, ds.images, pair_rows, feature_rows, cache)
                fold = Split(E, train, test, identity=ds.identity, labels=s.setting, representation_rows=pair_rows,
                             train_rows=people_rows if s.setting == "unrestricted" else pair_rows, fold=int(k),
                             name="lfw-view2")
                out, pair_scores = _evaluate(s, fold, roc_fars=ROC_FARS, details=True)
                out["frozen_sha256"] = sha
                rows.append(out)
                scores.append(pair_scores.assign(column=score_column(s)))
            progress(f"  View 2 fold {k}: {time.time() - t0:.0f} s")
    rows = pd.concat(rows, ignore_index=True)
    if not with_scores:
        return rows
    return rows, _wide_scores(pd.concat(scores, ignore_index=True), [score_column(s) for s in settings], sha)


def _wide_scores(long: pd.DataFrame, columns: list[str], sha: str) -> pd.DataFrame:
    """Pair scores (fold, pair, same, score, column) -> one row per pair, one column per system:
    every system scores the same official pairs, so the pair keys are stored once."""
    wide = long.pivot_table(index=["fold", "pair", "same"], columns="column", values="score", aggfunc="first")
    wide = wide.reindex(columns=[c for c in columns if c in wide.columns])
    if wide.isna().any().any():
        raise ValueError("the systems did not score the same View 2 pairs; the scores cannot be stored together")
    wide = wide.reset_index()
    wide.columns.name = None
    wide["frozen_sha256"] = sha
    return wide[[*SCORE_KEYS, *wide.columns.drop(list(SCORE_KEYS))]]


def check_scores(scores: pd.DataFrame, where: str = "the scores", pair_table: pd.DataFrame | None = None) -> list[str]:
    """The system columns of stored View 2 scores, after checking the table is one: the key
    columns present, finite scores, each pair once, every fold whole. With `pair_table` (the
    frozen View 2 pairs, `view2_pair_table`: same and fold by pair), each pair's fold and label
    must be the table's and each fold must hold all its pairs; without, the folds must hold equal
    numbers of same and of different pairs. Errors name what is wrong and where."""
    missing = [c for c in SCORE_KEYS if c not in scores.columns]
    systems = [c for c in scores.columns if c not in SCORE_KEYS and c not in PROVENANCE]
    if missing:
        raise ValueError(f"{where} lack column(s) {missing}; pass pair scores written by `lfw view2` "
                         f"(columns {list(SCORE_KEYS)} and one score column per system)")
    if not systems:
        raise ValueError(f"{where} have no score column; `lfw view2` writes one per frozen system")
    values = scores[systems].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        bad = [c for c, ok in zip(systems, np.isfinite(values).all(axis=0)) if not ok]
        raise ValueError(f"{where} have missing or non-numeric scores in {bad}; rerun the folds concerned")
    twice = scores.duplicated(["fold", "pair"])
    if twice.any():
        dup = sorted(scores.loc[twice, "fold"].unique().tolist())
        raise ValueError(f"{where} hold some pairs more than once (fold(s) {dup}); each pair must appear once")
    same = pd.Series(check_same(scores["same"].to_numpy(), len(scores), f"{where} column 'same'"), index=scores.index)
    if pair_table is None:
        counts = scores.assign(same=same).groupby("fold")["same"].agg(["sum", "size"])
        want = (int(counts["sum"].max()), int((counts["size"] - counts["sum"]).max()))
        uneven = counts[(counts["sum"] != want[0]) | (counts["size"] - counts["sum"] != want[1])]
        if len(uneven):
            said = ", ".join(f"fold {int(k)}: {int(r['sum'])} same + {int(r['size'] - r['sum'])} different"
                             for k, r in uneven.iterrows())
            raise ValueError(f"{where} hold folds with fewer pairs than the others ({want[0]} same + {want[1]} "
                             f"different): {said}; a fold is scored whole - rerun `lfw view2` for those folds")
        return systems
    _check_against_pairs(scores.assign(same=same), pair_table, where)
    return systems


def view2_pair_table(root: str | Path | None = None) -> pd.DataFrame:
    """LFW View 2's frozen pair list (pairs.txt): same and fold of every pair, indexed as the
    stored scores number pairs (file order, from 0)."""
    path = data_root(root) / "scikit_learn_data" / "lfw_home" / LFW_PAIR_FILES["10_folds"]
    if not path.is_file():
        raise FileNotFoundError(f"no LFW View 2 pair list at {path}; the scores are checked against it: get it with "
                                "`python -m facelib data fetch lfw`")
    return read_lfw_pairs_file(path)[["same", "fold"]]


def _check_against_pairs(scores: pd.DataFrame, pair_table: pd.DataFrame, where: str) -> None:
    """Every stored pair is a View 2 pair of its fold with its label, and every fold present holds
    all of its pairs (`VIEW2_PAIRS_PER_FOLD` in LFW); errors name the folds and pairs."""
    table = pair_table[["same", "fold"]]
    known = scores["pair"].isin(table.index)
    if not known.all():
        bad = scores.loc[~known, "pair"].tolist()
        raise ValueError(f"{where} hold pairs View 2 does not have ({bad[:5]}{' ...' if len(bad) > 5 else ''}); "
                         "score the official pairs with `lfw view2`")
    ref = table.loc[scores["pair"].to_numpy()]
    moved = scores["fold"].to_numpy() != ref["fold"].to_numpy()
    if moved.any():
        rows = scores[moved]
        raise ValueError(f"{where} put pairs in other folds than View 2's: " + ", ".join(
            f"pair {int(p)} in fold {int(f)}, not {int(r)}" for p, f, r in
            zip(rows["pair"][:5], rows["fold"][:5], ref["fold"][moved][:5])) + "; rerun `lfw view2`")
    flipped = scores["same"].to_numpy(bool) != ref["same"].to_numpy(bool)
    if flipped.any():
        folds = sorted(int(k) for k in scores.loc[flipped, "fold"].unique())
        raise ValueError(f"{where} have same labels that contradict View 2's pair list: {int(flipped.sum())} pair(s) "
                         f"in fold(s) {folds} (e.g. pair {int(scores.loc[flipped, 'pair'].iloc[0])}); the scores were "
                         "not made from the frozen pair table: rerun `lfw view2` for those folds")
    want = table.groupby("fold")["same"].agg(["sum", "size"])
    have = scores.groupby("fold")["same"].agg(["sum", "size"])
    short = [(int(k), int(r["sum"]), int(r["size"] - r["sum"]), int(want.loc[k, "sum"]),
              int(want.loc[k, "size"] - want.loc[k, "sum"])) for k, r in have.iterrows()
             if r["size"] != want.loc[k, "size"]]
    if short:
        raise ValueError(f"{where} hold part of a fold: " + ", ".join(
            f"fold {k}: {s} same + {d} different of {ws} + {wd}" for k, s, d, ws, wd in short)
            + "; a fold is scored whole - rerun `lfw view2 --test-folds` for those folds")


def fold_roc_rows(scores: pd.DataFrame, frozen: str | Path, fars: Sequence[float] = ROC_FARS) -> pd.DataFrame:
    """Each frozen system's ROC on each test fold at `fars`, from stored pair scores: the tidy
    roc_tar@far=... rows `run_view2` makes (`roc.tar_curve` of the fold's scores)."""
    doc, sha = read_frozen(frozen)
    check_scores(scores)
    runs = set(scores.frozen_sha256.astype(str))
    if runs != {sha}:
        raise ValueError(f"the scores come from frozen choice(s) {sorted(runs)}, not {frozen} ({sha}); "
                         "recompute them with `lfw view2` for that file")
    out = []
    for e in doc["frozen"]:
        s = LFWSetting.from_dict(e["setting"])
        col = score_column(s)
        if col not in scores.columns:
            raise ValueError(f"the scores have no column {col!r} of the frozen system {s.describe()!r}; "
                             "rerun `lfw view2` to store every system's scores")
        method, rep = _label(s)
        for k, fold in scores.groupby("fold", sort=True):
            tar = tar_curve(check_same(fold["same"].to_numpy()), fold[col].to_numpy(dtype=np.float64), list(fars))
            out.append(pd.DataFrame({"method": method, "representation": rep, "protocol": "lfw-view2",
                                     "fold": int(k), "metric": [f"roc_tar@far={f:g}" for f in fars],
                                     "value": tar, "category": s.category, "family": s.family,
                                     "setting": s.setting, "frozen_sha256": sha}))
    return pd.concat(out, ignore_index=True)


def roc_table_from_scores(scores: pd.DataFrame, frozen: str | Path) -> pd.DataFrame:
    """`roc_table` recomputed from the stored pair scores (`run_view2(..., with_scores=True)`),
    so the ROC file follows the scores, not per-fold figures made by an older `tar_curve`."""
    return roc_table(fold_roc_rows(scores, frozen), frozen)


def view2_table(view2: pd.DataFrame, frozen: str | Path) -> pd.DataFrame:
    """One row per frozen setting: its View 1 figures (the choice) beside View 2 mean ± SE."""
    doc, sha = read_frozen(frozen)
    acc = summarize(view2, "accuracy").set_index(["method", "representation"])
    auc = summarize(view2, "auc").set_index(["method", "representation"])["mean"]
    eer = summarize(view2, "eer").set_index(["method", "representation"])["mean"]
    out = []
    for e in doc["frozen"]:
        s = LFWSetting.from_dict(e["setting"])
        key = _label(s)
        if key not in acc.index:
            continue
        r = acc.loc[key]
        out.append({"family": s.family, "category": s.category, "system": s.describe(),
                    "view1_accuracy": e["view1"]["accuracy"], "view1_auc": e["view1"]["auc"],
                    "view2_accuracy": float(r["mean"]), "view2_se": float(r["se"]),
                    "view2_auc": float(auc[key]), "view2_eer": float(eer[key]), "folds": int(r["n_folds"]),
                    "frozen_sha256": sha})
    return pd.DataFrame(out)


def roc_table(view2: pd.DataFrame, frozen: str | Path) -> pd.DataFrame:
    """The View 2 ROC of every frozen setting: per FAR, the mean TAR over the test folds (each
    fold's own curve, `roc.tar_curve`, averaged vertically) and its standard error, by LFW's
    mean ± SE rule (`protocols.summarize`); columns family, category, system, far, tar, tar_se, folds."""
    doc, sha = read_frozen(frozen)
    prefix = "roc_tar@far="
    metrics = [m for m in view2.metric.astype(str).unique() if m.startswith(prefix)]
    if not metrics:
        raise ValueError(f"the View 2 rows carry no ROC points ({prefix}...); they come from `run_view2`")
    per_far = pd.concat([summarize(view2, m) for m in metrics], ignore_index=True)
    per_far["far"] = per_far.metric.str.slice(len(prefix)).astype(float)
    out = []
    for e in doc["frozen"]:
        s = LFWSetting.from_dict(e["setting"])
        method, rep = _label(s)
        mine = per_far[(per_far.method == method) & (per_far.representation == rep)].sort_values("far")
        out += [{"family": s.family, "category": s.category, "system": s.describe(), "far": float(r.far),
                 "tar": float(r["mean"]), "tar_se": float(r.se), "folds": int(r.n_folds), "frozen_sha256": sha}
                for _, r in mine.iterrows()]
    return pd.DataFrame(out)
