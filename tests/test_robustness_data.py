"""Data loaders under hostile or careless files (issue #32): nothing from a data file runs,
caches follow the content they were built from, the photo folder loader follows no link out
of its folder and says what it leaves out, pixels keep their scale, no pair is one image twice,
and an unreadable file is not called damaged.

Every case builds tiny files in tmp_path (a fake LFW tree of constant-grey JPEGs, a few
frames of Frey, a 400-face Olivetti of noise); shared data is never touched.
"""

from __future__ import annotations

import builtins
import os
import shlex
import warnings
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from scipy.io import savemat

from facelib.data import FaceDataset, load
from facelib.data import lfw as lfw_module
from facelib.data._common import CorruptDataError, DataPermissionError, UnsafeDataError
from facelib.data._safe_pickle import read_joblib
from facelib.data.folder import UnreadableImageError
from facelib.data.lfw import read_lfw_pairs_file
from facelib.data.pixels import to_levels, to_uint8


# -- helpers -----------------------------------------------------------------------------------
class Payload:
    """Pickles as a call of os.system that creates `marker`: it exists afterwards iff code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


PEOPLE = {"Ann_Lee": 2, "Bo_Yu": 2, "Cy_Do": 2}
TRAIN = "1\nAnn_Lee\t1\t2\nAnn_Lee\t1\tBo_Yu\t1\n"  # one same, one different pair


def level(person: str, i: int) -> int:
    """The constant grey of image i (1-based) of `person` in the fake LFW tree."""
    return 30 + 60 * list(PEOPLE).index(person) + 25 * (i - 1)


def jpeg(path: Path, grey: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((250, 250, 3), grey, np.uint8)).save(path, quality=95)


@pytest.fixture
def fake_lfw(tmp_path) -> Path:
    """A data root with scikit-learn's LFW layout: 3 people x 2 constant-grey JPEGs."""
    home = tmp_path / "data" / "scikit_learn_data" / "lfw_home"
    for person, n in PEOPLE.items():
        for i in range(1, n + 1):
            jpeg(home / "lfw_funneled" / person / f"{person}_{i:04d}.jpg", level(person, i))
    for name in ("pairsDevTrain.txt", "pairsDevTest.txt", "pairs.txt"):
        (home / name).write_text(TRAIN)
    return tmp_path / "data"


def lfw_load(root: Path, name: str = "lfw-pairs", **kw) -> FaceDataset:
    return load(name, root=root, download=False, size=16, cache=root.parent / "cache", **kw)


def greys(d: FaceDataset) -> np.ndarray:
    """Mean grey of every image (the fake JPEGs are constant, so this identifies the file)."""
    return d.images.float().mean(dim=(1, 2, 3)).numpy()


@pytest.fixture
def photos(tmp_path) -> Path:
    root = tmp_path / "photos"
    for person, grey in (("alice", 60), ("bob", 190)):
        (root / person).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((12, 12), grey + i, np.uint8)).save(root / person / f"{i}.png")
    return root


def one_warning(record) -> str:
    texts = [str(w.message) for w in record if issubclass(w.category, UserWarning)]
    assert len(texts) == 1, texts
    return texts[0]


# -- 1. code never runs when a data set loads ----------------------------------------------------
@pytest.mark.parametrize("where", ["top", "inside_dict", "object_array"])
def test_crafted_olivetti_pkz_runs_no_code(tmp_path, where):
    marker = tmp_path / "MARKER"
    pkz = tmp_path / "scikit_learn_data" / "olivetti_py3.pkz"
    pkz.parent.mkdir(parents=True)
    payload = {"top": Payload(marker),
               "inside_dict": {"faces": np.zeros((400, 4096), np.uint8), "x": [Payload(marker)]},
               "object_array": np.array([Payload(marker), 1], dtype=object)}[where]
    joblib.dump(payload, pkz, compress=6)
    with pytest.raises(UnsafeDataError) as err:
        load("olivetti", root=tmp_path, download=False)
    assert not marker.exists(), "the pickle's payload ran"
    msg = str(err.value)
    assert str(pkz) in msg and "python -m facelib data fetch olivetti --force" in msg and "Nothing from it was run" in msg


def test_crafted_yaleb_npz_runs_no_code(tmp_path):
    """A guard (numpy refuses object arrays by default): Yale B's .npz cannot run a payload either."""
    marker = tmp_path / "MARKER"
    npz = tmp_path / "extended_yale_b" / "extended_yale_b_cropped.npz"
    npz.parent.mkdir(parents=True)
    np.savez(npz, images_64x64=np.array([Payload(marker)], dtype=object), label=np.arange(1),
             subject_id=np.ones(1, int), azimuth=np.zeros(1, int), elevation=np.zeros(1, int))
    with pytest.raises(CorruptDataError) as err:
        load("yaleb", root=tmp_path)
    assert not marker.exists() and str(npz) in str(err.value)


