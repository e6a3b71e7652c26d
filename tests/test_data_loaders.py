"""Loaders of the real face sets (olivetti, lfw-people, lfw-pairs, yaleb, frey).

Tests that read data need $FACELIB_DATA (CI: ../shared/data) and skip without it.
Every pixel check compares with the raw file read independently (scipy.io.loadmat,
np.load, PIL on the JPEG), never with the loader's own output.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from facelib.data import DataNotFoundError, FaceDataset, load
from facelib.data import lfw
from facelib.data._common import is_writable_dir
from facelib.data.lfw import LFW_PAIR_FILES, lfw_data_home, read_lfw_pairs_file

LFW_PEOPLE_70 = [  # shared/data/README.md: min_faces_per_person=70 -> 1288 images of these 7
    "Ariel Sharon", "Colin Powell", "Donald Rumsfeld", "George W Bush",
    "Gerhard Schroeder", "Hugo Chavez", "Tony Blair",
]


# -- fixtures -----------------------------------------------------------------------
@pytest.fixture(scope="session")
def shared() -> Path:
    env = os.environ.get("FACELIB_DATA")
    if not env:
        pytest.skip("FACELIB_DATA is not set (CI sets it to ../shared/data)")
    root = Path(env)
    if not root.is_dir():
        pytest.skip(f"FACELIB_DATA={env} is not a folder")
    return root


def need(root: Path, rel: str) -> Path:
    p = root / rel
    if not p.exists():
        pytest.skip(f"{rel} is not under FACELIB_DATA={root}")
    return p


@pytest.fixture(scope="session")
def lfw_cache(tmp_path_factory) -> Path:
    """One writable cache per session, so scikit-learn decodes the JPEGs once per run."""
    return tmp_path_factory.mktemp("facelib_cache")


@pytest.fixture(scope="session")
def lfw_train(shared, lfw_cache) -> FaceDataset:
    need(shared, "scikit_learn_data/lfw_home/pairsDevTrain.txt")
    return load("lfw-pairs", split="train", size=16, root=shared, download=False, cache=lfw_cache)


@pytest.fixture
def empty_root(tmp_path) -> Path:
    root = tmp_path / "empty_root"
    root.mkdir()
    return root


# -- olivetti -----------------------------------------------------------------------
@pytest.mark.shared_data
def test_olivetti_shape_labels_and_raw_checksum(shared):
    from scipy.io import loadmat

    mat = need(shared, "olivetti/olivettifaces.mat")
    need(shared, "scikit_learn_data/olivetti_py3.pkz")
    d = load("olivetti", root=shared, download=False)
    assert d.images.shape == (400, 1, 64, 64) and d.images.dtype == torch.uint8
    assert d.identity.dtype == np.int64
    np.testing.assert_array_equal(d.identity, np.arange(400) // 10)
    assert np.bincount(d.identity).tolist() == [10] * 40
    assert d.factors is None and len(d.identity_names) == 40

    # Raw file: columns are images stored transposed; documented transform is
    # scikit-learn's min-max scaling to [0, 1], then x 255 and rounding.
    raw = loadmat(mat)["faces"].T.reshape(400, 64, 64).transpose(0, 2, 1).astype(np.float64)
    assert int(raw[0].sum()) == 631263  # known checksum of the first raw image
    expected = np.rint((raw - raw.min()) / (raw.max() - raw.min()) * 255)
    assert int(d.images[0].sum()) == int(expected[0].sum())
    np.testing.assert_array_equal(d.images[:, 0].numpy(), expected.astype(np.uint8))


@pytest.mark.shared_data
def test_olivetti_resize_matches_pil(shared):
    from PIL import Image

    need(shared, "scikit_learn_data/olivetti_py3.pkz")
    full = load("olivetti", root=shared, download=False)
    small = load("olivetti", size=32, root=shared, download=False)
    assert small.images.shape == (400, 1, 32, 32)
    ref = np.asarray(Image.fromarray(full.images[5, 0].numpy()).resize((32, 32), Image.BILINEAR), dtype=float)
    assert np.abs(small.images[5, 0].numpy().astype(float) - ref).mean() < 2.0


def test_olivetti_missing_data_error(empty_root):
    with pytest.raises(DataNotFoundError) as err:
        load("olivetti", root=empty_root, download=False)
    msg = str(err.value)
    assert "olivetti" in msg and str(empty_root) in msg
    assert "download=True" in msg and "FACELIB_DATA" in msg and "olivetti_py3.pkz" in msg


@pytest.mark.parametrize("bad", [{"size": 0}, {"size": -3}, {"size": 2.5}, {"download": "yes"}])
def test_olivetti_bad_options(bad, empty_root):
    with pytest.raises(ValueError):
        load("olivetti", root=empty_root, **bad)


# -- LFW pair lists (parsing only: fast) --------------------------------------------
@pytest.mark.parametrize(
    "subset, n_pairs, n_folds", [("train", 2200, 1), ("test", 1000, 1), ("10_folds", 6000, 10)]
)
@pytest.mark.shared_data
def test_lfw_pair_lists(shared, subset, n_pairs, n_folds):
    path = need(shared, f"scikit_learn_data/lfw_home/{LFW_PAIR_FILES[subset]}")
    t = read_lfw_pairs_file(path)
    assert len(t) == n_pairs and int(t["same"].sum()) == n_pairs // 2
    assert t["fold"].nunique() == n_folds
    per_fold = t.groupby("fold")["same"].agg(["size", "sum"])
    assert (per_fold["size"] == n_pairs // n_folds).all() and (per_fold["sum"] == n_pairs // n_folds // 2).all()
    # same pairs name one person twice, different pairs two people
    assert (t.loc[t.same, "name1"] == t.loc[t.same, "name2"]).all()
    assert (t.loc[~t.same, "name1"] != t.loc[~t.same, "name2"]).all()
    # every referenced image exists (1-based numbers, files <name>_<nnnn>.jpg)
    folder = path.parent / "lfw_funneled"
    for name, num in list(zip(t.name1, t.image1))[:50] + list(zip(t.name2, t.image2))[-50:]:
        assert (folder / name / f"{name}_{num:04d}.jpg").exists()


@pytest.mark.shared_data
def test_lfw_view2_fold_order(shared):
    """pairs.txt: each fold is 300 same pairs, then 300 different ones."""
    t = read_lfw_pairs_file(need(shared, "scikit_learn_data/lfw_home/pairs.txt"))
    first = t.iloc[0]
    assert (first.name1, first.image1, first.image2, first.same) == ("Abel_Pacheco", 1, 4, True)
    expected_same = np.tile(np.r_[np.ones(300, bool), np.zeros(300, bool)], 10)
    np.testing.assert_array_equal(t["same"].to_numpy(), expected_same)
    np.testing.assert_array_equal(t["fold"].to_numpy(), np.arange(6000) // 600)


def test_lfw_pair_list_bad_file(tmp_path):
    bad = tmp_path / "pairs.txt"
    bad.write_text("1\t2\nA\t1\t2\n")  # header promises 1 fold x 2 x 2 pairs
    with pytest.raises(ValueError, match="header promises"):
        read_lfw_pairs_file(bad)
    bad.write_text("1\nA\t1\nB\t1\tC\t2\n")
    with pytest.raises(ValueError, match="line 2"):
        read_lfw_pairs_file(bad)


# -- LFW pairs through scikit-learn ---------------------------------------------------
@pytest.mark.shared_data
def test_lfw_pairs_train(shared, lfw_train):
    from PIL import Image

    d = lfw_train
    assert d.images.shape == (4400, 1, 16, 16) and d.images.dtype == torch.uint8
    t = d.pair_table
    assert list(t.columns) == ["left", "right", "same", "fold"]
    assert len(t) == 2200 and int(t["same"].sum()) == 1100 and (t["fold"] == 0).all()
    np.testing.assert_array_equal(t["left"], np.arange(0, 4400, 2))
    np.testing.assert_array_equal(t["right"], np.arange(1, 4400, 2))
    # identities agree with the same/different flags
    same_id = d.identity[t["left"]] == d.identity[t["right"]]
    np.testing.assert_array_equal(same_id, t["same"].to_numpy())
    assert d.identity_names[d.identity[0]] == "Aaron Peirsol"  # first line: Aaron_Peirsol 1 2

    # pixel checksum of row 1 (Aaron_Peirsol image 2) straight from the JPEG:
    # centre 150 x 150 crop, resized to 16 x 16 (PIL default filter, as scikit-learn), RGB mean.
    jpg = shared / "scikit_learn_data/lfw_home/lfw_funneled/Aaron_Peirsol/Aaron_Peirsol_0002.jpg"
    with Image.open(jpg) as im:
        ref = np.asarray(im.crop((50, 50, 200, 200)).resize((16, 16)), dtype=np.float64).mean(axis=2)
    ref = np.rint(ref).astype(np.uint8)
    assert int(d.images[1, 0].sum()) == int(ref.sum())
    np.testing.assert_array_equal(d.images[1, 0].numpy(), ref)


@pytest.mark.shared_data
def test_lfw_pairs_with_other_images_appends_each_persons_other_images(shared, lfw_train, lfw_cache):
    import hashlib

    d = load("lfw-pairs", split="train", size=16, root=shared, download=False, cache=lfw_cache, other_images=True)
    n = lfw_train.images.shape[0]
    assert d.meta["n_pair_images"] == n and d.meta["options"]["other_images"] is True
    assert torch.equal(d.images[:n], lfw_train.images)  # the pairs' rows are untouched
    pd.testing.assert_frame_equal(d.pair_table, lfw_train.pair_table)
    assert d.identity_names == lfw_train.identity_names  # only the pair list's people are added
    np.testing.assert_array_equal(d.identity[:n], lfw_train.identity)
    assert d.images.shape[0] > n
    # every person now has exactly the images of their JPEG folder: the distinct pair images
    # plus the appended ones (a pair image is never appended a second time)
    folder = shared / "scikit_learn_data/lfw_home/lfw_funneled"
    digest = [hashlib.sha1(img.numpy().tobytes()).hexdigest() for img in d.images]
    per_person: dict[int, set] = {}
    for i, (who, h) in enumerate(zip(d.identity, digest)):
        per_person.setdefault(int(who), set()).add(h)
    extra_per_person = np.bincount(d.identity[n:], minlength=len(d.identity_names))
    for who in [0, 1, *np.flatnonzero(extra_per_person)[:40]]:
        name = d.identity_names[who].replace(" ", "_")
        n_files = len(list((folder / name).glob("*.jpg")))
        assert len(per_person[int(who)]) == n_files, name
        pair_hashes = {digest[i] for i in np.flatnonzero(d.identity[:n] == who)}
        assert len(pair_hashes) + extra_per_person[who] == n_files, name


@pytest.mark.shared_data
def test_lfw_cache_keeps_shared_copy_clean(shared, lfw_train, lfw_cache):
    src = shared / "scikit_learn_data" / "lfw_home"
    if is_writable_dir(src):
        pytest.skip(f"{src} is writable here; the link cache is only used for read-only copies")
    assert not (src / "joblib").exists(), "scikit-learn wrote its cache into the read-only copy"
    home = lfw_data_home(shared, download=False, cache=lfw_cache)
    assert home.is_relative_to(lfw_cache)
    links = home / "lfw_home"
    for name in [*LFW_PAIR_FILES.values(), "lfw_funneled"]:
        assert (links / name).is_symlink() and (links / name).resolve() == (src / name).resolve()
    assert (links / "joblib").is_dir()


@pytest.mark.shared_data
def test_lfw_pairs_official_and_drawn_pairs(lfw_train):
    """Drawn pairs on LFW are balanced, deterministic and consistent with identities."""
    d = lfw_train
    p1, p2 = d.pairs(200, seed=3), d.pairs(200, seed=3)
    assert p1.equals(p2) and int(p1["same"].sum()) == 100
    np.testing.assert_array_equal(d.identity[p1.left] == d.identity[p1.right], p1.same.to_numpy())


@pytest.mark.shared_data
def test_lfw_people_min_faces(shared, lfw_cache):
    folder = need(shared, "scikit_learn_data/lfw_home/lfw_funneled")
    d = load("lfw-people", min_faces_per_person=70, size=8, channels=3, root=shared, download=False, cache=lfw_cache)
    assert d.images.shape == (1288, 3, 8, 8) and d.images.dtype == torch.uint8
    assert d.identity_names == LFW_PEOPLE_70
    # images per person = files in that person's folder
    counts = np.bincount(d.identity)
    for i, name in enumerate(d.identity_names):
        assert counts[i] == len(os.listdir(folder / name.replace(" ", "_")))
    assert counts[d.identity_names.index("George W Bush")] == 530
    train, test = d.split_by_identity(test_fraction=0.3, seed=0)
    assert not set(train.identity) & set(test.identity)
    assert len(train) + len(test) == len(d)


def test_lfw_missing_data_error(empty_root):
    for name in ("lfw-pairs", "lfw-people"):
        with pytest.raises(DataNotFoundError) as err:
            load(name, root=empty_root, download=False)
        msg = str(err.value)
        assert "lfw" in msg and str(empty_root) in msg and "download=True" in msg and "FACELIB_DATA" in msg
    assert not any(empty_root.iterdir()), "a failed load must not create folders in the data root"


@pytest.mark.parametrize(
    "bad",
    [
        {"split": "view3"},
        {"size": 0},
        {"size": 64, "resize": 0.5},
        {"size": 64, "crop": 300},
        {"size": None, "resize": -1.0},
        {"size": None, "slice_": (1, 2)},
        {"channels": "rgb"},
        {"channels": 2},
    ],
)
def test_lfw_pairs_bad_options(bad, empty_root):
    with pytest.raises(ValueError) as err:
        load("lfw-pairs", root=empty_root, download=False, **bad)
    if "split" in bad:
        assert "10_folds" in str(err.value)  # says what is allowed


def test_lfw_people_bad_min_faces(empty_root):
    with pytest.raises(ValueError, match="min_faces_per_person"):
        load("lfw-people", min_faces_per_person=-1, root=empty_root, download=False)


def test_lfw_size_gives_exact_square():
    # scikit-learn sizes its output as int(resize * crop side)
    for crop in (100, 150, 250):
        for size in range(1, 300):
            opts = lfw._lfw_size_options(size, crop, None, None)
            rows, cols = opts["slice_"]
            assert rows == cols and rows.stop - rows.start == crop and rows.start == (250 - crop) // 2
            assert int(opts["resize"] * crop) == size, (size, crop)


@pytest.mark.shared_data
def test_lfw_writable_copy_is_used_in_place(shared, tmp_path):
    src = need(shared, "scikit_learn_data/lfw_home")
    root = tmp_path / "root"
    home = root / "scikit_learn_data" / "lfw_home"
    home.mkdir(parents=True)
    for name in [*LFW_PAIR_FILES.values(), "lfw_funneled"]:
        (home / name).symlink_to(src / name)
    assert lfw_data_home(root, download=False, cache=tmp_path / "cache") == root / "scikit_learn_data"


def test_is_writable_dir_honours_mode_bits(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    assert is_writable_dir(ro) and is_writable_dir(ro / "not" / "yet")
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        assert not is_writable_dir(ro)  # also when running as root
        assert not is_writable_dir(ro / "child")
    finally:
        ro.chmod(stat.S_IRWXU)


# -- Extended Yale B ------------------------------------------------------------------
@pytest.mark.shared_data
def test_yaleb_shape_labels_factors_and_checksum(shared):
    path = need(shared, "extended_yale_b/extended_yale_b_cropped.npz")
    d = load("yaleb", root=shared)
    assert d.images.shape == (2414, 1, 64, 64) and d.images.dtype == torch.uint8
    assert d.n_identities == 38 and d.identity.min() == 0 and d.identity.max() == 37
    assert len(d.identity_names) == 38 and "yaleB14" not in d.identity_names
    assert list(d.factors.columns) == ["azimuth", "elevation", "subject_id"]
    assert d.factors.azimuth.between(-130, 130).all() and d.factors.elevation.between(-40, 90).all()
    with np.load(path) as raw:
        assert int(raw["images_64x64"][0].astype(np.int64).sum()) == 469519  # known checksum
        np.testing.assert_array_equal(d.images[:, 0].numpy(), raw["images_64x64"])
        np.testing.assert_array_equal(d.identity, raw["label"])
        np.testing.assert_array_equal(d.factors.azimuth, raw["azimuth"])
        np.testing.assert_array_equal(d.factors.elevation, raw["elevation"])
        # names agree with the stored file names (yaleBxx_P00A...)
        names = np.array(d.identity_names)[d.identity]
        assert all(f.startswith(n + "_") for f, n in zip(raw["filename"], names))
        big = load("yaleb", size=None, root=shared)
        np.testing.assert_array_equal(big.images[:, 0].numpy(), raw["images_96x84"])
    with pytest.raises(ValueError, match="size=None"):
        load("yaleb", size="96x84", root=shared)
    assert load("yaleb", size=32, root=shared).images.shape == (2414, 1, 32, 32)
    assert load("yaleb", size=80, root=shared).images.shape == (2414, 1, 80, 80)


@pytest.mark.shared_data
def test_yaleb_split_is_disjoint(shared):
    need(shared, "extended_yale_b/extended_yale_b_cropped.npz")
    d = load("yaleb", size=16, root=shared)
    train, test = d.split_by_identity(test_fraction=0.25, seed=1)
    assert not set(train.identity) & set(test.identity)
    assert train.n_identities + test.n_identities == 38 and len(train) + len(test) == 2414
    assert len(test.factors) == len(test)


def test_yaleb_errors(empty_root):
    with pytest.raises(DataNotFoundError, match="extended_yale_b_cropped.npz"):
        load("yaleb", root=empty_root)
    for bad in ("64x64", 0, -1):
        with pytest.raises(ValueError):
            load("yaleb", size=bad, root=empty_root)


# -- Frey ------------------------------------------------------------------------------
@pytest.mark.shared_data
def test_frey_shape_and_checksum(shared):
    from scipy.io import loadmat

    path = need(shared, "frey_faces/frey_rawface.mat")
    d = load("frey", root=shared)
    assert d.images.shape == (1965, 1, 28, 20) and d.images.dtype == torch.uint8
    assert (d.identity == -1).all() and d.n_identities == 0 and d.factors is None
    ff = loadmat(path)["ff"]
    assert int(ff[:, 0].astype(np.int64).sum()) == 86378  # known checksum of frame 0
    assert int(d.images[0].sum()) == 86378
    np.testing.assert_array_equal(d.images[7, 0].numpy(), ff[:, 7].reshape(28, 20))
    assert load("frey", size=32, root=shared).images.shape == (1965, 1, 32, 32)
    with pytest.raises(ValueError, match="identity"):
        d.pairs(10)


def test_frey_errors(empty_root):
    with pytest.raises(DataNotFoundError, match="frey_rawface.mat"):
        load("frey", root=empty_root)
    with pytest.raises(ValueError):
        load("frey", size=0, root=empty_root)


@pytest.mark.shared_data
def test_data_root_from_environment(shared, monkeypatch):
    need(shared, "frey_faces/frey_rawface.mat")
    monkeypatch.setenv("FACELIB_DATA", str(shared))
    assert len(load("frey")) == 1965
    monkeypatch.setenv("FACELIB_DATA", "/nonexistent/facelib")
    with pytest.raises(DataNotFoundError, match="/nonexistent/facelib"):
        load("frey")


@pytest.mark.shared_data
def test_yaleb_split_holds_out_eight_people_and_groups_vary_one_factor(shared):
    from facelib.data.yaleb import YALEB_HELD_OUT

    need(shared, "extended_yale_b/extended_yale_b_cropped.npz")
    assert YALEB_HELD_OUT == tuple(sorted(np.random.default_rng(0).choice(38, 8, replace=False).tolist()))
    train, test = load("yaleb", size=16, root=shared, split="train"), load("yaleb", size=16, root=shared, split="test")
    assert set(test.identity) == set(YALEB_HELD_OUT) and not set(train.identity) & set(test.identity)
    assert train.n_identities == 30 and len(train) + len(test) == 2414
    g = load("yaleb", size=16, root=shared, split="train", groups=["azimuth", "identity"])
    table = g.factor_table()
    for varying, fixed in (("azimuth", ["identity", "elevation"]), ("identity", ["azimuth", "elevation"])):
        rows = table[g.group_varying == varying]
        per_group = rows.groupby(g.groups[g.group_varying == varying])
        assert (per_group[fixed].nunique() == 1).all().all() and (per_group[varying].nunique() > 1).all()
    assert set(g.identity) == set(train.identity)


def test_yaleb_option_errors(empty_root):
    with pytest.raises(ValueError, match="split"):
        load("yaleb", root=empty_root, split="held-out")
    with pytest.raises(ValueError, match="groups entry='pose'"):
        load("yaleb", root=empty_root, groups=["pose"])
    with pytest.raises(ValueError, match="non-empty list"):
        load("yaleb", root=empty_root, groups="light")
