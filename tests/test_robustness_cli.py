"""The one error boundary of `python -m facelib ...`: whatever a command raises reaches the user
as one line (rc 1) that says what failed, with `--debug` for the traceback; Ctrl-C is one line."""

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

from facelib import cli
from facelib.study import pipeline, sweep
from facelib.train import distributed
from facelib.verify import selection as lfw_selection

ROOT = Path(__file__).resolve().parents[1]


def facelib_cmd(*args: str, cwd: Path, env: dict | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facelib", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("exc, expected", [
    (ValueError("bad value x; give y"), "facelib zoo: error: bad value x; give y"),
    (KeyError("no zoo recipe 'q'; known recipes: a, b"), "facelib zoo: error: no zoo recipe 'q'; known recipes: a, b"),
    (FileNotFoundError(2, "No such file", "m.json"), "facelib zoo: error: [Errno 2] No such file: 'm.json'"),
])
def test_user_errors_are_one_line_with_their_message(monkeypatch, capsys, exc, expected):
    monkeypatch.setattr("facelib.zoo.cli.main_from_args", lambda args: (_ for _ in ()).throw(exc))
    assert cli.main(["zoo", "list"]) == 1
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
    assert len(err.strip().splitlines()) == 1 and err.startswith("interrupted"), err
    record = json.loads((tmp_path / "reports" / "r" / "run.json").read_text())
    assert record["status"] == "interrupted" and record["notebooks"][0]["status"] == "interrupted"


def test_a_malformed_parameter_list_is_one_line(tmp_path, capsys):
    rc = cli.main(["run", "-p", "betas", "[1, 4", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc in (1, 2) and "Traceback" not in err and len(err.strip().splitlines()) == 1
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
    assert rc in (1, 2) and "is a file, not a folder" in err and "Errno 17" not in err, err
    assert target.read_text() == "mine"


TINY_SWEEP = ["sweep", "--models", "vae", "--betas", "1", "--seeds", "0", "--data", "synthetic", "--max-steps", "1",
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
    monkeypatch.setattr(zoo_build, "train", _no_work)
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
    assert rc in (1, 2) and len(errors) == 1 and "Traceback" not in said, said
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
