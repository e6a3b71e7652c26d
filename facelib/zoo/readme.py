"""`python -m facelib.zoo.readme [--check] [FILE ...]`: regenerate the measured tables of the docs.

A document quotes a table in a block ``<!-- results:NAME columns=a,b,c -->`` ...
``<!-- /results -->``: NAME is a results file (`facelib.results`, `benchmarks/results/NAME.csv`)
or one of `SOURCES` (the zoo manifest, "zoo"; the zoo beside PCA of the same size, "zoo_headline").
Without FILEs it rewrites README.md and every `docs/*.md` (`documents`), among them
`docs/results.md`, the page of every measured table; `--check` rewrites nothing and exits 1 when
a document differs from the files. This is the lowest layer that knows both the results files
and the zoo.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

import pandas as pd

from facelib.results import read, render_readme

from .store import manifest, table

__all__ = ["SOURCES", "documents", "headline", "render", "main"]

#: The checkout whose README and docs/ the command rewrites by default.
ROOT = Path(__file__).resolve().parents[2]


def headline(folder: str | os.PathLike | None = None) -> pd.DataFrame:
    """The zoo (`table`) beside PCA of the same size: each model's headline metric (MIG and beta-VAE
    score on the synthetic faces and Yale B; View 1 accuracy with its LFW category on LFW) and
    its held-out reconstruction MSE against PCA with as many components as it has latents
    (`benchmarks/results/reconstruction.csv`; `mse_vs_pca` below 1: better than PCA)."""
    zoo = table().rename(columns={"accuracy": "view1_accuracy"})
    zoo.insert(2, "latents", [str(((manifest()[n].get("recipe") or {}).get("model_options") or {}).get("latent_dim", ""))
                              for n in zoo["name"]])
    recon = read("reconstruction", folder)[["model", "mse", "pca1k_mse", "mse_vs_pca_k"]]
    recon = recon.rename(columns={"model": "name", "pca1k_mse": "pca_mse", "mse_vs_pca_k": "mse_vs_pca"})
    return zoo.merge(recon, on="name", how="left")


#: The tables a block may quote besides the results files.
SOURCES = {"zoo": table, "zoo_headline": headline}


def documents(root: str | os.PathLike | None = None) -> list[Path]:
    """README.md and every docs/*.md of the checkout: the documents whose blocks are regenerated."""
    root = Path(root or ROOT)
    return [p for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if p.exists()]


def render(text: str, folder=None) -> str:
    """`text` with every results block regenerated from the results files and the zoo manifest."""
    return render_readme(text, folder, sources=SOURCES)


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite the results blocks of the given documents (default: README.md and docs/*.md)."""
    parser = argparse.ArgumentParser(prog="python -m facelib.zoo.readme",
                                     description="Regenerate the measured tables of README.md and docs/*.md "
                                                 "from benchmarks/results/ and the zoo manifest.")
    parser.add_argument("files", nargs="*", type=Path, help="documents (default: README.md and docs/*.md)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a document is stale")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    stale = []
    for path in args.files or documents():
        text = path.read_text()
        new = render(text)
        if new == text:
            print(f"{path} already quotes the results files")
        elif args.check:
            stale.append(path)
            print(f"{path} differs from the results files", file=sys.stderr)
        else:
            path.write_text(new)
            print(f"updated the results blocks of {path}")
    if stale:
        print("run `python -m facelib.zoo.readme` to regenerate them", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
