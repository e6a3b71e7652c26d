"""Multi-file updates that must never lose or half-write what is there (issue #32): a zoo build
killed between its weights and its manifest, two builds or two sweeps into one folder, a zoo
folder that cannot be written, a damaged zoo manifest or sweep results.csv, and a full disk
under `python -m facelib run`.

Kills are real (a subprocess that SIGKILLs itself at the named point); the zoo's headline
metrics (a minute of scoring) are replaced by a number the weights decide, and a full disk by
a writer that raises ENOSPC, so every case runs in seconds.
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import torch

from facelib import cli, files, zoo
from facelib.cli import build_parser, main
from facelib.study import pipeline, sweep
from facelib.zoo import RECIPES, ZooError
from facelib.zoo import cli as zoo_cli
from facelib.zoo import store

ZOO_BUILD = importlib.import_module("facelib.zoo.build")  # the module (facelib.zoo.build is the function)


def tiny_recipe(seed: int = 0):
    """A zoo recipe trained in a second or two: 4 steps on 64 synthetic faces."""
    r = RECIPES["synthetic-beta-vae-b4"]
    return r.replace(name="tiny-b4", steps=4, seed=seed, data_options={**r.data_options, "n": 64})


def weights_number(model, r) -> dict[str, float]:
    """Stands in for the headline metrics: a number the stored weights decide."""
    return {"mig": round(float(sum(p.detach().double().sum() for p in model.parameters())), 6)}


def _no_training(*a, **k):
    raise AssertionError("the build trained before finding it could not finish")


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every visible file under `folder` with its bytes (temps and the lock are hidden)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != ".lock")


@pytest.fixture(scope="module")
def built_zoo(tmp_path_factory):
    """A zoo folder holding tiny-b4 (seed 0), built once; tests work on copies."""
    folder = tmp_path_factory.mktemp("zoo")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ZOO_BUILD, "headline_metrics", weights_number)
        zoo.build(tiny_recipe(), folder=folder / "zoo", work_dir=folder / "runs")
    return folder / "zoo"


@pytest.fixture
def old_zoo(built_zoo, tmp_path):
    copy = tmp_path / "zoo"
    shutil.copytree(built_zoo, copy)
    return copy


# -- a zoo build killed mid-way ------------------------------------------------------------------
KILLED_BUILD = r"""
import importlib, json, os, signal, sys
from pathlib import Path
from facelib.zoo import Recipe
build = importlib.import_module("facelib.zoo.build")
where, folder, work, recipe = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])

def metrics(model, r):  # the weights are written by now; the manifest is not
    if where == "measuring":
        os.kill(os.getpid(), signal.SIGKILL)
    return {"mig": round(float(sum(p.detach().double().sum() for p in model.parameters())), 6)}

build.headline_metrics = metrics
if where == "committing":  # killed between moving the new weights in and moving the manifest in
    real = os.replace
    def replace(src, dst, *a, **k):
        if Path(dst).name == "manifest.json":
            os.kill(os.getpid(), signal.SIGKILL)
        return real(src, dst, *a, **k)
    os.replace = replace
build.build(Recipe.from_dict(recipe), folder=folder, work_dir=work, overwrite=True)
print("finished without being killed")
"""


def _killed_build(where: str, folder: Path, work: Path) -> subprocess.CompletedProcess:
    recipe = json.dumps(tiny_recipe(seed=1).to_dict())  # other weights than the zoo's, same name
    return subprocess.run([sys.executable, "-c", KILLED_BUILD, where, str(folder), str(work), recipe],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("where", ["measuring", "committing"])
def test_zoo_build_killed_before_its_manifest_keeps_the_old_model(old_zoo, tmp_path, where):
    before = _snapshot(old_zoo)
    old_sha = zoo.entry("tiny-b4", old_zoo)["sha256"]
    done = _killed_build(where, old_zoo, tmp_path / "runs")
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr
    new_weights_written = any(name.startswith(".tiny-b4.pt.") for name in _hidden(old_zoo))
    model = zoo.load("tiny-b4", folder=old_zoo)  # the old pair, whole: file and manifest agree
    assert new_weights_written  # (staged, or moved in with the old file kept beside) when the kill came
    assert zoo.entry("tiny-b4", old_zoo)["sha256"] == old_sha == zoo.sha256(old_zoo / "tiny-b4.pt")
    assert _snapshot(old_zoo) == before
    assert weights_number(model, None) == zoo.entry("tiny-b4", old_zoo)["metrics"]
    assert not files.pending_update(old_zoo)
    # the next build replaces the pair and clears what the killed one left
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ZOO_BUILD, "headline_metrics", weights_number)
        record = zoo.build(tiny_recipe(seed=1), folder=old_zoo, work_dir=tmp_path / "runs", overwrite=True)
    assert record["sha256"] != old_sha and zoo.verify("tiny-b4", old_zoo)
    assert _hidden(old_zoo) == []


# -- staged updates (files.staged_update) ----------------------------------------------------------
KILLED_COMMIT = r"""
import os, signal, sys
from pathlib import Path
from facelib import files
folder, kill_at = Path(sys.argv[1]), sys.argv[2]
real_replace, real_unlink = os.replace, os.unlink
def replace(src, dst, *a, **k):
    if kill_at == "index" and Path(dst).name == "index.json":
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst, *a, **k)
def unlink(path, *a, **k):
    if kill_at == "cleanup" and Path(path).name == files.JOURNAL:
        os.kill(os.getpid(), signal.SIGKILL)
    return real_unlink(path, *a, **k)
