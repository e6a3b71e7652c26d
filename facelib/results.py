"""Measured figures as data: each benchmark writes its table to `benchmarks/results/NAME.csv`.

Every row carries where and how it was measured (git commit, UTC date, CPU, cores, torch
version, device, the command line), so a figure quoted in the README can be traced to the run
that made it, and `tests/test_results.py` checks that the README quotes these files. `markdown`
renders a results table the way the README shows it; `render_readme` regenerates a README's
results blocks (`python -m facelib.zoo.readme README.md`, which adds the zoo manifest as a source).

Where: writers write to `results_dir()`, `$FACELIB_RESULTS` or else `./benchmarks/results` under
the current folder (a benchmark runs from the checkout's root; elsewhere, with neither, a write
says so); readers read from there, and else from the measured results that come with facelib
(`shipped_results_dir()`: the checkout's `benchmarks/results`, which the wheel carries as
`facelib/measured`), so an installed facelib's notebooks quote the same figures as the README.
Nothing reads the checkout of an installed facelib.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from facelib.files import package_folder
from facelib.utils import git_commit, machine_info

__all__ = ["PROVENANCE", "results_dir", "shipped_results_dir", "ENV", "write", "append", "stamped", "save", "read", "markdown", "render_readme"]

#: The provenance columns `write` adds to every row.
PROVENANCE = ("commit", "date", "cpu", "cores", "torch", "device", "command")


#: The environment variable naming the results folder (default ./benchmarks/results).
ENV = "FACELIB_RESULTS"


def results_dir() -> Path:
    """Where benchmark tables are written (and read first): `$FACELIB_RESULTS`, else
    `benchmarks/results` under the current folder (the checkout's root, where benchmarks run)."""
    env = os.environ.get(ENV)
    return Path(env).expanduser() if env else Path.cwd() / "benchmarks" / "results"


def shipped_results_dir() -> Path:
    """The measured results that come with facelib: `facelib/measured` of an installed facelib (the
    wheel's copy of `benchmarks/results`), the checkout's `benchmarks/results` when run from one."""
    return package_folder("measured", "benchmarks/results")


def _write_folder(folder: str | os.PathLike | None) -> Path:
    """The folder a table is written to: `folder` (made if missing), else `results_dir()`, which
    must exist when it is the default, so a benchmark run elsewhere fails saying where it looked."""
    if folder is not None:
        return Path(folder)
    out = results_dir()
    if not os.environ.get(ENV) and not out.is_dir():
        raise FileNotFoundError(f"no folder benchmarks/results under the current folder {Path.cwd()}: run the "
                                f"benchmark from the checkout's root, or set ${ENV}=DIR (or pass folder=) to write "
                                "the results elsewhere")
    return out


def _read_path(name: str, folder: str | os.PathLike | None) -> Path:
    """`folder/name.csv`, else the first of results_dir() and shipped_results_dir() that has it;
    FileNotFoundError naming where it looked and which benchmark makes it."""
    places = [Path(folder)] if folder is not None else [results_dir(), shipped_results_dir()]
    for place in places:
        if (place / f"{name}.csv").exists():
            return place / f"{name}.csv"
    raise FileNotFoundError(f"no results file {name}.csv in {' or '.join(str(p) for p in places)}; run the "
                            f"benchmark that writes it (benchmarks/*.py; its docstring names the command)")


def write(name: str, table: pd.DataFrame, command: Sequence[str] | str | None = None,
          folder: str | os.PathLike | None = None, device: Any = None) -> Path:
    """Write `table` (one row per measured thing) to `folder/name.csv` with provenance columns.

    `command` defaults to this process's command line. The file is replaced: a results file
    is the output of one run of its benchmark (`append` adds rows to it instead).
    """
    return save(stamped(name, table, command, device), name, folder)


def stamped(name: str, table: pd.DataFrame, command: Sequence[str] | str | None = None,
            device: Any = None) -> pd.DataFrame:
    """`table` with the provenance columns `write` adds (the rows as they would be written)."""
    if not isinstance(table, pd.DataFrame) or table.empty:
        raise ValueError(f"results for {name!r} must be a non-empty DataFrame, got {type(table).__name__}")
    clash = [c for c in PROVENANCE if c in table.columns]
    if clash:
        raise ValueError(f"results table for {name!r} already has provenance column(s) {clash}; rename them")
    if command is None:
        script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
        first = "python" if script is None else (
            f"python -m {script.parent.name}" if script.name == "__main__.py" else shlex.quote(script.name))
        command = " ".join([first, shlex.join(sys.argv[1:])]).strip()
    if not isinstance(command, str):
        command = shlex.join(str(c) for c in command)
    machine = machine_info(device)
    named_index = any(n is not None for n in table.index.names)
    out = table.reset_index(drop=not named_index)
    stamp = {"commit": git_commit(Path(__file__).parent) or "unknown",
             "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
             "cpu": machine["cpu"], "cores": machine["cores"], "torch": machine["torch"],
             "device": machine["device"], "command": command}
    for key, value in stamp.items():
        out[key] = value
    return out


def save(out: pd.DataFrame, name: str, folder: str | os.PathLike | None = None) -> Path:
    """Write rows that already carry their provenance (`stamped`, or a results file read back
    with a derived column recomputed) to `folder/name.csv`, atomically."""
    missing = [c for c in PROVENANCE if c not in out.columns]
    if missing:
        raise ValueError(f"rows for {name!r} lack provenance column(s) {missing}; use write or stamped")
    path = _write_folder(folder) / f"{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    out.to_csv(tmp, index=False)
    tmp.replace(path)  # a crash mid-write leaves the old file, not half of a new one
    return path


def append(name: str, table: pd.DataFrame, key: str, command: Sequence[str] | str | None = None,
           folder: str | os.PathLike | None = None, device: Any = None) -> Path:
    """Add the rows of `table` to `folder/name.csv`, stamped as `write` stamps them, keeping the
    rows already there with their own provenance (the run that measured each row). A row whose
    `key` column equals a new row's is replaced by it (re-measured); no file yet: as `write`."""
    if not isinstance(table, pd.DataFrame) or key not in table.columns:
        raise ValueError(f"append needs the key column {key!r} in the new rows of {name!r}")
    path = _write_folder(folder) / f"{name}.csv"
    if not path.exists():
        return write(name, table, command=command, folder=folder, device=device)
    old = pd.read_csv(path)
    if key not in old.columns or not set(PROVENANCE) <= set(old.columns):
        raise ValueError(f"{path} has no {key!r} column or no provenance columns; it was not written by "
                         "facelib.results.write: move it away or write the table anew")
    new = stamped(name, table, command, device)
    return save(pd.concat([old[~old[key].isin(new[key])], new], ignore_index=True), name, folder)


def read(name: str, folder: str | os.PathLike | None = None) -> pd.DataFrame:
    """A results file as written by `write`, from `folder`, else `results_dir()`, else the results
    shipped with facelib (`shipped_results_dir`); a missing one says where it looked and which
    benchmark makes it."""
    return pd.read_csv(_read_path(name, folder))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _number(value: float, floatfmt: str) -> str:
    """`floatfmt`, except that a number below 0.1 keeps three significant digits (an MSE of 0.00883
    is not "0.009")."""
    return format(value, ".3g") if 0 < abs(value) < 0.1 else format(value, floatfmt)


def markdown(table: pd.DataFrame, columns: Sequence[str], floatfmt: str = ".3f") -> str:
    """`columns` of a results table as a GitHub markdown table (numbers with `floatfmt`, three
    significant digits below 0.1; a value a
    row does not have, such as an LFW accuracy of a synthetic-faces model, is left blank)."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"columns {missing} not in the results table (it has {list(table.columns)})")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in table[list(columns)].itertuples(index=False):  # each column's own type (iterrows makes ints floats)
        cells = ["" if _missing(v) else _number(v, floatfmt) if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: A README block quoting a results file: ``<!-- results:NAME columns=a,b,c -->`` ... ``<!-- /results -->``;
#: NAME is a results file, or one of the `sources` `render_readme` is given (e.g. "zoo", the zoo manifest).
_BLOCK = re.compile(r"(<!-- results:(?P<name>[\w.-]+) columns=(?P<columns>[^ ]+)"
                    r"(?: where=(?P<where>\w+)(?:=(?P<equals>[\w.-]+))?)? -->\n)"
                    r"(?P<body>.*?)(?P<end><!-- /results -->)", re.S)


def render_readme(text: str, folder: str | os.PathLike | None = None,
                  sources: Mapping[str, Callable[[], pd.DataFrame]] | None = None) -> str:
    """`text` with every results block regenerated from its file (what the README must say);
    `sources` names tables that are not results files (name -> function returning the table)."""
    sources = dict(sources or {})

    def fill(m: re.Match) -> str:
        source = sources[m["name"]]() if m["name"] in sources else read(m["name"], folder)
        if m["where"]:  # only the rows whose boolean column `where` is true (e.g. the chosen settings),
            if m["where"] not in source.columns:  # or, with `where=column=value`, whose column reads value
                raise ValueError(f"results block {m['name']!r}: no column {m['where']!r} to select rows with")
            column = source[m["where"]]
            keep = column.astype(str) == m["equals"] if m["equals"] else column.fillna(False).astype(bool)
            source = source[keep]  # an empty cell is false
        table = markdown(source, m["columns"].split(","))
        return f"{m.group(1)}{table}\n{m['end']}"

    return _BLOCK.sub(fill, text)
