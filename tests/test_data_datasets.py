"""The data-set registry and the one loader contract (facelib/data/datasets.py).

Every check enumerates the registry, so a new data set is held to the contract without being
named here. A toy data set registered from a module outside facelib trains through the same
path as the shipped ones (spec -> run -> checkpoint -> load_model).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import facelib.data as fdata
from facelib.data import (DATASETS, DataNotFoundError, available, dataset_info, dataset_name, load,
                          register_dataset, translate_options)
from facelib.registry import UnknownNameError

from conftest import user_module

NAMES = available()
#: Options that make a set small, given to whichever set takes them (none is named by data set).
SMALL = {"split": "test", "min_faces_per_person": 70, "n": 24, "n_identities": 4, "download": False}


@pytest.fixture
def empty_root(tmp_path) -> Path:
    root = tmp_path / "empty_root"
    root.mkdir()
    return root


def test_the_shipped_sets_are_registered_and_names_are_normalised():
    assert len(NAMES) >= 7 and all(isinstance(dataset_info(n), fdata.DatasetInfo) for n in NAMES)
    assert dataset_name("LFW_Pairs") == "lfw-pairs" and dataset_name(" YaleB ") == "yaleb"
    with pytest.raises(UnknownNameError) as err:
        load("lfw_pears")
    assert all(n in str(err.value) for n in NAMES) and "register_dataset" in str(err.value)
    assert not hasattr(fdata, "_resolve") and not hasattr(fdata, "_LOADERS")


@pytest.mark.parametrize("name", NAMES)
def test_every_set_takes_size_and_channels_and_refuses_unknown_options_naming_its_own(name):
    info = dataset_info(name)
    assert {"size", "channels"} <= set(info.option_names)
    assert set(info.channels) <= {1, 3} and 1 in info.channels
    with pytest.raises(UnknownNameError) as err:  # refused before any file is read
        load(name, colour=3)
    msg = str(err.value)
    assert "'colour'" in msg and name in msg and all(o in msg for o in info.option_names)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("size", ["64", "96x84", 2.5, True, 0])
def test_size_is_an_int_everywhere(name, size):
    with pytest.raises(ValueError, match="size must be a positive int"):
        load(name, size=size)


@pytest.mark.parametrize("name", NAMES)
def test_a_grey_only_set_refuses_colour_saying_so(name, empty_root):
    info = dataset_info(name)
    with pytest.raises(ValueError, match="channels must be 1 .grey. or 3"):
        load(name, channels=2)
    if 3 in info.channels:
        return
    with pytest.raises(ValueError, match="grey only") as err:
        load(name, channels=3)
    assert all(n in str(err.value) for n in NAMES if 3 in dataset_info(n).channels)  # where colour is
    # the loader itself refuses it too (called directly, without load's check)
    with pytest.raises(ValueError, match="grey only"):
        info.loader(channels=3, **({"root": empty_root} if info.takes("root") else {}))


def _photos(folder: Path) -> Path:
    for person in ("ann", "bob"):
        (folder / person).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((20, 30, 3), 60 * i + 40, dtype=np.uint8)).save(folder / person / f"{i}.png")
    return folder


@pytest.mark.shared_data
@pytest.mark.parametrize("name", NAMES)
def test_every_present_set_gives_the_size_and_channels_asked_for(name, tmp_path):
    info = dataset_info(name)
    options = {k: v for k, v in SMALL.items() if info.takes(k)}
    if info.takes("root"):
        options["root"] = os.environ.get("FACELIB_DATA", "data")
    if info.takes("path"):
        options["path"] = _photos(tmp_path / "photos")
    if info.takes("cache"):
        options["cache"] = tmp_path / "cache"
    for channels in info.channels:
        try:
            d = load(name, size=32, channels=channels, **options)
        except DataNotFoundError as err:
            pytest.skip(f"{name} is not under the data root: {str(err).splitlines()[0]}")
        assert tuple(d.images.shape[1:]) == (channels, 32, 32) and d.images.dtype == torch.uint8


def test_old_option_names_are_translated_in_one_place_with_a_warning():
    with pytest.warns(DeprecationWarning, match="color=True is now channels=3"):
        new = translate_options("LFW_pairs", {"color": True, "subset": "test", "people": True, "size": 32})
    assert new == {"size": 32, "channels": 3, "split": "test", "other_images": True}
    with pytest.warns(DeprecationWarning, match="split"):
        assert translate_options("yaleb", {"people": "train"}) == {"split": "train"}
    assert translate_options("lfw-people", {"color": False}, warn=False) == {"channels": 1}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert translate_options("synthetic", {"channels": 3, "n": 4}) == {"channels": 3, "n": 4}
    with pytest.raises(ValueError, match="pass channels= only"):
        translate_options("lfw-people", {"color": True, "channels": 3}, warn=False)
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="grey only"):
        load("yaleb", people="train", channels=3)  # translated, then checked like any option


def test_registration_holds_a_loader_to_the_contract():
    def no_channels(*, size: int = 8):
        raise AssertionError

    def positional(size=8, channels=1, /):
        raise AssertionError

    def open_ended(*, size=8, channels=1, **more):
        raise AssertionError

    for loader, words in ((no_channels, "add channels"), (positional, "keyword options only"),
                          (open_ended, "extra_options")):
        with pytest.raises(ValueError, match=words):
            register_dataset("not-registered")(loader)
        assert "not-registered" not in DATASETS
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("Olivetti")(lambda *, size=8, channels=1: None)


TOY = '''
"""A data set outside facelib: one module, registered by the decorator."""
import numpy as np
import torch

from facelib.data import FaceDataset, register_dataset


@register_dataset("toy-faces", channels=(1, 3))
def load_toy(*, size: int = 32, channels: int = 1, n: int = 40, seed: int = 0) -> FaceDataset:
    """Random faces of 4 people."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, channels, size, size), generator=g, dtype=torch.uint8)
    return FaceDataset(images=images, identity=np.arange(n) % 4, name="toy-faces",
                       meta={"options": {"size": size, "channels": channels, "n": n, "seed": seed}})
'''


@pytest.fixture
def toy_module(tmp_path):
    try:
        with user_module(tmp_path, "toy_faces_plugin", TOY) as module:
            yield module
    finally:
        if "toy-faces" in DATASETS:
            DATASETS.unregister("toy-faces")


def test_a_data_set_registered_in_its_own_module_trains_and_reloads(toy_module, tmp_path):
    from facelib.experiment import DataSpec, ExperimentSpec, ModelSpec, run
    from facelib.study import load_data
    from facelib.train import load_model

    assert "toy-faces" in available() and dataset_info("Toy_Faces").summary == "Random faces of 4 people."
    with pytest.raises(UnknownNameError, match="size, channels, n, seed"):
        load("toy-faces", split="train")
    # the notebooks' loader passes n / seed because the registry says the toy set takes them
    small = load_data("toy-faces", size=32, channels=3, n=12, n_identities=3, seed=1)
    assert tuple(small.images.shape) == (12, 3, 32, 32)

    spec = ExperimentSpec(data=DataSpec("toy-faces", {"n": 24}), model=ModelSpec("vae", {"latent_dim": 2}),
                          training={"epochs": 1, "progress": False, "batch_size": 8})
    result = run(spec, out=tmp_path / "r")
    model = load_model(tmp_path / "r" / "checkpoint.pt")
    assert type(model) is type(result.model) and model.config.latent_dim == 2 and model.config.image_size == 32
    for (k, a), b in zip(result.model.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a.cpu(), b.cpu()), k


def test_the_toy_set_is_gone_after_its_test():
    assert "toy-faces" not in DATASETS
