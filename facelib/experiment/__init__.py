"""Experiments: one typed, serialisable spec per training run, and the one function that runs it.

`ExperimentSpec` (data set + model + `TrainConfig`, YAML / JSON, a content hash as its identity)
and `run(spec, out)`, which trains it or reuses the finished run of the same identity. Every
caller above `facelib.train.fit` goes through here: the `train` command, sweeps, zoo recipes,
the notebooks' study and the verification estimators.
"""

from __future__ import annotations

from .runner import RUNTIME_FIELDS, SPEC_NAME, RunConflictError, RunResult, prepare, run
from .spec import DataSpec, ExperimentSpec, ModelSpec, load_spec

__all__ = ["DataSpec", "ModelSpec", "ExperimentSpec", "load_spec", "run", "prepare", "RunResult",
           "RunConflictError", "SPEC_NAME", "RUNTIME_FIELDS"]
