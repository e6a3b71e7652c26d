"""The siamese CNN learns a trivially separable toy task (tiny, CPU)."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from facelib.verify.siamese import SiameseVerifier


def _toy(n, seed):
    """Two 'people': bright left half or bright right half, plus noise; same = same person."""
    rng = np.random.default_rng(seed)
    def img(person):
        x = rng.normal(60, 15, size=(1, 8, 8))
        x[:, :, :4] += 150 if person == 0 else 0
        x[:, :, 4:] += 150 if person == 1 else 0
        return np.clip(x, 0, 255)
    pa = rng.integers(0, 2, n)
    same = rng.random(n) < 0.5
    pb = np.where(same, pa, 1 - pa)
    a = np.stack([img(p) for p in pa]).astype(np.uint8)
    b = np.stack([img(p) for p in pb]).astype(np.uint8)
    return torch.as_tensor(a), torch.as_tensor(b), same


def test_learns_toy_task_and_is_seeded():
    a, b, y = _toy(160, 0)
    ta, tb, ty = _toy(100, 1)
    kw = dict(widths=(8, 16), embedding_dim=16, hidden=16, max_epochs=8, patience=8, lr=1e-2,
              batch_size=32, seed=0, device="cpu", augment_flip=False)
    m = SiameseVerifier(**kw).fit_pairs(a, b, y)
    s = m.score_pairs(ta, tb)
    assert roc_auc_score(ty, s) > 0.95
    p = m.predict_proba(ta, tb)
    assert p.shape == (100, 2) and np.allclose(p.sum(1), 1)
    # early stopping kept the best validation epoch; history is recorded
    assert m.best_val_loss_ == pytest.approx(min(h["val_loss"] for h in m.history_))
    # swapping the two images gives the same logit (|difference| head)
    assert np.allclose(m.score_pairs(tb, ta), s, atol=1e-5)
    # same seed, same model
    m2 = SiameseVerifier(**{**kw, "max_epochs": 1}).fit_pairs(a[:64], b[:64], y[:64])
    m3 = SiameseVerifier(**{**kw, "max_epochs": 1}).fit_pairs(a[:64], b[:64], y[:64])
    assert np.allclose(m2.score_pairs(ta, tb), m3.score_pairs(ta, tb))


def test_bad_input_is_explained():
    a, b, y = _toy(20, 0)
    with pytest.raises(TypeError, match="uint8"):
        SiameseVerifier(device="cpu").fit_pairs(a.float(), b, y)
    with pytest.raises(ValueError, match="both"):
        SiameseVerifier(device="cpu").fit_pairs(a, b, np.ones(20, bool))
    with pytest.raises(RuntimeError, match="not fitted"):
        SiameseVerifier().score_pairs(a, b)


def test_siamese_pairs_trains_on_train_pairs_and_scores_test_pairs():
    import pandas as pd

    from facelib.verify import siamese_pairs

    a, b, y = _toy(160, 0)
    ta, tb, ty = _toy(100, 1)
    train_images = torch.cat([a, b])
    train = pd.DataFrame({"left": np.arange(160), "right": np.arange(160) + 160, "same": y})
    test_images = torch.cat([ta, tb])
    test = pd.DataFrame({"left": np.arange(100), "right": np.arange(100) + 100, "same": ty})
    kw = dict(widths=(8, 16), embedding_dim=16, hidden=16, max_epochs=8, patience=8, lr=1e-2,
              batch_size=32, device="cpu", augment_flip=False)
    metrics, scores, net = siamese_pairs(train_images, train, test_images, test, seed=0, **kw)
    assert scores.shape == (100,)
    assert metrics["auc"] == pytest.approx(roc_auc_score(ty, scores)) and metrics["auc"] > 0.95
    # the same verifier fitted directly on the pair images gives the same test scores
    direct = SiameseVerifier(seed=0, **kw).fit_pairs(a, b, y).score_pairs(ta, tb)
    np.testing.assert_allclose(scores, direct, atol=1e-6)
    accept = scores >= metrics["threshold"]
    assert metrics["accuracy"] == pytest.approx(np.mean(accept == ty))
