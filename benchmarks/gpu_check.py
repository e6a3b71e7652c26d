"""GPU check: the CUDA paths of facelib, measured on one GPU in under 8 minutes.

What it runs and prints, in order:

1. the unit tests on CUDA: `tests/test_cuda.py` (fit in fp32 / bf16 / fp16 with GradScaler,
   channels-last, the pinned-memory feeder, exact resume, NCCL data-parallel when 2+ GPUs)
   plus the training, model and distributed tests, with the GPU visible;
2. training images/s at 64 x 64 (beta-VAE, Burgess layout, latent 32, batch 256) in fp32,
   bf16 autocast and fp16 autocast with GradScaler, and each one's model FLOP utilisation:
   FLOPs of a training step (torch.utils.flop_counter) x steps/s over the same device's
   measured matmul FLOP/s in that precision (8192 x 8192 torch.mm; fp32 without TF32);
3. the ELBO of each precision after the same steps from the same seed, and whether it is
   within 1 % of fp32's;
4. the time to train the whole zoo from scratch: each recipe of `facelib.zoo.RECIPES` into a
   temporary folder (zoo/ is not touched), 8 processes at a time sharing the GPU; the wall
   time and each recipe's training time (recipes whose data is not installed are listed).

Results go to benchmarks/results/gpu_check.csv (facelib.results: commit, date, machine) and
the printed log to benchmarks/results/gpu_check.log.

Usage: ``python benchmarks/gpu_check.py`` on a machine with CUDA (or ``make gpu-check``);
``--dry-run`` runs every part tiny on the CPU (fp16 through the GradScaler path without
autocast, a few steps per recipe, results not written) to check the script itself.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from facelib.data import FaceDataset  # noqa: E402
from facelib.models import build_model  # noqa: E402
from facelib.experiment import ExperimentSpec, ModelSpec, run  # noqa: E402
from facelib.train import train_step  # noqa: E402

CUDA_TESTS = ["tests/test_cuda.py", "tests/test_train.py", "tests/test_models.py", "tests/test_distributed.py"]
PRECISIONS = ("fp32", "bf16", "fp16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
ELBO_TOLERANCE = 0.01


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for s in self.streams:
            s.write(text)
            s.flush()
        return len(text)


def faces(n: int, size: int) -> FaceDataset:
    """Synthetic faces (rendered here, no files needed) for the throughput and ELBO parts."""
    from facelib.data import load

    return load("synthetic", n=n, size=size, seed=0, threads=min(8, os.cpu_count() or 1))


def make_model(size: int, seed: int = 0):
    torch.manual_seed(seed)
    return build_model("beta-vae", image_size=size, channels=1, latent_dim=32, beta=4.0)


def matmul_flops(device: torch.device, dtype: torch.dtype, n: int, reps: int = 5) -> float:
    """Best-of-`reps` FLOP/s of an n x n matmul on `device` in `dtype` (fp32 without TF32)."""
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def step_flops(size: int, batch: int) -> float:
    """FLOPs of one training step (forward + backward) of the benchmark model."""
    from torch.utils.flop_counter import FlopCounterMode

    model = make_model(size)
    with FlopCounterMode(display=False) as counter:
        train_step(model.objectives(), {"x": torch.rand(batch, 1, size, size)}, model.configure_optimizers(1e-4), 0)
    return float(counter.get_total_flops())


def train(data: FaceDataset, precision: str, steps: int, batch: int, device: str, size: int):
    spec = ExperimentSpec(model=ModelSpec("beta-vae", {"latent_dim": 32, "beta": 4.0}),
                          training={"epochs": 10**6, "max_steps": steps, "batch_size": batch, "seed": 0,
                                    "device": device, "precision": precision, "val_fraction": 0.0, "progress": False})
    result = run(spec, dataset=data)
    h = result.history
    return float(h["step"].iloc[-1] * batch / h["time_s"].sum()), result.model


@torch.no_grad()
def elbo(model, data: FaceDataset, n: int = 512) -> float:
    """Mean ELBO (nats/image) in fp32 on the first n images, fixed noise."""
    model.eval().float()
    torch.manual_seed(123)
    x = data.images[:n].float().div(255).to(next(model.parameters()).device)
    return float(model.loss({"x": x})["elbo_nats"])


def run_tests(dry: bool) -> tuple[int, float]:
    t0 = time.perf_counter()
    tests = ["tests/test_cuda.py"] if dry else CUDA_TESTS
    done = subprocess.run([sys.executable, "-m", "pytest", *tests, "-q", "-p", "no:cacheprovider"], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])},
                          capture_output=True, text=True)
    lines = (done.stdout + done.stderr).strip().splitlines()
    print("\n".join(lines[-15:]))
    return done.returncode, time.perf_counter() - t0


def precision_table(dry: bool, device: torch.device) -> pd.DataFrame:
    size, batch = (32, 16) if dry else (64, 256)
    steps, elbo_steps = (3, 4) if dry else (60, 300)
    data = faces(batch * 8 if dry else 8192, size)
    flops = step_flops(size, batch)
    rows = []
    for name in PRECISIONS:
        if dry and name != "fp32":
            continue  # autocast in bf16/fp16 needs the hardware; the dry run checks the plumbing
        if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            print(f"{name}: not supported on this GPU")
            continue
        train(data, name, 5, batch, str(device), size)  # warm-up (cuDNN autotuning, allocator)
        ips, _ = train(data, name, steps, batch, str(device), size)
        _, model = train(data, name, elbo_steps, batch, str(device), size)
        peak = matmul_flops(device, DTYPES[name], 1024 if dry else 8192)
        rows.append({"precision": name, "images_per_s": ips, "achieved_gflops": flops * ips / batch / 1e9,
                     "matmul_gflops": peak / 1e9, "mfu_percent": 100 * flops * ips / batch / peak,
                     "elbo_nats": elbo(model, data), "elbo_steps": elbo_steps, "batch_size": batch,
                     "image_size": size})
    table = pd.DataFrame(rows)
    ref = float(table.loc[table.precision == "fp32", "elbo_nats"].iloc[0])
    table["elbo_vs_fp32_percent"] = 100 * (table["elbo_nats"] - ref) / abs(ref)
    table["elbo_within_1_percent"] = table["elbo_vs_fp32_percent"].abs() <= 100 * ELBO_TOLERANCE
    return table


def _train_recipe(job: tuple) -> dict:
    """Train one recipe into `out` (a process of its own); its row."""
    from facelib import zoo

    name, steps, out, device, threads = job
    torch.set_num_threads(threads)
    r = zoo.recipe(name)
    if steps is not None:
        r = dataclasses.replace(r, steps=steps)
    try:
        data = zoo.build_data(r)
    except Exception as exc:  # a data set not installed on this machine
        return {"recipe": name, "seconds": float("nan"), "steps": 0,
                "status": f"no data ({type(exc).__name__}: {str(exc)[:80]})"}
    t0 = time.perf_counter()
    run(r.spec(), out, dataset=data, device=device)
    return {"recipe": name, "seconds": time.perf_counter() - t0, "steps": r.steps, "status": "trained"}


def zoo_times(dry: bool, device: torch.device, workers: int) -> tuple[pd.DataFrame, float]:
    """Every recipe trained from scratch, `workers` at a time (one GPU serves them all): the
    rows (training seconds of each, data building excluded) and the wall time of the whole."""
    from facelib import zoo
    from facelib.study.executors import LocalExecutor

    threads = max(1, (os.cpu_count() or 1) // workers)
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [(name, 2 if dry else None, str(Path(tmp) / name), str(device), threads) for name in zoo.RECIPES]
        for i, row, error in LocalExecutor(workers).run(_train_recipe, jobs):
            if error is not None:
                raise error
            rows.append(row)
            print(f"  {row['recipe']}: {row['seconds']:.1f} s ({row['steps']} steps, {row['status']})")
    return pd.DataFrame(rows), time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny, on the CPU: checks the script, writes nothing")
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--skip-zoo", action="store_true")
    parser.add_argument("--zoo-workers", type=int, default=None,
                        help="recipes trained at once (default: 8 on a GPU, 1 in a dry run)")
    args = parser.parse_args()
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; run it on a machine with a GPU, or --dry-run to check the script",
              file=sys.stderr)
        return 2
    device = torch.device("cpu" if args.dry_run else "cuda")
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 (the MFU baseline and the ELBO reference)
    torch.backends.cudnn.allow_tf32 = False
    results = REPO / "benchmarks" / "results"
    log = open(os.devnull if args.dry_run else results / "gpu_check.log", "w")
    t_all = time.perf_counter()
    with log, contextlib.redirect_stdout(_Tee(sys.stdout, log)):
        name = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU (dry run)"
        print(f"gpu_check on {name}, torch {torch.__version__}")
        status = 0
        if not args.skip_tests:
            print("\n== unit tests on CUDA ==")
            status, secs = run_tests(args.dry_run)
            print(f"tests: {'passed' if status == 0 else 'FAILED'} in {secs:.0f} s")
        print("\n== precisions at 64 px: images/s, model FLOP utilisation, ELBO after the same steps ==")
        table = precision_table(args.dry_run, device)
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        if not table["elbo_within_1_percent"].all():
            print("ELBO: some precision is more than 1 % from fp32")
            status = status or 1
        zoo_table = pd.DataFrame()
        if not args.skip_zoo:
            print("\n== the whole zoo from scratch ==")
            workers = args.zoo_workers or (1 if args.dry_run else min(8, max(1, (os.cpu_count() or 2) // 2)))
            zoo_table, wall = zoo_times(args.dry_run, device, workers)
            trained = int((zoo_table.status == "trained").sum())
            print(f"zoo: {wall:.0f} s wall for {trained} of {len(zoo_table)} recipes, {workers} at a time "
                  f"({zoo_table['seconds'].sum():.0f} s of training in all)")
            zoo_table["wall_s"] = wall
        print(f"\ngpu_check: {time.perf_counter() - t_all:.0f} s in all")
    if not args.dry_run:
        from facelib import results as fresults

        rows = [{"part": "precision", "item": r["precision"], **r} for r in table.to_dict(orient="records")]
        rows += [{"part": "zoo", "item": r["recipe"], **r} for r in zoo_table.to_dict(orient="records")]
        fresults.write("gpu_check", pd.DataFrame(rows).drop(columns=["precision", "recipe"], errors="ignore"),
                       device=device)
    return status


if __name__ == "__main__":
    sys.exit(main())
