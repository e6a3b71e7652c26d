"""LFW View 2 verification (mean ± SE over the ten folds) of the baselines, the siamese CNN and
VAE latents, each row with its LFW results category, printed beside LFW's published anchors.

    python benchmarks/verification.py --write              # raw pixels, Eigenfaces, Fisherfaces
    python benchmarks/verification.py --quick              # 3 folds, fewer methods (smoke run)
    python benchmarks/verification.py --siamese-folds 10 --skip-baselines --write
    python benchmarks/verification.py --fold-model beta-vae --fold-option beta 4 --test-folds 0 1 2 3 4 --out a.csv
    python benchmarks/verification.py --checkpoint ck.pt --checkpoint-data outside

The image crop and size default to the pixels system frozen on View 1 by `python -m facelib lfw
select` (benchmarks/results/lfw_frozen.json); the patch-VAE and Fisher-vector systems are run by
`python -m facelib lfw view2` from that same file. Every stage (pixel PCA / LDA, scaler,
classifier, covariances, threshold) is refitted on the nine training folds for each test fold
(facelib.verify.protocols.View2). Every method is reported; none is picked on View 2.
`--write` stores the summary in benchmarks/results/lfw_view2_baselines.csv (or
lfw_view2_siamese.csv with --skip-baselines). Needs the LFW copy under $FACELIB_DATA; exits 0 with
a message when it is absent.
"""

from __future__ import annotations

import argparse
import sys
import time

import pandas as pd

from facelib.verify.selection import PUBLISHED



def frozen_pixels_crop() -> int:
    """The crop of the image-restricted pixels system frozen on View 1, else 150."""
    from facelib.results import shipped_results_dir
    from facelib.verify.selection import frozen_setting

    try:
        return frozen_setting(shipped_results_dir() / "lfw_frozen.json", "pixels", "image-restricted").crop
    except (FileNotFoundError, ValueError):
        return 150


def methods(quick: bool, dim: int) -> dict:
    from facelib.verify import features as F
    from facelib.verify import scores as S

    k = min(50, dim)
    out = {
        "cosine": S.CosineScore(center=True),
        "euclidean": S.EuclideanScore(),
        "mahalanobis(pairs)": S.MahalanobisScore(n_components=k),
        "plda(pairs)": S.TwoCovarianceScore(n_components=k),
        "lda|absdiff": F.make_pipeline("lda", combine="absdiff", pre_pca=k),
        "logistic|absdiff+product": F.make_pipeline("logistic", combine="absdiff+product", pre_pca=k),
    }
    if not quick:
        out["svm|absdiff"] = F.make_pipeline("svm", combine="absdiff", pre_pca=min(30, dim))
    return out


def siamese_view2(ds, folds: list[int], epochs: int) -> pd.DataFrame:
    """The end-to-end siamese CNN on View 2 test `folds` (each trained on the other nine folds'
    pairs; early stopping on a validation split of them ends training before `epochs`)."""
    from facelib.verify.categories import lfw_category
    from facelib.verify.roc import tidy
    from facelib.verify.siamese import siamese_pairs

    table, out = ds.pair_table, []
    for k in folds:
        t = time.time()
        tr, te = table[table.fold != k], table[table.fold == k]
        met, _, m = siamese_pairs(ds.images, tr, ds.images, te, seed=k, max_epochs=epochs, patience=4)
        out.append(tidy(met, "siamese CNN", "pixels (end-to-end)", "lfw-view2", k,
                        category=lfw_category("pairs")))
        print(f"  siamese fold {k}: accuracy {met['accuracy']:.3f}, {len(m.history_)} epochs, {time.time() - t:.0f} s")
    return pd.concat(out, ignore_index=True)


