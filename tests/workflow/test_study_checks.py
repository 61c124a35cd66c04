"""The study-wide checks: slices of an odd size, and label flags with the figure behind each."""

from __future__ import annotations

import numpy as np
import pytest

from workflow_scripts.config import default_config
from workflow_scripts.raw.dicom_slice import DicomSlice
from workflow_scripts.raw.pairing import SlicePair
from workflow_scripts.study.checks import flag_suspicious_labels, leave_out_odd_shapes
from workflow_scripts.study.cine import FramePlace
from workflow_scripts.study.options import BuildOptions
from workflow_scripts.study.slices import LabelledSlice

SIDE = 20  # 400 pixels


def item(number: int, shape=(SIDE, SIDE), o: bool = False) -> LabelledSlice:
    contours = {"i": f"c/i-contours/{number}.txt"}
    if o:
        contours["o"] = f"c/o-contours/{number}.txt"
    labelled = LabelledSlice("S", SlicePair(number, f"dicoms/S/{number}.dcm", contours))
    labelled.dicom = DicomSlice(np.zeros(shape, np.int16), number, None, True)
    return labelled


def samples(items):
    return [labelled.number for labelled in items if labelled.is_sample]


def test_the_slice_of_an_odd_size_is_left_out():
    items = [item(2), item(4), item(6, shape=(SIDE + 8, SIDE + 8), o=True), item(8)]
    leave_out_odd_shapes(items)
    assert samples(items) == [2, 4, 8]
    odd = items[2]
    assert (odd.failure.code, odd.failure.path, odd.failure.contour) == (
        "slice_shape_mismatch",
        "dicoms/S/6.dcm",
        "c/i-contours/6.txt",
    )
    assert odd.failure.message == "28x28, the rest of the study is 20x20"
    assert odd.codes == ["ocontour_unpaired", "slice_shape_mismatch"]


def test_a_tie_goes_to_the_shape_of_the_lowest_slice_number():
    items = [item(2, shape=(30, 30)), item(4), item(6, shape=(30, 30)), item(8)]
    leave_out_odd_shapes(items)
    assert samples(items) == [2, 6]


def test_slices_already_left_out_do_not_vote_on_the_shape():
    items = [item(n, shape=(30, 30)) for n in (2, 4, 6)] + [item(8), item(10, shape=(40, 40))]
    for failed in items[:3]:
        failed.fail("instance_number_mismatch", "x", failed.pair.dicom)
    leave_out_odd_shapes(items)
    assert samples(items) == [8]  # 8 and 10 tie; 8 is the lower number
    assert items[4].failure.code == "slice_shape_mismatch"
    assert [p.code for p in items[0].problems] == ["instance_number_mismatch"]


def test_one_shape_leaves_every_slice_in():
    items = [item(n) for n in (2, 4, 6)]
    leave_out_odd_shapes(items)
    assert samples(items) == [2, 4, 6] and all(not i.problems for i in items)


def mask(area: int, start: int = 0) -> np.ndarray:
    flat = np.zeros(SIDE * SIDE, dtype=bool)
    flat[start : start + area] = True
    return flat.reshape(SIDE, SIDE)


def options(**checks) -> BuildOptions:
    return BuildOptions.from_config(default_config(checks=checks))


def flagged(
    areas: list[int], opts: BuildOptions, phases: list[int] | None = None
) -> list[list[tuple[str, float]]]:
    """Flag a study whose i-masks have ``areas``, slice k at position k (or, with ``phases``,
    at the position counted within its phase); each slice's (code, value) pairs."""
    items, seen = [], {}
    for number, area in enumerate(areas, start=1):
        labelled = item(number)
        labelled.masks["i"] = mask(area)
        phase = 0 if phases is None else phases[number - 1]
        position = seen[phase] = seen.get(phase, -1) + 1
        labelled.place = FramePlace(position, 10.0 * position, phase, 0.0)
        items.append(labelled)
    flag_suspicious_labels(items, opts)
    return [[(p.code, p.value) for p in labelled.problems] for labelled in items]


def test_an_empty_mask_is_flagged_with_value_zero_and_is_no_area_outlier():
    assert flagged([40, 40, 0, 40], options()) == [[], [], [("mask_empty", 0.0)], []]


def test_a_mask_larger_than_the_allowed_fraction_is_flagged_with_its_fraction():
    opts = options(max_mask_fraction=0.5, neighbour_area_factor=100)
    # 200 of 400 pixels is exactly the limit: not more than it
    assert flagged([200, 201], opts) == [[], [("mask_too_large", 201 / 400)]]


