"""build_study on phantom studies: the samples, the record, the digests, the log.

Expected values come from the raw files themselves (pydicom's pixels, the contour text read with
numpy, hashlib), never from the workflow's own readers.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pydicom
import pytest
from pydicom import config as pydicom_config

from build_helpers import build_studies, phantom, reference_mask, tree_digests
from dataset_checks import all_contour_files
from loader.sample_file import read_sample
from workflow_scripts.layout import Layout
from workflow_scripts.raw.links import StudyLink
from workflow_scripts.study.batch import build_batch

STUDIES = ["PHANTOM0001", "PHANTOM0002", "PHANTOM0003"]
ABSENT = "PHANTOM0004"  # listed in link.csv, not on disk (a phantom fault)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> SimpleNamespace:
    """Three phantom studies (and a listed absent one), 8 slices of 64 x 64, with the
    phantom's faults, built with both contour kinds."""
    root = tmp_path_factory.mktemp("study_build")
    raw = phantom(root / "raw", studies=3, slices=8, size=64)
    return build_studies(raw, root / "out", contours=["i", "o"])


def contour_files(raw: Path, link: StudyLink, kind: str) -> dict[int, str]:
    """Slice number -> contour file of ``kind`` on disk, read from the folder listing."""
    folder = raw / "contourfiles" / link.original_id / f"{kind}-contours"
    if not folder.is_dir():
        return {}
    return {
        int(name.split("-")[2]): f"contourfiles/{link.original_id}/{kind}-contours/{name}"
        for name in os.listdir(folder)
        if not name.startswith(".")
    }


def readable_dicom(path: Path) -> bool:
    try:
        pydicom.dcmread(path).pixel_array  # noqa: B018
    except Exception:
        return False
    return True


def expected_samples(raw: Path, link: StudyLink) -> list[int]:
    """Slices with an i-contour whose DICOM pydicom reads (the phantom has no other faults)."""
    return sorted(
        number
        for number in contour_files(raw, link, "i")
        if readable_dicom(raw / "dicoms" / link.patient_id / f"{number}.dcm")
    )


def sha256(data: bytes) -> dict:
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def test_every_i_contour_with_a_readable_dicom_becomes_a_sample(built):
    slices = {s: [row["slice"] for row in r["samples"]] for s, r in built.records.items()}
    assert slices == {study: expected_samples(built.raw, built.links[study]) for study in slices}
    # by hand: contours on slices 2, 4, 6, 8; study 1's extra contour 10 has no DICOM, study
    # 2's DICOM 4 is truncated
    assert slices == {
        "PHANTOM0001": [2, 4, 6, 8],
        "PHANTOM0002": [2, 6, 8],
        "PHANTOM0003": [2, 4, 6, 8],
        ABSENT: [],
    }


def test_samples_equal_pydicom_pixels_and_an_independent_rasterization(built):
    checked = 0
    for study in STUDIES:
        ocontours = contour_files(built.raw, built.links[study], "o")
        for row in built.records[study]["samples"]:
            number = row["slice"]
            dicom = pydicom.dcmread(built.raw / "dicoms" / study / f"{number}.dcm")
            arrays = read_sample(built.layout.version_dir / row["npz"])
            np.testing.assert_array_equal(arrays["image"], dicom.pixel_array)
            assert arrays["image"].dtype == dicom.pixel_array.dtype
            shape = (dicom.Rows, dicom.Columns)
            inner = reference_mask(np.loadtxt(built.raw / row["icontour"]), shape)
            np.testing.assert_array_equal(arrays["mask"], inner)
            assert (row["height"], row["width"]) == shape
            assert row["image_dtype"] == str(dicom.pixel_array.dtype)
            assert row["mask_pixels"] == int(inner.sum()) > 0
            if number in ocontours:
                assert row["ocontour"] == ocontours[number] and row["has_omask"]
                outer = reference_mask(np.loadtxt(built.raw / ocontours[number]), shape)
                np.testing.assert_array_equal(arrays["omask"], outer)
                assert row["omask_pixels"] == int(outer.sum())
                assert row["i_outside_o"] == pytest.approx((inner & ~outer).sum() / inner.sum())
            else:
                assert set(arrays) == {"image", "mask"}
                assert row["ocontour"] is None and not row["has_omask"]
                assert row["omask_pixels"] is None and row["i_outside_o"] is None
            checked += 1
    assert checked == 11


