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
    code = nbformat.v4.new_code_cell(f"def f():\n    {BEGIN}\n    return 1\n    {END}",
                                     execution_count=4)
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nb.cells = [nbformat.v4.new_markdown_cell(f"Markdown keeps `{BEGIN}` text as written."), code]
    return nb


def test_student_notebook_clears_outputs_and_counts_and_keeps_markdown():
    nb = make_notebook()
    student = student_notebook(nb)
    assert student.cells[0].source == nb.cells[0].source
    assert student.cells[1].outputs == [] and student.cells[1].execution_count is None
    assert "raise NotImplementedError()" in student.cells[1].source
    assert nb.cells[1].execution_count == 4, "the solution notebook must not be changed"


def test_sync_writes_checks_and_removes_stale_notebooks(tmp_path):
    src, dst = tmp_path / "solutions", tmp_path / "notebooks"
    src.mkdir()
    nbformat.write(make_notebook(), src / "a.ipynb")
    assert sync(src, dst, check=True) == [f"{dst / 'a.ipynb'}: missing"]
    assert sync(src, dst) == []
    assert sync(src, dst, check=True) == []
    (dst / "a.ipynb").write_text((dst / "a.ipynb").read_text().replace("YOUR CODE", "MY CODE"))
    (dst / "old.ipynb").write_text("{}")
    assert sorted(sync(src, dst, check=True)) == [f"{dst / 'a.ipynb'}: out of date",
                                                  f"{dst / 'old.ipynb'}: has no solution "
                                                  f"notebook in {src}"]
    sync(src, dst)
    assert not (dst / "old.ipynb").exists() and sync(src, dst, check=True) == []


def test_the_repository_student_edition_is_up_to_date():
    problems = sync(ROOT / "solutions", ROOT / "notebooks", check=True)
    assert problems == [], "run `make student`: " + "; ".join(problems)


def test_student_notebooks_hold_no_solution_and_no_outputs():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            source = "".join(cell["source"])
            assert BEGIN not in source and END not in source, path.name
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, path.name
