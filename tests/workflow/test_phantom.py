"""The phantom generator: deterministic bytes, real DICOM files, and its deliberate faults."""

from __future__ import annotations

import io
import os

import numpy as np
import pydicom
import pytest

from build_helpers import phantom, tree_digests
from workflow_scripts.raw.phantom import contour_text, ellipse_contour, phantom_dicom


def test_the_same_spec_gives_the_same_bytes(tmp_path):
    one = phantom(tmp_path / "one", studies=3, slices=4, size=32)
    two = phantom(tmp_path / "two", studies=3, slices=4, size=32)
    assert tree_digests(one) == tree_digests(two)
    other_seed = phantom(tmp_path / "three", studies=3, slices=4, size=32, seed=1)
    assert tree_digests(other_seed) != tree_digests(one)


def test_a_phantom_dicom_holds_its_pixels_and_header():
    pixels = (np.arange(12 * 10).reshape(12, 10) * 7 - 300).astype(np.int16)
    dataset = pydicom.dcmread(io.BytesIO(phantom_dicom(pixels, "P7", 5, spacing=0.5)))
    np.testing.assert_array_equal(dataset.pixel_array, pixels)
    assert (dataset.Rows, dataset.Columns, dataset.InstanceNumber) == (12, 10, 5)
    assert dataset.PatientID == "P7" and dataset.Modality == "MR"
    assert [float(v) for v in dataset.PixelSpacing] == [0.5, 0.5]
    assert dataset.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian


def test_contours_are_on_the_half_pixel_grid_without_repeated_vertices():
    points = ellipse_contour(20.3, 18.0, 6.0, 4.0)
    assert len(points) >= 16
    np.testing.assert_array_equal(points * 2, np.round(points * 2))
    assert (np.abs(np.diff(points, axis=0)).sum(axis=1) > 0).all()
    text = contour_text(points)
    assert text.splitlines()[0] == f"{points[0, 0]:.2f} {points[0, 1]:.2f}"
    np.testing.assert_array_equal(np.loadtxt(io.StringIO(text)), points)


def unreadable(path) -> bool:
    try:
        pydicom.dcmread(path).pixel_array  # noqa: B018
    except Exception:
        return True
    return False


@pytest.mark.parametrize("slices", [2, 3, 4, 9])
def test_the_faults_are_there_for_every_allowed_slice_count(tmp_path, slices):
    raw = phantom(tmp_path, studies=3, slices=slices, size=32)
    links = (raw / "link.csv").read_text().splitlines()
    assert links[-1] == "PHANTOM0004,PH-HF-4" and not (raw / "dicoms/PHANTOM0004").exists()
    # study 1: a contour whose DICOM is missing
    extra = f"IM-0001-{slices + 2:04d}-icontour-manual.txt"
    assert (raw / "contourfiles/PH-HF-1/i-contours" / extra).is_file()
    assert not (raw / f"dicoms/PHANTOM0001/{slices + 2}.dcm").exists()
    # study 2: one truncated DICOM, under a contour
    bad = [p for p in sorted((raw / "dicoms/PHANTOM0002").iterdir()) if unreadable(p)]
    assert len(bad) == 1
    number = int(bad[0].stem)
    contour = f"IM-0001-{number:04d}-icontour-manual.txt"
    assert (raw / "contourfiles/PH-HF-2/i-contours" / contour).is_file()
    # study 3: a macOS AppleDouble file beside a real DICOM
    assert (raw / "dicoms/PHANTOM0003/._2.dcm").is_file()


def test_without_faults_every_file_is_sound(tmp_path):
    raw = phantom(tmp_path, studies=3, slices=4, size=32, faults=False)
    assert (raw / "link.csv").read_text().splitlines()[1:] == [
        "PHANTOM0001,PH-HF-1", "PHANTOM0002,PH-HF-2", "PHANTOM0003,PH-HF-3",
    ]  # fmt: skip
    dicoms = sorted(raw.glob("dicoms/*/*"))
    assert len(dicoms) == 12 and not any(unreadable(p) for p in dicoms)
    assert sorted(os.listdir(raw / "contourfiles/PH-HF-1/i-contours")) == [
        "IM-0001-0002-icontour-manual.txt",
        "IM-0001-0004-icontour-manual.txt",
    ]
    assert os.listdir(raw / "contourfiles/PH-HF-1/o-contours") == [
        "IM-0001-0004-ocontour-manual.txt"
    ]
