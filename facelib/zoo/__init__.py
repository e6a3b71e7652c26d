"""The model zoo: trained models shipped with facelib, each reproducible by one command.

    import facelib.zoo as zoo
    zoo.available()                       # names in the manifest of zoo.zoo_dir()
    model = zoo.load("synthetic-modvae")  # sha256-checked against the manifest
    zoo.entry("synthetic-modvae")         # recipe, training time and hardware, headline metrics

`python -m facelib zoo build NAME` retrains one from its recipe (`facelib.zoo.recipes`) and
re-measures it; `python -m facelib zoo list` prints the manifest; `zoo check` recomputes every
model's headline metrics from the stored weights against the manifest. The zoo read is
`zoo_dir()`: `$FACELIB_ZOO`, else the one shipped in the package (`shipped_dir()`,
facelib/zoo/shipped); builds go to `build_dir()` (never the shipped zoo of an installed facelib).
"""

from __future__ import annotations

from .build import build, export
from .evaluation import TOLERANCE, headline_metrics, within_tolerance
from .recipes import RECIPES, Recipe, build_data, preview_faces, recipe
from .store import (ZooError, available, build_dir, entry, label, load, manifest, path, sha256, shipped_dir, table,
                    user_zoo_dir, verify, zoo_dir)

__all__ = [
    "RECIPES", "Recipe", "recipe", "build_data", "build", "export",
    "headline_metrics", "within_tolerance", "TOLERANCE",
    "ZooError", "available", "entry", "label", "load", "manifest", "path", "sha256", "table", "verify", "zoo_dir",
    "shipped_dir", "user_zoo_dir", "build_dir", "preview_faces",
]