os.replace, os.unlink = replace, unlink
with files.staged_update(folder) as stage:
    stage.path("a.bin").write_bytes(b"new a")
    stage.path("new.bin").write_bytes(b"new file")
    stage.remove("gone.bin")
    stage.path("index.json").write_text("new index")
"""


@pytest.mark.parametrize("kill_at, outcome", [("index", "rolled back"), ("cleanup", "finished")])
def test_a_staged_update_killed_in_its_commit_is_settled_whole(tmp_path, kill_at, outcome):
    (tmp_path / "a.bin").write_bytes(b"old a")
    (tmp_path / "index.json").write_text("old index")
    (tmp_path / "gone.bin").write_bytes(b"old gone")  # the update removes it
    done = subprocess.run([sys.executable, "-c", KILLED_COMMIT, str(tmp_path), kill_at], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert files.pending_update(tmp_path)
    assert files.recover_staged(tmp_path) == outcome
    want = ({"a.bin": b"old a", "index.json": b"old index", "gone.bin": b"old gone"} if outcome == "rolled back"
            else {"a.bin": b"new a", "index.json": b"new index", "new.bin": b"new file"})
    assert _snapshot(tmp_path) == want and _hidden(tmp_path) == []


def test_a_staged_update_failing_in_its_commit_rolls_back(tmp_path, monkeypatch):
    (tmp_path / "a.bin").write_bytes(b"old a")
    (tmp_path / "index.json").write_text("old index")
    real, calls = os.replace, []

    def replace(src, dst, *a, **k):
        if Path(dst).name == "index.json":
            raise OSError(errno.EIO, "I/O error")
        calls.append(Path(dst).name)
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="I/O error"):
        with files.staged_update(tmp_path) as stage:
            stage.path("a.bin").write_bytes(b"new a")
            stage.path("index.json").write_text("new index")
    assert "a.bin" in calls  # a.bin had been replaced, and was put back
    assert _snapshot(tmp_path) == {"a.bin": b"old a", "index.json": b"old index"} and _hidden(tmp_path) == []
    with pytest.raises(KeyError):  # an error in the block changes nothing
        with files.staged_update(tmp_path) as stage:
            stage.path("a.bin").write_bytes(b"new a")
            raise KeyError("stop")
    assert _snapshot(tmp_path) == {"a.bin": b"old a", "index.json": b"old index"} and _hidden(tmp_path) == []


# -- two builds, a read-only zoo -------------------------------------------------------------------
HOLD_LOCK = "import sys\nfrom facelib import files\nwith files.folder_lock(sys.argv[1]):\n    print('locked', flush=True)\n    sys.stdin.read()\n"


@pytest.fixture
def lock_held_elsewhere():
    """Holds a folder's lock in another process until the test ends; gives (folder -> pid)."""
    holders = []

    def hold(folder: Path) -> int:
        proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(folder)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        holders.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc.pid

    yield hold
    for proc in holders:
        proc.communicate("", timeout=30)


