"""The README's and docs' Python examples run as written; the README keeps its shape.

Every ```python block of README.md and of each docs/*.md runs, in order and in one namespace per
document (a reader's session), in a fresh interpreter in a temporary folder with FACELIB_DATA set, so a renamed argument or an
undefined name in an example fails here and not for a reader. A block may be marked, on the line
right before it, with ``<!-- readme-test: skip (reason) -->`` when it is long-running or needs data
that is absent; a skipped block is still compiled and checked for names that no block up to it
defines (the README's `lfw` and `images` were such names).
"""

from __future__ import annotations

import ast
import builtins
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from facelib.verify import scores as S

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: The documents whose examples run: the README first, then docs/*.md.
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->")


def readme_blocks(text: str, doc: str = "README.md") -> list[dict]:
    """Every ```python block: its document, line, code and skip reason (None: it runs)."""
    out = []
    for m in FENCE.finditer(text):
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = SKIP.search(before)
        out.append({"doc": doc, "line": text[: m.start()].count("\n") + 1, "code": m.group(1),
                    "skip": mark.group("reason").strip() if mark else None})
    return out


def defined_names(tree: ast.AST) -> set[str]:
    """Names a block binds: assignments, imports, defs, arguments, loop and with targets."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def undefined_names(blocks: list[dict]) -> dict[int, list[str]]:
    """line -> names a block reads that neither it, an earlier block of its document nor Python defines."""
    known, out, doc = set(dir(builtins)), {}, None
    for b in blocks:
        if b.get("doc") != doc:
            known, doc = set(dir(builtins)), b.get("doc")
        tree = ast.parse(b["code"], filename=f"README.md:{b['line']}")
        known |= defined_names(tree)
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        if used - known:
            out[b["line"]] = sorted(used - known)
    return out


def where(block: dict) -> str:
    return f"{block.get('doc', 'README.md')}:{block['line']}"


BLOCKS = [b for path in DOCUMENTS for b in readme_blocks(path.read_text(), str(path.relative_to(ROOT)))]
README_BLOCKS = [b for b in BLOCKS if b["doc"] == "README.md"]
#: Seconds all unskipped examples together may take (they take about thirty).
LIMIT_S = 120

RUNNER = textwrap.dedent("""
    import json, sys, traceback
    blocks = json.load(open(sys.argv[1]))
    namespace, doc, results = None, None, []
    for b in blocks:
        if b.get("doc") != doc:  # each document is its own reader's session
            namespace, doc = {"__name__": "__readme__"}, b.get("doc")
        if b["skip"]:
            continue
        where = "%s:%d" % (b.get("doc", "README.md"), b["line"])
        try:
            exec(compile(b["code"], where, "exec"), namespace)
            results.append({"where": where, "error": None})
        except BaseException:
            results.append({"where": where, "error": traceback.format_exc(limit=6)})
    json.dump(results, open(sys.argv[2], "w"))
""")


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> dict[str, str | None]:
    """document:line -> traceback (None: ran) of every unskipped block, run once in one fresh interpreter."""
    work = tmp_path_factory.mktemp("readme")
    (work / "blocks.json").write_text(json.dumps(BLOCKS))
    (work / "runner.py").write_text(RUNNER)
    env = {**os.environ, "MPLBACKEND": "Agg",
           "FACELIB_DATA": os.environ.get("FACELIB_DATA", str(README.parent / "data"))}
    try:
        proc = subprocess.run([sys.executable, "runner.py", "blocks.json", "results.json"], cwd=work, env=env,
                              capture_output=True, text=True, timeout=LIMIT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the README examples ran over {LIMIT_S} s: make the long one quick, or mark it "
                    "<!-- readme-test: skip (reason) -->")
    assert proc.returncode == 0, f"the README runner itself failed:\n{proc.stderr[-3000:]}"
    return {r["where"]: r["error"] for r in json.loads((work / "results.json").read_text())}


def test_the_readme_has_python_examples_and_few_skips():
    assert len(BLOCKS) >= 3 and README_BLOCKS and not any(b["skip"] for b in README_BLOCKS)
    skipped = [b for b in BLOCKS if b["skip"]]
    assert len(skipped) <= len(BLOCKS) // 2 + 1, "keep skips few: make long examples quick instead"
    assert all(len(b["skip"]) > 10 for b in skipped), "each skip says why"


def test_no_example_reads_a_name_that_no_example_defines():
    undefined = undefined_names(BLOCKS)
    assert not undefined, f"examples (by line) use names defined nowhere before them in their document: {undefined}"


@pytest.mark.parametrize("block", [b for b in BLOCKS if not b["skip"]], ids=where)
def test_readme_example_runs(block, ran):
    assert where(block) in ran, "the runner did not reach this block"
    assert ran[where(block)] is None, f"{where(block)} fails as written:\n{ran[where(block)]}"


def test_the_checks_catch_a_failing_or_undefined_example():
    """The helpers see what they must: a marked block, an undefined name, a name defined earlier."""
    text = ("```python\nx = 1\n```\n\n<!-- readme-test: skip (needs a GPU for hours) -->\n"
            "```python\ny = x + z\n```\n")
    blocks = readme_blocks(text)
    assert [b["skip"] for b in blocks] == [None, "needs a GPU for hours"]
    assert undefined_names(blocks) == {6: ["z"]}


def test_the_runner_reports_a_block_that_raises(tmp_path):
    blocks = [{"line": 1, "code": "a = 1\n", "skip": None}, {"line": 5, "code": "raise ValueError(a)\n", "skip": None},
              {"line": 9, "code": "raise SystemExit\n", "skip": "not run"}]
    (tmp_path / "blocks.json").write_text(json.dumps(blocks))
    (tmp_path / "runner.py").write_text(RUNNER)
    subprocess.run([sys.executable, "runner.py", "blocks.json", "out.json"], cwd=tmp_path, check=True, timeout=60)
    got = {r["where"]: r["error"] for r in json.loads((tmp_path / "out.json").read_text())}
    assert set(got) == {"README.md:1", "README.md:5"} and got["README.md:1"] is None
    assert "ValueError: 1" in got["README.md:5"]


def scorer_calls(blocks: list[dict]) -> list[str]:
    """Source of every `scores.<Scorer>(...)` call in the examples, skipped ones included."""
    calls = []
    for b in blocks:
        for node in ast.walk(ast.parse(b["code"])):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "scores"):
                calls.append(ast.get_source_segment(b["code"], node))
    return calls


def test_every_scorer_of_the_examples_fits_with_the_arguments_written():
    """Skipped examples too: a scorer's arguments are checked only when it is fitted (the README's
    `TwoCovarianceScore(50)` set the shrinkage to 50 and failed there)."""
    calls = scorer_calls(BLOCKS)
    assert calls, "the docs show pair scorers; this test should see them"
    rng = np.random.default_rng(0)
    person = np.repeat(np.arange(60), 5)
    X = rng.normal(size=(60, 128))[person] + rng.normal(size=(300, 128))
    left, right = rng.integers(300, size=(2, 400))
    for call in calls:
        scorer = eval(call, {"scores": S})  # noqa: S307 - the README's own literal call
        scorer.fit_pairs(X[left], X[right], person[left] == person[right])
        assert np.isfinite(scorer.score_pairs(X[:5], X[5:10])).all(), call


# -- the README's shape (issue #40: at most 200 lines, API first, figures only from tables) --------
#: The README's sections, in this order.
SECTIONS = ["Install", "Two commands", "Quickstart", "The notebooks", "The zoo", "The command line",
            "Documentation", "Origin"]
LINK = re.compile(r"\]\(([^)#]+)(?:#[^)]*)?\)")
GENERATED = re.compile(r"<!-- results:.*?<!-- /results -->|```.*?```", re.S)


def test_the_readme_is_short_and_in_its_order():
    text = README.read_text()
    assert len(text.splitlines()) <= 200, f"README.md has {len(text.splitlines())} lines; move detail to docs/"
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings == SECTIONS, f"README sections {headings}, expected {SECTIONS}"
    first = text.split("## Install")[0]
    assert "![" in first and "docs/zoo_reconstructions.png" in first, "the intro shows the LFW figure"
    quickstart = text.split("## Quickstart")[1].split("\n## ")[0]
    code = FENCE.search(quickstart).group(1)
    assert len(code.strip().splitlines()) <= 12 and all(w in code for w in ("load(", "run(", "traversal_grid(",
                                                                         "evaluate(")), (
        "the quickstart loads, builds and fits, traverses and verifies in about ten lines")


def test_the_readme_types_no_measured_figure_by_hand():
    """Decimal figures belong in generated tables (they go stale in prose)."""
    prose = GENERATED.sub("", README.read_text())
    assert not re.findall(r"\b\d+\.\d+\s*(?:%|x\b)|\b0\.\d{2,}", prose), "measured figures in README prose"


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_every_relative_link_resolves(path):
    missing = [t for t in LINK.findall(path.read_text())
               if "://" not in t and not (path.parent / t).exists()]
    assert not missing, f"{path.name} links to files that do not exist: {missing}"
