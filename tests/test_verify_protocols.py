"""Protocols: fold bookkeeping, no leakage into fitted stages, LFW categories, held-out identities."""

import numpy as np
import pandas as pd
import pytest
import torch

from facelib.data.dataset import FaceDataset
from facelib.data.pairs import across_factor_pairs, person_folds
from facelib.verify import baselines as B
from facelib.verify import categories
from facelib.verify import features as F
from facelib.verify import protocols as P
from facelib.verify import scores as S


def lfw_like(seed=0, n_folds=4, per_fold=40, d=6, n_people=60):
    """Pair-structured data as the LFW loader gives it: rows 2i, 2i+1 are pair i's images."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_people, d)) * 1.5
    rows, ident = [], []
    n = n_folds * per_fold
    for i in range(n):
        a = rng.integers(n_people)
        same = i % 2 == 0
        b = a if same else (a + 1 + rng.integers(n_people - 1)) % n_people
        ident += [a, b]
        rows.append((2 * i, 2 * i + 1, same, i // per_fold))
    emb = centres[ident] + rng.normal(size=(2 * n, d))
    table = pd.DataFrame(rows, columns=["left", "right", "same", "fold"])
    return emb, np.asarray(ident), table


def methods():
    return {
        "lda|absdiff": F.make_pipeline("lda", combine="absdiff", pre_pca=4),
        "qda|concat": F.make_pipeline("qda", combine="concat", pre_pca=4, post_pca=3),
        "cosine": S.CosineScore(center=True),
        "mahalanobis": S.MahalanobisScore(),
        "plda": S.TwoCovarianceScore(),
    }


def test_folds_metrics_and_summary():
    emb, ident, table = lfw_like()
    res = P.evaluate(None, methods(), P.Folds(emb, table, identity=ident))
    assert list(res.columns[:6]) == ["method", "representation", "protocol", "fold", "metric", "value"]
    acc = res[res.metric == "accuracy"]
    assert set(acc.fold) == {0, 1, 2, 3} and acc.method.nunique() == 5
    means = acc.groupby("method").value.mean()
    assert (means[["cosine", "mahalanobis", "plda", "lda|absdiff"]] > 0.7).all()  # separable toy
    summ = P.summarize(res, "accuracy")
    one = acc[acc.method == "plda"].value.to_numpy()
    row = summ[summ.method == "plda"].iloc[0]
    assert row["mean"] == pytest.approx(one.mean())
    assert row["se"] == pytest.approx(np.std(one, ddof=1) / np.sqrt(4))
    cats = dict(zip(summ.method, summ.category))
    # cosine fits nothing, but its accuracy uses a threshold chosen on the training pairs' labels
    assert cats["cosine"] == "image-restricted, no outside data"
    assert cats["plda"] == cats["lda|absdiff"] == "image-restricted, no outside data"
    auc_cats = dict(zip(P.summarize(res, "auc").method, P.summarize(res, "auc").category))
    assert auc_cats["cosine"] == "unsupervised" and auc_cats["plda"] == "image-restricted, no outside data"
    cosine = res[res.method == "cosine"].groupby("metric").category.first()
    assert cosine[["auc", "eer"]].eq("unsupervised").all()
    assert cosine[["accuracy", "threshold", "train_accuracy"]].eq("image-restricted, no outside data").all()


def _probe_outputs(fitted, rng, dim):
    """What every fitted stage outputs on fixed probe inputs (to compare two runs)."""
    probes = rng.normal(size=(25, 2, dim))
    out = {}
    for key, m in fitted.items():
        if len(key) == 3:
            out[key] = np.array([m])
        elif isinstance(m, S.PairScorer):
            out[key] = m.score_pairs(probes[:, 0], probes[:, 1])
        elif hasattr(m, "transform") and not hasattr(m, "predict"):
            out[key] = m.transform(rng.normal(size=(5, 6)))
        else:
            out[key] = F.pair_scores(m, probes)
    return out


@pytest.mark.parametrize("labels", ["image-restricted", "unrestricted"])
def test_no_leakage_changing_test_fold_changes_no_fitted_stage(labels):
    emb, ident, table = lfw_like(seed=1)
    rep = B.Eigenfaces(n_components=5, whiten=False)  # a representation refitted per fold too
    test_rows = table.loc[table.fold == 2, ["left", "right"]].to_numpy().ravel()
    meths = {**methods(), "knn-tuned": F.tuned_pipeline("knn", combine="absdiff", param_grid={}, cv=2, pre_pca=[2, 3])}
    run = {}
    for variant in ("orig", "test-changed", "train-changed"):
        data, ids, tab = emb.copy(), ident.copy(), table.copy()
        rng = np.random.default_rng(9)
        if variant == "test-changed":
            data[test_rows] = rng.normal(size=(test_rows.size, 6)) * 50
            tab.loc[tab.fold == 2, "same"] = ~tab.loc[tab.fold == 2, "same"]
            for j, (left, right, same) in enumerate(tab.loc[tab.fold == 2, ["left", "right", "same"]].to_numpy()):
                ids[left] = 10_000 + 2 * j  # other people, labelled as the flipped labels say
                ids[right] = ids[left] if same else 10_001 + 2 * j
        elif variant == "train-changed":
            rows = table.loc[table.fold == 0, ["left", "right"]].to_numpy().ravel()
            data[rows] += rng.normal(size=(rows.size, 6))
        fitted = P.evaluate(rep, meths, P.Folds(data, tab, identity=ids, labels=labels, test_folds=[2]),
                            return_details=True).fitted
        run[variant] = _probe_outputs(fitted, np.random.default_rng(123), 5)
    keys = run["orig"].keys()
    assert len(keys) == 1 + 2 * 6  # representation + 6 methods with thresholds
    for k in keys:
        assert np.array_equal(run["orig"][k], run["test-changed"][k]), k
    # and the comparison is sensitive: changing a training fold does change the fitted stages
    # (centred cosine after a PCA has no state left: the PCA output mean is 0 either way;
    # kNN probabilities are multiples of 1/k, so its best threshold may well stay put)
    stateful = [k for k in keys if k not in ((2, "cosine"), (2, "knn-tuned", "threshold"))]
    changed = [k for k in stateful if not np.allclose(run["orig"][k], run["train-changed"][k])]
    assert changed == stateful


def test_spy_stage_sees_only_training_rows():
    emb, ident, table = lfw_like(seed=2)
    seen = []

    class Spy(B.RawPixels):
        def fit(self, X, y=None):
            seen.append(np.asarray(X).copy())
            return super().fit(X, y)

    P.evaluate(Spy(), {"cos": S.CosineScore()}, P.Folds(emb, table, test_folds=[1]))
    test_rows = table.loc[table.fold == 1, ["left", "right"]].to_numpy().ravel()
    train_rows = table.loc[table.fold != 1, ["left", "right"]].to_numpy().ravel()
    fitted_on = seen[0]
    assert len(fitted_on) == len(np.unique(train_rows))
    assert not any((np.abs(fitted_on - emb[r]).sum(1) == 0).any() for r in test_rows)


def lfw_like_people(seed=0, n_folds=4, per_fold=30, d=6, people_per_fold=12, extra=2):
    """As LFW: each fold's pairs come from its own people; then `extra` more images of every
    person (rows no pair refers to), as load("lfw-pairs", people=True) appends them."""
    rng = np.random.default_rng(seed)
    n_people = n_folds * people_per_fold
    centres = rng.normal(size=(n_people, d)) * 1.5
    rows, ident = [], []
    for f in range(n_folds):
        own = np.arange(f * people_per_fold, (f + 1) * people_per_fold)
        for j in range(per_fold):
            a, b = rng.choice(own, 2, replace=False)
            b = a if j % 2 == 0 else b
            i = len(rows)
            ident += [a, b]
            rows.append((2 * i, 2 * i + 1, j % 2 == 0, f))
    ident += list(np.repeat(np.arange(n_people), extra))
    ident = np.asarray(ident)
    emb = centres[ident] + rng.normal(size=(len(ident), d))
    return emb, ident, pd.DataFrame(rows, columns=["left", "right", "same", "fold"])


def test_person_folds_give_every_row_its_persons_fold():
    emb, ident, table = lfw_like_people()
    folds = person_folds(ident, table)
    n_pair_rows = 2 * len(table)
    np.testing.assert_array_equal(folds[table.left], table.fold)
    np.testing.assert_array_equal(folds[table.right], table.fold)
    # appended rows: the fold their person's pairs are in (people_per_fold = 12 per fold);
    # -1 for people drawn into no pair
    in_pairs = np.isin(ident[n_pair_rows:], ident[:n_pair_rows])
    assert 0 < in_pairs.sum() < in_pairs.size
    np.testing.assert_array_equal(folds[n_pair_rows:], np.where(in_pairs, ident[n_pair_rows:] // 12, -1))
    # people shared between folds (lfw_like draws people across folds) cannot be split by person
    _, ident2, table2 = lfw_like(seed=5)
    with pytest.raises(ValueError, match="more than one fold"):
        person_folds(ident2, table2)


def test_image_folds_train_on_all_images_of_the_other_folds_people():
    emb, ident, table = lfw_like_people(seed=6)
    folds = person_folds(ident, table)
    seen = []

    class Spy(B.RawPixels):
        def fit(self, X, y=None):
            seen.append(np.asarray(X).copy())
            return super().fit(X, y)

    res = P.evaluate(Spy(), {"cos": S.CosineScore(), "plda": S.TwoCovarianceScore()},
                     P.Folds(emb, table, identity=ident, image_folds=folds, test_folds=[1]))
    expected = emb[(folds != 1) & (folds >= 0)]
    np.testing.assert_array_equal(seen[0], expected)  # pair rows and appended rows of folds 0, 2, 3
    tested = np.unique(ident[table.loc[table.fold == 1, ["left", "right"]].to_numpy().ravel()])
    assert not np.isin(ident[(folds != 1) & (folds >= 0)], tested).any()
    assert set(res.category) == {"unrestricted, no outside data"}  # the names chose the images
    acc = res[res.metric == "accuracy"].set_index("method").value
    assert acc["plda"] > 0.7  # separable toy

    # representation_on="pairs": the representation sees the training pairs' images only,
    # while the identity-trained scorer is fitted on every image of the training people
    seen.clear()
    fitted = P.evaluate(Spy(), {"plda": S.TwoCovarianceScore()},
                        P.Folds(emb, table, identity=ident, labels="unrestricted", image_folds=folds,
                                representation_on="pairs", test_folds=[1]), return_details=True).fitted
    pair_rows = np.unique(table.loc[table.fold != 1, ["left", "right"]].to_numpy())
    np.testing.assert_array_equal(seen[0], emb[pair_rows])
    ref = S.TwoCovarianceScore().fit(emb[(folds != 1) & (folds >= 0)], ident[(folds != 1) & (folds >= 0)])
    np.testing.assert_allclose(fitted[(1, "plda")].within_cov_, ref.within_cov_)
    with pytest.raises(ValueError, match="representation_on"):
        P.Folds(emb, table, identity=ident, image_folds=folds, representation_on="people")

    with pytest.raises(ValueError, match="labels='unrestricted'"):
        P.Folds(emb, table, identity=ident, labels="image-restricted", image_folds=folds)
    with pytest.raises(ValueError, match="pass identity="):
        P.Folds(emb, table, image_folds=folds)
    with pytest.raises(ValueError, match="one fold per row"):
        P.Folds(emb, table, identity=ident, image_folds=folds[:-1])
    wrong = folds.copy()
    wrong[table.left[table.fold == 1].to_numpy()[0]] = 0  # a test person's image put in fold 0
    with pytest.raises(ValueError, match="test people"):
        list(P.Folds(emb, table, identity=ident, image_folds=wrong, test_folds=[1]).folds())


def test_lfw_category_rule():
    assert categories.lfw_category("none", "none") == "unsupervised"
    assert categories.lfw_category("none", "none", "label-free") == "unsupervised, label-free outside data"
    assert categories.lfw_category("pairs", "none") == "image-restricted, no outside data"
    assert categories.lfw_category("pairs", "none", "label-free") == "image-restricted, label-free outside data"
    assert categories.lfw_category("identities", "none") == "unrestricted, no outside data"
    assert categories.lfw_category("none", "identities", "label-free") == "unrestricted, label-free outside data"
    assert categories.lfw_category("pairs", "none", "labeled") == "unrestricted, labeled outside data"
    assert "not valid" in categories.lfw_category("pairs", saw_test_images=True)
    with pytest.raises(ValueError, match="verifier_labels"):
        categories.lfw_category("names")


def test_fisherfaces_make_results_unrestricted():
    emb, ident, table = lfw_like(seed=3)
    res = P.evaluate(B.Fisherfaces(n_pca=5), {"cos": S.CosineScore()}, P.Folds(emb, table, identity=ident, test_folds=[0]))
    assert set(res.category) == {"unrestricted, no outside data"}


def test_view1_uses_train_list_only():
    emb, ident, table = lfw_like(seed=4, n_folds=2)
    tr = table[table.fold == 0]
    te = table[table.fold == 1].copy()
    rows_te = te[["left", "right"]].to_numpy().ravel()
    offset = rows_te.min()
    te[["left", "right"]] -= offset
    res = P.evaluate(None, {"plda": S.TwoCovarianceScore()}, P.View1(emb[:offset], tr, emb[offset:], te))
    ref = P.evaluate(None, {"plda": S.TwoCovarianceScore()}, P.Folds(emb, table, test_folds=[1]))
    a = res.set_index("metric").value
    b = ref.set_index("metric").value
    assert a["accuracy"] == pytest.approx(b["accuracy"]) and a["auc"] == pytest.approx(b["auc"])
    assert set(res.protocol) == {"lfw-view1"}


def _toy_faces(n_people=12, per=6, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(n_people, 1, 8, 8))
    light = np.tile(np.arange(per), n_people)
    ids = np.repeat(np.arange(n_people), per)
    imgs = np.clip(base[ids] * 0.7 + light[:, None, None, None] * 12 + rng.normal(size=(len(ids), 1, 8, 8)) * 8, 0, 255)
    factors = pd.DataFrame({"azimuth": light * 10, "elevation": np.zeros_like(light)})
    return FaceDataset(torch.as_tensor(imgs.astype(np.uint8)), ids, factors=factors, name="toy")


def test_held_out_identities_and_across_lighting():
    ds = _toy_faces()
    m = {"plda": S.TwoCovarianceScore(n_components=6), "eucl": S.EuclideanScore()}
    res = P.evaluate(B.Eigenfaces(n_components=10), m,
                     P.HeldOutIdentities(ds, n_train_pairs=60, n_test_pairs=40, test_fraction=0.34))
    acc = res[res.metric == "auc"].set_index("method").value
    assert acc["plda"] > 0.8
    assert set(res.category) >= {"unrestricted, no outside data"}
    pairs = across_factor_pairs(ds, 40, factors=("azimuth", "elevation"), seed=1)
    az = ds.factors.azimuth.to_numpy()
    same = pairs.same.to_numpy()
    assert same.sum() == 20
    assert np.all(az[pairs.left[same]] != az[pairs.right[same]])
    assert np.all(az[pairs.left[~same]] == az[pairs.right[~same]])
    assert np.all(ds.identity[pairs.left[~same]] != ds.identity[pairs.right[~same]])
    res2 = P.evaluate(B.Eigenfaces(n_components=10), m,
                      P.AcrossFactor(ds, ("azimuth", "elevation"), n_train_pairs=60, n_test_pairs=20, test_fraction=0.34))
    assert res2.protocol.iloc[0].startswith("held-out-identities, across")


def test_protocol_bad_input():
    emb, ident, table = lfw_like()
    with pytest.raises(ValueError, match="lacks columns"):
        P.Folds(emb, table.drop(columns="fold"))
    with pytest.raises(ValueError, match="identity"):
        P.Folds(emb, table, labels="unrestricted")
    with pytest.raises(ValueError, match="labels must be"):
        P.Folds(emb, table, labels="identities")
    with pytest.raises(ValueError, match="no methods given"):
        P.evaluate(None, {}, P.Folds(emb, table))
    with pytest.raises(TypeError, match="protocol must be"):
        P.evaluate(None, methods(), table)
    with pytest.raises(ValueError, match="no rows for metric"):
        P.summarize(P.evaluate(None, {"c": S.CosineScore()}, P.Folds(emb, table, test_folds=[0])), "acc")


def test_held_out_pairs_cap_at_the_pairs_a_small_set_has():
    ds = _toy_faces()  # 12 people x 6 images
    train, test, train_pairs, test_pairs, protocol = P.held_out_pairs(
        ds, n_train_pairs=10_000, n_test_pairs=10_000, test_fraction=0.34, seed=0)
    assert not set(train.identity) & set(test.identity)
    for side, pairs in ((train, train_pairs), (test, test_pairs)):
        people = len(set(side.identity))
        all_same = people * 6 * 5 // 2            # every same-person pair of the side
        assert pairs.same.sum() == all_same and len(pairs) == 2 * all_same
    assert protocol == "held-out-identities"
    with pytest.raises(ValueError, match="same-person pairs"):
        train.pairs(10_000, seed=0)  # what notebook 07 asked for before it shared these pairs


# -- across a nuisance factor (Yale B across lighting) --------------------------------------------
def _lit_faces(n_people=6, n_lights=5, seed=0):
    """Images = an identity pattern on the top half + a light pattern on the bottom half."""
    rng = np.random.default_rng(seed)
    who, light = np.repeat(np.arange(n_people), n_lights), np.tile(np.arange(n_lights), n_people)
    top, bottom = rng.integers(0, 256, (n_people, 1, 4, 8)), rng.integers(0, 256, (n_lights, 1, 4, 8))
    images = np.concatenate([top[who], bottom[light]], axis=2).astype(np.uint8)
    factors = pd.DataFrame({"azimuth": light * 10, "elevation": np.zeros_like(light)})
    return FaceDataset(images=torch.as_tensor(images), identity=who, factors=factors)


def test_across_factor_table_tells_identity_from_light():
    train, test = _lit_faces(seed=0), _lit_faces(seed=1)
    halves = {"identity half": lambda x: x[:, :, :4].flatten(1).float().numpy(),
              "light half": lambda x: x[:, :, 4:].flatten(1).float().numpy()}
    t = P.across_factor_table(train, test, halves, n_pairs=40, n_boot=200).set_index("representation")
    assert t.loc["identity half", "auc"] == 1.0 and t.loc["identity half", "eer"] == 0.0
    assert t.loc["light half", "auc"] == 0.0 and t.loc["light half", "eer"] == 1.0
    assert (t["n_pairs"] == 40).all() and (t["protocol"] == "held-out identities, across azimuth/elevation").all()


def test_across_factor_table_matches_scikit_learn_on_its_pairs():
    from sklearn.metrics import roc_auc_score

    train, test = _lit_faces(seed=2), _lit_faces(seed=3)
    rng = np.random.default_rng(0)
    w = rng.normal(size=(64, 5))

    def project(x):
        return x.flatten(1).float().numpy() @ w

    t = P.across_factor_table(train, test, {"random projection": project, "pixels": B.RawPixels()},
                              n_pairs=40, n_boot=300, seed=4)
    pairs = across_factor_pairs(test, 40, seed=4)
    for name, e_train, e_test in (("random projection", project(train.images), project(test.images)),
                                  ("pixels", B.flatten_images(train.images), B.flatten_images(test.images))):
        c = e_test - e_train.mean(axis=0)
        a, b = c[pairs["left"]], c[pairs["right"]]
        cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        row = t.set_index("representation").loc[name]
        assert row["auc"] == pytest.approx(roc_auc_score(pairs["same"], cos))
        assert row["auc_lo"] <= row["auc"] <= row["auc_hi"] and row["eer_lo"] <= row["eer"] <= row["eer_hi"]
    with pytest.raises(ValueError, match="at least one representation"):
        P.across_factor_table(train, test, {})
    with pytest.raises(TypeError, match="'bad'"):
        P.across_factor_table(train, test, {"bad": 3})


def test_compare_held_out_runs_every_representation_under_every_protocol_on_the_same_pairs():
    """06's bookkeeping: each (representation, methods) under held-out identities and, on data with
    lighting factors, across lighting; rows and scores equal evaluate's own on those protocols, tagged."""
    ds = _toy_faces()
    eucl = {"eucl": S.EuclideanScore()}
    reps = {"pixels": (None, {"eucl": S.EuclideanScore(), "cos": S.CosineScore()}),
            "eigenfaces": (B.Eigenfaces(n_components=5), eucl)}
    common = dict(n_train_pairs=40, n_test_pairs=20, test_fraction=0.34, seed=2)
    out = P.compare_held_out(ds, reps, dataset_name="toy-set", **common)
    protocols = list(dict.fromkeys(out.results.protocol))
    assert len(protocols) == 2 and protocols[1].startswith("held-out-identities, across")  # "auto": lighting
    assert list(out.results.columns[:1]) == ["dataset"] and set(out.results.dataset) == {"toy-set"}
    for across, protocol in zip((None, P.LIGHTING), protocols):
        held_out = P.HeldOutIdentities(ds, **common) if across is None else P.AcrossFactor(ds, across, **common)
        assert held_out.name == protocol
        own = P.evaluate(B.Eigenfaces(n_components=5), eucl, held_out, representation_name="eigenfaces")
        got = out.results[(out.results.protocol == protocol) & (out.results.representation == "eigenfaces")]
        pd.testing.assert_frame_equal(got.drop(columns="dataset").reset_index(drop=True), own.reset_index(drop=True))
    scores = pd.concat(out.scores)
    assert set(zip(scores.representation, scores.method)) == {("pixels", "eucl"), ("pixels", "cos"), ("eigenfaces", "eucl")}
    assert set(scores.protocol) == set(protocols) and set(scores.dataset) == {"toy-set"}
    no_light = FaceDataset(ds.images, ds.identity, name="plain")
    assert set(P.compare_held_out(no_light, {"pixels": reps["pixels"]}, **common).results.protocol) == {protocols[0]}
    with pytest.raises(ValueError, match="across must be"):
        P.compare_held_out(ds, reps, across="lighting", **common)


