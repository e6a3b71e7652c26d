"""DC-IGN's light experiment on real faces: the zoo's Extended Yale B models on people they never saw.

    python benchmarks/yaleb.py                 # both tables (a few minutes; needs the zoo's yaleb-* models)
    python benchmarks/yaleb.py --no-write      # print them only

Two tables, both on the 8 people held out of training (`facelib.data.yaleb.YALEB_HELD_OUT`):

* `benchmarks/results/yaleb_disentanglement.csv`: MIG (per factor and mean), DCI, SAP and the
  beta-VAE score of `yaleb-modvae`, `yaleb-beta-vae` and `yaleb-beta-tcvae` against identity,
  light azimuth and light elevation (`facelib.zoo.evaluation.yaleb_results`: the same samples
  and seeds as the zoo's headline figures). Goal (issue 31): ModVAE MIG >= 0.5 for azimuth and
  for elevation.
* `benchmarks/results/yaleb_verification.csv`: verification across lighting
  (`facelib.verify.across_factor_table`: same-person pairs under another light, different-person
  pairs under the same light; cosine of centred embeddings; AUC and EER with bootstrap
  intervals) of ModVAE's identity block, all ModVAE latents, the beta-VAE's and beta-TCVAE's
  latents, pixels, Eigenfaces and Fisherfaces (Belhumeur, Hespanha & Kriegman 1997, the classical
  method for exactly this setting) fitted on the 30 training people.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

import numpy as np
import pandas as pd
import torch

from facelib import results, zoo
from facelib.data import DataNotFoundError
from facelib.files import check_writable
from facelib.zoo.evaluation import YALEB_MODELS as MODELS
from facelib.zoo.evaluation import yaleb_lighting_table, yaleb_results, yaleb_source

COLUMNS = {("mig", "mig"): "mig", ("mig", "mig_identity"): "mig_identity", ("mig", "mig_azimuth"): "mig_azimuth",
           ("mig", "mig_elevation"): "mig_elevation", ("dci", "disentanglement"): "dci_disentanglement",
           ("dci", "completeness"): "dci_completeness", ("dci", "informativeness_test"): "dci_informativeness",
           ("sap", "sap"): "sap", ("beta_vae", "eval_accuracy"): "beta_vae_score"}


def true_factors(source) -> Callable:
    """Images of `source` -> their own factor codes (identity, azimuth, elevation) as the latents:
    what a perfectly disentangled model would give, so the metrics' ceiling on this data (Yale B's
    29 azimuths exceed MIG's 20 histogram bins, and high elevations fix the azimuth)."""
    lookup = {img.numpy().tobytes(): row for img, row in zip(source.images, source.codes.astype(np.float64))}
    return lambda images: np.stack([lookup[img.numpy().tobytes()] for img in torch.as_tensor(images)])


def disentanglement_table(models: dict) -> pd.DataFrame:
    rows = []
    truth = true_factors(yaleb_source(MODELS[0]))
    for name, model in {"true factors (the ceiling)": truth, **models}.items():
        t = yaleb_results(model, MODELS[0])  # every model is scored on the same held-out people
        value = {(m, s): v for m, s, v in t[["metric", "submetric", "value"]].itertuples(index=False)}
        rows.append({"model": name, "latents": model.config.latent_dim if hasattr(model, "config") else 3,
                     **{col: value.get(key) for key, col in COLUMNS.items()}})
        print(f"{name}: " + ", ".join(f"{c} {rows[-1][c]:.3f}" for c in COLUMNS.values()), flush=True)
    return pd.DataFrame(rows)


def verification_table(models: dict, n_pairs: int, n_boot: int, seed: int) -> pd.DataFrame:
    table = yaleb_lighting_table(models, n_pairs=n_pairs, n_boot=n_boot, seed=seed)
    for _, r in table.iterrows():
        print(f"{r['representation']:<32} {r['dims']:>5} dims  AUC {r['auc']:.3f} [{r['auc_lo']:.3f}, {r['auc_hi']:.3f}]  "
              f"EER {r['eer']:.3f} [{r['eer_lo']:.3f}, {r['eer_hi']:.3f}]")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=1000, help="test pairs across lighting (balanced)")
    parser.add_argument("--boot", type=int, default=1000, help="bootstrap resamples of the pairs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="print the tables; write no CSV")
    args = parser.parse_args(argv)
    if args.pairs < 2 or args.boot < 1:
        parser.error("--pairs must be at least 2 and --boot at least 1")
    if not args.no_write:  # fail before the work, not after
        check_writable(results.results_dir(), "results")
    shipped = zoo.manifest()
    missing = [m for m in MODELS if m not in shipped]
    if missing:
        print(f"the zoo lacks {missing}; build them with `python -m facelib zoo build {' '.join(missing)}`",
              file=sys.stderr)
        return 1
    models = {name: zoo.load(name) for name in MODELS}
    command = "yaleb.py " + " ".join(argv if argv is not None else sys.argv[1:])
    try:
        dis = disentanglement_table(models)
        ver = verification_table(models, args.pairs, args.boot, args.seed)
    except DataNotFoundError as err:
        print(f"yaleb.py: {str(err).splitlines()[0]}", file=sys.stderr)
        return 1
    if not args.no_write:
        print(f"wrote {results.write('yaleb_disentanglement', dis, command=command)}")
        print(f"wrote {results.write('yaleb_verification', ver, command=command)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
