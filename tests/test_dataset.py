"""`FaceDataset` container: validation, subset, pairs, split_by_identity (no data needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from facelib.data import PAIR_COLUMNS, FaceDataset


def make(identity, h=4, name="toy", **kw) -> FaceDataset:
    identity = np.asarray(identity)
    n = identity.size
    # image i is filled with the value i % 256, so rows can be traced after subsetting
    images = torch.arange(n, dtype=torch.int64).remainder(256).to(torch.uint8).view(n, 1, 1, 1).expand(n, 1, h, h).clone()
    return FaceDataset(images=images, identity=identity, name=name, **kw)


@pytest.fixture
def ten_people() -> FaceDataset:
    ident = np.repeat(np.arange(10), [5, 4, 3, 2, 6, 1, 5, 4, 3, 7])
    factors = pd.DataFrame({"row": np.arange(ident.size), "light": np.arange(ident.size) % 3})
    return make(ident, factors=factors)


# -- validation ------------------------------------------------------------------------
def test_rejects_bad_images_and_labels():
    with pytest.raises(TypeError, match="uint8"):
        FaceDataset(images=torch.zeros(2, 1, 4, 4), identity=[0, 1])
    with pytest.raises(ValueError, match="C in"):
        FaceDataset(images=torch.zeros(2, 2, 4, 4, dtype=torch.uint8), identity=[0, 1])
    with pytest.raises(ValueError, match="identity"):
        FaceDataset(images=torch.zeros(2, 1, 4, 4, dtype=torch.uint8), identity=[0, 1, 2])
    with pytest.raises(ValueError, match="factors"):
        FaceDataset(images=torch.zeros(2, 1, 4, 4, dtype=torch.uint8), identity=[0, 1], factors=pd.DataFrame({"a": [1]}))
    with pytest.raises(ValueError, match="pair_table"):
        FaceDataset(images=torch.zeros(2, 1, 4, 4, dtype=torch.uint8), identity=[0, 1], pair_table=pd.DataFrame({"left": [0]}))


def test_identities_masks_and_pair_indices_are_checked_as_verify_checks_them():
    """FaceDataset truncated float identities and cast NaN to -9223372036854775808, took a short
    boolean mask as indices, and accepted pairs of missing rows or with wrong same labels."""
    with pytest.raises(ValueError, match=r"whole numbers.*rows 0, 1, 2 hold 0.5, 0.7, 1.2"):
        make(np.array([0.5, 0.7, 1.2]))
    with pytest.raises(ValueError, match=r"whole numbers.*rows 1 hold nan"):
        make(np.array([0.0, np.nan, 1.0]))
    assert make(np.array([0.0, 1.0, -1.0])).identity.tolist() == [0, 1, -1]  # whole floats are labels
    d = make([0, 0, 1, 1, 2, 2])
    with pytest.raises(ValueError, match=r"boolean mask must have one entry per image \(6\), got shape \(2,\)"):
        d.subset(np.array([True, False]))
    with pytest.raises(IndexError, match="subset index refers to rows outside 0..5"):
        d.subset([0, 7])

    def table(**pair):
        return pd.DataFrame([{"left": 0, "right": 1, "same": True, "fold": 0, **pair}])

    with pytest.raises(IndexError, match=r"column 'right' refers to rows outside 0..5 \(e.g. 99\)"):
        make([0, 0, 1, 1, 2, 2], pair_table=table(right=99))
    with pytest.raises(IndexError, match=r"column 'right' refers to rows outside 0..5 \(e.g. -1\)"):
        make([0, 0, 1, 1, 2, 2], pair_table=table(right=-1))  # -1 was the last image after a subset
    with pytest.raises(ValueError, match=r"contradicts the identities: pair 0 \(rows 0, 2: people 0, 1, same=True\)"):
        make([0, 0, 1, 1, 2, 2], pair_table=table(right=2))
    with pytest.raises(ValueError, match="repeat the same two images"):
        make([0, 0, 1, 1, 2, 2], pair_table=pd.concat([table(), table(left=1, right=0, fold=1)], ignore_index=True))
    kept = make([0, 0, 1, 1, 2, 2], pair_table=table(left=2, right=3)).subset([2, 3])
    assert kept.pair_table[["left", "right"]].values.tolist() == [[0, 1]]


def test_numpy_images_are_accepted():
    d = FaceDataset(images=np.zeros((3, 4, 4, 1), np.uint8).transpose(0, 3, 1, 2), identity=[0, 1, 1])
    assert isinstance(d.images, torch.Tensor) and d.images.shape == (3, 1, 4, 4)
    assert d.identity.dtype == np.int64 and d.n_identities == 2 and len(d) == 3


# -- subset ------------------------------------------------------------------------------
def test_subset_by_mask_and_index(ten_people):
    d = ten_people
    mask = d.identity % 2 == 0
    s = d.subset(mask)
    assert len(s) == int(mask.sum())
    np.testing.assert_array_equal(s.identity, d.identity[mask])
    np.testing.assert_array_equal(s.images[:, 0, 0, 0].numpy(), np.flatnonzero(mask))
    np.testing.assert_array_equal(s.factors["row"], np.flatnonzero(mask))
    assert list(s.factors.index) == list(range(len(s)))  # index reset
    idx = np.array([7, 3, 3, 0])
    t = d.subset(idx, name="picked")
    assert t.name == "picked"
    np.testing.assert_array_equal(t.images[:, 0, 0, 0].numpy(), idx)


def test_subset_renumbers_official_pairs():
    ident = np.array([0, 0, 1, 1, 2, 2])
    table = pd.DataFrame({"left": [0, 2, 4, 0], "right": [1, 3, 5, 2], "same": [True, True, True, False], "fold": [0, 1, 2, 3]})
    d = make(ident, pair_table=table)
    s = d.subset(np.array([2, 3, 4, 5]))  # drops images 0, 1: pairs 0 and 3 go
    t = s.pair_table
    assert list(t.columns) == PAIR_COLUMNS and len(t) == 2
    assert t["fold"].tolist() == [1, 2]
    # the renumbered indices still point at the same images
    np.testing.assert_array_equal(s.images[np.array(t.left), 0, 0, 0].numpy(), [2, 4])
    np.testing.assert_array_equal(s.images[np.array(t.right), 0, 0, 0].numpy(), [3, 5])


# -- pairs -------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 20, 60])
def test_pairs_balanced_valid_and_deterministic(ten_people, n):
    d = ten_people
    p = d.pairs(n, seed=7)
    assert list(p.columns) == PAIR_COLUMNS and len(p) == n
    assert int(p["same"].sum()) == n // 2 and (p["fold"] == 0).all()
    left, right = p["left"].to_numpy(), p["right"].to_numpy()
    assert (left != right).all()
    assert ((left >= 0) & (left < len(d)) & (right >= 0) & (right < len(d))).all()
    # the same flag is what the identity labels say
    np.testing.assert_array_equal(d.identity[left] == d.identity[right], p["same"].to_numpy())
    keys = {(min(a, b), max(a, b)) for a, b in zip(left, right)}
    assert len(keys) == n  # no pair twice (in either order)
    assert p.equals(d.pairs(n, seed=7))
    if n > 2:
        assert not p.equals(d.pairs(n, seed=8))


def test_pairs_ignore_unknown_identity():
    d = make(np.array([-1, -1, 0, 0, 1, 1, -1]))
    p = d.pairs(4, seed=0)
    used = np.r_[p.left, p.right]
    assert (d.identity[used] >= 0).all()


def test_pairs_can_use_every_same_pair():
    d = make(np.array([0, 0, 0, 1, 1, 2]))  # 3 + 1 = 4 same-person pairs exist
    p = d.pairs(8, seed=0)
    assert int(p.same.sum()) == 4
    with pytest.raises(ValueError, match="only 4 exist"):
        d.pairs(10, seed=0)


def test_pairs_errors():
    d = make(np.array([0, 0, 1, 1]))
    for bad in (0, 1, 3):
        with pytest.raises(ValueError, match="even"):
            d.pairs(bad)
    with pytest.raises(ValueError, match="two people"):
        make(np.array([0, 0, 0])).pairs(2)
    with pytest.raises(ValueError, match="identity labels"):
        make(np.full(4, -1)).pairs(2)
    with pytest.raises(ValueError, match="no identity has two images"):
        make(np.array([0, 1, 2])).pairs(2)


# -- split_by_identity ---------------------------------------------------------------------
@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 0.9])
def test_split_by_identity_disjoint_and_complete(ten_people, fraction):
    d = ten_people
    train, test = d.split_by_identity(test_fraction=fraction, seed=2)
    assert not set(train.identity) & set(test.identity)
    assert set(train.identity) | set(test.identity) == set(range(10))
    assert len(train) + len(test) == len(d)
    assert test.n_identities == min(max(round(fraction * 10), 1), 9)
    # rows carry their images and factors with them
    np.testing.assert_array_equal(test.images[:, 0, 0, 0].numpy(), test.factors["row"].to_numpy())
    assert train.name == "toy[train]" and test.name == "toy[test]"
    again = d.split_by_identity(test_fraction=fraction, seed=2)[1]
    np.testing.assert_array_equal(again.identity, test.identity)


def test_split_by_identity_varies_with_seed(ten_people):
    tests = {tuple(np.unique(ten_people.split_by_identity(0.3, seed=s)[1].identity)) for s in range(10)}
    assert len(tests) > 1


def test_split_drops_unknown_identity():
    d = make(np.array([-1, 0, 0, 1, 1, 2, 2, 3, 3]))
    train, test = d.split_by_identity(0.5, seed=0)
    assert (train.identity >= 0).all() and (test.identity >= 0).all()
    assert len(train) + len(test) == 8


def test_split_errors(ten_people):
    for bad in (0.0, 1.0, -0.2, 1.5):
        with pytest.raises(ValueError, match="test_fraction"):
            ten_people.split_by_identity(bad)
    with pytest.raises(ValueError, match="two people"):
        make(np.array([0, 0])).split_by_identity(0.5)


# -- grouped (ModVAE / DC-IGN) batches -----------------------------------------------------
@pytest.fixture
def lit_people() -> FaceDataset:
    """4 people x 3 light directions (azimuth, elevation), person 3 missing one light, one unknown face."""
    rows = [(p, az, el) for p in range(4) for az, el in ((0, 0), (20, 0), (20, 10)) if (p, az, el) != (3, 20, 0)]
    rows.append((-1, 0, 0))
    ident, az, el = map(np.array, zip(*rows))
    return make(ident, factors=pd.DataFrame({"azimuth": az, "elevation": el}))


def _groups_of(d: FaceDataset, varying: str) -> list[pd.DataFrame]:
    table = d.factor_table()[d.group_varying == varying]
    return [g for _, g in table.groupby(d.groups[d.group_varying == varying])]


def test_grouped_groups_vary_only_their_factor(lit_people):
    d = lit_people.grouped({"light": ("azimuth", "elevation"), "identity": "identity", "azimuth": "azimuth"})
    for g in _groups_of(d, "light"):  # one person, the light varies
        assert g["identity"].nunique() == 1 and len(g) >= 2 and len(g[["azimuth", "elevation"]].drop_duplicates()) == len(g)
    for g in _groups_of(d, "identity"):  # one light, the person varies
        assert len(g[["azimuth", "elevation"]].drop_duplicates()) == 1 and g["identity"].nunique() == len(g) >= 2
    for g in _groups_of(d, "azimuth"):  # one person and elevation, azimuth varies
        assert g["identity"].nunique() == 1 and g["elevation"].nunique() == 1 and g["azimuth"].nunique() == len(g)
    # the counts by hand: 4 light groups (11 images); identity groups at (0,0) x4 and (20,10) x4,
    # (20,0) x3; azimuth groups (p, el=0) for p in 0..2 (person 3 has one light at el=0)
    assert [len(_groups_of(d, v)) for v in ("light", "identity", "azimuth")] == [4, 3, 3]
    assert (d.group_varying == "light").sum() == 11 and (d.identity >= 0).all()
    assert len(np.unique(d.groups)) == 10  # ids never shared between the copies
    # images travel with their labels (image i of the original set holds the value i)
    for i in range(len(d)):
        j = int(d.images[i, 0, 0, 0])
        assert lit_people.identity[j] == d.identity[i]
        assert (lit_people.factors.iloc[j] == d.factors.iloc[i]).all()


def test_grouped_errors_name_the_factor(lit_people):
    with pytest.raises(ValueError, match="'pose'.*no factor column.*'tilt'"):
        lit_people.grouped({"pose": "tilt"})
    with pytest.raises(ValueError, match="at least one varying factor"):
        lit_people.grouped({})
    with pytest.raises(ValueError, match="fixed factor column.*'tilt'"):
        lit_people.grouped({"azimuth": "azimuth"}, fixed=["identity", "tilt"])
    one_light = lit_people.subset(lit_people.factors["azimuth"].to_numpy() == 0)
    with pytest.raises(ValueError, match="differ in factor 'azimuth'"):
        one_light.grouped({"azimuth": "azimuth", "identity": "identity"})


def test_grouped_holds_the_fixed_factors(lit_people):
    # azimuth groups keyed on identity alone let the elevation vary too; naming it fixes it
    loose = lit_people.grouped({"azimuth": "azimuth", "identity": "identity"})
    strict = lit_people.grouped({"azimuth": "azimuth"}, fixed=["identity", "elevation"])
    assert any(g["elevation"].nunique() > 1 for g in _groups_of(loose, "azimuth"))
    assert all(g["elevation"].nunique() == 1 and g["identity"].nunique() == 1 for g in _groups_of(strict, "azimuth"))
