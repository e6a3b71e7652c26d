"""The CUDA paths of fit: precisions, layout, the pinned-memory feeder, exact resume, NCCL.

Skipped without CUDA; `benchmarks/gpu_check.py` runs them on a GPU.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from facelib.train import batches, fit, load_checkpoint, precision

from test_train import faces, model, same_weights

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
GPU = dict(device="cuda", progress=False, batch_size=16, epochs=2)


@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_fit_on_cuda_in_every_precision_learns_on_the_gpu(tmp_path, precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("GPU without bf16")
    result = fit(model(), faces(), precision=precision, out=str(tmp_path), **GPU)
    assert result.precision == precision and result.device.startswith("cuda")
    assert next(result.model.parameters()).is_cuda
    assert result.history["train_loss"].iloc[-1] < result.history["train_loss"].iloc[0]
    conv = next(m for m in result.model.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)  # auto layout on CUDA
    scaler = load_checkpoint(result.checkpoint)["grad_scaler"]
    assert (scaler is not None) == (precision == "fp16")


@needs_cuda
def test_auto_precision_on_cuda_is_fp16_with_a_grad_scaler():
    assert precision.resolve_precision("auto", torch.device("cuda")) == ("fp16", torch.float16, True)


@needs_cuda
def test_the_pinned_memory_feeder_gives_the_batches_the_gpu_resident_one_does(monkeypatch):
    data = faces()
    idx = torch.arange(16)
    resident = batches._Feeder(data, None, torch.device("cuda"), channels_last=False)
    assert resident.images.is_cuda and not resident.pin

    class Tiny:
        total_memory = 0  # nothing fits: the images stay on the host and travel pinned

    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: Tiny)
    pinned = batches._Feeder(data, None, torch.device("cuda"), channels_last=False)
    assert pinned.pin and not pinned.images.is_cuda
    a, b = resident(idx)["x"], pinned(idx)["x"]
    assert b.is_cuda and torch.equal(a, b)


@needs_cuda
def test_resume_on_cuda_is_exact(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    data = faces()
    full = fit(model(), data, precision="fp32", **GPU)
    fit(model(), data, precision="fp32", out=str(tmp_path), **{**GPU, "epochs": 1})
    resumed = fit(model(), data, precision="fp32", out=str(tmp_path), resume=True, **GPU)
    assert same_weights(full.model.cpu(), resumed.model.cpu())


@needs_cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2 or not torch.distributed.is_nccl_available(),
                    reason="NCCL data-parallel needs 2 GPUs")
def test_two_nccl_processes_match_one():
    data = faces()
    one = fit(model(), data, precision="fp32", **GPU)
    two = fit(model(), data, precision="fp32", nproc=2, **GPU)
    assert two.world_size == 2
    np.testing.assert_allclose(two.history["train_loss"], one.history["train_loss"], rtol=2e-3)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: the check itself runs")
def test_the_gpu_check_without_a_gpu_says_how_to_run_it():
    script = Path(__file__).parents[1] / "benchmarks" / "gpu_check.py"
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "no CUDA device here" in done.stderr and "--dry-run" in done.stderr
