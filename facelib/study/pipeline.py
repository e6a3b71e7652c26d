"""The study in batch: execute the numbered notebooks with papermill into `reports/<run-id>/`.

`python -m facelib run [--profile quick|full] [--dataset NAME] [-p key value ...]` runs
the `NN_*.ipynb` notebooks that come with facelib (`default_notebooks_dir`: installed as package
data, or the checkout's `notebooks/`), or those of `--notebooks-dir`, in order, into
`./reports/<run-id>/` (under the current folder; `--out` names another). Each notebook's `parameters`
cell holds the quick profile's values (its defaults, what JupyterLab's Run All uses); a profile other
than quick is a papermill parameters file shipped with the package (`facelib/study/profiles/full.yaml`,
only what differs from the notebooks' defaults). Each notebook gets `profile`, `run_dir` (the absolute run
folder, where it writes figures, tables and checkpoints), `dataset` when given, the profile
file's values and the `-p` overrides (which win), but only the names its parameters cell
declares. Before any kernel starts every value is checked against the type of the notebook's
default (`check_parameters`: an int, a number, a string, true/false, a list of them; a None
default takes anything) and a `-p` name that no notebook of the run declares is refused, each
as a `UsageError` naming the notebook, the parameter and what it expects (exit status 2). Into the run folder go the executed notebooks, their HTML renderings and
`run.json` (parameters, per-notebook timings and status, library versions, git commit,
platform). The kernel's working directory is the notebook's folder, as in JupyterLab.

A failed notebook stops the run: what was made stays, `run.json` says `failed` and names
the notebook and the error, and `PipelineError` is raised (exit status 1 from the CLI). An
existing run folder is never reused or overwritten, and an `--out` that cannot be written
fails before any notebook runs.

Every file the run writes (run.json, executed notebooks, HTML) goes through a temp file that
replaces it only when complete (`files.atomic_path`): a full disk or a kill never leaves a
truncated notebook or record, only the last complete one, and a write error ends the run as
`failed` in run.json where the disk still takes that.

A sweep (`run_sweep`, or `parallel_sweep=True` for notebooks with a `betas` parameter) runs
one notebook for several parameter values at once, each in its own kernel process and into
its own folder, with torch/BLAS threads split between the kernels.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import datetime as _dt
import errno
import json
import logging
import os
import platform
import re
import shutil
import sys
import time
import uuid
import warnings
from pathlib import Path
from importlib import resources
from typing import Any, Iterable, Sequence, get_args, get_origin

import yaml

from facelib.files import atomic_path, atomic_write_text, check_writable, package_folder, pid_alive
from facelib.options import UsageError, convert
from facelib.options import parse_value as _typed_value

from .executors import LocalExecutor

__all__ = [
    "run_pipeline", "run_sweep", "find_notebooks", "declared_parameters", "parse_value", "PipelineError",
    "configure_parser", "main_from_args", "read_run", "kernel_arguments", "profile_names", "profile_parameters",
    "check_parameters", "parameter_type", "plan_run",
]

#: Parameters the pipeline always offers (a notebook receives those it declares).
PIPELINE_PARAMETERS = ("profile", "run_dir", "dataset")
_NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"


class PipelineError(RuntimeError):
    """A notebook of the run failed; the message names it, the error and where the outputs are."""


class RunRecordError(PipelineError):
    """run.json could not be written (a full disk, most often); the message says what it still shows."""


# -- helpers -----------------------------------------------------------------------------
def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def default_notebooks_dir() -> Path:
    """The notebooks that come with facelib: `facelib/notebooks` of an installed facelib (package
    data: the wheel's copy of the checkout's top-level `notebooks/`), that `notebooks/` when
    facelib runs from its checkout (`files.package_folder`)."""
    return package_folder("notebooks", "notebooks")


def find_notebooks(names: Sequence[str | os.PathLike] | None = None, notebooks_dir: str | os.PathLike | None = None) -> list[Path]:
    """The notebooks to run, in order: all `NN_*.ipynb` of `notebooks_dir`, or those named.

    A name is a path to a notebook, a stem ("02_beta_vae"), a file name, or a unique
    prefix ("02"); named notebooks run in the order given.
    """
    folder = Path(notebooks_dir) if notebooks_dir is not None else default_notebooks_dir()
    available = sorted(folder.glob(_NOTEBOOK_GLOB)) if folder.is_dir() else []
    if names is None:
        if not available:
            raise FileNotFoundError(f"no notebooks matching {_NOTEBOOK_GLOB} in {folder}; pass notebooks_dir "
                                    "(--notebooks-dir DIR)")
        return [a.resolve() for a in available]
    out: list[Path] = []
    for name in names:
        p = Path(name)
        if p.suffix == ".ipynb" and p.is_file():
            out.append(p.resolve())
            continue
        stem = p.name[:-6] if p.name.endswith(".ipynb") else p.name
        exact = [a for a in available if a.stem == stem]
        prefix = [a for a in available if a.stem.startswith(stem)]
        found = exact or prefix
        if len(found) != 1:
            choices = ", ".join(a.stem for a in available) or "(none)"
            what = "matches several" if len(found) > 1 else "matches no notebook"
            raise FileNotFoundError(f"notebook {str(name)!r} {what} in {folder}; choose from: {choices}")
        out.append(found[0].resolve())
    if len(set(out)) != len(out):
        raise ValueError(f"a notebook is named twice in {[str(n) for n in names]}; name each once")
    return out


class Expression(str):
    """The source text of a parameter default that is not a literal (its type is not known)."""


def declared_parameters(notebook: str | os.PathLike) -> dict[str, Any]:
    """Names and defaults the notebook's `parameters`-tagged cell declares ({} if none), in order:
    each top-level `name = value` (or `name: type = value`), the value as a Python literal, or an
    `Expression` holding its text when it is not one."""
    path = Path(notebook)
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read notebook {path}: {err}") from err
    out: dict[str, Any] = {}
    for cell in cells:
        if cell.get("cell_type") != "code" or "parameters" not in cell.get("metadata", {}).get("tags", []):
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        try:
            body = ast.parse(source).body
        except SyntaxError as err:
            raise ValueError(f"{path.name}: its parameters cell is not valid Python ({err})") from err
        for node in body:
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else []
            for target in targets:
                if isinstance(target, ast.Name):
                    try:
                        out[target.id] = ast.literal_eval(node.value)
                    except ValueError:
                        out[target.id] = Expression(ast.unparse(node.value))
        break  # papermill reads the first parameters cell
    return out


# -- profiles and typed parameters -------------------------------------------------------------
#: The profile that is the notebooks' own defaults (no parameters file).
DEFAULT_PROFILE = "quick"


def _profile_files() -> dict[str, Any]:
    folder = resources.files("facelib.study") / "profiles"
    return {f.name[:-5]: f for f in folder.iterdir() if f.name.endswith(".yaml")} if folder.is_dir() else {}


def profile_names() -> list[str]:
    """The run profiles: "quick" (the notebooks' parameters cells) and one per parameters file
    in the package's `facelib/study/profiles/` ("full")."""
    return [DEFAULT_PROFILE, *sorted(_profile_files())]


def profile_parameters(profile: str) -> dict[str, Any]:
    """The papermill parameters of `profile`: {} for "quick" (the notebooks' defaults), else its
    file `facelib/study/profiles/<profile>.yaml` (read with importlib.resources, so an installed
    package has it). ValueError for an unknown profile or a file that is not a YAML mapping."""
    if profile == DEFAULT_PROFILE:
        return {}
    files = _profile_files()
    if profile not in files:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(profile_names())}")
    try:
        values = yaml.safe_load(files[profile].read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"the {profile} profile's file facelib/study/profiles/{profile}.yaml is not valid YAML "
                         f"({' '.join(str(err).split())}); fix it") from err
    if not isinstance(values, dict):
        raise ValueError(f"the {profile} profile's file facelib/study/profiles/{profile}.yaml must map parameter "
                         "names to values (name: value, one a line)")
    return values


