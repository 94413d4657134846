"""pyproject.toml, requirements-lock.txt, environment.yml and the Binder set-up describe one
environment, and the runtime dependencies are exactly what the course library imports."""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}          # the pip name -> the conda-forge name
# The import name -> the distribution name, where the two differ (after canonicalisation).
DISTRIBUTIONS = {"skimage": "scikit-image", "sklearn": "scikit-learn", "yaml": "pyyaml",
                 "IPython": "ipython", "PIL": "pillow"}
CONDA_EXTRAS = ("lab",)                     # what environment.yml adds to the runtime set
START = "work/00_start_here.ipynb"          # where Binder and `make lab` open the course


def project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def specs(requirements):
    reqs = [Requirement(r) for r in requirements]
    return {canonicalize_name(r.name): r.specifier for r in reqs
            if canonicalize_name(r.name) != canonicalize_name(project()["name"])}


def conda_spec(text):
    """A conda MatchSpec version ('>=1.2', '=3.11', '3.11.*') as a pip SpecifierSet."""
    text = text.replace(" ", "")
    if re.fullmatch(r"=?[0-9][0-9.]*(\.\*)?", text):        # conda's '=3.11' means 3.11.*
        return SpecifierSet("==" + text.lstrip("=").removesuffix(".*") + ".*")
    return SpecifierSet(text)


def conda_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"], "environment.yml must use conda-forge only"
    found, pip_lines = {}, []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip_lines += dep["pip"]
            continue
        name, spec = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", dep).groups()
        found[canonicalize_name(name)] = conda_spec(spec)
    return found, pip_lines


