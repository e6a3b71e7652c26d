"""facelib.data.pixels: the one image check and converter, against plain numpy references."""

import numpy as np
import pytest
import torch

from facelib.data import load
from facelib.data.pixels import image_batch, to_float, to_uint8


def test_to_float_is_level_over_255_and_keeps_floats():
    x = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    np.testing.assert_array_equal(to_float(x).numpy(), np.arange(256, dtype=np.float32).reshape(1, 1, 16, 16) / np.float32(255))
    f = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    assert to_float(f).dtype == torch.float32 and torch.equal(to_float(f), f.float())
    assert to_float(x) is not x and x.dtype == torch.uint8  # the input is left as it was


def test_to_uint8_rounds_and_clips():
    x = np.array([-0.5, 0.0, 0.5 / 255, 1.5 / 255, 0.5, 1.0, 2.0])
    np.testing.assert_array_equal(to_uint8(x), np.clip(np.rint(x * 255), 0, 255).astype(np.uint8))
    levels = torch.arange(256, dtype=torch.uint8)
    np.testing.assert_array_equal(to_uint8(to_float(levels)), levels.numpy())  # a round trip is exact


def test_image_batch_takes_arrays_tensors_and_datasets():
    ds = load("synthetic", n=4, size=32, n_identities=2)
    assert image_batch(ds) is ds.images
    arr = ds.images.numpy()
    assert torch.equal(image_batch(arr), ds.images)


@pytest.mark.parametrize("bad, error, match", [
    (torch.zeros(1, 8, 8, dtype=torch.uint8), ValueError, r"x\[None\]"),
    (np.zeros((4, 64)), ValueError, "not flattened pixels"),
    (torch.zeros(2, 8, 8, 3), ValueError, r"permute\(0, 3, 1, 2\)"),
    (torch.zeros(2, 1, 8, 8, dtype=torch.int32), TypeError, "uint8 .* or float"),
    ([1, 2, 3], TypeError, "tensor, NumPy array or FaceDataset"),
])
def test_bad_images_say_what_to_do(bad, error, match):
    with pytest.raises(error, match=match):
        image_batch(bad)


def test_uint8_only_refuses_floats():
    with pytest.raises(TypeError, match="uint8 images"):
        image_batch(torch.rand(2, 1, 8, 8), uint8=True)
