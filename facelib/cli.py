"""`python -m facelib <command>`: one subcommand per concern.

Each command lives in the module that owns it and exposes
`configure_parser(parser)` and `main_from_args(args) -> int`. `main` is the one error boundary
of every command: whatever a command raises reaches the user as one line saying what failed and
what to do (`--debug` shows the traceback instead); a traceback is never the interface.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("facelib.experiment.cli", "train a model on a data set and write a checkpoint"),
    "run": ("facelib.study.pipeline", "execute the numbered notebooks with papermill into reports/<run-id>/"),
    "sweep": ("facelib.study.sweep", "train a grid of models x betas x seeds as tasks (Ray or local) into one CSV"),
    "zoo": ("facelib.zoo.cli", "the shipped trained models: list, build one from its recipe, check its metrics"),
    "lfw": ("facelib.verify.lfw_cli", "LFW verification: choose settings on View 1, run them once on View 2"),
    "data": ("facelib.data.cli", "the real data sets: list what is under the data root, fetch one, check its files"),
}

#: Exceptions whose message is written for the user (what failed, what to do); any other type
#: is a defect of facelib and is reported as one, with its type.
USER_ERRORS = (ValueError, OSError, RuntimeError, ImportError, TypeError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facelib", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show the full traceback when a command fails")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback when the command fails")
        importlib.import_module(module).configure_parser(p)
        p.set_defaults(_module=module)
    return parser


def error_line(command: str, exc: BaseException) -> str:
    """The one line a failed command prints: the error's own message when it is one written for
    the user, else its type and text with where to look further."""
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        text = str(exc.args[0])  # KeyError's str() quotes its message
    else:
        text = " ".join(str(exc).split()) or type(exc).__name__
    written_for_user = isinstance(exc, USER_ERRORS) or (isinstance(exc, KeyError) and " " in text)
    if written_for_user:  # facelib's KeyErrors carry a sentence ("no zoo recipe ...; known: ...")
        return f"facelib {command}: error: {text}"
    return (f"facelib {command}: unexpected error ({type(exc).__name__}: {text}); "
            f"rerun with `python -m facelib --debug {command} ...` for the traceback and report it")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        return int(importlib.import_module(args._module).main_from_args(args) or 0)
    except KeyboardInterrupt:  # Ctrl-C outside a command's own handling: one line, not a traceback
        print(f"facelib {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the boundary: every failure becomes one line
        if args.debug:
            traceback.print_exc()
        print(error_line(args.command, exc), file=sys.stderr)
        return 1