def percentile_by_hand(values: np.ndarray, p: float) -> float:
    """The p-th percentile of ``values``, linear between order statistics: rank p/100 x (n-1)
    of the sorted values."""
    ordered = np.sort(values, axis=None).astype(np.float64)
    rank = p / 100 * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (rank - low) * (ordered[high] - ordered[low]))


def test_index_rows_carry_the_percentiles_of_the_dicoms_pixel_values(built):
    for study in STUDIES:
        for row in built.records[study]["samples"]:
            pixels = pydicom.dcmread(built.raw / "dicoms" / study / f"{row['slice']}.dcm")
            for p in (1, 25, 50, 75, 99):
                expected = percentile_by_hand(pixels.pixel_array, p)
                assert row[f"intensity_p{p:02d}"] == pytest.approx(expected, rel=1e-12), (study, p)


def test_index_rows_name_the_sample_files_and_overlays(built):
    for study in STUDIES:
        link = built.links[study]
        icontours = contour_files(built.raw, link, "i")
        for row in built.records[study]["samples"]:
            number = row["slice"]
            assert row["npz"] == f"slices/{study}/{number:04d}.npz"
            assert row["qc"] == f"qc/{study}/{number:04d}.png"
            assert (row["study_id"], row["original_id"]) == (study, link.original_id)
            assert row["icontour"] == icontours[number]
            assert row["flags"] == ""  # the phantom's labels are sane


def test_the_phantoms_faults_are_the_only_problems(built):
    problems = {
        (row["study_id"], row["code"], row["path"], row["contour"], row["severity"])
        for record in built.records.values()
        for row in record["problems"]
    }
    o4 = "contourfiles/PH-HF-2/o-contours/IM-0001-0004-ocontour-manual.txt"
    assert problems == {
        (
            "PHANTOM0001",
            "dicom_missing",
            "dicoms/PHANTOM0001/10.dcm",
            "contourfiles/PH-HF-1/i-contours/IM-0001-0010-icontour-manual.txt",
            "error",
        ),
        (
            "PHANTOM0002",
            "dicom_unreadable",
            "dicoms/PHANTOM0002/4.dcm",
            "contourfiles/PH-HF-2/i-contours/IM-0001-0004-icontour-manual.txt",
            "error",
        ),
        ("PHANTOM0002", "ocontour_unpaired", o4, o4, "error"),
        ("PHANTOM0003", "hidden_file", "dicoms/PHANTOM0003/._2.dcm", None, "warning"),
        (ABSENT, "study_missing", f"dicoms/{ABSENT}", None, "error"),
    }


def test_every_contour_file_is_a_sample_or_one_error_row(built):
    accounted = []
    for record in built.records.values():
        for row in record["samples"]:
            accounted += [row["icontour"]] + ([row["ocontour"]] if row["ocontour"] else [])
        accounted += [p["contour"] for p in record["problems"] if p["severity"] == "error"]
        accounted = [path for path in accounted if path]
    assert len(accounted) == len(set(accounted))
    assert set(accounted) == all_contour_files(built.raw, ("i", "o"))


def test_the_record_names_each_file_read_with_the_digest_and_time_of_its_bytes(built):
    for study in STUDIES:
        record = built.records[study]
        fed = set()
        for row in record["samples"]:
            fed |= {row["icontour"], f"dicoms/{study}/{row['slice']}.dcm"}
            fed |= {row["ocontour"]} if row["ocontour"] else set()
        # every file that fed a sample, and those read but left out (a repair changes the data),
        # and every DICOM of the study (its header places it in the cine)
        errored = {p["path"] for p in record["problems"] if p["severity"] == "error"}
        dicoms = {
            f"dicoms/{study}/{p.name}" for p in (built.raw / "dicoms" / study).glob("[0-9]*.dcm")
        }
        assert fed | dicoms <= set(record["inputs"])
        assert set(record["inputs"]) <= fed | errored | all_contour_files(built.raw) | dicoms
        for relpath, digest in record["inputs"].items():
            path = built.raw / relpath
            assert digest == {**sha256(path.read_bytes()), "mtime_ns": path.stat().st_mtime_ns}
    # the phantom's truncated DICOM was read and left out: it is an input all the same
    assert "dicoms/PHANTOM0002/4.dcm" in built.records["PHANTOM0002"]["inputs"]


