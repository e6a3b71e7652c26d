"""Reconstructions of the zoo's models on faces they never trained on, beside PCA of the same size.

    python benchmarks/reconstruction.py            # every zoo model -> benchmarks/results/reconstruction.csv
    python benchmarks/reconstruction.py --models lfw-vae lfw-beta-vae-b4 --append   # re-measure these rows only
    python benchmarks/reconstruction.py --figure docs/rate_distortion.png   # and reconstruction_pca.csv

For each model: MSE (per pixel, [0, 1] scale), PSNR and SSIM (scikit-image) of its decoded
posterior means, and the rate (KL) and bits/dim of its ELBO on the 8-bit scale
(`train.held_out_terms`), on the held-out faces of its recipe (`zoo.recipes.held_out_inputs`: LFW
View 1's test faces, whose people no LFW recipe trains on; fresh draws for the synthetic recipes).
Beside every model, PCA fitted on the same training images (`zoo.build_data`) with k = its latents
and k = 4 x its latents reconstructs the same faces (`metrics.PCAReconstructor`). The ratio
`mse_vs_pca_k` is the model's MSE over PCA-k's: below 1 the VAE beats the linear code of its size.
The figure draws each LFW model's (rate, MSE) point against PCA's MSE for k = 8 ... 256, which
`benchmarks/results/reconstruction_pca.csv` keeps.

Identity (#42): LFW View 1's test pairs scored by the frozen image-restricted pixels system
(`benchmarks/results/lfw_frozen.json`: fitted on View 1's training faces as they are, PLDA) when it
is shown only a model's reconstructions of the test faces (`identity_accuracy`, `identity_auc`),
beside the same for PCA-32 and PCA-128 reconstructions and for the original faces, all taken
through the same path (the models' 64 px crop-150 colour faces, centre-cropped to the system's crop,
area-resized to its size, RGB averaged to grey): a reconstruction that keeps who the person is
keeps the accuracy of the originals. LFW category of these rows: image-restricted, no outside data
(the system); the models trained on LFW people outside View 1's test pairs.

Samples (#42), 512 faces decoded from N(0, I) draws: `sample_grid_prominence` =
`metrics.grid_prominence`, the peak of their mean spectrum at the frequencies of a stride-2
upsampling grid (about 1 or below without one; `real_grid_prominence` is the held-out faces' own),
and `sample_hf_ratio` = their share of power above 1/4 cycle per pixel over the held-out faces'
(`metrics.high_frequency_energy`; below 1: blurrier than real faces).

Rate-distortion (#42): the figure joins the beta sweep's points (one decoder std, betas 2 to 10) into
its curve, beside PCA's MSE for k = 8 ... 256 on the same axes.

Refined posteriors (#42), LFW face models: each View 1 test face's posterior refined on that face
by `REFINE_STEPS` Adam steps on its ELBO with the decoder fixed (`train.refine_posterior`; the
encoder's amortization gap on people it never saw), then decoded: `refined_mse` (`_psnr`, `_ssim`,
`refined_mse_vs_pca_k`) and the identity columns of those reconstructions (`refined_identity_*`).

Prior mismatch (#42): how far each model's training codes are from its N(0, I) prior, from the
Gaussian of its aggregate posterior (`models.AggregatePosterior`, stored in the zoo):
`prior_kl_nats` = KL(N(mean, cov) of the codes || N(0, I)) (0 when they agree) and
`code_spread` = the codes' standard deviation averaged over latents (1 for the prior).
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from facelib import results, zoo  # noqa: E402
from facelib.metrics import PCAReconstructor, grid_prominence, high_frequency_energy, reconstruction_metrics  # noqa: E402
from facelib.models import latent_dim  # noqa: E402
from facelib.train import held_out_terms, reconstruct, sample  # noqa: E402
from facelib.verify.selection import evaluate_view1, frozen_setting  # noqa: E402
from facelib.zoo.recipes import held_out_faces, held_out_inputs  # noqa: E402

#: Held-out inputs per model (LFW: all 2,000 View 1 test faces).
N_HELD_OUT = 2000
#: Gradient steps of the refined-posterior columns (the MSE of `lfw-vae` moves < 1 % beyond them).
REFINE_STEPS = 50
#: PCA sizes of the rate-distortion figure's line.
PCA_LINE = (8, 16, 32, 64, 128, 256)


def _pca_key(r) -> tuple:
    return (r.data, tuple(sorted((k, str(v)) for k, v in r.data_options.items())), tuple(sorted(r.patches.items())))


#: PCA sizes whose reconstructions the identity columns also score.
IDENTITY_PCA = (32, 128)


def as_the_system_sees(images: torch.Tensor, crop_of_images: int, setting) -> torch.Tensor:
    """Float [0, 1] faces of LFW's centre `crop_of_images` crop (any size) as the pixels system reads
    View 1: its own centre crop, area-resized to its size, grey, uint8."""
    side = images.shape[-1]
    keep = int(round(side * setting.crop / crop_of_images))
    start = (side - keep) // 2
    x = images[..., start:start + keep, start:start + keep].float()
    x = torch.nn.functional.interpolate(x, size=(setting.size, setting.size), mode="area")
    return (x.mean(1, keepdim=True) * 255).round().clamp(0, 255).to(torch.uint8)


def identity_scores(setting, recipe_crop: int, shown: dict) -> dict:
    """name -> (View 1 accuracy, AUC) of the frozen pixels system shown `shown[name]` (float
    reconstructions of every View 1 test face, or the faces themselves)."""
    out = {}
    for name, images in shown.items():
        rows = evaluate_view1([setting], test_images=as_the_system_sees(images, recipe_crop, setting),
                              progress=lambda _: None)
        value = rows.set_index("metric")["value"]
        out[name] = (float(value["accuracy"]), float(value["auc"]))
    return out


def measure(names: list[str], pca_line: bool) -> tuple[pd.DataFrame, dict]:
    rows, line, fitted, pcas = [], {}, {}, {}
    system = frozen_setting(results.results_dir() / "lfw_frozen.json", "pixels", "image-restricted")
    references: dict = {}

    def pca(key: tuple, k: int) -> PCAReconstructor:  # one fit per training set and size (LFW models share)
        if (key, k) not in pcas:
            pcas[(key, k)] = PCAReconstructor(k).fit(fitted[key])
        return pcas[(key, k)]

    for name in names:
        t0 = time.perf_counter()
        r = zoo.Recipe.from_dict(zoo.entry(name)["recipe"])  # what the stored model was trained with
        model = zoo.load(name)
        faces = held_out_inputs(r, N_HELD_OUT)
        k = latent_dim(model)
        key = _pca_key(r)
        if key not in fitted:
            fitted[key] = zoo.build_data(r).images
        train_images = fitted[key]
        vae = reconstruction_metrics(partial(reconstruct, model, device="cpu"), faces.images)
        terms = held_out_terms(model, faces.images[:1000], seed=0, device="cpu")
        row = {"model": name, "recipe_model": r.model, "beta": r.model_options.get("beta", 1.0 if r.model == "vae" else None),
               "latents": k, "held_out": faces.name, "n_held_out": len(faces), "n_train": len(train_images),
               "steps": zoo.entry(name)["training"]["steps"], "mse": vae["mse"], "psnr": vae["psnr"],
               "ssim": vae["ssim"], "kl_nats": terms["kl"], "bits_per_dim": terms["bits_per_dim"],
               "active_latents": terms["active_latents"]}
        if r.data != "synthetic" and not r.patches:  # faces: does the decoder blur, or paint a grid?
            drawn = sample(model, 512, seed=0, device="cpu")
            row.update({"sample_grid_prominence": grid_prominence(drawn),
                        "real_grid_prominence": grid_prominence(faces.images),
                        "sample_hf_ratio": high_frequency_energy(drawn) / high_frequency_energy(faces.images)})
        aggregate = getattr(model, "aggregate_posterior", None)
        if aggregate is not None:
            mismatch = aggregate.prior_mismatch()
            row.update({"prior_kl_nats": mismatch["kl_to_prior"], "code_spread": mismatch["mean_spread"]})
        for mult in (1, 4):
            m = reconstruction_metrics(pca(key, k * mult), faces.images)
            row.update({f"pca{mult}k_mse": m["mse"], f"pca{mult}k_psnr": m["psnr"], f"pca{mult}k_ssim": m["ssim"]})
        if r.data != "synthetic" and r.data != "yaleb" and not r.patches:  # LFW face models: identity kept?
            test = held_out_faces(r)  # every View 1 test face, in the loader's order
            crop = int(r.data_options.get("crop", 150))
            if key not in references:
                shown = {"originals": test.images.float() / 255}
                shown.update({f"pca{kk}": pca(key, kk)(test.images) for kk in IDENTITY_PCA})
                references[key] = identity_scores(system, crop, shown)
            refined = reconstruct(model, test.images, device="cpu", refine_steps=REFINE_STEPS)
            scores = identity_scores(system, crop, {"model": reconstruct(model, test.images, device="cpu"),
                                                    "refined": refined})
            better = reconstruction_metrics(lambda _: refined, test.images, batch_size=len(test.images))
            row.update({"identity_accuracy": scores["model"][0], "identity_auc": scores["model"][1],
                        "refine_steps": REFINE_STEPS, "refined_mse": better["mse"], "refined_psnr": better["psnr"],
                        "refined_ssim": better["ssim"], "refined_identity_accuracy": scores["refined"][0],
                        "refined_identity_auc": scores["refined"][1]})
            for ref, (acc, auc_) in references[key].items():
                row.update({f"identity_accuracy_{ref}": acc, f"identity_auc_{ref}": auc_})
        row["mse_vs_pca_k"] = row["mse"] / row["pca1k_mse"]
        row["mse_vs_pca_4k"] = row["mse"] / row["pca4k_mse"]
        if "refined_mse" in row:
            row["refined_mse_vs_pca_k"] = row["refined_mse"] / row["pca1k_mse"]
        rows.append(row)
        if pca_line and r.data != "synthetic" and not r.patches and faces.name not in line:
            line[faces.name] = {kk: reconstruction_metrics(pca(key, kk), faces.images)["mse"] for kk in PCA_LINE}
        print(f"{name}: MSE {row['mse']:.5f} (PCA-{k} {row['pca1k_mse']:.5f}, ratio {row['mse_vs_pca_k']:.3f}; "
              f"PCA-{4 * k} {row['pca4k_mse']:.5f}), PSNR {row['psnr']:.2f}, SSIM {row['ssim']:.3f}, "
              f"KL {row['kl_nats']:.1f} nats, {time.perf_counter() - t0:.0f} s", flush=True)
    return pd.DataFrame(rows), line


def rate_distortion_figure(table: pd.DataFrame, line: dict, file: str) -> None:
    """Each LFW model's (KL, MSE) on View 1 test faces, with PCA's MSE per k as horizontal marks."""
    lfw = table[table.held_out.str.contains("lfw") & ~table.held_out.str.contains("patches")]
    if lfw.empty or not line:
        print("no LFW face models in the table: no rate-distortion figure")
        return
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    pca = line.get(lfw.held_out.iloc[0])
    if pca is None:
        print("PCA's line was not measured on these LFW faces: no rate-distortion figure")
        return
    for kk, mse in pca.items():
        ax.axhline(mse, color="0.6", lw=0.8, ls="--")
        ax.text(0.01, mse, f"PCA-{kk}", ha="left", va="bottom", fontsize=8, color="0.35",
                transform=ax.get_yaxis_transform())
    sweep = lfw[lfw.recipe_model == "beta-vae"].sort_values("beta")
    if len(sweep) > 1:
        ax.plot(sweep.kl_nats, sweep.mse, color="C0", lw=1.2, zorder=2, label="beta-VAE sweep (beta 2 to 10)")
        ax.legend(loc="upper right", fontsize=8)
    for i, row in enumerate(lfw.sort_values("kl_nats").itertuples()):
        dot = ax.scatter(row.kl_nats, row.mse, s=40, zorder=3, color=f"C{i + 1}")
        name = f"beta {row.beta:g}" if row.recipe_model == "beta-vae" else row.model.replace("lfw-", "")
        ax.annotate(name, (row.kl_nats, row.mse), textcoords="offset points", xytext=(6, 3), ha="left",
                    va="bottom", fontsize=8, color=dot.get_facecolor()[0])  # beside its own dot, in its colour
    ax.set_xlabel("rate: KL(q(z|x) || p(z)), nats per face (View 1 test faces)")
    ax.margins(x=0.16)
    ax.set_ylabel("distortion: per-pixel MSE ([0, 1] scale)")
    ax.set_yscale("log")
    ax.set_title("LFW models (32 latents) against PCA with k components (dashed)", fontsize=10)
    fig.tight_layout()
    fig.savefig(file, dpi=120)
    print(f"wrote {file}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=None, help="zoo models (default: every one)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave the results file as it is")
    parser.add_argument("--append", action="store_true",
                        help="replace only these models' rows in the results file, keeping the others' (with their "
                             "own provenance)")
    parser.add_argument("--figure", default=None, help="also draw the LFW rate-distortion figure to this PNG")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    names = args.models or zoo.available()
    unknown = sorted(set(names) - set(zoo.available()))
    if unknown:
        print(f"reconstruction.py: error: the zoo has no model(s) {unknown}; it has {zoo.available()}", file=sys.stderr)
        return 2
    table, line = measure(names, pca_line=args.figure is not None)
    if not args.no_write and args.append:
        results.append("reconstruction", table, key="model")
        merged = results.read("reconstruction")
        order = {name: i for i, name in enumerate(zoo.available())}
        table = merged.sort_values("model", key=lambda col: col.map(order)).reset_index(drop=True)
        print(f"wrote {results.save(table, 'reconstruction')}")
    elif not args.no_write:
        print(f"wrote {results.write('reconstruction', table)}")
    if line and not args.no_write:  # PCA's distortion per k beside the models' rows
        pca_rows = pd.DataFrame([{"held_out": held_out, "k": kk, "mse": mse}
                                 for held_out, mses in line.items() for kk, mse in mses.items()])
        print(f"wrote {results.write('reconstruction_pca', pca_rows)}")
    if args.figure:  # every LFW model of the table (with --append: of the whole file)
        rate_distortion_figure(table, line, args.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
