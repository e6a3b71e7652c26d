"""Run under torchrun by tests/test_distributed.py: each model trained data-parallel, whole and
stopped-then-resumed, into OUT/<model>/{full,part}; rank 0 writes OUT/<model>/histories.json."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from test_train import faces, model  # tests/ is this script's folder

from facelib.train import fit

MODELS = ("beta-vae", "factor-vae", "modvae")


def config(name: str) -> dict:
    kw = dict(epochs=2, device="cpu", seed=1, progress=False, batch_size=16, num_threads=1, val_fraction=0.25)
    if name == "modvae":
        kw.update(group_size=4, groups_per_batch=4)
    return kw


def main(out: Path) -> None:
    for name in MODELS:
        data = faces(groups=name == "modvae")
        kw = config(name)
        full = fit(model(name), data, out=str(out / name / "full"), **kw)
        fit(model(name), data, out=str(out / name / "part"), **{**kw, "epochs": 1})
        resumed = fit(model(name), data, out=str(out / name / "part"), resume=True, **kw)
        if full.rank == 0:
            cols = [c for c in full.history if c not in ("time_s", "images_per_s")]
            (out / name / "histories.json").write_text(json.dumps({
                "full": full.history[cols].to_dict(orient="list"),
                "resumed": resumed.history[cols].to_dict(orient="list"),
                "world_size": full.world_size,
            }))


if __name__ == "__main__":
    main(Path(sys.argv[1]))


def killed_on_rank_1(model):
    """`model` whose training step kills its own process (SIGKILL) on rank 1: a rank that dies
    without an error of its own, as the out-of-memory killer ends one (tests/test_distributed.py)."""
    model.__class__ = _KilledOnRank1
    return model


class _KilledOnRank1(type(model())):
    def loss(self, batch, step=0):
        if int(os.environ.get("RANK", "0")) == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().loss(batch, step)
