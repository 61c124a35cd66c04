"""The checks of a study's build that need the whole study: slice shapes, label sanity and
copied contour files.

They run after every labelled slice of the study was read, because they compare a slice with
the rest of its study (the most common slice shape, the median blood-pool area, the other
contours' points). Copies between studies are found at the dataset stage, from the digests
each study's record carries (:func:`contour_digests`,
:func:`~workflow_scripts.dataset.tables.copies_between_studies`).
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from workflow_scripts.raw.contours import copies_message
from workflow_scripts.study.options import BuildOptions
from workflow_scripts.study.slices import LabelledSlice

__all__ = [
    "contour_digests",
    "flag_copied_contours",
    "flag_suspicious_labels",
    "leave_out_odd_shapes",
]


def leave_out_odd_shapes(labelled: list[LabelledSlice]) -> None:
    """Fail the slices whose size differs from the study's most common one
    (``slice_shape_mismatch``); ties go to the shape of the lowest slice number."""
    readable = [item for item in labelled if item.is_sample]
    shapes = Counter(item.dicom.pixels.shape for item in readable)
    if len(shapes) <= 1:
        return
    common = max(shapes, key=lambda shape: shapes[shape])  # first of the most common
    for item in readable:
        if item.dicom.pixels.shape != common:
            rows, columns = item.dicom.pixels.shape
            item.fail(
                "slice_shape_mismatch",
                f"{rows}x{columns}, the rest of the study is {common[0]}x{common[1]}",
                item.pair.dicom,
            )


def flag_suspicious_labels(samples: list[LabelledSlice], options: BuildOptions) -> None:
    """Flag (keep, but record) i-masks that are empty, too large, far from the study's median
    area, or lie partly outside the o-mask. Sets each sample's ``i_outside_o``."""
    areas = [int(item.masks["i"].sum()) for item in samples]
    median = float(np.median(areas)) if areas else 0.0
    factor = options.area_outlier_factor
    for item, area in zip(samples, areas, strict=True):
        size = item.masks["i"].size
        if area == 0:
            item.flag("mask_empty", "the i-mask is empty", 0.0)
        elif area / size > options.max_mask_fraction:
            fraction = area / size
            item.flag("mask_too_large", f"the i-mask covers {fraction:.1%} of the image", fraction)
        if area and median and not (median / factor <= area <= median * factor):
            item.flag(
                "mask_area_outlier",
                f"i-mask area {area} px, study median {median:.0f} px",
                float(area),
            )
        if "o" in item.masks and area:
            fraction = float((item.masks["i"] & ~item.masks["o"]).sum()) / area
            item.i_outside_o = fraction
            if fraction > options.max_i_outside_o:
                item.flag(
                    "icontour_outside_ocontour",
                    f"{fraction:.1%} of the i-mask lies outside the o-mask",
                    fraction,
                )


def contour_digests(samples: list[LabelledSlice]) -> dict[str, str]:
    """The points digest of every contour file the samples put into the dataset, by relative
    path, sorted."""
    digests = {
        path: item.point_digests[kind]
        for item in samples
        for kind, path in item.dataset_contours.items()
    }
    return dict(sorted(digests.items()))


def flag_copied_contours(samples: list[LabelledSlice]) -> None:
    """Flag (keep, but record) each contour file of the samples whose points equal those of
    another one of the study (``contour_duplicate``, on the file, naming the others).

    Every file of a group of equal ones is flagged: which is the original cannot be told from
    the files, so the reviewer sees all of them. Only contours that enter the dataset are
    compared (a file left out has its own error row already).
    """
    groups: dict[str, list[tuple[str, LabelledSlice, str]]] = defaultdict(list)
    for item in samples:
        for kind, path in item.dataset_contours.items():
            groups[item.point_digests[kind]].append((path, item, kind))
    for group in groups.values():
        if len(group) < 2:
            continue
        paths = sorted(path for path, _, _ in group)
        for path, item, _ in group:
            others = [other for other in paths if other != path]
            item.note("contour_duplicate", copies_message(others), path)
