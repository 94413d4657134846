"""A learner's work in work/ survives everything the course runs, and a course update by git.

The test builds a small course repository (notebooks 00 and 02), clones it as a learner
would, fills in an exercise in work/, then runs `make student`, `make check-student` (the
generator check of `make test`), an update of the course pulled with git, and `make
workspace` again: the learner's cell is unchanged and the update lies beside it.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from utils.workspace import sync_workspace

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)
NOTEBOOKS = ["00_start_here.ipynb", "02_squeeze_excitation.ipynb"]
MINE = "    return x * 0.0  # my own answer\n"


def sh(*command: str, cwd: Path, ok: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.org")
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    if ok:
        assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done


def make(target: str, cwd: Path) -> str:
    """`make target` in a course checkout, with the tests' environment as its .venv."""
    return sh("make", "-o", ".venv/.installed", target, cwd=cwd).stdout


def exercise_cell(path: Path, grade_id: str = "se_forward") -> str:
    cells = json.loads(path.read_text())["cells"]
    return next("".join(c["source"]) for c in cells
                if c["metadata"]["nbgrader"]["grade_id"] == grade_id)


def fill_in(path: Path) -> str:
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["metadata"]["nbgrader"]["grade_id"] == "se_forward":
            source = "".join(cell["source"])
            cell["source"] = source.replace(
                "    # YOUR CODE HERE\n    raise NotImplementedError()", MINE.rstrip("\n"))
    path.write_text(json.dumps(nb, indent=1))
    return exercise_cell(path)


@pytest.fixture
def course(tmp_path):
    """A course repository with two notebooks, and a learner's clone of it."""
    upstream = tmp_path / "upstream"
    for part in ("utils", "tests"):
        shutil.copytree(ROOT / part, upstream / part,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("Makefile", ".gitignore", ".gitattributes", "pyproject.toml",
                 "requirements-lock.txt"):
        shutil.copy(ROOT / name, upstream / name)
    for folder in ("solutions", "notebooks"):
        (upstream / folder).mkdir()
        for name in NOTEBOOKS:
            shutil.copy(ROOT / folder / name, upstream / folder / name)
    sh("git", "init", "-q", "-b", "main", cwd=upstream)
    sh("git", "add", "-A", cwd=upstream)
    sh("git", "commit", "-qm", "course", cwd=upstream)
    learner = tmp_path / "learner"
    sh("git", "clone", "-q", str(upstream), str(learner), cwd=tmp_path)
    for checkout in (upstream, learner):
        (checkout / ".venv").symlink_to(VENV)
    return upstream, learner


def update_the_course(upstream: Path) -> None:
    """The course changes notebook 02 (a new closing sentence) and regenerates it."""
    path = upstream / "solutions" / NOTEBOOKS[1]
    nb = json.loads(path.read_text())
    nb["cells"][0]["source"] = "".join(nb["cells"][0]["source"]) + "\n\nUpdated."
    path.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    make("student", upstream)
    sh("git", "commit", "-qam", "update notebook 02", cwd=upstream)


def test_the_learners_work_survives_make_and_a_course_update(course):
    upstream, learner = course
    out = make("workspace", learner)
    work = learner / "work"
    assert "new: " in out and sorted(p.name for p in work.glob("*.ipynb")) == NOTEBOOKS
    mine = fill_in(work / NOTEBOOKS[1])
    assert MINE.strip() in mine
    make("student", learner)
    make("check-student", learner)
    assert exercise_cell(work / NOTEBOOKS[1]) == mine
    update_the_course(upstream)
    sh("git", "pull", "-q", cwd=learner)
    assert "Updated." in (learner / "notebooks" / NOTEBOOKS[1]).read_text()
    out = make("workspace", learner)
    assert "the course updated 02_squeeze_excitation.ipynb: your file is unchanged" in out
    assert exercise_cell(work / NOTEBOOKS[1]) == mine
    updates = list(work.glob("02_squeeze_excitation.update-*.ipynb"))
    assert len(updates) == 1 and "Updated." in updates[0].read_text()
    make("student", learner)
    make("check-student", learner)
    assert exercise_cell(work / NOTEBOOKS[1]) == mine
    assert sh("git", "status", "--porcelain", cwd=learner).stdout.strip() == "", \
        "work/ must be ignored by git"


def test_a_pull_over_committed_edits_keeps_a_valid_notebook(course):
    upstream, learner = course
    path = learner / "notebooks" / NOTEBOOKS[1]
    fill_in(path)
    sh("git", "commit", "-qam", "my work in the generated folder", cwd=learner)
    mine = path.read_text()
    update_the_course(upstream)
    pulled = sh("git", "pull", "-q", "--no-rebase", cwd=learner, ok=False)
    assert pulled.returncode != 0 and "CONFLICT" in pulled.stdout + pulled.stderr
    assert path.read_text() == mine
    json.loads(path.read_text())  # still a notebook that opens


def test_sync_workspace_never_overwrites_and_lists_waiting_updates(tmp_path):
    course, work = tmp_path / "notebooks", tmp_path / "work"
    course.mkdir()
    (course / "a.ipynb").write_text("v1")
    assert sync_workspace(course, work) == [f"new: {work / 'a.ipynb'}"]
    (work / "a.ipynb").write_text("mine")
    assert sync_workspace(course, work) == []
    (course / "a.ipynb").write_text("v2")
    messages = sync_workspace(course, work)
    assert (work / "a.ipynb").read_text() == "mine"
    [update] = work.glob("a.update-*.ipynb")
    assert update.read_text() == "v2" and "your file is unchanged" in messages[0]
    update.write_text("I started here")
    assert "course updates waiting" in sync_workspace(course, work)[-1]
    assert update.read_text() == "I started here"
    with pytest.raises(ValueError, match="course must be the folder"):
        sync_workspace(tmp_path / "nowhere", work)