def test_best_methods_takes_the_highest_auc_with_its_bootstrap_interval():
    from facelib.verify.roc import auc_bootstrap_ci

    rng = np.random.default_rng(0)
    same = np.repeat([True, False], 30)
    score = {"good": same + rng.normal(size=60) * 0.8, "poor": same + rng.normal(size=60) * 3}
    rows = [{"dataset": "d", "protocol": "p", "representation": "z", "method": m, "metric": "auc",
             "value": float(np.mean(score[m][same][:, None] > score[m][~same][None, :]))} for m in score]
    rows.append({"dataset": "d", "protocol": "p", "representation": "other", "method": "poor", "metric": "auc", "value": 1.0})
    frames = pd.concat([pd.DataFrame({"dataset": "d", "protocol": "p", "representation": "z", "method": m,
                                      "same": same, "score": score[m]}) for m in score])
    best = P.best_methods(pd.DataFrame(rows), frames, "z", n_boot=200, seed=1)
    lo, hi = auc_bootstrap_ci(same, score["good"], n_boot=200, seed=1)
    assert best.to_dict("records") == [{"dataset": "d", "protocol": "p", "best method": "good", "AUC": rows[0]["value"],
                                        "ci_low": lo, "ci_high": hi}]
    assert lo < rows[0]["value"] < hi
    with pytest.raises(ValueError, match="no AUC rows for representation 'w'"):
        P.best_methods(pd.DataFrame(rows), frames, "w")
    with pytest.raises(ValueError, match="lack columns"):
        P.best_methods(pd.DataFrame(rows), frames.drop(columns="score"), "z")


