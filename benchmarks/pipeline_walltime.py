"""Wall time of the whole study: `python -m facelib run --profile quick` (and `full` on LFW).

Runs the pipeline as a user would (a fresh `python -m facelib run` process, so imports,
kernel starts and HTML rendering all count), then prints the total and per-notebook times
from the run's run.json beside the goals:

* quick profile: under 5 minutes on 2 CPU cores;
* full profile (`--full`, what `make run PROFILE=full` runs: synthetic faces, the zoo's models,
  and the original study on LFW faces in 01-03 when LFW is under $FACELIB_DATA): under 60
  minutes on 2 CPU cores.

The run folders are kept (`<out>/bench-<profile>-<timestamp>/`) so the reports can be read.
Numbers on a shared machine are noisy; the CPU count and load average are printed with them.
Usage: python benchmarks/pipeline_walltime.py [--full] [--models train] [--out reports] [--notebooks 00_data ...]
A run of every notebook writes its profiles' rows of benchmarks/results/pipeline_walltime.csv
(rows of a profile not timed this time are kept; `--models train`, every model trained in the run
instead of loaded from the zoo: pipeline_walltime_train.csv).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

GOALS_S = {"quick": 5 * 60, "full": 60 * 60}


def run(profile: str, out: Path, dataset: str | None, notebooks: list[str] | None,
        models: str = "zoo") -> tuple[float, Path, int]:
    """One timed `python -m facelib run`; (wall seconds, run folder, exit status)."""
    run_id = f"bench-{profile}-{models}-{time.strftime('%Y%m%d-%H%M%S')}"
    cmd = [sys.executable, "-m", "facelib", "run", "--profile", profile, "--out", str(out), "--run-id", run_id,
           "-p", "models", models]
    if dataset:
        cmd += ["--dataset", dataset]
    if notebooks:
        cmd += ["--notebooks", *notebooks]
    print("$", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    status = subprocess.call(cmd)
    return time.perf_counter() - t0, out.resolve() / run_id, status


def report(profile: str, wall: float, run_dir: Path, status: int, subset: list[str] | None = None,
           models: str = "zoo") -> list[dict]:
    """Print the run's times beside the goal; returns them as rows (profile, notebook, status, seconds,
    goal, models).
    The goals are for the profiles as they are (models from the zoo); `models="train"` has none."""
    goal = GOALS_S[profile] if models == "zoo" else None
    verdict = "no goal: every model trained in the run" if goal is None else (
        "meets" if status == 0 and wall < goal else "MISSES")
    if subset:
        verdict += f"; only {', '.join(subset)} ran, the goal is for all notebooks"
    goal_text = "" if goal is None else f"goal < {goal / 60:.0f} min on 2 cores: "
    print(f"\n{profile} profile: {wall / 60:.2f} min wall  ({goal_text}{verdict})"
          + ("" if status == 0 else f"  [run failed, exit {status}]"))
    rows = [{"profile": profile, "notebook": "(all, wall)", "status": "completed" if status == 0 else "failed",
             "seconds": round(wall, 1), "goal_seconds": goal, "models": models}]
    record_path = run_dir / "run.json"
    if record_path.exists():
        record = json.loads(record_path.read_text())
        print(f"  {'notebook':<24}{'status':<11}{'seconds':>9}")
        for entry in record.get("notebooks", []):
            secs = entry.get("seconds")
            print(f"  {entry['notebook']:<24}{entry.get('status', '?'):<11}{'' if secs is None else f'{secs:9.1f}'}")
            rows.append({"profile": profile, "notebook": entry["notebook"], "status": entry.get("status", "?"),
                         "seconds": secs, "goal_seconds": None, "models": models})
        for sweep in record.get("sweeps", []):
            print(f"  sweep {sweep['notebook']} over {sweep['parameter']}: {sweep.get('seconds', 0):.1f} s")
        print(f"  reports: {run_dir}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also time --profile full (long: up to an hour)")
    parser.add_argument("--full-dataset", default=None,
                        help="override the full run's data set (default: the profile's, as make run)")
    parser.add_argument("--out", default="reports", help="folder for the run folders (default reports)")
    parser.add_argument("--notebooks", nargs="+", default=None, help="time only these notebooks")
    parser.add_argument("--models", choices=("zoo", "train"), default="zoo",
                        help="zoo (the profiles' default: analysis notebooks load the zoo's trained models) or "
                             "train (every model trained in the run, at the profile's scale); train writes "
                             "pipeline_walltime_train.csv")
    args = parser.parse_args(argv)
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    print(f"cpus: {os.cpu_count()}, load average before: {load[0]}")
    runs = [("quick", None)] + ([("full", args.full_dataset)] if args.full else [])
    worst, rows = 0, []
    for profile, dataset in runs:
        wall, run_dir, status = run(profile, Path(args.out), dataset, args.notebooks, args.models)
        rows += report(profile, wall, run_dir, status, args.notebooks, args.models)
        worst = worst or status
    if not args.notebooks:  # a subset is not the figure the README quotes
        import pandas as pd

        from facelib import results

        name = "pipeline_walltime" + ("" if args.models == "zoo" else "_train")
        # the profiles timed now replace their rows; a profile not timed this time keeps its own
        print(f"wrote {results.append(name, pd.DataFrame(rows), key='profile')}")
    return worst


if __name__ == "__main__":
    raise SystemExit(main())
