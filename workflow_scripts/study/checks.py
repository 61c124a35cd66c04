"""The checks of a study's build that need the whole study: slice shapes and label sanity.

Both run after every labelled slice of the study was read, because they compare a slice with
the rest of its study (the most common slice shape, the median blood-pool area).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from workflow_scripts.study.options import BuildOptions
from workflow_scripts.study.slices import LabelledSlice

__all__ = ["flag_suspicious_labels", "leave_out_odd_shapes"]


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