def test_a_second_zoo_build_is_refused_in_one_line(old_zoo, tmp_path, monkeypatch, capsys, lock_held_elsewhere):
    monkeypatch.setattr(ZOO_BUILD, "run_experiment", _no_training)
    monkeypatch.setattr(ZOO_BUILD, "build_data", _no_training)
    before = _snapshot(old_zoo)
    pid = lock_held_elsewhere(old_zoo)
    with pytest.raises(files.FolderInUseError) as err:
        zoo.build(tiny_recipe(), folder=old_zoo, work_dir=tmp_path / "runs", overwrite=True)
    assert str(old_zoo) in str(err.value) and str(pid) in str(err.value) and "zoo build" in str(err.value)
    args = build_parser().parse_args(["zoo", "build", "synthetic-vae", "--folder", str(old_zoo),
                                      "--work-dir", str(tmp_path / "runs")])
    with pytest.raises(files.FolderInUseError):  # the command raises; cli.main says it in one line
        zoo_cli.main_from_args(args)
    assert cli.main(["zoo", "build", "synthetic-vae", "--folder", str(old_zoo), "--work-dir",
                     str(tmp_path / "runs")]) == 1
    said = capsys.readouterr().err.strip()
    assert len(said.splitlines()) == 1 and "in use" in said and str(pid) in said and "Traceback" not in said
    assert _snapshot(old_zoo) == before and not (tmp_path / "runs").exists()


def test_a_lock_waited_for_is_taken_when_its_holder_lets_go(tmp_path, lock_held_elsewhere):
    pid = lock_held_elsewhere(tmp_path)
    with pytest.raises(files.FolderInUseError, match=str(pid)):
        with files.folder_lock(tmp_path, wait=0.5):
            pass
    (tmp_path / "other").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time, sys; from facelib import files\n"
                               "with files.folder_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(1.5)",
                               str(tmp_path / "other")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with files.folder_lock(tmp_path / "other", wait=60):  # taken once the holder exits
        assert holder.poll() is not None
    holder.wait(timeout=30)


def test_builds_of_two_models_train_side_by_side_and_both_land(tmp_path, monkeypatch):
    """A build trains outside the zoo's lock (under its run folder's own), so a build of another
    model runs start to finish meanwhile, and the manifest keeps both entries."""
    folder = tmp_path / "zoo"
    folder.mkdir()
    real_run = ZOO_BUILD.run_experiment

    def train_while_another_builds(spec, out, **options):
        if out.name == "tiny-a":
            zoo.build(tiny_recipe(seed=1).replace(name="tiny-b"), folder=folder, work_dir=tmp_path / "runs")
        return real_run(spec, out, **options)

    monkeypatch.setattr(ZOO_BUILD, "run_experiment", train_while_another_builds)
    zoo.build(tiny_recipe().replace(name="tiny-a"), folder=folder, work_dir=tmp_path / "runs")
    assert sorted(zoo.manifest(folder)) == ["tiny-a", "tiny-b"]
    for name in ("tiny-a", "tiny-b"):
        zoo.load(name, folder=folder)  # each file matches its entry


def test_zoo_build_checks_it_can_write_before_it_trains(old_zoo, tmp_path, monkeypatch):
    monkeypatch.setattr(ZOO_BUILD, "run_experiment", _no_training)
    before = _snapshot(old_zoo)
    old_zoo.chmod(0o555)
    try:
        with pytest.raises(PermissionError) as err:
            zoo.build(tiny_recipe(seed=1), folder=old_zoo, work_dir=tmp_path / "runs", overwrite=True)
    finally:
        old_zoo.chmod(0o755)
    assert str(old_zoo) in str(err.value) and "writable" in str(err.value)
    assert _snapshot(old_zoo) == before


