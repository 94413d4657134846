"""Build the reading edition: a static HTML site of the course from the committed outputs.

    python book/build_book.py [--out build/book]

The instructor notebooks in ``solutions/`` are copied to a staging folder and prepared for
reading (nothing is executed):

* the first code cell's install guard (for someone running the notebook) is left out;
* the ``### BEGIN SOLUTION`` / ``### END SOLUTION`` lines and ``# NBVAL_...`` markers are
  removed from code cells; the code between them stays;
* each worked answer (``<!-- BEGIN SOLUTION -->`` ... ``<!-- END SOLUTION -->`` in markdown)
  is put behind a "Show answer" disclosure;
* the line a batch run prints where a person's notebook shows sliders
  (``utils.plotting.interact``) becomes a note for the reader (a static page has no sliders;
  the figure above them shows the default);
* consecutive printed lines are one block, and results tables printed as markdown are
  rendered as tables;
* mentions such as "notebook 03" link to that notebook, and the questions' introduction
  points at *Show answer*;
* the home page is the course map, taken from README.md's "What you will learn" table.

Sphinx with MyST-NB renders the staged folder; MathJax is served from the site itself
(``sphinx-mathjax-offline``), so the site works without a network.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from utils.plotting import NO_SLIDERS

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
SOLUTIONS = ROOT / "solutions"
DEFAULT_OUT = ROOT / "build" / "book"

CODE_MARKER = re.compile(r"^[ \t]*(### (BEGIN|END) SOLUTION|# NBVAL_[A-Z_]+)[ \t]*\n?", re.M)
# The first code cell's "is the course library installed?" guard (tests/test_first_cells.py):
# it speaks to someone running the notebook, not to a reader.
INSTALL_GUARD = re.compile(
    r"\Atry:  # the course library.*?\n    raise ModuleNotFoundError\(hint\) from None\n\n?", re.S)
ANSWER_BEGIN = "<!-- BEGIN SOLUTION -->"
ANSWER_END = "<!-- END SOLUTION -->"
ANSWER_OPEN = '\n<details class="answer">\n<summary>Show answer</summary>\n\n'
ANSWER_CLOSE = "\n\n</details>\n\n"
SLIDER_NOTE = {"output_type": "display_data", "metadata": {}, "data": {"text/markdown": (
    "*In JupyterLab, sliders appear here to choose another setting; the figure above shows "
    "the default one.*")}}


TABLE_LINE = re.compile(r"^\|.*\|[ \t]*\n?$")
TABLE_RULE = re.compile(r"^\|(?:[ \t]*:?-{3,}:?[ \t]*\|)+[ \t]*$", re.M)
NOTEBOOK_MENTION = re.compile(r"(?<![\w\[/])([Nn]otebook) (0\d)\b(?![\]\w])")
QUESTIONS_INTRO = ("Write your answer under each question. The instructor edition has worked "
                   "answers.")
QUESTIONS_INTRO_HERE = "Think of your answer first, then open *Show answer* under each question."


def _joined(text: str | list[str]) -> str:
    """A notebook's multi-line string, stored either whole or as a list of lines."""
    return "".join(text) if isinstance(text, list) else text


def _source(cell: dict) -> str:
    return _joined(cell.get("source", ""))


def collapse_answers(text: str) -> str:
    """Put every ``<!-- BEGIN SOLUTION -->`` ... ``<!-- END SOLUTION -->`` region of a
    markdown cell behind a "Show answer" disclosure. Unbalanced markers raise ValueError."""
    if text.count(ANSWER_BEGIN) != text.count(ANSWER_END):
        raise ValueError("answer markers are unbalanced: "
                         f"{text.count(ANSWER_BEGIN)} begin, {text.count(ANSWER_END)} end")
    return text.replace(ANSWER_BEGIN, ANSWER_OPEN).replace(ANSWER_END, ANSWER_CLOSE)


def merge_streams(outputs: list[dict]) -> list[dict]:
    """Consecutive outputs to the same stream joined into one (as a terminal shows them), so
    that a run's progress lines read as one block, not one box per line."""
    merged: list[dict] = []
    for out in outputs:
        last = merged[-1] if merged else None
        if (out.get("output_type") == "stream" and last is not None
                and last.get("output_type") == "stream" and last["name"] == out["name"]):
            last["text"] = _text(last) + _text(out)
        else:
            merged.append(dict(out, text=_text(out)) if out.get("output_type") == "stream"
                          else out)
    return merged


def _text(out: dict) -> str:
    return _joined(out.get("text", ""))


def tables_as_markdown(outputs: list[dict]) -> list[dict]:
    """A results table a cell printed as markdown (``| a | b |`` lines with a ``|---|`` rule)
    becomes a rendered table; the text around it stays printed text."""
    result: list[dict] = []
    for out in outputs:
        if out.get("output_type") != "stream" or not TABLE_RULE.search(_text(out)):
            result.append(out)
            continue
        for kind, block in _split_tables(_text(out)):
            if kind == "table":
                result.append({"output_type": "display_data", "metadata": {},
                               "data": {"text/markdown": block}})
            elif block.strip():
                result.append({"output_type": "stream", "name": out["name"], "text": block})
    return result


def _split_tables(text: str) -> list[tuple[str, str]]:
    """``text`` cut into ("text", ...) and ("table", ...) blocks, in order."""
    lines = text.splitlines(keepends=True)
    blocks: list[tuple[str, str]] = []
    i = 0
    while i < len(lines):
        j = i
        while j < len(lines) and TABLE_LINE.match(lines[j]):
            j += 1
        if j - i >= 2 and TABLE_RULE.match(lines[i + 1]):
            blocks.append(("table", "".join(lines[i:j])))
            i = j
            continue
        line = lines[i]
        if blocks and blocks[-1][0] == "text":
            blocks[-1] = ("text", blocks[-1][1] + line)
        else:
            blocks.append(("text", line))
        i += 1
    return blocks


