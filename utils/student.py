"""The student-edition generator: ``solutions/*.ipynb`` -> ``notebooks/*.ipynb``.

Solution regions are nbgrader's: a line holding ``BEGIN SOLUTION`` (written
``### BEGIN SOLUTION``) up to a line holding ``END SOLUTION``. In a code cell a region
becomes, at the indentation of its BEGIN line::

    # YOUR CODE HERE
    raise NotImplementedError()

and in a Markdown cell (the answers to "Check your understanding") it becomes
``YOUR ANSWER HERE``. Outputs and execution counts are cleared; everything else is kept.
This is exactly what ``nbgrader generate_assignment`` does, so its release of ``solutions/``
equals ``notebooks/`` up to nbgrader's checksums and lock flags.

Every cell also gets nbgrader's metadata, derived from the notebook itself (one source of
truth): an exercise cell is a solution cell named after its checker; the check cell after it
(``fn = check.fn(fn)``) is a locked, autograded test cell worth the points that
``utils.check`` gives the exercise; a Markdown cell with answers is a manually graded answer
worth 0 points; every other cell is locked. The metadata is written into ``solutions/`` too.

Nothing a learner wrote is lost: a notebook in ``notebooks/`` that differs both from the
committed version (git ``HEAD``) and from what the generator last wrote is moved to
``work/`` (``<name>.rescued-<time>.ipynb``) before the new edition is written, and a
notebook there that has no solution notebook is moved rather than deleted.

    python -m utils.student            # write notebooks/ (and the metadata of solutions/)
    python -m utils.student --check    # exit 1 if either is not what would be written
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from .workspace import read_record, write_record

BEGIN_MARK, END_MARK = "BEGIN SOLUTION", "END SOLUTION"
BEGIN, END = f"### {BEGIN_MARK}", f"### {END_MARK}"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
TEXT_STUB = ("YOUR ANSWER HERE",)
CHECK_CELL = re.compile(r"^(\w+) = check\.(\w+)\((\w+)\)$")
ANSWERS_ID = "answers"
RECORD = ".generated.json"  # in the student folder: what the generator last wrote (git-ignored)


class MarkerError(ValueError):
    """Solution markers that do not pair up, or an exercise without its check cell."""


def _has_solution(source: str) -> bool:
    """Whether a cell's source holds a solution region (nbgrader's test: the marker in a line)."""
    return any(BEGIN_MARK in line for line in source.split("\n"))


def blank_solutions(source: str, where: str = "cell", cell_type: str = "code") -> str:
    """Replace every solution region of one cell's source; ``where`` names it in errors."""
    if not isinstance(source, str):
        raise ValueError(f"source must be a cell's source text (str), got {type(source).__name__}")
    if cell_type not in ("code", "markdown"):
        raise ValueError(f"cell_type must be 'code' or 'markdown', got {cell_type!r}")
    stub = CODE_STUB if cell_type == "code" else TEXT_STUB
    out: list[str] = []
    begin_line = None
    for number, line in enumerate(source.split("\n"), start=1):
        if BEGIN_MARK in line:
            if begin_line is not None:
                raise MarkerError(f"{where}: nested '{BEGIN}' at line {number} (the region "
                                  f"opened at line {begin_line} is not closed)")
            begin_line = number
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(f"{indent}{text}" for text in stub)
        elif END_MARK in line:
            if begin_line is None:
                raise MarkerError(f"{where}: '{END}' at line {number} has no '{BEGIN}' before it")
            begin_line = None
        elif begin_line is None:
            out.append(line)
    if begin_line is not None:
        raise MarkerError(f"{where}: '{BEGIN}' at line {begin_line} has no '{END}'")
    return "\n".join(out)


