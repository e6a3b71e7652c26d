"""`python -m facelib <command>`: one subcommand per concern.

Each command lives in the module that owns it and exposes
`configure_parser(parser)` and `main_from_args(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("facelib.train.cli", "train a model on a data set and write a checkpoint"),
    "run": ("facelib.study.pipeline", "execute the numbered notebooks with papermill into reports/<run-id>/"),
    "sweep": ("facelib.train.sweep", "train a grid of models x betas x seeds as tasks (Ray or local) into one CSV"),
    "zoo": ("facelib.zoo.cli", "the shipped trained models: list, build one from its recipe, check its metrics"),
    "lfw": ("facelib.verify.lfw_cli", "LFW verification: choose settings on View 1, run them once on View 2"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facelib", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).configure_parser(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return int(importlib.import_module(args._module).main_from_args(args) or 0)
    except KeyboardInterrupt:  # Ctrl-C outside a command's own handling: one line, not a traceback
        print(f"facelib {args.command}: interrupted", file=sys.stderr)
        return 130
