"""Patient-level train/val/test assignment: by hash (the default) or from a table.

By hash, a study's split is a pure function of (seed, study id): the id is hashed to a number u
uniform in [0, 1), and u falls into one of the consecutive intervals [0, train),
[train, train + val), [train + val, 1). Adding or removing studies never moves another study, and
all slices of a study share its split, so no patient straddles train and validation.

From a table (config ``splits_file``), a CSV assigns each study its split, for comparisons on an
agreed split (a challenge's own, a published paper's)::

    original_id,split
    SC-HF-I-1,train
    SC-HF-I-5,val

The id column is ``original_id`` (link.csv's second column, the name the archive's contour
folders carry) or ``study_id`` (link.csv's ``patient_id``), one of the two; ``split`` is
``train``, ``val`` or ``test``. A UTF-8 byte-order mark, Windows line ends, surrounding spaces,
blank lines and extra columns are accepted; a study named twice, an empty id or another split
value are refused, naming the file, line and value (:class:`SplitsFileError`). The table may
name studies that link.csv does not list (one table can serve several subsets of an archive),
but every study link.csv lists must be named: :func:`study_splits` refuses those it does not
name, listing them. Both checks run when the workflow is parsed, before any job.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from workflow_scripts.files import read_user_text
from workflow_scripts.raw.links import StudyLink

__all__ = [
    "ID_COLUMNS",
    "SPLITS",
    "SplitsFileError",
    "SplitsTable",
    "assign_split",
    "read_splits_file",
    "split_position",
    "study_splits",
]

SPLITS = ("train", "val", "test")
#: The id columns a splits file may use (exactly one): link.csv's original_id or patient_id.
ID_COLUMNS = ("original_id", "study_id")
_SHOWN = 5


class SplitsFileError(ValueError):
    """The splits file cannot be used; the message names the file, line and value."""


@dataclass(frozen=True)
class SplitsTable:
    """A splits file as read: ``id_column`` (one of :data:`ID_COLUMNS`) and ``splits``, the
    split of each id it names, in file order."""

    path: str
    id_column: str
    splits: dict[str, str]


def split_position(study_id: str, seed: int) -> float:
    """The study's hash position u in [0, 1) (first 64 bits of sha256 of "seed:study_id")."""
    digest = hashlib.sha256(f"{seed}:{study_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_split(study_id: str, fractions: Mapping[str, float], seed: int) -> str:
    """Return "train", "val" or "test" for a study, given the fractions (summing to 1)."""
    position = split_position(study_id, seed)
    upper = 0.0
    for split in SPLITS:
        upper += fractions[split]
        if position < upper:
            return split
    # Rounding can leave the fractions' sum a hair below 1: the last non-empty split takes it.
    return next(split for split in reversed(SPLITS) if fractions[split] > 0)


def read_splits_file(path: str | Path) -> SplitsTable:
    """Read a splits file and check its form (header, split values, ids named twice).

    Whether it names every listed study is :func:`study_splits`'s job. Raises SplitsFileError
    naming the file and line.
    """
    text = read_user_text(path, "the splits file", SplitsFileError)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next((row for row in reader if any(cell.strip() for cell in row)), None)
    expected = "original_id,split (or study_id,split)"
    if header is None:
        raise SplitsFileError(f"{path}: the file is empty; expected a header {expected}")
    header = [cell.strip() for cell in header]
    ids = [column for column in ID_COLUMNS if column in header]
    if "split" not in header or len(ids) != 1:
        what = "both original_id and study_id" if len(ids) == 2 else "no split column"
        if not ids:
            what = "no original_id or study_id column"
        raise SplitsFileError(
            f"{path}: line {reader.line_num}: {what}; the header is {','.join(header)!r}, "
            f"expected {expected}"
        )
    id_column = ids[0]
    at_id, at_split = header.index(id_column), header.index("split")
    splits: dict[str, str] = {}
    first_seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        study = row[at_id].strip() if at_id < len(row) else ""
        split = row[at_split].strip() if at_split < len(row) else ""
        if not study:
            raise SplitsFileError(f"{path}: line {line}: empty {id_column}")
        if split not in SPLITS:
            raise SplitsFileError(
                f"{path}: line {line}: {id_column} {study!r}: split {split!r} is not one of "
                f"{', '.join(SPLITS)}"
            )
        if study in first_seen:
            raise SplitsFileError(
                f"{path}: line {line}: {id_column} {study!r} is named twice (first on line "
                f"{first_seen[study]})"
            )
        first_seen[study] = line
        splits[study] = split
    return SplitsTable(str(path), id_column, splits)


def study_splits(table: SplitsTable, links: Iterable[StudyLink]) -> dict[str, str]:
    """The split of every study link.csv lists, by study id (``patient_id``).

    Raises SplitsFileError naming the studies the table does not name (by the table's id
    column, and the other id beside it). Studies the table names that link.csv does not list
    are no fault: they are not part of this build.
    """
    links = list(links)
    assigned, unnamed = {}, []
    for link in links:
        key = link.original_id if table.id_column == "original_id" else link.patient_id
        if key in table.splits:
            assigned[link.patient_id] = table.splits[key]
        else:
            unnamed.append(link)
    if unnamed:
        if table.id_column == "original_id":
            names = [f"{link.original_id} ({link.patient_id})" for link in unnamed]
        else:
            names = [f"{link.patient_id} ({link.original_id})" for link in unnamed]
        more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
        raise SplitsFileError(
            f"{table.path}: {len(unnamed)} of the {len(links)} studies listed in link.csv "
            f"have no split here (by {table.id_column}): {', '.join(names[:_SHOWN])}{more}. "
            "Every listed study needs a row; or leave splits_file empty for hash splits."
        )
    return assigned
