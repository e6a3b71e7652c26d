"""LFW development on View 1, frozen settings, one View 2 run (facelib.verify.selection, lfw_cli).

The protocol is exercised on a stand-in for LFW with the same shapes (pair lists for View 1's
train/test and View 2's ten person-disjoint folds, `people=True` extra images), so the tests
check what the functions look at and fit on, not LFW's figures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from facelib.data import FaceDataset
from facelib.verify import selection as L
from facelib.verify.categories import lfw_category

from conftest import user_module

SUBSET_SEEDS = {"train": 1, "test": 2, "10_folds": 3}


def fake_lfw(subset: str, size: int, crop: int, people: bool, root=None, *, calls=None) -> FaceDataset:
    """Faces = a person's template + noise; pairs within person-disjoint folds (10 for View 2)."""
    if calls is not None:
        calls.append(subset)
    rng = np.random.default_rng(SUBSET_SEEDS[subset])
    n_folds, per_fold = (10, 8) if subset == "10_folds" else (1, 24)
    templates = rng.uniform(60, 200, size=(n_folds * per_fold, 1, size, size))

    def face(p):
        return np.clip(templates[p] + rng.normal(0, 25, templates[p].shape), 0, 255)

    imgs, ids, rows = [], [], []
    for f in range(n_folds):
        folk = np.arange(f * per_fold, (f + 1) * per_fold)
        for i in range(per_fold):  # one same and one different pair per person
            a = folk[i]
            b = folk[(i + 1) % per_fold]
            for left, right, same in ((a, a, True), (a, b, False)):
                rows.append((len(imgs), len(imgs) + 1, same, f))
                imgs += [face(left), face(right)]
                ids += [left, right]
    if people:
        for p in range(n_folds * per_fold):
            imgs += [face(p), face(p)]
            ids += [p, p]
    table = pd.DataFrame(rows, columns=["left", "right", "same", "fold"])
    return FaceDataset(images=torch.as_tensor(np.stack(imgs)).to(torch.uint8), identity=np.asarray(ids),
                       name="lfw-pairs", pair_table=table)


