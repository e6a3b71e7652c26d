"""The README montage of the synthetic faces: people (rows) across pose, light and expression.

`python -m facelib.data.synthetic --montage docs/synthetic_montage.png` writes it; the tiling is
`facelib.viz.image_grid`'s.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

import pandas as pd

from .factors import NEUTRAL, NUISANCE_FACTORS
from .faces import SyntheticFaces

__all__ = ["MONTAGE_COLUMNS", "montage_factors", "save_montage", "main"]


#: Columns of the README montage: (label, per-image factor overrides).
MONTAGE_COLUMNS: list[tuple[str, dict[str, float]]] = [
    ("yaw -40", {"yaw": -40}), ("yaw -20", {"yaw": -20}), ("frontal", {}), ("yaw 20", {"yaw": 20}),
    ("yaw 40", {"yaw": 40}), ("pitch -18", {"pitch": -18}), ("pitch 18", {"pitch": 18}),
    ("light -80", {"light_azimuth": -80}), ("light 80", {"light_azimuth": 80}),
    ("light low", {"light_elevation": -20}), ("smile .5", {"expression": 0.5}), ("smile 1", {"expression": 1.0}),
]


def montage_factors(people: Sequence[int]) -> pd.DataFrame:
    """Factor table of the montage: one row per person, one column per `MONTAGE_COLUMNS`."""
    rows = []
    for p in people:
        for _, over in MONTAGE_COLUMNS:
            rows.append({"identity": int(p), **{k: float(NEUTRAL[k]) for k in NUISANCE_FACTORS}, **over})
    return pd.DataFrame(rows)


def save_montage(path: str | Path = "docs/synthetic_montage.png", n_people: int = 8, size: int = 64,
                 channels: int = 3, seed: int = 0, supersample: int = 1) -> Path:
    """Render people (rows) across yaw, pitch, light and expression (columns) to a PNG."""
    from facelib.viz.images import image_grid  # here: importing the data sets needs no torchvision

    faces = SyntheticFaces(size=size, channels=channels, n_identities=max(n_people, 1), seed=seed,
                           supersample=supersample)
    images = faces.render(montage_factors(range(n_people)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(images, nrow=len(MONTAGE_COLUMNS), as_pil=True).save(path, optimize=True)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m facelib.data.synthetic --montage docs/synthetic_montage.png`."""
    parser = argparse.ArgumentParser(prog="python -m facelib.data.synthetic", description="Render the README montage of the synthetic faces.")
    parser.add_argument("--montage", default="docs/synthetic_montage.png", help="output PNG path")
    parser.add_argument("--people", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--channels", type=int, default=3, choices=(1, 3))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = save_montage(args.montage, n_people=args.people, size=args.size, channels=args.channels, seed=args.seed)
    print(f"wrote {path}")
    return 0

