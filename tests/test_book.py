"""The reading edition (book/): how notebooks are prepared, and the built site in a browser."""

import copy
import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book"))
build = importlib.import_module("build_book")
browse = importlib.import_module("browse")

NOTEBOOKS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))


def _nb(*cells, metadata=None):
    return {"cells": list(cells), "metadata": metadata or {}, "nbformat": 4,
            "nbformat_minor": 5}


def _code(source, outputs=()):
    return {"cell_type": "code", "source": source, "outputs": list(outputs),
            "metadata": {}, "execution_count": 1}


def _md(source):
    return {"cell_type": "markdown", "source": source, "metadata": {}}


def test_solution_markers_go_and_the_solution_code_stays():
    cell = _code("def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"
                 "# NBVAL_CHECK_OUTPUT\nprint(f(1))\n")
    out = build.prepare_notebook(_nb(cell))["cells"][0]["source"]
    assert out == "def f(x):\n    return 2 * x\nprint(f(1))\n"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_install_guard_is_left_out_and_the_imports_stay(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    before = "".join(first["source"])
    assert before.startswith("try:") and "ModuleNotFoundError" in before
    out = next(c for c in build.prepare_notebook(nb)["cells"] if c["cell_type"] == "code")
    assert "ModuleNotFoundError" not in out["source"]
    assert out["source"].startswith(("import ", "from "))
    assert before.endswith(out["source"])
    assert out["outputs"] == build.merge_streams(first["outputs"])


def test_a_comment_that_only_mentions_a_marker_is_kept():
    src = "x = 1  # not '### BEGIN SOLUTION' on its own line\n"
    assert build.prepare_notebook(_nb(_code(src)))["cells"][0]["source"] == src


def test_answers_are_collapsed_and_the_input_is_not_changed():
    md = _md("1. Why?\n\n<!-- BEGIN SOLUTION -->\n**Answer.** Because $x$.\n"
             "<!-- END SOLUTION -->\n\n2. How?\n\n<!-- BEGIN SOLUTION -->\nSo.\n"
             "<!-- END SOLUTION -->\n")
    nb = _nb(md)
    before = copy.deepcopy(nb)
    out = build.prepare_notebook(nb)["cells"][0]["source"]
    assert nb == before
    assert "SOLUTION" not in out
    assert out.count('<details class="answer">') == 2 == out.count("</details>")
    assert out.count("<summary>Show answer</summary>") == 2
    # the answer's markdown stays markdown: blank lines around it end the HTML blocks
    assert re.search(r"<summary>Show answer</summary>\n\n+\*\*Answer\.\*\* Because \$x\$\.\n\n+"
                     r"</details>\n\n", out)
    assert browse.count_math(out) == 1


def test_printed_lines_are_one_block_and_printed_tables_are_rendered():
    outs = [{"output_type": "stream", "name": "stdout", "text": "runs [1/2] a\n"},
            {"output_type": "stream", "name": "stdout", "text": ["runs [2/2] b\n", "\n"]},
            {"output_type": "stream", "name": "stdout",
             "text": "| model | acc |\n|---|---|\n| CNN | 70.1 |\n\n5 seeds\n"},
            {"output_type": "stream", "name": "stderr", "text": "warn\n"},
            {"output_type": "display_data", "metadata": {}, "data": {"text/plain": "x"}}]
    nb = build.prepare_notebook(_nb(_code("run()", outs)))
    got = nb["cells"][0]["outputs"]
    assert [o["output_type"] for o in got] == ["stream", "display_data", "stream", "stream",
                                               "display_data"]
    assert got[0]["text"] == "runs [1/2] a\nruns [2/2] b\n\n"
    assert got[1]["data"]["text/markdown"] == "| model | acc |\n|---|---|\n| CNN | 70.1 |\n"
    assert got[2]["text"] == "\n5 seeds\n" and got[3] == outs[3]
    # pipes without a rule line are not a table
    plain = [{"output_type": "stream", "name": "stdout", "text": "| a | b |\n| 1 | 2 |\n"}]
    assert build.prepare_notebook(_nb(_code("", plain)))["cells"][0]["outputs"] == plain


def test_mentions_of_other_notebooks_become_links():
    names = {"02": "02_se.ipynb", "03": "03_cbam.ipynb"}
    md = _md("As notebook 02 showed, and [notebook 03](03_cbam.ipynb) and `notebook 02` and "
             "notebooks 02 and 03; this is notebook 03.\n\n" + build.QUESTIONS_INTRO + "\n")
    out = build.prepare_notebook(_nb(md), names, "03")["cells"][0]["source"]
    assert out.startswith("As [notebook 02](02_se.ipynb) showed, and [notebook 03](03_cbam."
                          "ipynb) and `notebook 02` and notebooks 02 and 03; this is notebook 03.")
    assert build.QUESTIONS_INTRO not in out and "*Show answer*" in out


def test_unbalanced_answer_markers_are_refused():
    with pytest.raises(ValueError, match="unbalanced: 1 begin, 0 end"):
        build.prepare_notebook(_nb(_md("<!-- BEGIN SOLUTION -->\nno end\n")))


def test_the_batch_line_of_the_sliders_becomes_a_note_for_the_reader():
    from utils.plotting import NO_SLIDERS

    line = {"output_type": "stream", "name": "stdout",
            "text": [f"{NO_SLIDERS}: no sliders, and the figure above stands. ", "More.\n"]}
    other = {"output_type": "stream", "name": "stdout", "text": "No live music tonight.\n"}
    figure = {"output_type": "display_data", "metadata": {},
              "data": {"image/png": "iVBOR", "text/plain": "<Figure>"}}
    out = build.prepare_notebook(_nb(_code("interact(f, a=(1, 0, 3))", [figure, line]),
                                     _code("print(x)", [other])))
    assert out["cells"][0]["outputs"] == [figure, build.SLIDER_NOTE]
    assert out["cells"][1]["outputs"] == [other]


def test_the_home_page_is_the_course_map_with_links_between_pages():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    home = build.course_map(readme)
    for path in NOTEBOOKS:
        assert f"]({path.name})" in home
    assert "](notebooks/" not in home
    with pytest.raises(ValueError, match="What you will learn"):
        build.course_map("# Title\n\nIntro.\n\n## Other\ntext\n")


def test_the_builder_never_deletes_a_folder_it_did_not_make(tmp_path):
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "essay.ipynb").write_text("{}")
    with pytest.raises(ValueError, match="--out: .* is not a reading edition built here"):
        build.build(mine)
    (tmp_path / "site").mkdir()
    (tmp_path / "site-src").mkdir()
    (tmp_path / "site-src" / "draft.md").write_text("mine")
    with pytest.raises(ValueError, match="staging folder: .*nothing was deleted"):
        build.build(tmp_path / "site")
    assert (mine / "essay.ipynb").exists() and (tmp_path / "site-src" / "draft.md").exists()