def _cell_metadata(grade_id: str, *, grade: bool = False, solution: bool = False,
                   locked: bool = False, points: int | None = None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return meta


def _grading_metadata(nb: nbformat.NotebookNode, name: str = "notebook") -> list[dict]:
    """nbgrader's metadata for every cell of a solution notebook, derived from its content."""
    from .check import EXERCISES  # the points live beside the checkers

    cells = nb.cells
    metas: list[dict | None] = [None] * len(cells)
    answers = 0
    for index, cell in enumerate(cells):
        where = f"{name}, cell {index}"
        if not _has_solution(cell.source):
            continue
        if cell.cell_type == "markdown":
            answers += 1
            grade_id = ANSWERS_ID if answers == 1 else f"{ANSWERS_ID}_{answers}"
            metas[index] = _cell_metadata(grade_id, grade=True, solution=True, points=0)
            continue
        following = cells[index + 1].source.strip() if index + 1 < len(cells) else ""
        match = CHECK_CELL.match(following)
        if not match or len({match[1], match[2], match[3]}) != 1:
            raise MarkerError(f"{where}: an exercise cell must be followed by a check cell "
                              f"`fn = check.fn(fn)` (one name three times), found {following!r}")
        exercise = match[1]
        if exercise not in EXERCISES:
            raise MarkerError(f"{where}: check.{exercise} is not a registered exercise "
                              f"(utils.check.EXERCISES)")
        metas[index] = _cell_metadata(exercise, solution=True)
        metas[index + 1] = _cell_metadata(f"check_{exercise}", grade=True, locked=True,
                                          points=EXERCISES[exercise].points)
    for index, cell in enumerate(cells):
        if metas[index] is None:
            metas[index] = _cell_metadata(cell.get("id") or f"cell_{index}", locked=True)
    return metas


def _check_notebook(nb: object) -> None:
    if not isinstance(nb, nbformat.NotebookNode) or not isinstance(nb.get("cells"), list):
        raise ValueError(f"nb must be a notebook read with nbformat.read(path, as_version=4), "
                         f"got {type(nb).__name__}")


def with_grading_metadata(nb: nbformat.NotebookNode,
                          name: str = "notebook") -> nbformat.NotebookNode:
    """A copy of ``nb`` whose cells carry nbgrader's metadata (``nb`` is not changed)."""
    _check_notebook(nb)
    stamped = copy.deepcopy(nb)
    for cell, meta in zip(stamped.cells, _grading_metadata(nb, name), strict=True):
        cell.metadata["nbgrader"] = meta
    return stamped


def student_notebook(nb: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """The student edition of one notebook (a new object; ``nb`` is not changed)."""
    _check_notebook(nb)
    student = with_grading_metadata(nb, name)
    for index, cell in enumerate(student.cells):
        if cell.cell_type in ("code", "markdown"):
            cell.source = blank_solutions(cell.source, where=f"{name}, cell {index}",
                                          cell_type=cell.cell_type)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    student.metadata.pop("widgets", None)
    return student


def _text(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _committed_text(path: Path) -> str | None:
    """The file's text at git HEAD, or None (no git, not tracked, not a repository)."""
    try:
        done = subprocess.run(["git", "-C", str(path.parent), "show", f"HEAD:./{path.name}"],
                              capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _holds_own_work(path: Path, record: dict[str, str]) -> bool:
    """Whether ``path`` may hold a learner's work: it is neither what the generator last wrote
    there nor the committed version."""
    text = path.read_text(errors="replace")
    return record.get(path.name) != _sha256(text) and text != _committed_text(path)


def _rescue(path: Path, rescue_dir: Path, move: bool) -> Path:
    rescue_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = rescue_dir / f"{path.stem}.rescued-{stamp}{path.suffix}"
    number = 1
    while target.exists():
        number += 1
        target = rescue_dir / f"{path.stem}.rescued-{stamp}-{number}{path.suffix}"
    target.write_bytes(path.read_bytes())
    if move:
        path.unlink()
    return target


def sync(src: Path, dst: Path, check: bool = False,
         rescue_dir: Path | None = None) -> list[str]:
    """Write (or, with ``check``, compare) every student notebook and the solutions' metadata.

    Returns the problems found (``check``) or the learner files moved aside (write mode).
    ``rescue_dir`` (default: ``work/`` beside ``src``) receives notebooks that may hold a
    learner's work before they would be overwritten or removed.
    """
    if not src.is_dir():
        raise ValueError(f"src must be a folder of solution notebooks, got {src}")
    rescue_dir = rescue_dir if rescue_dir is not None else src.resolve().parent / "work"
    record_path = dst / RECORD
    record = read_record(record_path)
    problems: list[str] = []
    wanted: dict[str, str] = {}
    for path in sorted(src.glob("*.ipynb")):
        text = path.read_text()
        nb = nbformat.reads(text, as_version=4)
        stamped = _text(with_grading_metadata(nb, path.name))
        if stamped != text:
            if check:
                problems.append(f"{path}: nbgrader metadata or format out of date")
            else:
                path.write_text(stamped)
        wanted[path.name] = _text(student_notebook(nb, name=path.name))
    if not check:
        dst.mkdir(parents=True, exist_ok=True)
    for name, text in wanted.items():
        target = dst / name
        current = target.read_text(errors="replace") if target.exists() else None
        if current == text:
            record[name] = _sha256(text)
            continue
        own = current is not None and _holds_own_work(target, record)
        if check:
            state = "missing" if current is None else "out of date"
            if own:
                state += (" and holds changes of your own (`make student` first moves it to "
                          f"{rescue_dir}/)")
            problems.append(f"{target}: {state}")
            continue
        if own:
            problems.append(f"{target}: your changes were moved to "
                            f"{_rescue(target, rescue_dir, move=False)}")
        target.write_text(text)
        record[name] = _sha256(text)
    for stale in sorted(dst.glob("*.ipynb")) if dst.is_dir() else []:
        if stale.name in wanted:
            continue
        own = _holds_own_work(stale, record)
        if check:
            problems.append(f"{stale}: has no solution notebook in {src}"
                            + (" (it may be your own: `make student` moves it to "
                               f"{rescue_dir}/)" if own else ""))
        elif own:
            problems.append(f"{stale}: moved to {_rescue(stale, rescue_dir, move=True)}")
        else:
            stale.unlink()
            record.pop(stale.name, None)
    if not check:
        write_record(record_path, record)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=Path("solutions"))
    parser.add_argument("--dst", type=Path, default=Path("notebooks"))
    parser.add_argument("--rescue-dir", type=Path, default=None,
                        help="where notebooks that may hold a learner's work are moved "
                             "(default: work/ beside --src)")
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the student edition is out of date")
    args = parser.parse_args(argv)
    try:
        problems = sync(args.src, args.dst, check=args.check, rescue_dir=args.rescue_dir)
    except (MarkerError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem)
    if args.check:
        if problems:
            print("run `make student` (python -m utils.student) to regenerate; it never "
                  "deletes work of your own", file=sys.stderr)
            return 1
        return 0
    print(f"wrote the student edition of {args.src}/ to {args.dst}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