@pytest.mark.parametrize("compress", [6, 0, ("gzip", 3)])
def test_genuine_joblib_files_still_load(tmp_path, compress):
    value = {"faces": np.arange(24, dtype=np.uint8).reshape(2, 12), "names": np.array(["Ann", "Bo"]),
             "ids": [1, 2, (3, 4)], "scale": np.float32(0.5), "tags": {"a", "b"}, "raw": b"\x00\x01"}
    path = tmp_path / "genuine.pkz"
    joblib.dump(value, path, compress=compress)
    got = read_joblib("test", path, "")
    assert set(got) == set(value) and got["ids"] == value["ids"] and got["tags"] == value["tags"]
    np.testing.assert_array_equal(got["faces"], value["faces"])
    np.testing.assert_array_equal(got["names"], value["names"])
    assert got["scale"] == value["scale"] and got["raw"] == value["raw"]


def test_genuine_olivetti_pkz_loads_as_scikit_learn_reads_it(tmp_path):
    from sklearn.datasets import fetch_olivetti_faces

    raw = np.random.default_rng(0).integers(0, 243, (400, 4096), dtype=np.uint8)
    pkz = tmp_path / "scikit_learn_data" / "olivetti_py3.pkz"
    pkz.parent.mkdir(parents=True)
    joblib.dump(raw, pkz, compress=6)  # exactly what scikit-learn writes
    d = load("olivetti", root=tmp_path, download=False)
    ref = fetch_olivetti_faces(data_home=str(pkz.parent), download_if_missing=False)  # our own file: trusted
    np.testing.assert_array_equal(d.images[:, 0].numpy(), to_uint8(ref.images))
    np.testing.assert_array_equal(d.identity, ref.target)


def test_crafted_lfw_caches_run_no_code(fake_lfw):
    """Both scikit-learn's joblib cache and facelib's own cache are replaced by payloads: the
    next load runs neither and still gives the right images."""
    from sklearn.datasets import fetch_lfw_people

    marker = fake_lfw.parent / "MARKER"
    first = lfw_load(fake_lfw, "lfw-people")
    home = fake_lfw / "scikit_learn_data"
    # scikit-learn's own fetch of the same crop, so its joblib cache (output.pkl) is there too
    fetch_lfw_people(data_home=str(home), color=False, min_faces_per_person=0, download_if_missing=False,
                     **lfw_module._lfw_size_options(16, 150, None, None))
    pickles = list((home / "lfw_home" / "joblib").rglob("output.pkl"))
    ours = list((home / "lfw_home" / "joblib").rglob("*.npz"))
    assert pickles
    for f in pickles:
        joblib.dump(Payload(marker), f)
    for f in ours:
        with open(f, "wb") as fh:
            np.savez(fh, images=np.array([Payload(marker)], dtype=object))
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        again = lfw_load(fake_lfw, "lfw-people")
    assert not marker.exists(), "a cache file's payload ran"
    assert torch.equal(again.images, first.images) and np.array_equal(again.identity, first.identity)
    assert ours, "facelib wrote no cache of its own"
    assert any("rebuilding" in str(w.message) and str(ours[0]) in str(w.message) for w in rec)


# -- 2. a cache is keyed on the content it was built from ----------------------------------------
def test_lfw_pairs_cache_follows_an_edited_pair_list(fake_lfw):
    d = lfw_load(fake_lfw)
    np.testing.assert_allclose(greys(d), [level("Ann_Lee", 1), level("Ann_Lee", 2),
                                          level("Ann_Lee", 1), level("Bo_Yu", 1)], atol=3)
    pairs = fake_lfw / "scikit_learn_data" / "lfw_home" / "pairsDevTrain.txt"
    pairs.write_text("1\nBo_Yu\t1\t2\nCy_Do\t2\tAnn_Lee\t2\n")  # same shape: one same, one different
    d = lfw_load(fake_lfw)
    np.testing.assert_allclose(greys(d), [level("Bo_Yu", 1), level("Bo_Yu", 2),
                                          level("Cy_Do", 2), level("Ann_Lee", 2)], atol=3)
    names = [d.identity_names[i] for i in d.identity]
    assert names == ["Bo Yu", "Bo Yu", "Cy Do", "Ann Lee"]


