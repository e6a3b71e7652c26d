"""`python -m facelib data list|fetch|check` (facelib.data.fetch), without internet: a small HTTP
server on 127.0.0.1 serves fake archives built here (good, truncated, wrong checksum, HTTP
errors), and scikit-learn's fetchers are replaced by fakes."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import os
import threading
import urllib.error
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

import facelib.cli
from facelib.data import DataNotFoundError, load
from facelib.data import fetch as F
from facelib.data._common import CorruptDataError
from facelib.registry import UnknownNameError


# -- fake published files -----------------------------------------------------------------------
def _pgm(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buf, format="PPM")  # grey -> binary PGM (P5)
    return buf.getvalue()


#: (file name, 96 x 84 levels); each 192 x 168 image repeats every level over a 2 x 2 block, so the
#: 2x box reduction must give the levels back exactly.
_RNG = np.random.default_rng(0)
YALE_IMAGES = {name: _RNG.integers(0, 256, (96, 84), dtype=np.uint8) for name in
               ["yaleB03_P00A-010E+20.pgm", "yaleB01_P00A+000E+00.pgm", "yaleB01_P00A+130E-40.pgm"]}


def fake_cropped_yale() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("CroppedYale/", "")
        for name, levels in YALE_IMAGES.items():
            zf.writestr(f"CroppedYale/{name[:7]}/{name}", _pgm(np.kron(levels, np.ones((2, 2), np.uint8))))
        # not images of the set: the ambient shot, a corrupted one the release marks .bad, an info file
        zf.writestr("CroppedYale/yaleB01/yaleB01_P00_Ambient.pgm", _pgm(np.zeros((192, 168), np.uint8)))
        zf.writestr("CroppedYale/yaleB01/yaleB01_P00A+050E-40.pgm.bad", b"junk")
        zf.writestr("CroppedYale/yaleB01/yaleB01_P00.info", b"info")
    return buf.getvalue()


def yale_expected() -> dict[str, np.ndarray]:
    """The arrays the conversion must give, written out by hand (file-name order)."""
    names = sorted(YALE_IMAGES)  # yaleB01 +000E+00, yaleB01 +130E-40, yaleB03 -010E+20
    return {"label": np.array([0, 0, 1]), "subject_id": np.array([1, 1, 3]), "azimuth": np.array([0, 130, -10]),
            "elevation": np.array([0, -40, 20]), "filename": np.array(names),
            "images_96x84": np.stack([YALE_IMAGES[n] for n in names])}


FREY_FF = np.random.default_rng(1).integers(0, 256, (560, 5), dtype=np.uint8)


def fake_frey() -> bytes:
    buf = io.BytesIO()
    savemat(buf, {"ff": FREY_FF})
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the server -------------------------------------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, bytes, int | None]] = {}

    def do_GET(self):  # noqa: N802 - http.server's name
        status, body, length = self.routes.get(self.path, (404, b"not found", None))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def server():
    """Base URL of a server on 127.0.0.1; set `routes[path] = (status, body, announced length)`."""
    routes: dict[str, tuple[int, bytes, int | None]] = {}
    handler = type("Handler", (_Handler,), {"routes": routes})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", routes
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def fake_sources(monkeypatch):
    """SOURCES whose known checksums are those of the fake files (the real ones stay for the
    test of the shared copies)."""
    frey_bytes = fake_frey()
    exp = yale_expected()
    yale_labels = F.arrays_sha256(exp, F._YALEB_LABEL_KEYS)
    src = F.SOURCES["yaleb"]
    monkeypatch.setitem(F.SOURCES, "yaleb", dataclasses.replace(src, known=(
        dataclasses.replace(src.known[0], sha256=yale_labels),
        dataclasses.replace(src.known[1], sha256="0" * 64))))  # the pixels: not the reference conversion
    src = F.SOURCES["frey"]
    monkeypatch.setitem(F.SOURCES, "frey", dataclasses.replace(
        src, published_sha256=sha(frey_bytes), known=(dataclasses.replace(src.known[0], sha256=sha(frey_bytes)),)))
    monkeypatch.delenv(F.MIRROR_ENV, raising=False)
    return {"frey": frey_bytes, "yaleb": fake_cropped_yale()}


def left_behind(root: Path) -> set[str]:
    """What a failed fetch left under the data root, besides the lock file of the root."""
    return {str(p.relative_to(root)) for p in root.rglob("*")} - {".lock"} if root.exists() else set()


# -- good downloads ------------------------------------------------------------------------------
def test_fetch_yaleb_converts_the_archive_to_what_load_reads(tmp_path, server, fake_sources):
    url, routes = server
    routes["/CroppedYale.zip"] = (200, fake_sources["yaleb"], None)
    root = tmp_path / "data"
    st = F.fetch("yaleb", root, mirror=url + "/", progress=False)
    assert st.present == "present"
    with np.load(root / F.YALEB_FILE, allow_pickle=False) as z:
        for key, want in yale_expected().items():
            np.testing.assert_array_equal(z[key], want, err_msg=key)
        assert z["images_64x64"].shape == (3, 64, 64) and z["images_64x64"].dtype == np.uint8
    data = load("yaleb", root=root, size=None)
    assert len(data) == 3 and tuple(data.images.shape[-2:]) == (96, 84)
    assert data.factors["azimuth"].tolist() == [0, 130, -10]
    assert data.identity.tolist() == [0, 0, 1]
    assert left_behind(root) == {"extended_yale_b", F.YALEB_FILE}  # no staging folder, no download left
    # the pixels are not the reference conversion's: reported, not a failure
    checked = F.check("yaleb", root)
    assert [c.status for c in checked.checks] == ["ok", "differs"]


def test_fetch_frey_through_the_cli_with_the_mirror_variable(tmp_path, server, fake_sources, monkeypatch, capsys):
    url, routes = server
    routes["/mirror/frey_rawface.mat"] = (200, fake_sources["frey"], None)
    monkeypatch.setenv(F.MIRROR_ENV, url + "/mirror")
    root = tmp_path / "data"
    assert facelib.cli.main(["data", "fetch", "frey", "--root", str(root), "--no-progress"]) == 0
    assert (root / F.FREY_FILE).read_bytes() == fake_sources["frey"]
    data = load("frey", root=root)
    np.testing.assert_array_equal(data.images.numpy()[:, 0], FREY_FF.T.reshape(-1, 28, 20))
    assert "frey: fetched" in capsys.readouterr().out


# -- failed downloads leave nothing ------------------------------------------------------------
@pytest.mark.parametrize("case, message", [
    ("truncated", "cut short: got"),
    ("checksum", "has sha256"),
    ("404", "HTTP 404"),
    ("500", "HTTP 500"),
    ("not a mat file", "not a readable MATLAB file"),
])
def test_failed_frey_download_leaves_no_data_set(tmp_path, server, fake_sources, case, message):
    url, routes = server
    good = fake_sources["frey"]
    if case == "truncated":  # the server announces the whole file and sends half
        routes["/frey_rawface.mat"] = (200, good[: len(good) // 2], len(good))
    elif case == "checksum":
        routes["/frey_rawface.mat"] = (200, good[:-1] + bytes([good[-1] ^ 1]), None)
    elif case in ("404", "500"):
        routes["/frey_rawface.mat"] = (int(case), b"error page", None)
    else:  # right checksum, wrong content: the checksum is what was published for junk
        F.SOURCES["frey"] = dataclasses.replace(F.SOURCES["frey"], published_sha256=sha(b"junk"))
        routes["/frey_rawface.mat"] = (200, b"junk", None)
    root = tmp_path / "data"
    with pytest.raises(F.FetchError, match=message) as err:
        F.fetch("frey", root, mirror=url, progress=False)
    assert "nothing was installed" in str(err.value)
    assert left_behind(root) == set()
    with pytest.raises(DataNotFoundError):
        load("frey", root=root)


@pytest.mark.parametrize("body, message", [
    (b"PK\x03\x04 not really a zip", "not a readable zip archive"),
    ("no images", "holds no yaleBxx"),
    ("bad image", "cannot read"),
])
def test_bad_cropped_yale_archive_leaves_no_data_set(tmp_path, server, fake_sources, body, message):
    url, routes = server
    if body == "no images":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("CroppedYale/readme.txt", "hello")
        body = buf.getvalue()
    elif body == "bad image":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("CroppedYale/yaleB01/yaleB01_P00A+000E+00.pgm", _pgm(np.zeros((10, 10), np.uint8)))
        body = buf.getvalue()
    routes["/CroppedYale.zip"] = (200, body, None)
    root = tmp_path / "data"
    with pytest.raises(F.FetchError, match=message):
        F.fetch("yaleb", root, mirror=url, progress=False)
    assert left_behind(root) == set()


def test_cli_exit_status_of_a_failed_download_is_1_with_one_line(tmp_path, server, fake_sources, capsys):
    url, _ = server  # nothing is served: 404
    rc = facelib.cli.main(["data", "fetch", "frey", "--root", str(tmp_path), "--mirror", url, "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.count("\n") == 1 and "HTTP 404" in err and "--mirror" in err


def test_cli_exit_status_of_an_unknown_name_is_2(tmp_path, capsys):
    assert facelib.cli.main(["data", "fetch", "no-such-set", "--root", str(tmp_path)]) == 2
    assert "fetchable: lfw, olivetti, yaleb, frey" in capsys.readouterr().err
    assert not tmp_path.joinpath(".lock").exists()  # refused before anything was touched


def test_unknown_and_unfetchable_names():
    with pytest.raises(UnknownNameError, match="fetchable"):
        F.source_name("no-such-set")
    with pytest.raises(UnknownNameError, match="rendered by facelib"):
        F.source_name("synthetic")
    assert F.source_name("LFW_pairs") == "lfw" and F.source_name("lfw") == "lfw"


def test_a_present_set_is_replaced_only_with_force(tmp_path, server, fake_sources, capsys):
    url, routes = server
    routes["/frey_rawface.mat"] = (200, fake_sources["frey"], None)
    mine = tmp_path / F.FREY_FILE
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"the user's own file")
    args = ["data", "fetch", "frey", "--root", str(tmp_path), "--mirror", url, "--no-progress"]
    assert facelib.cli.main(args) == 1
    assert "--force" in capsys.readouterr().err
    assert mine.read_bytes() == b"the user's own file"
    assert facelib.cli.main(args + ["--force"]) == 0
    assert mine.read_bytes() == fake_sources["frey"]


# -- list and check ----------------------------------------------------------------------------
def test_list_shows_present_missing_and_mismatch(tmp_path, server, fake_sources, capsys):
    url, routes = server
    routes["/frey_rawface.mat"] = (200, fake_sources["frey"], None)
    F.fetch("frey", tmp_path, mirror=url, progress=False)
    rows = {s.name: s for s in F.statuses(tmp_path)}
    assert set(rows) >= {"frey", "yaleb", "olivetti", "lfw-people", "lfw-pairs", "synthetic", "folder"}
    assert (rows["frey"].present, rows["frey"].checksum, rows["frey"].size) == ("present", "ok",
                                                                                  len(fake_sources["frey"]))
    assert rows["yaleb"].present == "missing" and rows["yaleb"].size is None
    assert "always present" in rows["synthetic"].present and "path=" in rows["folder"].present

    path = tmp_path / F.FREY_FILE  # one changed byte
    data = bytearray(path.read_bytes())
    data[200] ^= 0xFF
    path.write_bytes(bytes(data))
    assert {s.name: s for s in F.statuses(tmp_path)}["frey"].checksum == "MISMATCH"
    assert facelib.cli.main(["data", "list", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    frey_line = next(line for line in out.splitlines() if line.split()[:1] == ["frey"])
    assert "present" in frey_line and "MISMATCH" in frey_line
    assert "yaleb" in next(line for line in out.splitlines() if "fetch" in line and "missing" in line)

    with pytest.raises(CorruptDataError, match=r"frey_rawface.mat has sha256 .* fetch frey --force"):
        F.check("frey", tmp_path)
    assert facelib.cli.main(["data", "check", "frey", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "python -m facelib data fetch frey --force" in err


def test_check_of_a_missing_set_names_the_fetch_command(tmp_path):
    with pytest.raises(DataNotFoundError, match="python -m facelib data fetch yaleb"):
        F.check("yaleb", tmp_path)


# -- scikit-learn's fetchers (replaced: no internet) ---------------------------------------------
def test_olivetti_through_scikit_learn(tmp_path, monkeypatch):
    faces = np.random.default_rng(2).integers(0, 243, (400, 4096), dtype=np.uint8)
    homes = []

    def fake_fetch(*, data_home, download_if_missing):
        assert download_if_missing is True
        homes.append(Path(data_home))
        Path(data_home).mkdir(parents=True, exist_ok=True)
        joblib.dump(faces, Path(data_home) / "olivetti_py3.pkz", compress=6)

    monkeypatch.setattr(F, "fetch_olivetti_faces", fake_fetch)
    src = F.SOURCES["olivetti"]
    monkeypatch.setitem(F.SOURCES, "olivetti", dataclasses.replace(
        src, known=(dataclasses.replace(src.known[0], sha256=F.arrays_sha256({"faces": faces}, ("faces",))),)))
    root = tmp_path / "data"
    F.fetch("olivetti", root, progress=False)
    # scikit-learn wrote into a scikit_learn_data folder staged inside the data root, then moved into place
    assert homes[0].name == "scikit_learn_data" and homes[0].parent.parent == root
    assert left_behind(root) == {"scikit_learn_data", "scikit_learn_data/olivetti_py3.pkz"}
    assert len(load("olivetti", root=root, download=False)) == 400
    assert F.check("olivetti", root).checks[0].status == "ok"


def test_olivetti_fetch_failure_says_what_to_do(tmp_path, monkeypatch):
    def offline(*, data_home, download_if_missing):
        Path(data_home).mkdir(parents=True, exist_ok=True)
        (Path(data_home) / "olivettifaces.mat.part").write_bytes(b"half")
        raise urllib.error.URLError("no internet")

    monkeypatch.setattr(F, "fetch_olivetti_faces", offline)
    root = tmp_path / "data"
    with pytest.raises(F.FetchError, match=r"scikit-learn could not fetch olivetti .*no internet.*internet "
                                           r"connection.*nothing was installed"):
        F.fetch("olivetti", root, progress=False)
    assert left_behind(root) == set()


def test_lfw_through_scikit_learn(tmp_path, monkeypatch):
    pair_lists = {f: f"fake {f}\n".encode() for f in F.LFW_PAIR_FILES.values()}
    homes = []

    def fake_fetch(*, subset, data_home, download_if_missing):
        homes.append((subset, Path(data_home)))
        home = Path(data_home) / "lfw_home"
        (home / "lfw_funneled" / "Ann_Bee").mkdir(parents=True)
        (home / "lfw_funneled" / "Ann_Bee" / "Ann_Bee_0001.jpg").write_bytes(b"jpeg")
        (home / "joblib").mkdir()  # scikit-learn's own cache: not installed
        for name, data in pair_lists.items():
            (home / name).write_bytes(data)

    monkeypatch.setattr(F, "fetch_lfw_pairs", fake_fetch)
    src = F.SOURCES["lfw"]
    known = tuple(dataclasses.replace(k, sha256=sha(pair_lists[Path(k.path).name])) if k.kind == "file" else k
                  for k in src.known)
    monkeypatch.setitem(F.SOURCES, "lfw", dataclasses.replace(src, known=known))
    root = tmp_path / "data"
    F.fetch("lfw-people", root, progress=False)
    assert homes[0][0] == "10_folds" and homes[0][1].name == "scikit_learn_data" and homes[0][1].parent.parent == root
    lfw_home = root / "scikit_learn_data" / "lfw_home"
    assert sorted(p.name for p in lfw_home.iterdir()) == sorted([*pair_lists, "lfw_funneled"])
    rows = {s.name: s for s in F.statuses(root)}
    assert rows["lfw-pairs"].present == "present"
    assert rows["lfw-pairs"].checksum == "ok (differs from the reference copy)"  # not the deep-funneled images


def test_lfw_with_wrong_pair_lists_is_not_installed(tmp_path, monkeypatch):
    def fake_fetch(*, subset, data_home, download_if_missing):
        home = Path(data_home) / "lfw_home"
        (home / "lfw_funneled").mkdir(parents=True)
        for name in F.LFW_PAIR_FILES.values():
            (home / name).write_bytes(b"not the published list")

    monkeypatch.setattr(F, "fetch_lfw_pairs", fake_fetch)
    with pytest.raises(F.FetchError, match="pairsDevTrain.txt MISMATCH"):
        F.fetch("lfw", tmp_path, progress=False)
    assert left_behind(tmp_path) == set()


# -- loaders' "not found" messages --------------------------------------------------------------
@pytest.mark.parametrize("name, options", [("frey", {}), ("yaleb", {}), ("olivetti", {"download": False}),
                                           ("lfw-pairs", {"download": False}),
                                           ("lfw-people", {"download": False})])
def test_not_found_names_the_fetch_command(tmp_path, name, options):
    with pytest.raises(DataNotFoundError) as err:
        load(name, root=tmp_path, **options)
    text = str(err.value)
    assert f"python -m facelib data fetch {F.source_name(name)}" in text  # lfw-* -> "lfw"
    assert "README" not in text and "shared/data" not in text


# -- the shared copies match what `list` expects --------------------------------------------------
@pytest.mark.parametrize("key", list(F.SOURCES))
def test_checksums_of_the_real_data(key):
    env = os.environ.get("FACELIB_DATA")
    if not env:
        pytest.skip("FACELIB_DATA is not set")
    root = Path(env)
    source = F.SOURCES[key]
    if not all((root / p).exists() for p in source.paths):
        pytest.skip(f"{key} is not under FACELIB_DATA={root}")
    checked = F.check(key, root)
    assert [(c.known.label, c.status) for c in checked.checks] == [(k.label, "ok") for k in source.known]
