"""Every notebook's first code cell opens with one guard: where the course library `utils` cannot
be imported (Colab, VS Code, a plain Jupyter), it raises one short error that says what to run,
instead of `No module named 'utils'` (after which a learner might `pip install utils`, an
unrelated package). GUARD is the one copy; the notebooks of both editions must start with it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EDITIONS = [*sorted((ROOT / "solutions").glob("*.ipynb")),
            *sorted((ROOT / "notebooks").glob("*.ipynb"))]

GUARD = '''\
try:  # the course library: if it is missing, the error below says how to install it
    import utils.check  # noqa: F401
except ModuleNotFoundError as error:
    import sys
    if str(error.name).split(".")[0] != "utils":           # utils is there, a dependency is not
        hint = (f"the course needs {error.name!r}, which is not installed: run `pip install -e .`"
                " in the course's root folder (it installs the course's dependencies)")
    elif "google.colab" in sys.modules:
        hint = ("the course library `utils` is not installed. On Colab, run `!git clone <the "
                "course repository's URL> course`, `%cd course` and `!pip install -e .`, then "
                "restart the runtime and run the notebook again (do not `pip install utils`: "
                "that is an unrelated package)")
    else:
        hint = ("the course library `utils` is not installed. In a clone of the course, run "
                "`make lab`, or `pip install -e .` in its root folder and restart the kernel "
                "(do not `pip install utils`: that is an unrelated package)")
    raise ModuleNotFoundError(hint) from None
'''

NOT_INSTALLED = "ModuleNotFoundError: the course library `utils` is not installed."
UNRELATED = "(do not `pip install utils`: that is an unrelated package)"
FAKE_COLAB = "import sys, types; sys.modules['google.colab'] = types.ModuleType('google.colab')\n"


def first_code_cell(path: Path) -> str:
    nb = json.loads(path.read_text())
    return next("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


def guard_code(path: Path) -> str:
    """The first code cell up to its first `from utils` import: the guard and the imports of
    other packages that come before the course's own."""
    lines = first_code_cell(path).splitlines(keepends=True)
    end = next(i for i, line in enumerate(lines) if line.startswith("from utils"))
    return "".join(lines[:end])


def run_python(code: str, cwd: Path, *, site: bool = True) -> subprocess.CompletedProcess:
    """`python -I` (and `-S`: no site-packages, so no installed course) running code in cwd."""
    flags = ["-I"] if site else ["-I", "-S"]
    return subprocess.run([sys.executable, *flags, "-c", code], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, "the guard raised nothing"
    assert result.stderr.count("Traceback") == 1, "one error, raised from None"
    return result.stderr.strip().splitlines()[-1]


def test_both_editions_hold_the_nine_notebooks():
    names = [p.name for p in EDITIONS]
    assert len(names) == 18 and names[:9] == names[9:]
    assert [n[:2] for n in names[:9]] == [f"{i:02d}" for i in range(9)]


@pytest.mark.parametrize("path", EDITIONS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_guard_is_the_first_thing_in_the_first_code_cell(path):
    source = first_code_cell(path)
    assert source.startswith(GUARD + "\n"), (
        f"{path.parent.name}/{path.name}: the first code cell must begin with "
        "tests/test_first_cells.py's GUARD, then a blank line")
    assert guard_code(path).startswith(GUARD)


@pytest.mark.parametrize("colab", [False, True], ids=["plain", "colab"])
@pytest.mark.parametrize("path", EDITIONS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_without_the_course_the_guard_says_what_to_run(path, colab, tmp_path):
    line = error_line(run_python((FAKE_COLAB if colab else "") + guard_code(path), tmp_path,
                                 site=False))
    assert line.startswith(NOT_INSTALLED) and line.endswith(UNRELATED), line
    if colab:
        for step in ("`!git clone <the course repository's URL> course`", "`%cd course`",
                     "`!pip install -e .`", "restart the runtime"):
            assert step in line, step
        assert "make lab" not in line
    else:
        assert "`make lab`" in line and "`pip install -e .` in its root folder" in line
        assert "git clone" not in line


def test_an_unrelated_utils_package_gets_the_same_message(tmp_path):
    (tmp_path / "utils").mkdir()
    (tmp_path / "utils" / "__init__.py").write_text('"""pip install utils: not the course."""\n')
    prelude = f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
    line = error_line(run_python(prelude + GUARD, tmp_path, site=False))
    assert line.startswith(NOT_INSTALLED) and "`make lab`" in line


def test_a_missing_dependency_of_the_course_is_named_with_the_fix(tmp_path):
    prelude = f"import sys; sys.path.insert(0, {str(ROOT)!r}); sys.modules['numpy'] = None\n"
    line = error_line(run_python(prelude + GUARD, tmp_path))
    assert line == ("ModuleNotFoundError: the course needs 'numpy', which is not installed: run "
                    "`pip install -e .` in the course's root folder (it installs the course's "
                    "dependencies)")


def test_with_the_course_importable_the_guard_and_imports_raise_nothing(tmp_path):
    codes = {f"{p.parent.name}/{p.name}": guard_code(p) for p in EDITIONS}
    program = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
               f"for name, code in {codes!r}.items():\n"
               "    exec(compile(code, name, 'exec'), {'__name__': '__main__'})\n"
               "print('ok')\n")
    result = run_python(program, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok" and "Traceback" not in result.stderr