@pytest.fixture
def lfw(monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(L, "_load", lambda *a, **k: fake_lfw(*a, calls=calls, **k))
    return calls


PIXELS = [L.LFWSetting("pixels", s, 16, 100, pca=None, plda=k, estimator=e, length_norm=ln)
          for s, e, ln in (("image-restricted", "moments", False), ("image-restricted", "moments", True),
                           ("unrestricted", "moments", False), ("unrestricted", "em", True))
          for k in (5, 20)]


def test_setting_validates_and_round_trips():
    s = L.LFWSetting("patch-vae-fisher", "unrestricted", 64, 120, patch={"epochs": 2}, fisher={"n_components": 8},
                     estimator="em")
    assert L.LFWSetting.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert s.category == "unrestricted, no outside data"
    assert s.patch_params["epochs"] == 2 and s.patch_params["patch"] == 12
    assert s.fisher_params["local_dim"] == s.patch_params["latent_dim"]
    with pytest.raises(ValueError, match="needs identity labels"):
        L.LFWSetting(setting="image-restricted", estimator="em")
    with pytest.raises(ValueError, match="go with family 'patch-vae'"):
        L.LFWSetting("patch-vae-fisher", patch={"scales": (32,)})
    pyramid = L.LFWSetting("patch-vae", patch={"scales": (32,)})
    back = L.LFWSetting.from_dict(json.loads(json.dumps(pyramid.to_dict())))   # scales come back a list
    assert back.key() == pyramid.key() and back == pyramid
    assert pyramid.representation_key() == L.LFWSetting("patch-vae").representation_key()  # one VAE fit
    assert "also read at 32 px" in pyramid.describe()
    with pytest.raises(ValueError, match="unknown patch parameter"):
        L.LFWSetting(patch={"pach": 12})
    with pytest.raises(ValueError, match="unknown fisher parameter"):
        L.LFWSetting(fisher={"k": 12})
    with pytest.raises(ValueError, match="family must be one of"):
        L.LFWSetting("eigen")
    with pytest.raises(ValueError, match="unknown LFWSetting field"):
        L.LFWSetting.from_dict({"famly": "pixels"})


def test_search_spaces_are_valid_and_cover_every_family_and_setting():
    for profile in ("quick", "full"):
        space = L.candidates(profile)
        assert {(s.family, s.setting) for s in space} == {(f, s) for f in L.FAMILIES for s in L.SETTINGS}
        keys = [s.key() for s in space]
        assert len(set(keys)) == len(keys)
    with pytest.raises(ValueError, match="quick' or 'full"):
        L.candidates("huge")


def test_select_uses_view1_only_and_keeps_the_best_per_family_and_setting(lfw):
    table, best = L.select(PIXELS, progress=lambda *_: None)
    assert set(lfw) == {"train", "test"}  # View 2 is never looked at while choosing
    acc = table[table.metric == "accuracy"]
    assert acc.setting_json.nunique() == len(PIXELS)
    for b in best:
        mine = acc[acc.setting == b.setting]
        chosen = mine[mine.setting_json == b.key()]["value"].iloc[0]
        assert chosen == mine["value"].max()
    assert {b.setting for b in best} == set(L.SETTINGS)
    cats = acc.groupby("setting")["category"].unique()
    assert list(cats["image-restricted"]) == [lfw_category("pairs")]
    assert list(cats["unrestricted"]) == [lfw_category("identities")]
    assert set(acc.protocol) == {"lfw-view1"}


def test_choose_keeps_one_system_per_setting_beside_the_pixels_baseline():
    """Families compete for a setting's system on View 1; the losers never reach View 2."""
    def row(setting, value):
        return {"metric": "accuracy", "value": value, "family": setting.family, "setting": setting.setting,
                "setting_json": setting.key()}

    patch = L.LFWSetting("patch-vae", "image-restricted", pca=200)
    fisher = L.LFWSetting("patch-vae-fisher", "image-restricted")
    fisher_u = L.LFWSetting("patch-vae-fisher", "unrestricted")
    pix = [L.LFWSetting("pixels", "image-restricted", 32, c, pca=None) for c in (90, 110)]
    table = pd.DataFrame([row(patch, 0.77), row(fisher, 0.70), row(fisher_u, 0.72), row(pix[0], 0.74),
                          row(pix[1], 0.75)])
    def names(settings):
        return sorted(s.describe() + s.setting for s in settings)

    assert names(L.choose(table)) == names([patch, fisher_u, pix[1]])
    assert names(L.choose(table, baselines=())) == names([patch, fisher_u])


def test_view1_scores_match_the_protocol_function_on_the_same_data(lfw):
    """A restricted pixels setting through `select` equals `protocols.View1` with the same scorer."""
    from facelib.verify.baselines import flatten_images
    from facelib.verify.protocols import View1, evaluate
    from facelib.verify.scores import TwoCovarianceScore

    s = PIXELS[0]
    table = L.evaluate_view1([s], progress=lambda *_: None)
    tr, te = fake_lfw("train", 16, 100, False), fake_lfw("test", 16, 100, False)
    ref = evaluate(None, {"plda": TwoCovarianceScore(n_components=s.plda)},
                   View1(flatten_images(tr.images), tr.pair_table, flatten_images(te.images), te.pair_table))
    for metric in ("accuracy", "auc"):
        ours = table.loc[table.metric == metric, "value"].iloc[0]
        theirs = ref.loc[ref.metric == metric, "value"].iloc[0]
        assert ours == pytest.approx(theirs, abs=1e-9)


def test_freeze_then_view2_runs_the_frozen_settings_on_ten_folds(lfw, tmp_path):
    table, best = L.select(PIXELS, progress=lambda *_: None)
    path = L.freeze(best, table, tmp_path / "frozen.json")
    with pytest.raises(FileExistsError, match="made once"):
        L.freeze(best, table, path)
    doc, sha = L.read_frozen(path)
    assert [L.LFWSetting.from_dict(e["setting"]) for e in doc["frozen"]] == best
    lfw.clear()
    rows = L.run_view2(path, progress=lambda *_: None)
    assert set(lfw) == {"10_folds"}
    assert sorted(rows.fold.unique()) == list(range(10))
    assert set(rows.frozen_sha256) == {sha}
    summary = L.view2_table(rows, path)
    assert len(summary) == len(best)
    for (_, r), e in zip(summary.iterrows(), doc["frozen"]):
        assert r["view1_accuracy"] == e["view1"]["accuracy"]
        assert r["category"] == e["category"] and r["folds"] == 10
        assert 0 <= r["view2_accuracy"] <= 1 and r["view2_se"] > 0


def test_view2_roc_is_the_vertical_average_of_each_folds_curve(lfw, tmp_path):
    from scipy.stats import sem

    from facelib.verify.roc import ROC_FARS

    table, best = L.select(PIXELS, progress=lambda *_: None)
    path = L.freeze(best, table, tmp_path / "frozen.json")
    rows = L.run_view2(path, progress=lambda *_: None)
    roc = L.roc_table(rows, path)
    assert set(roc.system) == {b.describe() for b in best} and set(roc.folds) == {10}
    for b in best:
        mine = roc[roc.system == b.describe()].sort_values("far")
        assert mine.far.tolist() == pytest.approx(list(ROC_FARS))
        assert np.all(np.diff(mine.tar) >= -1e-12) and mine.tar.iloc[-1] == pytest.approx(1.0)
        method, rep = L._label(b)
        at = rows[(rows.method == method) & (rows.representation == rep) & (rows.metric == "roc_tar@far=0.1")]
        assert len(at) == 10
        r = mine[mine.far == 0.1].iloc[0]
        assert r.tar == pytest.approx(at.value.mean()) and r.tar_se == pytest.approx(sem(at.value))
    with pytest.raises(ValueError, match="no ROC points"):
        L.roc_table(rows[~rows.metric.str.startswith("roc_")], path)


def test_view2_fits_the_representation_on_training_folds_only(lfw, tmp_path, monkeypatch):
    """The patch VAE (and Fisher mixture) of test fold k never sees an image of fold k's pairs."""
    s = L.LFWSetting("patch-vae-fisher", "unrestricted", 16, 100, patch={"patch": 8, "stride": 4, "epochs": 1,
                                                                        "max_patches": 2000, "latent_dim": 4},
                     fisher={"n_components": 2, "stride": 4}, pca=10, plda=5)
    seen = []
    real = L.representation_features

    def spy(setting, images, fit_rows, rows, cache=None):
        seen.append(images[fit_rows].clone())
        return real(setting, images, fit_rows, rows, cache)

    monkeypatch.setattr(L, "representation_features", spy)
    table = L.evaluate_view1([s], progress=lambda *_: None)
    path = L.freeze([s], table, tmp_path / "frozen.json")
    seen.clear()
    L.run_view2(path, test_folds=[0, 3], progress=lambda *_: None)
    ds = fake_lfw("10_folds", 16, 100, True)
    for k, images in zip([0, 3], seen):
        test = ds.pair_table[ds.pair_table.fold == k]
        test_images = ds.images[torch.as_tensor(np.unique(test[["left", "right"]].to_numpy()))]
        flat_seen = images.reshape(len(images), -1)
        flat_test = test_images.reshape(len(test_images), -1)
        assert not (flat_seen[:, None, :] == flat_test[None, :, :]).all(-1).any()
        assert len(images) == len(np.unique(ds.pair_table[ds.pair_table.fold != k][["left", "right"]]))


def test_frozen_setting_gives_the_one_setting_frozen_for_a_family(lfw, tmp_path):
    table, best = L.select(PIXELS, progress=lambda *_: None)
    path = L.freeze(best, table, tmp_path / "frozen.json")
    assert L.frozen_setting(path, "pixels", "unrestricted") == [b for b in best if b.setting == "unrestricted"][0]
    with pytest.raises(ValueError, match="freezes 0 patch-vae system"):
        L.frozen_setting(path, "patch-vae", "image-restricted")


def test_read_frozen_refuses_what_is_not_a_frozen_choice(tmp_path):
    with pytest.raises(FileNotFoundError, match="lfw select"):
        L.read_frozen(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"frozen": [{"setting": {"family": "nope"}}]}))
    with pytest.raises(ValueError, match="not a frozen LFW choice"):
        L.read_frozen(bad)


