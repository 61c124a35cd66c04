"""A study's written outputs: the pairing table, overlays and contact sheet."""

from __future__ import annotations

import os

import numpy as np
import pyarrow.parquet as pq
import pydicom
import pytest
from PIL import Image

from build_helpers import build_studies, phantom
from workflow_scripts.config import default_config
from workflow_scripts.layout import Layout
from workflow_scripts.raw.links import StudyLink
from workflow_scripts.study.options import BuildOptions
from workflow_scripts.study.outputs import BuiltStudy, write_study_outputs

COLUMNS = [
    "study_id", "slice", "dicom", "icontour", "ocontour", "status", "codes", "instance_number",
    "height", "width", "npz", "qc",
    "position", "position_mm", "phase", "trigger_time", "cardiac_phase",
]  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    raw = phantom(root / "raw", studies=3, slices=8, size=64)
    return build_studies(raw, root / "out", contours=["i", "o"])


def pairs(built, study: str) -> list[dict]:
    table = pq.read_table(built.layout.pairs_file(study))
    assert table.column_names == COLUMNS
    return table.to_pylist()


def icontour(original: str, number: int) -> str:
    return f"contourfiles/{original}/i-contours/IM-0001-{number:04d}-icontour-manual.txt"


def ocontour(original: str, number: int) -> str:
    return f"contourfiles/{original}/o-contours/IM-0001-{number:04d}-ocontour-manual.txt"


def test_the_pairing_table_has_a_row_for_every_slice_number_seen(built):
    rows = pairs(built, "PHANTOM0001")
    # DICOMs 1..8, and the contour of slice 10 whose DICOM is missing
    assert [row["slice"] for row in rows] == [1, 2, 3, 4, 5, 6, 7, 8, 10]
    assert {row["study_id"] for row in rows} == {"PHANTOM0001"}
    by_slice = {row["slice"]: row for row in rows}
    assert by_slice[10] == {
        "study_id": "PHANTOM0001",
        "slice": 10,
        "dicom": None,
        "icontour": icontour("PH-HF-1", 10),
        "ocontour": None,
        "status": "excluded",
        "codes": "dicom_missing",
        "instance_number": None,
        "height": None,
        "width": None,
        "npz": None,
        "qc": None,
        # no DICOM: no place in the cine
        "position": None,
        "position_mm": None,
        "phase": None,
        "trigger_time": None,
        "cardiac_phase": "",
    }


def test_every_dicom_row_has_its_place_in_the_cine(built):
    # the phantom: image n at position (n - 1) // 4, phase (n - 1) % 4, positions 10 mm
    # apart, TriggerTime 25 + 200 x phase ms; i-contours at phases 1 (ES) and 3 (ED)
    for row in pairs(built, "PHANTOM0001"):
        if row["dicom"] is None:
            continue
        position, phase = divmod(row["slice"] - 1, 4)
        assert (row["position"], row["phase"]) == (position, phase)
        assert row["position_mm"] == pytest.approx(10.0 * position, abs=1e-3)
        assert row["trigger_time"] == 25 + 200 * phase
        assert row["cardiac_phase"] == {1: "ES", 3: "ED"}.get(phase, "")


def test_unlabelled_slices_keep_their_dicom_and_nothing_else(built):
    for row in pairs(built, "PHANTOM0001"):
        if row["slice"] % 2:
            assert row["status"] == "unlabelled" and row["codes"] == ""
            assert row["dicom"] == f"dicoms/PHANTOM0001/{row['slice']}.dcm"
            assert row["icontour"] is row["ocontour"] is row["npz"] is row["qc"] is None
            assert row["instance_number"] is row["height"] is None


def test_sample_rows_carry_the_dicom_header_and_the_output_paths(built):
    raw = built.raw
    samples = [row for row in pairs(built, "PHANTOM0003") if row["status"] == "sample"]
    assert [row["slice"] for row in samples] == [2, 4, 6, 8]
    for row in samples:
        number = row["slice"]
        dicom = pydicom.dcmread(raw / row["dicom"], stop_before_pixels=True)
        assert row["instance_number"] == dicom.InstanceNumber == number
        assert (row["height"], row["width"]) == (dicom.Rows, dicom.Columns)
        assert row["icontour"] == icontour("PH-HF-3", number)
        assert row["ocontour"] == (ocontour("PH-HF-3", number) if number % 4 == 0 else None)
        assert row["npz"] == f"slices/PHANTOM0003/{number:04d}.npz"
        assert row["qc"] == f"qc/PHANTOM0003/{number:04d}.png"
        assert row["codes"] == ""


def test_an_excluded_slice_lists_its_codes(built):
    row = {row["slice"]: row for row in pairs(built, "PHANTOM0002")}[4]
    assert row["status"] == "excluded"
    assert row["codes"] == "dicom_unreadable,ocontour_unpaired"
    assert row["dicom"] == "dicoms/PHANTOM0002/4.dcm"
    assert row["ocontour"] == ocontour("PH-HF-2", 4)
    assert row["npz"] is row["qc"] is row["height"] is None


def test_an_absent_study_has_an_empty_pairing_table(built):
    assert pairs(built, "PHANTOM0004") == []


def test_overlays_are_palette_pngs_one_image_wide(built):
    qc_dir = built.layout.qc_dir("PHANTOM0003")
    assert sorted(os.listdir(qc_dir)) == [
        "0002.png", "0004.png", "0006.png", "0008.png", "contact_sheet.jpg", "mask_areas.png",
    ]  # fmt: skip
    for number in (2, 4, 6, 8):
        with Image.open(qc_dir / f"{number:04d}.png") as overlay:
            assert overlay.format == "PNG" and overlay.mode == "P"
            assert overlay.width == 64 and overlay.height > 64  # a caption strip above
    with Image.open(qc_dir / "contact_sheet.jpg") as sheet:
        assert sheet.format == "JPEG" and sheet.mode == "RGB"


def test_a_study_without_samples_gets_a_contact_sheet_saying_so(tmp_path):
    layout = Layout(tmp_path / "raw", tmp_path / "out", "1.0.0", phantom=False)
    study = BuiltStudy(StudyLink("EMPTY", "E", 2), [], [])
    options = BuildOptions.from_config(default_config())
    rows, outputs = write_study_outputs(study, layout, options)
    assert rows == []
    assert set(outputs) == {
        "pairs/EMPTY.parquet", "qc/EMPTY/contact_sheet.jpg", "qc/EMPTY/mask_areas.png",
    }  # fmt: skip
    with Image.open(layout.study_plot("EMPTY")) as plot:
        assert plot.format == "PNG" and plot.size == (700, 320)
    assert layout.report_page("EMPTY").is_file()
    assert os.listdir(layout.slices_dir("EMPTY")) == []
    with Image.open(layout.contact_sheet("EMPTY")) as sheet:
        pixels = np.asarray(sheet.convert("L"))
    assert pixels.max() > 128  # the "no samples" text on black
    assert pq.read_table(layout.pairs_file("EMPTY")).num_rows == 0
