"""Data-parallel fit (facelib.train.distributed): 2 gloo processes against 1 with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from torch.nn.parallel import DistributedDataParallel

from facelib.train import Snapshots, fit, load_checkpoint, train_step
from facelib.train.distributed import Ranks, check_batches, data_parallel
from facelib.train.batches import _Grouping

from test_train import faces, model
import ddp_worker
from ddp_worker import killed_on_rank_1

#: Relative tolerance of a loss in the 2-process history against 1 process: the two draw
#: other reparameterisation noise (each rank its own) and sum in another order; measured
#: differences are below 4e-4 over 2 epochs of these tiny models.
RTOL = 2e-3
#: The KL of these models is a few hundredths of a nat, so it is compared in nats.
KL_ATOL = 2e-3

needs_gloo = pytest.mark.skipif(not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
                                reason="torch built without gloo")


def _reference(name: str):
    data = faces(groups=name == "modvae")
    return fit(model(name), data, **ddp_worker.config(name))


@needs_gloo
def test_two_gloo_processes_match_one_process_and_resume_exactly(tmp_path):
    """torchrun, 2 CPU processes: beta-VAE, FactorVAE (two optimizers), ModVAE (grouped batches)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]),
                                                         os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(Path(__file__).with_name("ddp_worker.py")), str(tmp_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ddp_worker.MODELS:
        runs = json.loads((tmp_path / name / "histories.json").read_text())
        assert runs["world_size"] == 2
        one = _reference(name).history
        for col in ("train_loss", "train_elbo_nats", "val_loss", "val_elbo_nats"):
            np.testing.assert_allclose(runs["full"][col], one[col], rtol=RTOL, err_msg=f"{name} {col}")
        np.testing.assert_allclose(runs["full"]["train_kl"], one["train_kl"], atol=KL_ATOL, err_msg=f"{name} kl")
        # the checkpoint is rank 0's alone, carries every rank's RNG, and a resume is exact
        full, part = (load_checkpoint(tmp_path / name / d / "checkpoint.pt") for d in ("full", "part"))
        assert full["world_size"] == 2 and len(full["rank_rng_states"]) == 2 and full["completed"]
        assert sorted(p.name for p in (tmp_path / name / "full").iterdir()) == [".lock", "best.pt", "checkpoint.pt", "history.csv"]
        assert runs["resumed"] == runs["full"]
        assert all(torch.equal(full["state_dict"][k], part["state_dict"][k]) for k in full["state_dict"])


@needs_gloo
def test_each_objective_gets_its_own_wrapper_syncing_only_what_its_optimizer_steps(tmp_path):
    """FactorVAE's VAE loss runs through the frozen discriminator: its wrapper leaves D to D's own
    wrapper; a step through the wrappers (one gloo process) is the step without them."""
    torch.distributed.init_process_group("gloo", store=torch.distributed.FileStore(str(tmp_path / "store"), 1),
                                         rank=0, world_size=1)
    try:
        m, plain = model("factor-vae"), model("factor-vae")
        keys = list(m.state_dict())
        opts, plain_opts = m.configure_optimizers(1e-3), plain.configure_optimizers(1e-3)
        wrapped = data_parallel(m.objectives(), opts, Ranks(world_size=2), torch.device("cpu"))
        assert all(isinstance(w, DistributedDataParallel) for w in wrapped)
        assert wrapped[0].parameters_to_ignore == {f"net.discriminator.{n}" for n, _ in m.discriminator.named_parameters()}
        assert wrapped[1].parameters_to_ignore == set()
        x = faces().images[:16].float() / 255
        torch.manual_seed(3)
        terms = train_step(wrapped, {"x": x}, opts, 0)
        torch.manual_seed(3)
        assert terms == train_step(plain.objectives(), {"x": x}, plain_opts, 0)
        assert list(m.state_dict()) == keys  # what checkpoints store is the model's own keys
        assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), plain.state_dict().values()))
    finally:
        torch.distributed.destroy_process_group()


@needs_gloo
def test_fit_nproc_spawns_processes_and_returns_rank_0s_model(tmp_path):
    data = faces()
    kw = dict(epochs=2, device="cpu", seed=1, progress=False, batch_size=16, num_threads=1, val_fraction=0.25)
    one = fit(model(), data, **kw)
    two = fit(model(), data, nproc=2, callbacks=[Snapshots(n=2, folder=tmp_path)], **kw)
    assert two.world_size == 2
    assert len(list(tmp_path.glob("epoch_*.png"))) == 4  # the callback travelled to rank 0, which called it
    np.testing.assert_allclose(two.history["train_loss"], one.history["train_loss"], rtol=RTOL)
    # the weights returned are trained like one process's (processes sharing their weights'
    # memory, each stepping them, would move them twice as far)
    w1, w2, w0 = (next(m.parameters()).detach() for m in (one.model, two.model, model()))
    assert (w2 - w1).norm() < 0.3 * (w1 - w0).norm()


@needs_gloo
def test_a_rank_killed_from_outside_is_one_clear_error(tmp_path):
    """`train --nproc 2` with one rank killed (kill -9, the OOM killer) printed a traceback."""
    with pytest.raises(RuntimeError, match="process 1 of 2 stopped without an error of its own.*--resume"):
        fit(killed_on_rank_1(model()), faces(), epochs=2, device="cpu", progress=False, batch_size=16,
            num_threads=1, nproc=2, out=str(tmp_path))


def test_a_global_batch_that_does_not_split_over_the_ranks_is_refused():
    class Cfg:
        batch_size = 15
    with pytest.raises(ValueError, match="batch_size=15 does not split evenly over 2 processes; use a multiple of 2"):
        check_batches(Cfg(), None, Ranks(rank=0, world_size=2))
    grouping = _Grouping(np.zeros(4, dtype=np.int64), np.array(["yaw"] * 4, dtype=object), 4, 3)
    with pytest.raises(ValueError, match="groups_per_batch=3"):
        check_batches(Cfg(), grouping, Ranks(rank=1, world_size=2))
    check_batches(Cfg(), None, Ranks())  # one process: anything goes
    with pytest.raises(ValueError, match="batch_size=15 does not split evenly over 2 processes"):
        fit(model(), faces(), batch_size=15, nproc=2, device="cpu", progress=False)  # before any process starts
    with pytest.raises(ValueError, match="nproc must be a positive integer"):
        fit(model(), faces(), nproc=0)


def test_a_grouped_batch_is_shared_out_by_whole_groups():
    idx = torch.arange(12)
    group = torch.arange(3).repeat_interleave(4)  # 3 groups of 4
    parts = [Ranks(rank=r, world_size=2).shard((idx, group)) for r in (0, 1)]
    assert parts[0][0].tolist() == list(range(8)) and parts[0][1].tolist() == [0] * 4 + [1] * 4
    assert parts[1][0].tolist() == list(range(8, 12)) and parts[1][1].tolist() == [0] * 4
    assert [p.tolist() for p in (Ranks(0, 2).shard(idx), Ranks(1, 2).shard(idx))] == [list(range(6)), list(range(6, 12))]
