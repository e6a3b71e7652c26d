"""Verification numbers and the `lfw` command under the cases of issue #32.

* `roc.tar_curve` follows the ROC polyline (scikit-learn's `roc_curve` read with np.interp), with
  and without tied scores, and never rises above it between ROC points;
* View 2's ROC table is recomputed from stored pair scores and agrees with scikit-learn;
* `lfw report` refuses repeated, missing and foreign folds and parts that are not parts;
* `lfw view2 --test-folds` is checked when parsed, and every output is probed before any work;
* a pair table given to a protocol never pairs an image with itself (it would score as a match).

LFW is replaced by the stand-in of test_verify_selection (same shapes, ten person-disjoint folds).
"""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import sem
from sklearn.metrics import roc_curve

from facelib import results as R
from facelib.cli import main
from facelib.verify import protocols as P
from facelib.verify import scores as S
from facelib.verify import lfw_cli
from facelib.verify import roc
from facelib.verify import selection as L

from test_verify_selection import PIXELS, fake_lfw


def sklearn_tar(same, scores, fars) -> np.ndarray:
    """The reference: scikit-learn's full ROC read at `fars` by linear interpolation."""
    fpr, tpr, _ = roc_curve(same, scores, drop_intermediate=False)
    return np.interp(fars, fpr, tpr)


def reachable_tar(same, scores, far) -> float:
    """The highest TAR of a threshold (accept score >= t) whose FAR is at most `far`, by brute force."""
    same, scores = np.asarray(same, bool), np.asarray(scores, float)
    best = 0.0
    for t in np.r_[np.inf, np.unique(scores)]:
        accept = scores >= t
        if accept[~same].mean() <= far + 1e-12:
            best = max(best, accept[same].mean())
    return best


# ---------------------------------------------------------------- tar_curve


def test_tar_curve_between_roc_points_is_on_the_curve_not_above_it():
    # ROC (0, 0) (0, 1/2) (1/2, 1/2) (1/2, 1) (1, 1): flat at 1/2 between FAR 0 and 1/2
    assert roc.tar_curve([1, 0, 1, 0], [3, 2, 1, 0], [0.25]) == pytest.approx([0.5])
    np.testing.assert_allclose(roc.tar_curve([1, 0, 1, 0], [3, 2, 1, 0], [0, 0.5, 0.75, 1]), [0.5, 1, 1, 1])
    # a tie of one same and one different pair: the diagonal across it (accepting it at random)
    np.testing.assert_allclose(roc.tar_curve([1, 1, 0, 0], [2, 1, 1, 0], [0.25, 0.5]), [0.75, 1.0])


@pytest.mark.parametrize("ties", [False, True], ids=["distinct-scores", "many-ties"])
def test_tar_curve_is_sklearns_roc_read_at_each_far(ties):
    rng = np.random.default_rng(7 + ties)
    for _ in range(40):
        n = int(rng.integers(8, 400))
        same = rng.random(n) < rng.uniform(0.2, 0.8)
        same[:2] = [True, False]
        s = rng.normal(size=n) + rng.uniform(0, 2) * same
        if ties:
            s = np.round(s * rng.choice([1, 2]))  # a handful of distinct values
            assert np.unique(s).size < n / 3 or n < 30
        n_neg = int((~same).sum())
        vertices = np.arange(n_neg + 1) / n_neg  # FARs a threshold can reach (if the scores allow)
        fars = np.unique(np.r_[roc.ROC_FARS, vertices, (vertices[1:] + vertices[:-1]) / 2, rng.random(30)])
        got = roc.tar_curve(same, s, fars)
        np.testing.assert_allclose(got, sklearn_tar(same, s, fars), atol=1e-12)
        assert np.all(np.diff(got) >= -1e-12)
        # at a FAR a threshold reaches, the TAR that threshold gives: the top of the vertical step
        fpr = roc_curve(same, s, drop_intermediate=False)[0]
        for far in np.unique(fpr)[:12]:
            assert roc.tar_curve(same, s, [far])[0] == pytest.approx(reachable_tar(same, s, far))
            assert roc.tar_curve(same, s, [far])[0] == pytest.approx(roc.tar_at_far(same, s, far))


