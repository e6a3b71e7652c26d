"""Measured figures as data: results files with provenance, and a README that quotes them."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from facelib import results
from facelib.zoo import readme as readme_blocks


def test_write_adds_provenance_and_read_returns_the_table(tmp_path):
    table = pd.DataFrame({"model": ["a", "b"], "mig": [0.5, 0.25]}).set_index("model")
    path = results.write("demo", table, command=["bench.py", "--zoo"], folder=tmp_path)
    back = results.read("demo", tmp_path)
    assert path == tmp_path / "demo.csv"
    assert back[["model", "mig"]].values.tolist() == [["a", 0.5], ["b", 0.25]]
    assert set(results.PROVENANCE) <= set(back.columns)
    assert back.command.iloc[0] == "bench.py --zoo" and back.cores.iloc[0] >= 1
    assert back.date.iloc[0][:4].isdigit() and back.torch.iloc[0]


def test_append_keeps_old_rows_with_their_provenance_and_replaces_a_remeasured_key(tmp_path):
    results.write("demo", pd.DataFrame({"k": ["a", "b"], "v": [1, 2]}), command="first run", folder=tmp_path)
    results.append("demo", pd.DataFrame({"k": ["b", "c"], "v": [20, 30]}), key="k", command="second run",
                   folder=tmp_path)
    back = results.read("demo", tmp_path).set_index("k")
    assert back.v.to_dict() == {"a": 1, "b": 20, "c": 30}
    assert back.command.to_dict() == {"a": "first run", "b": "second run", "c": "second run"}
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(ValueError, match="key column 'nope'"):
        results.append("demo", pd.DataFrame({"k": ["d"]}), key="nope", folder=tmp_path)
    (tmp_path / "plain.csv").write_text("k,v\na,1\n")
    with pytest.raises(ValueError, match="not written by"):
        results.append("plain", pd.DataFrame({"k": ["d"], "v": [4]}), key="k", folder=tmp_path)
    assert (tmp_path / "plain.csv").read_text() == "k,v\na,1\n"   # left as it was
    results.append("fresh", pd.DataFrame({"k": ["x"]}), key="k", command="c", folder=tmp_path)
    assert results.read("fresh", tmp_path).command.tolist() == ["c"]


def test_bad_results_are_refused(tmp_path):
    with pytest.raises(ValueError, match="non-empty DataFrame"):
        results.write("x", pd.DataFrame(), folder=tmp_path)
    with pytest.raises(ValueError, match="provenance column"):
        results.write("x", pd.DataFrame({"date": [1]}), folder=tmp_path)
    with pytest.raises(FileNotFoundError, match="run the benchmark"):
        results.read("missing", tmp_path)


def test_markdown_and_readme_blocks(tmp_path):
    results.write("demo", pd.DataFrame({"model": ["a"], "mig": [0.53512]}), command="b", folder=tmp_path)
    assert results.markdown(results.read("demo", tmp_path), ["model", "mig"]) == (
        "| model | mig |\n|---|---|\n| a | 0.535 |")
    small = pd.DataFrame({"model": ["a", "b"], "mse": [0.008834, -0.0521], "n": [1.0, 0.0]})
    assert results.markdown(small, ["model", "mse", "n"]).splitlines()[2:] == ["| a | 0.00883 | 1.000 |",
                                                                              "| b | -0.0521 | 0.000 |"]
    stale = "intro\n<!-- results:demo columns=model,mig -->\n| old |\n<!-- /results -->\nend\n"
    fresh = results.render_readme(stale, tmp_path)
    assert fresh == "intro\n<!-- results:demo columns=model,mig -->\n| model | mig |\n|---|---|\n| a | 0.535 |\n<!-- /results -->\nend\n"
    assert results.render_readme(fresh, tmp_path) == fresh
    with pytest.raises(ValueError, match="not in the results table"):
        results.render_readme("<!-- results:demo columns=model,auc -->\n<!-- /results -->", tmp_path)


def test_a_block_can_quote_only_the_rows_a_boolean_column_marks(tmp_path):
    results.write("pick", pd.DataFrame({"name": ["a", "b", "c"], "chosen": [False, True, True]}), command="x",
                  folder=tmp_path)
    block = "<!-- results:pick columns=name where=chosen -->\n<!-- /results -->"
    assert results.render_readme(block, tmp_path) == (
        "<!-- results:pick columns=name where=chosen -->\n| name |\n|---|\n| b |\n| c |\n<!-- /results -->")
    with pytest.raises(ValueError, match="no column 'best'"):
        results.render_readme("<!-- results:pick columns=name where=best -->\n<!-- /results -->", tmp_path)


def test_a_block_can_quote_only_the_rows_whose_column_reads_a_value(tmp_path):
    results.write("runs", pd.DataFrame({"kind": ["result", "curve", "result"], "name": ["a", "b", "c"]}),
                  command="x", folder=tmp_path)
    block = "<!-- results:runs columns=name where=kind=result -->\n<!-- /results -->"
    assert results.render_readme(block, tmp_path) == (
        "<!-- results:runs columns=name where=kind=result -->\n| name |\n|---|\n| a |\n| c |\n<!-- /results -->")


#: Results files no table quotes: per-fold rows, per-pair scores, ROC points and rows a later run
#: replaced stay in the CSVs (docs/results.md quotes the tables made from them).
RAW_RESULTS = {"lfw_view2_folds", "lfw_view2_scores", "lfw_view2_roc", "lfw_view2_superseded"}
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", readme_blocks.documents(ROOT), ids=lambda p: p.name)
def test_every_document_quotes_the_results_files(path):
    text = path.read_text()
    assert readme_blocks.render(text) == text, (
        f"the measured figures of {path.name} differ from benchmarks/results/ and the zoo manifest; "
        "run `python -m facelib.zoo.readme`")


def test_results_md_quotes_every_measured_table_and_the_readme_the_zoo():
    quoted = set(re.findall(r"<!-- results:([\w.-]+) ", (ROOT / "docs" / "results.md").read_text()))
    files = {p.stem for p in results.shipped_results_dir().glob("*.csv")}
    assert files - RAW_RESULTS - quoted == set(), "docs/results.md leaves out a measured table"
    assert not quoted & {"lfw_view2_superseded"}, "superseded rows stay in their CSV"
    assert "<!-- results:zoo_headline " in (ROOT / "README.md").read_text()


def test_the_zoo_headline_puts_each_model_beside_pca():
    table = readme_blocks.headline()
    assert set(table.name) == set(readme_blocks.table().name)
    lfw = table[table.name.str.startswith("lfw-")]
    assert lfw.category.notna().all() and lfw.view1_accuracy.notna().all(), "every LFW number has its category"
    both = table.dropna(subset=["mse", "pca_mse"])
    assert len(both) and ((both.mse / both.pca_mse - both.mse_vs_pca).abs() < 1e-6).all()


def test_the_command_checks_and_rewrites_documents(tmp_path, capsys):
    stale = tmp_path / "doc.md"
    stale.write_text("<!-- results:zoo columns=name -->\n| old |\n<!-- /results -->\n")
    assert readme_blocks.main(["--check", str(stale)]) == 1 and "| old |" in stale.read_text()
    assert readme_blocks.main([str(stale)]) == 0 and "| old |" not in stale.read_text()
    assert readme_blocks.main(["--check", str(stale)]) == 0


def test_results_are_written_under_the_current_folder_and_read_from_the_shipped_ones(tmp_path, monkeypatch):
    """Writers default to ./benchmarks/results (or $FACELIB_RESULTS) and refuse to guess another
    folder; readers fall back to the results that come with facelib (the checkout's here,
    facelib/measured in a wheel), so nothing reads the checkout of an installed facelib."""
    repo = Path(__file__).resolve().parents[1]
    monkeypatch.delenv(results.ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert results.shipped_results_dir() == repo / "benchmarks" / "results"
    assert results.results_dir() == tmp_path / "benchmarks" / "results"
    table = pd.DataFrame({"model": ["a"], "mse": [0.5]})
    with pytest.raises(FileNotFoundError, match=r"no folder benchmarks/results under the current folder.*FACELIB_RESULTS"):
        results.write("reconstruction", table, command="c")
    shipped = results.read("reconstruction")  # no ./benchmarks/results: the shipped file
    assert len(shipped) > 1 and shipped.equals(pd.read_csv(repo / "benchmarks" / "results" / "reconstruction.csv"))
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    results.write("reconstruction", table, command="c")  # the user's own run is read first
    assert list(results.read("reconstruction").model) == ["a"]
    monkeypatch.setenv(results.ENV, str(tmp_path / "elsewhere"))
    assert results.write("mine", table, command="c") == tmp_path / "elsewhere" / "mine.csv"
    with pytest.raises(FileNotFoundError, match=r"no results file nothing\.csv in .*elsewhere or .*benchmarks/results"):
        results.read("nothing")
