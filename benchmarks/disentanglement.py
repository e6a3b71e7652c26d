"""Disentanglement metrics of the VAE family on the synthetic faces, beside published anchors.

    python benchmarks/disentanglement.py --zoo      # the zoo's trained models, every metric (minutes)
    python benchmarks/disentanglement.py            # quick: short training, small metric samples
    python benchmarks/disentanglement.py --full     # longer training, disentanglement_lib's sample sizes
    python benchmarks/disentanglement.py --sanity-only
    python benchmarks/disentanglement.py --models modvae --steps 30000 --images 20000 \\
        --identity-latents 1 --lam 10 --likelihood gaussian --gaussian-scale 0.05
        # the zoo's synthetic-modvae recipe, trained here (about 40 min on 1 core)
    python benchmarks/disentanglement.py --models vae beta-vae beta-tcvae factor-vae --betas 2 4 8 16 \\
        --steps 30000 --images 20000 --likelihood gaussian --gaussian-scale 0.05 [--mi-table]

Measures the beta-VAE score (Higgins et al. 2017), FactorVAE score (Kim & Mnih 2018), MIG
(Chen et al. 2018), DCI (Eastwood & Williams 2018) and SAP (Kumar et al. 2018) of each model on
the synthetic factor source it was trained for, with the quick metric samples (or
disentanglement_lib's with --full). `--zoo` scores the stored zoo models and writes
`benchmarks/results/disentanglement_zoo.csv` (the README's table); a training run writes
`benchmarks/results/disentanglement.csv`. `--mi-table` prints each model's latents x factors
mutual-information table (the matrix MIG summarises) with each latent's KL; `--probe` trains
the encoder supervised on the factors to show which factors the pixels carry at all.

First prints a sanity table on `ToySource` (ground truth, mixed, duplicated and random
representations). Anchors: Higgins et al. 2017 (beta-VAE score on 2D shapes: VAE 61.6 %,
beta-VAE 99.2 %, DC-IGN 99.3 %); Locatello et al. 2019 (MIG mostly 0.05-0.35 on dSprites).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback

import numpy as np
import pandas as pd

from facelib import results
from facelib.metrics import ToySource, evaluate, ground_truth_representation, random_representation
from facelib.zoo.evaluation import DISENTANGLEMENT_SAMPLES

COLUMNS = {
    ("beta_vae", "eval_accuracy"): "betaVAE",
    ("factor_vae", "eval_accuracy"): "FactorVAE",
    ("mig", "mig"): "MIG",
    ("dci", "disentanglement"): "DCI-D",
    ("dci", "completeness"): "DCI-C",
    ("dci", "informativeness_test"): "DCI-I",
    ("sap", "sap"): "SAP",
}

ANCHORS = {
    "vae": "betaVAE 61.6% (Higgins+17, 2D shapes)",
    "beta-vae": "betaVAE 99.2% (Higgins+17); MIG 0.05-0.35 (Locatello+19, dSprites)",
    "modvae": "DC-IGN betaVAE 99.3% (Higgins+17)",
    "beta-tcvae": "MIG 0.05-0.35 (Locatello+19, dSprites)",
    "factor-vae": "MIG 0.05-0.35 (Locatello+19, dSprites)",
}

#: quick-profile sample sizes (the pair/vote metrics encode 64 images per point, so fewer points)
QUICK = {
    **DISENTANGLEMENT_SAMPLES,  # beta_vae and mig: the sizes the zoo's headline metrics use
    "factor_vae": dict(n_train=300, n_eval=150, num_variance_estimate=1000),
    "dci": dict(n_train=1000, n_eval=500),
    "sap": dict(n_train=1000, n_eval=500),
}


def metric_settings(full: bool) -> dict:
    """evaluate() overrides: none with --full (the published defaults), small samples otherwise."""
    return {} if full else dict(QUICK)


def row(table: pd.DataFrame) -> dict:
    out = {}
    for (m, s), name in COLUMNS.items():
        v = table.loc[(table.metric == m) & (table.submetric == s), "value"]
        out[name] = float(v.iloc[0]) if len(v) else np.nan
    return out


def per_factor_mig_of(table: pd.DataFrame) -> dict[str, float]:
    """Each factor's own MIG from an `evaluate` table (the MIG column is their mean), factor -> value."""
    rows = table.loc[(table.metric == "mig") & table.submetric.str.startswith("mig_"), ["submetric", "value"]]
    return {sub[len("mig_"):]: round(float(v), 3) for sub, v in rows.itertuples(index=False)}


