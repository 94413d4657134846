"""The student-edition generator and the repository's two editions."""

import json
from pathlib import Path

import nbformat
import pytest

from utils.student import BEGIN, END, MarkerError, blank_solutions, student_notebook, sync

ROOT = Path(__file__).resolve().parents[1]


def test_a_region_becomes_the_placeholder_at_its_indentation():
    source = ("def f(x):\n    \"\"\"Doc.\"\"\"\n    ### BEGIN SOLUTION\n    y = 2 * x\n"
              "    return y\n    ### END SOLUTION\n\nprint(f)")
    assert blank_solutions(source) == ("def f(x):\n    \"\"\"Doc.\"\"\"\n    # YOUR CODE HERE\n"
                                       "    raise NotImplementedError()\n\nprint(f)")


def test_several_regions_and_a_trailing_newline_are_kept():
    source = f"a = 1\n{BEGIN}\nb = 2\n{END}\nc = 3\n        {BEGIN}\nd\n        {END}\n"
    assert blank_solutions(source) == ("a = 1\n# YOUR CODE HERE\nraise NotImplementedError()\n"
                                       "c = 3\n        # YOUR CODE HERE\n"
                                       "        raise NotImplementedError()\n")


@pytest.mark.parametrize("source, message", [
    (f"{BEGIN}\nx = 1\n", "line 1 has no '### END SOLUTION'"),
    (f"x = 1\n{END}\n", "line 2 has no '### BEGIN SOLUTION' before it"),
    (f"{BEGIN}\n{BEGIN}\n{END}\n{END}\n", "nested '### BEGIN SOLUTION' at line 2"),
])
def test_unbalanced_or_nested_markers_are_refused_with_the_place_named(source, message):
    with pytest.raises(MarkerError, match=message) as err:
        blank_solutions(source, where="demo.ipynb, cell 3")
    assert "demo.ipynb, cell 3" in str(err.value)


def make_notebook():
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell(f"def softmax():\n    {BEGIN}\n    return 1\n    {END}",
                                     execution_count=4)
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nb.cells = [nbformat.v4.new_markdown_cell("Markdown without regions is kept as written."),
                code, nbformat.v4.new_code_cell("softmax = check.softmax(softmax)"),
                nbformat.v4.new_markdown_cell(f"1. Why?\n\n{BEGIN}\nBecause.\n{END}\n\n2. How?")]
    return nb


def test_student_notebook_clears_outputs_counts_and_answers_and_keeps_markdown():
    nb = make_notebook()
    student = student_notebook(nb)
    assert student.cells[0].source == nb.cells[0].source
    assert student.cells[1].outputs == [] and student.cells[1].execution_count is None
    assert "raise NotImplementedError()" in student.cells[1].source
    assert student.cells[3].source == "1. Why?\n\nYOUR ANSWER HERE\n\n2. How?"
    assert nb.cells[1].execution_count == 4, "the solution notebook must not be changed"


def test_grading_metadata_marks_exercises_checks_answers_and_locks_the_rest():
    meta = [c.metadata["nbgrader"] for c in student_notebook(make_notebook()).cells]
    assert [m["grade_id"] for m in meta[1:]] == ["softmax", "check_softmax", "answers"]
    assert (meta[0]["locked"], meta[0]["solution"], meta[0]["grade"]) == (True, False, False)
    assert (meta[1]["solution"], meta[1]["locked"], meta[1]["grade"]) == (True, False, False)
    assert (meta[2]["grade"], meta[2]["locked"], meta[2]["points"]) == (True, True, 1)
    assert (meta[3]["grade"], meta[3]["solution"], meta[3]["points"]) == (True, True, 0)
    assert len({m["grade_id"] for m in meta}) == len(meta)


@pytest.mark.parametrize("check_source, message", [
    ("print(1)", "must be followed by a check cell"),
    ("softmax = check.softmax(mine)", "must be followed by a check cell"),
    ("sofmax = check.sofmax(sofmax)", "not a registered exercise"),
])
def test_an_exercise_without_its_check_cell_is_refused(check_source, message):
    nb = make_notebook()
    nb.cells[2].source = check_source
    with pytest.raises(MarkerError, match=message):
        student_notebook(nb, name="demo.ipynb")


def test_markers_are_found_anywhere_in_a_line_as_nbgrader_finds_them():
    assert blank_solutions("x = 1  # BEGIN SOLUTION here\ny = 2\n# END SOLUTION\nz") == (
        "# YOUR CODE HERE\nraise NotImplementedError()\nz")


def make_course(tmp_path):
    src, dst, work = tmp_path / "solutions", tmp_path / "notebooks", tmp_path / "work"
    src.mkdir()
    nbformat.write(make_notebook(), src / "a.ipynb")
    return src, dst, work


def test_sync_writes_stamps_checks_and_removes_its_own_stale_notebooks(tmp_path):
    src, dst, work = make_course(tmp_path)
    assert sync(src, dst, check=True, rescue_dir=work) == [
        f"{src / 'a.ipynb'}: nbgrader metadata or format out of date", f"{dst / 'a.ipynb'}: missing"]
    assert sync(src, dst, rescue_dir=work) == []
    assert "nbgrader" in json.loads((src / "a.ipynb").read_text())["cells"][1]["metadata"]
    assert sync(src, dst, check=True, rescue_dir=work) == []
    (src / "b.ipynb").write_text((src / "a.ipynb").read_text())
    sync(src, dst, rescue_dir=work)
    (src / "b.ipynb").unlink()
    assert sync(src, dst, check=True, rescue_dir=work) == [
        f"{dst / 'b.ipynb'}: has no solution notebook in {src}"]
    assert sync(src, dst, rescue_dir=work) == []
    assert not (dst / "b.ipynb").exists() and not work.exists()


def test_sync_moves_a_learners_work_aside_instead_of_overwriting_or_deleting_it(tmp_path):
    src, dst, work = make_course(tmp_path)
    sync(src, dst, rescue_dir=work)
    mine = (dst / "a.ipynb").read_text().replace("raise NotImplementedError()", "return 42")
    (dst / "a.ipynb").write_text(mine)
    (dst / "own.ipynb").write_text("{}")
    problems = sync(src, dst, check=True, rescue_dir=work)
    assert len(problems) == 2 and all("your own" in p for p in problems)
    assert (dst / "a.ipynb").read_text() == mine, "--check must not write"
    sync(src, dst, rescue_dir=work)
    rescued = sorted(p.name for p in work.iterdir())
    assert len(rescued) == 2 and rescued[0].startswith("a.rescued-")
    assert (work / rescued[0]).read_text() == mine
    assert (work / rescued[1]).read_text() == "{}" and not (dst / "own.ipynb").exists()
    assert sync(src, dst, check=True, rescue_dir=work) == []


def test_the_repository_student_edition_is_up_to_date():
    problems = sync(ROOT / "solutions", ROOT / "notebooks", check=True)
    assert problems == [], "run `make student`: " + "; ".join(problems)


def test_student_notebooks_hold_no_solution_and_no_outputs():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        assert "widgets" not in nb["metadata"], path.name
        for cell in nb["cells"]:
            source = "".join(cell["source"])
            assert "BEGIN SOLUTION" not in source and "END SOLUTION" not in source, path.name
            assert "nbgrader" in cell["metadata"], path.name
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, path.name
