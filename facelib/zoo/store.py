"""The zoo on disk: `manifest.json` and one checkpoint per model, checked by sha256.

The manifest lists, per model: file, sha256, recipe, git commit, training time and hardware,
and the headline metrics measured on the stored weights. `load(name)` refuses a file whose
sha256 differs from the manifest's, so a damaged or replaced file is never used silently; a
manifest that is not valid JSON or whose entries lack what the zoo needs raises `ManifestError`
naming the file and the entry. Writers hold the folder's lock (`zoo_lock`) and replace model
files and manifest together (`files.staged_update`); an update cut short by a kill is settled
(rolled back, or finished) by the next reader or writer, so model and manifest always agree.
One zoo folder is read at a time (`zoo_dir`): `$FACELIB_ZOO` when set, else the zoo shipped in
the package, `facelib/zoo/shipped/` (package data, found through `importlib.resources`). The
shipped zoo of an installed facelib is read-only: a build goes to `--folder`, `$FACELIB_ZOO`, or
the user zoo (`user_zoo_dir`: `$XDG_DATA_HOME/facelib/zoo`, `~/.local/share/facelib/zoo`), which
`$FACELIB_ZOO` then names to load from it; only in a checkout does a build replace a shipped model
(to be committed).
"""

from __future__ import annotations

import importlib.resources
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facelib.files import file_sha256 as sha256  # the zoo's name for it (zoo.sha256)
from facelib.files import (FolderInUseError, check_regular_file, folder_lock, pending_update, recover_staged,
                           source_checkout, staged_update)
from facelib.models import AggregatePosterior
from facelib.train import load_model
from facelib.train.checkpoint import model_config_dict, plain
from facelib.utils import normalise_name

from .recipes import RECIPES

__all__ = ["ZooError", "ManifestError", "zoo_dir", "shipped_dir", "user_zoo_dir", "build_dir", "manifest", "manifest_text", "entry", "label", "path", "sha256",
           "load", "verify", "write_entry", "available", "table", "zoo_lock"]

MANIFEST = "manifest.json"


class ZooError(RuntimeError):
    """A zoo model that is missing, unknown or whose file does not match the manifest."""


class ManifestError(ZooError, ValueError):
    """The zoo's manifest is not valid JSON, or not the shape the zoo reads (the message says where)."""


#: The environment variable naming the zoo folder to read (and build into) instead of the shipped one.
ENV = "FACELIB_ZOO"


def shipped_dir() -> Path:
    """The zoo that comes with facelib: `facelib/zoo/shipped/` (package data, via `importlib.resources`)."""
    return Path(str(importlib.resources.files("facelib.zoo").joinpath("shipped")))


def zoo_dir() -> Path:
    """The zoo folder facelib reads: `$FACELIB_ZOO` when set, else the shipped zoo (`shipped_dir`)."""
    env = os.environ.get(ENV)
    return Path(env).expanduser() if env else shipped_dir()


