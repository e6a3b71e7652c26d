"""`python -m facelib <command>`: one subcommand per concern.

Each command lives in the module that owns it and exposes `configure_parser(parser)` and
`main_from_args(args) -> int`. A command raises; `main` is the one error boundary of every
command: whatever a command raises reaches the user as one line on stderr,
``facelib <command>: error: <what failed and what to do>``, and the exit status says which kind
of failure it was (`exit_status`):

* 2 - a bad argument or value: argparse's errors, `UsageError` (which a command raises for a
  bad option), any ValueError, TypeError or facelib's `UnknownNameError` / a KeyError carrying a
  sentence (unless it is damage found at run time, below);
* 1 - a failure at run time: OSError (a missing or unwritable file, a run folder that holds
  another run, ...), RuntimeError (a diverged training, a failed notebook, a folder in use),
  ImportError (a missing extra), damaged data or checkpoints; and any other exception, which is
  a defect of facelib and is reported as one, with its type;
* 130 - Ctrl-C: one line, ``facelib <command>: interrupted[; <what was kept>]`` (a command
  re-raises KeyboardInterrupt with what to know about the state it leaves as its message).

``--debug`` (before or after the command) prints the traceback before the line, for every
command and every kind of failure; without it a traceback is never the interface.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from facelib.data._common import CorruptDataError
from facelib.data.folder import UnreadableImageError
from facelib.options import UsageError
from facelib.registry import UnknownNameError
from facelib.train.checkpoint import CheckpointError

__all__ = ["main", "build_parser", "exit_status", "error_line", "UsageError", "COMMANDS"]

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("facelib.experiment.cli", "train a model on a data set and write a checkpoint"),
    "run": ("facelib.study.pipeline", "execute the numbered notebooks with papermill into reports/<run-id>/"),
    "sweep": ("facelib.study.sweep", "train a grid of experiments (models x betas x seeds x any spec field) as "
                                     "tasks (Ray or local) into one CSV"),
    "zoo": ("facelib.zoo.cli", "the shipped trained models: list, build one from its recipe, check its metrics"),
    "lfw": ("facelib.verify.lfw_cli", "LFW verification: choose settings on View 1, run them once on View 2"),
    "data": ("facelib.data.cli", "the real data sets: list what is under the data root, fetch one, check its files"),
}

#: Failures at run time (exit 1), even where they are ValueErrors: damage found in data or a
#: checkpoint is not a bad argument.
RUNTIME_ERRORS = (OSError, RuntimeError, ImportError, MemoryError, CorruptDataError, UnreadableImageError,
                  CheckpointError)
#: Bad arguments or values (exit 2).
VALUE_ERRORS = (UsageError, UnknownNameError, ValueError, TypeError)
#: Exceptions whose message is written for the user (what failed, what to do); any other type
#: is a defect of facelib and is reported as one, with its type.
USER_ERRORS = RUNTIME_ERRORS + VALUE_ERRORS


class _Parser(argparse.ArgumentParser):
    """argparse's errors raised as `UsageError` (for `main`'s one line) instead of printed with
    the usage and exited; `prog` ("facelib train") names the command."""

    def error(self, message: str):  # type: ignore[override]
        exc = UsageError(f"{message} (`python -m {self.prog} --help` lists the "
                         "options)")
        exc.prog = self.prog
        raise exc


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="facelib", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show the full traceback when a command fails")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback when the command fails")
        importlib.import_module(module).configure_parser(p)
        p.set_defaults(_module=module)
    return parser


def _sentence(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and not isinstance(exc, UnknownNameError) and len(exc.args) == 1:
        return str(exc.args[0])  # KeyError's str() quotes its message
    return " ".join(str(exc).split()) or type(exc).__name__


def _for_user(exc: BaseException) -> bool:
    # facelib's KeyErrors carry a sentence ("no zoo recipe ...; known: ..."); a bare key is a defect
    return isinstance(exc, USER_ERRORS) or (isinstance(exc, KeyError) and " " in _sentence(exc))


def exit_status(exc: BaseException) -> int:
    """2 for a bad argument or value, 1 for a failure at run time or a defect, 130 for Ctrl-C."""
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, UsageError):
        return 2
    if isinstance(exc, RUNTIME_ERRORS):
        return 1
    if isinstance(exc, VALUE_ERRORS) or (isinstance(exc, KeyError) and _for_user(exc)):
        return 2
    return 1


def error_line(command: str, exc: BaseException) -> str:
    """The one line a failed command prints: the error's own message when it is one written for
    the user, else its type and text with where to look further."""
    prefix = f"facelib {command}" if command else "facelib"
    text = _sentence(exc)
    if isinstance(exc, KeyboardInterrupt):
        return f"{prefix}: interrupted" + (f"; {text}" if exc.args and str(exc.args[0]) else "")
    if _for_user(exc):
        return f"{prefix}: error: {text}"
    return (f"{prefix}: unexpected error ({type(exc).__name__}: {text}); "
            f"rerun with `python -m facelib --debug {command} ...` for the traceback and report it")


def _report(command: str, exc: BaseException, debug: bool) -> int:
    if debug:
        traceback.print_exception(exc)
    print(error_line(command, exc), file=sys.stderr)
    return exit_status(exc)


def main(argv: list[str] | None = None) -> int:
    """Run `python -m facelib ...`; the exit status (`exit_status`), one line on stderr on failure."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:  # a bad command line: argparse's message, one line
        parts = getattr(exc, "prog", "facelib").split()
        return _report(parts[1] if len(parts) > 1 else "", exc, "--debug" in argv)
    try:
        return int(importlib.import_module(args._module).main_from_args(args) or 0)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - the boundary: every failure is one line
        return _report(args.command, exc, args.debug)
