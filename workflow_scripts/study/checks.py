"""The checks of a study's build that need the whole study: slice shapes, label sanity and
copied contour files.

They run after every labelled slice of the study was read, because they compare a slice with
the rest of its study: the most common slice shape, a blood-pool area with those of its own
phase at the neighbouring positions (``mask_area_outlier``, see :func:`area_off_its_phase`),
the other contours' points. Copies between studies are found at the dataset stage, from the
digests each study's record carries (:func:`contour_digests`,
:func:`~workflow_scripts.dataset.tables.copies_between_studies`).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

from workflow_scripts.raw.contours import copies_message
from workflow_scripts.study.options import BuildOptions
from workflow_scripts.study.slices import LabelledSlice

__all__ = [
    "area_off_its_phase",
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
    """Flag (keep, but record) i-masks that are empty, too large, far from what their phase's
    neighbouring positions give (:func:`area_off_its_phase`), or lie partly outside the
    o-mask. Sets each sample's ``i_outside_o``."""
    areas = [int(item.masks["i"].sum()) for item in samples]
    off = area_off_its_phase(samples, areas, options.neighbour_area_factor)
    for item, area in zip(samples, areas, strict=True):
        size = item.masks["i"].size
        if area == 0:
            item.flag("mask_empty", "the i-mask is empty", 0.0)
        elif area / size > options.max_mask_fraction:
            fraction = area / size
            item.flag("mask_too_large", f"the i-mask covers {fraction:.1%} of the image", fraction)
        if item.number in off:
            item.flag("mask_area_outlier", off[item.number], float(area))
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


def area_off_its_phase(
    samples: list[LabelledSlice], areas: list[int], factor: float
) -> dict[int, str]:
    """The samples whose i-mask area breaks its phase's course from base to apex, by slice
    number, with the message saying what it was compared with.

    Each sample is compared with the samples of its own phase (same ``phase`` index of the
    cine) at the nearest contoured positions on either side: between two, with the area
    interpolated linearly (by position) between theirs, and it is off when it is more than
    ``factor`` times that or less than 1/``factor`` of it; at the first or last contoured
    position of its phase, with the course of the next two positions continued to it (or the
    larger of their areas, whichever is larger), and it is off only when it is more than
    ``factor`` times that: the stack may end in a small apical or basal slice, and a taper is
    no error.
    A phase contoured at fewer than three positions (two areas cannot say which one is off),
    and samples without a known position or phase (their ``cine_*`` warning says why), are
    not compared. Empty masks
    are ``mask_empty``'s and not compared; neither are they neighbours. The sample furthest off
    is flagged first and its phase checked again without it, so that a bad contour does not
    make its neighbours look off.
    """
    by_phase: dict[int, list[tuple[int, int, int]]] = {}
    for item, area in zip(samples, areas, strict=True):
        place = item.place
        if place.position is not None and place.phase is not None and area > 0:
            by_phase.setdefault(place.phase, []).append((place.position, item.number, area))
    off: dict[int, str] = {}
    for phase, series in sorted(by_phase.items()):
        series.sort()
        # The worst one first, then again without it: a bad contour would otherwise make its
        # good neighbours look off (their interpolation runs through it).
        while True:
            worst = max(
                (_deviation(series, k, factor) for k in range(len(series))),
                key=lambda found: found[0],
                default=(0.0, None, ""),
            )
            if worst[1] is None:
                break
            off[series[worst[1]][1]] = worst[2].format(phase=phase)
            del series[worst[1]]
    return off


def _deviation(series: list[tuple[int, int, int]], k: int, factor: float):
    """(how far, k, message) for sample ``k`` of a phase's (position, slice, area) series
    when it is off (see :func:`area_off_its_phase`), else (0, None, "")."""
    position, _, area = series[k]
    before = series[k - 1] if k > 0 else None
    after = series[k + 1] if k + 1 < len(series) else None
    if before is not None and after is not None:
        weight = (position - before[0]) / (after[0] - before[0])
        expected = before[2] + weight * (after[2] - before[2])
        if not expected / factor <= area <= expected * factor:
            message = (
                f"i-mask area {area} px, {area / expected:.2f}x the {expected:.0f} px its phase "
                f"({{phase}}) gives between positions {before[0]} and {after[0]} ({before[2]} "
                f"and {after[2]} px)"
            )
            return abs(math.log(area / expected)), k, message
    elif len(series) >= 3:
        # An end: compared with its phase's course continued from the next two positions.
        near, far = (series[1], series[2]) if k == 0 else (series[-2], series[-3])
        slope = (near[2] - far[2]) / (near[0] - far[0])
        expected = max(near[2], far[2], near[2] + slope * (position - near[0]))
        if area > expected * factor:
            message = (
                f"i-mask area {area} px, {area / expected:.2f}x the {expected:.0f} px its phase "
                f"({{phase}}) gives at the end of the stack, continued from positions {near[0]} "
                f"and {far[0]} ({near[2]} and {far[2]} px)"
            )
            return math.log(area / expected), k, message
    return 0.0, None, ""