def user_zoo_dir() -> Path:
    """Where a build goes when nothing names a folder and the shipped zoo is read-only (an installed
    facelib): `$XDG_DATA_HOME/facelib/zoo`, by default `~/.local/share/facelib/zoo`."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "facelib" / "zoo"


def _is_installed_shipped(folder: Path) -> bool:
    """Whether `folder` is the shipped zoo of an installed facelib (read-only: never written)."""
    try:
        same = folder.resolve() == shipped_dir().resolve()
    except OSError:
        return False
    return same and source_checkout() is None


def build_dir(folder: str | os.PathLike | None = None) -> Path:
    """The zoo folder a build (or another writer) writes: `folder`, else `$FACELIB_ZOO`, else the
    shipped zoo when facelib runs from its checkout (a rebuilt model is committed there), else the
    user zoo (`user_zoo_dir`). Never the shipped zoo of an installed facelib: ZooError saying so."""
    if folder is None:
        env = os.environ.get(ENV)
        folder = (Path(env).expanduser() if env else shipped_dir() if source_checkout() is not None
                  else user_zoo_dir())
    folder = Path(folder)
    if _is_installed_shipped(folder):
        raise ZooError(f"{folder} is the zoo shipped inside the installed facelib, which is read-only; build "
                       f"into your own zoo folder instead (--folder DIR, or `export {ENV}=DIR`, which zoo.load then "
                       f"reads; default {user_zoo_dir()})")
    return folder


def _where(folder: str | os.PathLike | None) -> str:
    """The zoo folder read, in words, with how to read another."""
    if folder is not None:
        return f"the zoo in {folder}"
    if os.environ.get(ENV):
        return (f"the zoo in {zoo_dir()} (${ENV}; unset it to read the zoo shipped with facelib, "
                f"{shipped_dir()})")
    return (f"the zoo shipped with facelib, {shipped_dir()} (set ${ENV}=DIR to read another zoo folder, "
            f"such as your own builds)")


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _restore(file: Path) -> str:
    """How to get back a shipped file: reinstall an installed facelib, git checkout in a checkout."""
    if _is_installed_shipped(file.parent):
        return "reinstall facelib (`pip install --force-reinstall --no-deps facelib`)"
    return f"restore it with `git checkout {file}`"


#: Seconds a writer that has its update ready waits for another writer (a build measuring the model
#: it stores) to let go of the zoo.
WRITE_WAIT = 1800.0


def zoo_lock(folder: str | os.PathLike | None = None, wait: float = 0.0):
    """The exclusive lock of a zoo folder, held by whatever writes it (`files.folder_lock`; waiting
    up to `wait` seconds for another writer)."""
    return folder_lock(Path(folder or zoo_dir()), "zoo folder", "another `zoo build` is writing there",
                       "wait for it to finish, or build into another folder (--folder)", wait=wait)


def _settle(folder: Path) -> None:
    """Roll back (or finish) an update a killed build left half-committed, before reading the zoo."""
    if not pending_update(folder):
        return
    try:
        with zoo_lock(folder):
            recover_staged(folder)
    except FolderInUseError:
        pass  # a build is committing now; it settles its own update
    except (OSError, ValueError) as exc:  # e.g. a read-only checkout: the sha256 checks still refuse a mismatch
        warnings.warn(f"the zoo in {folder} holds an update a killed build left unfinished, and it could not be "
                      f"settled ({exc}); run `python -m facelib zoo list` where the folder is writable", stacklevel=3)


def _checked(data: Any, file: Path) -> dict[str, dict[str, Any]]:
    """The manifest's entries after checking the shape every reader relies on."""
    fix = f"{_restore(file)}, or correct it by hand"
    if not isinstance(data, dict):
        raise ManifestError(f"{file} holds a JSON {type(data).__name__}, not the zoo manifest's object "
                            f'({{"format": "facelib-zoo", "models": {{NAME: entry}}}}); {fix}')
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise ManifestError(f'{file}: "models" is a JSON {type(models).__name__}, not an object of entries by model '
                            f"name; {fix}")
    for name, e in models.items():
        where = f"{file}: model {name!r}"
        if not isinstance(e, dict):
            raise ManifestError(f"{where} is a JSON {type(e).__name__}, not an entry object; {fix}")
        for key in ("file", "sha256"):
            if key not in e:
                raise ManifestError(f"{where} has no {key!r}, so its file cannot be checked; {fix}")
        if not isinstance(e["file"], str) or e["file"] in ("", ".", "..") or Path(e["file"]).name != e["file"]:
            raise ManifestError(f"{where}: 'file' is {e['file']!r}, not the name of a file in the zoo folder; {fix}")
        if not isinstance(e["sha256"], str) or not re.fullmatch(r"[0-9a-fA-F]{64}", e["sha256"]):
            raise ManifestError(f"{where}: 'sha256' is {e['sha256']!r}, not a file's 64-digit hex digest; {fix}")
        for key in ("recipe", "metrics", "training", "tolerance", "latent_spread", "aggregate_posterior"):
            if key in e and not isinstance(e[key], dict):
                raise ManifestError(f"{where}: {key!r} is a JSON {type(e[key]).__name__}, not an object; {fix}")
        for key in ("model_options", "data_options", "train_options", "patches", "evaluation_options"):
            value = (e.get("recipe") or {}).get(key)
            if value is not None and not isinstance(value, dict):
                raise ManifestError(f"{where}: recipe {key!r} is a JSON {type(value).__name__}, not an object; {fix}")
        steps = (e.get("training") or {}).get("steps")
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int)):
            raise ManifestError(f"{where}: training 'steps' is {steps!r}, not a whole number; {fix}")
    return models


