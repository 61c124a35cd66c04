"""Manual contour files: names and contents.

A contour file (Sunnybrook layout) is named ``IM-0001-<nnnn>-<kind>contour-manual.txt``, where
``<nnnn>`` is the number of the DICOM slice it was drawn on and ``<kind>`` is ``i`` (inner: the
blood pool) or ``o`` (outer: the heart-muscle border). It holds one ``x y`` vertex per line, in
pixel coordinates: ``x`` runs along image columns, ``y`` along rows, and the centre of the pixel
in row ``r``, column ``c`` is the point ``(x=c, y=r)``. The real files put vertices on a
half-pixel grid and usually do not repeat the first vertex at the end; the polygon is closed
implicitly.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence

import numpy as np

from workflow_scripts.raw.problems import InputProblem

__all__ = [
    "CONTOUR_KINDS",
    "SHOWN_COPIES",
    "copies_message",
    "parse_contour",
    "parse_contour_name",
    "points_digest",
]

CONTOUR_KINDS = ("i", "o")
_NAME = re.compile(r"^IM-0001-(?P<slice>\d{4})-(?P<kind>[io])contour-manual\.txt$")


def parse_contour_name(name: str) -> tuple[int, str] | None:
    """Return (slice number, kind ``"i"``/``"o"``) for a contour file name, or None if the name
    does not follow the ``IM-0001-<nnnn>-<kind>contour-manual.txt`` pattern."""
    match = _NAME.match(name)
    if match is None:
        return None
    return int(match["slice"]), match["kind"]


def parse_contour(text: str) -> np.ndarray:
    """Parse the text of a contour file into polygon vertices.

    Returns a float64 array of shape (N, 2) holding (x, y) = (column, row) pixel coordinates,
    in file order, N >= 3. Blank lines are ignored.

    Raises InputProblem with code ``contour_empty`` (no points), ``contour_unparseable`` (a line
    that is not two numbers; the message gives the line number and text), ``contour_not_finite``
    (NaN or infinity) or ``contour_too_few_points`` (fewer than 3 vertices).
    """
    points = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            if len(fields) != 2:
                raise ValueError
            x, y = float(fields[0]), float(fields[1])
        except ValueError:
            raise InputProblem(
                "contour_unparseable",
                f"line {number} is not two numbers 'x y': {line.strip()[:60]!r}",
            ) from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise InputProblem(
                "contour_not_finite", f"line {number} holds a non-finite value: {line.strip()!r}"
            )
        points.append((x, y))
    if not points:
        raise InputProblem("contour_empty", "the file holds no points")
    if len(points) < 3:
        raise InputProblem(
            "contour_too_few_points", f"{len(points)} point(s); a polygon needs at least 3"
        )
    return np.asarray(points, dtype=np.float64)


def points_digest(points: np.ndarray) -> str:
    """A digest of a parsed contour's vertices: two contour files get the same digest exactly
    when :func:`parse_contour` gives them the same points in the same order (whatever the
    spacing, number format or line ends of their text), i.e. when one is a copy of the other.

    The first 128 bits of sha256 over the (N, 2) float64 array in little-endian C order, as
    32 hex digits: short enough to record for every contour of a large archive (the study
    records carry them to the dataset stage), long enough that unequal contours never collide.
    """
    data = np.ascontiguousarray(points, dtype="<f8").tobytes()
    return hashlib.sha256(data).hexdigest()[:32]


#: How many of the other copies a ``contour_duplicate`` message names.
SHOWN_COPIES = 3


def copies_message(others: Sequence[str], count: int | None = None) -> str:
    """The message of a ``contour_duplicate`` row: the file's points equal those of ``others``
    (contour files, relative paths, sorted; the first few are named), ``count`` files in all
    (default: all of ``others``, which may then hold only the first few)."""
    count = len(others) if count is None else count
    shown = ", ".join(others[:SHOWN_COPIES])
    more = f" and {count - SHOWN_COPIES} more" if count > SHOWN_COPIES else ""
    return f"its points equal those of {shown}{more}"
