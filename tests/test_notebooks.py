"""The committed solution notebooks: run top to bottom, clean, and shaped like the design."""

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from utils.student import BEGIN

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


def cells(path):
    nb = json.loads(path.read_text())
    return [(c["cell_type"], "".join(c["source"]), c) for c in nb["cells"]]


def test_there_are_solution_notebooks_in_course_order():
    names = [p.name for p in SOLUTIONS]
    assert names[:5] == ["00_start_here.ipynb", "01_saliency_hvs.ipynb",
                         "02_squeeze_excitation.ipynb", "03_cbam.ipynb", "04_non_local.ipynb"]
    numbers = [int(re.match(r"(\d\d)_", n).group(1)) for n in names]
    assert numbers == sorted(numbers) == list(range(len(numbers)))


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solution_was_run_top_to_bottom_in_one_kernel_without_errors(path):
    code = [c for kind, src, c in cells(path) if kind == "code" and src.strip()]
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), f"{path.name}: Restart & Run All, then save"
    for index, cell in enumerate(code):
        for out in cell["outputs"]:
            assert out["output_type"] != "error", f"{path.name}: error in code cell {index}"
            assert out.get("name") != "stderr", f"{path.name}: stderr in code cell {index}"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solution_follows_the_course_layout(path):
    all_cells = cells(path)
    markdown = [src for kind, src, _ in all_cells if kind == "markdown"]
    assert markdown[0].startswith("# ") and "Learning objectives" in markdown[0]
    assert "Prerequisites" in markdown[0]
    assert "## Summary" in markdown[-2]
    questions = markdown[-1]
    assert questions.startswith("## Check your understanding")
    numbered = re.findall(r"^\d+\. ", questions, flags=re.M)
    answers = re.findall(r"^<!-- BEGIN SOLUTION -->\n\*\*Answer\.\*\* \S[^<]*\n"
                         r"<!-- END SOLUTION -->$", questions, flags=re.M)
    assert len(numbered) >= 4 and len(answers) == len(numbered), (
        f"{path.name}: every question needs a worked answer in a solution region")
    exercises = [i for i, (kind, src, _) in enumerate(all_cells) if BEGIN in src]
    for i in exercises:
        following = all_cells[i + 1][1]
        assert re.match(r"^(\w+) = check\.\1\(\1\)$", following.strip()), (
            f"{path.name}: exercise cell {i} must be followed by `fn = check.something(fn)`")


def test_every_notebook_has_at_least_the_exercises_the_design_asks_for():
    counts = {p.name: sum(BEGIN in src for _, src, _ in cells(p)) for p in SOLUTIONS}
    assert counts["00_start_here.ipynb"] >= 1
    assert counts["01_saliency_hvs.ipynb"] >= 3
    assert counts["02_squeeze_excitation.ipynb"] >= 3
    assert counts["03_cbam.ipynb"] >= 3
    assert counts["04_non_local.ipynb"] >= 4
    assert counts["05_interaction_aware.ipynb"] >= 3
    assert counts["06_video_attention.ipynb"] >= 3
    assert counts["07_efficiency_and_beyond.ipynb"] >= 3
    assert counts["08_attention_in_practice.ipynb"] >= 2


LONG_CELL_S = 12          # a cell that runs longer than this in full mode shows progress
PROGRESS_LINE = re.compile(r"^[\w -]+ \[\d+/\d+\] \S", flags=re.M)   # utils.training.Progress


def seconds(cell) -> float | None:
    """How long the committed full-mode run spent in a code cell (nbclient's timestamps)."""
    times = cell["metadata"].get("execution", {})
    if "iopub.execute_input" not in times or "shell.execute_reply" not in times:
        return None
    return (datetime.fromisoformat(times["shell.execute_reply"])
            - datetime.fromisoformat(times["iopub.execute_input"])).total_seconds()


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_long_cells_show_progress_while_they_run(path):
    timed = [(i, seconds(c), c) for i, (kind, _, c) in enumerate(cells(path)) if kind == "code"]
    assert all(s is not None for _, s, _ in timed), f"{path.name}: run it with nbclient"
    for index, took, cell in timed:
        if took > LONG_CELL_S:
            text = "".join("".join(o["text"]) for o in cell["outputs"]
                           if o["output_type"] == "stream" and o["name"] == "stdout")
            assert PROGRESS_LINE.search(text), (
                f"{path.name}: cell {index} ran {took:.0f} s without a Progress line "
                "(pass progress='text' to the library function, or use utils.training.Progress)")


WIDGET = "application/vnd.jupyter.widget-view+json"
SLIDERS = re.compile(r"^\s*(?:\w+\s*=\s*)?(?:widgets\.)?interact\(", re.M)


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_sliders_go_through_the_course_helper_and_have_a_static_figure(path):
    """Sliders start only in a person's frontend (utils.plotting.interact): a batch run and a
    static page (GitHub, nbviewer, the reading edition) show the figure drawn just before, so
    the slider's cell, or the code cell before it, must hold a committed figure; no widget
    output or saved widget state is committed (a batch run starts none)."""
    nb = json.loads(path.read_text())
    assert "widgets" not in nb["metadata"], f"{path.name}: saved widget state; re-execute it"
    code = [(i, src, c) for i, (kind, src, c) in enumerate(cells(path)) if kind == "code"]
    for k, (index, source, cell) in enumerate(code):
        assert "ipywidgets" not in source, (
            f"{path.name}: cell {index} uses ipywidgets directly; call "
            "utils.plotting.interact, which starts no widget in a batch run")
        assert not any(WIDGET in o.get("data", {}) for o in cell["outputs"]), (
            f"{path.name}: cell {index} has a committed widget output")
        if SLIDERS.search(source):
            near = [c for _, _, c in code[max(k - 1, 0):k + 1]]
            assert any("image/png" in o.get("data", {}) for c in near for o in c["outputs"]), (
                f"{path.name}: the sliders in cell {index} have no static figure beside them")


RUN_TIME = re.compile(r"\*\*Run time\*\*\s+\(2-core\s+CPU\):\s+about\s+(\d+(?:\.\d+)?)\s+(s|min)\s+"
                      r"in\s+full\s+mode,\s+under\s+(\d+)\s+s\s+in\s+fast\s+mode")


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_the_run_time_at_the_top_is_the_committed_runs(path):
    """Cell 0 says how long the notebook runs; the full-mode figure must be the committed run's
    (the sum of its cells' times, within a minute or a quarter) and the fast mode's bound is
    within the course's budget of 60 s."""
    _, source, _ = cells(path)[0]
    found = RUN_TIME.findall(source)
    assert len(found) == 1, f"{path.name}: cell 0 needs one line '**Run time** (2-core CPU): " \
                            f"about N min in full mode, under M s in fast mode'"
    number, unit, fast = found[0]
    stated = float(number) * (60 if unit == "min" else 1)
    took = sum(s for kind, _, c in cells(path) if kind == "code" and (s := seconds(c)))
    assert abs(stated - took) <= max(60, 0.25 * took), (
        f"{path.name}: cell 0 says about {number} {unit} in full mode; the committed run took "
        f"{took:.0f} s")
    assert int(fast) <= 60, f"{path.name}: fast mode must stay under 60 s, cell 0 says {fast} s"
