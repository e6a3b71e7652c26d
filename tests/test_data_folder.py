"""`folder` loader: user photos in ImageFolder layout, built in a tmp folder (no shared data)."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from facelib.data import DataNotFoundError, load
from facelib.data.folder import UnreadableImageError, load_folder


def solid(color, size=(60, 80)) -> Image.Image:
    return Image.new("RGB", size, color)


@pytest.fixture
def photos(tmp_path):
    """3 people x 3 images, each person one solid colour; sizes of several aspect ratios."""
    root = tmp_path / "photos"
    colours = {"alice": (255, 0, 0), "bob": (0, 255, 0), "carol": (0, 0, 255)}
    sizes = [(60, 80), (80, 60), (33, 33)]
    for person, colour in colours.items():
        (root / person).mkdir(parents=True)
        for k, sz in enumerate(sizes):
            solid(colour, sz).save(root / person / f"{person}_{k}.{'png' if k == 2 else 'jpg'}", quality=100)
    return root


def test_folder_shapes_labels_and_colours(photos):
    d = load("folder", path=photos, size=32, channels=3)
    assert d.images.shape == (9, 3, 32, 32) and d.images.dtype == torch.uint8
    np.testing.assert_array_equal(d.identity, [0, 0, 0, 1, 1, 1, 2, 2, 2])
    assert d.identity_names == ["alice", "bob", "carol"]
    assert d.meta["files"][0] == "alice/alice_0.jpg" and len(d.meta["files"]) == 9
    # the lossless PNGs keep their exact colour
    np.testing.assert_array_equal(d.images[2, :, 0, 0].numpy(), [255, 0, 0])
    np.testing.assert_array_equal(d.images[8, :, 0, 0].numpy(), [0, 0, 255])
    # JPEGs stay close to it
    assert abs(int(d.images[3, 1].float().mean()) - 255) <= 3


def test_folder_grey_uses_pil_luma(photos):
    d = load("folder", path=photos, size=16)  # channels=1 by default
    assert d.images.shape == (9, 1, 16, 16)
    # ITU-R 601-2 luma, PIL's "L" conversion: L = R*299/1000 + G*587/1000 + B*114/1000
    assert int(d.images[2, 0, 0, 0]) == round(255 * 0.299)
    assert int(d.images[5, 0, 0, 0]) == round(255 * 0.587)
    assert int(d.images[8, 0, 0, 0]) == round(255 * 0.114)


def test_folder_resizes_shorter_side_and_crops_centre(tmp_path):
    root = tmp_path / "p"
    (root / "x").mkdir(parents=True)
    centre = np.zeros((50, 100), np.uint8)
    centre[:, 20:80] = 255  # white band over the middle of a 100 x 50 image
    edge = np.zeros((50, 100), np.uint8)
    edge[:, :20] = 255  # white only at the left edge: cropped away
    Image.fromarray(centre).save(root / "x" / "a.png")
    Image.fromarray(edge).save(root / "x" / "b.png")
    tall = np.zeros((100, 50), np.uint8)
    tall[:20] = 255  # white at the top of a portrait image: cropped away
    Image.fromarray(tall).save(root / "x" / "c.png")
    d = load("folder", path=root, size=32)
    assert d.images.shape == (3, 1, 32, 32)
    assert (d.images[0] == 255).all()
    assert (d.images[1] == 0).all()
    assert (d.images[2] == 0).all()


def test_folder_pairs_and_split(photos):
    d = load("folder", path=photos, size=8)
    p = d.pairs(6, seed=0)
    assert int(p["same"].sum()) == 3
    np.testing.assert_array_equal(d.identity[p.left] == d.identity[p.right], p.same.to_numpy())
    train, test = d.split_by_identity(test_fraction=0.34, seed=0)
    assert not set(train.identity) & set(test.identity) and len(train) + len(test) == 9


def test_folder_corrupt_jpeg_is_named(photos):
    (photos / "bob" / "broken.jpg").write_bytes(b"this is not a jpeg")
    buf = io.BytesIO()
    solid((10, 20, 30), (64, 64)).save(buf, format="JPEG")
    (photos / "carol" / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(UnreadableImageError) as err:
        load("folder", path=photos, size=8)
    msg = str(err.value)
    assert "broken.jpg" in msg and "truncated.jpg" in msg and "skip_unreadable=True" in msg
    assert isinstance(err.value, ValueError)

    with pytest.warns(UserWarning, match="broken.jpg") as rec:
        d = load("folder", path=photos, size=8, skip_unreadable=True)
    assert any("truncated.jpg" in str(w.message) for w in rec)
    assert len(d) == 9 and len(d.meta["skipped"]) == 2


def test_folder_non_image_file_is_left_out_with_a_warning(photos):
    """A stray notes.txt is not a photo: the load goes on without it and says so."""
    (photos / "alice" / "notes.txt").write_text("hello")
    with pytest.warns(UserWarning, match="notes.txt"):
        d = load("folder", path=photos, size=8)
    assert len(d) == 9 and d.meta["not_images"][0].endswith("notes.txt")


def test_folder_ignores_hidden_files(photos):
    (photos / "alice" / ".DS_Store").write_bytes(b"\x00\x01")
    (photos / ".hidden").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = load("folder", path=photos, size=8)
    assert len(d) == 9 and d.identity_names == ["alice", "bob", "carol"]


def test_folder_person_without_images_is_left_out(photos):
    (photos / "dave").mkdir()
    with pytest.warns(UserWarning, match="dave"):
        d = load("folder", path=photos, size=8)
    assert d.identity_names == ["alice", "bob", "carol"]


def test_folder_loose_files_warn(photos):
    solid((1, 2, 3)).save(photos / "loose.jpg")
    with pytest.warns(UserWarning, match="loose.jpg"):
        assert len(load("folder", path=photos, size=8)) == 9


def test_folder_layout_errors(tmp_path):
    with pytest.raises(ValueError, match="path="):
        load("folder")
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load("folder", path=tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="empty"):
        load("folder", path=empty)
    flat = tmp_path / "flat"
    flat.mkdir()
    solid((0, 0, 0)).save(flat / "a.jpg")
    with pytest.raises(ValueError, match="sub-folder"):
        load("folder", path=flat)
    with pytest.raises(ValueError, match="is a file"):
        load("folder", path=flat / "a.jpg")
    only_bad = tmp_path / "only_bad"
    (only_bad / "x").mkdir(parents=True)
    (only_bad / "x" / "a.jpg").write_bytes(b"junk")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="no readable images"):
        load("folder", path=only_bad, skip_unreadable=True)


@pytest.mark.parametrize(
    "bad, needle", [({"channels": 2}, "channels"), ({"size": 0}, "size"), ({"skip_unreadable": "yes"}, "skip_unreadable")]
)
def test_folder_bad_options(photos, bad, needle):
    with pytest.raises(ValueError, match=needle) as err:
        load("folder", path=photos, **bad)
    if "channels" in bad:
        assert "1 (grey) or 3 (RGB)" in str(err.value)  # says what is allowed
    with pytest.raises(ValueError, match="1 .grey. or 3"):  # the loader itself, called directly
        load_folder(path=photos, channels=2)