def load_pairs(size: int | None, crop: int = 150, channels: int = 1, other_images: bool = False):
    from facelib.data import load

    options = {"crop": crop} if size else {}
    return load("lfw-pairs", split="10_folds", size=size, channels=channels, download=False,
                other_images=other_images, **options)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=32, help="square crop side (0: scikit-learn's 62 x 47)")
    ap.add_argument("--crop", type=int, default=None,
                    help="side of the centre crop of the 250 x 250 images before resizing to --size (default: "
                         "the crop of the pixels system frozen on View 1 in lfw_frozen.json, else 150, the "
                         "original project's)")
    ap.add_argument("--checkpoint", help="VAE checkpoint (facelib.load_model) whose latent means to evaluate")
    ap.add_argument("--checkpoint-data", choices=["outside", "lfw-train-folds", "lfw-all"], default="outside",
                    help="what the VAE was trained on (sets the LFW category; lfw-all = saw test folds)")
    ap.add_argument("--checkpoint-labels", choices=["none", "identities"], default="none")
    ap.add_argument("--fold-model", choices=["vae", "beta-vae", "modvae"],
                    help="also train this model per test fold on the other nine folds' images "
                         "(facelib.verify.VAEEmbedding; image-restricted, no outside data)")
    ap.add_argument("--fold-epochs", type=int, default=20)
    ap.add_argument("--fold-latent", type=int, default=32)
    ap.add_argument("--fold-option", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                    help="model config field for --fold-model, e.g. --fold-option beta 2")
    ap.add_argument("--fold-identities", action="store_true",
                    help="ModVAE on identity groups of the training folds (image-unrestricted); "
                         "embeds with the identity block")
    ap.add_argument("--no-mirror", action="store_true", help="--fold-model without mirror images")
    ap.add_argument("--folds", type=int, default=None, help="test only the first N folds (a faster estimate)")
    ap.add_argument("--test-folds", type=int, nargs="+", default=None, metavar="K",
                    help="test only these folds (0-9), e.g. to split View 2 over processes; merge their --out CSVs")
    ap.add_argument("--quick", action="store_true", help="3 test folds and no SVM (smoke run)")
    ap.add_argument("--siamese-folds", type=int, default=0,
                    help="also train the end-to-end siamese CNN on this many View 2 folds (slow on CPU; "
                         "with --test-folds, on those folds)")
    ap.add_argument("--siamese-epochs", type=int, default=60,
                    help="epoch cap of the siamese CNN; early stopping (patience 4) normally ends it first")
    ap.add_argument("--skip-baselines", action="store_true", help="only the siamese CNN / checkpoint rows")
    ap.add_argument("--out", help="write the tidy per-fold results to this CSV")
    ap.add_argument("--write", action="store_true",
                    help="store the summary in benchmarks/results/ (all ten folds only)")
    args = ap.parse_args(argv)
    if args.crop is None:
        args.crop = frozen_pixels_crop()

    from facelib.data import DataNotFoundError
    from facelib.verify import baselines as B
    from facelib.verify import protocols as P

    t0 = time.time()
    try:
        ds = load_pairs(args.size or None, args.crop)
    except (DataNotFoundError, FileNotFoundError) as err:
        print(f"LFW not available ({err}); set FACELIB_DATA to the data root. Nothing measured.")
        return 0
    table = ds.pair_table
    X = B.flatten_images(ds.images)
    print(f"LFW View 2: {len(table)} pairs, {X.shape[0]} images {tuple(ds.images.shape[1:])}, "
          f"loaded in {time.time() - t0:.0f} s")
    folds = [0, 1, 2] if args.quick else None
    if args.folds:
        folds = list(range(args.folds))
    if args.test_folds:
        bad = [k for k in args.test_folds if k not in range(table["fold"].nunique())]
        if bad:
            ap.error(f"--test-folds {bad}: View 2 folds are 0-{table['fold'].nunique() - 1}")
        folds = list(args.test_folds)

    reps = {
        "raw pixels": B.RawPixels(),
        "Eigenfaces(100)": B.Eigenfaces(n_components=100, whiten=False),
        "Fisherfaces(pca 200)": B.Fisherfaces(n_pca=200),
    }
    frames = []
    for name, rep in ({} if args.skip_baselines else reps).items():
        t = time.time()
        dim = 100 if "Eigen" in name else (X.shape[1] if "raw" in name else 200)
        m = methods(args.quick, dim)
        if "Fisher" in name:
            m = {k: v for k, v in m.items() if k in ("cosine", "plda(pairs)", "lda|absdiff")}
        frames.append(P.evaluate(rep, m, P.View2(X, table, identity=ds.identity, test_folds=folds),
                                 representation_name=name))
        print(f"  {name}: {time.time() - t:.0f} s")

    if args.siamese_folds:
        frames.append(siamese_view2(ds, folds if args.test_folds else list(range(args.siamese_folds)),
                                    args.siamese_epochs))

    if args.checkpoint:
        import facelib
        from facelib.train import embed

        model = facelib.load_model(args.checkpoint)
        cfg = model.config
        vds = load_pairs(cfg.image_size, args.crop, channels=cfg.channels)
        df = embed(model, vds)
        Z = df[[c for c in df.columns if c.startswith("mu_")]].to_numpy()
        outside = "label-free" if args.checkpoint_data == "outside" else None
        if args.checkpoint_labels == "identities" and args.checkpoint_data == "outside":
            outside = "labeled"
        t = time.time()
        frames.append(P.evaluate(None, methods(args.quick, Z.shape[1]),
                                 P.View2(Z, table, identity=ds.identity, test_folds=folds),
                                 representation_name=f"{type(model).__name__} latents d={Z.shape[1]}",
                                 representation_labels=args.checkpoint_labels if outside != "labeled" else "none",
                                 outside_data=outside, saw_test_images=args.checkpoint_data == "lfw-all"))
        print(f"  VAE latents: {time.time() - t:.0f} s")

    if args.fold_model:
        from facelib.study.pipeline import parse_value
        from facelib.verify.latents import VAEEmbedding

        options = {key: parse_value(value) for key, value in args.fold_option}  # as `facelib run -p` reads values
        decoder_params = {k: options.pop(k) for k in ("likelihood", "gaussian_scale") if k in options}
        rep = VAEEmbedding(model=args.fold_model, latent_dim=args.fold_latent, epochs=args.fold_epochs, **decoder_params,
                           mirror=not args.no_mirror, model_options=options,
                           labels="identities" if args.fold_identities else "none",
                           latents="identity" if args.fold_identities else "all")
        d = options.get("blocks", {}).get("identity", args.fold_latent // 2) if args.fold_identities \
            else args.fold_latent
        decoder = rep.likelihood + (f" {rep.gaussian_scale:g}" if rep.likelihood == "gaussian" else "")
        name = (f"{args.fold_model} per fold d={d}{'' if args.no_mirror else ' mirror'} "
                f"{args.fold_epochs} ep {decoder} {options or ''}".strip())
        t = time.time()
        frames.append(P.evaluate(rep, methods(args.quick, d), P.View2(ds.images, table, identity=ds.identity,
                                                                      test_folds=folds), representation_name=name))
        print(f"  {name}: {time.time() - t:.0f} s")

    res = pd.concat(frames, ignore_index=True)
    if args.out:
        res.to_csv(args.out, index=False)
    acc = P.summarize(res, "accuracy")
    auc = P.summarize(res, "auc").set_index(["method", "representation"])["mean"]
    eer = P.summarize(res, "eer").set_index(["method", "representation"])["mean"]
    pd.set_option("display.width", 200)
    pd.set_option("display.max_colwidth", 60)
    rows = []
    for _, r in acc.iterrows():
        key = (r["method"], r["representation"])
        rows.append({"representation": r["representation"], "method": r["method"],
                     "accuracy": f"{100 * r['mean']:.1f} ± {100 * r['se']:.1f}",
                     "AUC": f"{auc[key]:.3f}", "EER": f"{100 * eer[key]:.1f}",
                     "folds": int(r["n_folds"]), "LFW category": r["category"]})
    print()
    print(pd.DataFrame(rows).to_string(index=False))
    print("\nPublished anchors (LFW View 2; accuracy ± SE):")
    for category, anchors in PUBLISHED.items():
        for name, (m, se) in anchors.items():
            print(f"  {category:36s} {name:46s} {100 * m:.2f} ± {100 * se:.2f}")
    print(f"(total {time.time() - t0:.0f} s)")
    if args.write:
        if res["fold"].nunique() != 10:
            print("--write: the results file needs all ten folds; nothing written")
            return 2
        from facelib import results as R

        summary = acc.rename(columns={"mean": "accuracy", "se": "accuracy_se"})[
            ["representation", "method", "category", "accuracy", "accuracy_se", "n_folds"]]
        summary["auc"] = [auc[(m, r)] for m, r in zip(summary["method"], summary["representation"])]
        summary["eer"] = [eer[(m, r)] for m, r in zip(summary["method"], summary["representation"])]
        summary["crop"], summary["size"] = args.crop, args.size
        R.write("lfw_view2_siamese" if args.skip_baselines else "lfw_view2_baselines", summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