def test_the_record_names_each_output_with_the_digest_of_the_written_file(built):
    version_dir = built.layout.version_dir
    for study, record in built.records.items():
        written = {
            path.relative_to(version_dir).as_posix(): path
            for folder in (f"slices/{study}", f"qc/{study}")
            for path in (version_dir / folder).iterdir()
        }
        written[f"pairs/{study}.parquet"] = version_dir / "pairs" / f"{study}.parquet"
        assert set(record["outputs"]) == set(written)
        assert {
            f"pairs/{study}.parquet", f"qc/{study}/contact_sheet.jpg", f"qc/{study}/mask_areas.png",
        } <= set(written)  # fmt: skip
        for relpath, path in written.items():
            assert record["outputs"][relpath] == sha256(path.read_bytes()), relpath
    samples = sum(len(r["samples"]) for r in built.records.values())
    overlays = [p for p in version_dir.rglob("*.png") if p.name != "mask_areas.png"]
    assert len(list(version_dir.rglob("*.npz"))) == len(overlays) == samples


def test_counts_are_the_files_on_disk(built):
    for study, record in built.records.items():
        link = built.links[study]
        dicom_dir = built.raw / "dicoms" / study
        dicoms = (
            [n for n in os.listdir(dicom_dir) if not n.startswith(".")]
            if dicom_dir.is_dir()
            else []
        )
        contours = len(contour_files(built.raw, link, "i")) + len(
            contour_files(built.raw, link, "o")
        )
        assert record["counts"] == {
            "dicoms": len(dicoms),
            "contour_files": contours,
            "samples": len(record["samples"]),
        }
    assert built.records["PHANTOM0001"]["counts"] == {"dicoms": 8, "contour_files": 7, "samples": 4}


def test_the_written_record_is_the_returned_one(built):
    for study, record in built.records.items():
        path = built.layout.study_record(study)
        assert json.loads(path.read_text()) == record
        assert record["study_id"] == study
        assert record["original_id"] == built.links[study].original_id


def test_an_absent_study_still_gets_its_pairing_table_an_empty_contact_sheet_and_plot(built):
    record = built.records[ABSENT]
    assert record["samples"] == [] and record["inputs"] == {}
    assert set(record["outputs"]) == {
        f"pairs/{ABSENT}.parquet", f"qc/{ABSENT}/contact_sheet.jpg", f"qc/{ABSENT}/mask_areas.png",
    }  # fmt: skip
    assert os.listdir(built.layout.slices_dir(ABSENT)) == []


def test_the_job_log_lists_the_counts_and_every_problem(built):
    log = built.layout.study_log("PHANTOM0002").read_text().splitlines()
    counts = built.records["PHANTOM0002"]["counts"]
    assert log[0] == f"study PHANTOM0002: {counts}"
    assert log[1].startswith("error: dicom_unreadable: dicoms/PHANTOM0002/4.dcm: ")
    assert log[2].startswith(
        "error: ocontour_unpaired: "
        "contourfiles/PH-HF-2/o-contours/IM-0001-0004-ocontour-manual.txt: "
    )
    assert len(log) == 3


@pytest.fixture
def small(tmp_path) -> SimpleNamespace:
    """One study, 4 slices of 32 x 32 (contours on 2 and 4), no faults, both contour kinds."""
    raw = phantom(tmp_path / "raw", studies=1, slices=4, size=32, faults=False)
    return build_studies(raw, tmp_path / "out", contours=["i", "o"])


def test_a_rebuild_writes_the_same_bytes(small, tmp_path):
    version_dir = small.layout.version_dir
    before = tree_digests(version_dir)
    record = small.records["PHANTOM0001"]
    again = build_studies(small.raw, small.layout.out_dir, contours=["i", "o"])
    assert tree_digests(version_dir) == before
    assert again.records["PHANTOM0001"] == record
    elsewhere = build_studies(small.raw, tmp_path / "elsewhere", contours=["i", "o"])
    assert tree_digests(elsewhere.layout.version_dir) == before
    assert elsewhere.records["PHANTOM0001"] == record