def test_cli_select_view2_report(lfw, tmp_path, monkeypatch, capsys):
    from facelib.cli import main

    monkeypatch.setattr(L, "candidates", lambda profile: PIXELS[:2])
    res = tmp_path / "results"
    assert main(["lfw", "--results", str(res), "select"]) == 0
    assert main(["lfw", "--results", str(res), "select"]) == 1  # a frozen choice is made once
    assert "exists" in capsys.readouterr().err
    sel = pd.read_csv(res / "lfw_view1_selection.csv")
    assert sel.chosen.sum() == 1 and {"commit", "cpu", "command"} <= set(sel.columns)
    assert main(["lfw", "--results", str(res), "view2", "--test-folds", "0", "1"]) == 2  # needs --out (usage)
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(["lfw", "--results", str(res), "view2", "--test-folds", *map(str, range(5)), "--out", str(a)]) == 0
    assert main(["lfw", "--results", str(res), "report", str(a)]) == 2  # five folds are not View 2
    assert main(["lfw", "--results", str(res), "view2", "--test-folds", *map(str, range(5, 10)),
                 "--out", str(b)]) == 0
    assert main(["lfw", "--results", str(res), "report", str(a), str(b)]) == 0
    out = pd.read_csv(res / "lfw_view2.csv")
    assert len(out) == 1 and out.folds.iloc[0] == 10
    folds, roc = pd.read_csv(res / "lfw_view2_folds.csv"), pd.read_csv(res / "lfw_view2_roc.csv")
    assert sorted(folds.fold.unique()) == list(range(10)) and set(roc.folds) == {10}
    assert out.view1_accuracy.iloc[0] == pytest.approx(sel.loc[sel.chosen, "accuracy"].iloc[0])