_LIST_WORDS = {bool: "true/false values", int: "integers", float: "numbers", str: "strings"}


def parameter_type(default: Any) -> Any:
    """The type a parameter takes, read from its default in the parameters cell: bool, int, float
    (ints too), str, list[X] (X the elements' common type; numbers mixing ints and floats are
    floats), dict; Any for a None default (None is its meaning: the notebook checks what it gets)
    or one that is not a literal."""
    if default is None or isinstance(default, Expression):
        return Any
    if isinstance(default, (list, tuple)):
        kinds = {parameter_type(v) for v in default}
        if kinds and kinds <= {int, float}:
            return list[float] if float in kinds else list[int]
        return list[kinds.pop()] if len(kinds) == 1 and kinds != {Any} else list
    if isinstance(default, dict):
        return dict
    return type(default) if type(default) in (bool, int, float, str) else Any


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _check_value(notebook: str, name: str, value: Any, annotation: Any) -> Any:
    """`value` as `annotation` takes it (`facelib.options.convert`: 1 -> 1.0 for a number, yes ->
    True for true/false); UsageError "NOTEBOOK: NAME expects TYPE, got VALUE" otherwise."""
    if annotation is Any:
        return value
    what = f"{notebook}: {name}"
    raw = value if isinstance(value, str) else None if isinstance(value, (list, tuple, dict)) else _shown(value)
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        expects = f"a list of {_LIST_WORDS.get(item, 'values')}"
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"{what} expects {expects}, got {_shown(value)}")
        try:
            return [convert(v, item, what, None if isinstance(v, (list, dict)) else _shown(v)) for v in value]
        except UsageError:
            raise UsageError(f"{what} expects {expects}, got {_shown(list(value))}") from None
    return convert(value, annotation, what, raw)


