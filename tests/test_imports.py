"""facelib's import structure: no upward import, no cycle, function-local imports only where listed.

The test reads every module under facelib/ with `ast` (nothing is imported), collects every import
of a facelib module, module-level and inside functions, and checks it against the layering below.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "facelib"

#: The layering, lowest first: a module may import its own package and any lower one, never a
#: higher one. Packages on one line (a tuple) are on one level and may not import each other.
LAYERS: list[tuple[str, ...]] = [
    ("facelib.utils", "facelib.files", "facelib.options"),
    ("facelib.registry",),
    ("facelib.results", "facelib.claims"),
    ("facelib.data",),
    ("facelib.models",),
    ("facelib.train",),
    ("facelib.experiment",),
    ("facelib.metrics",),
    ("facelib.verify",),
    ("facelib.viz",),
    ("facelib.zoo",),
    ("facelib.study",),
    ("facelib.cli",),
    ("facelib.__main__",),
    # the top package re-exports from the subpackages; nothing below imports it
    ("facelib",),
]
LEVEL = {package: level for level, packages in enumerate(LAYERS) for package in packages}

#: Function-local imports of facelib or third-party modules that are meant to be lazy:
#: (importing module, imported module or a package above it) -> why.
LAZY_ALLOWED: dict[tuple[str, str], str] = {
    # `import facelib` and `import facelib.study.pipeline` (the `run` command and its sweep
    # workers) start without torch: the names that need it are imported where they are used
    ("facelib", "facelib.train.checkpoint"): "import facelib stays light (no torch)",
    ("facelib.study.pipeline", "facelib.data"): "run starts light (facelib.data imports torch)",
    ("facelib.study.pipeline", "facelib.utils"): "run starts light (utils imports torch)",
    # the notebook stack, loaded by the pipeline when it reads, runs or exports a notebook
    ("facelib.study.pipeline", "papermill"): "the notebook runner, only when a notebook runs",
    ("facelib.study.pipeline", "nbformat"): "only for the HTML export",
    ("facelib.study.pipeline", "nbconvert"): "only for the HTML export",
    ("facelib.study.pipeline", "jupyter_client"): "only when a kernel is named",
    # optional extras
    ("facelib.study.executors", "ray"): "Ray is the optional extra .[cluster]",
    ("facelib.train.callbacks", "torch.utils.tensorboard"): "needs tensorboard, the optional extra .[tensorboard]",
    # heavy to import and only used to draw or for one statistic: CLI commands and batch runs
    # import these modules without needing them
    ("facelib.verify.plots", "matplotlib"): "the plotting stack loads only when a figure is drawn",
    ("facelib.verify.plots", "seaborn"): "the plotting stack loads only when a figure is drawn",
    ("facelib.viz.disentanglement", "matplotlib"): "the plotting stack loads only when a figure is drawn",
    ("facelib.viz.disentanglement", "seaborn"): "the plotting stack loads only when a figure is drawn",
    ("facelib.viz.images", "matplotlib"): "the plotting stack loads only when a figure is drawn",
    ("facelib.viz.widget", "matplotlib"): "the plotting stack loads only when a figure is drawn",
    ("facelib.verify.features", "statsmodels"): "slow to import; only logit_table uses it",
    ("facelib.verify.hotelling", "statsmodels"): "slow to import; only the multiple-test correction uses it",
    # the notebook widget stack, only when a widget is made
    ("facelib.viz.widget", "ipywidgets"): "notebook only",
    ("facelib.viz.widget", "IPython"): "notebook only",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def is_package(module: str) -> bool:
    return MODULES.get(module, Path()).name == "__init__.py"


def package_of(module: str) -> str:
    """The layer a facelib module belongs to: facelib.<first part>, or `facelib` for the top."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _is_local(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return True
    return False


def imports_of(module: str) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import in `module`; a `from X import y`
    where X.y is a module counts as importing X.y."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    here = module if is_package(module) else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = []
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                targets.append(sub if sub in MODULES else source)
        else:
            continue
        local = _is_local(node, parents)
        out.extend((target, node.lineno, local) for target in targets)
    return out


