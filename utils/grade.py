"""Grade submitted notebooks without nbgrader: ``python -m utils.grade SUBMISSIONS...``.

Each SUBMISSION is a notebook or a folder of notebooks (one learner's, searched
recursively); a folder's name is the submission's name, a notebook's submission is the
folder it lies in. A notebook is matched to the course notebook with the same two-digit
number (``02_...ipynb``).

Every notebook runs in a fresh kernel, in a temporary folder, in fast mode
(``ACV_FAST=1``; ``--full`` for the full sizes) and grading mode (``ACV_GRADING=1``: a blank
exercise fails instead of falling back), within a time limit for the notebook and one for
each cell (a cell past it is interrupted and the next cell runs). As nbgrader does, the locked
cells (the check cells among them) are first restored from the course's student edition, so
only the learner's exercise cells and own extra cells count. One row per exercise:

    submission, notebook, exercise, status (✅ right, ⏳ blank, ❌ wrong), message, points,
    max_points

A check cell earns its points only when it runs without error and prints the checker's ✅
verdict. A notebook that is not valid JSON, crashes its kernel or runs past the time limit
gets its rows with the reason, and grading goes on. In a folder, the course's own copies
beside a learner's notebooks (``*.update-*``, ``*.rescued-*``) are skipped. The table is
written as CSV and Markdown.

    python -m utils.grade submitted/*/ --csv grades.csv --markdown grades.md
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat

from .student import CHECK_CELL

COURSE = Path(__file__).resolve().parents[1] / "notebooks"
MESSAGE_CHARS = 300
WHOLE_NOTEBOOK = "(notebook)"
COPIES = re.compile(r"\.(update|rescued)-[^.]*\.ipynb$")  # what the course puts beside them


@dataclass
class Row:
    """One line of the grade table."""

    submission: str
    notebook: str
    exercise: str
    status: str
    message: str
    points: int
    max_points: int


@dataclass
class Check:
    """A check cell of a course notebook: its grade id, exercise name and points."""

    grade_id: str
    exercise: str
    points: int


def _grade_id(cell: nbformat.NotebookNode) -> str | None:
    """nbgrader's grade id of a cell; for a check cell that lost its metadata, its pattern."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if meta.get("grade_id"):
        return meta["grade_id"]
    match = CHECK_CELL.match(cell.get("source", "").strip()) if cell.get(
        "cell_type") == "code" else None
    return f"check_{match[1]}" if match else None


def _course_checks(course_nb: nbformat.NotebookNode) -> list[Check]:
    """The autograded check cells of a course notebook, in order."""
    checks = []
    for cell in course_nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and cell.cell_type == "code":
            checks.append(Check(meta["grade_id"], meta["grade_id"].removeprefix("check_"),
                                int(meta["points"])))
    return checks