def lock_pins():
    pins = {}
    for line in (ROOT / "requirements-lock.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


# pip's own parser of requirements files, in a child process (pip's internals warn on import):
# conda and mamba write the pip entries of environment.yml to a requirements file and run
# `pip install -r` on it in the folder of environment.yml; this reads that file as pip does.
PIP_PARSE = textwrap.dedent("""
    import json, sys, warnings
    warnings.simplefilter("ignore")
    from pip._internal.exceptions import PipError
    from pip._internal.network.session import PipSession
    from pip._internal.req.constructors import install_req_from_parsed_requirement
    from pip._internal.req.req_file import parse_requirements
    try:
        with PipSession() as session:
            reqs = [install_req_from_parsed_requirement(parsed)
                    for parsed in parse_requirements(sys.argv[1], session=session)]
    except (PipError, SystemExit) as exc:
        print(json.dumps({"error": str(exc).strip()}))
    else:
        print(json.dumps({"requirements": [
            {"editable": r.editable, "name": r.name,
             "path": r.link.file_path if r.link and r.link.is_file else None,
             "extras": sorted(r.extras)} for r in reqs]}))
""")


def pip_parse(lines, folder, tmp_path):
    """What pip makes of these lines as a requirements file read in ``folder``."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("".join(line + "\n" for line in lines))
    done = subprocess.run([sys.executable, "-c", PIP_PARSE, str(requirements)], cwd=folder,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_environment_yml_lists_the_runtime_and_lab_packages_with_pyprojects_ranges():
    data = project()
    expected = specs(data["dependencies"])
    for extra in CONDA_EXTRAS:
        expected |= specs(data["optional-dependencies"][extra])
    expected = {CONDA_NAMES.get(name, name): spec for name, spec in expected.items()}
    conda_specs, _ = conda_requirements()
    extra = set(conda_specs) - set(expected) - {"python", "pip"}
    missing = set(expected) - set(conda_specs)
    assert not missing and not extra, f"missing in environment.yml: {missing}; extra: {extra}"
    for name, spec in expected.items():
        assert conda_specs[name] == spec, f"{name}: pyproject {spec} vs environment.yml " \
                                          f"{conda_specs[name]}"


def test_environment_yml_names_a_python_that_pyproject_and_repo2docker_accept():
    python = conda_requirements()[0]["python"]
    requires = SpecifierSet(project()["requires-python"])
    versions = [v for v in (f"3.{minor}.{patch}" for minor in range(8, 20) for patch in (0, 9))
                if python.contains(v)]
    assert versions and all(requires.contains(v) for v in versions), \
        f"environment.yml's python {python} is not inside requires-python {requires}"
    # repo2docker takes the version only from a 'python=X.Y' entry (else it uses its default)
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert any(re.fullmatch(r"python\s*=\s*3\.\d+", d) for d in env["dependencies"]
               if isinstance(d, str)), "environment.yml must name python as python=3.X"


def test_environment_yml_installs_the_course_library_with_a_line_pip_accepts(tmp_path):
    _, pip_lines = conda_requirements()
    parsed = pip_parse(pip_lines, ROOT, tmp_path)
    assert "error" not in parsed, f"pip rejects environment.yml's pip entries: {parsed['error']}"
    course = [r for r in parsed["requirements"] if r["path"] == str(ROOT)]
    assert len(course) == 1 and course[0]["editable"], \
        f"environment.yml must install the course library (-e .): {parsed['requirements']}"


@pytest.mark.parametrize("line", ["--no-deps -e .", "-e . --no-deps", "-e", "numpy >= = 1",
                                  "utils course"])
def test_the_pip_check_rejects_what_pip_rejects(line, tmp_path):
    assert "error" in pip_parse([line], ROOT, tmp_path), line


def test_the_lock_pins_every_dependency_inside_its_range():
    data = project()
    pip_specs = specs(data["dependencies"])
    for extra in data.get("optional-dependencies", {}).values():
        pip_specs |= specs(extra)
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


def _optional(node):
    """Whether a ``try:`` block makes its imports optional: a handler catches ImportError."""
    return isinstance(node, ast.Try) and any(
        h.type is not None and any(name in ast.unparse(h.type)
                                   for name in ("ImportError", "ModuleNotFoundError"))
        for h in node.handlers)


def third_party_imports(folder):
    """Top-level names of the modules imported anywhere in ``folder`` and its packages
    (inside functions too), other than the standard library, relative imports, ``if
    TYPE_CHECKING:`` blocks and optional imports (a ``try:`` whose handler catches
    ImportError); with the files that import each."""
    found = {}
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        skip |= {id(n) for node in ast.walk(tree) if _optional(node)
                 for statement in node.body for n in ast.walk(statement)}
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Call) and ast.unparse(node.func) in (
                    "importlib.import_module", "import_module", "__import__"):
                raise AssertionError(f"{path.name}: a dynamic import ({ast.unparse(node)}) "
                                     "escapes this check; import the module by name")
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != folder.name:
                    found.setdefault(top, set()).add(path.name)
    return found


def test_the_import_scan_sees_lazy_and_package_imports_and_skips_optional_ones(tmp_path):
    package = tmp_path / "utils"
    package.mkdir()
    (package / "a.py").write_text(textwrap.dedent("""
        import os
        from typing import TYPE_CHECKING
        import numpy.linalg as la
        from . import b
        from utils import b
        if TYPE_CHECKING:
            import onnxruntime
        def f():
            from skimage import data
            import tqdm.auto
        def g():
            try:
                import ipywidgets
            except ImportError:
                return
            try:
                import scipy
            except ValueError:
                pass
    """))
    (package / "sub").mkdir()
    (package / "sub" / "c.py").write_text("import sklearn\n")
    assert set(third_party_imports(package)) == {"numpy", "skimage", "tqdm", "scipy", "sklearn"}
    (package / "b.py").write_text("import importlib\nimportlib.import_module('torch')\n")
    with pytest.raises(AssertionError, match="dynamic import"):
        third_party_imports(package)


def test_the_runtime_dependencies_are_exactly_what_utils_imports():
    imported = {canonicalize_name(DISTRIBUTIONS.get(name, name)): files
                for name, files in third_party_imports(ROOT / "utils").items()}
    data = project()
    runtime = set(specs(data["dependencies"]))
    missing = {name: sorted(imported[name]) for name in set(imported) - runtime}
    unused = runtime - set(imported)
    assert not missing, f"utils imports these, pyproject's dependencies lack them: {missing}"
    assert not unused, f"pyproject's dependencies that utils never imports (move them to " \
                       f"an extra): {sorted(unused)}"
    for extra, packages in data["optional-dependencies"].items():
        both = set(specs(packages)) & runtime
        assert not both, f"{sorted(both)} are runtime dependencies and in the {extra} extra"


def test_the_extras_hold_jupyterlab_and_the_test_tools():
    extras = {name: set(specs(reqs)) for name, reqs in project()["optional-dependencies"].items()}
    assert {"jupyterlab", "ipykernel", "ipywidgets"} <= extras["lab"]
    assert {"pytest", "nbval", "ruff", "nbgrader", "pytest-xdist", "colorspacious",
            "pyyaml", "ipykernel", "ipywidgets"} <= extras["test"]
    dev = [Requirement(r) for r in project()["optional-dependencies"]["dev"]]
    assert [(canonicalize_name(r.name), r.extras) for r in dev] == \
        [(canonicalize_name(project()["name"]), {"lab", "test"})]


def test_binder_reads_the_root_files_and_opens_notebook_00(tmp_path):
    assert not (ROOT / "binder").exists() and not (ROOT / ".binder").exists(), \
        "with a binder/ folder, repo2docker ignores environment.yml and postBuild at the root"
    post_build = ROOT / "postBuild"
    assert os.access(post_build, os.X_OK), "postBuild must be executable"
    assert post_build.read_text().startswith("#!/bin/bash\n")
    done = subprocess.run(["bash", "-n", str(post_build)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    # Run it as repo2docker does, in a copy of the course with a bare environment.
    repo = tmp_path / "repo"
    for folder in ("utils", "notebooks"):
        shutil.copytree(ROOT / folder, repo / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(post_build, repo / "postBuild")
    env = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    done = subprocess.run(["./postBuild"], cwd=repo, capture_output=True, text=True,
                          timeout=120, env={**os.environ,
                                            "PATH": f"{env / 'bin'}{os.pathsep}{os.environ['PATH']}"})
    assert done.returncode == 0, done.stdout + done.stderr
    config = json.loads((env / "etc" / "jupyter" / "jupyter_server_config.json").read_text())
    urls = {app: config[app]["default_url"]
            for app in ("ServerApp", "LabApp", "JupyterNotebookApp")}
    assert set(urls.values()) == {f"/lab/tree/{START}"}, urls
    opened = repo / START
    assert opened.read_bytes() == (ROOT / "notebooks" / opened.name).read_bytes()


def test_the_binder_link_and_make_lab_open_the_same_notebook():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"mybinder\.org/v2/\S*?urlpath=([^\s`)>]+)", readme)
    assert links and set(links) == {f"lab/tree/{START}"}, links
    makefile = (ROOT / "Makefile").read_text()
    assert f"--LabApp.default_url=/lab/tree/{START}" in makefile
    assert (ROOT / "notebooks" / Path(START).name).exists()
