"""`ExperimentSpec`: one training run as data - the data set, the model, the training.

A spec names a registered data set with its loader options (`DataSpec`), a registered model with
its config fields (`ModelSpec`) and a `TrainConfig`. It reads from and writes to YAML or JSON
(`load_spec`, `ExperimentSpec.save`), and its `identity` (a sha256 of its content, without the
fields that only say where and how fast to run) names the run. `experiment.run` trains one;
the `train` command, sweeps, zoo recipes, the notebooks and the verification estimators all
build a spec and call it.

    spec = ExperimentSpec(data=DataSpec("synthetic", {"n": 2000, "size": 32}),
                          model=ModelSpec("beta-vae", {"beta": 4, "latent_dim": 10}),
                          training=TrainConfig(epochs=5))
    spec.save("my.yaml"); load_spec("my.yaml") == spec
    spec.updated({"model.options.beta": 8, "training.lr": 5e-4})   # a sweep's grid point
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from facelib import data as fdata
from facelib.data import FaceDataset
from facelib.data.patches import PATCH_OPTIONS, training_patches
from facelib.files import check_regular_file
from facelib.models import MODELS, build_model
from facelib.train import TrainConfig
from facelib.train.checkpoint import NOT_IDENTITY
from facelib.utils import seeded

__all__ = ["DataSpec", "ModelSpec", "ExperimentSpec", "load_spec", "RUN_FIELDS"]

#: TrainConfig fields that belong to a run, not to a spec: `experiment.run` sets them.
RUN_FIELDS = ("out", "resume", "overwrite")


def _options(value: Any, what: str) -> dict[str, Any]:
    """A JSON-like dict of options with string keys (a copy)."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"{what} must be a mapping of option name -> value, got {value!r}")
    try:
        return json.loads(json.dumps(value))  # plain JSON types: tuples become lists, the hash is stable
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must hold plain values (numbers, strings, lists, dicts): {exc}") from None


def _strict(cls: type, data: Any, what: str) -> dict[str, Any]:
    """`data` as keyword fields of dataclass `cls`; unknown keys are an error naming the known ones."""
    if not isinstance(data, dict):
        raise ValueError(f"{what} must be a mapping, got {data!r}")
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"{what} has unknown field(s) {unknown}; known: {', '.join(known)}")
    return dict(data)


@dataclass(frozen=True)
class DataSpec:
    """A registered data set (`facelib.data.available()`) and its loader options.

    `patches` trains on grid patches of the images instead (`data.patches.training_patches`:
    patch, stride, max_patches, mirror), drawn with the training seed.
    """

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    patches: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", fdata.dataset_name(self.name))
        options = _options(self.options, f"data set {self.name!r}'s options")
        # old option names (color, subset, people) in a stored spec become the contract's, with a warning
        object.__setattr__(self, "options", fdata.translate_options(self.name, options))
        if self.patches is not None:
            patches = _options(self.patches, "patches")
            unknown = sorted(set(patches) - set(PATCH_OPTIONS))
            missing = sorted({"patch", "stride", "max_patches"} - set(patches))
            if unknown or missing:
                raise ValueError(f"patches takes {', '.join(PATCH_OPTIONS)} (mirror optional); "
                                 f"unknown {unknown}, missing {missing}")
            object.__setattr__(self, "patches", patches)

    def load(self, seed: int = 0) -> FaceDataset:
        """The training set: the loaded data set, or its patches (drawn with `seed`)."""
        dataset = fdata.load(self.name, **self.options)
        if not self.patches:
            return dataset
        p = self.patches
        x = training_patches(dataset.images, int(p["patch"]), int(p["stride"]), int(p["max_patches"]),
                             bool(p.get("mirror", True)), seed=seed)
        return FaceDataset(images=x, identity=np.full(len(x), -1, dtype=np.int64), name=f"{dataset.name} patches",
                           meta={**dataset.meta, "patches": dict(p)})


