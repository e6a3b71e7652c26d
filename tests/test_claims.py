"""facelib.claims: checks that fail when a stated pattern does not hold."""

import numpy as np
import pandas as pd
import pytest

from facelib import claims


def test_expect_passes_silently_and_raises_an_assertion_with_the_evidence():
    claims.expect(2 > 1, "two beats one")
    with pytest.raises(AssertionError, match=r"claims: 'KL falls'.*\(12 vs 15\)"):
        claims.expect(12 > 15, "KL falls", "12 vs 15")
    with pytest.raises(claims.ClaimError):
        claims.expect(np.bool_(False), "numpy booleans count too")
    with pytest.raises(ValueError, match="non-empty string"):
        claims.expect(True, "")


@pytest.mark.parametrize("values, word", [
    ([1, 2, 3], "rises"), ([3, 2, 1], "falls"), ([1, 1], "is flat"), ([1, 3, 2], "is not monotone"),
    ([1, 1, 2], "is not monotone"),
])
def test_trend_words(values, word):
    assert claims.trend(values) == word


def test_trend_refuses_too_little_or_bad_data():
    with pytest.raises(ValueError, match="two or more finite numbers"):
        claims.trend([1.0])
    with pytest.raises(ValueError, match="two or more finite numbers"):
        claims.trend([1.0, np.nan])


def test_describe_trend_says_what_the_table_shows_in_beta_order():
    t = pd.DataFrame({"beta": [4.0, 1.0], "test_kl": [8.1, 12.3]})
    assert claims.describe_trend(t, "beta", "test_kl", "the KL", "nats") == \
        "As beta goes 1 → 4, the KL falls (12.3 → 8.1 nats)."
    t2 = pd.DataFrame({"beta": [1.0, 4.0], "test_kl": [8.1, 12.3]})
    assert "the KL rises" in claims.describe_trend(t2, "beta", "test_kl", "the KL")
    with pytest.raises(ValueError, match="column 'nope' not in the table"):
        claims.describe_trend(t, "beta", "nope", "x")


def test_diagonal_dominance_reads_a_block_spread_table():
    spread = pd.DataFrame({"yaw": [0.9, 0.1, 0.2], "pitch": [0.3, 0.8, 0.2], "other": [0.5, 0.5, 0.5]},
                          index=["yaw", "pitch", "identity"])
    d = claims.diagonal_dominance(spread).set_index("row")
    assert list(d.index) == ["yaw", "pitch"]  # identity has no column, other no row
    assert d.loc["yaw", "ratio"] == pytest.approx(0.9 / 0.3)
    assert d.loc["pitch", "ratio"] == pytest.approx(0.8 / 0.1)
    assert d["largest"].all()
    spread.loc["pitch", "yaw"] = 0.95
    assert not claims.diagonal_dominance(spread).set_index("row").loc["pitch", "largest"]
    with pytest.raises(ValueError, match="at least two row names"):
        claims.diagonal_dominance(spread[["other"]])


def test_trained_models_needs_the_zoo_or_the_flag():
    assert not claims.trained_models({})
    assert not claims.trained_models({"models": ["vae"], "check_trained_claims": False})
    assert claims.trained_models({"models": "zoo"})
    assert claims.trained_models({"check_trained_claims": True})
