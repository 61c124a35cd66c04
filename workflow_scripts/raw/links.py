"""``link.csv``: which DICOM folder goes with which contour folder.

A bad link table makes the whole build meaningless, so it is checked before any job runs and
every fault stops the run with a message naming the line. Ids become folder names, so only
plain names are accepted: letters, digits, ``.``, ``_`` and ``-``, not starting with a dot.
That rules out ``..``, absolute paths and separators, so no id can lead outside the data folder.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

from workflow_scripts.files import read_user_text, write_bytes_atomic

__all__ = [
    "STUDY_ID_PATTERN",
    "LinkTableError",
    "StudyLink",
    "is_safe_name",
    "read_link_json",
    "read_link_table",
    "write_link_json",
]

LINK_COLUMNS = ("patient_id", "original_id")
#: A plain folder name: what every id in link.csv must be, and the workflow's ``{study}``
#: wildcard constraint.
STUDY_ID_PATTERN = r"[A-Za-z0-9_-][A-Za-z0-9._-]*"
_SAFE_NAME = re.compile(f"^{STUDY_ID_PATTERN}$")


class LinkTableError(ValueError):
    """link.csv cannot be used; the message names the file, line and value."""


@dataclass(frozen=True)
class StudyLink:
    """One study: ``patient_id`` names ``dicoms/<patient_id>/`` and is the dataset's study id;
    ``original_id`` names ``contourfiles/<original_id>/``. ``line`` is the 1-based line in
    link.csv (the header is line 1), for messages about the table itself; None in a study's
    build, whose outputs must not depend on the order of link.csv's lines."""

    patient_id: str
    original_id: str
    line: int | None = None


def is_safe_name(name: str) -> bool:
    """True when ``name`` can be used as a single path component inside the data folder."""
    return bool(_SAFE_NAME.match(name)) and name not in (".", "..")


def read_link_table(path: str | Path) -> list[StudyLink]:
    """Read and check link.csv; return its studies in file order.

    Accepts a UTF-8 byte-order mark, Windows line endings, surrounding spaces, blank lines and
    extra columns. Raises LinkTableError for: an unreadable or empty file, missing columns,
    a row without both ids, ids that are not safe folder names, and duplicated ids.
    """
    path = Path(path)
    text = read_user_text(path, "link table", LinkTableError)

    reader = csv.reader(io.StringIO(text, newline=""))
    header = next((row for row in reader if any(cell.strip() for cell in row)), None)
    if header is None:
        raise LinkTableError(
            f"{path}: the file is empty; expected a header 'patient_id,original_id'"
        )
    header = [cell.strip() for cell in header]
    missing = [column for column in LINK_COLUMNS if column not in header]
    if missing:
        raise LinkTableError(
            f"{path}: line {reader.line_num}: missing column(s) {', '.join(missing)}; "
            f"the header is {','.join(header)!r}, expected 'patient_id,original_id'"
        )
    positions = [header.index(column) for column in LINK_COLUMNS]

    studies: list[StudyLink] = []
    first_seen: dict[tuple[str, str], int] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        values = [row[i].strip() if i < len(row) else "" for i in positions]
        for column, value in zip(LINK_COLUMNS, values, strict=True):
            if not value:
                raise LinkTableError(f"{path}: line {line}: empty {column}")
            if not is_safe_name(value):
                raise LinkTableError(
                    f"{path}: line {line}: {column} {value!r} is not a plain folder name "
                    "(allowed: letters, digits, '.', '_', '-', not starting with '.')"
                )
            key = (column, value)
            if key in first_seen:
                raise LinkTableError(
                    f"{path}: line {line}: duplicated {column} {value!r} "
                    f"(first on line {first_seen[key]})"
                )
            first_seen[key] = line
        studies.append(StudyLink(values[0], values[1], line))
    if not studies:
        raise LinkTableError(f"{path}: no studies listed below the header")
    return studies


def write_link_json(links: list[StudyLink], path: str | Path) -> None:
    """Record checked links as JSON, sorted by patient_id and without line numbers: the same
    bytes whatever the order of link.csv's lines."""
    rows = [
        {"patient_id": link.patient_id, "original_id": link.original_id}
        for link in sorted(links, key=lambda link: link.patient_id)
    ]
    write_bytes_atomic(path, json.dumps(rows, indent=0).encode())


def read_link_json(path: str | Path) -> list[StudyLink]:
    """The links :func:`write_link_json` recorded."""
    return [StudyLink(**row) for row in json.loads(Path(path).read_text(encoding="utf-8"))]
