"""Plumbing shared by the numbered notebooks, kept here so the notebooks stay narrative.

`start` reads a notebook's parameters from its namespace (`start("01_vae", globals())`: the
values its parameters cell set, papermill's overrides included), seeds everything, records
parameters and library versions (printed, and written to the run folder), and returns a
`Study` that knows where this notebook's outputs go. `load_data` gives every data set the
same size/channels options; `Study.train_or_load` reuses a checkpoint an earlier notebook
(or an earlier run) wrote and otherwise trains and saves one.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facelib import data as fdata
from facelib import zoo
from facelib.data import DataNotFoundError, data_root
from facelib.experiment import ExperimentSpec, ModelSpec, RunConflictError, load_spec, run
from facelib.train.checkpoint import dataset_digest
from facelib.utils import library_versions, seed_everything
from facelib.zoo import recipes

__all__ = ["Study", "start", "notebook_parameters", "load_data", "checkpoint_key", "people_outside_pairs", "read_tables", "models_used"]


@dataclass
class Study:
    """One notebook's view of a run: its parameters and its output folder.

    Attributes:
        notebook: the notebook's short name (e.g. "01_vae").
        params: the notebook's parameters (its parameters cell, with the run's overrides).
        run_dir: the run folder (`reports/<run-id>/`) or None when run interactively
            without one; then nothing is written and checkpoints live in memory only.
    """

    notebook: str
    params: dict[str, Any]
    run_dir: Path | None = None
    versions: dict[str, str] = field(default_factory=dict)
    models: list[dict[str, Any]] = field(default_factory=list)
    _lfw_test: dict[str, Any] = field(default_factory=dict, repr=False)

    def __getitem__(self, key: str) -> Any:
        return self.params[key]

    @property
    def checkpoint_dir(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / "checkpoints"

    def path(self, name: str) -> Path | None:
        """Where output `name` of this notebook goes (None without a run folder)."""
        if self.run_dir is None:
            return None
        folder = self.run_dir / "figures" if name.endswith((".png", ".gif", ".svg", ".pdf")) else self.run_dir / "tables"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{self.notebook}_{name}"

    def save_table(self, table: pd.DataFrame, name: str) -> Path | None:
        """Write `table` as CSV into the run folder (if any); returns the path."""
        path = self.path(f"{name}.csv")
        if path is not None:
            table.to_csv(path, index=False)
        return path

    def save_figure(self, figure: Any, name: str) -> Path | None:
        """Save a matplotlib figure (or a seaborn grid) as PNG into the run folder (if any)."""
        path = self.path(f"{name}.png")
        if path is not None:
            getattr(figure, "figure", figure).savefig(path, dpi=120, bbox_inches="tight")
        return path

    def matched_epochs(self, n_train: int, cap: int = 200) -> int:
        """Epochs for a training set of `n_train` images so that a model sees about as many
        images as the run's `epochs` x `n_images` (small real sets get more epochs)."""
        epochs, n_images = int(self.params["epochs"]), int(self.params["n_images"])
        return int(min(cap, max(epochs, round(epochs * n_images / max(int(n_train), 1)))))

    def held_out_sets(self):
        """(name, FaceDataset) for each of `verify_datasets` that is present, at the run's size.

        LFW's pair lists have their own protocol (View 2) and are left out; a set that is
        not under the data root is skipped with a printed reason rather than failing the run.
        """
        for name in self.params["verify_datasets"]:
            if name == "lfw-pairs":
                continue
            try:
                faces = load_data(name, size=self.params["image_size"], n=self.params["n_images"],
                                  n_identities=self.params["n_identities"], seed=self.params["seed"])
            except DataNotFoundError as err:
                print(f"skipping {name}: {str(err).splitlines()[0]}")
                continue
            yield name, faces

    @property
    def use_zoo(self) -> bool:
        """Whether this run takes trained models from the zoo (`models="zoo"`) rather than training them."""
        mode = self.params.get("models", "train")
        if mode not in ("zoo", "train"):
            raise ValueError(f"models must be 'zoo' (load the shipped trained models) or 'train' (train them "
                             f"in this run), got {mode!r}")
        return mode == "zoo"

    def zoo_model(self, name: str):
        """The zoo model `name` (sha256-checked), recorded in the run as loaded from the zoo."""
        model = zoo.load(name)
        e = zoo.entry(name)
        self.record_model(name, source="zoo", zoo_name=name, sha256=e["sha256"], metrics=e["metrics"])
        print(f"zoo model {name}: {e['description']} ({e['training']['steps']} steps, "
              f"sha256 {e['sha256'][:12]}...)")
        return model

    @staticmethod
    def run_label(name: str, history: pd.DataFrame) -> str:
        """How a figure names a model this run trained: "this run's vae (120 steps, 9 s)"."""
        steps = int(history["step"].iloc[-1]) if len(history) and "step" in history else 0
        seconds = float(history["time_s"].sum()) if "time_s" in history else float("nan")
        return f"this run's {name} ({steps:,} steps, {seconds:.0f} s)"

    def model(self, entry: Any):
        """The model an entry of a notebook's model list names, trained or loaded the one way:

        * an `ExperimentSpec`, or the path of a spec file (.yaml / .yml / .json, e.g. from
          `python -m facelib train ... --dump-spec`): trained here (`run_spec`), or reused;
        * a zoo name: its stored weights when this run takes models from the zoo (`models="zoo"`)
          and the zoo has them, else its recipe trained at the run's scale (`train_recipe`).

        So a list may name a model the zoo does not ship; the zoo is only the cache of named specs
        that were trained already."""
        if isinstance(entry, (str, Path)) and str(entry).endswith((".yaml", ".yml", ".json")):
            entry = load_spec(entry)
        if isinstance(entry, ExperimentSpec):
            return self.run_spec(f"{entry.model.name}-{entry.identity()[:12]}", entry)[0]
        if self.use_zoo and entry in zoo.available():
            return self.zoo_model(entry)
        return self.train_recipe(entry)[0]

    @staticmethod
    def model_label(entry: Any) -> str:
        """How figures and tables name an entry of a model list (`model`)."""
        if isinstance(entry, (str, Path)) and str(entry).endswith((".yaml", ".yml", ".json")):
            return Path(entry).stem
        if isinstance(entry, ExperimentSpec):
            return f"{entry.model.name}-{entry.identity()[:8]}"
        return str(entry)

    def zoo_models(self, names: list[str]) -> dict[str, Any]:
        """Zoo models by the label figures give them (`zoo.label`: name, steps, training time)."""
        return {zoo.label(name): self.zoo_model(name) for name in names}

    def lfw_available(self) -> bool:
        """Whether LFW (its View 1 pair lists and images) is under the data root, so the zoo's
        LFW models can be shown on View 1's test faces; says so when it is not."""
        home = data_root() / "scikit_learn_data" / "lfw_home"
        there = (home / "pairsDevTest.txt").exists() and (home / "lfw_funneled").is_dir()
        if not there:
            print(f"LFW is not under {data_root()} (scikit_learn_data/lfw_home): the zoo's synthetic-faces models "
                  "are shown instead of its LFW ones")
        return there

    def recipe(self, name: Any):
        """A zoo recipe (a name or a `zoo.recipes.Recipe`, e.g. a `recipes.variant`) as this run
        trains it: synthetic-faces recipes at the run's scale (its images, size, people,
        latents, seed, and its epochs as steps; `zoo.recipes.at_scale`), LFW recipes on their own
        faces for the run's `lfw_steps`. Batch size, lr and the rest stay the recipe's."""
        r = recipes.recipe(name)
        if r.data == "synthetic":
            return recipes.at_scale(r, n_images=self["n_images"], image_size=self["image_size"],
                                    n_identities=self["n_identities"], latent_dim=self["latent_dim"],
                                    seed=int(self.params.get("seed", 0)), epochs=int(self["epochs"]))
        if self.params.get("lfw_steps") is None:
            raise ValueError(f"recipe {r.name!r} trains on {r.data!r} for the run's lfw_steps steps; "
                             "define lfw_steps in the notebook's parameters cell (e.g. lfw_steps = 60) "
                             "or pass study.start(..., lfw_steps=...)")
        return r.replace(steps=int(self["lfw_steps"]))

    def train_recipe(self, name: Any, *, key: str | None = None):
        """`self.recipe(name)` trained exactly as the zoo trains it (its `Recipe.spec()` through
        `experiment.run`), or reused from the run's checkpoints as `train_or_load` reuses them.
        Returns (model, history)."""
        r = self.recipe(name)
        return self.run_spec(key or recipes.recipe(name).name, r.spec())

    def lfw_study(self) -> bool:
        """Whether this run also does the original study on LFW faces (`lfw_study`, on in the full
        profile) and LFW is there; says why not when it is skipped."""
        if not self.params.get("lfw_study"):
            print("lfw_study is off (the quick profile): the LFW part of this notebook is skipped; "
                  "`-p lfw_study True` or the full profile runs it when LFW is under $FACELIB_DATA")
            return False

        try:
            recipes_data = self.lfw_test_faces("lfw-beta-vae-b4")
        except DataNotFoundError as err:
            print(f"skipping the LFW study: {str(err).splitlines()[0]}")
            return False
        print(f"LFW study: trained on View 1's training pairs, shown on {len(recipes_data)} View 1 test faces")
        return True

    def lfw_test_faces(self, name: str):
        """View 1's test faces (pairsDevTest) as the LFW recipe `name` sees them (size, crop, colour),
        cached for the notebook: no model of the LFW study saw their people."""
        key = repr(sorted(recipes.held_out_options(name).items()))
        if key not in self._lfw_test:
            self._lfw_test[key] = recipes.held_out_faces(name)
        return self._lfw_test[key]

    def record_model(self, key: str, source: str, **details: Any) -> None:
        """Note in `run_dir/models/<notebook>.json` where model `key` came from ("zoo", "trained",
        "reused"), so run.json can say for every model whether this run trained it."""
        entry = {"key": key, "source": source, **details}
        self.models.append(entry)
        if self.run_dir is not None:
            folder = self.run_dir / "models"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{self.notebook}.json").write_text(json.dumps(self.models, indent=2, default=str))

    def spec(self, model_name: str, *, epochs: int | None = None, steps: int | None = None,
             train_options: dict[str, Any] | None = None, **model_config: Any) -> ExperimentSpec:
        """The experiment this run trains for `model_name` (data given to `run_spec`): the run's
        seed, batch size, lr and decoder (`likelihood`, `gaussian_scale` unless `model_config`
        sets them), the run's epochs (or `epochs`, or `steps` optimiser steps)."""
        decoder = {k: self.params[k] for k in _DECODER_PARAMS if self.params.get(k) is not None}
        budget = ({"epochs": 10**6, "max_steps": int(steps)} if steps is not None
                  else {"epochs": int(epochs if epochs is not None else self.params.get("epochs", 10))})
        training = {"batch_size": int(self.params.get("batch_size", 64)), "lr": float(self.params.get("lr", 1e-3)),
                    "seed": int(self.params.get("seed", 0)), "progress": False, **budget, **(train_options or {})}
        return ExperimentSpec(model=ModelSpec(model_name, {**decoder, **model_config}), training=training)

    def train_or_load(self, key: str, model_name: str, dataset: Any, *, epochs: int | None = None,
                      steps: int | None = None, train_options: dict[str, Any] | None = None,
                      **model_config: Any):
        """`self.spec(...)` trained on `dataset`, or reused from the run's checkpoints (`run_spec`).
        Returns (model, history DataFrame)."""
        spec = self.spec(model_name, epochs=epochs, steps=steps, train_options=train_options, **model_config)
        return self.run_spec(key, spec, dataset)

    def run_spec(self, key: str, spec: ExperimentSpec, dataset: Any = None):
        """Run `spec` (on `dataset`, or the spec's own data) under the run folder's `checkpoints/key`.

        Another notebook of the same run may already have trained the model (e.g.
        04_latent_traversals reuses 02_beta_vae's): `experiment.run` reuses a finished run of the
        same identity (model and config, training config, data) and continues an unfinished one. A
        checkpoint of another training under `key` is kept, and this one trains under `key` plus a
        suffix of its spec's and data's identity. Returns (model, history DataFrame).
        """
        device = str(self.params.get("device", "auto"))
        if self.checkpoint_dir is None:
            result = run(spec, dataset=dataset, device=device)
            self.record_model(key, source="trained", checkpoint=None, model=spec.model.name)
            return result.model, result.history
        dataset = spec.make_dataset() if dataset is None else dataset
        own = hashlib.sha256(f"{spec.identity()} {dataset_digest(dataset)}".encode()).hexdigest()
        for candidate in (key, f"{key}-{own[:12]}"):
            try:
                result = run(spec, self.checkpoint_dir / candidate, dataset=dataset, device=device)
                break
            except RunConflictError as err:
                print(f"{err.folder} holds another training ({err.reason}) than the one asked for; keeping it and "
                      "training this one beside it")
        else:  # the folder named after this training's own identity holds something else (damaged): retrain there
            result = run(spec, self.checkpoint_dir / candidate, dataset=dataset, device=device, overwrite=True)
        if result.reused:
            print(f"reusing {result.checkpoint}")
        self.record_model(candidate, source="reused" if result.reused else "trained",
                          checkpoint=None if result.checkpoint is None else str(result.checkpoint), model=spec.model.name)
        return result.model, result.history