def test_zoo_build_on_a_full_disk_says_so_in_the_zoos_terms(old_zoo, tmp_path, monkeypatch):
    """A full disk while the new weights are written: the message names the zoo and the model, says
    the zoo is unchanged and that rerunning `zoo build` exports the finished run (it named an
    internal .staged.pt as "the previous checkpoint" and suggested --resume, which zoo build lacks)."""
    monkeypatch.setattr(ZOO_BUILD, "headline_metrics", weights_number)
    real_save = torch.save

    def full(obj, f, *a, **k):
        if isinstance(obj, dict) and "zoo" in obj:  # the exported zoo file, not the run's checkpoints
            raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0")
        return real_save(obj, f, *a, **k)

    before = _snapshot(old_zoo)
    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(ZooError) as err:
        zoo.build(tiny_recipe(seed=1), folder=old_zoo, work_dir=tmp_path / "runs", overwrite=True)
    msg = str(err.value)
    assert "tiny-b4" in msg and str(old_zoo) in msg and "disk is full" in msg and "zoo is unchanged" in msg
    assert str(tmp_path / "runs" / "tiny-b4") in msg and "zoo build tiny-b4 --overwrite" in msg
    assert ".staged" not in msg and "--resume" not in msg
    assert _snapshot(old_zoo) == before and _hidden(old_zoo) == []
    monkeypatch.setattr(torch, "save", real_save)  # space freed: the rerun exports the run without training
    monkeypatch.setattr(ZOO_BUILD, "run_experiment", _reuse_only(ZOO_BUILD.run_experiment))
    zoo.build(tiny_recipe(seed=1), folder=old_zoo, work_dir=tmp_path / "runs", overwrite=True)
    assert _snapshot(old_zoo) != before


def _reuse_only(run):
    def reuse(spec, out, **k):
        result = run(spec, out, **k)
        assert result.reused, "the rerun trained again"
        return result
    return reuse


# -- damaged manifests -----------------------------------------------------------------------------
def _entry(sha: str = "ab" * 32) -> dict:
    return {"file": "m.pt", "sha256": sha, "recipe": RECIPES["synthetic-vae"].to_dict(), "metrics": {"mig": 0.5}}


@pytest.mark.parametrize("text, said", [
    ('{"models": {"m": {"file": "m.pt", ', "not valid JSON"),
    (json.dumps({"models": {"m": {k: v for k, v in _entry().items() if k != "sha256"}}}), "no 'sha256'"),
    (json.dumps({"models": [_entry()]}), '"models" is a JSON list'),
    (json.dumps([_entry()]), "JSON list"),
    (json.dumps({"models": {"m": {**_entry(), "metrics": [0.5]}}}), "'metrics' is a JSON list"),
], ids=["invalid-json", "no-sha256", "models-a-list", "top-level-list", "metrics-a-list"])
def test_a_damaged_manifest_is_a_clear_error(tmp_path, monkeypatch, capsys, text, said):
    (tmp_path / "manifest.json").write_text(text)
    (tmp_path / "m.pt").write_bytes(b"weights")
    calls = [zoo.manifest, zoo.available, zoo.table, lambda f: zoo.entry("m", f), lambda f: zoo.verify("m", f)]
    for call in calls:
        with pytest.raises(ValueError, match=said) as err:
            call(tmp_path)
        assert isinstance(err.value, ZooError)
        assert str(tmp_path / "manifest.json") in str(err.value) and "git checkout" in str(err.value)
    monkeypatch.setenv("FACELIB_ZOO", str(tmp_path))
    for command in (["zoo", "list"], ["zoo", "check"]):
        assert cli.main(command) == 1  # damage found at run time
        out = capsys.readouterr()
        assert len(out.err.strip().splitlines()) == 1 and "manifest.json" in out.err and said in out.err


# -- sweeps ----------------------------------------------------------------------------------------
SHARED = {"data": "synthetic", "data_options": {"n": 64, "size": 32},
          "model_fields": {"latent_dim": 4, "hidden_channels": 8, "hidden_dim": 32},
          "fit": {"max_steps": 3, "batch_size": 16, "num_threads": 1}, "metrics": [], "metric_options": {}}
TRIALS = sweep.grid(["beta-vae"], [1.0, 4.0], [0])
SWEEP_ARGS = ["--models", "beta-vae", "--betas", "1", "4", "--seeds", "0", "--data", "synthetic",
              "--data-option", "n=64", "--data-option", "size=32", "--set", "latent_dim=4", "--set",
              "hidden_channels=8", "--set", "hidden_dim=32", "--max-steps", "3", "--batch-size", "16",
              "--executor", "local"]


class CountingExecutor(sweep.LocalExecutor):
    """Trials in threads of this process, remembering which ran."""

    def __init__(self):
        super().__init__(1, processes=False)
        self.ran: list[str] = []

    def run(self, fn, jobs):
        self.ran += [job["trial"] for job in jobs]
        return super().run(fn, jobs)