def test_cli_select_append_scores_only_new_candidates_and_chooses_over_all(lfw, tmp_path, monkeypatch, capsys):
    from facelib.cli import main

    res = tmp_path / "results"
    monkeypatch.setattr(L, "candidates", lambda profile: PIXELS[:2])
    assert main(["lfw", "--results", str(res), "select", "--append"]) == 1   # nothing to append to yet
    assert main(["lfw", "--results", str(res), "select"]) == 0
    first = pd.read_csv(res / "lfw_view1_selection.csv")
    frozen_before = (res / "lfw_frozen.json").read_text()
    scored = []
    real = L.evaluate_view1
    monkeypatch.setattr(L, "evaluate_view1", lambda settings, **kw: scored.extend(settings) or real(settings, **kw))
    monkeypatch.setattr(L, "candidates", lambda profile: PIXELS[:2] + PIXELS[4:6])  # the space grew
    assert main(["lfw", "--results", str(res), "select", "--append"]) == 1   # the choice changed: needs --overwrite
    said = capsys.readouterr()
    assert "--overwrite" in said.err and "would freeze" in said.out
    assert scored == PIXELS[4:6] and (res / "lfw_frozen.json").read_text() == frozen_before
    grown = pd.read_csv(res / "lfw_view1_selection.csv")
    assert len(grown) == 4
    kept = grown[grown.setting_json.isin(first.setting_json)].set_index("setting_json")
    assert kept.date.to_dict() == first.set_index("setting_json").date.to_dict()   # old rows keep their run
    scored.clear()
    assert main(["lfw", "--results", str(res), "select", "--append", "--overwrite"]) == 0
    assert scored == []   # nothing measured twice
    doc, _ = L.read_frozen(res / "lfw_frozen.json")
    assert sorted(e["setting"]["setting"] for e in doc["frozen"]) == ["image-restricted", "unrestricted"]
    final = pd.read_csv(res / "lfw_view1_selection.csv")
    assert final.chosen.sum() == 2 and doc["candidates"] == 4
    assert main(["lfw", "--results", str(res), "select", "--append"]) == 0
    assert "unchanged" in capsys.readouterr().out


