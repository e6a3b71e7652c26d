"""benchmarks/time_to_quality.py: pausing a training loop between chunks changes nothing it trains,
the race picks, caps and reports as its docstring says, and bad arguments are refused."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from facelib.data import FaceDataset
from facelib.data.pixels import to_float
from facelib.metrics import reconstruction_metrics
from facelib.models import build_model
from facelib.train import TrainConfig, fit

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "time_to_quality.py"
spec = importlib.util.spec_from_file_location("time_to_quality", SCRIPT)
ttq = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = ttq  # its dataclass looks its module up
spec.loader.exec_module(ttq)


def test_first_reach_is_the_first_point_at_or_below_the_target():
    curve = [{"minutes": m, "held_out_mse": e} for m, e in [(1, 0.05), (2, 0.02), (3, 0.01), (4, 0.005)]]
    assert ttq.first_reach(curve, 0.01)["minutes"] == 3  # at the target counts
    assert ttq.first_reach(curve, 0.03)["minutes"] == 2
    assert ttq.first_reach(curve, 0.001) is None and ttq.first_reach([], 1.0) is None


def _draws(n_steps: int):
    """A toy training loop: each step draws from torch's, NumPy's and Python's global RNGs."""
    import random

    def loop(thread):
        torch.manual_seed(1)
        out = []
        for step in range(n_steps):
            thread.step_boundary(step)
            out.append((float(torch.rand(())), float(np.random.rand()), random.random()))
        return out

    return loop


def test_chunks_of_two_interleaved_loops_draw_what_each_draws_alone():
    alone = ttq.TrainingThread("alone", _draws(6), threads=1)
    alone.train_for(60.0)
    assert alone.finished and alone.error is None and alone.train_seconds > 0
    a, b = ttq.TrainingThread("a", _draws(6), threads=1), ttq.TrainingThread("b", _draws(4), threads=1)
    turns = 0
    while not (a.finished and b.finished):  # 0-second chunks: a pause at every step boundary
        a.train_for(0.0)
        torch.rand(5), np.random.rand(5)  # what runs between the chunks (scoring) draws too
        b.train_for(0.0)
        turns += 1
    assert a.result == alone.result and b.result == alone.result[:4]
    assert turns == 7 and a.steps == 5 and a.error is None


def test_a_paused_loop_stops_and_a_failing_one_reports_its_error():
    t = ttq.TrainingThread("t", _draws(100), threads=1)
    t.train_for(0.0)
    t.stop()
    assert t.finished and t.result is None and t.error is None and t.steps == 0
    t.stop()  # twice is harmless

    def broken(thread):
        thread.step_boundary(0)
        raise ArithmeticError("NaN detected in train loss")

    bad = ttq.TrainingThread("bad", broken, threads=1)
    bad.train_for(5.0)
    assert bad.finished and isinstance(bad.error, ArithmeticError)


def test_pausing_facelib_fit_at_every_step_trains_the_same_weights():
    images = torch.randint(0, 256, (24, 1, 32, 32), dtype=torch.uint8)
    data = FaceDataset(images=images, identity=np.arange(24) % 3, name="toy")
    config = TrainConfig(epochs=2, batch_size=8, seed=3, device="cpu", progress=False, val_fraction=0.0,
                         hflip=True)

    def model():
        torch.manual_seed(0)
        return build_model("vae", image_size=32, channels=1, latent_dim=3, hidden_channels=4, hidden_dim=8)

    plain = fit(model(), data, config).model
    paused = model()
    t = ttq.TrainingThread("facelib", ttq.facelib_loop(paused, data, config), threads=1)
    chunks = 0
    while not t.finished:
        t.train_for(0.0)
        torch.rand(3)  # another system's chunk in between
        chunks += 1
    assert t.error is None and t.steps == 6 and chunks == 7  # 2 epochs of 3 batches, a pause before each step
    for (name, p), q in zip(plain.state_dict().items(), paused.state_dict().values()):
        assert torch.equal(p, q), name


class FakeThread:
    """A training thread whose chunks take no time: `train_for` adds the seconds asked for."""

    def __init__(self, seconds_per_step: float = 1.0):
        self.train_seconds, self.steps, self.seconds_per_step = 0.0, 0, seconds_per_step
        self.finished, self.error, self.stopped = False, None, False

    def train_for(self, seconds):
        self.train_seconds += seconds
        self.steps = int(self.train_seconds / self.seconds_per_step)

    def stop(self):
        self.stopped = True


def contender(family, lr, curve, system="pythae"):
    """A contender whose held-out MSE after t training seconds is curve(t)."""
    thread = FakeThread()

    def reconstructor(images):  # a constant error e: MSE e^2 (the faces are mid-grey)
        return to_float(images) + math.sqrt(curve(thread.train_seconds))

    return ttq.Contender(system, family.split()[-1].lower(), family, lr, 64, "Adam", "constant", thread, reconstructor)