def test_lfw_people_cache_follows_a_replaced_image(fake_lfw, monkeypatch):
    first = lfw_load(fake_lfw, "lfw-people")
    # unchanged files: served from the cache, nothing is decoded again
    with monkeypatch.context() as m:
        m.setattr(lfw_module, "_decode", lambda *a, **k: pytest.fail("decoded although nothing changed"),
                  raising=False)
        assert torch.equal(lfw_load(fake_lfw, "lfw-people").images, first.images)
    jpeg(fake_lfw / "scikit_learn_data/lfw_home/lfw_funneled/Bo_Yu/Bo_Yu_0002.jpg", 250)
    d = lfw_load(fake_lfw, "lfw-people")
    row = [i for i in range(len(d)) if d.identity_names[d.identity[i]] == "Bo Yu" and greys(d)[i] > 240]
    assert len(row) == 1, "the replaced image was not read again"


# -- 3. the folder loader ------------------------------------------------------------------------
def test_folder_link_looping_to_the_root_is_not_a_person(photos):
    (photos / "loop").symlink_to(".", target_is_directory=True)
    with pytest.warns(UserWarning) as rec:
        d = load("folder", path=photos, size=8)
    assert d.identity_names == ["alice", "bob"] and len(d) == 4
    assert "loop" in one_warning(rec) and "loops back" in one_warning(rec)


def test_folder_links_leaving_the_root_are_not_followed(photos, tmp_path):
    outside = tmp_path / "elsewhere"
    (outside / "eve").mkdir(parents=True)
    Image.fromarray(np.full((12, 12), 10, np.uint8)).save(outside / "eve" / "0.png")
    (photos / "eve").symlink_to(outside / "eve", target_is_directory=True)
    (photos / "alice" / "stray.png").symlink_to(outside / "eve" / "0.png")
    with pytest.warns(UserWarning) as rec:
        d = load("folder", path=photos, size=8)
    assert d.identity_names == ["alice", "bob"] and len(d) == 4
    msg = one_warning(rec)
    assert "eve" in msg and "alice/stray.png" in msg and "outside" in msg


def test_folder_broken_looping_and_duplicate_links_are_named_in_one_warning(photos):
    (photos / "alice" / "broken.png").symlink_to(photos / "alice" / "gone.png")
    (photos / "alice" / "self.png").symlink_to(photos / "alice" / "self.png")
    (photos / "bob" / "alias.png").symlink_to(photos / "alice" / "0.png")  # alice's photo, under bob
    (photos / "bob" / "inner").symlink_to(photos / "bob", target_is_directory=True)
    with pytest.warns(UserWarning) as rec:
        d = load("folder", path=photos, size=8)
    assert len(d) == 4 and d.meta["files"] == ["alice/0.png", "alice/1.png", "bob/0.png", "bob/1.png"]
    msg = one_warning(rec)
    for name, why in (("alice/broken.png", "broken link"), ("alice/self.png", "loops"),
                      ("bob/alias.png", "same file as alice/0.png"), ("bob/inner", "loops back")):
        line = next((ln for ln in msg.splitlines() if name in ln), "")
        assert why in line, (name, msg)
    assert len(d.meta["left_out"]) == 4


def test_folder_link_from_one_person_to_another_is_a_second_route_not_an_album(photos):
    """alice/bobdir -> ../bob reaches bob's photos a second time: dropped with a warning (it was
    refused as "photos at different depths", though the loader promises to drop second routes)."""
    (photos / "alice" / "bobdir").symlink_to("../bob", target_is_directory=True)
    with pytest.warns(UserWarning) as rec:
        d = load("folder", path=photos, size=8)
    assert d.identity_names == ["alice", "bob"]
    assert d.meta["files"] == ["alice/0.png", "alice/1.png", "bob/0.png", "bob/1.png"]
    msg = one_warning(rec)
    assert "alice/bobdir/0.png" in msg and "same file as bob/0.png" in msg


def test_folder_mixed_nesting_is_refused(tmp_path):
    root = tmp_path / "photos"
    for rel, grey in (("Alice", 20), ("Group/Bob", 120), ("Group/Carol", 220)):
        (root / rel).mkdir(parents=True)
        Image.fromarray(np.full((12, 12), grey, np.uint8)).save(root / rel / "0.png")
    with pytest.raises(ValueError) as err:
        load("folder", path=root, size=8)
    msg = str(err.value)
    assert "Group/Bob" in msg and "Group/Carol" in msg and "Alice" in msg
    assert "nested=True" in msg and f"{root}/<person>/" in msg
    d = load("folder", path=root, size=8, nested=True)  # Group really is one person when asked
    assert d.identity_names == ["Alice", "Group"] and len(d) == 3


