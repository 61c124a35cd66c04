"""Reviewed exclusions: the slices, or single contour files, a person decided to leave out of
the next version.

The config key ``exclusions`` names a CSV file (the review sheet, ``qc/review.html``, downloads
one)::

    study_id,slice,reason,reviewer,date,contour
    SCD0000201,220,i-contour drawn on the wrong slice,A. Reviewer,2024-05-02,
    SCD0000201,60,o-contour copied from slice 47,A. Reviewer,2024-05-02,o

``study_id``, ``slice`` and ``reason`` are required columns; ``reviewer``, ``date`` (ISO
``YYYY-MM-DD``) and ``contour`` are optional columns and may be empty. ``contour`` names what is
left out: empty, the whole slice; ``o``, only its o-contour file (the slice stays a sample,
without ``omask``); ``i``, its i-contour file, which is the whole slice again, since a sample
needs its i-contour (read as empty). Extra columns, a UTF-8 byte-order mark, Windows line
endings, surrounding spaces and blank lines are accepted. The file is checked when the workflow
is parsed, before any job: every row must name a study of link.csv and a labelled slice of it
(a slice number with an i-contour file; with ``contour`` ``o``, a slice with an o-contour file,
built only when config ``contours`` includes ``o``), once. Any fault stops the run with a
message naming the file, the line and the value (:class:`ExclusionsError`).

A build leaves each named slice (or o-contour file) out with the stable code
``excluded_by_review``, in a row naming the file left out (``contour``); the row's message
records the reason, the reviewer and the date.
"""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from workflow_scripts.files import read_user_text

__all__ = [
    "COLUMNS",
    "CONTOUR_COLUMN",
    "Exclusion",
    "ExclusionsError",
    "check_exclusions",
    "exclusion_message",
    "exclusions_csv",
    "read_exclusions",
]

#: The columns of an exclusions file, in the order the review sheet writes them; it adds
#: :data:`CONTOUR_COLUMN` when a decision names a single contour.
COLUMNS = ("study_id", "slice", "reason", "reviewer", "date")
CONTOUR_COLUMN = "contour"
_REQUIRED = ("study_id", "slice", "reason")
#: What ``contour`` may say, and what it means: "" the whole slice, "o" its o-contour file.
_CONTOUR_VALUES = {"": "", "i": "", "o": "o"}


class ExclusionsError(ValueError):
    """The exclusions file cannot be used; the message names the file, line and value."""


@dataclass(frozen=True)
class Exclusion:
    """One reviewed decision: leave ``slice`` of ``study_id`` out (``contour`` "", the whole
    slice) or only its o-contour file (``contour`` "o"), because of ``reason``.

    ``reviewer`` and ``date`` are "" when the file does not give them; ``line`` is the 1-based
    line of the file (the header is line 1).
    """

    study_id: str
    slice: int
    reason: str
    reviewer: str
    date: str
    line: int
    contour: str = ""

    def as_params(self) -> dict:
        """The decision as a study job's parameter: without the line, so that reordering the
        file does not rebuild a study whose decisions are the same, and without ``contour``
        for a whole slice, so that a decision reads as it did before the column existed."""
        params = {key: value for key, value in asdict(self).items() if key != "line"}
        if not self.contour:
            del params["contour"]
        return params


def read_exclusions(path: str | Path) -> list[Exclusion]:
    """Read an exclusions file and check its form (header, values, duplicates).

    Whether the studies and slices exist is :func:`check_exclusions`'s job. Raises
    ExclusionsError naming the file and line.
    """
    path = Path(path)
    text = read_user_text(path, "exclusions", ExclusionsError)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next((row for row in reader if any(cell.strip() for cell in row)), None)
    if header is None:
        raise ExclusionsError(f"{path}: the file is empty; expected a header {','.join(COLUMNS)}")
    header = [cell.strip() for cell in header]
    missing = [column for column in _REQUIRED if column not in header]
    if missing:
        raise ExclusionsError(
            f"{path}: line {reader.line_num}: missing column(s) {', '.join(missing)}; the header "
            f"is {','.join(header)!r}, expected {','.join(COLUMNS)!r} (reviewer, date optional)"
        )
    known = (*COLUMNS, CONTOUR_COLUMN)
    positions = {column: header.index(column) for column in known if column in header}
    exclusions: list[Exclusion] = []
    first_seen: dict[tuple[str, int, str], int] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        values = {column: row[i].strip() if i < len(row) else "" for column, i in positions.items()}
        exclusion = _parse_row(path, line, values)
        key = (exclusion.study_id, exclusion.slice, exclusion.contour)
        if key in first_seen:
            what = "'s o-contour" if exclusion.contour else ""
            raise ExclusionsError(
                f"{path}: line {line}: study {key[0]!r} slice {key[1]}{what} is excluded twice "
                f"(first on line {first_seen[key]})"
            )
        first_seen[key] = line
        exclusions.append(exclusion)
    return exclusions


