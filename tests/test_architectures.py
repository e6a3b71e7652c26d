"""Encoder/decoder pairs by name: the residual networks' shapes and options, and a user's own
pair registered, saved and rebuilt from the file with no code in it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from facelib.models import ARCHITECTURES, build_model, register_architecture
from facelib.models.resnet import UPSAMPLING, ResidualBlock, _doubling, resnet_sides
from facelib.train import TrainConfig, fit, load_model
from facelib.train.checkpoint import CheckpointError, save_checkpoint

from test_train import QUIET, faces


@pytest.mark.parametrize("size, channels", [(32, 1), (48, 3), (64, 3), (128, 1)])
def test_resnet_round_trips_every_supported_size(size, channels):
    m = build_model("vae", image_size=size, channels=channels, latent_dim=6, architecture="resnet",
                    architecture_options={"width": 8, "max_width": 16})
    x = torch.rand(2, channels, size, size)
    out = m(x)
    assert out["mu"].shape == (2, 6) and out["x_mean"].shape == x.shape
    assert any(isinstance(mod, ResidualBlock) for mod in m.modules())


def test_resnet_width_and_depth_set_the_network():
    def count(**o):
        m = build_model("vae", image_size=32, latent_dim=4, architecture="resnet", architecture_options=o)
        return sum(isinstance(mod, ResidualBlock) for mod in m.modules()), sum(p.numel() for p in m.parameters())

    blocks1, params1 = count(width=8, depth=1)
    blocks2, params2 = count(width=8, depth=2)
    assert blocks2 == 2 * blocks1 and params2 > params1
    assert resnet_sides(32) == [32, 16, 8, 4] and blocks1 == 2 * 3  # encoder + decoder, one per stage
    _, wide = count(width=16, depth=1)
    assert wide > 3 * params1  # conv weights grow with the square of the width
    group = build_model("vae", image_size=32, latent_dim=4, architecture="resnet",
                        architecture_options={"width": 8, "norm": "group"})
    assert any(isinstance(mod, nn.GroupNorm) for mod in group.modules())


@pytest.mark.parametrize("upsample", UPSAMPLING)
def test_resnet_decoder_upsamples_as_asked(upsample):
    m = build_model("vae", image_size=32, channels=3, latent_dim=4, architecture="resnet",
                    architecture_options={"width": 8, "upsample": upsample})
    assert m(torch.rand(2, 3, 32, 32))["x_mean"].shape == (2, 3, 32, 32)
    transposed = [mod for mod in m.decoder.modules() if isinstance(mod, nn.ConvTranspose2d)]
    resized = [mod for mod in m.decoder.modules() if isinstance(mod, nn.Upsample)]
    assert (len(transposed), len(resized)) == ((3, 0) if upsample == "transpose" else (0, 3))
    assert all(mod.mode == upsample for mod in resized)


def test_a_resize_then_conv_paints_no_grid_on_a_flat_input():
    """The checkerboard of a stride-2 transposed conv (Odena et al. 2016): a flat feature map comes
    out with a period-2 pattern; resized and then convolved, it stays flat away from the border."""
    torch.manual_seed(0)
    flat = torch.ones(1, 8, 8, 8)
    for mode, grid in (("transpose", True), ("nearest", False), ("bilinear", False)):
        out = nn.Sequential(*_doubling(8, 3, mode))(flat)[0, :, 2:-2, 2:-2].detach()
        spread = float((out - out.mean(dim=(1, 2), keepdim=True)).abs().max())
        assert (spread > 1e-3) == grid, (mode, spread)


@pytest.mark.parametrize("options, match", [
    ({"widht": 8}, "unknown option"), ({"depth": -1}, "depth"), ({"norm": "layer"}, "norm"),
    ({"width": 12, "norm": "group"}, "divisible by 8"), ({"upsample": "cubic"}, "upsample"),
])
def test_bad_resnet_options_are_refused(options, match):
    with pytest.raises(ValueError, match=match):
        build_model("vae", image_size=32, architecture="resnet", architecture_options=options)


def test_resnet_refuses_a_size_that_does_not_halve_to_a_grid():
    with pytest.raises(ValueError, match="halves down"):
        build_model("vae", image_size=150, architecture="resnet")
    with pytest.raises(ValueError, match="unknown architecture 'nope'.*register_architecture"):
        build_model("vae", image_size=32, architecture="nope")
    with pytest.raises(ValueError, match="hidden_channels"):
        build_model("vae", image_size=32, architecture_options={"width": 8})


class _MLPEncoder(nn.Module):
    def __init__(self, channels, image_size, latent_dim, hidden=16):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(channels * image_size ** 2, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 2 * latent_dim))

    def forward(self, x):
        return self.net(x).chunk(2, dim=1)


class _MLPDecoder(nn.Module):
    def __init__(self, channels, image_size, latent_dim, hidden=16):
        super().__init__()
        self.shape = (channels, image_size, image_size)
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, channels * image_size ** 2))

    def forward(self, z):
        return self.net(z).view(z.shape[0], *self.shape)


@pytest.fixture
def mlp_architecture():
    register_architecture("test-mlp", _MLPEncoder, _MLPDecoder, defaults={"hidden": 16}, replace=True)
    yield "test-mlp"
    ARCHITECTURES.unregister("test-mlp") if "test-mlp" in ARCHITECTURES else None


def test_a_registered_architecture_trains_saves_and_rebuilds_from_the_file(tmp_path, mlp_architecture):
    m = build_model("beta-vae", image_size=32, latent_dim=3, architecture=mlp_architecture,
                    architecture_options={"hidden": 24})
    assert isinstance(m.encoder, _MLPEncoder) and m.encoder.net[1].out_features == 24
    result = fit(m, faces(), TrainConfig(epochs=1, device="cpu", **QUIET), out=str(tmp_path))
    again = load_model(result.checkpoint)  # torch.load(weights_only=True): only names and tensors in the file
    assert isinstance(again.encoder, _MLPEncoder) and again.config.architecture_options == {"hidden": 24}
    x = torch.rand(2, 1, 32, 32)
    assert torch.equal(again.encode(x)[0], result.model.encode(x)[0])
    with pytest.raises(ValueError, match="unknown option"):
        build_model("vae", image_size=32, architecture=mlp_architecture, architecture_options={"hiden": 2})
    with pytest.raises(ValueError, match="already registered"):
        register_architecture(mlp_architecture, _MLPEncoder, _MLPDecoder)


def test_loading_a_model_of_an_unregistered_architecture_says_what_to_do(tmp_path, mlp_architecture):
    m = build_model("vae", image_size=32, latent_dim=3, architecture=mlp_architecture)
    path = save_checkpoint(tmp_path / "m.pt", m)
    ARCHITECTURES.unregister(mlp_architecture)
    with pytest.raises(CheckpointError, match="register_architecture"):
        load_model(path)


def test_a_file_from_before_architectures_loads_as_the_small_network_without_a_warning(tmp_path, recwarn):
    m = build_model("vae", image_size=32, latent_dim=3, hidden_channels=8, hidden_dim=16)
    path = save_checkpoint(tmp_path / "old.pt", m)
    ckpt = torch.load(path, weights_only=True)
    for key in ("architecture", "architecture_options"):
        del ckpt["model_config"][key]
    torch.save(ckpt, path)
    again = load_model(path)
    assert again.config.architecture == "small" and not [w for w in recwarn if "predates" in str(w.message)]
    assert torch.equal(again.decode(torch.zeros(1, 3)), m.eval().decode(torch.zeros(1, 3)))