def score_table(reps: dict, src, seed: int, full: bool) -> pd.DataFrame:
    """One row of metric values (and seconds taken) per named representation."""
    rows = []
    for name, rep in reps.items():
        t0 = time.perf_counter()
        r = row(evaluate(rep, src, seed=seed, **metric_settings(full)))
        r["seconds"] = round(time.perf_counter() - t0, 1)
        rows.append({"representation": name, **r})
    return pd.DataFrame(rows).set_index("representation")


def sanity_table(seed: int, full: bool) -> pd.DataFrame:
    """Known representations of a toy source: the metrics' top, bottom and failure modes."""
    src = ToySource((3, 4, 5, 6))
    K = len(src.factor_sizes)
    rot = np.eye(K)
    rot[:2, :2] = [[np.cos(np.pi / 4), -np.sin(np.pi / 4)], [np.sin(np.pi / 4), np.cos(np.pi / 4)]]
    dup = np.concatenate([np.eye(K), np.eye(K)[:, :1]], axis=1)
    reps = {
        "ground truth": ground_truth_representation(src),
        "gt, f0/f1 rotated 45deg": ground_truth_representation(src, rot),
        "gt, f0 duplicated": ground_truth_representation(src, dup),
        "random N(0,1), d=4": random_representation(K, seed),
    }
    return score_table(reps, src, seed, full)


def yaleb_table(seed: int, full: bool) -> pd.DataFrame | None:
    """Baselines on Extended Yale B's real factors (identity, light azimuth, elevation)."""
    from sklearn.decomposition import PCA

    from facelib.metrics import YaleBSource

    try:
        src = YaleBSource(size=32)
    except (FileNotFoundError, ImportError, ValueError) as exc:
        print(f"\nYale B table skipped: {exc}")
        return None
    flat = src.images.reshape(src.images.shape[0], -1).float().numpy() / 255.0
    pca = PCA(n_components=10, random_state=seed).fit(flat)
    reps = {
        "pixel PCA, d=10": lambda im: pca.transform(im.reshape(im.shape[0], -1).float().numpy() / 255.0),
        "random N(0,1), d=10": random_representation(10, seed),
    }
    return score_table(reps, src, seed, full)


