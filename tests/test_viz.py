"""facelib.viz against a tiny stand-in model (encode/decode/kl_per_dim), no trained VAE needed."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from facelib import viz  # noqa: E402
from facelib.train import latent_spread  # noqa: E402

KL = (0.1, 3.0, 0.0, 1.0)  # latent 1 most informative, then 3, 0, 2


class StandIn(nn.Module):
    """Linear encoder/decoder with a fixed, known KL per latent."""

    def __init__(self, d: int = 4, channels: int = 1, size: int = 8, kl=KL):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.config = SimpleNamespace(latent_dim=d, channels=channels, image_size=size)
        n = channels * size * size
        self.enc = nn.Linear(n, 2 * d)
        self.dec = nn.Linear(d, n)
        with torch.no_grad():
            self.enc.weight.copy_(torch.randn(2 * d, n, generator=g) / n**0.5)
            self.dec.weight.copy_(torch.randn(n, d, generator=g))
        self._kl = torch.tensor(kl, dtype=torch.float32)

    def encode(self, x):
        mu, logvar = self.enc(x.flatten(1)).chunk(2, dim=1)
        return mu, logvar.clamp(-3, 0)

    def decode(self, z):
        c, s = self.config.channels, self.config.image_size
        return torch.sigmoid(self.dec(z)).view(-1, c, s, s)

    def kl_per_dim(self, x):
        return self._kl.clone()


@pytest.fixture()
def model():
    return StandIn()


@pytest.fixture()
def faces():
    return (torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 255).to(torch.uint8)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_image_grid_places_images_and_keeps_grey():
    x = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    x[3] = 255  # last image white
    grid = viz.image_grid(x, nrow=2, padding=2, pad_value=0.5)
    assert grid.shape == (22, 22) and grid.dtype == np.uint8
    assert (grid[12:20, 12:20] == 255).all()  # bottom-right cell
    assert (grid[2:10, 2:10] == 0).all()
    assert grid[0, 0] == 128  # padding
    colour = viz.image_grid(torch.rand(3, 3, 8, 8), nrow=3, as_pil=True)
    assert colour.mode == "RGB" and colour.size == (32, 12)


def test_image_grid_rejects_bad_shapes():
    with pytest.raises(ValueError, match="C = 1 .*or 3"):
        viz.image_grid(torch.rand(2, 8, 8, 3))
    with pytest.raises(ValueError, match="nrow"):
        viz.image_grid(torch.rand(2, 1, 8, 8), nrow=0)


def test_show_images_and_reconstruction_figure(model, faces):
    fig = viz.show_images(faces, nrow=3, title="t", row_labels=["a", "b"])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b"]
    with pytest.raises(ValueError, match="one per row"):
        viz.show_images(faces, nrow=3, row_labels=["a"])
    fig = viz.reconstruction_figure(model, faces[:4])
    assert fig.axes[0].get_images()[0].get_array().shape == (2 * 10 + 2, 4 * 10 + 2)


def test_reconstruction_figure_rejects_wrong_channels(model):
    with pytest.raises(ValueError, match="3 channel.*expects 1.*channels=1"):
        viz.reconstruction_figure(model, torch.rand(2, 3, 8, 8))


def test_latent_order_puts_high_kl_first(model, faces):
    dims, kl = viz.latent_order(model, faces)
    assert dims == [1, 3, 0, 2]
    np.testing.assert_allclose(kl, KL)
    assert viz.latent_order(model, faces, order_by_kl=False)[0] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="outside"):
        viz.latent_order(model, faces, dims=[7])


def test_traversal_grid_decodes_each_value(model, faces):
    values = np.linspace(-2, 2, 5)
    grid = viz.traversal_grid(model, faces[0], values=values, units="prior")
    assert grid.shape == (4, 5, 1, 8, 8)
    mu, _ = model.encode(faces[:1].float() / 255)
    z = mu[0].detach().clone()
    z[1] = 2.0  # first row is latent 1 (highest KL), last column is +2
    torch.testing.assert_close(grid[0, -1], model.decode(z[None])[0].detach())
    # from a code instead of a face
    assert viz.traversal_grid(model, torch.zeros(4), dims=[2], values=values, units="prior").shape == (1, 5, 1, 8, 8)
    with pytest.raises(ValueError, match="latent_dim"):
        viz.traversal_grid(model, torch.zeros(3))
    fig = viz.plot_traversal(model, faces[0], max_dims=2, values=values, units="prior")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()][0].startswith("z1")


def test_save_traversal_gif_writes_frames_and_never_overwrites(model, faces, tmp_path):
    from PIL import Image

    path = viz.save_traversal_gif(model, faces[0], 1, tmp_path / "t.gif", values=np.linspace(-3, 3, 5), zoom=2,
                                  units="prior")
    with Image.open(path) as gif:
        assert gif.n_frames == 5 + 3 and gif.size == (16, 16)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        viz.save_traversal_gif(model, faces[0], 1, path)


def test_data_units_step_each_latent_by_its_spread_over_faces(model, faces):
    """units="data" (the default): latent k moves by the standard deviation of the posterior means
    over the reference faces (or the spread the model carries, as zoo models do)."""
    mu_all = model.encode(faces.float() / 255)[0].detach()
    spread = mu_all.double().std(0).float()
    np.testing.assert_allclose(latent_spread(model, faces), spread.numpy(), rtol=1e-5)
    values = np.linspace(-2, 2, 5)
    grid = viz.traversal_grid(model, faces[0], values=values, reference=faces)
    z = mu_all[0].clone()
    z[1] = z[1] + 2.0 * spread[1]  # row 0 is latent 1, the last column +2 spreads
    torch.testing.assert_close(grid[0, -1], model.decode(z[None])[0].detach())
    with pytest.raises(ValueError, match="reference faces"):
        viz.traversal_grid(model, faces[0], values=values)  # no spread stored and none to measure it on
    post = viz.traversal_grid(model, faces[0], values=values, units="posterior")
    sigma = model.encode(faces[:1].float() / 255)[1][0].detach().mul(0.5).exp()
    z = mu_all[0].clone()
    z[1] = z[1] - 2.0 * sigma[1]
    torch.testing.assert_close(post[0, 0], model.decode(z[None])[0].detach())

    w = viz.TraversalWidget(model, faces)  # measured on the widget's faces
    assert w.units == "data" and "spread over faces" in w.ui.children[2].value
    w.sliders[0].value = 1.5
    assert float(w.current_z[1] - mu_all[0, 1]) == pytest.approx(1.5 * float(spread[1]), rel=1e-4)
    model.latent_spread = np.array([0.5, 0.25, 2.0, 4.0], dtype=np.float32)  # what a zoo model carries
    try:
        w = viz.TraversalWidget(model, faces[0])
        w.sliders[0].value = 2.0
        assert float(w.current_z[1] - mu_all[0, 1]) == pytest.approx(2.0 * 0.25, rel=1e-4)
        grid = viz.traversal_grid(model, faces[0], dims=[3], values=[1.0])
        z = mu_all[0].clone()
        z[3] = z[3] + 4.0
        torch.testing.assert_close(grid[0, 0], model.decode(z[None])[0].detach())
    finally:
        del model.latent_spread


class TestTraversalWidget:
    def test_slider_changes_image_and_code_and_reset_restores(self, model, faces):
        w = viz.TraversalWidget(model, faces, span=3.0, units="posterior")
        assert w.dims == [1, 3, 0, 2]  # KL order: active first
        before_png, before_z = w.image.value, w.current_z.clone()
        w.sliders[0].value = 2.0
        assert w.image.value != before_png
        sigma = float(model.encode(faces[:1].float() / 255)[1][0, 1].detach().mul(0.5).exp())
        assert w.current_z[1] == pytest.approx(float(before_z[1]) + 2.0 * sigma, rel=1e-5)
        torch.testing.assert_close(w.current_z[[0, 2, 3]], before_z[[0, 2, 3]])
        w.reset()
        assert w.image.value == before_png
        torch.testing.assert_close(w.current_z, before_z)

    def test_base_picker_changes_face(self, model, faces):
        w = viz.TraversalWidget(model, SimpleNamespace(images=faces), max_dims=2, units="prior")  # a FaceDataset
        assert len(w.sliders) == 2
        w.sliders[1].value = 1.5
        png0, orig0 = w.image.value, w.original.value
        w.picker.value = 4  # what the user's face picker does
        assert w.base_index == 4 and w.image.value != png0 and w.original.value != orig0
        assert all(s.value == 0 for s in w.sliders)
        mu4 = model.encode(faces[4:5].float() / 255)[0][0].detach()
        torch.testing.assert_close(w.current_z, mu4.detach())
        w.sliders[1].value = 1.5  # prior units: exactly +1.5 on latent dims[1]
        assert float(w.current_z[3] - mu4[3]) == pytest.approx(1.5, rel=1e-5)
        with pytest.raises(ValueError, match="outside"):
            w.set_base(6)

    def test_renders_ui_and_kl_plot(self, model, faces):
        with pytest.warns(UserWarning, match="prior units"):  # one face and no stored spread: no data units
            w = viz.TraversalWidget(model, faces[0])
        assert w.units == "prior"
        assert w.kl_plot.value[:4] == b"\x89PNG" and w.image.value[:4] == b"\x89PNG"
        assert w.picker.disabled
        assert "application/vnd.jupyter.widget-view+json" in w._repr_mimebundle_()

    def test_wrong_channels_is_a_clear_error(self, model):
        with pytest.raises(ValueError, match="3 channel.*channels=1"):
            viz.TraversalWidget(model, torch.rand(3, 3, 8, 8))
        with pytest.raises(ValueError, match="units"):
            viz.TraversalWidget(model, torch.rand(3, 1, 8, 8), units="sigma")


def test_plot_mutual_information_draws_the_table_with_kl_labels():
    import pandas as pd

    table = pd.DataFrame([[0.9, 0.1], [0.05, 0.4], [0.0, 0.0]], index=["z0", "z1", "z2"], columns=["yaw", "light"])
    ax = viz.plot_mutual_information(table, kl=[2.5, 1.25, 0.0], title="m")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["z0 (KL 2.5)", "z1 (KL 1.2)", "z2 (KL 0.0)"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["yaw", "light"]
    cells = ax.collections[0].get_array()  # the heatmap's values, row by row, on the fixed 0..1 scale
    np.testing.assert_allclose(np.asarray(cells).reshape(3, 2), table.to_numpy())
    assert ax.collections[0].get_clim() == (0.0, 1.0)
    assert sorted(t.get_text() for t in ax.texts) == sorted(f"{v:.2f}" for v in table.to_numpy().ravel())
    with pytest.raises(ValueError, match="3 latents"):
        viz.plot_mutual_information(table, kl=[1.0, 2.0])
    with pytest.raises(TypeError, match="mutual_info_table"):
        viz.plot_mutual_information(table.to_numpy())


def test_traversal_rows_name_modvae_blocks(faces):
    from facelib.models import build_model

    torch.manual_seed(0)
    mod = build_model("modvae", image_size=8, channels=1, latent_dim=4, blocks={"identity": 2, "yaw": 1})
    assert mod.latent_names() == ["identity0", "identity1", "yaw", "other"]
    assert build_model("vae", image_size=32, latent_dim=3).latent_names() == ["", "", ""]
    fig = viz.plot_traversal(mod, faces[0], values=[-1, 0, 1], units="prior")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(labels) == 4 and sum("yaw" in lab for lab in labels) == 1, labels
    assert sum("identity" in lab for lab in labels) == 2 and all("KL" in lab for lab in labels), labels


def test_reconstruction_rows_and_sample_rows_put_models_side_by_side(model, faces):
    from facelib.train import reconstruct, sample

    other = StandIn(kl=(1.0, 1.0, 1.0, 1.0))
    with torch.no_grad():
        other.dec.weight.mul_(-1)
    x = faces[:3]
    fig = viz.reconstruction_rows({"a": model, "b": other}, x, title="t")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["original", "a", "b"]
    want = viz.image_grid(torch.cat([viz._common.as_float_images(x), reconstruct(model, x), reconstruct(other, x)]), nrow=3)
    assert np.array_equal(np.asarray(ax.get_images()[0].get_array()), want)
    fig = viz.sample_rows({"a": model, "b": other}, n=5, seed=2)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b"]
    want = viz.image_grid(torch.cat([sample(model, 5, seed=2), sample(other, 5, seed=2)]), nrow=5)
    assert np.array_equal(np.asarray(fig.axes[0].get_images()[0].get_array()), want)
    with pytest.raises(ValueError, match="non-empty"):
        viz.sample_rows({})
    with pytest.raises(ValueError, match="images for 'b' have 3 channel"):
        viz.reconstruction_rows({"b": other}, torch.rand(2, 3, 8, 8))
    # a reconstructor (images -> images), such as the PCA baseline, is a row like a model
    from facelib.metrics import PCAReconstructor

    pca = PCAReconstructor(2).fit(faces[:10])
    fig = viz.reconstruction_rows({"a": model, "PCA-2": pca}, x)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["original", "a", "PCA-2"]
    want = viz.image_grid(torch.cat([viz._common.as_float_images(x), reconstruct(model, x), pca(x).clamp(0, 1)]), nrow=3)
    assert np.array_equal(np.asarray(fig.axes[0].get_images()[0].get_array()), want)
    with pytest.raises(TypeError, match="a model or a reconstructor"):
        viz.reconstruction_rows({"c": 3}, x)
    plt.close("all")


def test_swap_latents_takes_the_chosen_latents_from_each_donor(model, faces):
    from facelib.train import swap_latents

    base, donors = faces[:2], faces[2:5]
    out = swap_latents(model, base, donors, slice(1, 3))
    assert out.shape == (2, 3, 1, 8, 8)
    with torch.no_grad():
        zb, _ = model.encode(base.float() / 255)
        zd, _ = model.encode(donors.float() / 255)
        for i in range(2):
            for j in range(3):
                z = torch.cat([zb[i, :1], zd[j, 1:3], zb[i, 3:]])
                assert torch.allclose(out[i, j], model.decode(z[None])[0], atol=1e-6)
        # no latent swapped from a donor equal to the base: the base's own reconstruction
        same = swap_latents(model, base, base, [0, 1, 2, 3])
        assert torch.allclose(same[0, 0], model.decode(zb[:1])[0], atol=1e-6)
    with pytest.raises(ValueError, match="select no latent"):
        swap_latents(model, base, donors, [])
    fig = viz.block_swap_grid(model, base, donors, slice(1, 3), base_labels=["p", "q"])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["donors", "p", "q"]