def test_a_mask_off_the_line_between_its_neighbours_is_flagged_with_its_area():
    opts = options(neighbour_area_factor=2, max_mask_fraction=0.9)
    # between 80 and 60 the line gives 70: 35 (70 / 2) and 140 (70 x 2) are the bounds
    assert flagged([80, 35, 60], opts) == [[], [], []]
    assert flagged([80, 34, 60], opts) == [[], [("mask_area_outlier", 34.0)], []]
    assert flagged([80, 140, 60], opts) == [[], [], []]
    assert flagged([80, 141, 60], opts) == [[], [("mask_area_outlier", 141.0)], []]


def test_a_taper_to_a_small_apex_is_not_flagged_and_an_end_that_breaks_it_is():
    opts = options(neighbour_area_factor=1.5, max_mask_fraction=0.9)
    assert flagged([100, 80, 50, 20, 5], opts) == [[]] * 5
    assert flagged([10, 60, 80, 100, 90], opts) == [[]] * 5  # a small base: no error
    # the next two (50, 60) continue to 40: the end may reach 1.5 x 60 = 90
    assert flagged([100, 80, 60, 50, 90], opts) == [[]] * 5
    assert flagged([100, 80, 60, 50, 95], opts) == [[]] * 4 + [[("mask_area_outlier", 95.0)]]


def test_a_bad_mask_does_not_make_its_neighbours_look_off():
    opts = options(neighbour_area_factor=1.5, max_mask_fraction=0.9)
    assert flagged([100, 90, 300, 70, 60], opts) == [[], [], [("mask_area_outlier", 300.0)], [], []]


def test_each_phase_is_compared_with_itself_only():
    opts = options(neighbour_area_factor=1.5, max_mask_fraction=0.9)
    # ED 100, 90, 80 and ES 60, 55, 50 interleaved, as a cine's files are: nothing is off;
    # the ES mask at position 1 swapped with its ED one is
    phases = [1, 0, 1, 0, 1, 0]
    assert flagged([100, 60, 90, 55, 80, 50], opts, phases) == [[]] * 6
    swapped = flagged([100, 60, 45, 110, 80, 50], opts, phases)
    assert swapped[2] == [("mask_area_outlier", 45.0)]
    assert swapped[3] == [("mask_area_outlier", 110.0)]


def test_two_positions_are_not_compared():
    assert flagged([100, 10], options(neighbour_area_factor=1.5)) == [[], []]


def test_a_mask_can_carry_two_flags():
    opts = options(neighbour_area_factor=2, max_mask_fraction=0.5)
    # 300 px is 75% of the image and three times its neighbours' 100
    assert flagged([100, 100, 300], opts)[2] == [
        ("mask_too_large", 300 / 400),
        ("mask_area_outlier", 300.0),
    ]


def with_omask(i_area: int, outside: int) -> LabelledSlice:
    """An i-mask of ``i_area`` pixels of which ``outside`` lie outside the o-mask."""
    labelled = item(1, o=True)
    labelled.masks["i"] = mask(i_area)
    labelled.masks["o"] = mask(i_area - outside + 50, start=outside)  # covers the rest and more
    return labelled


@pytest.mark.parametrize(
    ("i_area", "outside", "limit", "flag"),
    [(40, 4, 0.05, True), (40, 2, 0.05, False), (40, 0, 0.0, False), (40, 1, 0.0, True)],
)
def test_i_mask_outside_the_o_mask_is_measured_and_flagged_above_the_limit(
    i_area, outside, limit, flag
):
    labelled = with_omask(i_area, outside)
    assert int((labelled.masks["i"] & ~labelled.masks["o"]).sum()) == outside
    flag_suspicious_labels([labelled], options(max_i_outside_o=limit))
    assert labelled.i_outside_o == pytest.approx(outside / i_area)
    expected = [("icontour_outside_ocontour", outside / i_area)] if flag else []
    assert [(p.code, p.value) for p in labelled.problems] == expected


def test_without_o_mask_the_fraction_is_not_measured():
    labelled = item(1)
    labelled.masks["i"] = mask(30)
    flag_suspicious_labels([labelled], options())
    assert labelled.i_outside_o is None and labelled.problems == []


def test_an_empty_i_mask_inside_an_o_mask_is_not_divided_by_zero():
    labelled = with_omask(0, 0)
    flag_suspicious_labels([labelled], options())
    assert labelled.i_outside_o is None
    assert [p.code for p in labelled.problems] == ["mask_empty"]


def test_a_study_without_samples_has_nothing_to_flag():
    flag_suspicious_labels([], options())