def link_notebooks(text: str, names: dict[str, str], own: str) -> str:
    """Mentions such as "notebook 03" in prose become links to that notebook's page (not in
    code, not inside an existing link, not to the page itself)."""
    parts = re.split(r"(`[^`]*`|\[[^\]]*\]\([^)]*\)|\$[^$]*\$)", text)
    for k in range(0, len(parts), 2):
        parts[k] = NOTEBOOK_MENTION.sub(
            lambda m: (f"[{m.group(0)}]({names[m.group(2)]})"
                       if m.group(2) in names and m.group(2) != own else m.group(0)),
            parts[k])
    return "".join(parts)


def prepare_notebook(nb: dict, names: dict[str, str] | None = None, own: str = "") -> dict:
    """The reading-edition version of one instructor notebook (a new dict; ``nb`` is kept).
    ``names`` maps notebook numbers ("03") to file names, for links between pages; ``own`` is
    this notebook's number."""
    names = names or {}
    nb = json.loads(json.dumps(nb))
    first_code = True
    for cell in nb["cells"]:
        text = _source(cell)
        if cell["cell_type"] == "code":
            if first_code:
                text, first_code = INSTALL_GUARD.sub("", text, count=1), False
            cell["source"] = CODE_MARKER.sub("", text)
            outputs = [SLIDER_NOTE if _joined(o.get("text", "")).startswith(NO_SLIDERS) else o
                       for o in cell.get("outputs", [])]
            cell["outputs"] = tables_as_markdown(merge_streams(outputs))
        elif cell["cell_type"] == "markdown":
            text = text.replace(QUESTIONS_INTRO, QUESTIONS_INTRO_HERE)
            cell["source"] = link_notebooks(collapse_answers(text), names, own)
    return nb


def course_map(readme: str) -> str:
    """The home page: README's title and first paragraph, then its "What you will learn"
    section, with links to ``notebooks/NN_name.ipynb`` turned into links between pages."""
    lines = readme.splitlines()
    title = lines[0]
    intro = readme.split("\n\n")[1]
    match = re.search(r"^## What you will learn\n(.*?)(?=^## )", readme, re.M | re.S)
    if match is None:
        raise ValueError("README.md has no '## What you will learn' section")
    section = re.sub(r"\]\(notebooks/(\d\d_[a-z0-9_]+\.ipynb)\)", r"](\1)", match.group(1))
    return (f"{title}\n\n{intro}\n\n"
            "This is the **reading edition**: every notebook with the outputs of its last "
            "full run and the worked answers behind *Show answer*. To run the notebooks and "
            "do the exercises yourself, get the course's repository and run `make lab` in "
            "it: it installs everything and opens your own copy of notebook 00. Its README "
            "also covers conda, Binder, Colab and a plain Jupyter.\n\n"
            f"## What you will learn\n{section}")


STAGE_MARK = ".reading-edition-source"    # in a staging folder this builder wrote


def _replaceable(folder: Path, mark: str, what: str) -> None:
    """Refuse to delete ``folder`` unless it is empty or this builder made it (``mark``)."""
    if folder.exists() and (not folder.is_dir() or
                            (any(folder.iterdir()) and not (folder / mark).exists())):
        raise ValueError(f"{what}: {folder} exists and is not a reading edition built here; "
                         "choose an empty or new folder (nothing was deleted)")


def stage(out: Path) -> list[str]:
    """Write the Sphinx source folder ``out``; return the page names in reading order."""
    _replaceable(out, STAGE_MARK, "staging folder")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / STAGE_MARK).write_text("written by book/build_book.py; deleted at each build\n")
    pages = []
    paths = sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))
    names = {path.name[:2]: path.name for path in paths}
    for path in paths:
        nb = prepare_notebook(json.loads(path.read_text(encoding="utf-8")), names, path.name[:2])
        (out / path.name).write_text(json.dumps(nb, indent=1, ensure_ascii=False),
                                     encoding="utf-8")
        pages.append(path.stem)
    if not pages:
        raise FileNotFoundError(f"no notebooks found in {SOLUTIONS}")
    toctree = "\n".join(["", "```{toctree}", ":hidden:", ":maxdepth: 1", "", *pages, "```", ""])
    home = course_map((ROOT / "README.md").read_text(encoding="utf-8"))
    (out / "index.md").write_text(home + toctree, encoding="utf-8")
    return pages


def build(out: Path = DEFAULT_OUT, *, quiet: bool = True) -> Path:
    """Stage the notebooks and run Sphinx; return the site's ``index.html``.
    Any Sphinx warning fails the build."""
    out = Path(out)
    src = out.parent / (out.name + "-src")
    _replaceable(out, ".buildinfo", "--out")         # Sphinx writes .buildinfo in its output
    stage(src)
    if out.exists():
        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(BOOK), "-W",
           "--keep-going", "-E", "-j", "auto", str(src), str(out)]
    if quiet:
        cmd.insert(3, "-q")
    subprocess.run(cmd, check=True)
    sources = out / "_sources"
    if sources.is_dir() and not any(sources.iterdir()):
        sources.rmdir()
    return out / "index.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output folder (default: {DEFAULT_OUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        index = build(args.out)
    except ValueError as error:
        parser.error(str(error))
    print(f"reading edition built in {time.perf_counter() - start:.1f} s: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