def test_a_second_sweep_into_one_folder_is_refused(tmp_path, capsys, lock_held_elsewhere):
    out = tmp_path / "sweep"
    out.mkdir()
    finished = pd.DataFrame([{"trial": t["trial"], "model": "beta-vae", "beta": t["beta"], "seed": 0,
                              "metric": "seconds", "value": 1.0, "checkpoint": "x.pt"} for t in TRIALS])
    finished.to_csv(out / "results.csv", index=False)  # the other sweep's finished rows
    before = _snapshot(out)
    pid = lock_held_elsewhere(out)
    assert cli.main(["sweep", *SWEEP_ARGS, "--out", str(out)]) == 1
    said = capsys.readouterr().err
    assert "in use" in said and str(pid) in said and "another --out" in said
    assert _snapshot(out) == before and not (out / "trials").exists()


def test_two_real_sweeps_into_one_folder_lose_nothing(tmp_path):
    """Two `python -m facelib sweep` processes started together into one --out (both failed, and one
    overwrote the other's finished rows): one runs the grid; the other is refused in one line
    while it runs, or, started after it, finds every trial finished. Every trial is in results.csv once."""
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "facelib", "sweep", *SWEEP_ARGS, "--out", str(out)]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    done = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    assert sorted(rc for rc, _, _ in done)[0] == 0, done
    for rc, _, err in done:
        if rc != 0:
            refusals = [line for line in err.splitlines() if "error" in line]
            assert rc == 1 and len(refusals) == 1 and "in use" in refusals[0] and "Traceback" not in err, err
    table = sweep.read_results(out / "results.csv")
    assert sorted(table["trial"].unique()) == sorted(t["trial"] for t in TRIALS)
    assert not table.duplicated(["trial", "metric"]).any() and table["value"].notna().all()
    ran = [t["trial"] for t in TRIALS if (out / "trials" / t["trial"] / "checkpoint.pt").is_file()]
    assert len(ran) == len(TRIALS)


@pytest.mark.parametrize("cut", ["mid-row", "at a row end"])
def test_a_cut_results_csv_reruns_the_damaged_trial(tmp_path, cut):
    out = tmp_path / "sweep"
    whole = sweep.run_grid(TRIALS, SHARED, out, CountingExecutor())
    text = (out / "results.csv").read_text()
    last = whole["trial"].iloc[-1]
    lines = text.splitlines(keepends=True)
    kept = text[: len(text) - len(lines[-1]) // 2] if cut == "mid-row" else "".join(lines[:-1])
    (out / "results.csv").write_text(kept)
    again = CountingExecutor()
    with pytest.warns(UserWarning, match=f"damaged or incomplete rows.*{last}.*run again"):
        table = sweep.run_grid(TRIALS, SHARED, out, again)
    assert again.ran == [last]
    assert len(table) == len(whole) and table["value"].notna().all()
    assert sorted(table["trial"].unique()) == sorted(t["trial"] for t in TRIALS)
    assert (table.groupby("trial")["metric"].apply(list) == whole.groupby("trial")["metric"].apply(list)).all()
    reread = sweep.read_results(out / "results.csv")
    assert len(reread) == len(whole) and set(reread["trial"]) == set(whole["trial"])


# -- a full disk under `run` -----------------------------------------------------------------------
@pytest.fixture
def one_notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = nbformat.v4.new_code_cell("run_dir = None\n")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell("1 + 1")]
    (tmp_path / "nbs").mkdir()
    nbformat.write(nb, str(tmp_path / "nbs" / "00_one.ipynb"))
    return tmp_path / "nbs"


def _executed(notebook, output, *a, **k):
    """Stands in for papermill: the notebook, as executed, at `output`."""
    nbformat.write(nbformat.read(str(notebook), as_version=4), str(output))


def _left_behind(run_dir: Path) -> list[str]:
    """Temp files, empty files and notebooks that do not read back."""
    bad = []
    for p in run_dir.rglob("*"):
        if p.is_file() and (".tmp" in p.name or p.stat().st_size == 0):
            bad.append(p.name)
        elif p.suffix == ".ipynb":
            try:
                nbformat.read(str(p), as_version=4)
            except Exception:  # noqa: BLE001
                bad.append(p.name)
    return bad