def model_table(args) -> pd.DataFrame | None:
    from facelib.data import load
    from facelib.data.synthetic import NO_JITTER, SyntheticFaces
    from facelib.experiment import ExperimentSpec, ModelSpec, run
    from facelib.models import factor_blocks

    size = args.image_size
    # same seed -> same people in the training images and in the metrics' factor source
    ids = args.identities
    source = SyntheticFaces(size=size, seed=args.seed, n_identities=ids)
    n_images = args.images or (20000 if args.full else 4000)
    # train on the distribution the metrics sample: the factor source renders every face without
    # jitter, so by default the training faces have none either (--jitter keeps scale / shift
    # jitter: three more generative factors that no metric scores but the latents must carry)
    ranges = {} if args.jitter else NO_JITTER
    # person k is the same draw for any n_identities with the same seed, so training on more people
    # than the source scores still contains the scored ones
    train_ids = args.train_identities or ids
    if train_ids < ids:
        raise SystemExit(f"--train-identities {train_ids} must be at least --identities {ids} (the scored people)")
    plain = load("synthetic", n=n_images, size=size, seed=args.seed, n_identities=train_ids, **ranges)
    grouped = load("synthetic", n=n_images, size=size, seed=args.seed, n_identities=train_ids, group_size=8,
                   **ranges)  # ModVAE
    print(f"\nTraining data ({'with' if args.jitter else 'no'} scale/shift jitter): {plain}\n  ModVAE: {grouped}\nFactor source: {source} "
          f"{dict(zip(source.factor_names, source.factor_sizes))}")
    latent = args.latent_dim
    wanted = set(args.models or ANCHORS)
    models = [("vae", {}, "vae")]
    models += [(f"beta-vae b={b:g}", {"beta": b}, "beta-vae") for b in args.betas]
    if "modvae" in wanted:  # its blocks need enough latents; the other models do not
        blocks = factor_blocks(latent, sorted(set(grouped.group_varying)), identity=args.identity_latents)
        mod = {"blocks": blocks} if args.lam is None else {"blocks": blocks, "lam": args.lam}
        models += [("modvae" if args.lam is None else f"modvae lam={args.lam:g}", mod, "modvae")]
    models += [("beta-tcvae", {}, "beta-tcvae"), ("factor-vae", {}, "factor-vae")]
    models = [m for m in models if m[2] in wanted]
    steps = args.steps or (20000 if args.full else 600)
    train_seed = args.seed if args.train_seed is None else args.train_seed
    rows, per_factor_mig = [], []
    from facelib.study.pipeline import parse_value

    options = {key: parse_value(value) for key, value in args.option}  # read as `facelib run -p` reads values
    shown = "".join(f" {k}={v}" for k, v in args.option)
    for label, fields, kind in models:
        label += shown
        t0 = time.perf_counter()
        try:
            spec = ExperimentSpec(  # initial weights from the training seed alone
                model=ModelSpec(kind, {"latent_dim": latent, "likelihood": args.likelihood,
                                       "gaussian_scale": args.gaussian_scale, **options, **fields}),
                training={"epochs": 10**6, "max_steps": steps, "seed": train_seed, "progress": False,
                          "device": args.device, **({} if args.lr is None else {"lr": args.lr})})
            result = run(spec, dataset=grouped if kind == "modvae" else plain)
            t_fit = time.perf_counter() - t0
            table = evaluate(result.model, source, seed=args.seed, **metric_settings(args.full))
            r = row(table)
        except Exception as exc:  # noqa: BLE001 - one failing model should not hide the others
            print(f"{label}: failed: {type(exc).__name__}: {exc}")
            if args.verbose:
                traceback.print_exc()
            continue
        if args.mi_table:
            print_mi_table(label, result.model, plain, source, args)
        per_factor_mig.append({"model": label, **per_factor_mig_of(table)})
        rows.append({"model": label, **{k: round(v, 3) for k, v in r.items()},
                     "fit_s": round(t_fit, 0), "eval_s": round(time.perf_counter() - t0 - t_fit, 0),
                     "anchor": ANCHORS[kind]})
        print(f"  {label}: done in {time.perf_counter() - t0:.0f} s", flush=True)
    if not rows:
        return None
    table = pd.DataFrame(rows).set_index("model")
    table.attrs["K"] = len(source.factor_sizes)
    table.attrs["per_factor_mig"] = pd.DataFrame(per_factor_mig).set_index("model")
    table.attrs["visibility"] = factor_visibility(source, args.seed)
    return table


def zoo_table(args) -> pd.DataFrame:
    """The zoo's synthetic-faces models scored with every metric (no training: the stored weights)."""
    from facelib import zoo

    synthetic_zoo = [name for name, r in zoo.recipes.RECIPES.items() if r.data == "synthetic"]
    rows = []
    for name in synthetic_zoo:
        model = zoo.load(name)
        kind = zoo.entry(name)["recipe"]["model"]
        t0 = time.perf_counter()
        table = evaluate(model, zoo.evaluation.factor_source(name), seed=args.seed, **metric_settings(args.full))
        r = row(table)
        rows.append({"model": name, "steps": zoo.entry(name)["training"]["steps"],
                     **{k: round(v, 3) for k, v in r.items()},
                     **{f"MIG-{factor}": v for factor, v in per_factor_mig_of(table).items()},
                     "eval_s": round(time.perf_counter() - t0, 0), "anchor": ANCHORS[kind]})
        print(f"  {name}: scored in {time.perf_counter() - t0:.0f} s", flush=True)
    table = pd.DataFrame(rows).set_index("model")
    table.attrs["visibility"] = factor_visibility(zoo.evaluation.factor_source(synthetic_zoo[0]), args.seed)
    return table


def print_mi_table(label: str, model, data, source, args) -> None:
    """A model's normalised MI matrix (latents x factors, the matrix behind MIG) beside each
    latent's mean KL on training images: a factor carried by no latent, a factor spread over
    several, and a latent that is switched off (KL about 0) all show at a glance."""
    from facelib.metrics import mutual_info_table
    from facelib.models import ACTIVE_KL_NATS, count_active
    from facelib.viz import latent_order

    n = metric_settings(args.full).get("mig", {}).get("n_train", 10000)
    table = mutual_info_table(model, source, seed=args.seed, n_train=n)
    kl = latent_order(model, data.images[:2000])[1]
    table.insert(0, "KL", kl)
    print(f"\n{label}: I(latent; factor) / H(factor), and each latent's mean KL (nats); "
          f"{count_active(kl)} of {len(kl)} latents active (KL > {ACTIVE_KL_NATS:g} nats):")
    print(table.round(2).to_string(), flush=True)


