"""The learner's workspace ``work/``: their own copies of the student edition.

``make lab`` runs this before JupyterLab starts. It never changes or removes a file in
``work/``; it only adds:

- a notebook of ``notebooks/`` that ``work/`` does not have yet is copied there;
- when the course has changed a notebook since it was copied, the learner's file is left as
  it is and the new version is put beside it as ``<name>.update-<hash>.ipynb``.

``work/.course-versions.json`` records which version of each notebook was handed out.
``work/`` is ignored by git, so neither ``git pull`` nor any ``make`` target touches it.

    python -m utils.workspace                 # notebooks/ -> work/
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD = ".course-versions.json"


def _create(path: Path, data: bytes) -> bool:
    """Write a new file; False (and nothing written) if ``path`` already exists."""
    try:
        with path.open("xb") as handle:
            handle.write(data)
    except FileExistsError:
        return False
    return True


def _as_path(value: object, name: str) -> Path:
    if not isinstance(value, str | os.PathLike):
        raise ValueError(f"{name} must be a path, got {type(value).__name__}")
    return Path(value)


def _is_digest(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(
        c in "0123456789abcdef" for c in value)


def read_record(path: Path) -> dict[str, str]:
    """A record of notebook name -> SHA-256 (``{}`` if it is missing or unreadable; entries
    that are not name -> hex digest are dropped)."""
    path = _as_path(path, "path")
    try:
        record = json.loads(path.read_text()) if path.exists() else {}
    except (ValueError, OSError):
        return {}
    if not isinstance(record, dict):
        return {}
    return {k: v for k, v in record.items() if isinstance(k, str) and _is_digest(v)}


def write_record(path: Path, record: dict[str, str]) -> None:
    """Write a record atomically (a reader never sees half a file)."""
    path = _as_path(path, "path")
    if not isinstance(record, dict) or not all(
            isinstance(k, str) and _is_digest(v) for k, v in record.items()):
        raise ValueError("record must be a dict from notebook names to SHA-256 hex digests")
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    os.replace(temporary, path)


def sync_workspace(course: Path, work: Path) -> list[str]:
    """Bring new and updated course notebooks into ``work``; return what to tell the learner."""
    course, work = _as_path(course, "course"), _as_path(work, "work")
    if not course.is_dir():
        raise ValueError(f"course must be the folder of the student edition, got {course}")
    work.mkdir(parents=True, exist_ok=True)
    record_path = work / RECORD
    record = read_record(record_path)
    messages = []
    for source in sorted(course.glob("*.ipynb")):
        data = source.read_bytes()
        version = hashlib.sha256(data).hexdigest()
        mine = work / source.name
        if _create(mine, data):
            messages.append(f"new: {mine}")
        elif record.get(source.name) not in (None, version):
            update = work / f"{source.stem}.update-{version[:8]}{source.suffix}"
            _create(update, data)
            messages.append(f"the course updated {source.name}: your file is unchanged, the new "
                            f"version is {update}")
        record[source.name] = version
    pending = sorted(p.name for p in work.glob("*.update-*.ipynb"))
    if pending:
        messages.append("course updates waiting beside your notebooks in "
                        f"{work}/: {', '.join(pending)} (open them, copy what you need, then "
                        "delete them)")
    write_record(record_path, record)
    return messages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--course", type=Path, default=ROOT / "notebooks")
    parser.add_argument("--work", type=Path, default=ROOT / "work")
    args = parser.parse_args(argv)
    try:
        messages = sync_workspace(args.course, args.work)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for message in messages:
        print(message)
    print(f"your notebooks are in {args.work}/ (nothing the course runs changes them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