def test_a_full_disk_while_writing_the_notebook_keeps_no_truncated_notebook(one_notebook, tmp_path, monkeypatch):
    def full_disk(notebook, output, *a, **k):
        Path(output).write_text('{"cells": [{"cell_type": "code", "sou')  # what fit before the disk filled
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pipeline, "_execute", full_disk)
    with pytest.raises(pipeline.PipelineError, match="00_one failed.*disk is full") as err:
        pipeline.run_pipeline(notebooks_dir=one_notebook, out_root=tmp_path / "reports", run_id="r", verbose=False)
    run_dir = tmp_path / "reports" / "r"
    assert _left_behind(run_dir) == [] and not (run_dir / "00_one.ipynb").exists()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "failed" and "free some space" in record["notebooks"][0]["error"]
    assert str(run_dir) in str(err.value)


@pytest.mark.parametrize("lasting", [False, True])
def test_a_full_disk_while_writing_run_json_is_said_and_leaves_no_temp(one_notebook, tmp_path, monkeypatch, lasting):
    full = {"on": False}

    def execute(*a, **k):
        _executed(*a, **k)
        full["on"] = True  # the disk fills from here (until the first refused write frees it, unless lasting)

    def refusing(real):
        def write(self, data, *a, **k):
            if full["on"] and "run.json" in self.name:
                open(self, "w").close()  # the file is made, its bytes do not fit
                full["on"] = lasting
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(self, data, *a, **k)
        return write

    monkeypatch.setattr(pipeline, "_execute", execute)
    monkeypatch.setattr(Path, "write_text", refusing(Path.write_text))
    monkeypatch.setattr(Path, "write_bytes", refusing(Path.write_bytes))
    with pytest.raises(pipeline.PipelineError) as err:
        pipeline.run_pipeline(notebooks_dir=one_notebook, out_root=tmp_path / "reports", run_id="r", verbose=False)
    run_dir = tmp_path / "reports" / "r"
    msg = str(err.value)
    assert str(run_dir / "run.json") in msg and "disk is full" in msg and "free some space" in msg
    assert _left_behind(run_dir) == []
    record = json.loads((run_dir / "run.json").read_text())  # the last whole record
    if lasting:
        assert record["status"] == "running" and "previous state" in msg
    else:  # the disk took the next write: the run is recorded as failed, saying why
        assert record["status"] == "failed" and "run.json" in record["error"]


def test_run_into_a_read_only_out_fails_before_any_notebook(one_notebook, tmp_path, monkeypatch, capsys):
    ran = []
    monkeypatch.setattr(pipeline, "_execute", lambda *a, **k: ran.append(a))
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        assert cli.main(["run", "--notebooks-dir", str(one_notebook), "--out", str(out)]) == 1
    finally:
        out.chmod(0o755)
    said = capsys.readouterr().err
    assert str(out) in said and "writable" in said and ran == [] and list(out.iterdir()) == []


def test_zoo_check_records_new_headline_metrics_and_never_changes_stored_ones(tmp_path, monkeypatch, capsys):
    """A newer facelib measuring more (e.g. MIG per factor) fills them in for a model whose stored
    metrics reproduce; a model whose metrics moved gets nothing recorded."""
    folder = tmp_path / "zoo"
    zoo.build(tiny_recipe(), folder=folder, work_dir=tmp_path / "runs")
    monkeypatch.setenv("FACELIB_ZOO", str(folder))
    full = zoo.entry("tiny-b4")["metrics"]
    assert {"mig", "mig_yaw", "mig_expression"} <= set(full)
    older = {k: v for k, v in full.items() if not k.startswith("mig_")}
    store.write_entry("tiny-b4", {**zoo.entry("tiny-b4"), "metrics": {**older, "mig": older["mig"] + 0.5}}, folder)
    assert main(["zoo", "check", "--record-new", "tiny-b4"]) == 1            # moved: nothing recorded
    assert zoo.entry("tiny-b4")["metrics"] == {**older, "mig": older["mig"] + 0.5}
    store.write_entry("tiny-b4", {**zoo.entry("tiny-b4"), "metrics": older}, folder)
    assert main(["zoo", "check", "tiny-b4"]) == 0 and zoo.entry("tiny-b4")["metrics"] == older  # only with the flag
    assert main(["zoo", "check", "--record-new", "tiny-b4"]) == 0
    assert zoo.entry("tiny-b4")["metrics"] == full
    assert "recorded" in capsys.readouterr().out
    zoo.load("tiny-b4")  # the weights still match their entry


