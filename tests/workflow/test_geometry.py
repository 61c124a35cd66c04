"""A DICOM slice's geometry tags: pixel spacing (row, column), thickness, position, orientation."""

from __future__ import annotations

import pytest

import dicom_factory as make
from workflow_scripts.raw.dicom_slice import read_dicom_slice

LIMIT = 4096 * 4096


def geometry_of(data: bytes):
    return read_dicom_slice(data, LIMIT).geometry


def without(keyword: str) -> bytes:
    ds = make.dataset()
    delattr(ds, keyword)
    return make.encode(ds, enforce_file_format=True)


def test_pixel_spacing_is_row_spacing_then_column_spacing_as_dicom_stores_it():
    geometry = geometry_of(make.standard(PixelSpacing=["0.5", "0.75"]))
    assert geometry.pixel_spacing == (0.5, 0.75)
    assert geometry.spacing_problem is None


def test_decimal_strings_become_the_nearest_float():
    # The real files' text, e.g. 1.367188: the index must equal float("1.367188") exactly.
    geometry = geometry_of(make.standard(PixelSpacing=["1.367188", "1.367188"]))
    assert geometry.pixel_spacing == (float("1.367188"), float("1.367188"))


def test_slice_tags_are_read_in_mm():
    data = make.standard(
        SliceThickness="10",
        SliceLocation="-16.634",
        ImagePositionPatient=["162.673", "35.6185", "144.459"],
        ImageOrientationPatient=[
            "-0.104592",
            "0.346381",
            "-0.932245",
            "-0.733192",
            "-0.660188",
            "-0.163037",
        ],
    )
    geometry = geometry_of(data)
    assert geometry.slice_thickness == 10.0
    assert geometry.slice_location == -16.634
    assert geometry.image_position == (162.673, 35.6185, 144.459)
    assert geometry.image_orientation == (
        -0.104592,
        0.346381,
        -0.932245,
        -0.733192,
        -0.660188,
        -0.163037,
    )


def test_absent_tags_give_none():
    geometry = geometry_of(make.standard())  # the phantom's file has PixelSpacing only
    assert geometry.pixel_spacing == (1.3672, 1.3672)
    assert geometry.slice_thickness is None
    assert geometry.slice_location is None
    assert geometry.image_position is None
    assert geometry.image_orientation is None


def test_missing_pixel_spacing_is_none_with_its_reason():
    geometry = geometry_of(without("PixelSpacing"))
    assert geometry.pixel_spacing is None
    assert geometry.spacing_problem == "no PixelSpacing element"


@pytest.mark.filterwarnings("ignore:Invalid value for VR DS")  # pydicom on nan and inf
@pytest.mark.parametrize(
    "value",
    [["0", "0"], ["1.0", "-1.0"], ["1.0"], ["1.0", "1.0", "1.0"], ["nan", "1.0"], ["inf", "1"]],
)
def test_unusable_pixel_spacing_is_none_and_names_the_value(value):
    geometry = geometry_of(make.standard(PixelSpacing=value))
    assert geometry.pixel_spacing is None
    assert geometry.spacing_problem.startswith("PixelSpacing ")
    assert "not two positive numbers" in geometry.spacing_problem


def test_malformed_position_is_none_not_an_error():
    data = make.standard(ImagePositionPatient=["1", "2"], SliceThickness="")
    geometry = geometry_of(data)
    assert geometry.image_position is None
    assert geometry.slice_thickness is None
