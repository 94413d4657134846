"""Grading end to end: real nbgrader (default settings) and the course's own grading command.

`make test` runs the short versions: nbgrader releases notebooks 00 and 02 and autogrades a
short quiz made of real course exercises; `python -m utils.grade` grades the same quiz and
broken notebooks. `make test-slow` (marker `slow`) grades notebook 02 itself both ways.
"""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from utils.student import CODE_STUB, student_notebook, with_grading_metadata

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STUB = "\n".join(CODE_STUB)
QUIZ_EXERCISES = {  # exercise -> the solution notebook it comes from
    "softmax": "00_start_here.ipynb",
    "se_overhead": "02_squeeze_excitation.ipynb",
    "nlmeans_weights": "04_non_local.ipynb",
    "query_free_nonlocal": "07_efficiency_and_beyond.ipynb",
}
WRONG = {  # a plausible learner bug for each exercise (the function body after its docstring)
    "softmax": "e = np.exp(x)\n    return e / e.sum(axis=axis, keepdims=True)",
    "se_overhead": "return sum(n * 2 * c * (c // reduction) for n, c in zip(blocks, channels))",
    "se_backward": "return dout, {}",
}
if os.environ.get("CI"):
    import nbgrader  # noqa: F401 - in CI the tests must run, not skip
nbgrader_app = pytest.importorskip("nbgrader")


def solution_cells(path: Path) -> dict[str, nbformat.NotebookNode]:
    nb = with_grading_metadata(nbformat.read(path, as_version=4), path.name)
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells}


