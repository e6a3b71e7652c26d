"""The original project's two figures, regenerated from the zoo: `python -m facelib zoo figures docs/`.

`zoo_reconstructions.png`: View 1 test faces of LFW (people no zoo model trained on), then one row per
LFW face model of the zoo (the VAE, the beta sweep, ModVAE) and PCA with as many components as the
models have latents, fitted on the same training faces; beneath the plain VAE's row, the same VAE with
each face's posterior refined on that face (`train.refine_posterior`, `REFINE_STEPS` steps): what its
decoder draws when the encoder's guess for an unseen person is improved. `zoo_samples.png`: two rows per model, faces
decoded from the same N(0, I) draws and from the density of the model's training codes (its
aggregate posterior, `train.sample(source="aggregate")`): where the prior's draws give average faces,
the codes' density gives faces as varied as the training set. `zoo_figures.json` records the sha256 of every model drawn, so a
test can tell when the figures are older than the zoo (`stale`).
"""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt

from facelib.metrics import PCAReconstructor
from facelib.models import latent_dim
from facelib.train import reconstruct
from facelib.viz import reconstruction_rows, sample_rows

from .evaluation import REFINE_STEPS

from .recipes import Recipe, build_data, held_out_faces
from .store import entry, label, load, manifest

__all__ = ["face_models", "write_figures", "stale", "STAMP"]

#: The file beside the figures naming the zoo models (and their sha256) they show.
STAMP = "zoo_figures.json"
_FACES = 8


def face_models(folder: str | os.PathLike | None = None) -> list[str]:
    """The zoo's LFW face models (not the patch VAE), in figure order: VAE, beta-VAEs by beta, the rest."""
    entries = manifest(folder)
    names = [n for n, e in entries.items()
             if e["recipe"]["data"].startswith("lfw") and e["recipe"]["evaluation"] == "lfw-view1"]

    def order(name: str) -> tuple:
        r = entries[name]["recipe"]
        rank = {"vae": 0, "beta-vae": 1}.get(r["model"], 2)
        return rank, float(r["model_options"].get("beta", 1.0)), name

    return sorted(names, key=order)


def write_figures(out: str | os.PathLike, folder: str | os.PathLike | None = None, seed: int = 0) -> list[Path]:
    """Draw zoo_reconstructions.png and zoo_samples.png of the zoo's LFW face models into `out`; returns the paths."""
    names = face_models(folder)
    if not names:
        raise ValueError("the zoo has no LFW face models; build them first (`python -m facelib zoo build lfw-vae`)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    models = {name: load(name, folder) for name in names}
    first = Recipe.from_dict(entry(names[0], folder)["recipe"])
    faces = held_out_faces(first).images[:_FACES]
    k = latent_dim(models[names[0]])
    rows: dict[str, Any] = {}
    for n, m in models.items():
        rows[label(n, folder)] = m
        if entry(n, folder)["recipe"]["model"] == "vae":
            rows[f"zoo {n}, each code refined on its face ({REFINE_STEPS} steps)"] = partial(reconstruct, m, refine_steps=REFINE_STEPS)
    rows[f"PCA-{k} (same training faces)"] = PCAReconstructor(k).fit(build_data(first).images)
    backend = matplotlib.get_backend()
    written = []
    try:
        plt.switch_backend("Agg")
        fig = reconstruction_rows(rows, faces, title="LFW View 1 test faces (people no model saw) and their "
                                                   "reconstructions")
        written.append(out / "zoo_reconstructions.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
        sources = ("prior", "aggregate") if all(hasattr(m, "aggregate_posterior") for m in models.values()) \
            else ("prior",)
        fig = sample_rows({label(n, folder): m for n, m in models.items()}, _FACES, seed=seed, sources=sources,
                          title="faces decoded from z ~ N(0, I) (the same draws in every such row) and from the "
                                "density of each model's training codes (aggregate)")
        written.append(out / "zoo_samples.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    finally:
        plt.switch_backend(backend)
    stamp = {"models": {n: entry(n, folder)["sha256"] for n in names}, "seed": seed,
             "command": f"python -m facelib zoo figures {out}"}
    (out / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
    return written + [out / STAMP]


def stale(out: str | os.PathLike, folder: str | os.PathLike | None = None) -> list[str]:
    """Why the figures in `out` no longer show the zoo (empty when they do): a model drawn that
    changed or left, or a face model the figures lack."""
    file = Path(out) / STAMP
    if not file.exists():
        return [f"{file} is missing; run `python -m facelib zoo figures {out}`"]
    drawn = json.loads(file.read_text()).get("models", {})
    entries = manifest(folder)
    reasons = [f"{n} changed since the figures were drawn" for n, sha in drawn.items()
               if n in entries and entries[n]["sha256"] != sha]
    reasons += [f"{n} is no longer in the zoo" for n in drawn if n not in entries]
    reasons += [f"{n} is not in the figures" for n in face_models(folder) if n not in drawn]
    return reasons
