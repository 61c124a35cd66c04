"""Predicted masks back to contour files the Sunnybrook challenge's evaluator reads.

Layout (the evaluator v1.0's ``eval.m``: one folder per study named ``SC*``, holding ``DICOM``,
``contours-manual/IRCCI-expert`` and ``contours-auto/<algorithm>``)::

    OUT/{original_id}/contours-auto/{algorithm}/IM-0001-{nnnn}-icontour-auto.txt
    OUT/{original_id}/contours-auto/{algorithm}/IM-0001-{nnnn}-ocontour-auto.txt

``nnnn`` is the DICOM's number (the sample's ``slice``), ``original_id`` the study's name in the
challenge (``SC-HF-I-1``). Each file holds one ``x y`` line per vertex in the DICOM's own pixel
grid, in the convention of the manual files this project reads
(:mod:`workflow_scripts.raw.contours`): ``x`` along columns, ``y`` along rows, the centre of pixel
(row r, column c) at ``(x=c, y=r)``. An empty prediction writes no file: the evaluator counts it
as not detected.

A file holds one polygon: the outer boundary (:func:`loader.evaluation.metrics.boundaries`) of
the mask's largest part, holes filled; a mask in several parts loses the others (counted in the
export's result). On the stored grid that polygon passes half-way between inside and outside
pixel centres, so rasterizing it back by pixel centres
(:func:`workflow_scripts.study.masks.contour_to_mask`) gives exactly that part. In a resampled
version (index columns ``grid_origin_row/col``, ``source_spacing_row/col``), stored coordinate
``t`` maps to the DICOM's ``grid_origin + t * pixel_spacing / source_spacing`` per axis, the
inverse of :mod:`workflow_scripts.study.resample`'s mapping of the manual contours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from loader.evaluation.metrics import boundaries

__all__ = ["ContourExport", "contour_file_name", "mask_polygon"]

#: The folder of the automatic contours in eval.m as distributed (``contours-auto/auto2``).
DEFAULT_ALGORITHM = "auto2"
#: The evaluator v1.0 measures only contours with more points than this.
EVALUATOR_MIN_POINTS = 16


def contour_file_name(slice_number: int, kind: str) -> str:
    """``IM-0001-{nnnn}-{kind}contour-auto.txt``."""
    if kind not in ("i", "o"):
        raise ValueError(f"contour kind is 'i' or 'o', got {kind!r}")
    return f"IM-0001-{int(slice_number):04d}-{kind}contour-auto.txt"


def mask_polygon(mask: np.ndarray) -> tuple[np.ndarray | None, int]:
    """(polygon, parts): the outer boundary of ``mask``'s largest part as float64 (N, 2) (x, y)
    = (column, row) stored-grid coordinates, not closed (the first vertex is not repeated), or
    None for an empty mask; and the number of parts (8-connected) of the mask."""
    from scipy import ndimage

    outlines = boundaries(mask)
    if not outlines:
        return None, 0
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    box = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    _, parts = ndimage.label(box, structure=np.ones((3, 3), dtype=bool))
    # The largest enclosed area is an outer boundary: a hole's lies inside its part's.
    largest = max(outlines, key=lambda o: abs(_signed_area(o)))
    rows, cols = largest[:-1, 0], largest[:-1, 1]
    return np.stack([cols, rows], axis=1), int(parts)


def _signed_area(outline: np.ndarray) -> float:
    y, x = outline[:, 0], outline[:, 1]
    return 0.5 * float(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1]))


@dataclass
class ContourExport:
    """Writes predicted contours into ``out_dir`` as they are scored (an ``on_contour``
    callback of :func:`loader.evaluation.scoring.evaluate`).

    Args:
        out_dir: the root of the challenge layout.
        algorithm: the subfolder of ``contours-auto``.
        resampled: whether the version is on a resample grid (its manifest's ``resample``); the
            index's grid columns are then required.
    """

    out_dir: Path
    algorithm: str = DEFAULT_ALGORITHM
    resampled: bool = False
    written: int = 0
    empty: int = 0
    several_parts: int = 0
    #: Written files the evaluator v1.0 would not measure (<= 15 points, or a coordinate <= 1
    #: or >= the image's width/height, checked where the stored grid is the DICOM's): ``{path:
    #: reason}``.
    unmeasured: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        earlier = sorted(self.out_dir.glob(f"*/contours-auto/{self.algorithm}/*contour-auto.txt"))
        if earlier:
            # an old file of a contour now predicted empty would read as detected: refuse
            raise ValueError(
                f"{self.out_dir} already holds {len(earlier)} exported contour file(s) of "
                f"contours-auto/{self.algorithm} (e.g. {earlier[0]}): remove them, or export "
                "into another folder or under another --algorithm name"
            )

    def __call__(self, sample: Any, kind: str, mask: np.ndarray) -> None:
        polygon, parts = mask_polygon(mask)
        if polygon is None:
            self.empty += 1
            return
        self.several_parts += parts > 1
        x, y = self._to_dicom(sample, polygon)
        folder = self.out_dir / str(sample.original_id) / "contours-auto" / self.algorithm
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / contour_file_name(int(sample.slice), kind)
        path.write_text("".join(f"{a:.4f} {b:.4f}\n" for a, b in zip(x, y, strict=True)))
        self.written += 1
        if len(x) < EVALUATOR_MIN_POINTS:
            self.unmeasured[str(path)] = f"{len(x)} points"
        elif min(x.min(), y.min()) <= 1 or (
            not self.resampled and (x.max() >= sample.width or y.max() >= sample.height)
        ):
            self.unmeasured[str(path)] = "touches the image border"

    def _to_dicom(self, sample: Any, polygon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stored-grid (x, y) to the DICOM's pixel grid."""
        columns = ("grid_origin_col", "grid_origin_row", "source_spacing_col", "source_spacing_row")
        values = [getattr(sample, name, None) for name in columns]
        if any(v is None or v != v for v in values):  # absent or NaN
            if self.resampled:
                raise ValueError(
                    f"{sample.study_id} slice {sample.slice}: the version is resampled but its "
                    "index has no grid_origin/source_spacing for this sample, so its contours "
                    "cannot be placed on the DICOM's grid"
                )
            return polygon[:, 0], polygon[:, 1]
        origin_col, origin_row, source_col, source_row = (float(v) for v in values)
        step_col = float(sample.pixel_spacing_col) / source_col
        step_row = float(sample.pixel_spacing_row) / source_row
        return origin_col + polygon[:, 0] * step_col, origin_row + polygon[:, 1] * step_row
