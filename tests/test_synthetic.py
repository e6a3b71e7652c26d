"""Synthetic faces: geometry responds to its factors, tables match images, samplers hold factors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from facelib.data import load
from facelib.data.synthetic import (
    IDENTITY_PARAMS,
    LANDMARKS,
    NO_JITTER,
    NUISANCE_FACTORS,
    FactorRanges,
    SyntheticFaces,
    load_synthetic,
)
from facelib.viz import image_grid


@pytest.fixture(scope="module")
def faces() -> SyntheticFaces:
    return SyntheticFaces(size=32, channels=1, n_identities=12, seed=3)


@pytest.fixture(scope="module")
def faces64() -> SyntheticFaces:
    return SyntheticFaces(size=64, channels=3, n_identities=6, seed=1)


def _background(images: torch.Tensor) -> torch.Tensor:
    """Pixels equal to the corner colour (the plain background)."""
    corner = images[:, :, :1, :1]
    return (images == corner).all(dim=1)


def _x_centroid(weights: torch.Tensor) -> np.ndarray:
    w = weights.double()
    x = torch.arange(w.shape[-1], dtype=torch.float64)
    return ((w * x).sum((-2, -1)) / w.sum((-2, -1))).numpy()


# -- geometry ----------------------------------------------------------------------------
def test_yaw_moves_nose_tip_and_face_monotonically(faces64):
    yaws = np.linspace(-45, 45, 7)
    # a dark-haired, light-skinned person so skin and hair separate by brightness
    person = {p: np.zeros(yaws.size) for p in IDENTITY_PARAMS}
    person["skin_tone"][:] = 0.0
    person["hair_darkness"][:] = 1.0
    images, marks = faces64.render({**person, "yaw": yaws}, return_landmarks=True)
    nose_x = marks[:, LANDMARKS.index("nose_tip"), 0].numpy()
    assert np.all(np.diff(nose_x) > 1.0), nose_x
    assert abs(nose_x[3] - 32) < 2                      # frontal nose on the centre line
    # the image agrees: bright skin moves right relative to the whole head silhouette
    gray = images.float().mean(1)
    head = ~_background(images)
    skin = head & (gray > 150)
    shift = _x_centroid(skin) - _x_centroid(head)
    assert np.all(np.diff(shift) > 0), shift


def test_pitch_moves_nose_tip_up(faces):
    pitches = np.linspace(-20, 20, 5)
    _, marks = faces.render({"identity": np.zeros(5, dtype=int), "pitch": pitches}, return_landmarks=True)
    nose_y = marks[:, LANDMARKS.index("nose_tip"), 1].numpy()
    assert np.all(np.diff(nose_y) < 0), nose_y          # image y points down


def test_person_cache_eviction_gives_the_same_images(faces):
    small = SyntheticFaces(size=32, channels=1, n_identities=12, seed=3, cache_mb=0.6)
    assert small.renderer._cache_max < 6
    for ids in ([0, 1, 2], [3, 4], [0, 5, 0], list(range(12)), [7, 1]):
        table = {"identity": np.array(ids), "yaw": np.linspace(-30, 30, len(ids))}
        assert torch.equal(small.render(table), faces.render(table)), ids


def test_yaw_and_light_mirror_symmetry(faces64):
    """The face is left-right symmetric: yaw a, light b mirrors yaw -a, light -b."""
    f = {"identity": [2, 2], "yaw": [25.0, -25.0], "light_azimuth": [50.0, -50.0]}
    a, b = faces64.render(f).float()
    diff = (a - b.flip(-1)).abs().mean().item()
    other = (a - b).abs().mean().item()
    assert diff < 0.25 * other, (diff, other)


def test_light_azimuth_moves_brightness_to_lit_side(faces):
    az = np.linspace(-80, 80, 5)
    images = faces.render({"identity": np.full(az.size, 4), "light_azimuth": az})
    face = ~_background(images)
    cx = _x_centroid(images[:, 0].double() * face)
    assert np.all(np.diff(cx) > 0), cx
    mid = images.shape[-1] / 2
    assert cx[0] < mid < cx[-1]


def test_expression_opens_the_mouth_raises_the_brows_and_leaves_the_eyes(faces64):
    imgs, marks = faces64.render({"identity": [1, 1], "expression": [0.0, 1.0]}, return_landmarks=True)
    gray = imgs.float().mean(1)
    mx, my = marks[0, LANDMARKS.index("mouth")].round().long().tolist()
    box = (slice(my - 1, my + 5), slice(mx - 3, mx + 4))
    closed, opened = gray[0][box], gray[1][box]
    assert opened.min() < closed.min() - 20          # the dark inside of the open mouth
    for eye in ("left_eye", "right_eye"):            # the eyes do not move ...
        assert torch.allclose(marks[0, LANDMARKS.index(eye)], marks[1, LANDMARKS.index(eye)], atol=0.5)
    eye_y = int(marks[0, LANDMARKS.index("left_eye"), 1])
    brows = (gray[0, eye_y - 8 : eye_y - 1] - gray[1, eye_y - 8 : eye_y - 1]).abs().mean()
    assert brows > 1.0                                # ... but the eyebrows above them lift
    # and the change is big enough to learn: comparable to a few degrees of yaw, not noise
    whole = (gray[0] - gray[1]).abs().mean()
    assert whole > 1.5, whole


def test_expression_changes_the_image_about_as_much_as_the_other_factors_at_32px():
    """At the zoo's 32 px a factor the pixels barely show caps every disentanglement metric: the
    full expression range must change a sizeable fraction of the grey levels the smallest other
    per-image factor (pitch) changes (it was 0.22 of it, 3.7 grey levels, before the jaw drop)."""
    faces = SyntheticFaces(size=32, channels=1, n_identities=10, seed=0, ranges=FactorRanges(**NO_JITTER))
    base = faces.sample(200, seed=5).factors
    change = {}
    for name in ("yaw", "pitch", "light_azimuth", "light_elevation", "expression"):
        lo, hi = getattr(faces.ranges, name)
        low, high = base.assign(**{name: lo}), base.assign(**{name: hi})
        change[name] = (faces.render(low).float() - faces.render(high).float()).abs().mean().item()
    others = min(v for k, v in change.items() if k != "expression")
    assert change["expression"] > 6.0, change
    assert change["expression"] > 0.35 * others, change


def test_identities_differ_more_than_a_small_pose_change(faces):
    rng = np.random.default_rng(0)
    between, within = [], []
    for _ in range(8):
        base = faces._draw(1, rng).iloc[0].to_dict()
        a, b = rng.choice(faces.n_identities, 2, replace=False)
        rows = [dict(base, identity=int(a)), dict(base, identity=int(b)),
                dict(base, identity=int(a), yaw=base["yaw"] + 3.0, pitch=base["pitch"] + 2.0)]
        x = faces.render(pd.DataFrame(rows)).float()
        between.append((x[0] - x[1]).abs().mean().item())
        within.append((x[0] - x[2]).abs().mean().item())
    assert np.mean(between) > 1.5 * np.mean(within), (between, within)


# -- tables, samplers, determinism --------------------------------------------------------
def test_factors_table_matches_images_row_for_row(faces):
    ds = faces.sample(10, seed=5)
    assert list(ds.factors.columns) == ["identity", *IDENTITY_PARAMS, *NUISANCE_FACTORS]
    assert np.array_equal(ds.factors["identity"].to_numpy(), ds.identity)
    assert torch.equal(faces.render(ds.factors), ds.images)
    assert torch.equal(faces.render(ds.factors, chunk=3), ds.images)   # batching changes nothing
    for i in (0, 7):                                     # alone, and in reverse order
        assert torch.equal(faces.render(ds.factors.iloc[[i]]), ds.images[i : i + 1])
    assert torch.equal(faces.render(ds.factors.iloc[::-1]), ds.images.flip(0))
    # identity parameters in the table are the person's
    assert np.allclose(ds.factors[list(IDENTITY_PARAMS)].to_numpy(), faces.people[ds.identity])


@pytest.mark.parametrize("factor", ["identity", "yaw", "light_azimuth", "expression", "nuisance"])
def test_sample_varying_holds_all_other_factors(faces, factor):
    ds = faces.sample_varying(factor, 6, seed=2)
    table = ds.factors
    moving = {"identity": ["identity", *IDENTITY_PARAMS], "nuisance": list(NUISANCE_FACTORS)}.get(factor, [factor])
    for col in table.columns:
        if col in moving:
            continue
        assert table[col].nunique() == 1, col
    assert table[moving[0]].nunique() == 6
    assert set(ds.group_varying) == {factor} and set(ds.groups) == {0}
    # a fresh base per batch
    other = faces.sample_varying(factor, 6, seed=3).factors
    fixed = [c for c in NUISANCE_FACTORS if c not in moving]
    if fixed:
        assert not np.allclose(table[fixed].iloc[0], other[fixed].iloc[0])


def test_sample_holding_holds_the_named_factor(faces):
    for factor in ("identity", "pitch"):
        table = faces.sample_holding(factor, 8, seed=1).factors
        assert table[factor].nunique() == 1
        for col in ("yaw", "light_elevation", "expression") if factor == "identity" else ("identity", "yaw"):
            assert table[col].nunique() > 1


def test_deterministic_for_a_seed():
    a = SyntheticFaces(size=32, n_identities=5, seed=7).sample(6, seed=1)
    b = SyntheticFaces(size=32, n_identities=5, seed=7).sample(6, seed=1)
    c = SyntheticFaces(size=32, n_identities=5, seed=8).sample(6, seed=1)
    assert torch.equal(a.images, b.images)
    pd.testing.assert_frame_equal(a.factors, b.factors)
    assert not torch.equal(a.images, c.images)


def test_person_k_does_not_depend_on_how_many_people():
    """A model trained on many people can be scored on a source of the first few (same seed)."""
    few, many = SyntheticFaces(size=32, n_identities=3, seed=7), SyntheticFaces(size=32, n_identities=50, seed=7)
    codes = np.array([[0, 1, 2, 3, 4, 5], [2, 9, 0, 5, 1, 7]])
    assert torch.equal(few.render_codes(codes), many.render_codes(codes))
    assert not torch.equal(few.render_codes(codes), SyntheticFaces(size=32, n_identities=3, seed=8).render_codes(codes))


def test_load_registry_colour_and_grouping():
    ds = load("synthetic", n=24, size=32, channels=3, seed=0, n_identities=5, yaw=(-10, 10))
    assert ds.images.shape == (24, 3, 32, 32) and ds.images.dtype == torch.uint8
    assert ds.name == "synthetic" and len(ds.factors) == 24
    assert ds.factors["yaw"].between(-10, 10).all()
    assert ds.meta["ranges"]["yaw"] == [-10.0, 10.0] and ds.meta["options"]["n_identities"] == 5
    face = ~_background(ds.images)
    r, b = (ds.images[:, k].float()[face].mean() for k in (0, 2))
    assert r > b + 20                                    # skin is actually coloured

    g = load_synthetic(n=22, size=32, n_identities=8, seed=0, group_size=4, group_factor="all")
    assert g.groups is not None and len(np.unique(g.groups)) == 6
    table = g.factors
    for gid in np.unique(g.groups):
        rows = table[g.groups == gid]
        (var,) = set(g.group_varying[g.groups == gid])
        moving = ["identity", *IDENTITY_PARAMS] if var == "identity" else [var]
        assert all(rows[c].nunique() == 1 for c in table.columns if c not in moving), var
        if len(rows) > 1:
            assert rows[moving[0]].nunique() == len(rows)
    assert set(g.group_varying) == {"identity", "yaw", "pitch", "light_azimuth", "light_elevation", "expression"}


def test_factor_source_protocol(faces):
    from facelib.metrics.sources import check_source

    check_source(faces)
    assert faces.factor_names == ["identity", "yaw", "pitch", "light_azimuth", "light_elevation", "expression"]
    assert faces.factor_sizes == [12, 10, 10, 10, 10, 10]
    rng = np.random.default_rng(0)
    codes = faces.sample_factors(50, rng)
    assert codes.shape == (50, 6) and codes.dtype == np.int64
    assert (codes >= 0).all() and (codes < np.array(faces.factor_sizes)).all()
    values = faces.codes_to_factors(np.array([[3, 0, 9, 0, 0, 9]]))
    assert values["yaw"].item() == -45.0 and values["pitch"].item() == 20.0 and values["expression"].item() == 1.0
    imgs = faces.render_codes(codes[:4], rng)
    assert imgs.shape == (4, 1, 32, 32) and imgs.dtype == torch.uint8
    assert torch.equal(faces.render(codes[:4]), imgs)     # `render` takes codes as well
    person = faces.render_codes(np.array([[3, 5, 5, 5, 5, 0]]))
    by_table = faces.render({"identity": [3], **faces.codes_to_factors(np.array([[3, 5, 5, 5, 5, 0]])).iloc[0, 1:].to_dict()})
    assert torch.equal(person, by_table)
    custom = SyntheticFaces(size=32, n_identities=4, levels={"yaw": 3, "scale": 2})
    assert custom.factor_names == ["identity", "yaw", "scale"] and custom.factor_sizes == [4, 3, 2]


def test_no_jitter_faces_are_the_factor_sources_faces():
    """Training faces drawn with NO_JITTER come from the distribution the metrics sample: the
    same image as the source renders for the same identity, pose, light and expression."""
    steady = load_synthetic(n=6, size=32, n_identities=4, seed=2, **NO_JITTER)
    assert (steady.factors[["tx", "ty"]].to_numpy() == 0).all() and (steady.factors["scale"] == 1).all()
    source = SyntheticFaces(size=32, n_identities=4, seed=2)
    scored = steady.factors[["identity", *source.factor_names[1:]]]
    assert torch.equal(source.render(scored), steady.images)
    jittered = load_synthetic(n=6, size=32, n_identities=4, seed=2)
    assert jittered.factors["tx"].abs().min() > 0
    assert not torch.equal(source.render(jittered.factors[["identity", *source.factor_names[1:]]]), jittered.images)


def test_bad_input_raises_clear_errors(faces):
    with pytest.raises(ValueError, match="multiple of 16"):
        SyntheticFaces(size=40)
    with pytest.raises(ValueError, match="channels must be 1"):
        load_synthetic(n=4, size=32, channels=2)
    with pytest.raises(ValueError, match="positive integer"):
        load_synthetic(n=0, size=32)
    with pytest.raises(ValueError, match="unknown factor 'smile'"):
        faces.sample_varying("smile", 4)
    with pytest.raises(ValueError, match="unknown factor"):
        faces.render({"identity": [0], "yawn": [3.0]})
    with pytest.raises(TypeError, match="unknown synthetic option"):
        load_synthetic(n=4, size=32, yaww=(0, 1))
    with pytest.raises(ValueError, match="low <= high"):
        FactorRanges(yaw=(10, -10))
    with pytest.raises(ValueError, match="identity must be integers in 0 .. 11"):
        faces.render({"identity": [12]})
    with pytest.raises(ValueError, match="codes out of range"):
        faces.render_codes(np.array([[0, 10, 0, 0, 0, 0]]))
    with pytest.raises(ValueError, match="group_size"):
        faces.sample_grouped(8, group_size=1)


def test_render_restores_torch_threads(faces):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        faces.render({"identity": [0]})                  # renders with threads=1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads must be"):
        SyntheticFaces(size=32, threads=0)


def test_montage_tiles_images(faces):
    imgs = faces.sample(6, seed=0).images
    im = image_grid(imgs, nrow=3, padding=2, as_pil=True)  # the montage's tiling
    assert im.size == (3 * 34 + 2, 2 * 34 + 2)
    assert np.array_equal(np.asarray(im)[2:34, 2:34], imgs[0, 0].numpy())
