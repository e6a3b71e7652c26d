"""pyproject.toml and environment.yml must declare the same dependencies.

pip users install from pyproject.toml (`pip install -e .[dev]`), conda users from
environment.yml; if the lists drift, one of the two set-ups breaks silently.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]


def toml_module():
    """A TOML reader on every supported Python: tomllib (3.11+), else tomli (a dev dependency
    on 3.10), else the copy pip vendors, so `make test` collects on 3.10 too."""
    import importlib

    for name in ("tomllib", "tomli", "pip._vendor.tomli"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    pytest.skip("no TOML reader: install tomli (pip install tomli) on Python 3.10")


def requirement_map(lines: list[str], where: str) -> dict[str, str]:
    """name (canonical) -> specifier string; pip options such as `-e .` are skipped."""
    out: dict[str, str] = {}
    for line in lines:
        line = str(line).strip()
        if not line or line.startswith("-"):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement as err:
            raise AssertionError(f"{where}: {line!r} is not a valid requirement ({err})") from None
        name = canonicalize_name(req.name)
        assert name not in out, f"{where}: {req.name} is listed twice"
        out[name] = str(SpecifierSet(str(req.specifier)))  # normalised order/spacing
    return out


def differences(a: dict[str, str], b: dict[str, str], a_name: str, b_name: str) -> list[str]:
    """Human-readable mismatches between two requirement maps (empty when they agree)."""
    out = [f"{n} only in {a_name}" for n in sorted(a.keys() - b.keys())]
    out += [f"{n} only in {b_name}" for n in sorted(b.keys() - a.keys())]
    out += [f"{n}: {a_name} says {a[n]!r}, {b_name} says {b[n]!r}" for n in sorted(a.keys() & b.keys()) if a[n] != b[n]]
    return out


def pyproject() -> dict:
    path = REPO / "pyproject.toml"
    if not path.exists():
        pytest.skip("no pyproject.toml in this checkout")
    return toml_module().loads(path.read_text())


def conda_env() -> dict:
    path = REPO / "environment.yml"
    if not path.exists():
        pytest.skip("no environment.yml in this checkout")
    return yaml.safe_load(path.read_text())


def pyproject_requirements() -> dict[str, str]:
    project = pyproject()["project"]
    lines = list(project.get("dependencies", [])) + list(project.get("optional-dependencies", {}).get("dev", []))
    return requirement_map(lines, "pyproject.toml")


def environment_pip_requirements() -> dict[str, str]:
    deps = conda_env().get("dependencies", [])
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml needs exactly one `- pip:` section listing the dependencies"
    return requirement_map(pip_sections[0], "environment.yml pip section")


def test_dependency_lists_agree():
    diff = differences(pyproject_requirements(), environment_pip_requirements(), "pyproject.toml", "environment.yml")
    assert not diff, "dependency lists disagree; edit both files:\n" + "\n".join(diff)


def test_environment_installs_the_package_and_python():
    env = conda_env()
    pip_lines = [str(x).strip() for d in env["dependencies"] if isinstance(d, dict) for x in d.get("pip", [])]
    assert any(line.replace(" ", "") in ("-e.", "-e.[dev]", ".", ".[dev]") for line in pip_lines), (
        "environment.yml should install facelib itself (`- -e .` in the pip section)"
    )
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert "pip" in conda, "environment.yml must list pip among the conda dependencies"
    python = [d for d in conda if canonicalize_name(d.split("=")[0].split(">")[0].split("<")[0]) == "python"]
    assert python, "environment.yml should pin python"
    requires = pyproject()["project"].get("requires-python")
    conda_spec = python[0][len("python"):].strip()
    if requires and conda_spec:
        spec = SpecifierSet(requires)
        if conda_spec.startswith("=") and not conda_spec.startswith("=="):
            # conda's "python=3.11" pins a series; it must satisfy requires-python
            version = conda_spec.lstrip("=").rstrip(".*")
            assert spec.contains(version), f"python: environment.yml pins {version}, outside requires-python {requires!r}"
        else:
            assert SpecifierSet(conda_spec) == spec, (
                f"python: environment.yml {conda_spec!r} vs pyproject requires-python {requires!r}"
            )


def test_comparison_catches_drift():
    """The checker itself must flag a missing package and a different version spec."""
    a = requirement_map(["numpy>=1.24", "Scikit_Learn>=1.3", "torch >=2.2"], "a")
    b = requirement_map(["numpy>=1.25", "scikit-learn >= 1.3", "-e ."], "b")
    diff = differences(a, b, "a", "b")
    assert diff == ["torch only in a", "numpy: a says '>=1.24', b says '>=1.25'"]
    assert differences(a, dict(a), "a", "b") == []
    with pytest.raises(AssertionError, match="twice"):
        requirement_map(["numpy", "NumPy>=1"], "c")


# -- the wheel (#40: an installed facelib has its zoo, notebooks and measured results) --------------
#: Folders of the checkout's top level that the wheel carries inside the package.
MAPPED = {"facelib.notebooks": "notebooks", "facelib.measured": "benchmarks/results"}


def test_every_package_is_listed_for_the_wheel():
    """pyproject.toml lists the packages (two are mapped folders, which `find` cannot see): a new
    subpackage left out of the list would be missing from every installed facelib."""
    from setuptools import find_packages

    setuptools = pyproject()["tool"]["setuptools"]
    assert setuptools["package-dir"] == MAPPED
    found = set(find_packages(str(REPO), include=["facelib*"]))
    assert set(setuptools["packages"]) == found | set(MAPPED), (
        "tool.setuptools.packages in pyproject.toml must list every facelib package: "
        f"missing {sorted(found - set(setuptools['packages']))}")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel `pip wheel .` builds from the checkout's files (tracked and new, not ignored), in
    a copy, so the build leaves nothing in the checkout: {name in the wheel: uncompressed size}."""
    import shutil
    import subprocess
    import sys
    import zipfile

    try:
        listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                                capture_output=True, text=True).stdout.split("\0")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the wheel is checked by .ci/wheel_smoke.sh")
    src = tmp_path_factory.mktemp("src")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "-w", str(out), "--no-deps",
                           "--no-build-isolation", "-q"], capture_output=True, text=True)
    assert proc.returncode == 0, f"pip wheel failed:\n{proc.stdout}\n{proc.stderr}"
    (file,) = out.glob("facelib-*.whl")
    with zipfile.ZipFile(file) as z:
        return {i.filename: i.file_size for i in z.infolist()}