def test_tar_curve_rows_of_a_protocol_match_sklearn():
    rng = np.random.default_rng(3)
    same = rng.random(600) < 0.5
    s = np.round(rng.normal(size=600) + same, 1)
    m = roc.verification_metrics(same, s, roc_fars=roc.ROC_FARS)
    got = [m[f"roc_tar@far={f:g}"] for f in roc.ROC_FARS]
    np.testing.assert_allclose(got, sklearn_tar(same, s, roc.ROC_FARS), atol=1e-12)


# ---------------------------------------------------------------- View 2 ROC from stored scores

#: One image-restricted and one unrestricted pixels system, of two image sizes (two loads of View 2
#: whose scores are stored side by side, as the real frozen choice's are).
SYSTEMS = [PIXELS[0], L.LFWSetting("pixels", "unrestricted", 12, 100, pca=None, plda=5)]


def frozen_file(path: Path, settings=SYSTEMS) -> Path:
    """A frozen choice of `settings` without running View 1 (made-up View 1 figures)."""
    view1 = pd.DataFrame([{"setting_json": s.key(), "metric": m, "value": v} for s in settings
                          for m, v in (("accuracy", 0.7), ("auc", 0.8), ("eer", 0.3))])
    return L.freeze(settings, view1, path)


def fake_scores(frozen: Path, n_per_fold: int = 30, folds=L.VIEW2_FOLDS, seed: int = 0) -> pd.DataFrame:
    """Stored View 2 pair scores as `run_view2(with_scores=True)` makes them: one system with
    distinct scores, one with heavily tied ones."""
    rng = np.random.default_rng(seed)
    _, sha = L.read_frozen(frozen)
    rows = []
    for k in folds:
        same = np.r_[np.ones(n_per_fold // 2, bool), np.zeros(n_per_fold - n_per_fold // 2, bool)]
        rows.append(pd.DataFrame({"fold": k, "pair": k * n_per_fold + np.arange(n_per_fold), "same": same,
                                  "frozen_sha256": sha,
                                  L.score_column(SYSTEMS[0]): rng.normal(size=n_per_fold) + same,
                                  L.score_column(SYSTEMS[1]): np.round(rng.normal(size=n_per_fold) + same)}))
    return pd.concat(rows, ignore_index=True)


def reference_roc(scores: pd.DataFrame, column: str, fars=roc.ROC_FARS) -> tuple[np.ndarray, np.ndarray]:
    """(mean, standard error) over folds of each fold's scikit-learn ROC at `fars`."""
    per_fold = np.array([sklearn_tar(f["same"].to_numpy(bool), f[column].to_numpy(float), fars)
                         for _, f in scores.groupby("fold")])
    return per_fold.mean(axis=0), sem(per_fold, axis=0)


def of_system(table: pd.DataFrame, s: L.LFWSetting) -> pd.DataFrame:
    """A ROC table's rows of one frozen system (its description and its LFW category), by FAR."""
    return table[(table.system == s.describe()) & (table.category == s.category)].sort_values("far")


def test_roc_table_from_scores_is_sklearns_roc_averaged_over_folds(tmp_path):
    frozen = frozen_file(tmp_path / "frozen.json")
    scores = fake_scores(frozen)
    R.write(lfw_cli.SCORES, scores, folder=tmp_path)  # through the file, as `lfw roc` reads it
    back = pd.read_csv(tmp_path / f"{lfw_cli.SCORES}.csv")
    table = L.roc_table_from_scores(back, frozen)
    assert set(table.folds) == {10} and len(table) == len(SYSTEMS) * len(roc.ROC_FARS)
    for s in SYSTEMS:
        mine = of_system(table, s)
        mean, se = reference_roc(scores, L.score_column(s))
        np.testing.assert_allclose(mine.far, roc.ROC_FARS)
        np.testing.assert_allclose(mine.tar, mean, atol=1e-12)
        np.testing.assert_allclose(mine.tar_se, se, atol=1e-12)
        assert set(mine.category) == {s.category}


def pair_list(scores: pd.DataFrame) -> pd.DataFrame:
    """The View 2 pair list the fake scores were made from (same and fold by pair)."""
    return scores.set_index("pair")[["same", "fold"]].rename_axis(None)


def test_lfw_roc_command_rewrites_the_roc_file_from_the_scores(tmp_path, capsys, monkeypatch):
    res = tmp_path / "results"
    frozen = frozen_file(res / lfw_cli.FROZEN)
    scores = fake_scores(frozen, seed=1)
    monkeypatch.setattr(L, "view2_pair_table", lambda: pair_list(scores))
    R.write(lfw_cli.SCORES, scores, folder=res)
    assert main(["lfw", "--results", str(res), "roc"]) == 0
    written = pd.read_csv(res / "lfw_view2_roc.csv")
    assert {"commit", "command"} <= set(written.columns)
    for s in SYSTEMS:
        mine = of_system(written, s)
        np.testing.assert_allclose(mine.tar, reference_roc(scores, L.score_column(s))[0], atol=1e-12)
    # scores of nine folds, or without a system's column, are refused with what is wrong
    R.write(lfw_cli.SCORES, scores[scores.fold != 3], folder=res)
    assert main(["lfw", "--results", str(res), "roc"]) == 2  # a bad value: exit 2, one line on stderr
    assert "fold(s) [3] are missing" in capsys.readouterr().err
    R.write(lfw_cli.SCORES, scores.drop(columns=[L.score_column(SYSTEMS[1])]), folder=res)
    assert main(["lfw", "--results", str(res), "roc"]) == 2
    err = capsys.readouterr().err
    assert "no column" in err and L.score_column(SYSTEMS[1]) in err
    bad = scores.drop(columns=["same"])
    bad.to_csv(tmp_path / "bad.csv", index=False)
    assert main(["lfw", "--results", str(res), "roc", "--scores", str(tmp_path / "bad.csv")]) == 2
    assert "lack column(s) ['same']" in capsys.readouterr().err
    (tmp_path / "empty.csv").write_text("")  # the issue's `lfw roc --scores empty.csv`
    assert main(["lfw", "--results", str(res), "roc", "--scores", str(tmp_path / "empty.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("facelib lfw: error:") and "lfw view2" in err, err
    assert main(["lfw", "--results", str(res), "roc", "--scores", str(tmp_path / "none.csv")]) == 1  # no file
    assert "no View 2 pair scores" in capsys.readouterr().err


def test_stored_scores_of_a_full_view2_run_stay_a_few_megabytes(tmp_path):
    """Four systems x 6,000 pairs, with provenance on every row, as `lfw report` writes them."""
    frozen = frozen_file(tmp_path / "frozen.json")
    _, sha = L.read_frozen(frozen)
    rng = np.random.default_rng(0)
    n = 6000
    table = pd.DataFrame({"fold": np.arange(n) // 600, "pair": np.arange(n), "same": np.arange(n) % 600 < 300,
                          "frozen_sha256": sha, **{f"plda system {i} | a long description of its representation, "
                                                  f"PCA 200, PLDA 100": rng.normal(size=n) * 40 for i in range(4)}})
    path = R.write(lfw_cli.SCORES, table, command="python -m facelib lfw report runs/lfw/view2_a.csv "
                                                   "runs/lfw/view2_b.csv", folder=tmp_path)
    assert path.stat().st_size < 3e6


# ---------------------------------------------------------------- the lfw command on the stand-in


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """Two real parts (folds 0-4 and 5-9) of the stand-in View 2 with SYSTEMS frozen, run once."""
    root = tmp_path_factory.mktemp("lfw")
    res = root / "results"
    frozen_file(res / lfw_cli.FROZEN)
    a, b = root / "a.csv", root / "b.csv"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(L, "_load", lambda *args, **kw: fake_lfw(*args, **kw))
        for out, folds in ((a, range(5)), (b, range(5, 10))):
            assert main(["lfw", "--results", str(res), "view2", "--test-folds", *map(str, folds),
                         "--out", str(out)]) == 0
    return res, a, b


def fresh_results(tmp_path: Path, res: Path) -> Path:
    """A results folder holding only the frozen choice of `res`."""
    out = tmp_path / "results"
    out.mkdir()
    (out / lfw_cli.FROZEN).write_bytes((res / lfw_cli.FROZEN).read_bytes())
    return out


def test_parts_store_their_pair_scores_and_report_recomputes_the_roc_from_them(parts, tmp_path):
    res0, a, b = parts
    res = fresh_results(tmp_path, res0)
    assert lfw_cli.scores_path(a) == a.with_name("a.scores.csv") and lfw_cli.scores_path(a).is_file()
    assert main(["lfw", "--results", str(res), "report", str(a), str(b)]) == 0
    stored = pd.read_csv(res / f"{lfw_cli.SCORES}.csv")
    assert sorted(stored.fold.unique()) == list(range(10)) and len(stored) == len(fake_lfw("10_folds", 16, 100, False)
                                                                                  .pair_table)
    written = pd.read_csv(res / "lfw_view2_roc.csv")
    folds = pd.read_csv(res / "lfw_view2_folds.csv")
    for s in SYSTEMS:
        mine = of_system(written, s)
        mean, se = reference_roc(stored, L.score_column(s))
        np.testing.assert_allclose(mine.tar, mean, atol=1e-12)
        np.testing.assert_allclose(mine.tar_se, se, atol=1e-12)
        # the per-fold rows of the run say the same as their stored scores
        method, rep = L._label(s)
        at = folds[(folds.method == method) & (folds.representation == rep) & (folds.metric == "roc_tar@far=0.05")]
        assert mine[mine.far == 0.05].tar.iloc[0] == pytest.approx(at.value.mean(), abs=1e-12)
        auc = folds[(folds.method == method) & (folds.representation == rep) & (folds.metric == "auc")]
        from_scores = [roc.auc(f["same"], f[L.score_column(s)]) for _, f in stored.groupby("fold")]
        np.testing.assert_allclose(auc.sort_values("fold").value, from_scores, atol=1e-12)


def test_report_refuses_a_part_given_twice_naming_folds_and_parts(parts, tmp_path, capsys):
    res0, a, b = parts
    res = fresh_results(tmp_path, res0)
    assert main(["lfw", "--results", str(res), "report", str(a), str(b), str(a)]) == 2
    err = capsys.readouterr().err
    assert "fold(s) [0, 1, 2, 3, 4] come from more than one part" in err and f"fold 0 in {a}, {a}" in err
    assert not (res / "lfw_view2.csv").exists() and not (res / "lfw_view2_roc.csv").exists()


def test_report_refuses_missing_folds_naming_them(parts, tmp_path, capsys):
    res0, a, _ = parts
    res = fresh_results(tmp_path, res0)
    assert main(["lfw", "--results", str(res), "report", str(a)]) == 2
    err = capsys.readouterr().err
    assert "fold(s) [5, 6, 7, 8, 9] are missing" in err and "--test-folds 5 6 7 8 9" in err
    assert not (res / "lfw_view2.csv").exists()


def test_report_refuses_folds_that_view2_lacks(parts, tmp_path, capsys):
    res0, a, b = parts
    res = fresh_results(tmp_path, res0)
    rows, scores = pd.read_csv(b), pd.read_csv(lfw_cli.scores_path(b))
    c = tmp_path / "c.csv"
    rows.assign(fold=rows.fold + 10).to_csv(c, index=False)
    scores.assign(fold=scores.fold + 10).to_csv(lfw_cli.scores_path(c), index=False)
    assert main(["lfw", "--results", str(res), "report", str(a), str(b), str(c)]) == 2
    assert "fold(s) [15, 16, 17, 18, 19] are not View 2 folds" in capsys.readouterr().err


def test_report_names_the_columns_a_part_lacks(parts, tmp_path, capsys):
    res0, a, b = parts
    res = fresh_results(tmp_path, res0)
    c = tmp_path / "c.csv"
    pd.read_csv(b).drop(columns=["metric", "value"]).to_csv(c, index=False)
    assert main(["lfw", "--results", str(res), "report", str(a), str(c)]) == 2
    err = capsys.readouterr().err
    assert f"{c} lacks column(s) ['metric', 'value']" in err and "lfw view2 --out" in err
    # a part without its pair scores (written before they were stored) must be rerun
    d = tmp_path / "d.csv"
    d.write_bytes(b.read_bytes())
    assert main(["lfw", "--results", str(res), "report", str(a), str(d)]) == 1  # a missing file: run time
    assert "no pair scores beside it" in capsys.readouterr().err
    assert not (res / "lfw_view2.csv").exists()


@pytest.mark.parametrize("folds, said", [(["11"], ["[11] are not View 2 folds", "folds 0-9"]),
                                         (["-1", "3"], ["[-1] are not View 2 folds"]),
                                         (["2", "3", "2"], ["[2] given more than once"])])
def test_view2_checks_test_folds_when_parsing(folds, said, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(L, "run_view2", lambda *a, **k: pytest.fail("View 2 ran with bad --test-folds"))
    assert main(["lfw", "--results", str(tmp_path), "view2", "--test-folds", *folds, "--out",
                 str(tmp_path / "a.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("facelib lfw: error: argument --test-folds:"), err
    assert all(p in err for p in said) and "--help" in err, err


def test_run_view2_refuses_folds_view2_lacks_before_loading(tmp_path, monkeypatch):
    frozen = frozen_file(tmp_path / "frozen.json")
    monkeypatch.setattr(L, "_load", lambda *a, **k: pytest.fail("LFW loaded for a fold View 2 lacks"))
    with pytest.raises(ValueError, match=r"\[11\] are not View 2 folds"):
        L.run_view2(frozen, test_folds=[0, 11])


def read_only(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    return folder


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a View 1 selection or View 2 run starts."""
    for name in ("run_view2", "select", "evaluate_view1"):
        monkeypatch.setattr(L, name, lambda *a, _n=name, **k: pytest.fail(f"{_n} ran before the output was probed"))


def test_every_output_of_the_lfw_command_is_probed_before_the_work(parts, tmp_path, capsys, no_work):
    res0, a, b = parts
    res = fresh_results(tmp_path, res0)
    try:
        locked = read_only(tmp_path / "locked")
        out_case = ["view2", "--test-folds", "0", "--out", str(locked / "part.csv")]
        assert main(["lfw", "--results", str(res), *out_case]) == 1  # an unwritable folder: a run-time failure
        said = capsys.readouterr().err
        assert "--out folder" in said and "read-only" in said and "choose a writable --out folder" in said
        for i, args in enumerate([["view2", "--out", str(tmp_path / "ok" / "part.csv")],  # all folds: results too
                                  ["view2"], ["select", "--overwrite"], ["select", "--append"],
                                  ["report", str(a), str(b)], ["roc"]]):
            ro = read_only_copy(res, tmp_path / f"ro{i}")
            assert main(["lfw", "--results", str(ro), *args]) == 1, args
            said = capsys.readouterr().err
            assert "results folder" in said and "read-only" in said and "choose a writable" in said, (args, said)
        assert not (tmp_path / "ok" / "part.csv").exists()
        assert main(["lfw", "--results", str(res), "view2", "--test-folds", "0", "--out", str(tmp_path)]) == 1
        assert "is a folder" in capsys.readouterr().err
    finally:
        for p in [tmp_path, *tmp_path.rglob("*")]:
            if p.is_dir():
                p.chmod(stat.S_IRWXU)


def read_only_copy(res: Path, to: Path) -> Path:
    """A read-only results folder holding `res`'s files and stored scores."""
    to.mkdir()
    for f in res.iterdir():
        (to / f.name).write_bytes(f.read_bytes())
    R.write(lfw_cli.SCORES, fake_scores(to / lfw_cli.FROZEN), folder=to)
    return read_only(to)


# ---------------------------------------------------------------- pairs of an image with itself


def test_a_protocol_refuses_a_pair_of_an_image_with_itself():
    """A pair table with left == right passed to a protocol was scored (a perfect match whatever
    the model); the table check that every protocol runs refuses it, naming the pair."""
    rng = np.random.default_rng(0)
    E = rng.normal(size=(40, 6))
    identity = np.repeat(np.arange(10), 4)
    table = pd.DataFrame({"left": np.arange(0, 40, 2), "right": np.arange(1, 40, 2),
                          "same": np.arange(20) % 4 < 2, "fold": np.arange(20) % 2})
    P.evaluate(None, {"cos": S.CosineScore()}, P.Folds(E, table))  # distinct rows: fine
    table.loc[5, "right"] = table.loc[5, "left"]
    for run in (lambda: P.evaluate(None, {"cos": S.CosineScore()}, P.Folds(E, table)),
                lambda: P.evaluate(None, {"cos": S.CosineScore()},
                                   P.Split(E, table[table.fold == 0], table[table.fold == 1])),
                lambda: P.evaluate(None, {"plda": S.TwoCovarianceScore(n_components=3)},
                                   P.Folds(E, table, identity=identity, labels="unrestricted"))):
        with pytest.raises(ValueError, match=rf"pair 5 \(row {table.left[5]} with itself\).*remove them"):
            run()


# -- leakage between training and test pairs is refused (issue #41, 3) ----------------------------
def _people_folds(n_folds=10, per_fold=4, d=5, seed=0):
    """Pairs over folds disjoint in people: fold k holds people 2k and 2k+1, half same, half different."""
    rng = np.random.default_rng(seed)
    rows, ident = [], []
    for k in range(n_folds):
        for i in range(per_fold):
            a, b = 2 * k, 2 * k + (i % 2)  # same pairs on even i
            ident += [a, b]
            rows.append((len(ident) - 2, len(ident) - 1, i % 2 == 0, k))
    emb = rng.normal(size=(len(ident), d)) + np.asarray(ident)[:, None]
    return emb, np.asarray(ident), pd.DataFrame(rows, columns=["left", "right", "same", "fold"])


def test_a_pair_in_two_folds_or_twice_in_one_is_refused_naming_it():
    emb, ident, table = _people_folds()
    P.View2(emb, table, identity=ident)  # the clean table passes
    moved = pd.concat([table, table.iloc[[0]].assign(fold=1)], ignore_index=True)  # pair 0 in folds 0 and 1
    with pytest.raises(ValueError, match=r"repeat the same two images: pair 0 \(0, 1, fold 0\), pair 40 \(0, 1, fold 1\)"):
        P.View2(emb, moved)
    twice = pd.concat([table, table.iloc[[5]].rename(index={5: 99})])
    with pytest.raises(ValueError, match=r"pair 5 \(10, 11, fold 1\), pair 99 \(10, 11, fold 1\)"):
        P.Folds(emb, twice)
    everywhere = pd.concat([table.assign(fold=k) for k in range(10)], ignore_index=True)  # every pair in all folds
    with pytest.raises(ValueError, match="repeat the same two images"):
        P.View2(emb, everywhere)


def test_training_on_the_test_pairs_is_refused():
    """evaluate(Split(E, tr, tr)) scored LDA at 0.82 on its own training pairs."""
    emb, ident, table = _people_folds()
    tr, te = table[table.fold < 5], table[table.fold >= 5]
    P.evaluate(None, ["cosine"], P.Split(emb, tr, te))
    with pytest.raises(ValueError, match=r"split fold 0: 20 test pair\(s\) use images the training pairs use: pair 0 "
                                         r"\(0, 1\)"):
        P.evaluate(None, ["mahalanobis"], P.Split(emb, tr, tr))
    leaky = pd.concat([te, tr.iloc[[3]].assign(left=79)])  # a test pair with a training image (row 7)
    with pytest.raises(ValueError, match=r"pair 3 \(79, 7\).*images 7"):
        P.evaluate(None, ["cosine"], P.Split(emb, tr, leaky))


def test_a_person_in_two_view2_folds_and_uneven_folds_are_refused_naming_them():
    emb, ident, table = _people_folds()
    ident2 = ident.copy()
    ident2[ident == 3] = 0  # person 3 (fold 1) is person 0 (fold 0)
    table2 = table.copy()
    table2["same"] = ident2[table2.left] == ident2[table2.right]
    with pytest.raises(ValueError, match=r"1 person\(s\) appear in more than one fold: person 0 in folds \[0, 1\]"):
        P.View2(emb, table2, identity=ident2)
    P.Folds(emb, table2, identity=ident2)  # a plain k-fold does not promise people-disjoint folds
    half = table.drop(index=table.index[(table.fold == 3) & ~table.same])  # fold 3 lost its different pairs
    with pytest.raises(ValueError, match=r"fold 3: 2 same \+ 0 different"):
        P.View2(emb, half)


def test_labels_that_contradict_the_identities_are_refused_naming_the_pairs():
    emb, ident, table = _people_folds()
    flipped = table.copy()
    flipped.loc[6, "same"] = not flipped.loc[6, "same"]
    with pytest.raises(ValueError, match=r"pair 6 \(rows 12, 13: people 2, 2, same=False\)"):
        P.View2(emb, flipped, identity=ident)
    with pytest.raises(ValueError, match=r"pair 6 \(rows 12, 13"):
        P.Split(emb, table[table.fold >= 5], flipped[flipped.fold < 2], identity=ident)
    bad = table.copy()
    bad.loc[0, "right"] = len(emb)
    with pytest.raises(IndexError, match=f"outside 0..{len(emb) - 1}"):
        P.View2(emb, bad)


def test_lfw_roc_refuses_half_a_fold_or_a_fold_with_flipped_labels(tmp_path, capsys, monkeypatch):
    """Only whole missing folds were refused: half of fold 3, or fold 5 with every label flipped,
    went into the ROC."""
    res = tmp_path / "results"
    frozen = frozen_file(res / lfw_cli.FROZEN)
    scores = fake_scores(frozen, seed=1)
    monkeypatch.setattr(L, "view2_pair_table", lambda: pair_list(scores))
    half = scores.drop(index=scores.index[(scores.fold == 3) & (scores.pair % 2 == 0)])
    R.write(lfw_cli.SCORES, half, folder=res)
    assert main(["lfw", "--results", str(res), "roc"]) == 2
    assert "hold part of a fold: fold 3: 7 same + 8 different of 15 + 15" in capsys.readouterr().err
    flipped = scores.copy()
    flipped.loc[flipped.fold == 5, "same"] = ~flipped.loc[flipped.fold == 5, "same"]
    R.write(lfw_cli.SCORES, flipped, folder=res)
    assert main(["lfw", "--results", str(res), "roc"]) == 2
    err = capsys.readouterr().err
    assert "contradict View 2's pair list: 30 pair(s) in fold(s) [5]" in err, err
    with pytest.raises(ValueError, match=r"fewer pairs than the others \(15 same \+ 15 different\): fold 3: 7 same"):
        L.check_scores(half)  # without the pair list (a part's scores): the folds must be alike
    assert not (res / "lfw_view2_roc.csv").exists()
    monkeypatch.undo()
    try:
        t = L.view2_pair_table()  # LFW's own list (the shared data): 300 + 300 per fold
    except FileNotFoundError:
        pytest.skip("LFW is not under the data root")
    counts = t.groupby("fold")["same"].agg(["sum", "size"])
    assert (counts["sum"] == L.VIEW2_PAIRS_PER_FOLD[0]).all() and (counts["size"] == sum(L.VIEW2_PAIRS_PER_FOLD)).all()