def check_parameters(notebook: str, declared: dict[str, Any], values: dict[str, Any], source: str = "-p") -> dict[str, Any]:
    """`values` (name -> value) for notebook `notebook` whose parameters cell declares `declared`
    (name -> default, `declared_parameters`), each checked against the type of its default
    (`parameter_type`) and converted; a name it does not declare is a UsageError listing its
    parameters. `source` says where the values came from (for the message)."""
    out = {}
    for name, value in values.items():
        if name not in declared:
            raise UsageError(f"{notebook}: {source} names an unknown parameter {name!r}; its parameters are "
                             f"{', '.join(declared) or '(none)'}")
        try:
            out[name] = _check_value(notebook, name, value, parameter_type(declared[name]))
        except UsageError as err:
            where = f"-p {name}" if source == "-p" else source
            raise UsageError(f"{err} ({where}; the notebook's default is {declared[name]!r})") from None
    return out


def _run_parameters(paths: list[Path], declared: dict[Path, dict[str, Any]], profile: str,
                    overrides: dict[str, Any]) -> dict[Path, dict[str, Any]]:
    """Per notebook, the profile file's and the `-p` values it declares, checked (`check_parameters`)
    before any kernel starts. A `-p` name no notebook of the run declares is refused (a
    misspelt one would silently do nothing)."""
    from_file = profile_parameters(profile)
    unknown = [k for k in overrides if not any(k in declared[p] for p in paths)]
    if unknown:
        if len(paths) == 1:
            check_parameters(paths[0].stem, declared[paths[0]], {unknown[0]: overrides[unknown[0]]})
        names = sorted({n for p in paths for n in declared[p]} - set(PIPELINE_PARAMETERS))
        raise UsageError(f"-p {unknown[0]}: no notebook of this run ({', '.join(p.stem for p in paths)}) declares "
                         f"a parameter {unknown[0]!r}; their parameters are {', '.join(names)}")
    out = {}
    for p in paths:
        mine = declared[p]
        values = check_parameters(p.stem, mine, {k: v for k, v in from_file.items() if k in mine},
                                  f"profile {profile}, facelib/study/profiles/{profile}.yaml")
        values.update(check_parameters(p.stem, mine, {k: v for k, v in overrides.items() if k in mine}))
        out[p] = values
    return out


def parse_value(text: str) -> Any:
    """A `-p` value, read as every facelib command reads a value (`facelib.options.parse_value`):
    True/False/None, ints, floats (1e-3 too), YAML lists/dicts, else the text (as papermill)."""
    return _typed_value(text)


def _check_run_id(run_id: str) -> str:
    if not run_id or run_id in (".", "..") or not re.fullmatch(r"[A-Za-z0-9._=+-]+", run_id):
        raise ValueError(f"run id {run_id!r} must be a plain folder name (letters, digits, . _ - = +)")
    return run_id


def new_run_id() -> str:
    """Timestamp plus a short random suffix, so two runs started together never collide."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def _make_run_dir(out_root: str | os.PathLike, run_id: str | None) -> Path:
    run_id = _check_run_id(run_id or new_run_id())
    root = Path(out_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    run_dir = root / run_id
    try:
        run_dir.mkdir()
    except FileExistsError:
        raise FileExistsError(
            f"run folder {run_dir} already exists; a run never overwrites one: choose another --run-id "
            "or leave it out for a fresh one"
        ) from None
    return run_dir


def _write_json(path: Path, record: dict[str, Any]) -> None:
    """Replace `path` by `record` atomically: a failed write leaves the previous file and no temp."""
    atomic_write_text(path, json.dumps(record, indent=2, default=str))


def _why(err: OSError) -> str:
    """A write error in words, with the remedy for a full disk."""
    if err.errno == errno.ENOSPC:
        return "the disk is full; free some space"
    return f"{err.strerror or err}; check that the folder is writable"


def _platform() -> dict[str, Any]:
    return {"platform": platform.platform(), "machine": platform.machine(), "python": sys.version.split()[0],
            "cpu_count": os.cpu_count()}


def _write_html(executed: Path) -> Path | None:
    """The HTML rendering beside the executed notebook (None, with a warning, if nbconvert fails)."""
    import nbformat  # here: the notebook stack loads only for the HTML export
    from nbconvert import HTMLExporter

    html = executed.with_suffix(".html")
    try:
        body, _ = HTMLExporter().from_notebook_node(nbformat.read(str(executed), as_version=4))
    except Exception as err:  # a rendering problem must not lose the run
        warnings.warn(f"could not render {executed.name} to HTML: {err}", stacklevel=2)
        return None
    try:
        atomic_write_text(html, body)
    except OSError as err:  # the executed notebook is the record; its rendering is a convenience
        warnings.warn(f"could not write {html}: {_why(err)} (the executed notebook is kept)", stacklevel=2)
        return None
    return html


def _whole_notebook(tmp: Path, output: Path) -> bool:
    """Whether the temp `tmp` holds a whole notebook (not one cut short by a full disk or a kill);
    if so, its papermill record names `output`, where it is going, not the temp."""
    import nbformat  # here: as in _write_html

    try:
        nb = nbformat.read(str(tmp), as_version=4)
    except Exception:  # noqa: BLE001 - empty, truncated or not JSON: not a notebook to keep
        return False
    record = nb.metadata.get("papermill")
    if isinstance(record, dict) and record.get("output_path") == str(tmp):
        record["output_path"] = str(output)
        nbformat.write(nb, str(tmp))
    return True


def _execute_into(notebook: Path, output: Path, parameters: dict[str, Any], kernel_name: str,
                  log_output: bool) -> None:
    """`_execute` into a temp beside `output`, which replaces `output` only as a whole notebook.

    A notebook whose own cell failed (or that was interrupted) is complete, and kept with its
    traceback; one cut short (disk full mid-write) is removed, so `output` is never truncated.
    """
    kept: BaseException | None = None
    with atomic_path(output, suffix=".tmp.ipynb") as tmp:
        try:
            _execute(notebook, tmp, parameters, kernel_name, log_output)
        except BaseException as err:  # noqa: BLE001 - re-raised below, after keeping a whole notebook
            if not _whole_notebook(tmp, output):
                raise
            kept = err
        else:
            _whole_notebook(tmp, output)
    if kept is not None:
        raise kept


def _error_text(err: BaseException) -> str:
    ename, evalue = getattr(err, "ename", None), getattr(err, "evalue", None)
    if ename is not None:
        cell = getattr(err, "exec_count", None)
        return f"{ename}: {evalue}" + (f" (cell [{cell}])" if cell is not None else "")
    return f"{type(err).__name__}: {err}"


_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@contextlib.contextmanager
def _thread_caps(threads: int):
    """Kernels started inside inherit these torch/BLAS thread caps; the environment is restored after."""
    saved = {var: os.environ.get(var) for var in _THREAD_VARS}
    os.environ.update({var: str(threads) for var in _THREAD_VARS})
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def _execute(notebook: Path, output: Path, parameters: dict[str, Any], kernel_name: str,
             log_output: bool = False) -> None:
    """papermill with the kernel in the notebook's folder (relative paths as in JupyterLab)."""
    import papermill  # here: as in declared_parameters

    papermill.execute_notebook(str(notebook), str(output), parameters=parameters, kernel_name=kernel_name,
                               cwd=str(notebook.parent), progress_bar=False, log_output=log_output,
                               extra_arguments=kernel_arguments(kernel_name))