# -- train --overwrite: the old run stays until the new one has its first checkpoint (issue #41, 1) ---
ROOT = Path(__file__).resolve().parents[1]
#: A `python -m facelib` started elsewhere imports this checkout's facelib, not an installed one.
CHECKOUT_ENV = {"PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
TRAIN = ["train", "--model", "vae", "--data", "synthetic", "--data-option", "n=256", "--image-size", "32",
         "--latent-dim", "4", "--no-progress"]
RUN_FILES = ["best.pt", "checkpoint.pt", "history.csv", "spec.yaml"]


def _train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facelib", *TRAIN, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **CHECKOUT_ENV})


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """`train --epochs 2 --out ow`, once; tests work on copies."""
    where = tmp_path_factory.mktemp("ow")
    done = _train("--epochs", "2", "--out", "ow", cwd=where)
    assert done.returncode == 0, done.stderr
    assert sorted(_snapshot(where / "ow")) == RUN_FILES
    return where / "ow"


@pytest.fixture
def old_run(finished_run, tmp_path):
    shutil.copytree(finished_run, tmp_path / "ow")
    return tmp_path / "ow"


def test_an_overwrite_that_diverges_leaves_the_old_run_whole_and_says_so(old_run):
    """It deleted the old best.pt before failing; checkpoint.pt and history.csv stayed."""
    before = _snapshot(old_run)
    done = _train("--epochs", "2", "--out", "ow", "--overwrite", "--lr", "1e30", cwd=old_run.parent)
    assert done.returncode == 1 and "diverged" in done.stderr, done.stderr
    assert "nothing was replaced: the old run in ow is kept whole" in done.stderr, done.stderr
    assert _snapshot(old_run) == before and _hidden(old_run) == []


@pytest.mark.parametrize("how", ["ctrl-c", "kill"])
def test_an_overwrite_stopped_before_its_first_checkpoint_leaves_the_old_run_whole(old_run, how):
    """Ctrl-C in the first epochs of an --overwrite run lost best.pt and then pointed at the old
    run with 'rerun with --resume'; a kill leaves staged temps the next run removes."""
    before = _snapshot(old_run)
    proc = subprocess.Popen([sys.executable, "-m", "facelib", *TRAIN, "--epochs", "200", "--checkpoint-every", "1000",
                             "--out", "ow", "--overwrite"], cwd=old_run.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, **CHECKOUT_ENV},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        for _ in range(1200):  # the lock holds the new run's pid once it trains
            if (old_run / ".lock").exists() and (old_run / ".lock").read_text().strip() == str(proc.pid):
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        for _ in range(600):  # until the new run has staged a best.pt (after its first epoch)
            if any(name.startswith(".best.pt.") for name in _hidden(old_run)) or proc.poll() is not None:
                break
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT if how == "ctrl-c" else signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert _snapshot(old_run) == before
    if how == "ctrl-c":
        assert proc.returncode == 130, out + err
        assert "nothing was replaced: the old run in ow is kept whole" in err and "--resume" not in err, err
        assert _hidden(old_run) == []
    else:
        assert proc.returncode == -signal.SIGKILL
        assert _hidden(old_run)  # the killed run's staged files
        done = _train("--epochs", "2", "--out", "ow", cwd=old_run.parent)  # the same run as the old: reused
        assert done.returncode == 0 and "nothing to train" in done.stdout, done.stdout + done.stderr
        done = _train("--epochs", "1", "--out", "ow", "--overwrite", "--no-keep-best", cwd=old_run.parent)
        assert done.returncode == 0, done.stderr
        assert _hidden(old_run) == []  # the killed run's temps went with the next run into the folder


def test_an_overwrite_replaces_every_file_of_the_old_run_at_its_first_checkpoint(old_run):
    before = _snapshot(old_run)
    done = _train("--epochs", "1", "--out", "ow", "--overwrite", "--no-keep-best", "--seed", "3", cwd=old_run.parent)
    assert done.returncode == 0, done.stderr
    after = _snapshot(old_run)
    assert sorted(after) == ["checkpoint.pt", "history.csv", "spec.yaml"]  # the old best.pt went with the rest
    assert all(after[name] != before[name] for name in after) and _hidden(old_run) == []
    assert "seed: 3" in after["spec.yaml"].decode()
