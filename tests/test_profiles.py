"""The run profiles: quick is every notebook's parameters cell, full the parameters file
`facelib/study/profiles/full.yaml` (only what differs from those defaults)."""

from __future__ import annotations

from pathlib import Path

import pytest

from facelib.study import pipeline
from facelib.zoo.recipes import RECIPES

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
DECLARED = {p.stem: pipeline.declared_parameters(p) for p in NOTEBOOKS}
FULL = pipeline.profile_parameters("full")
#: A name two notebooks use for different things: 03's beta is ModVAE's KL weight (1), the
#: other notebooks' the beta-VAE's (4); no profile file sets it.
DIFFERENT_MEANINGS = {"beta"}


def test_the_profiles_are_quick_and_the_full_file():
    assert pipeline.profile_names() == ["quick", "full"]
    assert pipeline.profile_parameters("quick") == {}
    with pytest.raises(ValueError, match="unknown profile 'medium'; choose one of quick, full"):
        pipeline.profile_parameters("medium")


@pytest.mark.parametrize("stem", sorted(DECLARED))
def test_no_notebook_parameter_is_none_where_the_full_profile_sets_it(stem):
    """The parameters cell holds the real (quick) values: a parameter the full profile sets is
    never None in the notebook, and the full value has the type of the notebook's default."""
    declared = DECLARED[stem]
    assert declared and not any(isinstance(v, pipeline.Expression) for v in declared.values()), stem
    nones = sorted(k for k in FULL if k in declared and declared[k] is None)
    assert not nones, f"{stem}: {nones} are None in the parameters cell; write the quick profile's value"
    checked = pipeline.check_parameters(stem, declared, {k: v for k, v in FULL.items() if k in declared}, "full")
    assert all(checked[k] != declared[k] for k in checked), f"{stem}: full.yaml repeats a notebook default"


def test_every_full_value_is_a_parameter_of_some_notebook():
    declared_anywhere = set().union(*DECLARED.values())
    assert set(FULL) <= declared_anywhere, sorted(set(FULL) - declared_anywhere)


def test_the_notebooks_share_one_quick_profile():
    """What the old profile table guaranteed: a parameter has the same default in every notebook."""
    seen: dict[str, tuple[str, object]] = {}
    for stem, declared in DECLARED.items():
        for name, default in declared.items():
            if name in DIFFERENT_MEANINGS or name not in seen:
                seen.setdefault(name, (stem, default))
                continue
            first, value = seen[name]
            assert default == value, f"{name}: {first} has {value!r}, {stem} {default!r}"


def test_quick_is_smaller_than_full():
    quick = {k: v for d in DECLARED.values() for k, v in d.items()}
    for key in ("image_size", "n_images", "metric_n_train", "n_pairs", "bootstrap", "lfw_steps"):
        assert quick[key] < FULL[key], key
    assert len(quick["betas"]) < len(FULL["betas"]) and quick["lfw_study"] is False and FULL["lfw_study"] is True
    # work per model is images seen: the full profile may take fewer passes over a larger set
    assert quick["epochs"] * quick["n_images"] < FULL["epochs"] * FULL["n_images"]


def test_05_scores_every_synthetic_zoo_model_and_04_explores_zoo_models():
    assert DECLARED["05_disentanglement"]["zoo_models"] == [n for n, r in RECIPES.items() if r.data == "synthetic"]
    for names in (DECLARED["04_latent_traversals"]["traversal_models"], FULL["traversal_models"]):
        assert set(names) <= set(RECIPES), names


def test_the_parameters_file_ships_in_the_wheel():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert "profiles/*.yaml" in pyproject["tool"]["setuptools"]["package-data"]["facelib.study"]
