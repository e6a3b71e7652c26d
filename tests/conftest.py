"""Shared test set-up."""

import contextlib
import importlib.util
import sys

import pytest
import torch


@contextlib.contextmanager
def user_module(folder, name: str, source: str):
    """`source` written to `folder/name.py` and imported as a user's own module (not a facelib
    file), as an extension is: what it registers is registered until the caller removes it."""
    path = folder / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Run each test on one torch thread.

    The tiny models of the tests gain nothing from a second thread, and on a shared
    2-core machine two threads contend with whatever else runs and can be many times slower.
    """
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def lfw_available() -> bool:
    """Whether LFW's pair lists are under the data root (`$FACELIB_DATA`, else ./data)."""
    from facelib.data.paths import data_root

    return (data_root() / "scikit_learn_data" / "lfw_home" / "pairsDevTrain.txt").exists()


@pytest.fixture(scope="session")
def yaleb_available() -> bool:
    """Whether Extended Yale B is under the data root (`$FACELIB_DATA`, else ./data)."""
    from facelib.data.paths import data_root
    from facelib.data.yaleb import YALEB_FILE

    return (data_root() / YALEB_FILE).exists()
