"""facelib.study.pipeline on tiny throwaway notebooks (5 real papermill executions in all)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nbformat
import pytest

from facelib.study import pipeline
from facelib import cli
from facelib.cli import build_parser
from facelib.options import UsageError

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _notebook(path: Path, parameters: str, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    first = nbformat.v4.new_code_cell(parameters)
    first.metadata["tags"] = ["parameters"]
    nb.cells = [first] + [nbformat.v4.new_code_cell(c) for c in cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


WRITE = """
import json, os
from pathlib import Path
Path(run_dir, "{name}.json").write_text(json.dumps({payload}))
"""


@pytest.fixture()
def good(tmp_path):
    folder = tmp_path / "nbs"
    _notebook(folder / "00_first.ipynb", 'profile = "full"\nrun_dir = None\nalpha = 1\n',
              WRITE.format(name="first", payload='{"profile": profile, "alpha": alpha, "cwd": os.getcwd()}'))
    _notebook(folder / "01_second.ipynb", "run_dir = None\nbeta = 0\n",
              WRITE.format(name="second", payload='{"beta": beta, "has_alpha": "alpha" in globals()}'),
              "from facelib import study\n"
              "study.start('01_second', run_dir=run_dir).record_model('m', source='zoo', zoo_name='z', sha256='ab')")
    return folder


def test_runs_in_order_injects_declared_parameters_and_records(good, tmp_path):
    with pytest.raises(UsageError, match="-p gamma: no notebook of this run .* declares a parameter 'gamma'; "
                                         "their parameters are alpha, beta"):
        pipeline.run_pipeline(parameters={"alpha": 5, "gamma": 1}, notebooks_dir=good, out_root=tmp_path / "reports")
    assert not (tmp_path / "reports").exists()  # refused before anything was made
    run_dir = pipeline.run_pipeline(profile="quick", parameters={"alpha": 5, "beta": 2},
                                    notebooks_dir=good, out_root=tmp_path / "reports", run_id="r1", verbose=False)
    assert run_dir == (tmp_path / "reports" / "r1").resolve()
    first = json.loads((run_dir / "first.json").read_text())
    assert first == {"profile": "quick", "alpha": 5, "cwd": str(good.resolve())}  # kernel cwd = notebooks folder
    assert json.loads((run_dir / "second.json").read_text()) == {"beta": 2, "has_alpha": False}
    for stem in ("00_first", "01_second"):
        assert (run_dir / f"{stem}.ipynb").is_file()
        assert "<html" in (run_dir / f"{stem}.html").read_text()[:2000].lower()
    executed = nbformat.read(str(run_dir / "01_second.ipynb"), as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert "alpha" not in injected[0].source and "beta = 2" in injected[0].source

    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "completed" and record["profile"] == "quick"
    assert record["parameters"] == {"profile": "quick", "alpha": 5, "beta": 2}
    assert record["unused_parameters"] == [] and record["profile_parameters"] == {}
    assert record["versions"]["torch"] and record["versions"]["papermill"]
    assert "git_commit" in record and record["platform"]["python"]
    assert record["started"] <= record["finished"] and record["wall_s"] > 0
    assert [n["notebook"] for n in record["notebooks"]] == ["00_first", "01_second"]
    assert all(n["status"] == "completed" and n["seconds"] > 0 for n in record["notebooks"])
    assert [(n["output"], n["html"]) for n in record["notebooks"]] == [
        ("00_first.ipynb", "00_first.html"), ("01_second.ipynb", "01_second.html")]
    assert record["notebooks"][1]["parameters"] == {"run_dir": str(run_dir), "beta": 2}
    # which models each notebook trained or took from the zoo (Study.record_model)
    assert "models" not in record["notebooks"][0]
    assert record["notebooks"][1]["models"] == [{"key": "m", "source": "zoo", "zoo_name": "z", "sha256": "ab"}]


def test_failed_notebook_stops_the_run_and_keeps_outputs(tmp_path):
    folder = tmp_path / "nbs"
    _notebook(folder / "00_bad.ipynb", "run_dir = None\n",
              'from pathlib import Path\nPath(run_dir, "made.txt").write_text("kept")',
              'raise ValueError("boom")')
    _notebook(folder / "01_never.ipynb", "run_dir = None\n", 'open(run_dir + "/never.txt", "w").close()')
    with pytest.raises(pipeline.PipelineError, match=r"00_bad failed: ValueError: boom"):
        pipeline.run_pipeline(notebooks_dir=folder, out_root=tmp_path / "reports", run_id="r", verbose=False)
    run_dir = tmp_path / "reports" / "r"
    assert (run_dir / "made.txt").read_text() == "kept"
    assert (run_dir / "00_bad.ipynb").is_file() and (run_dir / "00_bad.html").is_file()
    assert not (run_dir / "01_never.ipynb").exists() and not (run_dir / "never.txt").exists()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "failed" and "00_bad" in record["error"]
    assert [n["status"] for n in record["notebooks"]] == ["failed", "not run"]
    assert "boom" in record["notebooks"][0]["error"]


def test_never_overwrites_a_run_dir_and_cli_reports_it(good, tmp_path, capsys):
    existing = tmp_path / "reports" / "mine"
    existing.mkdir(parents=True)
    (existing / "notes.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="already exists.*--run-id"):
        pipeline.run_pipeline(notebooks_dir=good, out_root=tmp_path / "reports", run_id="mine", verbose=False)
    args = build_parser().parse_args(["run", "--profile", "full", "--notebooks-dir", str(good), "--out",
                                      str(tmp_path / "reports"), "--run-id", "mine", "-p", "alpha", "7"])
    assert args.profile == "full" and args.parameter == [["alpha", "7"]]
    with pytest.raises(FileExistsError, match="already exists"):  # the command raises; cli.main prints it
        pipeline.main_from_args(args)
    assert cli.main(["run", "--notebooks-dir", str(good), "--out", str(tmp_path / "reports"), "--run-id", "mine"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("facelib run: error: run folder") and "already exists" in err
    assert cli.main(["run", "--notebooks-dir", str(good), "-p", "alpha", "7", "-p", "alpha", "8"]) == 2
    assert "-p alpha given twice" in capsys.readouterr().err
    assert (existing / "notes.txt").read_text() == "precious" and sorted(os.listdir(existing)) == ["notes.txt"]


def test_bad_requests_are_clear_errors(good, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.*00_first, 01_second"):
        pipeline.find_notebooks(["nope"], good)
    assert [p.stem for p in pipeline.find_notebooks(["01", "00_first.ipynb"], good)] == ["01_second", "00_first"]
    with pytest.raises(ValueError, match="profile"):
        pipeline.run_pipeline(profile="medium", notebooks_dir=good, out_root=tmp_path / "r")
    with pytest.raises(ValueError, match="run_dir"):
        pipeline.run_pipeline(parameters={"run_dir": "x"}, notebooks_dir=good, out_root=tmp_path / "r")
    with pytest.raises(ValueError, match="unknown data set 'mnist'; known data sets: .*olivetti"):
        pipeline.run_pipeline(dataset="mnist", notebooks_dir=good, out_root=tmp_path / "r")
    with pytest.raises(ValueError, match="plain folder name"):
        pipeline.run_pipeline(run_id="../up", notebooks_dir=good, out_root=tmp_path / "r")
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


@pytest.mark.parametrize("text, value", [
    ("5", 5), ("-2", -2), ("1e-3", 1e-3), ("0.5", 0.5), ("True", True), ("false", False), ("None", None),
    ("[1, 4, 10]", [1, 4, 10]), ("{a: 1}", {"a": 1}), ("olivetti", "olivetti"),
])
def test_parse_value_reads_like_papermill(text, value):
    assert pipeline.parse_value(text) == value


def test_parallel_sweep_writes_one_output_per_value(tmp_path):
    nb = _notebook(tmp_path / "nbs" / "00_sweep.ipynb", "run_dir = None\nbeta = 1.0\n",
                   WRITE.format(name="out", payload='{"beta": beta, "threads": os.environ.get("OMP_NUM_THREADS")}'))
    run_dir = pipeline.run_sweep(nb, "beta", [2.0, 10.0], max_workers=2, out_root=tmp_path / "reports", run_id="s")
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "completed" and record["kind"] == "sweep"
    sweep = record["sweeps"][0]
    assert sweep["parameter"] == "beta" and sweep["values"] == [2.0, 10.0] and sweep["max_workers"] == 2
    assert sweep["threads_per_kernel"] == max(1, (os.cpu_count() or 1) // 2)
    for value, entry in zip([2.0, 10.0], sweep["runs"]):
        folder = run_dir / "sweeps" / "00_sweep" / f"beta={value}"
        assert entry["value"] == value and entry["status"] == "completed"
        assert entry["output"] == f"sweeps/00_sweep/beta={value}/00_sweep__beta={value}.ipynb"
        assert (run_dir / entry["output"]).is_file() and (run_dir / entry["html"]).is_file()
        out = json.loads((folder / "out.json").read_text())
        assert out["beta"] == value and out["threads"] == str(sweep["threads_per_kernel"])
    with pytest.raises(ValueError, match="does not declare.*gamma"):
        pipeline.run_sweep(nb, "gamma", [1, 2], out_root=tmp_path / "reports")


def test_pipeline_parallel_sweep_trains_values_apart_then_reuses_them(tmp_path):
    # stands in for 02_beta_vae: one "checkpoint" per beta, reused when already in run_dir
    body = """