def test_a_view2_rerun_that_measures_other_figures_keeps_the_earlier_rows(lfw, tmp_path, monkeypatch):
    """The same frozen choice run again by changed training code: rows whose figures differ are
    kept in lfw_view2_superseded.csv, rows repeated exactly are not."""
    from facelib.cli import main

    res = tmp_path / "results"
    monkeypatch.setattr(L, "candidates", lambda profile: PIXELS[:2])
    assert main(["lfw", "--results", str(res), "select"]) == 0
    assert main(["lfw", "--results", str(res), "view2"]) == 0
    earlier = pd.read_csv(res / "lfw_view2.csv")
    earlier.loc[0, "view2_accuracy"] -= 0.01        # as measured by an earlier version of the code
    earlier.loc[0, "commit"] = "deadbeef" * 5
    earlier.to_csv(res / "lfw_view2.csv", index=False)
    assert main(["lfw", "--results", str(res), "view2"]) == 0
    kept = pd.read_csv(res / "lfw_view2_superseded.csv")
    pd.testing.assert_frame_equal(kept, earlier.iloc[:1])
    now = pd.read_csv(res / "lfw_view2.csv")
    assert now.view2_accuracy.iloc[0] == pytest.approx(earlier.view2_accuracy.iloc[0] + 0.01)


def test_a_view2_run_of_a_new_choice_keeps_the_earlier_choices_rows(lfw, tmp_path, monkeypatch):
    from facelib.cli import main

    res = tmp_path / "results"
    monkeypatch.setattr(L, "candidates", lambda profile: PIXELS[:2])
    assert main(["lfw", "--results", str(res), "select"]) == 0
    assert main(["lfw", "--results", str(res), "view2"]) == 0
    assert main(["lfw", "--results", str(res), "view2"]) == 0   # the same choice again: nothing superseded
    assert not (res / "lfw_view2_superseded.csv").exists()
    first = pd.read_csv(res / "lfw_view2.csv")
    monkeypatch.setattr(L, "candidates", lambda profile: PIXELS[:2] + PIXELS[4:6])
    assert main(["lfw", "--results", str(res), "select", "--append", "--overwrite"]) == 0
    assert main(["lfw", "--results", str(res), "view2"]) == 0
    kept = pd.read_csv(res / "lfw_view2_superseded.csv")
    pd.testing.assert_frame_equal(kept, first)   # moved whole, with the run that measured them
    now = pd.read_csv(res / "lfw_view2.csv")
    assert len(now) == 2 and set(now.frozen_sha256).isdisjoint(kept.frozen_sha256)


# ---------------------------------------------------------------- any registered scorer

TOY_SCORER = '''
"""A scorer outside facelib: minus the L1 distance of two embeddings (registered on import)."""
import numpy as np

from facelib.verify.scores import SCORERS, PairScorer


@SCORERS.register("toy-l1")
class ToyL1(PairScorer):
    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def score_pairs(self, left, right):
        L, R = self._prepare(left, right)
        return -self.scale * np.abs(L - R).sum(axis=1)
'''


@pytest.fixture
def toy_scorer(tmp_path):
    """The toy scorer registered from a module written to a temporary folder (no facelib file)."""
    from facelib.verify.scores import SCORERS

    try:
        with user_module(tmp_path, "toy_scorer_module", TOY_SCORER) as module:
            yield module.ToyL1
    finally:
        if "toy-l1" in SCORERS:
            SCORERS.unregister("toy-l1")