IMPORTS = {module: imports_of(module) for module in MODULES}


def facelib_edges(local: bool | None = None) -> set[tuple[str, str]]:
    return {(m, t) for m, imps in IMPORTS.items() for t, _, is_local in imps
            if (t == "facelib" or t.startswith("facelib.")) and t != m and (local is None or is_local == local)}


def test_every_module_has_a_layer():
    missing = sorted({package_of(m) for m in MODULES} - set(LEVEL))
    assert not missing, f"packages missing from LAYERS: {missing}"


def test_no_upward_import():
    bad = []
    for module, imps in IMPORTS.items():
        for target, line, _ in imps:
            if not (target == "facelib" or target.startswith("facelib.")):
                continue
            source_pkg, target_pkg = package_of(module), package_of(target)
            if source_pkg == target_pkg:
                continue
            if LEVEL[target_pkg] >= LEVEL[source_pkg]:
                bad.append(f"{module}:{line} imports {target} ({target_pkg} is not below {source_pkg})")
    assert not bad, "upward or sideways imports:\n" + "\n".join(bad)


def _cycles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for v in sorted(graph):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return out


def test_no_cycle_between_packages():
    edges = {(package_of(a), package_of(b)) for a, b in facelib_edges()}
    cycles = _cycles({(a, b) for a, b in edges if a != b})
    assert not cycles, f"import cycles between packages: {cycles}"


def test_no_cycle_between_modules():
    # a package's __init__ re-exporting its own submodules is not a cycle: python imports the
    # package first in any case, so the edges submodule -> own package are left out
    edges = {(a, b) for a, b in facelib_edges() if not (is_package(b) and a.startswith(b + "."))}
    cycles = _cycles(edges)
    assert not cycles, f"import cycles between modules: {cycles}"


def _reaches(edges: set[tuple[str, str]], a: str, b: str) -> bool:
    """Whether module `a` imports module `b` or a module inside package `b`."""
    return any(x == a and (y == b or y.startswith(b + ".")) for x, y in edges)


#: The cycles the code once had: the data-parallel launcher imported the engine's `fit` (which
#: launches it), and the pair samplers imported verify's input checks (verify imports them).
KNOWN_CYCLES = [("facelib.train.engine", "facelib.train.distributed"), ("facelib.data.pairs", "facelib.verify")]


@pytest.mark.parametrize("pair", KNOWN_CYCLES)
def test_known_cycles_stay_broken(pair):
    a, b = pair
    edges = facelib_edges()
    back = any(_reaches(edges, m, a) for m in MODULES if m == b or m.startswith(b + "."))
    assert not (_reaches(edges, a, b) and back), f"{a} and {b} import each other"


def _third_party(target: str) -> bool:
    top = target.split(".")[0]
    return top != "facelib" and top not in sys.stdlib_module_names and top != "__future__"


def _allowed(module: str, target: str) -> bool:
    return any(module == m and (target == t or target.startswith(t + ".")) for m, t in LAZY_ALLOWED)


def test_function_local_imports_are_listed():
    bad = []
    for module, imps in IMPORTS.items():
        for target, line, local in imps:
            if local and (target == "facelib" or target.startswith("facelib.") or _third_party(target)):
                if not _allowed(module, target):
                    bad.append(f"{module}:{line} imports {target} inside a function")
    assert not bad, ("function-local imports not in LAZY_ALLOWED (move them to the module's top, "
                     "or list them with the reason):\n" + "\n".join(bad))


def test_lazy_allow_list_is_used():
    used = {(m, t) for (m, t) in LAZY_ALLOWED
            if any(local and (target == t or target.startswith(t + ".")) for target, _, local in IMPORTS.get(m, []))}
    stale = sorted(set(LAZY_ALLOWED) - used)
    assert not stale, f"LAZY_ALLOWED entries no module uses any more: {stale}"


def test_pipeline_and_top_package_start_light():
    """`import facelib.study.pipeline` (the `run` command, its sweep workers) loads neither torch nor pandas."""
    code = "import sys, facelib.study.pipeline; print(sorted({'torch', 'pandas'} & set(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT.parent)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
