"""`evaluate`: several metrics of one model or representation on one factor source, as a tidy table."""

from __future__ import annotations

import inspect
import json
from typing import Any, Sequence

import numpy as np
import pandas as pd

# each metric module registers its function in METRICS when imported
from .beta_vae_score import beta_vae_score  # noqa: F401
from .dci import dci  # noqa: F401
from .factor_vae_score import factor_vae_score  # noqa: F401
from .mig import mig  # noqa: F401
from .sap import sap  # noqa: F401
from .sources import check_source
from .utils import METRICS, as_representation

__all__ = ["evaluate", "METRICS", "as_representation"]



def evaluate(model_or_representation: Any, source: Any, metrics: Sequence[str] = ("beta_vae", "factor_vae", "mig", "dci", "sap"),
             seed: int = 0, **overrides: Any) -> pd.DataFrame:
    """Run ``metrics`` and return one row per number: columns metric, submetric, value, seed, config.

    ``overrides`` are passed to every metric that accepts them (e.g. ``n_train=2000``), and a
    dict under a metric's name goes to that metric only (``dci={"model": "lasso"}``).
    ``config`` is the JSON of the settings the metric actually used (defaults included).
    """
    check_source(source)
    if isinstance(metrics, str):
        metrics = (metrics,)
    metrics = tuple(METRICS.canonical(m) for m in metrics)  # an unknown name lists the known ones
    accepted = set()
    for m in metrics:
        accepted |= set(inspect.signature(METRICS[m]).parameters)
    stray = [k for k in overrides if k not in accepted and k not in METRICS]
    if stray:
        raise TypeError(f"no selected metric takes {stray}; valid settings: {sorted(accepted - {'representation', 'source'})}")
    representation = as_representation(model_or_representation)
    rows = []
    for m in metrics:
        fn = METRICS[m]
        params = inspect.signature(fn).parameters
        kwargs = {k: v for k, v in overrides.items() if k in params}
        kwargs.update(overrides.get(m, {}) or {})
        kwargs.pop("return_importance", None)
        config = {k: p.default for k, p in params.items() if p.kind is p.KEYWORD_ONLY and k != "seed"}
        config.update(kwargs)
        result = fn(representation, source, seed=seed, **kwargs)
        for sub, value in result.items():
            if np.ndim(value) == 0:
                rows.append({"metric": m, "submetric": sub, "value": float(value), "seed": seed,
                             "config": json.dumps(config, sort_keys=True, default=str)})
    return pd.DataFrame(rows, columns=["metric", "submetric", "value", "seed", "config"])
