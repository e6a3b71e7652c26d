"""Extending facelib without touching it: a model defined in a user's own module runs end to end.

The toy model lives in a module written to a temporary folder (not a facelib file) and registers
itself with `facelib.models.register`; from there the one path every caller uses takes it:
spec -> `experiment.run` -> checkpoint -> `load_model` -> traversal -> `metrics.evaluate` ->
a verification protocol. The test fails if any of those steps needs a facelib edit (a
hard-coded model list, a per-model branch).
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch

from facelib import data as fdata
from facelib import metrics, models, verify
from facelib.experiment import DataSpec, ExperimentSpec, ModelSpec, load_spec, run
from facelib.data.synthetic import SyntheticFaces
from facelib.train import load_model, representation, traverse

from conftest import user_module

TOY_MODEL = textwrap.dedent('''
    """A user's model: a VAE whose KL weight ramps with a `warmth` of its own."""
    from dataclasses import dataclass

    from facelib.models import BaseVAE, ModelConfig, register


    @dataclass
    class ToyConfig(ModelConfig):
        warmth: float = 0.5


    @register
    class ToyVAE(BaseVAE):
        name = "toy-vae"
        config_class = ToyConfig

        def objective(self, batch, out, recon, kl_dims, step):
            return {"loss": recon + self.config.warmth * kl_dims.sum(1)}
''')


@pytest.fixture
def toy_model(tmp_path):
    """Import the toy module from a temporary folder; unregister the model afterwards."""
    try:
        with user_module(tmp_path, "my_toy_model", TOY_MODEL) as module:
            yield module
    finally:
        if "toy-vae" in models.MODELS:
            models.unregister("toy-vae")


def test_a_model_from_a_users_module_runs_through_every_step(toy_model, tmp_path):
    assert "toy-vae" in models.MODELS and "Toy_VAE" in models.MODELS  # the registry's names
    spec = ExperimentSpec(
        data=DataSpec("synthetic", {"n": 192, "size": 32, "n_identities": 6, "seed": 0}),
        model=ModelSpec("toy-vae", {"latent_dim": 4, "warmth": 0.25, "likelihood": "gaussian", "gaussian_scale": 0.1}),
        training={"epochs": 2, "batch_size": 32, "progress": False, "device": "cpu"})
    spec.save(tmp_path / "toy.yaml")
    assert load_spec(tmp_path / "toy.yaml") == spec  # the spec round-trips through its file

    result = run(spec, tmp_path / "run")
    assert not result.reused and result.checkpoint.is_file() and (tmp_path / "run" / "spec.yaml").is_file()
    assert int(result.history["epoch"].iloc[-1]) == 2
    assert run(spec, tmp_path / "run").reused  # the same identity is not trained twice

    model = load_model(result.checkpoint)  # rebuilt from the file alone, by its registered name
    assert type(model).__name__ == "ToyVAE" and model.config.warmth == 0.25
    for a, b in zip(model.state_dict().values(), result.model.state_dict().values()):
        assert torch.equal(a.cpu(), b.cpu())

    faces = fdata.load("synthetic", n=8, size=32, n_identities=6, seed=1)
    z = torch.as_tensor(representation(model)(faces.images[:1]))[0]
    grid = traverse(model, z, 0, torch.linspace(-2, 2, 5))
    assert grid.shape == (5, 1, 32, 32)
    assert not torch.equal(grid[0], grid[-1])  # the decoded face moves along the latent

    source = SyntheticFaces(size=32, n_identities=6, seed=0)  # the faces' true factors
    table = metrics.evaluate(model, source, metrics=("mig",), n_train=200, seed=0)
    assert set(table["metric"]) == {"mig"} and np.isfinite(table["value"]).all()

    held = fdata.load("synthetic", n=240, size=32, n_identities=12, seed=2)
    protocol = verify.protocols.HeldOutIdentities(held, n_train_pairs=60, n_test_pairs=60)
    rows = verify.protocols.evaluate(representation(model), ["cosine", "plda"], protocol, representation_name="toy-vae")
    assert set(rows["representation"]) == {"toy-vae"} and {"cosine", "plda"} <= set(rows["method"])
    accuracy = rows.loc[rows["metric"] == "accuracy", "value"]
    assert len(accuracy) and ((0.0 <= accuracy) & (accuracy <= 1.0)).all()


def test_an_unregistered_model_name_lists_the_registered_ones():
    with pytest.raises(KeyError, match="unknown model 'toy-vae'.*beta-vae") as err:
        ModelSpec("toy-vae")
    assert isinstance(err.value, ValueError)  # an option check's ValueError too