@dataclass(frozen=True)
class ModelSpec:
    """A registered model (`facelib.models.MODELS`) and its config fields; the image size and
    channels come from the data unless given, and a model may derive more from it
    (`BaseVAE.options_for_data`: ModVAE's blocks from the factors its groups vary)."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", MODELS.canonical(self.name))
        object.__setattr__(self, "options", _options(self.options, f"model {self.name!r}'s options"))

    def config_for(self, dataset: Any) -> dict[str, Any]:
        """Every config field of the model trained on `dataset`."""
        h, w = (int(s) for s in dataset.images.shape[-2:])
        if h != w:
            raise ValueError(f"models need square images; {getattr(dataset, 'name', 'the data set')} has {h}x{w}: "
                             "resize it with the loader's size option")
        for key, have in (("image_size", h), ("channels", int(dataset.images.shape[1]))):
            asked = self.options.get(key)
            if asked is not None and int(asked) != have:
                raise ValueError(f"model option {key}={asked}, but the data set "
                                 f"{getattr(dataset, 'name', '')!r} has {have}; load it with that {key} "
                                 "(the loader's size / channels option) or drop the model option")
        options = {**self.options, "image_size": h, "channels": int(dataset.images.shape[1])}
        return MODELS[self.name].options_for_data(options, dataset)

    def build(self, dataset: Any, seed: int) -> Any:
        """The untrained model for `dataset`, its initial weights drawn from `seed` alone."""
        with seeded(seed):
            return build_model(self.name, **self.config_for(dataset))


@dataclass(frozen=True)
class ExperimentSpec:
    """One training run: `data` (None: the data set given to `run`), `model`, `training`.

    `training` is a TrainConfig, or a dict of its fields, without a run folder (`out`, `resume`,
    `overwrite` belong to `run`); its seed also draws the model's initial weights.
    """

    model: ModelSpec
    data: DataSpec | None = None
    training: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if isinstance(self.training, dict):
            object.__setattr__(self, "training", TrainConfig(**_strict(TrainConfig, self.training, "training")))
        if not isinstance(self.model, ModelSpec):
            raise TypeError(f"model must be a ModelSpec, got {type(self.model).__name__}")
        if self.data is not None and not isinstance(self.data, DataSpec):
            raise TypeError(f"data must be a DataSpec or None, got {type(self.data).__name__}")
        if not isinstance(self.training, TrainConfig):
            raise TypeError(f"training must be a TrainConfig, got {type(self.training).__name__}")
        set_here = [k for k in RUN_FIELDS if getattr(self.training, k) != getattr(TrainConfig(), k)]
        if set_here:
            raise ValueError(f"a spec's training config has no {', '.join(set_here)}: give the run folder and "
                             "how to treat an existing run to experiment.run(spec, out, ...)")

    # -- what it is --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain dict (the YAML / JSON form): data, model, training (without the run fields)."""
        training = {k: v for k, v in self.training.to_dict().items() if k not in RUN_FIELDS}
        return {"data": None if self.data is None else dataclasses.asdict(self.data),
                "model": dataclasses.asdict(self.model), "training": training}

    @classmethod
    def from_dict(cls, data: Any) -> "ExperimentSpec":
        """Rebuild from `to_dict` output; unknown keys anywhere are an error naming the known ones."""
        top = _strict(cls, data, "an experiment spec")
        if "model" not in top:
            raise ValueError("an experiment spec needs a model: {name: ..., options: {...}}")
        d = top.get("data")
        return cls(model=ModelSpec(**_strict(ModelSpec, top["model"], "the spec's model")),
                   data=None if d is None else DataSpec(**_strict(DataSpec, d, "the spec's data")),
                   training=TrainConfig(**_strict(TrainConfig, top.get("training") or {}, "the spec's training")))

    def identity(self) -> str:
        """sha256 of what decides the trained model (data, model, training but `NOT_IDENTITY`)."""
        d = self.to_dict()
        d["training"] = {k: v for k, v in d["training"].items() if k not in NOT_IDENTITY}
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the spec as YAML (.yaml / .yml) or JSON (.json)."""
        path = Path(path)
        text = json.dumps(self.to_dict(), indent=2) + "\n" if path.suffix == ".json" else self.to_yaml()
        path.write_text(text, encoding="utf-8")
        return path

    # -- variants ------------------------------------------------------------------------------
    def updated(self, changes: dict[str, Any]) -> "ExperimentSpec":
        """A copy with fields set by dotted path: "training.lr", "model.options.beta",
        "data.options.n", "model.name" (a sweep's grid point; options may be new keys)."""
        d = self.to_dict()
        for path, value in changes.items():
            parts = str(path).split(".")
            if parts[0] not in d or len(parts) < 2:
                raise ValueError(f"spec field {path!r}: give a dotted path under data, model or training, "
                                 "e.g. training.lr, model.options.beta, data.options.n")
            node = d
            for part in parts[:-1]:
                if node.get(part) is None and part in ("options", "patches"):
                    node[part] = {}
                if not isinstance(node.get(part), dict):
                    raise ValueError(f"spec field {path!r}: {part!r} is not a section of the spec")
                node = node[part]
            if parts[-2] not in ("options", "patches") and parts[-1] not in node:
                raise ValueError(f"spec field {path!r} does not exist; known here: {', '.join(node)}")
            node[parts[-1]] = value
        return type(self).from_dict(d)

    # -- what it makes ---------------------------------------------------------------------------
    def make_dataset(self) -> FaceDataset:
        if self.data is None:
            raise ValueError("this spec names no data set (data: null); give it one, or pass the images to "
                             "experiment.run(spec, dataset=...)")
        return self.data.load(seed=self.training.seed)

    def make_model(self, dataset: Any) -> Any:
        return self.model.build(dataset, seed=self.training.seed)


def load_spec(path: str | os.PathLike) -> ExperimentSpec:
    """Read a spec from a YAML or JSON file (safe loaders: no file runs code)."""
    path = check_regular_file(path, "spec file")
    if not path.is_file():
        raise FileNotFoundError(f"no spec file {path}; write one with `python -m facelib train ... --dump-spec`")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ValueError(f"{path} is not a readable spec ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") \
            from None
    try:
        return ExperimentSpec.from_dict(data)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: {exc}") from None