#: Kernel config file that silences ipykernel's plain-TCP warning (see its docstring).
KERNEL_CONFIG = Path(__file__).resolve().parent / "_kernel_config.py"


def kernel_arguments(kernel_name: str) -> list[str]:
    """Extra command-line arguments for kernel `kernel_name`: the quiet config for IPython
    kernels, nothing for other kernels (which would not understand it)."""
    try:
        from jupyter_client.kernelspec import get_kernel_spec  # here: only when a kernel is named

        argv = get_kernel_spec(kernel_name).argv
    except Exception:  # noqa: BLE001 - an unknown kernel fails later, in papermill, with its own message
        return []
    if any("ipykernel" in str(a) for a in argv):
        return [f"--IPKernelApp.extra_config_file={KERNEL_CONFIG}"]
    return []


def _run_one(notebook: Path, output: Path, parameters: dict[str, Any], kernel_name: str,
             log_output: bool = False, run_dir: Path | None = None) -> dict[str, Any]:
    """Execute one notebook (and render it); a record of what happened, never raising.

    Output paths are recorded relative to `run_dir`, so a copied report folder still reads.
    """
    rel = (lambda p: os.path.relpath(p, run_dir)) if run_dir is not None else str
    entry: dict[str, Any] = {"notebook": notebook.stem, "input": str(notebook), "output": rel(output),
                             "parameters": parameters, "started": _now()}
    t0 = time.perf_counter()
    try:
        _execute_into(notebook, output, parameters, kernel_name, log_output)
        entry["status"] = "completed"
    except BaseException as err:  # noqa: BLE001 - recorded, then re-raised by the caller
        entry["status"] = "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"
        entry["error"] = "interrupted (Ctrl-C)" if isinstance(err, KeyboardInterrupt) else _error_text(err)
        if isinstance(err, OSError):
            entry["error"] += f" (writing {rel(output)}: {_why(err)}; nothing partial was kept)"
        entry["_exception"] = err
    entry["seconds"] = round(time.perf_counter() - t0, 3)
    entry["finished"] = _now()
    html = _write_html(output) if output.exists() else None
    entry["html"] = None if html is None else rel(html)
    return entry


def _sweep_worker(args: tuple) -> dict[str, Any]:
    entry = _run_one(*args)
    err = entry.pop("_exception", None)
    if err is not None and "error" not in entry:
        entry["error"] = _error_text(err)
    return entry


