"""`evaluate`: several metrics of one model or representation on one factor source, as a tidy table."""

from __future__ import annotations

import inspect
import json
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from .beta_vae_score import beta_vae_score
from .dci import dci
from .factor_vae_score import factor_vae_score
from .mig import mig
from .sap import sap
from .sources import check_source
from .utils import as_representation

__all__ = ["evaluate", "METRICS", "as_representation"]

#: name -> metric function (each takes representation, source, *, seed, ...)
METRICS: dict[str, Callable[..., dict]] = {
    "beta_vae": beta_vae_score,
    "factor_vae": factor_vae_score,
    "mig": mig,
    "dci": dci,
    "sap": sap,
}


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
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {sorted(METRICS)}")
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