def _restore_locked_cells(submitted: nbformat.NotebookNode,
                         course_nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The submission with every locked course cell (matched by grade id) put back as issued.

    Locked cells missing from the submission are inserted after the cell that precedes them
    in the course notebook (or at the start), so that a deleted check cell still runs.
    """
    locked = {c.metadata["nbgrader"]["grade_id"]: c for c in course_nb.cells
              if c.metadata.get("nbgrader", {}).get("locked")}
    cells, seen = [], set()
    for cell in submitted.cells:
        gid = _grade_id(cell)
        if gid in locked:
            if gid in seen:
                continue
            seen.add(gid)
            cells.append(nbformat.from_dict(json.loads(json.dumps(locked[gid]))))
        else:
            cells.append(cell)
    course_order = [_grade_id(c) for c in course_nb.cells]
    for position, gid in enumerate(course_order):
        if gid in locked and gid not in seen:
            before = course_order[position - 1] if position else None
            ids = [_grade_id(c) for c in cells]
            at = ids.index(before) + 1 if before in ids else 0
            cells.insert(at, nbformat.from_dict(json.loads(json.dumps(locked[gid]))))
            seen.add(gid)
    restored = nbformat.from_dict(json.loads(json.dumps(submitted)))
    restored.cells = cells
    for cell in restored.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return restored


def _first_line(text: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text).strip()
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= MESSAGE_CHARS else line[: MESSAGE_CHARS - 1] + "…"


def _verdicts(executed: nbformat.NotebookNode, checks: list[Check],
             stopped: str | None) -> list[tuple[str, str, int]]:
    """(status, message, points) for every check, read from the executed notebook.

    ``stopped`` is why execution ended early (None if it ran to the end): checks that did
    not run get it as their message.
    """
    by_id = {_grade_id(c): c for c in executed.cells}
    out = []
    for check in checks:
        cell = by_id.get(check.grade_id)
        errors = [o for o in cell.outputs if o.output_type == "error"] if cell else []
        if cell is None or (cell.execution_count is None and not errors):
            out.append(("❌", stopped or "the check cell did not run", 0))
        elif TIMED_OUT in cell.metadata:
            out.append(("❌", cell.metadata[TIMED_OUT], 0))
        elif errors and errors[0].ename == "ExerciseOpen":
            out.append(("⏳", _first_line(errors[0].evalue), 0))
        elif errors:
            error = errors[0]
            out.append(("❌", _first_line(f"{error.ename}: {error.evalue}"), 0))
        else:  # ran without error: only the checker's own verdict line counts
            text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
            lines = text.splitlines()
            passed = [line for line in lines if line.startswith(f"✅ {check.exercise}: ")]
            if passed:
                out.append(("✅", _first_line(passed[-1]), check.points))
            else:
                out.append(("⏳" if any(line.startswith("⏳") for line in lines) else "❌",
                            "the check cell did not pass (it printed no ✅ verdict: "
                            "was grading mode switched off?)", 0))
    return out


class _OutOfTime(Exception):
    """The notebook's time limit is spent: no further cell is started."""


TIMED_OUT = "acv_timed_out"  # cell metadata: why a cell was interrupted at its time limit


def _execute(nb: nbformat.NotebookNode, timeout: float, cell_timeout: float) -> str | None:
    """Run ``nb`` in place in a fresh kernel; return why it stopped early, or None.

    Each cell may run ``cell_timeout`` seconds, and no longer than what is left of the
    notebook's ``timeout``. A cell past its limit is interrupted (KeyboardInterrupt), its
    metadata (``TIMED_OUT``) records why, and the next cell runs: one stuck cell costs that
    cell only. Once the notebook's time is spent, no further cell starts.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    deadline = time.monotonic() + timeout
    out_of_time = f"the notebook ran past the time limit of {timeout:g} s"
    current: dict = {}

    def start(cell: nbformat.NotebookNode, cell_index: int) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _OutOfTime
        current.update(started=time.monotonic(), limit=max(1, min(cell_timeout, left)))

    def limit(cell: nbformat.NotebookNode) -> int:
        return int(math.ceil(current["limit"]))

    def executed(cell: nbformat.NotebookNode, cell_index: int, execute_reply: dict) -> None:
        if time.monotonic() - current["started"] < current["limit"]:
            return
        if current["limit"] < cell_timeout:  # stopped by what was left of the notebook's time
            cell.metadata[TIMED_OUT] = out_of_time
            raise _OutOfTime
        cell.metadata[TIMED_OUT] = (f"the cell ran past its limit of {cell_timeout:g} s and was "
                                    "interrupted (an endless loop, or far too slow?)")

    with tempfile.TemporaryDirectory(prefix="acv-grade-") as workdir:
        client = NotebookClient(
            nb, kernel_name="python3", allow_errors=True, interrupt_on_timeout=True,
            # after the interrupt, go on without waiting for the stuck cell's own reply
            error_on_timeout={"ename": "CellTimeout", "evalue": "interrupted at its time limit",
                              "traceback": []},
            timeout_func=limit, on_cell_start=start, on_cell_executed=executed,
            resources={"metadata": {"path": workdir}})
        try:  # the kernel's own log lines (and its tracebacks on shutdown) are not the table's
            client.execute(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except _OutOfTime:
            return out_of_time
        except DeadKernelError:
            return "the kernel died (the notebook crashed Python)"
        except Exception as exc:  # nbclient's own failures: report, go on with the next one
            return f"the notebook could not be run: {type(exc).__name__}: {_first_line(str(exc))}"
    return None


def _grade_notebook(path: Path, submission: str, course: Path, timeout: float,
                    cell_timeout: float) -> list[Row]:
    """The rows of one submitted notebook."""
    number = re.match(r"(\d\d)_", path.name)
    matches = sorted(course.glob(f"{number[1]}_*.ipynb")) if number else []
    if len(matches) != 1:
        return [Row(submission, path.name, WHOLE_NOTEBOOK, "❌",
                    "not a course notebook: its name must start with the number of one "
                    f"(00_ to {len(list(course.glob('*.ipynb'))) - 1:02d}_)", 0, 0)]
    course_nb = nbformat.read(matches[0], as_version=4)
    checks = _course_checks(course_nb)
    total = sum(c.points for c in checks)
    name = matches[0].name
    try:
        submitted = nbformat.reads(path.read_text(errors="replace"), as_version=4)
        if not isinstance(submitted.get("cells"), list):
            raise ValueError("it has no list of cells")
    except Exception as exc:
        return [Row(submission, name, WHOLE_NOTEBOOK, "❌",
                    f"not a valid notebook (JSON): {_first_line(str(exc))}", 0, total)]
    runnable = _restore_locked_cells(submitted, course_nb)
    stopped = _execute(runnable, timeout, cell_timeout)
    rows = [Row(submission, name, check.exercise, status, message, points, check.points)
            for check, (status, message, points) in zip(checks, _verdicts(runnable, checks,
                                                                         stopped), strict=True)]
    if not rows:  # a course notebook without exercises: one row says how it ran
        rows.append(Row(submission, name, WHOLE_NOTEBOOK, "❌" if stopped else "✅",
                        stopped or "ran to the end", 0, 0))
    return rows


def _find_notebooks(submissions: list[Path]) -> list[tuple[str, Path]]:
    """(submission name, notebook path) for every argument, in a stable order."""
    found = []
    for item in submissions:
        if item.is_dir():
            notebooks = sorted(p for p in item.rglob("*.ipynb")
                               if ".ipynb_checkpoints" not in p.parts
                               and not COPIES.search(p.name))
            found += [(item.resolve().name, p) for p in notebooks]
        else:
            found.append((item.resolve().parent.name, item))
    return found


def _write_tables(rows: list[Row], csv_path: Path | None, markdown_path: Path | None) -> str:
    """Write the CSV and Markdown tables; return the Markdown text."""
    fields = list(Row.__dataclass_fields__)
    if csv_path is not None:
        with csv_path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(asdict(r) for r in rows)

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(fields) + " |", "|" + "---|" * len(fields)]
    lines += ["| " + " | ".join(cell(v) for v in asdict(r).values()) + " |" for r in rows]
    totals: dict[str, list[int]] = {}
    for r in rows:
        got, of = totals.setdefault(r.submission, [0, 0])
        totals[r.submission] = [got + r.points, of + r.max_points]
    lines += ["", "| submission | points | of |", "|---|---:|---:|"]
    lines += [f"| {cell(s)} | {got} | {of} |" for s, (got, of) in totals.items()]
    text = "\n".join(lines) + "\n"
    if markdown_path is not None:
        markdown_path.write_text(text, encoding="utf-8")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Grade submitted course notebooks: one row per exercise (CSV and Markdown).")
    parser.add_argument("submissions", nargs="+", type=Path, metavar="SUBMISSION",
                        help="a submitted notebook, or a folder holding one learner's notebooks")
    parser.add_argument("--csv", type=Path, default=Path("grades.csv"),
                        help="where to write the CSV table (default: grades.csv)")
    parser.add_argument("--markdown", type=Path, default=Path("grades.md"),
                        help="where to write the Markdown table (default: grades.md)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds each notebook may run (default: 300)")
    parser.add_argument("--cell-timeout", type=float, default=None,
                        help="seconds one cell may run before it is interrupted; the next cell "
                             "then runs (default: 120, or 600 with --full)")
    parser.add_argument("--full", action="store_true",
                        help="run the full-size experiments instead of fast mode")
    parser.add_argument("--course", type=Path, default=COURSE,
                        help="the course's student edition (default: the notebooks/ folder)")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.submissions if not p.exists()]
    if missing:
        parser.error(f"SUBMISSION must be an existing notebook or folder; not found: "
                     f"{', '.join(missing)}")
    if args.timeout <= 0:
        parser.error(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    if args.cell_timeout is None:
        args.cell_timeout = 600.0 if args.full else 120.0
    if args.cell_timeout <= 0:
        parser.error(f"--cell-timeout must be a positive number of seconds, got "
                     f"{args.cell_timeout:g}")
    if not args.course.is_dir():
        parser.error(f"--course must be the folder of the course's notebooks, got {args.course}")
    notebooks = _find_notebooks(args.submissions)
    if not notebooks:
        parser.error("no notebooks (*.ipynb) found in the SUBMISSIONs given")
    os.environ["ACV_GRADING"] = "1"  # inherited by every kernel this process starts
    os.environ["ACV_FAST"] = "0" if args.full else "1"
    rows: list[Row] = []
    for number, (submission, path) in enumerate(notebooks, start=1):
        print(f"[{number}/{len(notebooks)}] {submission}: {path.name} …", flush=True)
        start = time.monotonic()
        new = _grade_notebook(path, submission, args.course, args.timeout,
                              args.cell_timeout)
        rows += new
        marks = "".join(r.status for r in new)
        print(f"    {marks}  {sum(r.points for r in new)}/{sum(r.max_points for r in new)} points "
              f"in {time.monotonic() - start:.1f} s", flush=True)
    print(_write_tables(rows, args.csv, args.markdown))
    print(f"wrote {args.csv} and {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