def _parse_row(path: Path, line: int, values: Mapping[str, str]) -> Exclusion:
    for column in _REQUIRED:
        if not values[column]:
            raise ExclusionsError(f"{path}: line {line}: empty {column}")
    number = values["slice"]
    if not number.isascii() or not number.isdigit():
        raise ExclusionsError(
            f"{path}: line {line}: slice {number!r} is not a slice number (a whole number >= 0)"
        )
    contour = values.get(CONTOUR_COLUMN, "")
    if contour not in _CONTOUR_VALUES:
        raise ExclusionsError(
            f"{path}: line {line}: contour {contour!r} is not i, o or empty (the whole slice)"
        )
    date = values.get("date", "")
    if date:
        try:
            datetime.date.fromisoformat(date)
        except ValueError:
            raise ExclusionsError(
                f"{path}: line {line}: date {date!r} is not a date as YYYY-MM-DD"
            ) from None
    return Exclusion(
        study_id=values["study_id"],
        slice=int(number),
        reason=values["reason"],
        reviewer=values.get("reviewer", ""),
        date=date,
        line=line,
        contour=_CONTOUR_VALUES[contour],
    )


def check_exclusions(
    path: str | Path,
    exclusions: Iterable[Exclusion],
    studies: Mapping[str, object],
    labelled_slices: Callable[[str], set[int]],
    ocontour_slices: Callable[[str], set[int]] | None = None,
) -> None:
    """Refuse exclusions that name a study link.csv does not list, or a slice that is not a
    labelled slice of its study (``labelled_slices(study)``: the slice numbers with an
    i-contour file), or, for an o-contour decision, a slice without an o-contour file
    (``ocontour_slices(study)``; None when the build reads no o-contours: config ``contours``
    without ``o``). Raises ExclusionsError naming the file, line and value."""
    for exclusion in exclusions:
        where = f"{path}: line {exclusion.line}"
        if exclusion.study_id not in studies:
            raise ExclusionsError(
                f"{where}: study {exclusion.study_id!r} is not listed in link.csv"
            )
        if exclusion.contour == "o":
            _check_ocontour(where, exclusion, ocontour_slices)
            continue
        labelled = labelled_slices(exclusion.study_id)
        if exclusion.slice not in labelled:
            known = ", ".join(map(str, sorted(labelled))) or "none"
            raise ExclusionsError(
                f"{where}: slice {exclusion.slice} of study {exclusion.study_id!r} has no "
                f"i-contour file, so it is no labelled slice (labelled slices: {known})"
            )


def _check_ocontour(
    where: str, exclusion: Exclusion, ocontour_slices: Callable[[str], set[int]] | None
) -> None:
    if ocontour_slices is None:
        raise ExclusionsError(
            f"{where}: excludes the o-contour of slice {exclusion.slice} of study "
            f"{exclusion.study_id!r}, but this build reads no o-contours (config contours "
            "has no o): leave the row out, or build with contours=[i,o]"
        )
    with_o = ocontour_slices(exclusion.study_id)
    if exclusion.slice not in with_o:
        known = ", ".join(map(str, sorted(with_o))) or "none"
        raise ExclusionsError(
            f"{where}: slice {exclusion.slice} of study {exclusion.study_id!r} has no "
            f"o-contour file (slices with one: {known})"
        )


def exclusion_message(decision: Mapping[str, object]) -> str:
    """The ``message`` of an ``excluded_by_review`` row: who decided what, and when."""
    reviewer = decision.get("reviewer") or "an unnamed reviewer"
    date = decision.get("date") or "no date given"
    return f"excluded by review ({reviewer}, {date}): {decision['reason']}"


def exclusions_csv(rows: Iterable[Mapping[str, object]]) -> str:
    """An exclusions file's text for ``rows`` (mappings with the :data:`COLUMNS`, and
    optionally ``contour``), in the format the review sheet downloads: a header, then one line
    per row, ``\\n`` line ends; the ``contour`` column only when a row names a contour."""
    rows = list(rows)
    columns = COLUMNS
    if any(row.get(CONTOUR_COLUMN) for row in rows):
        columns = (*COLUMNS, CONTOUR_COLUMN)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(column, "") for column in columns])
    return text.getvalue()
