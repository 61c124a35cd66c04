"""A labelled slice's problems: every contour file ends in a sample or in one error row."""

from __future__ import annotations

from workflow_scripts.raw.pairing import SlicePair
from workflow_scripts.study.slices import LabelledSlice

ICONTOUR, OCONTOUR = "contourfiles/O/i-contours/i7.txt", "contourfiles/O/o-contours/o7.txt"
DICOM = "dicoms/S/7.dcm"


def labelled(*kinds: str) -> LabelledSlice:
    contours = {"i": ICONTOUR, "o": OCONTOUR}
    return LabelledSlice("S", SlicePair(7, DICOM, {kind: contours[kind] for kind in kinds}))


def rows(item: LabelledSlice) -> list[tuple]:
    return [(p.code, p.path, p.contour, p.slice, p.severity) for p in item.problems]


def test_a_new_slice_is_a_sample_without_problems():
    item = labelled("i", "o")
    assert item.is_sample and item.number == 7
    assert item.problems == [] and item.codes == []


def test_failing_a_slice_accounts_for_both_of_its_contour_files_once():
    item = labelled("i", "o")
    item.fail("dicom_unreadable", "truncated", DICOM)
    assert not item.is_sample
    assert item.failure is item.problems[0]
    assert rows(item) == [
        ("dicom_unreadable", DICOM, ICONTOUR, 7, "error"),
        ("ocontour_unpaired", OCONTOUR, OCONTOUR, 7, "error"),
    ]
    assert "dicom_unreadable" in item.problems[1].message


def test_failing_a_slice_without_o_contour_gives_one_row():
    item = labelled("i")
    item.fail("dicom_missing", "no DICOM", DICOM)
    assert rows(item) == [("dicom_missing", DICOM, ICONTOUR, 7, "error")]


def test_a_bad_o_contour_is_its_own_row_and_the_slice_stays_a_sample():
    item = labelled("i", "o")
    item.contours["o"] = object()
    item.reject_contour("o", "contour_empty", "no points")
    assert item.is_sample
    assert "o" not in item.contours
    assert rows(item) == [("contour_empty", OCONTOUR, OCONTOUR, 7, "error")]


def test_a_bad_o_contour_is_not_accounted_again_when_the_slice_then_fails():
    item = labelled("i", "o")
    item.reject_contour("o", "contour_unparseable", "line 2")
    item.fail("slice_shape_mismatch", "72x72", DICOM)
    assert [row[0] for row in rows(item)] == ["contour_unparseable", "slice_shape_mismatch"]
    assert [row[2] for row in rows(item)] == [OCONTOUR, ICONTOUR]  # each contour file named once


def test_a_bad_i_contour_fails_the_slice_and_accounts_for_the_o_contour():
    item = labelled("i", "o")
    item.reject_contour("i", "contour_too_few_points", "2 points")
    assert not item.is_sample
    assert rows(item) == [
        ("contour_too_few_points", ICONTOUR, ICONTOUR, 7, "error"),
        ("ocontour_unpaired", OCONTOUR, OCONTOUR, 7, "error"),
    ]


def test_notes_and_flags_are_warnings_that_account_for_nothing():
    item = labelled("i")
    item.note("dicom_no_file_meta", "read raw", DICOM)
    item.flag("mask_area_outlier", "small", 12.0)
    assert item.is_sample
    assert [(p.code, p.path, p.contour, p.value, p.severity) for p in item.problems] == [
        ("dicom_no_file_meta", DICOM, None, None, "warning"),
        ("mask_area_outlier", ICONTOUR, None, 12.0, "warning"),
    ]


def test_codes_are_sorted_and_each_given_once():
    item = labelled("i")
    item.flag("mask_too_large", "big", 0.9)
    item.flag("mask_area_outlier", "big", 300.0)
    item.note("dicom_no_file_meta", "raw", DICOM)
    item.flag("mask_area_outlier", "again", 300.0)
    assert item.codes == ["dicom_no_file_meta", "mask_area_outlier", "mask_too_large"]