def test_a_scorer_registered_outside_facelib_takes_part_in_the_view1_selection(lfw, toy_scorer, tmp_path):
    from sklearn.metrics import roc_auc_score

    from facelib.verify.baselines import flatten_images
    from facelib.verify.protocols import View1, evaluate

    toy = L.LFWSetting("pixels", "image-restricted", 16, 100, pca=None, scorer="Toy_L1", scorer_options={"scale": 2.0})
    assert toy.scorer == "toy-l1" and toy.describe() == "pixels 16 px crop 100, toy-l1 scale=2.0"
    assert L.LFWSetting.from_dict(json.loads(json.dumps(toy.to_dict()))) == toy
    table, best = L.select([PIXELS[0], toy], progress=lambda *_: None)
    mine = table[table.setting_json == toy.key()].set_index("metric")
    assert set(mine.method) == {"toy-l1(pairs)"}
    # the same numbers as `evaluate` with the toy scorer on a View 1 protocol over the crops' pixels
    tr, te = fake_lfw("train", 16, 100, False), fake_lfw("test", 16, 100, False)
    view1 = View1(flatten_images(tr.images), tr.pair_table, flatten_images(te.images), te.pair_table)
    ref = evaluate(None, {"toy": "toy-l1"}, view1, return_details=True)
    X = flatten_images(te.images).astype(np.float64)
    by_hand = -np.abs(X[te.pair_table.left] - X[te.pair_table.right]).sum(1)
    np.testing.assert_allclose(ref.scores[0].score, by_hand, rtol=0, atol=1e-9)
    auc = roc_auc_score(te.pair_table.same, by_hand)
    assert mine.loc["auc", "value"] == pytest.approx(auc, abs=1e-12)   # the scale does not move a rank
    ref_rows = ref.results.set_index("metric").value
    assert mine.loc["accuracy", "value"] == pytest.approx(ref_rows["accuracy"], abs=1e-12)
    # it can be chosen, frozen with its scorer, read back and run on View 2
    chosen = L.choose(table, baselines=())
    path = L.freeze(chosen, table, tmp_path / "frozen.json")
    doc, _ = L.read_frozen(path)
    assert [L.LFWSetting.from_dict(e["setting"]) for e in doc["frozen"]] == chosen
    if toy in chosen:
        assert doc["frozen"][chosen.index(toy)]["setting"]["scorer"] == "toy-l1"
    frozen_toy = L.freeze([toy], table, tmp_path / "toy.json")
    rows = L.run_view2(frozen_toy, test_folds=[0, 1], progress=lambda *_: None)
    assert set(rows.method) == {"toy-l1(pairs)"} and sorted(rows.fold.unique()) == [0, 1]


def test_a_setting_names_a_registered_scorer_and_plda_settings_keep_their_keys():
    with pytest.raises(KeyError, match="unknown scorer 'lda'; known scorers: cosine, euclidean, mahalanobis, plda"):
        L.LFWSetting(scorer="lda")
    with pytest.raises(ValueError, match="are the PLDA's"):
        L.LFWSetting(scorer="cosine", length_norm=True)
    with pytest.raises(ValueError, match="for scorers other than 'plda'"):
        L.LFWSetting(scorer_options={"shrinkage": 0.1})
    with pytest.raises(ValueError, match="does not take scorer_options"):
        L.LFWSetting(scorer="cosine", scorer_options={"shrinkage": 0.1})
    cos = L.LFWSetting("pixels", scorer="cosine", scorer_options={"center": True})
    assert isinstance(L._scorer(cos), L.SCORERS["cosine"]) and L._scorer(cos).center
    assert L._label(cos)[0] == "cosine(pairs)"
    # PLDA settings leave the scorer out: the stored frozen choice reads back and keys as it was written
    from pathlib import Path

    stored = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "lfw_frozen.json"
    doc, _ = L.read_frozen(stored)
    for e in doc["frozen"]:
        s = L.LFWSetting.from_dict(e["setting"])
        assert s.scorer == "plda" and json.loads(json.dumps(s.to_dict())) == e["setting"] and s.describe() == e["description"]
        assert s.key() == json.dumps(e["setting"], sort_keys=True)
        assert L.LFWSetting.from_dict({**e["setting"], "scorer": "PLDA"}) == s


def test_view1_scores_a_system_shown_other_test_faces(lfw):
    """#42: `evaluate_view1(test_images=...)` fits on the training faces as they are and scores the
    test pairs on the faces given: the real ones reproduce the plain run, faces with the identity
    destroyed (every test face replaced by the mean face) fall to chance."""
    s = PIXELS[0]
    plain = L.evaluate_view1([s], progress=lambda *_: None)
    test = fake_lfw("test", 16, 100, False)
    same = L.evaluate_view1([s], progress=lambda *_: None, test_images=test.images)
    pd.testing.assert_frame_equal(plain, same)
    flat = test.images.float().mean(0, keepdim=True).round().to(torch.uint8).expand_as(test.images).contiguous()
    blind = L.evaluate_view1([s], progress=lambda *_: None, test_images=flat).set_index("metric")["value"]
    assert blind["auc"] == pytest.approx(0.5) and plain.set_index("metric")["value"]["auc"] > 0.8
    with pytest.raises(ValueError, match="test_images must be uint8 images shaped like View 1's test faces"):
        L.evaluate_view1([s], progress=lambda *_: None, test_images=test.images[:3])
