"""Held-out-identity verification on the real Olivetti and Yale B sets (skipped without data)."""

import os

import pytest

from facelib.verify import baselines as B
from facelib.verify import protocols as P
from facelib.verify import scores as S

pytestmark = pytest.mark.shared_data


def _load(name, **kw):
    if not os.environ.get("FACELIB_DATA"):
        pytest.skip("FACELIB_DATA not set: real face sets unavailable")
    from facelib.data import DataNotFoundError, load

    try:
        return load(name, **kw)
    except (DataNotFoundError, FileNotFoundError) as err:
        pytest.skip(f"{name} not under FACELIB_DATA: {err}")


def test_olivetti_held_out_identities():
    ds = _load("olivetti", size=32, download=False)
    m = {"plda": S.TwoCovarianceScore(n_components=30), "cosine": S.CosineScore(center=True)}
    res = P.evaluate(B.Eigenfaces(n_components=40, whiten=False), m,
                     P.HeldOutIdentities(ds, n_train_pairs=400, n_test_pairs=200, test_fraction=0.25, seed=0))
    auc = res[res.metric == "auc"].set_index("method").value
    # Olivetti is easy: eigenfaces + two-covariance LLR separates unseen people well
    assert auc["plda"] > 0.9 and auc["cosine"] > 0.8
    assert set(res.fold) == {"test"}


def test_yaleb_across_lighting_is_harder_than_random_pairs():
    ds = _load("yaleb", size=32)
    m = {"eucl": S.EuclideanScore()}
    kw = dict(n_train_pairs=200, n_test_pairs=200, test_fraction=0.25, seed=0)
    rand = P.evaluate(B.RawPixels(), m, P.HeldOutIdentities(ds, **kw))
    across = P.evaluate(B.RawPixels(), m, P.AcrossFactor(ds, ("azimuth", "elevation"), **kw))
    a_rand = rand.query("metric == 'auc'").value.iloc[0]
    a_across = across.query("metric == 'auc'").value.iloc[0]
    # raw pixels encode lighting: same-lighting impostors look closer than re-lit genuines
    assert a_across < a_rand and a_across < 0.5
