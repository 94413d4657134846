"""The student-edition generator: ``solutions/*.ipynb`` -> ``notebooks/*.ipynb``.

In every code cell, each region between a line ``### BEGIN SOLUTION`` and a line
``### END SOLUTION`` (nbgrader's markers) becomes, at the indentation of the BEGIN line::

    # YOUR CODE HERE
    raise NotImplementedError()

Outputs and execution counts are cleared; everything else is kept. Unbalanced or nested
markers are refused with the notebook and cell named.

    python -m utils.student            # write notebooks/
    python -m utils.student --check    # exit 1 if notebooks/ is not what would be written
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import nbformat

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
PLACEHOLDER = ("# YOUR CODE HERE", "raise NotImplementedError()")


class MarkerError(ValueError):
    """Solution markers that do not pair up."""


def blank_solutions(source: str, where: str = "cell") -> str:
    """Replace every solution region of one cell's source; ``where`` names it in errors."""
    out: list[str] = []
    begin_line = None
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if begin_line is not None:
                raise MarkerError(f"{where}: nested '{BEGIN}' at line {number} (the region "
                                  f"opened at line {begin_line} is not closed)")
            begin_line = number
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(f"{indent}{text}\n" for text in PLACEHOLDER)
        elif marker == END:
            if begin_line is None:
                raise MarkerError(f"{where}: '{END}' at line {number} has no '{BEGIN}' before it")
            begin_line = None
        elif begin_line is None:
            out.append(line)
    if begin_line is not None:
        raise MarkerError(f"{where}: '{BEGIN}' at line {begin_line} has no '{END}'")
    text = "".join(out)
    # Keep the cell's trailing-newline convention (Jupyter stores none on the last line).
    return text[:-1] if text.endswith("\n") and not source.endswith("\n") else text


def student_notebook(nb: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """The student edition of one notebook (a new object; ``nb`` is not changed)."""
    student = copy.deepcopy(nb)
    for index, cell in enumerate(student.cells):
        if cell.cell_type != "code":
            continue
        cell.source = blank_solutions(cell.source, where=f"{name}, cell {index}")
        cell.outputs = []
        cell.execution_count = None
    return student


def render(path: Path) -> str:
    """The text of the student edition of the solution notebook at ``path``."""
    nb = nbformat.read(path, as_version=4)
    return nbformat.writes(student_notebook(nb, name=path.name)) + "\n"


def sync(src: Path, dst: Path, check: bool = False) -> list[str]:
    """Write (or, with ``check``, compare) every student notebook. Returns the problems found."""
    if not src.is_dir():
        raise ValueError(f"src must be a folder of solution notebooks, got {src}")
    problems = []
    wanted = {p.name: render(p) for p in sorted(src.glob("*.ipynb"))}
    if not check:
        dst.mkdir(parents=True, exist_ok=True)
    for name, text in wanted.items():
        target = dst / name
        current = target.read_text() if target.exists() else None
        if current == text:
            continue
        if check:
            problems.append(f"{target}: {'missing' if current is None else 'out of date'}")
        else:
            target.write_text(text)
    for stale in sorted(dst.glob("*.ipynb")) if dst.is_dir() else []:
        if stale.name not in wanted:
            if check:
                problems.append(f"{stale}: has no solution notebook in {src}")
            else:
                stale.unlink()
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=Path("solutions"))
    parser.add_argument("--dst", type=Path, default=Path("notebooks"))
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the student edition is out of date")
    args = parser.parse_args(argv)
    try:
        problems = sync(args.src, args.dst, check=args.check)
    except (MarkerError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem)
    if problems:
        print("run `make student` (python -m utils.student) to regenerate", file=sys.stderr)
        return 1
    if not args.check:
        print(f"wrote the student edition of {args.src}/ to {args.dst}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