def test_folder_float_tiff_is_read_with_a_note(photos):
    Image.fromarray(np.full((12, 12), 0.5, np.float32), mode="F").save(photos / "bob" / "float.tif")
    with pytest.warns(UserWarning, match=r"float.tif.*\[0, 1\]"):
        d = load("folder", path=photos, size=12)
    img = d.images[d.meta["files"].index("bob/float.tif")]
    assert (img == 128).all()


# -- 4. pixel dtype and range --------------------------------------------------------------------
def frey_root(tmp_path, ff) -> Path:
    mat = tmp_path / "frey_faces" / "frey_rawface.mat"
    mat.parent.mkdir(parents=True, exist_ok=True)
    savemat(mat, {"ff": ff})
    return tmp_path


def test_frey_float_pixels_in_unit_range_are_scaled_not_black(tmp_path):
    ff = np.random.default_rng(0).uniform(0.2, 1.0, (560, 3))
    with pytest.warns(UserWarning, match=r"frey_rawface.mat.*\[0, 1\]"):
        d = load("frey", root=frey_root(tmp_path, ff))
    want = np.rint(ff.T.reshape(3, 1, 28, 20) * 255).astype(np.uint8)
    np.testing.assert_array_equal(d.images.numpy(), want)


def test_frey_uint8_loads_silently_and_float_levels_keep_their_scale(tmp_path):
    ff = np.random.default_rng(1).integers(0, 256, (560, 2), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = load("frey", root=frey_root(tmp_path, ff))
    np.testing.assert_array_equal(d.images.numpy(), ff.T.reshape(2, 1, 28, 20))
    with pytest.warns(UserWarning, match="levels 0..255"):
        d = load("frey", root=frey_root(tmp_path, ff.astype(np.float64)))
    np.testing.assert_array_equal(d.images.numpy(), ff.T.reshape(2, 1, 28, 20))


@pytest.mark.parametrize("ff, needle", [
    (np.full((560, 2), 300, np.int16), "300"),
    (np.full((560, 2), -0.5), "-0.5"),
    (np.where(np.eye(560, 2) > 0, np.nan, 0.5), "NaN"),
])
def test_frey_pixels_that_are_not_levels_are_refused(tmp_path, ff, needle):
    with pytest.raises(ValueError, match=needle) as err:
        load("frey", root=frey_root(tmp_path, ff))
    assert "frey_rawface.mat" in str(err.value)


def test_yaleb_float_images_are_scaled_not_refused(tmp_path):
    npz = tmp_path / "extended_yale_b" / "extended_yale_b_cropped.npz"
    npz.parent.mkdir(parents=True)
    img = np.random.default_rng(2).uniform(0, 1, (2, 64, 64)).astype(np.float32)
    np.savez(npz, images_64x64=img, label=np.arange(2), subject_id=np.array([1, 2]),
             azimuth=np.zeros(2, int), elevation=np.zeros(2, int))
    with pytest.warns(UserWarning, match=r"\[0, 1\]"):
        d = load("yaleb", root=tmp_path)
    np.testing.assert_array_equal(d.images[:, 0].numpy(), np.rint(img.astype(np.float64) * 255).astype(np.uint8))


def test_to_levels_refuses_what_is_not_a_pixel():
    np.testing.assert_array_equal(to_levels(np.array([0, 32896, 65535], np.uint16), "x", full_scale=65535), [0, 128, 255])
    with pytest.raises(TypeError, match="bool"):
        to_levels(np.ones(3, bool), "mask")
    with pytest.raises(ValueError, match="16-bit"):
        to_levels(np.array([0, 1000], np.uint16), "x")
    with pytest.raises(ValueError, match="outside 0..1"):
        to_levels(np.array([0.0, 1.5]), "x", full_scale=1.0)


# -- 5. a pair is never one image twice ----------------------------------------------------------
def test_lfw_pair_line_with_the_same_image_twice_is_refused(fake_lfw):
    pairs = fake_lfw / "scikit_learn_data" / "lfw_home" / "pairsDevTrain.txt"
    pairs.write_text("1\nAnn_Lee\t1\t1\nAnn_Lee\t1\tBo_Yu\t1\n")
    with pytest.raises(ValueError, match="line 2") as err:
        read_lfw_pairs_file(pairs)
    assert "Ann_Lee" in str(err.value) and "itself" in str(err.value)
    with pytest.raises(ValueError, match="itself"):
        lfw_load(fake_lfw)


def test_lfw_pair_of_a_file_and_its_link_is_refused(fake_lfw):
    folder = fake_lfw / "scikit_learn_data" / "lfw_home" / "lfw_funneled" / "Ann_Lee"
    (folder / "Ann_Lee_0002.jpg").unlink()
    (folder / "Ann_Lee_0002.jpg").symlink_to(folder / "Ann_Lee_0001.jpg")
    with pytest.raises(CorruptDataError, match="one file twice") as err:
        lfw_load(fake_lfw)
    assert "Ann_Lee_0002.jpg" in str(err.value)


def test_pair_table_pairing_a_row_with_itself_is_refused():
    table = pd.DataFrame({"left": [0, 2], "right": [1, 2], "same": [True, True], "fold": [0, 0]})
    with pytest.raises(ValueError, match=r"pair 1 \(row 2 with itself\)"):
        FaceDataset(images=torch.zeros(4, 1, 4, 4, dtype=torch.uint8), identity=[0, 0, 1, 1], pair_table=table)


# -- 6. unreadable is not damaged ----------------------------------------------------------------
def deny(monkeypatch, module, name: str, under: Path) -> None:
    """Make module.name (open, os.stat, os.listdir) raise EACCES for paths at or under `under`,
    as for a user without read access (root reads everything, so mode 000 cannot show it)."""
    real = getattr(module, name)

    def guarded(path, *a, **k):
        if isinstance(path, (str, os.PathLike)) and Path(os.fspath(path)).is_relative_to(under):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path, *a, **k)

    monkeypatch.setattr(module, name, guarded)