def quiz_solution() -> nbformat.NotebookNode:
    """A short notebook of real course exercises and check cells, then a cell that uses one."""
    nb = nbformat.v4.new_notebook(metadata=nbformat.read(
        ROOT / "solutions" / "00_start_here.ipynb", as_version=4).metadata)
    cells = [nbformat.v4.new_markdown_cell("# Quiz\n\nFour exercises from the course."),
             nbformat.v4.new_code_cell("import numpy as np\n\nfrom utils import check")]
    for exercise, notebook in QUIZ_EXERCISES.items():
        source = solution_cells(ROOT / "solutions" / notebook)
        cells += [source[exercise], source[f"check_{exercise}"]]
    cells.append(nbformat.v4.new_code_cell(
        "weights = softmax(np.array([1000.0, 1001.0]))\nassert np.isfinite(weights).all()\n"
        "print('later cells run')"))
    for cell in cells:
        cell.metadata.pop("nbgrader", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.cells = cells
    return with_grading_metadata(nbformat.from_dict(json.loads(json.dumps(nb))), "quiz")


def answer(student: nbformat.NotebookNode, solution: nbformat.NotebookNode,
           choice: dict[str, str]) -> nbformat.NotebookNode:
    """A submission: per exercise 'right' (the solution's cell), 'wrong' (WRONG) or 'blank'."""
    submitted = nbformat.from_dict(json.loads(json.dumps(student)))
    solved = {c.metadata["nbgrader"]["grade_id"]: c.source for c in solution.cells}
    for cell in submitted.cells:
        gid = cell.metadata["nbgrader"]["grade_id"]
        if not cell.metadata["nbgrader"]["solution"] or cell.cell_type != "code":
            continue
        how = choice.get(gid, "blank")
        if how == "right":
            cell.source = re.sub(r"[ \t]*### (BEGIN|END) SOLUTION\n?", "", solved[gid])
        elif how == "wrong":
            assert STUB in cell.source.replace("\n    ", "\n")
            cell.source = cell.source.replace("# YOUR CODE HERE\n    raise NotImplementedError()",
                                              WRONG[gid])
    return submitted


def run(command: list[str], cwd: Path, timeout: int = 600) -> str:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("ACV_GRADING", None)
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def without_nbgrader_additions(nb: dict) -> dict:
    """A notebook without what nbgrader's release adds: checksums, cell types, lock flags."""
    nb = json.loads(json.dumps(nb))
    nb["metadata"].pop("widgets", None)
    for cell in nb["cells"]:
        cell["metadata"].pop("editable", None)
        cell["metadata"].pop("deletable", None)
        for key in ("checksum", "cell_type"):
            cell["metadata"].get("nbgrader", {}).pop(key, None)
    return nb


def make_course(tmp_path: Path, notebooks: dict[str, nbformat.NotebookNode]) -> Path:
    course = tmp_path / "course"
    (course / "source" / "ps1").mkdir(parents=True)
    shutil.copy(ROOT / "grading" / "nbgrader_config.py", course)
    for name, nb in notebooks.items():
        nbformat.write(nb, course / "source" / "ps1" / name)
    return course


def autograde(course: Path, submissions: dict[str, dict[str, nbformat.NotebookNode]]
              ) -> dict[str, dict[str, float]]:
    """Autograde with nbgrader; return every student's score on every check cell (the answers
    to the questions are manually graded and worth 0 points)."""
    from nbgrader.api import Gradebook

    for student, notebooks in submissions.items():
        (course / "submitted" / student / "ps1").mkdir(parents=True)
        for name, nb in notebooks.items():
            nbformat.write(nb, course / "submitted" / student / "ps1" / name)
    run([str(BIN / "nbgrader"), "autograde", "ps1"], course)
    scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student in submissions:
            submission = gradebook.find_submission("ps1", student)
            grades = [g for nb in submission.notebooks for g in nb.grades]
            assert all(g.max_score == 0 for g in grades if not g.name.startswith("check_"))
            scores[student] = {g.name: g.score for g in grades if g.name.startswith("check_")}
    return scores


def test_nbgrader_releases_exactly_the_student_edition(tmp_path):
    names = ["00_start_here.ipynb", "02_squeeze_excitation.ipynb"]
    course = make_course(tmp_path, {n: nbformat.read(ROOT / "solutions" / n, as_version=4)
                                    for n in names})
    run([str(BIN / "nbgrader"), "generate_assignment", "ps1"], course)
    for name in names:
        released = json.loads((course / "release" / "ps1" / name).read_text())
        ours = json.loads((ROOT / "notebooks" / name).read_text())
        assert without_nbgrader_additions(released) == without_nbgrader_additions(ours), name
        locks = [c["metadata"].get("editable", True) for c in released["cells"]]
        kinds = [c["metadata"]["nbgrader"] for c in released["cells"]]
        assert all(not lock for lock, k in zip(locks, kinds, strict=True) if k["locked"])
        assert any(k["grade"] and k["points"] > 0 for k in kinds), "no autograded cell"


QUIZ_SUBMISSIONS = {
    "right": dict.fromkeys(QUIZ_EXERCISES, "right"),
    "wrong": dict(dict.fromkeys(QUIZ_EXERCISES, "right"), softmax="wrong"),
    "blank": {},
}


def test_nbgrader_autograde_scores_right_wrong_and_blank_answers(tmp_path):
    solution = quiz_solution()
    course = make_course(tmp_path, {"00_quiz.ipynb": solution})
    run([str(BIN / "nbgrader"), "generate_assignment", "ps1"], course)
    student = nbformat.read(course / "release" / "ps1" / "00_quiz.ipynb", as_version=4)
    scores = autograde(course, {who: {"00_quiz.ipynb": answer(student, solution, choice)}
                                for who, choice in QUIZ_SUBMISSIONS.items()})
    from utils.check import EXERCISES

    points = {f"check_{e}": float(EXERCISES[e].points) for e in QUIZ_EXERCISES}
    full = sum(points.values())
    assert scores["right"] == points and sum(scores["right"].values()) == full
    assert sum(scores["wrong"].values()) == full - points["check_softmax"]
    assert scores["wrong"]["check_softmax"] == 0.0
    assert scores["blank"] == dict.fromkeys(points, 0.0)
    graded = json.loads((course / "autograded" / "wrong" / "ps1" / "00_quiz.ipynb").read_text())
    errors = [i for i, c in enumerate(graded["cells"])
              for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert len(errors) == 1, "one wrong answer must fail its own check cell only"
    assert "later cells run" in json.dumps(graded["cells"][-1]["outputs"])


def grade_rows(tmp_path: Path, course_dir: Path, submissions: list[Path],
               timeout: int = 120, *options: str) -> list[dict]:
    out = tmp_path / "grades.csv"
    text = run([sys.executable, "-m", "utils.grade", *map(str, submissions), "--course",
                str(course_dir), "--csv", str(out), "--markdown", str(tmp_path / "grades.md"),
                "--timeout", str(timeout), *options], ROOT)
    assert re.search(r"\[1/\d+\] ", text), "progress lines"
    with out.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def quiz_course(tmp_path: Path) -> tuple[nbformat.NotebookNode, nbformat.NotebookNode, Path]:
    """The quiz's solution and student edition, and a course folder holding the latter."""
    solution = quiz_solution()
    student = student_notebook(solution, "quiz")
    course_dir = tmp_path / "course"
    course_dir.mkdir()
    nbformat.write(student, course_dir / "00_quiz.ipynb")
    return solution, student, course_dir


def test_a_stuck_cell_is_interrupted_at_its_limit_and_costs_that_cell_only(tmp_path):
    solution, student, course_dir = quiz_course(tmp_path)
    (tmp_path / "stuck").mkdir()
    nb = answer(student, solution, dict.fromkeys(QUIZ_EXERCISES, "right"))
    cell = next(c for c in nb.cells if c.metadata["nbgrader"]["grade_id"] == "softmax")
    docstring_end = cell.source.index('"""', cell.source.index('"""') + 3) + 3
    cell.source = (cell.source[:docstring_end] + "\n    __import__('time').sleep(600)"
                   + cell.source[docstring_end:])           # the check cell's call never returns
    nbformat.write(nb, tmp_path / "stuck" / "00_quiz.ipynb")
    rows = grade_rows(tmp_path, course_dir, [tmp_path / "stuck"], 120, "--cell-timeout", "4")
    table = {r["exercise"]: r for r in rows}
    assert table["softmax"]["status"] == "❌" and table["softmax"]["points"] == "0"
    assert "ran past its limit of 4 s and was interrupted" in table["softmax"]["message"]
    assert all(table[e]["status"] == "✅" for e in QUIZ_EXERCISES if e != "softmax"), rows


def test_the_grading_command_grades_and_survives_broken_notebooks(tmp_path):
    solution, student, course_dir = quiz_course(tmp_path)
    folders = []
    for who, choice in QUIZ_SUBMISSIONS.items():
        (tmp_path / who).mkdir()
        nbformat.write(answer(student, solution, choice), tmp_path / who / "00_quiz.ipynb")
        folders.append(tmp_path / who)
    broken = {"invalid": "{ not json", "crash": "import os\nos._exit(3)",
              "slow": "import time\ntime.sleep(120)"}
    for who, body in broken.items():
        (tmp_path / who).mkdir()
        if who == "invalid":
            (tmp_path / who / "00_quiz.ipynb").write_text(body)
            continue
        nb = nbformat.from_dict(json.loads(json.dumps(student)))
        first = next(c for c in nb.cells if c.metadata["nbgrader"]["solution"])
        first.source = body + "\n" + first.source
        nbformat.write(nb, tmp_path / who / "00_quiz.ipynb")
    rows = grade_rows(tmp_path, course_dir, folders + [tmp_path / "invalid", tmp_path / "crash"])
    slow_rows = grade_rows(tmp_path / "slow", course_dir, [tmp_path / "slow"], timeout=6)
    table = {(r["submission"], r["exercise"]): r for r in rows + slow_rows}
    from utils.check import EXERCISES

    for exercise in QUIZ_EXERCISES:
        most = str(EXERCISES[exercise].points)
        assert (table["right", exercise]["status"], table["right", exercise]["points"]) == (
            "✅", most)
        assert table["blank", exercise]["status"] == "⏳" and table["blank", exercise][
            "points"] == "0"
        assert table["wrong", exercise]["status"] == ("❌" if exercise == "softmax" else "✅")
        assert table["wrong", exercise]["max_points"] == most
    assert "NaN" in table["wrong", "softmax"]["message"]
    assert table["invalid", "(notebook)"]["status"] == "❌"
    assert "not a valid notebook" in table["invalid", "(notebook)"]["message"]
    assert all("kernel died" in table["crash", e]["message"] for e in QUIZ_EXERCISES)
    assert all("time limit of 6 s" in table["slow", e]["message"] for e in QUIZ_EXERCISES)
    assert all(table[who, e]["points"] == "0" for who in broken for e in QUIZ_EXERCISES
               if (who, e) in table)
    markdown = (tmp_path / "grades.md").read_text()
    assert "| right | 00_quiz.ipynb | softmax | ✅ |" in markdown


def test_the_grading_command_cannot_be_talked_into_points(tmp_path):
    solution, student, course_dir = quiz_course(tmp_path)
    cheat = answer(student, solution, {})
    for cell in cheat.cells:
        if cell.metadata["nbgrader"]["grade"]:
            cell.source = "print('✅ all good')"
    cheat.cells = [c for c in cheat.cells if c.metadata["nbgrader"]["grade_id"]
                   != "check_se_overhead"]
    (tmp_path / "cheat").mkdir()
    nbformat.write(cheat, tmp_path / "cheat" / "00_quiz.ipynb")
    switch = answer(student, solution, {})
    switch.cells.insert(2, nbformat.v4.new_code_cell(
        "import os\nos.environ['ACV_GRADING'] = '0'", metadata={}))
    (tmp_path / "switch").mkdir()
    nbformat.write(switch, tmp_path / "switch" / "00_quiz.ipynb")
    nbformat.write(answer(student, solution, dict.fromkeys(QUIZ_EXERCISES, "right")),
                   tmp_path / "switch" / "00_quiz.update-0123abcd.ipynb")
    rows = grade_rows(tmp_path, course_dir, [tmp_path / "cheat", tmp_path / "switch"])
    assert [(r["submission"], r["status"], r["points"]) for r in rows] == (
        [("cheat", "⏳", "0")] * len(QUIZ_EXERCISES) + [("switch", "⏳", "0")] * len(
            QUIZ_EXERCISES)), "restored check cells, no verdict without ✅, copies skipped"
    assert "printed no ✅ verdict" in rows[-1]["message"]


def test_the_grading_command_refuses_bad_arguments_clearly(tmp_path, capsys):
    from utils import grade

    for args, message in [([str(tmp_path / "missing")], "SUBMISSION must be an existing"),
                          ([str(tmp_path), "--timeout", "0"], "--timeout must be a positive"),
                          ([str(tmp_path)], "no notebooks")]:
        with pytest.raises(SystemExit) as exit_:
            grade.main(args)
        assert exit_.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.slow
def test_notebook_02_graded_by_nbgrader_and_by_the_grading_command(tmp_path):
    name = "02_squeeze_excitation.ipynb"
    solution = with_grading_metadata(nbformat.read(ROOT / "solutions" / name, as_version=4))
    student = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    exercises = ("se_forward", "se_backward", "SqueezeExcitation", "se_overhead",
                 "train_one_epoch", "evaluate_epoch")
    right = dict.fromkeys(exercises, "right")
    choices = {"right": right, "wrong": dict(right, se_backward="wrong"), "blank": {}}
    submissions = {who: {name: answer(student, solution, c)} for who, c in choices.items()}
    course = make_course(tmp_path, {name: solution})
    run([str(BIN / "nbgrader"), "generate_assignment", "ps1"], course)
    scores = autograde(course, submissions)
    from utils.check import EXERCISES

    points = {f"check_{e}": float(EXERCISES[e].points) for e in choices["right"]}
    assert scores["right"] == points
    assert scores["wrong"] == dict(points, check_se_backward=0.0)
    assert scores["blank"] == dict.fromkeys(points, 0.0)
    folders = []
    for who, notebooks in submissions.items():
        (tmp_path / "cmd" / who).mkdir(parents=True)
        nbformat.write(notebooks[name], tmp_path / "cmd" / who / name)
        folders.append(tmp_path / "cmd" / who)
    rows = grade_rows(tmp_path, ROOT / "notebooks", folders, timeout=300)
    got = {(r["submission"], r["exercise"]): (r["status"], float(r["points"])) for r in rows}
    for who in choices:
        for exercise in choices["right"]:
            status = {"right": "✅", "blank": "⏳"}.get(who, "❌" if exercise == "se_backward"
                                                      else "✅")
            assert got[who, exercise] == (status, scores[who][f"check_{exercise}"])
