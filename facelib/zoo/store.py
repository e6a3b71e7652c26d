"""The zoo on disk: `zoo/manifest.json` and one checkpoint per model, checked by sha256.

The manifest lists, per model: file, sha256, recipe, git commit, training time and hardware,
and the headline metrics measured on the stored weights. `load(name)` refuses a file whose
sha256 differs from the manifest's, so a damaged or replaced file is never used silently.
The folder is `zoo/` beside the package in a checkout, or `$FACELIB_ZOO`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["ZooError", "zoo_dir", "manifest", "entry", "label", "path", "sha256", "load", "verify", "write_entry",
           "available", "table"]

MANIFEST = "manifest.json"


class ZooError(RuntimeError):
    """A zoo model that is missing, unknown or whose file does not match the manifest."""


def zoo_dir() -> Path:
    """`$FACELIB_ZOO`, else the `zoo/` folder of the checkout holding the package."""
    env = os.environ.get("FACELIB_ZOO")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "zoo"


def manifest(folder: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """Every manifest entry by name ({} when the zoo has none)."""
    file = Path(folder or zoo_dir()) / MANIFEST
    if not file.exists():
        return {}
    try:
        data = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise ZooError(f"{file} is not valid JSON ({exc}); restore it with `git checkout {file}`") from exc
    return data.get("models", {})


def table(folder: str | os.PathLike | None = None):
    """The manifest as a DataFrame: one row per model with its recipe, training and headline metrics."""
    import pandas as pd

    rows = []
    for name, e in sorted(manifest(folder).items()):
        r = e["recipe"]
        rows.append({"name": name, "model": r["model"], "data": r["data"], "steps": e["training"]["steps"],
                     **{k: v for k, v in r["model_options"].items() if k in ("beta", "lam")},
                     **e["metrics"], "train_minutes": round(e["training"]["train_seconds"] / 60, 1),
                     "cpu": e["training"]["hardware"].get("cpu"), "sha256": e["sha256"][:12]})
    return pd.DataFrame(rows)


def available(folder: str | os.PathLike | None = None) -> list[str]:
    """Names of the models the zoo holds."""
    return sorted(manifest(folder))


def entry(name: str, folder: str | os.PathLike | None = None) -> dict[str, Any]:
    """The manifest entry of `name`; unknown names list what the zoo has and how to build one."""
    entries = manifest(folder)
    if name not in entries:
        from .recipes import RECIPES

        hint = (f"build it with `python -m facelib zoo build {name}`" if name in RECIPES
                else f"known recipes: {', '.join(RECIPES)}")
        raise ZooError(f"the zoo in {Path(folder or zoo_dir())} has no model {name!r} "
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


def sha256(file: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(name: str, folder: str | os.PathLike | None = None) -> Path:
    """The checked file of `name`: present, and with the manifest's sha256."""
    e = entry(name, folder)
    file = Path(folder or zoo_dir()) / e["file"]
    if not file.exists():
        raise ZooError(f"zoo model {name!r}: {file} is missing; restore it with `git checkout {file}` "
                       f"or rebuild it with `python -m facelib zoo build {name}`")
    digest = sha256(file)
    if digest != e["sha256"]:
        raise ZooError(f"zoo model {name!r}: {file} has sha256 {digest[:16]}..., the manifest says "
                       f"{e['sha256'][:16]}...; the file is damaged or was replaced. Restore it with "
                       f"`git checkout {file}`, or rebuild it with `python -m facelib zoo build {name}`")
    return file


def load(name: str, folder: str | os.PathLike | None = None, map_location: Any = "cpu"):
    """The trained zoo model `name` (eval mode), after checking its sha256 against the manifest."""
    from facelib.train import load_model

    model = load_model(verify(name, folder), map_location=map_location)
    model.zoo_name = name  # where it came from, for the run records
    return model


def write_entry(name: str, record: dict[str, Any], folder: str | os.PathLike | None = None) -> Path:
    """Add or replace `name` in the manifest (written atomically, other entries kept)."""
    folder = Path(folder or zoo_dir())
    folder.mkdir(parents=True, exist_ok=True)
    entries = manifest(folder)
    entries[name] = record
    file = folder / MANIFEST
    text = json.dumps({"format": "facelib-zoo", "models": dict(sorted(entries.items()))}, indent=2, sort_keys=False)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".manifest.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.chmod(tmp, 0o644)  # a shipped file, readable by everyone (mkstemp makes it private)
    os.replace(tmp, file)
    return file