def test_the_race_screens_picks_caps_and_reports(tmp_path):
    faces = torch.full((4, 3, 8, 8), 128, dtype=torch.uint8)
    facelib = contender("facelib", 2e-3, lambda t: 0.02 if t < 100 else 0.009, system="facelib")
    facelib.selected = True
    vae = [contender("pythae VAE", 1e-4, lambda t: 0.03),
           contender("pythae VAE", 1e-3, lambda t: 0.02 - t * 1e-5)]  # the better one, never reaching 0.01
    ae = [contender("pythae AE", 1e-4, lambda t: 0.02),
          contender("pythae AE", 1e-3, lambda t: 0.011 if t < 150 else 0.009)]  # reaches at 150 s
    cap = ttq.race(facelib, vae + ae, faces, 0.01, chunk_seconds=30, screen_seconds=60, budget_seconds=600)
    assert facelib.reached["minutes"] == 2.0 and cap == 360  # 3 x facelib's 120 s
    assert [c.state for c in vae] == ["screened out", "capped"] and vae[1].selected and vae[1].seconds == 360
    assert [c.state for c in ae] == ["screened out", "reached"] and ae[1].reached["minutes"] == 2.5
    assert all(c.thread.stopped for c in [facelib, *vae, *ae])
    assert vae[0].seconds == 60  # screened for 60 s, then stopped
    table = ttq.tables([facelib, *vae, *ae], 0.01, cap, {"threads": 1})
    result = table[table.kind == "result"].set_index(["family", "lr"])
    assert result.loc[("pythae AE", 1e-3), "reached"] and result.loc[("pythae AE", 1e-3), "x_facelib_minutes"] == 1.25
    row = result.loc[("pythae VAE", 1e-3)]
    assert not row.reached and row.minutes == 6.0 and math.isclose(row.best_held_out_mse, 0.02 - 360e-5, rel_tol=1e-5)
    assert set(table.kind) == {"result", "curve"} and (table[table.kind == "curve"].system == "facelib").sum() == 4
    ttq.draw(table, str(tmp_path / "curves.png"))
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_a_family_reaching_in_the_screen_is_picked_by_its_time_to_target():
    faces = torch.full((2, 3, 8, 8), 128, dtype=torch.uint8)
    facelib = contender("facelib", 2e-3, lambda t: 0.009 if t >= 300 else 0.02, system="facelib")
    slow, fast = (contender("pythae AE", 1e-4, lambda t: 0.005 if t >= 60 else 0.02),
                  contender("pythae AE", 1e-3, lambda t: 0.009 if t >= 30 else 0.02))
    ttq.race(facelib, [slow, fast], faces, 0.01, chunk_seconds=30, screen_seconds=120, budget_seconds=600)
    assert fast.selected and fast.state == "reached" and fast.reached["minutes"] == 0.5
    assert slow.state == "screened out" and slow.seconds == 30  # stopped in the round the family was decided


@pytest.mark.parametrize("argv, message", [
    (["--budget-minutes", "0"], "positive float"),
    (["--chunk-seconds", "nan"], "positive float"),
    (["--screen-minutes", "5", "--budget-minutes", "2"], "exceeds --budget-minutes"),
    (["--n-train", "2.5"], "positive int"),
    (["--figure", "curves.jpg"], "PNG"),
])
def test_bad_arguments_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit):
        ttq.parse_args(argv)
    assert message in capsys.readouterr().err


def test_without_pythae_the_error_names_the_install_command(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pythae" else real(name, *a))
    with pytest.raises(SystemExit):
        ttq.parse_args([])
    assert "pip install 'pythae==0.1.2'" in capsys.readouterr().err


def test_quick_fills_its_profile_and_arguments_win():
    pytest.importorskip("pythae")
    args = ttq.parse_args(["--quick", "--chunk-seconds", "2"])
    assert args.chunk_seconds == 2 and args.n_train == ttq.PROFILES["quick"]["n_train"]
    assert ttq.parse_args([]).n_held_out == 2000


@pytest.mark.parametrize("name", ["vae", "ae"])
def test_pythae_reconstructions_are_decoded_means_scored_like_reconstruction_metrics(name):
    pytest.importorskip("pythae")
    model = ttq.pythae_model(name)
    images = torch.randint(0, 256, (5, 3, 64, 64), dtype=torch.uint8)
    run = ttq.pythae_reconstructor(model)
    model.train()
    first, again = run(images), run(images)
    assert first.shape == images.shape and torch.equal(first, again) and model.training  # the mean, not a draw
    assert 0 <= float(first.min()) and float(first.max()) <= 1
    assert math.isclose(ttq.held_out_mse(run, images, batch_size=2), reconstruction_metrics(run, images)["mse"],
                        rel_tol=1e-9)