#: Run parameters that, when a notebook declares them, become model config fields of every
#: model it trains (so 01-06 share one decoder choice and can reuse each other's checkpoints).
_DECODER_PARAMS = ("likelihood", "gaussian_scale")

#: The run's own parameters, which every notebook's parameters cell defines beside its own.
RUN_PARAMETERS = ("profile", "run_dir", "seed", "device")

#: What a parameter's value can be: what a parameters cell writes and papermill injects.
_PLAIN = (type(None), bool, int, float, str, list, tuple, dict, os.PathLike)
#: Names IPython puts in a notebook's namespace.
_KERNEL_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython"})


def notebook_parameters(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters in a notebook's namespace (its `globals()` after the parameters cell and
    papermill's injected one, when the next cell calls `start`): every public lower-case name
    bound to a plain value (None, a bool, number, string, path, or a list / dict of them), so a
    notebook names each parameter once, in its parameters cell. Imports, functions, classes,
    IPython's own names and UPPER-CASE constants are not parameters."""
    return {k: v for k, v in namespace.items()
            if not k.startswith("_") and not k.isupper() and k not in _KERNEL_NAMES and isinstance(v, _PLAIN)}


def start(notebook: str, namespace: Mapping[str, Any] | None = None, **params: Any) -> Study:
    """Seed, record and print a notebook's parameters; the `Study` that holds them.

    A notebook calls `study.start("01_vae", globals())`: its parameters are read from the
    namespace (`notebook_parameters`); keywords add or override (`channels=1`). The values are
    the parameters cell's (the quick profile's) unless the run overrode them (`python -m facelib
    run --profile full` or `-p`). `profile` (a label recorded with the run) defaults to "quick",
    `seed` to 0; without `run_dir`, `$FACELIB_RUN_DIR` (if set) is used,
    so notebooks run one by one (e.g. by `pytest --nbval-lax` in `make test`) still share
    checkpoints and tables.
    """
    params = {**notebook_parameters(namespace or {}), **params}
    profile, run_dir, seed = params.pop("profile", "quick"), params.pop("run_dir", None), params.pop("seed", 0)
    if run_dir in (None, ""):
        run_dir = os.environ.get("FACELIB_RUN_DIR") or None
    resolved = {**params, "profile": profile, "seed": seed}
    seed_everything(seed)
    versions = library_versions()
    study = Study(notebook=notebook, params=resolved, run_dir=None if run_dir in (None, "") else Path(run_dir),
                  versions=versions)
    record = {"notebook": notebook, "parameters": resolved, "versions": versions, "platform": platform.platform()}
    if study.run_dir is not None:
        folder = study.run_dir / "parameters"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{notebook}.json").write_text(json.dumps(record, indent=2, default=str))
    print(f"{notebook}: profile={profile} seed={seed}")
    print("parameters:", json.dumps(resolved, default=str))
    print("versions:", ", ".join(f"{k} {v}" for k, v in versions.items()))
    return study


def load_data(name: str, size: int = 64, channels: int = 1, n: int | None = None,
              n_identities: int | None = None, seed: int = 0, **options: Any):
    """`facelib.data.load` with the same `size` / `channels` for every data set.

    `n`, `n_identities` and `seed` go only to a set that takes them (the synthetic faces: real
    sets are what they are); the registry (`data.dataset_info`) says which. A grey-only set
    refuses channels=3.
    """
    info = fdata.dataset_info(name)
    sampling = {"n": n, "n_identities": n_identities, "seed": seed}
    extra = {k: v for k, v in sampling.items() if v is not None and info.takes(k)}
    return fdata.load(info.name, size=size, channels=channels, **extra, **options)


def people_outside_pairs(people: Any, pairs: Any):
    """Images of `people` whose person appears in none of `pairs`' pairs.

    A representation trained on these images never saw a person of the given pairs. For
    View 2 that is still not outside data: its ten folds are disjoint sets of all LFW people,
    so these people belong to the test folds too (train per fold instead, e.g. with
    `verify.VAEEmbedding` as the protocol's representation).
    Both sets need `identity_names` (the LFW loaders set them).
    """
    for ds, what in ((people, "people"), (pairs, "pairs")):
        if not getattr(ds, "identity_names", None):
            raise ValueError(f"{what} has no identity_names; load it with facelib.data.load('lfw-...')")
    in_pairs = {pairs.identity_names[i] for i in np.unique(pairs.identity[pairs.identity >= 0])}
    names = np.asarray(people.identity_names, dtype=object)
    keep = ~np.isin(names[people.identity], list(in_pairs))
    return people.subset(keep, name=f"{people.name}[outside {pairs.name}]")


#: Short tags of config fields in checkpoint keys (beta 4 -> "_b4").
_KEY_TAGS = {"beta": "b"}


def checkpoint_key(model_name: str, dataset: str | None = None, **fields: Any) -> str:
    """The run-folder key of a model a notebook trains, one spelling for every notebook.

    The model name, each given field as a short tag (``beta=4`` -> ``_b4``), then the data set
    unless it is the synthetic faces: ``checkpoint_key("beta-vae", beta=4, dataset="olivetti")``
    is ``"beta-vae_b4_olivetti"``, so 02, 04, 05 and 06 find each other's checkpoints.
    """
    key = str(model_name)
    for name, value in fields.items():
        if value is None:
            continue
        shown = f"{float(value):g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)
        key += f"_{_KEY_TAGS.get(name, name)}{shown}"
    if dataset not in (None, "", "synthetic"):
        key += f"_{dataset}"
    return key


def models_used(run_dir: str | Path | None) -> pd.DataFrame:
    """Every model the notebooks of a run used (`Study.record_model`): notebook, key, source, ...

    Empty without a run folder."""
    folder = None if run_dir in (None, "") else Path(run_dir) / "models"
    if folder is None or not folder.is_dir():
        return pd.DataFrame(columns=["notebook", "key", "source"])
    rows = [{"notebook": p.stem, **r} for p in sorted(folder.glob("*.json")) for r in json.loads(p.read_text())]
    return pd.DataFrame(rows).drop(columns=["metrics"], errors="ignore")


def read_tables(run_dir: str | Path | None) -> dict[str, pd.DataFrame]:
    """Every CSV table the notebooks of a run wrote, by name (e.g. "06_verification_results").

    Empty without a run folder, so a summary notebook run on its own still runs.
    """
    if run_dir in (None, ""):
        return {}
    folder = Path(run_dir) / "tables"
    return {p.stem: pd.read_csv(p) for p in sorted(folder.glob("*.csv"))} if folder.is_dir() else {}