def test_the_wheel_carries_the_zoo_notebooks_and_measured_results(wheel):
    import json

    manifest = json.loads((REPO / "facelib" / "zoo" / "shipped" / "manifest.json").read_text())["models"]
    zoo = {f"facelib/zoo/shipped/{e['file']}" for e in manifest.values()} | {"facelib/zoo/shipped/manifest.json"}
    notebooks = {f"facelib/notebooks/{p.name}" for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    measured = {f"facelib/measured/{p.name}" for p in (REPO / "benchmarks" / "results").iterdir()
                if p.suffix in (".csv", ".json")}
    code = {p.relative_to(REPO).as_posix() for p in (REPO / "facelib").rglob("*.py")}
    assert len(manifest) >= 16 and len(notebooks) >= 9 and "facelib/measured/lfw_frozen.json" in measured
    for what, names in (("zoo", zoo), ("notebooks", notebooks), ("measured results", measured), ("code", code)):
        missing = sorted(names - set(wheel))
        assert not missing, f"the wheel lacks {what}: {missing[:5]}; declare it in pyproject.toml's package-data"
    size = lambda names: sum(wheel[n] for n in names)  # noqa: E731
    assert size(zoo) < 40e6, f"the shipped zoo is {size(zoo) / 1e6:.1f} MB, over its 40 MB"
    rest = size(set(wheel) - zoo)
    assert rest < 10e6, f"the wheel holds {rest / 1e6:.1f} MB besides the zoo; something large slipped in"