def factor_visibility(source, seed: int, n: int = 200) -> pd.Series:
    """How much each factor shows in the pixels: mean |grey-level change| (0-255) when only
    that factor moves from its lowest to its highest level (identity: to the next person),
    over n random settings of the others. A factor that barely changes the image cannot be
    found by any representation learned from the pixels, whatever the model."""
    rng = np.random.default_rng(seed)
    codes = source.sample_factors(n, rng)
    out = {}
    for k, name in enumerate(source.factor_names):
        lo, hi = codes.copy(), codes.copy()
        lo[:, k] = 0
        hi[:, k] = (codes[:, k] + 1) % source.factor_sizes[k] if name == "identity" else source.factor_sizes[k] - 1
        diff = (source.render_codes(lo).float() - source.render_codes(hi).float()).abs()
        out[name] = round(float(diff.mean()), 2)
    return pd.Series(out, name="mean |pixel change| over the factor's range")


def supervised_probe(size: int, identities: int, seed: int, steps: int = 1500, n: int = 20000) -> pd.Series:
    """Held-out R^2 of the models' own encoder trained *supervised* (MSE to the standardised
    nuisance factors) on the training images: whether a factor is readable from the pixels
    at all. A factor the probe reads well but no VAE learns is one the reconstruction does
    not reward enough (32 px, seed 0: yaw 0.97, pitch 0.93, light 0.99 / 0.97, expression 0.59)."""
    import torch

    from facelib.data import load
    from facelib.models import build_model

    data = load("synthetic", n=n, size=size, seed=seed, n_identities=identities)
    names = [f for f in ("yaw", "pitch", "light_azimuth", "light_elevation", "expression") if f in data.factors]
    y = torch.tensor(data.factors[names].to_numpy(), dtype=torch.float32)
    y = (y - y.mean(0)) / y.std(0)
    n_train = int(0.8 * n)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_model("vae", image_size=size, channels=data.channels, latent_dim=len(names))
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            i = torch.randint(0, n_train, (64,), generator=gen)
            mu, _ = net.encode(data.float_images(i))
            loss = (mu - y[i]).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            pred, _ = net.encode(data.float_images(slice(n_train, n)))
    held = y[n_train:]
    r2 = 1 - (pred - held).pow(2).mean(0) / held.var(0)
    return pd.Series(r2.numpy().round(3), index=names, name="supervised encoder, held-out R^2")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--full", action="store_true", help="long training and disentanglement_lib's sample sizes")
    p.add_argument("--sanity-only", action="store_true", help="only the ToySource table")
    p.add_argument("--zoo", action="store_true",
                   help="score the zoo's trained synthetic-faces models (no training) and write "
                        "benchmarks/results/disentanglement_zoo.csv")
    p.add_argument("--seed", type=int, default=0, help="seed of the faces, the factor source and the metrics")
    p.add_argument("--train-seed", type=int, default=None,
                   help="seed of the models' initial weights and batch order (default --seed): the same faces "
                        "and metric samples, another training run (disentanglement varies much by seed)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default TrainConfig's 1e-3; "
                                                          "disentanglement_lib uses 1e-4)")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--latent-dim", type=int, default=10)
    p.add_argument("--betas", type=float, nargs="+", default=[2.0, 4.0, 8.0])
    p.add_argument("--models", nargs="+", choices=sorted(ANCHORS), default=None, help="train only these kinds")
    p.add_argument("--identities", type=int, default=10,
                   help="people in the synthetic faces (each is one level of the identity factor; "
                        "100 makes DCI's per-factor boosted trees 10x slower)")
    p.add_argument("--train-identities", type=int, default=None,
                   help="people in the training faces (default --identities); more than the factor source "
                        "scores makes identity a continuous manifold of face shapes rather than a few points")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps per model (default 600 quick, 20000 full)")
    p.add_argument("--images", type=int, default=None, help="training images (default 4000 quick, 20000 full)")
    p.add_argument("--jitter", action="store_true",
                   help="train on faces with the renderer's scale / shift jitter (default: none, as the "
                        "metrics' factor source renders them)")
    p.add_argument("--lam", type=float, default=None,
                   help="ModVAE clamp weight (default: ModVAEConfig's); larger makes clamped blocks invariant")
    p.add_argument("--identity-latents", type=int, default=None,
                   help="ModVAE identity block size (default half of --latent-dim: models.factor_blocks); MIG scores one "
                        "latent per factor, so a 1-latent identity block can score on identity")
    from facelib.models.base import LIKELIHOODS, ModelConfig

    p.add_argument("--likelihood", choices=LIKELIHOODS, default=ModelConfig.likelihood,
                   help="decoder likelihood of every model. On grey faces a Bernoulli decoder is a very "
                        "noisy observation model (std sqrt(p(1-p)), about 0.45 at mid-grey), so factors that "
                        "move pixels by a few grey levels are not worth their KL; a Gaussian with a small "
                        "--gaussian-scale keeps them")
    p.add_argument("--gaussian-scale", type=float, default=ModelConfig.gaussian_scale,
                   help="standard deviation of the Gaussian decoder (pixels in [0, 1]; default %(default)s)")
    p.add_argument("--option", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                   help="extra model config field for every model trained, e.g. --option objective capacity "
                        "with --models beta-vae (a model without that field fails alone; the others go on)")
    p.add_argument("--mi-table", action="store_true",
                   help="print each model's latents x factors normalised mutual information (the matrix "
                        "MIG summarises) and its latents' KL: which factors no latent carries, which are spread")
    p.add_argument("--device", default="auto")
    p.add_argument("--yaleb", action="store_true", help="also baselines on Extended Yale B (needs $FACELIB_DATA)")
    p.add_argument("--probe", action="store_true",
                   help="also train the encoder supervised on the factors and print its held-out R^2 "
                        "(is a factor readable from the pixels at all?)")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    pd.set_option("display.max_colwidth", 70)

    setting = ("published defaults (10,000 train / 5,000 eval)" if args.full
               else f"quick {QUICK}")
    print(f"Metric samples: {setting}; seed {args.seed}")
    print("\nSanity: ToySource (factor sizes 3,4,5,6; chance for betaVAE/FactorVAE = 0.25)")
    print(sanity_table(args.seed, args.full).round(3).to_string())
    if args.yaleb:
        table = yaleb_table(args.seed, args.full)
        if table is not None:
            print("\nExtended Yale B (identity 38, azimuth 29, elevation 12 levels; incomplete grid; chance 0.33):")
            print(table.round(3).to_string())
    if args.zoo:
        table = zoo_table(args)
        print("\nThe zoo's models on the synthetic faces (stored weights; chance for betaVAE/FactorVAE = 1/6):")
        print(table.to_string())
        print("\nFactor visibility (mean |grey-level change| over each factor's range, 0-255):")
        print(table.attrs["visibility"].to_frame().T.to_string(index=False))
        print(f"\nwrote {results.write('disentanglement_zoo', table)}")
    elif not args.sanity_only:
        table = model_table(args)
        if table is not None:
            print(f"\nModels on the synthetic faces (chance for betaVAE/FactorVAE = 1/{table.attrs.get('K', '?')}):")
            print(table.to_string())
            print("\nPer-factor MIG (the MIG column is their mean):")
            print(table.attrs["per_factor_mig"].to_string())
            print("\nFactor visibility (mean |grey-level change| over each factor's range, 0-255):")
            print(table.attrs["visibility"].to_frame().T.to_string(index=False))
            print(f"\nwrote {results.write('disentanglement', table)}")
    if args.probe:
        print("\nSupervised probe (the same encoder trained on the factors; held-out R^2, 1 = fully readable):")
        print(supervised_probe(args.image_size, args.identities, args.seed).to_frame().T.to_string(index=False))
    print("\nPublished anchors: beta-VAE score on 2D shapes (Higgins et al. 2017): VAE 61.6 %, beta-VAE 99.2 %, "
          "DC-IGN 99.3 %;\n  MIG mostly 0.05-0.35 on dSprites (Locatello et al. 2019). "
          "Goal here: ModVAE and best beta-VAE MIG >= 0.4 and beta-VAE score >= 95 %.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