# -- protocol objects: their folds, and `evaluate` on each against a by-hand reference ---------------
# (When the protocols became objects, every case below was also run through the removed wrappers
# evaluate_split / evaluate_folds / view1 / view2 / held_out_protocol / compare_held_out at commit
# ab85bf2 and gave identical frames; these tests keep the by-hand definitions those wrappers had.)
def _by_hand(emb, identity, fold, scorer):
    """A scorer fitted as the fold says (identity labels when unrestricted, else the training
    pairs' labels), its test-pair scores, and their AUC by scikit-learn."""
    from sklearn.metrics import roc_auc_score

    tr, te = fold.train_pairs, fold.test_pairs
    if fold.labels == "unrestricted":
        scorer.fit(emb[fold.train_rows], identity[fold.train_rows])
    else:
        scorer.fit_pairs(emb[tr.left], emb[tr.right], tr.same.to_numpy())
    s = scorer.score_pairs(emb[te.left], emb[te.right])
    return s, roc_auc_score(te.same.to_numpy(bool), s)


def _check_against_hand(protocol, emb, identity, folds):
    res = P.evaluate(None, {"plda": S.TwoCovarianceScore(n_components=4)}, protocol, return_details=True)
    assert [f.id for f in protocol.folds()] == folds
    for fold, scores in zip(protocol.folds(), res.scores):
        s, a = _by_hand(emb, identity, fold, S.TwoCovarianceScore(n_components=4))
        np.testing.assert_allclose(scores.score.to_numpy(), s, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(scores.pair.to_numpy(), fold.test_pairs.index.to_numpy())
        got = res.results[(res.results.fold == fold.id) & (res.results.metric == "auc")].value.iloc[0]
        assert got == pytest.approx(a, abs=1e-12)
    return res


def test_folds_protocol_yields_each_test_fold_against_the_others():
    emb, ident, table = lfw_like(seed=7)
    protocol = P.Folds(emb, table, identity=ident)
    for fold, k in zip(protocol.folds(), range(4)):
        pd.testing.assert_frame_equal(fold.test_pairs, table[table.fold == k])
        pd.testing.assert_frame_equal(fold.train_pairs, table[table.fold != k])
        np.testing.assert_array_equal(fold.train_rows, np.unique(table.loc[table.fold != k, ["left", "right"]]))
        assert fold.representation_rows is None and fold.labels == "image-restricted" and fold.training == "pairs"
    res = _check_against_hand(protocol, emb, ident, [0, 1, 2, 3])
    assert set(res.results.protocol) == {"lfw-view2"}
    unres = P.Folds(emb, table, identity=ident, labels="unrestricted", test_folds=[3, 1])
    _check_against_hand(unres, emb, ident, [3, 1])
    with pytest.warns(UserWarning, match="10 folds; this pair table has 4"):
        P.View2(emb, table)
    with pytest.raises(ValueError, match="fold 9 has no pairs"):
        list(P.Folds(emb, table, test_folds=[9]).folds())


def test_folds_with_image_folds_train_on_the_other_folds_people():
    emb, ident, table = lfw_like_people(seed=8)
    folds = person_folds(ident, table)
    protocol = P.Folds(emb, table, identity=ident, image_folds=folds, representation_on="pairs")
    assert protocol.labels == "unrestricted"
    for fold in protocol.folds():
        np.testing.assert_array_equal(fold.train_rows, np.flatnonzero((folds >= 0) & (folds != fold.id)))
        np.testing.assert_array_equal(fold.representation_rows, np.unique(fold.train_pairs[["left", "right"]]))
        assert fold.representation_labels == "identities" and fold.training == "identities"
    res = _check_against_hand(protocol, emb, ident, [0, 1, 2, 3])
    assert set(res.results.category) == {"unrestricted, no outside data"}


def test_view1_and_held_out_identities_put_the_test_set_after_the_training_set():
    emb, ident, table = lfw_like(seed=9, n_folds=2)
    n = 2 * (table.fold == 0).sum()
    tr, te = table[table.fold == 0], table[table.fold == 1].copy()
    te[["left", "right"]] -= n
    view1 = P.View1(emb[:n], tr, emb[n:], te, train_identity=ident[:n], labels="unrestricted")
    (fold,) = view1.folds()
    assert fold.id == "test" and fold.labels == "unrestricted"
    pd.testing.assert_frame_equal(fold.test_pairs, table[table.fold == 1].reset_index(drop=True))
    np.testing.assert_array_equal(fold.train_rows, np.arange(n))
    np.testing.assert_array_equal(view1.identity, np.r_[ident[:n], np.full(len(emb) - n, -1)])
    _check_against_hand(view1, emb, view1.identity, ["test"])
    _check_against_hand(P.View1(emb[:n], tr, emb[n:], te), emb, None, ["test"])

    ds = _toy_faces()
    held = P.AcrossFactor(ds, n_train_pairs=60, n_test_pairs=20, test_fraction=0.34, seed=1)
    train, test, train_pairs, test_pairs, name = P.held_out_pairs(ds, n_train_pairs=60, n_test_pairs=20,
                                                                 test_fraction=0.34, seed=1, across=P.LIGHTING)
    (fold,) = held.folds()
    assert held.name == name == "held-out-identities, across azimuth/elevation" and held.images
    np.testing.assert_array_equal(fold.train_pairs[["left", "right"]], train_pairs[["left", "right"]])
    np.testing.assert_array_equal(fold.test_pairs[["left", "right"]], test_pairs[["left", "right"]] + len(train))
    np.testing.assert_array_equal(fold.train_rows, np.arange(len(train)))
    pixels = B.flatten_images(torch.cat([train.images, test.images])).astype(np.float64)
    rows = P.evaluate(None, {"eucl": S.EuclideanScore()}, held, return_details=True)   # None: raw pixels
    centred = pixels - pixels[: len(train)].mean(axis=0)
    left, right = centred[fold.test_pairs.left], centred[fold.test_pairs.right]
    np.testing.assert_allclose(rows.scores[0].score, -np.linalg.norm(left - right, axis=1), rtol=0, atol=1e-9)


def test_evaluate_takes_registered_scorer_names_and_a_callable_representation():
    emb, ident, table = lfw_like(seed=10)
    protocol = P.Folds(emb, table, test_folds=[0])
    by_name = P.evaluate(None, ["cosine", "plda"], protocol)
    by_object = P.evaluate(None, {"cosine": S.CosineScore(), "plda": S.TwoCovarianceScore()}, protocol)
    pd.testing.assert_frame_equal(by_name, by_object)
    with pytest.raises(KeyError, match="unknown scorer 'lda'.*known scorers"):
        P.evaluate(None, {"x": "lda"}, protocol)
    w = np.random.default_rng(0).normal(size=(6, 3))
    mapped = P.evaluate(lambda x: x @ w, ["euclidean"], protocol)
    fixed = P.evaluate(None, ["euclidean"], P.Folds(emb @ w, table, test_folds=[0]))
    pd.testing.assert_frame_equal(mapped, fixed)
    with pytest.raises(TypeError, match="representation must be"):
        P.evaluate(3, ["euclidean"], protocol)