def manifest(folder: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """Every manifest entry by name ({} when the zoo has none); ManifestError for a damaged manifest."""
    folder = Path(folder or zoo_dir())
    file = folder / MANIFEST
    _settle(folder)
    if not file.exists():
        return {}
    check_regular_file(file, "the zoo's manifest")
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{file} is not valid JSON ({exc}); {_restore(file)}") from exc
    return _checked(data, file)


def manifest_text(entries: dict[str, dict[str, Any]]) -> str:
    """The manifest file holding `entries` (sorted by name): indented JSON, each list of numbers
    (a latent spread, a density's parameters) on one line."""
    return _json({"format": "facelib-zoo", "models": dict(sorted(entries.items()))}) + "\n"


def _json(value: Any, depth: int = 0) -> str:
    pad, inner = "  " * depth, "  " * (depth + 1)
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(str(k))}: {_json(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, (list, tuple)) and value and not all(
            isinstance(v, (int, float, str, bool)) or v is None for v in value):
        return "[\n" + ",\n".join(f"{inner}{_json(v, depth + 1)}" for v in value) + f"\n{pad}]"
    return json.dumps(value)


def table(folder: str | os.PathLike | None = None) -> pd.DataFrame:
    """The manifest as a DataFrame: one row per model with its recipe, training and headline metrics."""
    rows = []
    for name, e in sorted(manifest(folder).items()):
        r, t = e.get("recipe") or {}, e.get("training") or {}
        rows.append({"name": name, "model": r.get("model"), "data": r.get("data"), "steps": t.get("steps"),
                     **{k: v for k, v in (r.get("model_options") or {}).items() if k in ("beta", "lam")},
                     **(e.get("metrics") or {}), "train_minutes": round(float(t.get("train_seconds", 0.0)) / 60, 1),
                     "cpu": (t.get("hardware") or {}).get("cpu"), "sha256": e["sha256"][:12]})
    return pd.DataFrame(rows)


def available(folder: str | os.PathLike | None = None) -> list[str]:
    """Names of the models the zoo holds."""
    return sorted(manifest(folder))


def entry(name: str, folder: str | os.PathLike | None = None) -> dict[str, Any]:
    """The manifest entry of `name`; unknown names list what the zoo has and how to build one."""
    entries = manifest(folder)
    if name not in entries:
        hint = (f"build it with `python -m facelib zoo build {name}`" if name in RECIPES
                else f"known recipes: {', '.join(RECIPES)}")
        raise ZooError(f"{_where(folder)} has no model {name!r} "
                       f"(it has: {', '.join(sorted(entries)) or 'none'}); {hint}")
    return entries[name]


def label(name: str, folder: str | os.PathLike | None = None) -> str:
    """How a figure names zoo model `name`: "zoo lfw-vae (8,000 steps, 24 min on 2 CPU cores)"."""
    e = entry(name, folder)
    t = e.get("training") or {}
    hw = t.get("hardware") or {}
    where = (f"{hw.get('cores')} CPU cores" if hw.get("device", "cpu") == "cpu" and hw.get("cores")
             else str(hw.get("device", "?")))
    minutes = float(t.get("train_seconds", 0.0)) / 60
    return f"zoo {name} ({int(t.get('steps', 0)):,} steps, {minutes:.0f} min on {where})"


def path(name: str, folder: str | os.PathLike | None = None) -> Path:
    """The checkpoint file of zoo model `name`."""
    return Path(folder or zoo_dir()) / entry(name, folder)["file"]


def verify(name: str, folder: str | os.PathLike | None = None) -> Path:
    """The checked file of `name`: present, and with the manifest's sha256."""
    e = entry(name, folder)
    file = Path(folder or zoo_dir()) / e["file"]
    if not file.exists():
        raise ZooError(f"zoo model {name!r}: {file} is missing; {_restore(file)} "
                       f"or rebuild it with `python -m facelib zoo build {name}`")
    check_regular_file(file, f"zoo model {name!r}: file")
    digest = sha256(file)
    if digest != e["sha256"].lower():  # hex digits in either case name the same digest
        raise ZooError(f"zoo model {name!r}: {file} has sha256 {digest[:16]}..., the manifest says "
                       f"{e['sha256'][:16]}...; the file is damaged or was replaced. {_sentence(_restore(file))}, "
                       f"or rebuild it with `python -m facelib zoo build {name}`")
    return file


def load(name: str, folder: str | os.PathLike | None = None, map_location: Any = "cpu"):
    """The trained zoo model `name` (eval mode), after checking its sha256 against the manifest
    and the model it holds against the manifest's recipe (model and every recipe option). It
    carries `latent_spread`, each latent's spread over reference faces (`evaluation.reference_spread`),
    the unit in which `viz` traversals move it, and `aggregate_posterior`, the density of its
    training codes (`train.sample(model, n, source="aggregate")`)."""
    model = load_model(verify(name, folder), map_location=map_location)
    e = entry(name, folder)
    check_against_recipe(name, model, e.get("recipe"))
    model.zoo_name = name  # where it came from, for the run records
    spread = (e.get("latent_spread") or {}).get("std")
    if spread is not None:  # the traversals' data unit, measured once when the model was built
        model.latent_spread = np.asarray(spread, dtype=np.float32)
    if e.get("aggregate_posterior"):  # the density of its training codes, to sample where the faces are
        model.aggregate_posterior = AggregatePosterior.from_dict(e["aggregate_posterior"])
    return model


def check_against_recipe(name: str, model: Any, recipe: dict[str, Any] | None) -> None:
    """Refuse a zoo file holding another model than its recipe's (another file given the entry's
    sha256): the model name and each of the recipe's model options must be the model's."""
    if not recipe:
        return
    wanted = normalise_name(str(recipe.get("model", "")))
    have = normalise_name(str(getattr(model, "name", type(model).__name__)))
    config = model_config_dict(model)
    differ = {k: (v, config.get(k)) for k, v in (recipe.get("model_options") or {}).items()
              if k in config and plain(v) != plain(config[k])}
    if wanted and have != wanted:
        differ = {"model": (wanted, have), **differ}
    if differ:
        text = ", ".join(f"{k}: recipe {a!r}, file {b!r}" for k, (a, b) in differ.items())
        raise ZooError(f"zoo model {name!r}: its file holds another model than the manifest's recipe ({text}); "
                       f"rebuild it (python -m facelib zoo build {name} --overwrite) or restore the zoo "
                       "folder (git checkout facelib/zoo/shipped/ in a checkout, a reinstall of facelib otherwise)")


def write_entry(name: str, record: dict[str, Any], folder: str | os.PathLike | None = None) -> Path:
    """Add or replace `name` in the manifest (under the zoo lock, atomically, other entries kept);
    ZooError for the read-only shipped zoo of an installed facelib (`build_dir`)."""
    folder = build_dir(folder or zoo_dir())
    with zoo_lock(folder, wait=WRITE_WAIT), staged_update(folder) as stage:
        stage.path(MANIFEST).write_text(manifest_text({**manifest(folder), name: record}))
    return folder / MANIFEST