def test_math_is_counted_as_myst_parses_it():
    assert browse.count_math("a $x$ and $$y$$ and `$z$` and\n\n$$\nw\n$$\n") == 3
    assert browse.count_math("\\begin{align}a&=b\\end{align}\n") == 1
    assert browse.count_math("costs 5 dollars") == 0


def _answers(nb: dict) -> int:
    return sum(build._source(c).count(build.ANSWER_BEGIN) for c in nb["cells"]
               if c["cell_type"] == "markdown")


def _images(nb: dict) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb["cells"]
               for o in c.get("outputs", []))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if browse.chromium_path() is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: .ci/run installs it (apt-get install chromium)")
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    out = tmp_path_factory.mktemp("book") / "site"
    build.build(out)
    return out, browse.inspect_site(out)


def test_every_page_loads_offline_with_no_console_error(site):
    _, report = site
    names = {p.stem for p in NOTEBOOKS} | {"index", "search", "genindex"}
    assert set(report.pages) == names
    for name, page in report.pages.items():
        assert page.console_errors == [], name
        assert page.blocked_requests == [], f"{name} asked the network for {page.blocked_requests}"
        assert page.failed_requests == [], name


def test_every_equation_is_typeset(site):
    out, report = site
    for path in NOTEBOOKS:
        staged = json.loads((out.parent / "site-src" / path.name).read_text(encoding="utf-8"))
        page = report.pages[path.stem]
        expected = browse.source_math(staged)
        assert expected > 0, path.name
        assert page.equations == expected, path.name
        assert page.math_errors == 0, path.name
        assert page.leftover_tex == [], path.name
        assert page.wide_equations == 0, f"{path.name}: a display equation scrolls at 1280 px"


def test_every_figure_loads_and_every_internal_link_resolves(site):
    _, report = site
    for path in NOTEBOOKS:
        page = report.pages[path.stem]
        assert page.images == _images(json.loads(path.read_text(encoding="utf-8"))), path.name
        assert page.broken_images == [], path.name
        assert page.wide_blocks == 0, f"{path.name}: code or output scrolls sideways at 1280 px"
    assert report.broken_links == []
    assert report.internal_links > 0
    linked = {link.split("#")[0] for link in report.pages["index"].links}
    assert {f"{p.stem}.html" for p in NOTEBOOKS} <= linked


def test_answers_are_collapsed_and_open_on_a_click(site):
    _, report = site
    for path in NOTEBOOKS:
        page = report.pages[path.stem]
        assert page.answers == _answers(json.loads(path.read_text(encoding="utf-8"))) > 0
        assert page.answers_open == 0, path.name
        assert page.answer_opens is True, path.name
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "NBVAL_"):
            assert marker not in page.text, (path.name, marker)


def test_the_site_search_finds_the_notebooks_that_teach_a_word(site):
    _, report = site
    # "excitation" is taught in 02 and used in later notebooks
    assert report.search_results >= 2
