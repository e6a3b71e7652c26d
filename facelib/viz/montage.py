"""The README montage of the synthetic faces: people (rows) across pose, light and expression.

`python -m facelib.viz.montage --montage docs/synthetic_montage.png` writes it; the columns are
`facelib.data.synthetic.MONTAGE_COLUMNS`, the tiling is `image_grid`'s.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from facelib.data.synthetic import MONTAGE_COLUMNS, SyntheticFaces, montage_factors

from .images import image_grid

__all__ = ["save_montage", "main"]


def save_montage(path: str | Path = "docs/synthetic_montage.png", n_people: int = 8, size: int = 64,
                 channels: int = 3, seed: int = 0, supersample: int = 1) -> Path:
    """Render people (rows) across yaw, pitch, light and expression (columns) to a PNG."""
    faces = SyntheticFaces(size=size, channels=channels, n_identities=max(n_people, 1), seed=seed,
                           supersample=supersample)
    images = faces.render(montage_factors(range(n_people)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(images, nrow=len(MONTAGE_COLUMNS), as_pil=True).save(path, optimize=True)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m facelib.viz.montage --montage docs/synthetic_montage.png`."""
    parser = argparse.ArgumentParser(prog="python -m facelib.viz.montage", description="Render the README montage of the synthetic faces.")
    parser.add_argument("--montage", default="docs/synthetic_montage.png", help="output PNG path")
    parser.add_argument("--people", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--channels", type=int, default=3, choices=(1, 3))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = save_montage(args.montage, n_people=args.people, size=args.size, channels=args.channels, seed=args.seed)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