def check_permission_message(err, where: Path) -> None:
    msg = str(err.value)
    assert str(where) in msg and "permission denied" in msg and "chmod" in msg
    assert "not damaged" in msg and "delete" not in msg.lower()


@pytest.fixture
def frey(tmp_path) -> Path:
    return frey_root(tmp_path, np.zeros((560, 2), np.uint8))


def test_unreadable_data_folder_is_named_with_a_fix(frey, monkeypatch):
    folder = frey / "frey_faces"
    deny(monkeypatch, os, "stat", folder)
    with pytest.raises(DataPermissionError) as err:
        load("frey", root=frey)
    check_permission_message(err, folder)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode-000 folder; the monkeypatched test covers it")
def test_mode_000_data_folder_is_named_with_a_fix(frey):
    folder = frey / "frey_faces"
    folder.chmod(0)
    try:
        with pytest.raises(DataPermissionError) as err:
            load("frey", root=frey)
    finally:
        folder.chmod(0o755)
    check_permission_message(err, folder)


@pytest.mark.parametrize("name", ["frey", "yaleb", "olivetti"])
def test_unreadable_file_is_not_called_damaged(tmp_path, frey, monkeypatch, name):
    files = {"frey": frey / "frey_faces" / "frey_rawface.mat",
             "yaleb": tmp_path / "extended_yale_b" / "extended_yale_b_cropped.npz",
             "olivetti": tmp_path / "scikit_learn_data" / "olivetti_py3.pkz"}
    path = files[name]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"any bytes: never read")
    deny(monkeypatch, builtins, "open", path)
    with pytest.raises(DataPermissionError) as err:
        load(name, root=tmp_path, **({"download": False} if name == "olivetti" else {}))
    check_permission_message(err, path)


def test_unreadable_photo_folder_is_named_with_a_fix(photos, monkeypatch):
    deny(monkeypatch, os, "listdir", photos)
    with pytest.raises(DataPermissionError) as err:
        load("folder", path=photos)
    check_permission_message(err, photos)


def test_unreadable_person_folder_and_photo_say_permission_not_damage(photos, monkeypatch):
    deny(monkeypatch, os, "listdir", photos / "bob")
    deny(monkeypatch, builtins, "open", photos / "alice" / "1.png")
    with pytest.raises(UnreadableImageError) as err:
        load("folder", path=photos)
    lines = [ln for ln in str(err.value).splitlines() if "bob" in ln or "1.png" in ln]
    assert len(lines) == 2 and all("permission denied" in ln and "not damaged" in ln for ln in lines), lines
    assert "cannot be decoded" not in str(err.value)
    with pytest.warns(UserWarning, match="permission denied"):
        d = load("folder", path=photos, size=8, skip_unreadable=True)
    assert d.meta["files"] == ["alice/0.png"]
