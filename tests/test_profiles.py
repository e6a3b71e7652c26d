import pytest

from facelib.study.profiles import PROFILES, resolve


def test_none_takes_profile_default_and_explicit_value_wins():
    got = resolve("quick", image_size=None, epochs=7)
    assert got == {"image_size": PROFILES["quick"]["image_size"], "epochs": 7}
    assert resolve("full", image_size=None)["image_size"] == PROFILES["full"]["image_size"]


def test_quick_is_smaller_than_full():
    q, f = PROFILES["quick"], PROFILES["full"]
    assert set(q) == set(f)
    for key in ("image_size", "n_images", "metric_n_train", "n_pairs"):
        assert q[key] < f[key], key
    # work per model is images seen: the full profile may take fewer passes over a larger set
    assert q["epochs"] * q["n_images"] < f["epochs"] * f["n_images"]


def test_lists_are_copied():
    got = resolve("quick", betas=None)
    got["betas"].append(99.0)
    assert 99.0 not in PROFILES["quick"]["betas"]


def test_errors_name_what_exists():
    with pytest.raises(ValueError, match="quick"):
        resolve("medium", epochs=None)
    with pytest.raises(ValueError, match="set it explicitly"):
        resolve("quick", not_a_parameter=None)
