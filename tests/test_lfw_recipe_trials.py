"""benchmarks/lfw_recipe_trials.py: each trial is the zoo's lfw-vae recipe with exactly the change
it names, at the asked steps, and its figure draws every trial's row."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from facelib import zoo

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "lfw_recipe_trials.py"
spec = importlib.util.spec_from_file_location("lfw_recipe_trials", SCRIPT)
trials = importlib.util.module_from_spec(spec)
spec.loader.exec_module(trials)


@pytest.mark.parametrize("name", list(trials.TRIALS))
def test_a_trial_changes_only_what_it_names(name):
    base = zoo.recipe(trials.BASE)
    r = trials.trial_recipe(name, 123)
    _, train_changes, model_changes = trials.TRIALS[name]
    assert r.steps == 123 and r.data == base.data and r.data_options == base.data_options
    assert (r.model, r.lr, r.batch_size, r.seed) == (base.model, base.lr, base.batch_size, base.seed)
    changed_train = {k for k in set(r.train_options) | set(base.train_options)
                     if r.train_options.get(k) != base.train_options.get(k)}
    changed_model = {k for k in set(r.model_options) | set(base.model_options)
                     if r.model_options.get(k) != base.model_options.get(k)}
    # a change the base recipe has since adopted (e.g. bf16) changes nothing any more
    assert changed_train <= set(train_changes) and changed_model <= set(model_changes)
    assert all(r.train_options[k] == v for k, v in train_changes.items())
    assert all(r.model_options[k] == v for k, v in model_changes.items())
    assert r.name != base.name  # never mistaken for the zoo model


def test_the_figure_draws_every_trial(tmp_path):
    rows = [{"trial": n, "change": c, "steps": 10, "latents": 32, "train_mse": 0.009 + i * 1e-4,
             "held_out_mse": 0.010 + i * 1e-4, "pca_k_held_out_mse": 0.0118,
             "mse_vs_pca_k": (0.010 + i * 1e-4) / 0.0118} for i, (n, (c, _, _)) in enumerate(trials.TRIALS.items())]
    path = tmp_path / "f.png"
    trials.draw(pd.DataFrame(rows), path)
    assert path.stat().st_size > 10_000
    with pytest.raises(SystemExit):
        trials.main(["--steps", "0"])