def _value_tag(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return re.sub(r"[^A-Za-z0-9.=+-]+", "_", text).strip("_") or "value"


class _Run:
    """The run folder and its run.json, kept up to date after every step."""

    def __init__(self, run_dir: Path, record: dict[str, Any]):
        self.dir = run_dir
        self.record = record
        self.t0 = time.perf_counter()
        self.ended = False  # whether run.json holds the run's end
        self.save()

    def save(self) -> None:
        """Write run.json; RunRecordError (the old run.json kept, no temp left) when it cannot be."""
        path = self.dir / "run.json"
        try:
            _write_json(path, self.record)
        except OSError as err:
            shown = "no record yet" if not path.exists() else "its previous state"
            raise RunRecordError(f"could not write the run record {path}: {_why(err)}. It still shows {shown}; "
                                 f"the outputs made so far are kept in {self.dir}") from err

    def finish(self, status: str, error: str | None = None) -> None:
        self.record["status"] = status
        self.record["finished"] = _now()
        self.record["wall_s"] = round(time.perf_counter() - self.t0, 3)
        if error:
            self.record["error"] = error
        self.save()
        self.ended = True

    def end(self, status: str, error: str | None = None) -> str:
        """`finish`, where the disk still takes it: "" when recorded, else a sentence saying why not."""
        try:
            self.finish(status, error)
        except RunRecordError as err:
            return f" ({err})"
        return ""


def _end_after(run: _Run, err: BaseException) -> None:
    """After `err` stopped a run: mark what did not run, and record the end if not done yet."""
    for rest in run.record.get("notebooks", []):
        if rest.get("status") == "pending":
            rest["status"] = "not run"
    if not run.ended:
        run.end("interrupted" if isinstance(err, KeyboardInterrupt) else "failed", _error_text(err))


def _stopped(run: _Run, err: BaseException) -> PipelineError | None:
    """A write error of the run itself (not a notebook's) as a PipelineError naming what is kept."""
    if isinstance(err, OSError):
        return PipelineError(f"the run stopped: {_error_text(err)} ({_why(err)}); what was made so far is kept in "
                             f"{run.dir} (run.json status '{run.record.get('status')}')")
    return None


def _new_run(out_root, run_id, kind: str, profile: str, parameters: dict[str, Any], kernel_name: str) -> _Run:
    from facelib.utils import git_commit, library_versions  # here: sweep workers need not import torch

    check_writable(out_root, "run --out")  # root may write into a read-only folder: refuse it before any work
    run_dir = _make_run_dir(out_root, run_id)
    return _Run(run_dir, {
        "run_id": run_dir.name, "kind": kind, "status": "running", "profile": profile,
        "parameters": parameters, "started": _now(), "finished": None, "notebooks": [],
        "versions": library_versions(), "git_commit": git_commit(Path(__file__).resolve().parent),
        "platform": _platform(), "kernel_name": kernel_name, "command": " ".join(sys.argv),
        "pid": os.getpid(), "host": platform.node(),
    })


def read_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """run.json of a run, with a "running" run whose process is gone reported as "interrupted".

    A run killed outright (SIGKILL, a crash of the machine) cannot write its own end; its
    record keeps the pid and host of the process that ran it, and if that process no longer
    exists on this host the run is not running any more.
    """
    path = Path(run_dir) / "run.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; give a run folder made by `python -m facelib run`")
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} cannot be read as JSON ({err}); the run record is damaged") from err
    pid, host = record.get("pid"), record.get("host")
    if record.get("status") == "running" and isinstance(pid, int) and host == platform.node() \
            and not pid_alive(pid):
        record["status"] = "interrupted"
        record["error"] = (f"the process that ran it (pid {pid}) ended without recording an end "
                           "(killed, or the machine stopped); outputs made so far are kept")
    return record


def _check_profile(profile: str) -> None:
    if profile not in profile_names():
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(profile_names())}")


