"""One labelled slice while its study is built: what was read, its masks, and its problems.

Each contour file of a study must end either in a sample or in exactly one error row naming it
(``contour``). The methods here are the only places that record a slice's problems, so that rule
is kept in one spot: :meth:`LabelledSlice.fail` keeps the slice out and accounts for both of its
contour files, :meth:`LabelledSlice.reject_contour` records one bad contour file, and
:meth:`LabelledSlice.flag` records a warning on a kept sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from workflow_scripts.raw.dicom_slice import DicomSlice
from workflow_scripts.raw.pairing import SlicePair
from workflow_scripts.raw.problems import Problem
from workflow_scripts.study.cine import FramePlace
from workflow_scripts.study.resample import Placement

__all__ = ["LabelledSlice"]


@dataclass
class LabelledSlice:
    """A slice with at least one contour file, as its study's build goes along.

    ``contours``: kind -> (N, 2) vertices, (x, y) = (column, row) pixel coordinates, of the
    contour files that parsed; once masks are made, in the coordinates of the stored grid.
    ``image``: the array stored as the sample's ``image`` (the DICOM's pixels, or with
    ``resample`` those pixels on the common grid, float32); ``placement``: where the slice was
    put on the resample grid, None on the native grid. ``masks``: kind -> bool (rows, columns)
    mask, the same shape as ``image``. ``failure``: the
    error that keeps the slice out of the dataset (None for a sample). ``problems``: every row
    of this slice. ``rejected``: contour kinds that already have an error row of their own.
    ``i_outside_o``: fraction of the i-mask outside the o-mask, when both exist.
    ``point_digests``: kind -> :func:`~workflow_scripts.raw.contours.points_digest` of the
    contour as parsed (in the file's own pixel coordinates, before any resample grid), to find
    copied contour files. ``place``: its position and phase in the study's cine
    (:class:`~workflow_scripts.study.cine.FramePlace`). ``polygon_px``: kind -> the area of
    the contour's polygon in square pixels of the DICOM's own grid (shoelace).
    """

    study: str
    pair: SlicePair
    contours: dict[str, np.ndarray] = field(default_factory=dict)
    dicom: DicomSlice | None = None
    failure: Problem | None = None
    problems: list[Problem] = field(default_factory=list)
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    rejected: set[str] = field(default_factory=set)
    i_outside_o: float | None = None
    image: np.ndarray | None = None
    placement: Placement | None = None
    point_digests: dict[str, str] = field(default_factory=dict)
    place: FramePlace = field(default_factory=FramePlace)
    polygon_px: dict[str, float] = field(default_factory=dict)

    @property
    def number(self) -> int:
        return self.pair.slice

    @property
    def is_sample(self) -> bool:
        return self.failure is None

    @property
    def codes(self) -> list[str]:
        """The problem codes of this slice, sorted, each once."""
        return sorted({problem.code for problem in self.problems})

    def fail(self, code: str, message: str, path: str) -> None:
        """Keep the slice out because of ``path``. The row accounts for the i-contour; an
        o-contour without a row of its own gets ``ocontour_unpaired``."""
        contours = self.pair.contours
        self.failure = Problem(self.study, path, code, message, self.number, contour=contours["i"])
        self.problems.append(self.failure)
        if "o" in contours and "o" not in self.rejected:
            self.rejected.add("o")
            self.problems.append(
                Problem(
                    self.study,
                    contours["o"],
                    "ocontour_unpaired",
                    f"its slice yields no sample ({code})",
                    self.number,
                    contour=contours["o"],
                )
            )

    def reject_contour(self, kind: str, code: str, message: str) -> None:
        """Record a bad contour file: a bad i-contour fails the slice, a bad o-contour only
        itself (the slice stays a sample without ``omask``)."""
        path = self.pair.contours[kind]
        self.contours.pop(kind, None)
        if kind == "i":
            self.fail(code, message, path)
        else:
            self.rejected.add(kind)
            self.problems.append(
                Problem(self.study, path, code, message, self.number, contour=path)
            )

    @property
    def dataset_contours(self) -> dict[str, str]:
        """kind -> path of the contour files this sample puts into the dataset (the i-contour,
        and the o-contour when it became the ``omask``); empty for a slice left out."""
        if not self.is_sample:
            return {}
        return {kind: self.pair.contours[kind] for kind in sorted(self.masks)}

    def note(self, code: str, message: str, path: str) -> None:
        """Record a warning about an input file of a slice that stays (or may stay) a sample."""
        self.problems.append(Problem(self.study, path, code, message, self.number))

    def flag(self, code: str, message: str, value: float) -> None:
        """Record a label warning on the i-contour of a sample, with the figure behind it."""
        path = self.pair.contours["i"]
        self.problems.append(Problem(self.study, path, code, message, self.number, value))
