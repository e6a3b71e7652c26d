"""The study: what runs the numbered notebooks and what they share.

`session` is the notebooks' plumbing (`start`, `load_data`, `Study.train_or_load`, tables),
served here so a notebook writes `from facelib import study; study.start(...)`; `pipeline`
executes the notebooks with papermill (`python -m facelib run`; the notebooks' parameters cells
hold the quick profile, `profiles/full.yaml` the full one's changes); `sweep` trains and measures grids of models (`python -m facelib sweep`)
on the `executors`. The session's names load on first use, so the pipeline (and its
sweep workers) import neither torch nor pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Study", "start", "load_data", "checkpoint_key", "people_outside_pairs", "read_tables", "models_used"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("facelib.study.session"), name)
    raise AttributeError(f"module 'facelib.study' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
