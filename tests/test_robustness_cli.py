"""The one error boundary of `python -m facelib ...`: whatever a command raises reaches the user
as one line on stderr that says what failed, exit 2 for a bad argument or value and 1 for a
failure at run time, with `--debug` for the traceback of every command; Ctrl-C is one line (130)."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch
import yaml

from facelib import cli
from facelib.data._common import CorruptDataError
from facelib.experiment import RunConflictError
from facelib.registry import UnknownNameError
from facelib.study import pipeline, sweep
from facelib.train import distributed, load_model
from facelib.train.engine import TrainingDivergedError
from facelib.verify import selection as lfw_selection

ROOT = Path(__file__).resolve().parents[1]


#: A `python -m facelib` started elsewhere imports this checkout's facelib, not an installed one.
CHECKOUT_ENV = {"PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}


def facelib_cmd(*args: str, cwd: Path, env: dict | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facelib", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **CHECKOUT_ENV, **(env or {})})


@pytest.mark.parametrize("exc, expected, rc", [
    (ValueError("bad value x; give y"), "facelib zoo: error: bad value x; give y", 2),
    (cli.UsageError("give --out"), "facelib zoo: error: give --out", 2),
    (TypeError("wrong type; give an int"), "facelib zoo: error: wrong type; give an int", 2),
    (KeyError("no zoo recipe 'q'; known recipes: a, b"), "facelib zoo: error: no zoo recipe 'q'; known recipes: a, b",
     2),
    (UnknownNameError("unknown model 'q'; known models: vae"), "facelib zoo: error: unknown model 'q'; known models: "
     "vae", 2),
    (FileNotFoundError(2, "No such file", "m.json"), "facelib zoo: error: [Errno 2] No such file: 'm.json'", 1),
    (RunConflictError(Path("runs/x"), "training lr 0.001 -> 0.01"), "facelib zoo: error: runs/x holds another run "
     "(training lr 0.001 -> 0.01); give another out folder, or overwrite=True (--overwrite) to replace it", 1),
    (TrainingDivergedError("the loss is nan at step 3", epoch=1, step=3, terms={}, checkpoint=None),
     "facelib zoo: error: the loss is nan at step 3", 1),
    (CorruptDataError("x.npz is damaged; download it again"), "facelib zoo: error: x.npz is damaged; download it "
     "again", 1),
])
def test_user_errors_are_one_line_with_their_message(monkeypatch, capsys, exc, expected, rc):
    """A bad argument or value exits 2, a failure at run time (even a ValueError such as damaged
    data) 1."""
    monkeypatch.setattr("facelib.zoo.cli.main_from_args", lambda args: (_ for _ in ()).throw(exc))
    assert cli.main(["zoo", "list"]) == rc
    err = capsys.readouterr().err
    assert err.strip() == expected and "Traceback" not in err


@pytest.mark.parametrize("exc", [KeyError("sha256"), ZeroDivisionError("division by zero"), AttributeError("x")])
def test_defects_are_one_line_naming_the_type_and_debug(monkeypatch, capsys, exc):
    monkeypatch.setattr("facelib.zoo.cli.main_from_args", lambda args: (_ for _ in ()).throw(exc))
    assert cli.main(["zoo", "list"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and type(exc).__name__ in err and "--debug" in err
    assert "Traceback" not in err


def test_debug_shows_the_traceback_in_either_position(monkeypatch, capsys):
    monkeypatch.setattr("facelib.zoo.cli.main_from_args", lambda args: 1 / 0)
    for argv in (["--debug", "zoo", "list"], ["zoo", "--debug", "list"]):
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert "Traceback" in err and "ZeroDivisionError" in err


def test_keyboard_interrupt_is_one_line(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr("facelib.zoo.cli.main_from_args", interrupted)
    assert cli.main(["zoo", "list"]) == 130
    assert capsys.readouterr().err.strip() == "facelib zoo: interrupted"


def test_zoo_list_with_a_broken_manifest_is_one_line(tmp_path):
    """A real process: the manifest of the zoo folder is not JSON (was a traceback)."""
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    (zoo / "manifest.json").write_text('{"models": {"a": ')
    proc = facelib_cmd("zoo", "list", cwd=tmp_path, env={"FACELIB_ZOO": str(zoo)})
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "manifest" in proc.stderr


@pytest.mark.parametrize("models", ['[]', '{"synthetic-vae": {"file": "synthetic-vae.pt"}}'])
def test_zoo_list_and_check_with_malformed_entries_are_one_line(tmp_path, models):
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    (zoo / "manifest.json").write_text(json.dumps({"models": json.loads(models)}))
    for command in (["zoo", "list"], ["zoo", "check", "synthetic-vae"]):
        proc = facelib_cmd(*command, cwd=tmp_path, env={"FACELIB_ZOO": str(zoo)})
        assert proc.returncode != 0 and "Traceback" not in proc.stderr + proc.stdout, proc.stderr
        assert "manifest" in proc.stderr + proc.stdout


def test_stale_rank_variables_time_out_with_a_message_naming_them(monkeypatch):
    """One process with WORLD_SIZE=2 RANK=0 left in its environment waited 30 minutes for a peer."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
           "FACELIB_DIST_TIMEOUT": "2"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    ranks = distributed.from_environment()
    with pytest.raises(RuntimeError) as err:
        distributed.process_group(ranks, torch.device("cpu"))
    text = str(err.value)
    assert "within 2 s" in text and "WORLD_SIZE=2" in text and "RANK=0" in text and "unset them" in text
    assert not torch.distributed.is_initialized()
    monkeypatch.setenv("FACELIB_DIST_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="FACELIB_DIST_TIMEOUT"):
        distributed.rendezvous_timeout()


def test_a_notebook_stopped_by_ctrl_c_is_interrupted_not_failed(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "_execute_into", interrupted)
    entry = pipeline._run_one(tmp_path / "01_x.ipynb", tmp_path / "out.ipynb", {}, "python3", run_dir=tmp_path)
    assert entry["status"] == "interrupted" and "Ctrl-C" in entry["error"]
    assert isinstance(entry["_exception"], KeyboardInterrupt)


SLOW_CELL = """
from pathlib import Path
import time
Path("cell-started").write_text("yes")
time.sleep(300)
"""


def test_ctrl_c_during_a_real_run_is_one_line_and_recorded(tmp_path):
    """A real `python -m facelib run` interrupted (SIGINT to its process group, as Ctrl-C in a
    terminal) while a notebook cell runs: the kernel, interrupted and shut down by papermill, printed
    a 15-line "Exception in message handler" ZMQError traceback; the user sees one line."""
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell("run_dir = None\n")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(SLOW_CELL)]
    nbformat.write(nb, str(nbs / "00_slow.ipynb"))
    proc = subprocess.Popen([sys.executable, "-m", "facelib", "run", "--notebooks-dir", str(nbs), "--out",
                             str(tmp_path / "reports"), "--run-id", "r"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, **CHECKOUT_ENV},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        started = nbs / "cell-started"
        for _ in range(1200):  # the kernel starts in seconds; a loaded machine gets two minutes
            if started.exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert started.exists(), proc.communicate(timeout=60)
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in out + err and "ERROR" not in err, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("facelib run: interrupted; what was made"), err
    record = json.loads((tmp_path / "reports" / "r" / "run.json").read_text())
    assert record["status"] == "interrupted" and record["notebooks"][0]["status"] == "interrupted"


def test_a_malformed_parameter_list_is_one_line(tmp_path, capsys):
    rc = cli.main(["run", "-p", "betas", "[1, 4", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "[1, 4" in err and "write e.g." in err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())  # nothing ran


@pytest.mark.parametrize("command", [["train", "--model", "vae", "--data", "synthetic", "--epochs", "1"],
                                     ["run", "--notebooks", "00_data"]])
def test_an_out_that_is_a_file_says_so(tmp_path, capsys, command):
    """`--out` naming a file gave "[Errno 17] File exists"."""
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    rc = cli.main([*command, "--out", str(target)])
    err = capsys.readouterr().err
    assert rc == 1 and "is a file, not a folder" in err and "Errno 17" not in err, err
    assert target.read_text() == "mine"


TINY_SWEEP = ["sweep", "--models", "beta-vae", "--betas", "1", "--seeds", "0", "--data", "synthetic", "--max-steps", "1",
              "--executor", "local"]


def _no_work(*a, **k):
    raise AssertionError("work started before the output folder was checked")


@pytest.mark.parametrize("command", [
    [*TINY_SWEEP, "--out", "{path}"],
    ["zoo", "build", "synthetic-vae", "--folder", "{tmp}/zoo", "--work-dir", "{path}"],
    ["zoo", "build", "synthetic-vae", "--folder", "{path}", "--work-dir", "{tmp}/runs"],
    ["lfw", "--results", "{path}", "view2"],
    ["train", "--model", "vae", "--data", "synthetic", "--epochs", "1", "--out", "{path}"],
    ["run", "--notebooks", "00_data", "--out", "{path}"],
], ids=["sweep --out", "zoo build --work-dir", "zoo build --folder", "lfw --results", "train --out", "run --out"])
@pytest.mark.parametrize("where", ["the file", "under the file"])
def test_every_output_folder_that_is_a_file_is_named_before_any_work(tmp_path, capsys, monkeypatch, command, where):
    """One check (files.check_writable) for every command's output folders: a path that is a file,
    or lies under one, is named as a file before any data is built or model trained (`zoo build
    --work-dir` was not checked until training began; messages said "sweep folder folder")."""
    zoo_build = importlib.import_module("facelib.zoo.build")
    monkeypatch.setattr(zoo_build, "build_data", _no_work)
    monkeypatch.setattr(zoo_build, "run_experiment", _no_work)
    monkeypatch.setattr(sweep, "_run_grid", _no_work)
    monkeypatch.setattr(lfw_selection, "run_view2", _no_work)
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    path = target if where == "the file" else target / "sub"
    argv = [a.replace("{path}", str(path)).replace("{tmp}", str(tmp_path)) for a in command]
    rc = cli.main(argv)
    captured = capsys.readouterr()
    said = (captured.err + captured.out).strip()
    errors = [line for line in said.splitlines() if str(target) in line]  # (a sweep also says how many trials)
    assert rc == 1 and len(errors) == 1 and "Traceback" not in said, said
    assert re.search(rf"{re.escape(str(target))}'? is a file, not a folder", errors[0]), said
    assert "folder folder" not in said and "Errno 17" not in said and "unexpected error" not in said, said
    assert target.read_text() == "mine"


def test_an_orphaned_cell_task_whose_kernel_died_logs_nothing(caplog):
    """What made the real Ctrl-C test above print a traceback now and then: the cell's asyncio task,
    left pending when papermill shut the kernel down, is collected later and asyncio logs "Task
    exception was never retrieved" with nbclient's DeadKernelError, after papermill's "Kernel died
    while waiting for execute reply.". Any other error still shows."""
    from nbclient.exceptions import DeadKernelError

    pipeline.quiet_orphaned_kernel_deaths()
    pipeline.quiet_orphaned_kernel_deaths()  # once per process, however often a run starts
    for name in ("asyncio", "papermill"):
        assert sum(isinstance(f, pipeline._OrphanedKernelDeath) for f in logging.getLogger(name).filters) == 1
    loop = asyncio.new_event_loop()
    try:
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            loop.call_exception_handler({"message": "Task exception was never retrieved",
                                         "exception": DeadKernelError("Kernel died")})
            assert caplog.records == []
            loop.call_exception_handler({"message": "Task exception was never retrieved",
                                         "exception": RuntimeError("something else")})
            assert [r.exc_info[1].args for r in caplog.records] == [("something else",)]
        with caplog.at_level(logging.ERROR, logger="papermill"):
            logging.getLogger("papermill").error("Kernel died while waiting for execute reply.")
            logging.getLogger("papermill").error("another papermill error")
            assert [r.getMessage() for r in caplog.records[1:]] == ["another papermill error"]
    finally:
        loop.close()


# -- every command: a bad value exits 2 in one line, --debug shows where -------------------------
TINY = ["--model", "vae", "--data", "synthetic", "--data-option", "n=256", "--image-size", "32", "--latent-dim", "4",
        "--epochs", "1", "--no-progress"]


@pytest.fixture
def empty_csv(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    return tmp_path / "empty.csv"


BAD_VALUES = {  # the cases, each of which printed one line without a traceback under --debug
    "train": ["train", *TINY, "--latent-dim", "0"],
    "train-flag": ["train", *TINY, "--batch-size", "many"],
    "train-set": ["train", *TINY, "--set", "learn_scale=sometimes"],
    "sweep": ["sweep", "--models", "vae", "--data", "synthetic", "--workers", "0", "--out", "{tmp}/sweep"],
    "sweep-grid": ["sweep", "--models", "vae", "--data", "synthetic", "--grid", "training.nope=1,2", "--out",
                   "{tmp}/sweep"],
    "run": ["run", "-p", "epochs", "1", "-p", "epochs", "2", "--out", "{tmp}/reports"],
    "lfw": ["lfw", "--results", "{tmp}/results", "roc", "--scores", "{tmp}/empty.csv"],
    "zoo": ["zoo", "build", "nope"],
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_every_commands_bad_value_exits_2_in_one_line_and_debug_shows_its_traceback(case, tmp_path, empty_csv,
                                                                                      capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in BAD_VALUES[case]]
    command = argv[0]
    assert cli.main(argv) == 2
    said = capsys.readouterr()
    err = said.err.strip().splitlines()
    err = [line for line in err if "no --out given" not in line]  # train's note before it starts
    assert len(err) == 1 and err[0].startswith(f"facelib {command}: error: "), said.err
    assert command not in said.out and "error" not in said.out  # nothing on stdout (zoo build printed there)
    for debug in (["--debug", *argv], [command, "--debug", *argv[1:]]):
        assert cli.main(debug) == 2
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err and err.strip().splitlines()[-1].startswith(
            f"facelib {command}: error: "), err
    assert not (tmp_path / "sweep").exists() and not (tmp_path / "reports").exists()


def test_a_failure_at_run_time_exits_1(tmp_path, capsys):
    """A run folder holding another run: the values are fine, the state is not."""
    out = tmp_path / "run"
    assert cli.main(["train", *TINY, "--max-steps", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["train", *TINY, "--max-steps", "1", "--lr", "0.01", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("facelib train: error: ") and "holds another run" in err[0]
    assert "--overwrite" in err[0]


def test_a_bad_command_line_is_one_line_naming_the_command(capsys):
    assert cli.main(["train", "--epochs"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and err.startswith("facelib train: error: argument --epochs: expected one "
                                                        "argument") and "facelib train --help" in err
    assert cli.main(["zoo", "build"]) == 2
    assert capsys.readouterr().err.startswith("facelib zoo: error: the following arguments are required: NAME")
    assert cli.main(["nope"]) == 2
    assert capsys.readouterr().err.startswith("facelib: error: argument command: invalid choice: 'nope'")


def test_set_learn_scale_true_arrives_as_a_bool_and_trains(tmp_path, capsys):
    """`--set learn_scale=True` arrived as the string "True" (JSON) and failed."""
    out = tmp_path / "run"
    assert cli.main(["train", *TINY, "--max-steps", "1", "--set", "likelihood=gaussian", "--set", "learn_scale=True",
                     "--out", str(out)]) == 0, capsys.readouterr().err
    model = load_model(out / "checkpoint.pt")
    assert model.config.learn_scale is True and model.config.likelihood == "gaussian"


def test_dump_spec_round_trips_through_spec(tmp_path, capsys):
    argv = ["train", *TINY, "--set", "learn_scale=True", "--lr", "5e-4", "--kl-warmup-steps", "10", "--hflip",
            "--max-steps", "none", "--group-batches", "no", "--layout", "nchw", "--no-best", "--max-grad-norm", "1"]
    assert cli.main([*argv, "--dump-spec"]) == 0
    first = capsys.readouterr().out
    spec = yaml.safe_load(first)
    assert spec["model"]["options"]["learn_scale"] is True
    assert {k: spec["training"][k] for k in ("lr", "kl_warmup_steps", "hflip", "max_steps", "group_batches",
                                             "channels_last", "keep_best", "max_grad_norm", "progress", "epochs")} \
        == {"lr": 5e-4, "kl_warmup_steps": 10, "hflip": True, "max_steps": None, "group_batches": False,
            "channels_last": False, "keep_best": False, "max_grad_norm": 1.0, "progress": False, "epochs": 1}
    (tmp_path / "s.yaml").write_text(first)
    assert cli.main(["train", "--spec", str(tmp_path / "s.yaml"), "--dump-spec"]) == 0
    assert capsys.readouterr().out == first
    # with --spec, a flag changes only what it names
    assert cli.main(["train", "--spec", str(tmp_path / "s.yaml"), "--epochs", "3", "--no-hflip", "--dump-spec"]) == 0
    again = yaml.safe_load(capsys.readouterr().out)
    assert again["training"] == {**spec["training"], "epochs": 3, "hflip": False} and again["model"] == spec["model"]
    assert cli.main(["train", "--spec", str(tmp_path / "nope.yaml")]) == 2
    assert "--dump-spec" in capsys.readouterr().err


def test_every_train_config_field_has_its_flag():
    from facelib.experiment import cli as train_cli

    parser = cli.build_parser()
    train = next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "train")[1]
    flags = {s for action in train._actions for s in action.option_strings}
    for name in train_cli.TRAIN_FLAGS:
        assert "--" + name.replace("_", "-") in flags, name
    assert {"--no-progress", "--no-best", "--layout", "--group-batches", "--resume", "--overwrite", "--out",
            "--hflip", "--no-hflip"} <= flags
    assert not {"--resume", "--overwrite", "--out"} & {"--" + n for n in train_cli.TRAIN_FLAGS}