import json
from pathlib import Path
made, reused = [], []
for b in betas:
    ckpt = Path(run_dir, "checkpoints", f"b{b}", "checkpoint.pt")
    (reused if ckpt.exists() else made).append(b)
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    ckpt.write_text(str(b))
Path(run_dir, "log.json").write_text(json.dumps({"made": made, "reused": reused}))
"""
    _notebook(tmp_path / "nbs" / "00_sweep.ipynb", 'profile = "quick"\nrun_dir = None\nbetas = None\n', body)
    run_dir = pipeline.run_pipeline(parameters={"betas": [1, 4]}, parallel_sweep=True, notebooks_dir=tmp_path / "nbs",
                                    out_root=tmp_path / "reports", run_id="p", verbose=False)
    assert json.loads((run_dir / "log.json").read_text()) == {"made": [], "reused": [1, 4]}
    for b in (1, 4):
        sub = run_dir / "sweeps" / "00_sweep" / f"betas={b}"
        assert json.loads((sub / "log.json").read_text()) == {"made": [b], "reused": []}
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "completed" and record["sweeps"][0]["values"] == [[1], [4]]
    assert record["notebooks"][0]["parameters"]["betas"] == [1, 4]


def test_the_default_notebooks_are_the_ones_that_come_with_facelib(tmp_path, monkeypatch):
    """Not ./notebooks of wherever `run` starts: the checkout's notebooks here (facelib/notebooks in
    a wheel, tests/test_packaging.py), whatever the current folder holds."""
    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "00_other.ipynb").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert pipeline.default_notebooks_dir() == repo / "notebooks"
    assert [p.name for p in pipeline.find_notebooks(["00"])] == ["00_data.ipynb"]
    with pytest.raises(FileNotFoundError, match="--notebooks-dir"):
        pipeline.find_notebooks(None, tmp_path / "empty")


@pytest.fixture()
def papermill_calls(monkeypatch):
    """papermill's execute_notebook replaced by a copy of the notebook that records its parameters:
    what the pipeline gives papermill, without a kernel."""
    import shutil

    import papermill

    calls = {}

    def execute_notebook(input_path, output_path, parameters=None, **_kw):
        calls[Path(input_path).stem] = dict(parameters or {})
        shutil.copyfile(input_path, output_path)

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    monkeypatch.setattr(pipeline, "_write_html", lambda executed: None)
    return calls


def test_profile_full_gives_papermill_the_files_values_and_quick_the_notebooks_own(papermill_calls, tmp_path):
    full = pipeline.profile_parameters("full")
    assert full["epochs"] == 6 and full["image_size"] == 64 and full["betas"] == [2.0, 4.0, 5.0, 10.0]
    assert cli.main(["run", "--profile", "full", "--notebooks-dir", str(NOTEBOOKS), "--notebooks", "00_data",
                     "02_beta_vae", "--out", str(tmp_path), "--run-id", "full", "-p", "epochs", "2"]) == 0
    declared = pipeline.declared_parameters(NOTEBOOKS / "02_beta_vae.ipynb")
    expected = {k: v for k, v in full.items() if k in declared} | {"epochs": 2}  # -p still wins
    got = papermill_calls["02_beta_vae"]
    assert got == {"profile": "full", "run_dir": str((tmp_path / "full").resolve()), **expected}
    assert "latent_dim" not in papermill_calls["00_data"]  # only what the notebook declares
    assert papermill_calls["00_data"]["n_images"] == full["n_images"]
    record = json.loads((tmp_path / "full" / "run.json").read_text())
    assert record["profile_parameters"] == full
    papermill_calls.clear()
    assert cli.main(["run", "--notebooks-dir", str(NOTEBOOKS), "--notebooks", "02_beta_vae", "--out", str(tmp_path),
                     "--run-id", "quick"]) == 0
    assert papermill_calls["02_beta_vae"] == {"profile": "quick", "run_dir": str((tmp_path / "quick").resolve())}


@pytest.mark.parametrize("args, message", [
    (["-p", "epochs", "abc"], "01_vae: epochs expects an integer, got abc (-p epochs; the notebook's default is 8)"),
    (["-p", "seed", "abc"], "01_vae: seed expects an integer, got abc (-p seed; the notebook's default is 0)"),
    (["-p", "lfw_study", "maybe"], "01_vae: lfw_study expects true/false, got maybe"),
    (["--notebooks", "02_beta_vae", "-p", "betas", "4"],
     "02_beta_vae: betas expects a list of numbers, got 4 (-p betas; the notebook's default is [1.0, 4.0])"),
    (["--notebooks", "02_beta_vae", "-p", "betas", "[1, x]"], "02_beta_vae: betas expects a list of numbers"),
    (["-p", "epoch", "3"], "01_vae: -p names an unknown parameter 'epoch'; its parameters are profile, run_dir, "
                           "seed, device, dataset, image_size,"),
])
def test_bad_parameters_are_refused_before_any_kernel_starts(papermill_calls, tmp_path, capsys, args, message):
    argv = ["run", "--notebooks-dir", str(NOTEBOOKS), "--notebooks", "01_vae", "--out", str(tmp_path / "r"), *args]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"facelib run: error: {message}") and err.count("\n") == 1, err
    assert papermill_calls == {} and not (tmp_path / "r").exists()


def test_good_parameters_reach_papermill_as_the_defaults_types(papermill_calls, tmp_path, capsys):
    assert cli.main(["run", "--notebooks-dir", str(NOTEBOOKS), "--notebooks", "02_beta_vae", "--out", str(tmp_path),
                     "-p", "epochs", "2", "-p", "lr", "1", "-p", "betas", "[1, 4]", "-p", "lfw_study", "True",
                     "-p", "likelihood", "bernoulli", "-p", "seed", "3"]) == 0
    got = papermill_calls["02_beta_vae"]
    assert {k: (v, type(v)) for k, v in got.items() if k not in ("profile", "run_dir")} == {
        "epochs": (2, int), "lr": (1.0, float), "betas": ([1.0, 4.0], list), "lfw_study": (True, bool),
        "likelihood": ("bernoulli", str), "seed": (3, int)}
    assert all(isinstance(b, float) for b in got["betas"])


def test_dry_run_prints_what_each_notebook_gets_and_writes_nothing(papermill_calls, tmp_path, capsys):
    assert cli.main(["run", "--profile", "full", "--notebooks-dir", str(NOTEBOOKS), "--notebooks", "00_data",
                     "--out", str(tmp_path / "r"), "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan == {"00_data": {"profile": "full", "image_size": 64, "n_images": 20000, "n_identities": 50}}
    assert papermill_calls == {} and not (tmp_path / "r").exists()


def test_declared_parameters_read_the_parameters_cell(tmp_path):
    nb = _notebook(tmp_path / "00_x.ipynb", 'a = 8  # c\nb: float = 1e-3\nc = ["x",\n     "y"]\nd = None\ne = f(1)\n',
                   "z = 1")
    got = pipeline.declared_parameters(nb)
    assert got == {"a": 8, "b": 1e-3, "c": ["x", "y"], "d": None, "e": "f(1)"}
    assert isinstance(got["e"], pipeline.Expression)
    assert [pipeline.parameter_type(v) for v in got.values()] == [int, float, list[str], Any, Any]
    assert pipeline.parameter_type([1, 2.5]) == list[float] and pipeline.parameter_type([]) == list
    assert pipeline.check_parameters("00_x", got, {"d": [1], "e": "anything", "b": 2}) == {"d": [1], "e": "anything",
                                                                                           "b": 2.0}