def _sweep(run: _Run, notebook: Path, param_name: str, values: Sequence[Any], base: dict[str, Any],
           kernel_name: str, max_workers: int, declared: dict[str, Any], runner: Any = None) -> dict[str, Any]:
    """Run `notebook` once per value in parallel processes, each into sweeps/<stem>/<param>=<value>/."""
    if param_name not in declared:
        raise ValueError(f"{notebook.name} does not declare a parameter {param_name!r} in its parameters cell; "
                         f"it declares: {', '.join(declared) or '(none)'}")
    values = list(values)
    if not values:
        raise ValueError("a sweep needs at least one value")
    tags = [_value_tag(v) for v in values]
    if len(set(tags)) != len(tags):
        raise ValueError(f"sweep values {values!r} are not distinct")
    workers = max(1, min(int(max_workers), len(values)))
    threads = max(1, (os.cpu_count() or 1) // workers)
    jobs = []
    for value, tag in zip(values, tags):
        folder = run.dir / "sweeps" / notebook.stem / f"{param_name}={tag}"
        folder.mkdir(parents=True)
        params = {k: v for k, v in base.items() if k in declared}
        params[param_name] = value
        if "run_dir" in declared:
            params["run_dir"] = str(folder)
        jobs.append((notebook, folder / f"{notebook.stem}__{param_name}={tag}.ipynb", params, kernel_name, False, run.dir))
    record = {"notebook": notebook.stem, "parameter": param_name, "values": values, "max_workers": workers,
              "threads_per_kernel": threads, "started": _now(), "runs": []}
    run.record.setdefault("sweeps", []).append(record)
    run.save()
    t0 = time.perf_counter()
    # Each papermill call drives its own kernel, a separate process; threads here only wait on
    # them. The kernels inherit the thread caps below so `workers` of them share the cores.
    done: dict[int, dict[str, Any]] = {}
    with _thread_caps(threads):
        for i, entry, error in (runner or LocalExecutor(workers, processes=False)).run(_sweep_worker, jobs):
            if error is not None:
                raise error
            done[i] = {**entry, "value": values[i]}
            record["runs"] = [done[k] for k in sorted(done)]
            run.save()
    record["seconds"] = round(time.perf_counter() - t0, 3)
    record["finished"] = _now()
    record["status"] = "failed" if any(e["status"] != "completed" for e in record["runs"]) else "completed"
    run.save()
    return record


def _fail_message(what: str, entry: dict[str, Any], run_dir: Path) -> str:
    executed = run_dir / entry["output"]
    where = (f"The executed notebook (with the traceback) is {executed}" if executed.exists()
             else "No executed notebook was kept (it could not be written whole)")
    return (f"{what} {entry['notebook']} failed: {entry['error']}. {where}; everything made so far is kept in "
            f"{run_dir} (run.json status 'failed')")


# -- public API ----------------------------------------------------------------------------
def _plan(profile: str, dataset: str | None, parameters: dict[str, Any] | None,
          notebooks: Sequence[str | os.PathLike] | None, notebooks_dir: str | os.PathLike | None):
    """(paths, declared, per-notebook parameters without run_dir, unused names), every check done."""
    _check_profile(profile)
    overrides = dict(parameters or {})
    clash = [k for k in PIPELINE_PARAMETERS if k in overrides]
    if clash:
        raise ValueError(f"pass {', '.join(clash)} as the profile/dataset arguments (or let the pipeline set run_dir), "
                         "not among the -p parameters")
    if dataset is not None:
        from facelib.data import dataset_name  # here: facelib.data imports torch; the run command starts light

        dataset_name(dataset)  # unknown names fail before any notebook runs
    paths = find_notebooks(notebooks, notebooks_dir)
    declared = {p: declared_parameters(p) for p in paths}
    checked = _run_parameters(paths, declared, profile, overrides)
    unused = []
    if dataset is not None and not any("dataset" in d for d in declared.values()):
        unused.append("dataset")
        warnings.warn(f"--dataset: none of the notebooks ({', '.join(p.stem for p in paths)}) declares a dataset "
                      "parameter, so it has no effect", UserWarning, stacklevel=3)
    own = {"profile": profile, **({"dataset": dataset} if dataset is not None else {})}
    params = {p: {k: v for k, v in {**own, **checked[p]}.items() if k in declared[p]} for p in paths}
    return paths, declared, params, unused


def plan_run(profile: str = "quick", dataset: str | None = None, parameters: dict[str, Any] | None = None,
             notebooks: Sequence[str | os.PathLike] | None = None,
             notebooks_dir: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """What `run_pipeline` with these arguments would give each notebook (its stem -> the
    parameters papermill injects, but `run_dir`), checked as the run checks them; nothing runs
    and nothing is written (`python -m facelib run --dry-run`)."""
    _, _, params, _ = _plan(profile, dataset, parameters, notebooks, notebooks_dir)
    return {p.stem: values for p, values in params.items()}


def run_pipeline(profile: str = "quick", dataset: str | None = None, parameters: dict[str, Any] | None = None,
                 notebooks: Sequence[str | os.PathLike] | None = None, out_root: str | os.PathLike = "reports",
                 run_id: str | None = None, kernel_name: str = "python3", parallel_sweep: bool | str = False,
                 notebooks_dir: str | os.PathLike | None = None, max_workers: int = 2,
                 log_output: bool = False, verbose: bool = True) -> Path:
    """Execute notebooks in order into a new `out_root/<run-id>/`; returns that folder.

    Each notebook receives, of what its parameters cell declares, `profile`, `run_dir`, `dataset`
    (if given), the profile's parameters file (`profile_parameters`; none for "quick") and
    `parameters`, the overrides (papermill `-p`), which win; every value is checked against the
    type of the notebook's default before any kernel starts, and a `parameters` name no notebook
    declares is refused (`UsageError`).
    `parallel_sweep=True` (or the name of a list parameter, default "betas"): a notebook
    declaring that parameter is first run once per value in parallel processes (`max_workers`),
    their checkpoints are gathered into the run's `checkpoints/`, then it runs once over all
    values, reusing them. Raises `PipelineError` when a notebook fails (outputs are kept).
    """
    paths, declared, per_notebook, unused = _plan(profile, dataset, parameters, notebooks, notebooks_dir)
    overrides = dict(parameters or {})
    sweep_param = "betas" if parallel_sweep is True else (parallel_sweep or None)

    given = {"profile": profile, **({"dataset": dataset} if dataset is not None else {}), **overrides}
    run = _new_run(out_root, run_id, "pipeline", profile, given, kernel_name)
    run.record["unused_parameters"] = unused
    run.record["profile_parameters"] = profile_parameters(profile)  # what the profile changed from the defaults
    run.record["notebooks"] = [{"notebook": p.stem, "input": str(p), "status": "pending"} for p in paths]
    run.save()
    run_dir = {"run_dir": str(run.dir)}
    if verbose:
        print(f"run {run.dir.name}: {len(paths)} notebook(s), profile {profile}, into {run.dir}", flush=True)
    try:
        for i, nb in enumerate(paths):
            _pipeline_step(run, i, paths, declared[nb], {**per_notebook[nb], **run_dir}, sweep_param, kernel_name,
                           max_workers, log_output, verbose)
        run.finish("completed")
    except BaseException as err:
        _end_after(run, err)
        if isinstance(err, KeyboardInterrupt):
            err.run_dir = run.dir  # for the command line's one-line message
        stopped = _stopped(run, err)
        if stopped is not None:
            raise stopped from err
        raise
    if verbose:
        print(f"done in {run.record['wall_s']:.1f} s: {run.dir}", flush=True)
    return run.dir


def _pipeline_step(run: _Run, i: int, paths: list[Path], declared: dict[str, Any], base: dict[str, Any],
                   sweep_param: str | None, kernel_name: str, max_workers: int, log_output: bool,
                   verbose: bool) -> None:
    """Notebook `i` of the run (after its parallel sweep, if any) with `base`, its checked
    parameters; raises PipelineError on failure."""
    nb = paths[i]
    if sweep_param and sweep_param in declared:
        values = base.get(sweep_param, declared[sweep_param])
        if isinstance(values, (list, tuple)) and len(values) > 1:
            if verbose:
                print(f"[{i + 1}/{len(paths)}] {nb.stem}: sweep over {sweep_param} = {values} "
                      f"in {min(max_workers, len(values))} kernels", flush=True)
            rec = _sweep(run, nb, sweep_param, [[v] for v in values], base, kernel_name, max_workers, declared)
            bad = next((e for e in rec["runs"] if e["status"] != "completed"), None)
            if bad is not None:
                run.record["notebooks"][i].update(status="failed", error=bad["error"])
                msg = _fail_message("sweep run of", bad, run.dir)
                _mark_rest(run, i)
                raise PipelineError(msg + run.end("failed", msg))
            _gather_checkpoints(run.dir, rec)
    params = {k: v for k, v in base.items() if k in declared}
    entry = _run_one(nb, run.dir / nb.name, params, kernel_name, log_output, run.dir)
    err = entry.pop("_exception", None)
    used = run.dir / "models" / f"{nb.stem}.json"
    if used.exists():  # Study.record_model: which models the notebook trained, reused or took from the zoo
        entry["models"] = json.loads(used.read_text())
    run.record["notebooks"][i] = entry
    run.save()
    if verbose:
        print(f"[{i + 1}/{len(paths)}] {nb.stem}: {entry['status']} in {entry['seconds']:.1f} s", flush=True)
    if err is not None:
        _mark_rest(run, i)
        if isinstance(err, KeyboardInterrupt):
            run.end("interrupted", f"interrupted in {nb.stem}")
            raise err
        msg = _fail_message("notebook", entry, run.dir)
        raise PipelineError(msg + run.end("failed", msg)) from err


def _mark_rest(run: _Run, i: int) -> None:
    for rest in run.record["notebooks"][i + 1:]:
        rest["status"] = "not run"


def _gather_checkpoints(run_dir: Path, sweep: dict[str, Any]) -> None:
    """Copy the sweep runs' checkpoints into the run's checkpoints/ (never replacing one)."""
    target = run_dir / "checkpoints"
    for entry in sweep["runs"]:
        source = (run_dir / entry["output"]).parent / "checkpoints"
        if not source.is_dir():
            continue
        for child in sorted(source.iterdir()):
            if child.is_dir() and not (target / child.name).exists():
                shutil.copytree(child, target / child.name)


def run_sweep(notebook: str | os.PathLike, param_name: str, values: Iterable[Any], max_workers: int = 2,
              profile: str = "quick", parameters: dict[str, Any] | None = None,
              out_root: str | os.PathLike = "reports", run_id: str | None = None, kernel_name: str = "python3",
              notebooks_dir: str | os.PathLike | None = None, executor: Any = None) -> Path:
    """Run one notebook once per value of `param_name`, in parallel processes, into a new run folder.

    `executor`: where the runs go, as for `python -m facelib sweep` (`facelib.study.sweep.executor`,
    e.g. a `RayExecutor`); default `max_workers` local threads, each driving its own kernel.

    Outputs: `<run>/sweeps/<notebook>/<param>=<value>/` holding the executed notebook, its
    HTML and whatever the notebook wrote (its `run_dir`); run.json lists every run with its
    value, status and time. Torch/BLAS threads are split between the workers. Raises
    `PipelineError` if any value failed (after all have finished).
    """
    _check_profile(profile)
    nb = find_notebooks([notebook], notebooks_dir)[0]
    declared = declared_parameters(nb)
    overrides = dict(parameters or {})
    checked = _run_parameters([nb], {nb: declared}, profile, overrides)[nb]
    if param_name in declared:
        values = [check_parameters(nb.stem, declared, {param_name: v}, "a sweep value")[param_name] for v in values]
    values = list(values)
    given = {"profile": profile, **checked}
    run = _new_run(out_root, run_id, "sweep", profile, given, kernel_name)
    try:
        rec = _sweep(run, nb, param_name, values, given, kernel_name, max_workers, declared, executor)
        bad = [e for e in rec["runs"] if e["status"] != "completed"]
        if bad:
            msg = _fail_message("sweep run of", bad[0], run.dir) + f" ({len(bad)} of {len(values)} values failed)"
            raise PipelineError(msg + run.end("failed", msg))
        run.finish("completed")
    except BaseException as err:
        _end_after(run, err)
        stopped = _stopped(run, err)
        if stopped is not None:
            raise stopped from err
        raise
    return run.dir


# -- command line -----------------------------------------------------------------------------
def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Options of `python -m facelib run`."""
    parser.add_argument("--profile", default=DEFAULT_PROFILE, choices=profile_names(),
                        help="quick (the notebooks' own defaults: CI, minutes on 2 CPU cores) or full (the study: "
                             "the parameters file facelib/study/profiles/full.yaml)")
    parser.add_argument("--dataset", default=None, help="data set for every notebook that takes one (e.g. olivetti)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="override a notebook parameter, papermill style: -p epochs 5 -p betas '[1, 4]' "
                             "(checked against the type of the notebook's default before any kernel starts)")
    parser.add_argument("--notebooks", nargs="+", default=None, metavar="NAME",
                        help="run only these notebooks, in this order (e.g. 00_data 02_beta_vae); default: all")
    parser.add_argument("--notebooks-dir", default=None,
                        help="where the notebooks are (default: those installed with facelib; notebooks/ of the "
                             "checkout when run from one)")
    parser.add_argument("--out", default="reports",
                        help="folder that receives <run-id>/ (default reports, under the current folder)")
    parser.add_argument("--run-id", default=None, help="name of the run folder (default: timestamp + random suffix)")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    parser.add_argument("--parallel-sweep", nargs="?", const="betas", default=None, metavar="PARAM",
                        help="train a sweep notebook's values (default parameter: betas) in parallel processes")
    parser.add_argument("--workers", type=int, default=2, help="processes for --parallel-sweep (default 2)")
    parser.add_argument("--log-output", action="store_true", help="stream the notebooks' output to the terminal")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the parameters and print, as JSON, what each notebook would be given; run nothing")


class _OrphanedKernelDeath(logging.Filter):
    """Drops the two log records of a cell whose kernel died (nbclient's DeadKernelError): papermill's
    "Kernel died while waiting for execute reply." and asyncio's "Task exception was never
    retrieved" for the cell's task. After Ctrl-C papermill shuts the kernel down under a pending
    reply, and the task is only collected later; either way the run says once, itself, why it
    stopped (the interrupted line, or the failed notebook's error)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if type(exc).__name__ == "DeadKernelError" and type(exc).__module__.startswith("nbclient"):
            return False
        return not str(record.msg).startswith("Kernel died while waiting for execute reply")


def quiet_orphaned_kernel_deaths() -> None:
    """Install `_OrphanedKernelDeath` on asyncio's and papermill's loggers (once per process; it
    must outlive the run, because the orphaned task may be collected as the interpreter exits)."""
    for name in ("asyncio", "papermill"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _OrphanedKernelDeath) for f in log.filters):
            log.addFilter(_OrphanedKernelDeath())


def main_from_args(args: argparse.Namespace) -> int:
    """Run the pipeline (0); errors rise to `cli.main` (a notebook's failure is a `PipelineError`,
    exit 1; a bad option exit 2), and Ctrl-C rises with where the run's outputs are."""
    overrides: dict[str, Any] = {}
    for name, value in args.parameter:
        if name in overrides:
            raise UsageError(f"-p {name} given twice; give each parameter once")
        overrides[name] = parse_value(value)
    show = warnings.showwarning
    warnings.showwarning = lambda message, *_a, **_k: print(f"warning: {message}", file=sys.stderr)
    if args.dry_run:
        try:
            plan = plan_run(profile=args.profile, dataset=args.dataset, parameters=overrides,
                            notebooks=args.notebooks, notebooks_dir=args.notebooks_dir)
        finally:
            warnings.showwarning = show
        print(json.dumps(plan, indent=2, default=str))
        return 0
    quiet_orphaned_kernel_deaths()
    try:
        run_dir = run_pipeline(profile=args.profile, dataset=args.dataset, parameters=overrides,
                               notebooks=args.notebooks, out_root=args.out, run_id=args.run_id,
                               kernel_name=args.kernel, parallel_sweep=args.parallel_sweep or False,
                               notebooks_dir=args.notebooks_dir, max_workers=args.workers,
                               log_output=args.log_output)
    except KeyboardInterrupt as err:
        where = getattr(err, "run_dir", None)
        kept = (f"what was made so far is kept in {where} (run.json status 'interrupted')" if where
                else "no run folder was made yet")
        raise KeyboardInterrupt(kept) from err
    finally:
        warnings.showwarning = show
    print(run_dir)
    return 0
