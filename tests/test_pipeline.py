"""facelib.study.pipeline on tiny throwaway notebooks (5 real papermill executions in all)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

from facelib.study import pipeline
from facelib import cli
from facelib.cli import build_parser


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
    with pytest.warns(UserWarning, match="gamma.*no effect"):
        run_dir = pipeline.run_pipeline(profile="quick", parameters={"alpha": 5, "beta": 2, "gamma": 1},
                                        notebooks_dir=good, out_root=tmp_path / "reports", run_id="r1",
                                        verbose=False)
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
    assert record["parameters"] == {"profile": "quick", "alpha": 5, "beta": 2, "gamma": 1}
    assert record["unused_parameters"] == ["gamma"]
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
