"""Synthetic face rendering speed: images per second for batch rendering.

Prints, side by side, the steady-state rate (people's head models already cached) at 64 x 64
gray and colour and at 128 x 128, with and without 2x supersampling, by wall clock and per
CPU-second of this process, and the one-off cost of building the head models of 100 people. Run: `python benchmarks/render_speed.py [--n 1000]`.
The goal is at least 2,000 64 x 64 images per second on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from facelib.data.synthetic import SyntheticFaces


def rate(faces: SyntheticFaces, n: int, repeats: int = 2) -> tuple[float, float, float]:
    """Best-of-`repeats` images per second of rendering n images, by wall clock and by this
    process's CPU time, and the seconds taken to build (and cache) the 100 people's heads.

    On a shared machine the wall-clock rate falls with other people's load; with one
    thread the CPU-time rate is what an idle core would give.
    """
    t0 = time.perf_counter()
    faces.render({"identity": np.arange(faces.n_identities)})   # build and cache every person once
    build = time.perf_counter() - t0
    wall = cpu = float("inf")
    for r in range(repeats):
        table = faces._draw(n, np.random.default_rng(r))
        t0, c0 = time.perf_counter(), time.process_time()
        faces.render(table)
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return n / wall, n / cpu, build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="images per timed render")
    parser.add_argument("--threads", type=int, nargs="*", default=[torch.get_num_threads(), 1])
    args = parser.parse_args()
    configs = [(64, 1, 1), (64, 3, 1), (128, 1, 1), (64, 1, 2), (128, 3, 1)]
    print(f"torch {torch.__version__}, default threads {torch.get_num_threads()}, {args.n} images per render")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'threads':>7} {'size':>5} {'ch':>3} {'ss':>3} {'images/s':>9} {'per CPU-s':>10} {'build 100 people (s)':>21}")
    for threads in dict.fromkeys(args.threads):
        for size, channels, ss in configs:
            n = args.n if size == 64 else max(args.n // 4, 50)
            faces = SyntheticFaces(size=size, channels=channels, n_identities=100, supersample=ss, threads=threads)
            ips, cps, build = rate(faces, n)
            print(f"{threads:>7} {size:>5} {channels:>3} {ss:>3} {ips:>9.0f} {cps:>10.0f} {build:>21.2f}")


if __name__ == "__main__":
    main()