def test_a_stale_staging_folder_is_removed_by_the_next_build(small):
    layout = small.layout
    before = tree_digests(layout.version_dir)
    stale = [
        layout.slices_dir("PHANTOM0001").parent / ".staging-PHANTOM0001.999.0a1b2c3d",
        layout.qc_dir("PHANTOM0001").parent / ".staging-PHANTOM0001.999.0a1b2c3d",
    ]
    for folder in stale:
        folder.mkdir()
        (folder / "0002.npz").write_bytes(b"half-written")
    build_studies(small.raw, layout.out_dir, contours=["i", "o"])
    assert not any(folder.exists() for folder in stale)
    assert tree_digests(layout.version_dir) == before


def test_only_the_configured_contour_kinds_are_read(small, tmp_path):
    only_i = build_studies(small.raw, tmp_path / "only_i")
    record = only_i.records["PHANTOM0001"]
    assert [row["has_omask"] for row in record["samples"]] == [False, False]
    assert not any("o-contours" in path for path in record["inputs"])
    assert record["counts"]["contour_files"] == 2
    for row in record["samples"]:
        assert set(read_sample(only_i.layout.version_dir / row["npz"])) == {"image", "mask"}


def test_a_batch_builds_each_study_as_it_would_alone_in_or_out_of_a_worker_pool(tmp_path):
    raw = phantom(tmp_path / "raw", studies=3, slices=4, size=32, faults=False)
    small = build_studies(raw, tmp_path / "alone", contours=["i", "o"])
    options = {key: small.config[key] for key in ("contours", "checks", "qc")}
    for workers in (1, 2):
        config = {**small.config, "out_dir": str(tmp_path / f"workers{workers}")}
        layout = Layout.from_config(config)
        log = io.StringIO()
        ids = build_batch(
            "00000-batch",
            [[link.patient_id, link.original_id] for link in small.links.values()],
            layout,
            options,
            workers=workers,
            record_path=tmp_path / f"batch{workers}.json",
            log=log,
        )
        assert ids == list(small.links)
        assert json.loads((tmp_path / f"batch{workers}.json").read_text()) == {
            "batch": "00000-batch",
            "studies": list(small.links),
        }
        assert tree_digests(layout.version_dir) == tree_digests(small.layout.version_dir)
        for study in small.links:
            record = json.loads(layout.study_record(study).read_text())
            assert record == small.records[study]
            assert layout.study_log(study).is_file()
            assert f"{study}: " in log.getvalue()


def rewrite_with_invalid_values(path: Path, **tags) -> None:
    """Rewrite a DICOM with tag values pydicom warns about when it reads them."""
    dataset = pydicom.dcmread(path)
    previous = pydicom_config.settings.writing_validation_mode
    pydicom_config.settings.writing_validation_mode = pydicom_config.IGNORE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for keyword, value in tags.items():
                setattr(dataset, keyword, value)
            dataset.save_as(path, enforce_file_format=True)
    finally:
        pydicom_config.settings.writing_validation_mode = previous


def test_pydicom_warnings_are_counted_in_the_job_log_and_not_printed(tmp_path, capfd):
    raw = phantom(tmp_path / "raw", studies=1, slices=4, size=32, faults=False)
    dicoms = raw / "dicoms" / "PHANTOM0001"
    # 1 and 3 carry no contour: only their cine tags are read, NumberOfFrames is none of them
    for number in (1, 2, 3, 4):
        rewrite_with_invalid_values(dicoms / f"{number}.dcm", NumberOfFrames="1.0")
    rewrite_with_invalid_values(dicoms / "4.dcm", InstanceNumber="4.0")
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        built = build_studies(raw, tmp_path / "out")
    assert [str(w.message) for w in escaped] == []
    assert capfd.readouterr() == ("", "")
    assert [row["slice"] for row in built.records["PHANTOM0001"]["samples"]] == [2, 4]
    lines = built.layout.study_log("PHANTOM0001").read_text().splitlines()
    warned = [line for line in lines if line.startswith("pydicom warned")]
    assert len(warned) == 2  # one line per distinct warning
    assert warned[0].startswith(
        "pydicom warned 2 time(s) (first in dicoms/PHANTOM0001/2.dcm): "
        "UserWarning: Invalid value for VR IS: '1.0'"
    )
    assert warned[1].startswith(  # InstanceNumber: read with the header, then with the pixels
        "pydicom warned 2 time(s) (first in dicoms/PHANTOM0001/4.dcm): "
        "UserWarning: Invalid value for VR IS: '4.0'"
    )
    # the counts line, one problem (one slice position: no spacing, no volumes), the two warnings
    assert len(lines) == 4 and "measures_unavailable" in lines[1]
