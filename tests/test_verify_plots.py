"""Plots draw one curve per method and reject malformed input."""

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import pytest

from facelib.verify import plots


def test_roc_overlay_and_distributions():
    rng = np.random.default_rng(0)
    y = rng.random(100) < 0.5
    scores = {"good": (y, y + rng.normal(size=100) * 0.3), "bad": (y, rng.normal(size=100))}
    ax = plots.roc_overlay(scores)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(labels) == 2 and any(l.startswith("good (AUC") for l in labels)
    ax = plots.score_distributions(scores, "good")
    assert ax.get_title() == "good"
    with pytest.raises(ValueError, match="no scores"):
        plots.score_distributions(scores, "missing")
    with pytest.raises(ValueError, match="DataFrame"):
        plots.roc_overlay(42)


def test_plots_take_protocol_scores():
    from facelib.verify import protocols as P
    from facelib.verify import scores as S
    import pandas as pd

    rng = np.random.default_rng(1)
    emb = rng.normal(size=(80, 3))
    table = pd.DataFrame({"left": np.arange(0, 80, 2), "right": np.arange(1, 80, 2),
                          "same": np.arange(40) % 2 == 0, "fold": np.arange(40) // 20})
    emb[table.right[table.same]] = emb[table.left[table.same]] + rng.normal(size=(20, 3)) * 0.1
    collected = P.evaluate(None, {"eucl": S.EuclideanScore()}, P.Folds(emb, table), return_details=True).scores
    assert sum(len(c) for c in collected) == 40  # every pair scored once, as a test pair
    ax = plots.roc_overlay(collected)
    assert "eucl (AUC 1.000)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_anchor_comparison_draws_ours_and_the_anchors_by_category():
    import matplotlib

    matplotlib.use("Agg")
    from facelib.verify.selection import PUBLISHED

    ours = pd.DataFrame({"system": ["a", "b"], "category": ["image-restricted, no outside data",
                                                            "unrestricted, no outside data"],
                         "view2_accuracy": [0.8, 0.82], "view2_se": [0.01, 0.005]})
    ax = plots.anchor_comparison(ours, PUBLISHED)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 2 + sum(len(v) for v in PUBLISHED.values())
    assert any(l.startswith("facelib: a") for l in labels)
    xs = sorted(round(c.lines[0].get_xdata()[0], 6) for c in ax.containers)
    assert 80.0 in xs and 82.0 in xs and 87.47 in xs
    with pytest.raises(ValueError, match="view2_table"):
        plots.anchor_comparison(pd.DataFrame({"x": [1]}), PUBLISHED)


def test_anchor_roc_draws_each_curve_and_each_anchor_at_its_equal_error_point():
    import matplotlib

    matplotlib.use("Agg")
    from facelib.verify.selection import PUBLISHED

    far = np.array([0.0, 0.1, 0.5, 1.0])
    roc = pd.concat([pd.DataFrame({"system": name, "category": cat, "far": far, "tar": tar, "tar_se": 0.01})
                     for name, cat, tar in (("a", "image-restricted, no outside data", [0.1, 0.5, 0.9, 1.0]),
                                            ("b", "unrestricted, no outside data", [0.2, 0.6, 0.95, 1.0]))])
    ax = plots.anchor_roc(roc, PUBLISHED)
    lines = {l.get_label(): l for l in ax.get_lines()}
    np.testing.assert_allclose(lines["facelib: a [image-restricted]"].get_ydata(), [0.1, 0.5, 0.9, 1.0])
    fv = lines["Fisher vector faces (Simonyan et al. 2013) 87.5 % [image-restricted]"]
    assert fv.get_xdata()[0] == pytest.approx(1 - 0.8747) and fv.get_ydata()[0] == pytest.approx(0.8747)
    # balanced pairs: the anchor's point has accuracy (TAR + 1 - FAR) / 2 = its published mean
    assert (fv.get_ydata()[0] + 1 - fv.get_xdata()[0]) / 2 == pytest.approx(0.8747)
    n_anchors = sum(len(v) for v in PUBLISHED.values())
    assert len([k for k in lines if not k.startswith("_")]) == 2 + n_anchors
    with pytest.raises(ValueError, match="roc_table"):
        plots.anchor_roc(pd.DataFrame({"x": [1]}), PUBLISHED)
