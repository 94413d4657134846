"""pyproject.toml, requirements-lock.txt and environment.yml describe one environment."""

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}          # the pip name -> the conda-forge name


def pyproject_requirements():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = [Requirement(r) for r in data["project"]["dependencies"]]
    return {canonicalize_name(r.name): r.specifier for r in reqs}, data["project"]


def conda_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"], "environment.yml must use conda-forge only"
    specs, pip_lines = {}, []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip_lines += dep["pip"]
            continue
        name, spec = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", dep).groups()
        specs[canonicalize_name(name)] = SpecifierSet(spec.replace(" ", ""))
    return specs, pip_lines


def lock_pins():
    pins = {}
    for line in (ROOT / "requirements-lock.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_environment_yml_lists_the_same_packages_and_ranges_as_pyproject():
    pip_specs, project = pyproject_requirements()
    conda_specs, pip_lines = conda_requirements()
    expected = {CONDA_NAMES.get(name, name): spec for name, spec in pip_specs.items()}
    extra = set(conda_specs) - set(expected) - {"python", "pip"}
    missing = set(expected) - set(conda_specs)
    assert not missing and not extra, f"missing in environment.yml: {missing}; extra: {extra}"
    for name, spec in expected.items():
        assert conda_specs[name] == spec, f"{name}: pyproject {spec} vs environment.yml " \
                                          f"{conda_specs[name]}"
    assert conda_specs["python"] == SpecifierSet(project["requires-python"])
    assert any(line.split()[-2:] == ["-e", "."] for line in pip_lines), \
        "environment.yml must install the course library itself with pip"


def test_the_lock_pins_every_dependency_inside_its_range():
    pip_specs, project = pyproject_requirements()
    for extra in project.get("optional-dependencies", {}).values():
        pip_specs |= {canonicalize_name(r.name): r.specifier for r in map(Requirement, extra)}
    pins = lock_pins()
    for name, spec in pip_specs.items():
        assert name in pins, f"{name} is not pinned in requirements-lock.txt"
        assert spec.contains(pins[name], prereleases=True), \
            f"{name}=={pins[name]} in the lock is outside pyproject's range {spec}"


def test_the_lock_matches_what_is_installed():
    from importlib.metadata import version

    pins = lock_pins()
    for name in ("numpy", "torch", "nbval", "jupyterlab", "scikit-image"):
        assert version(name).split("+")[0] == pins[name], name
