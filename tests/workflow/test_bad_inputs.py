"""Every kind of bad input gets a clear record, and the good rest is built.

One raw dataset carries all the faults (each on its own slice or study), the workflow's
functions build it once with ``contours: [i, o]`` (called directly, as the rules call them), and
each test checks one fault's record and fate. The one end-to-end test checks that Snakemake
builds the very same dataset from it.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.uid import MPEG4HP41, ImplicitVRLittleEndian, RLELossless

import dicom_factory as make
from build_helpers import assert_same_build, build_by_calls, sha256
from conftest import run_workflow
from dataset_checks import check_accounting
from loader.manifest import read_whole_manifest
from loader.sample_file import read_sample
from workflow_scripts.config import default_config
from workflow_scripts.raw.phantom import PhantomSpec, contour_text, write_phantom

SIZE = 64
# Study 1 carries DICOM faults, study 2 contour and label faults, study 3 the o-contour check.
S1, S2, S3 = "PHANTOM0001", "PHANTOM0002", "PHANTOM0003"
DICOM_FAULTS = {  # slice -> (how the DICOM is replaced, expected code or None when kept)
    2: ("truncated", "dicom_unreadable"),
    4: ("not_dicom", "dicom_unreadable"),
    6: ("no_file_meta", "dicom_no_file_meta"),
    8: ("big_endian", None),
    10: ("implicit_vr", None),
    12: ("rle", None),
    14: ("no_codec", "dicom_codec_missing"),
    16: ("colour", "dicom_not_grayscale"),
    18: ("multiframe", "dicom_multiframe"),
    20: ("other_size", "slice_shape_mismatch"),
    22: ("huge", "dicom_too_large"),
    24: ("instance_mismatch", "instance_number_mismatch"),
}
CONTOUR_FAULTS = {  # slice -> (contour text, expected code)
    2: ("", "contour_empty"),
    4: ("10 10\n11 11\nabc def\n", "contour_unparseable"),
    6: ("10 10\nnan 12\n12 14\n", "contour_not_finite"),
    8: ("10 10\n12 12\n", "contour_too_few_points"),
    10: ("10 10\n200 10\n200 20\n10 20\n", "contour_out_of_bounds"),
    14: ("10 10\n20 20\n30 30\n", "mask_empty"),
    16: ("0 0\n63 0\n63 63\n0 63\n", "mask_too_large"),
    # a 1 px square between two sound contours of its phase (ES: slices 18 and 26)
    22: ("30 30\n31 30\n31 31\n30 31\n", "mask_area_outlier"),
}
MISSING_DICOM_SLICE = 12  # in study 2
MISNAMED_CONTOURS = ["IM-0001-48-icontour-manual.txt", "IM-0001-0050-ocontour-manual.txt", "x.txt"]


def pixels_of(path: Path) -> np.ndarray:
    return pydicom.dcmread(path).pixel_array


def replace_dicom(path: Path, fault: str, number: int) -> None:
    image = pixels_of(path)
    variants = {
        "truncated": lambda: path.read_bytes()[: len(path.read_bytes()) // 2],
        "not_dicom": lambda: b"<html>this is not an image</html>\n" * 20,
        "no_file_meta": lambda: make.without_file_meta(image, number),
        "big_endian": lambda: make.big_endian(image, number),
        "implicit_vr": lambda: make.implicit_vr(image, number),
        "rle": lambda: make.compressed(image, RLELossless, number),
        "no_codec": lambda: make.with_syntax_and_payload(MPEG4HP41, b"\0" * 64, number),
        "colour": lambda: make.colour(SIZE, SIZE, number),
        "multiframe": lambda: make.multiframe(3, number),
        "other_size": lambda: make.standard(make.pixels(SIZE + 8, SIZE + 8), number),
        "huge": lambda: make.huge_header(60000, 60000, number),
        "instance_mismatch": lambda: make.standard(image, number + 1000),
    }
    path.write_bytes(variants[fault]())


@pytest.fixture(scope="module")
def faulty_raw(tmp_path_factory) -> Path:
    """The raw dataset with every fault, in a folder of its own (``root/raw``)."""
    root = tmp_path_factory.mktemp("faults")
    raw = write_phantom(
        root / "raw", PhantomSpec.with_defaults(studies=3, slices=26, size=SIZE, faults=False)
    )
    for number, (fault, _) in DICOM_FAULTS.items():
        replace_dicom(raw / "dicoms" / S1 / f"{number}.dcm", fault, number)
    icontours = raw / "contourfiles" / "PH-HF-2" / "i-contours"
    for number, (text, _) in CONTOUR_FAULTS.items():
        (icontours / f"IM-0001-{number:04d}-icontour-manual.txt").write_text(text)
    (raw / "dicoms" / S2 / f"{MISSING_DICOM_SLICE}.dcm").unlink()
    for name in MISNAMED_CONTOURS:
        (icontours / name).write_text("10 10\n20 10\n20 20\n")
    # Study 3: shift every o-contour 4 px so the i-contour pokes out of it.
    for path in (raw / "contourfiles" / "PH-HF-3" / "o-contours").iterdir():
        points = np.loadtxt(path) + np.array([4.0, 0.0])
        path.write_text(contour_text(points))
    # Clutter: AppleDouble copies, an unrecognized name, a link leading out of the data folder
    # (followed: follow_symlinks is true by default) and one leading nowhere.
    (raw / "dicoms" / S3 / "._2.dcm").write_bytes(b"\0\x05\x16\x07junk")
    (
        raw / "contourfiles" / "PH-HF-3" / "i-contours" / "._IM-0001-0002-icontour-manual.txt"
    ).write_bytes(b"x")
    (raw / "dicoms" / S3 / "notes.txt").write_text("scanner notes")
    outside = root / "outside.dcm"
    shutil.copy(raw / "dicoms" / S3 / "2.dcm", outside)
    (raw / "dicoms" / S3 / "2.dcm").unlink()
    os.symlink(outside, raw / "dicoms" / S3 / "2.dcm")
    os.symlink(root / "gone.dcm", raw / "dicoms" / S3 / "99.dcm")
    # A listed study that is absent, and study folders that link.csv does not list.
    with open(raw / "link.csv", "a") as link:
        link.write("PHANTOM0009,PH-HF-9\n")
    shutil.copytree(raw / "dicoms" / S3, raw / "dicoms" / "STRAY01", symlinks=True)
    shutil.copytree(raw / "contourfiles" / "PH-HF-3", raw / "contourfiles" / "PH-STRAY")

    return raw


@pytest.fixture(scope="module")
def faulty_build(faulty_raw):
    workdir = faulty_raw.parent / "calls"
    workdir.mkdir()
    config = default_config(data_dir=str(faulty_raw), out_dir="out", contours=["i", "o"])
    version_dir = workdir / build_by_calls(config, workdir).layout.version_dir
    index = pd.read_parquet(version_dir / "index.parquet")
    validation = pd.read_parquet(version_dir / "validation.parquet")
    return faulty_raw, version_dir, index, validation


def rows(validation: pd.DataFrame, code: str, study: str | None = None) -> pd.DataFrame:
    selected = validation[validation["code"] == code]
    return selected if study is None else selected[selected["study_id"] == study]


def sample_slices(index: pd.DataFrame, study: str) -> set[int]:
    return set(index[index["study_id"] == study]["slice"])


@pytest.mark.parametrize("number", sorted(DICOM_FAULTS))
def test_dicom_fault_is_recorded_and_decides_the_slice(faulty_build, number):
    _, _, index, validation = faulty_build
    fault, code = DICOM_FAULTS[number]
    path = f"dicoms/{S1}/{number}.dcm"
    recorded = validation[(validation["path"] == path)]
    # The variants are written without the cine's tags (dicom_factory): each has its
    # cine_tags_missing warning, tested with the cine (test_cine.py); the fault's own row here.
    cine = recorded["code"] == "cine_tags_missing"
    assert cine.sum() <= 1, fault
    recorded = recorded[~cine]
    if code is None:
        assert recorded.empty, f"{fault}: unexpected {list(recorded['code'])}"
    else:
        assert list(recorded["code"]) == [code], fault
        assert recorded.iloc[0]["message"]
    kept = code is None or code == "dicom_no_file_meta"
    assert (number in sample_slices(index, S1)) == kept, fault


@pytest.mark.parametrize("number", [6, 8, 10, 12])
def test_readable_variants_keep_the_original_pixels(faulty_build, number):
    raw, version_dir, _, _ = faulty_build
    arrays = read_sample(version_dir / f"slices/{S1}/{number:04d}.npz")
    data = (raw / f"dicoms/{S1}/{number}.dcm").read_bytes()
    reference = pydicom.dcmread(io.BytesIO(data), force=True)
    if "TransferSyntaxUID" not in reference.file_meta:  # the file without file meta
        reference.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    np.testing.assert_array_equal(arrays["image"], reference.pixel_array)


@pytest.mark.parametrize("number", sorted(CONTOUR_FAULTS))
def test_contour_fault_is_recorded(faulty_build, number):
    _, _, index, validation = faulty_build
    _, code = CONTOUR_FAULTS[number]
    path = f"contourfiles/PH-HF-2/i-contours/IM-0001-{number:04d}-icontour-manual.txt"
    recorded = validation[validation["path"] == path]
    assert code in set(recorded["code"])
    severity = recorded[recorded["code"] == code].iloc[0]["severity"]
    kept = severity == "warning"
    assert (number in sample_slices(index, S2)) == kept


def test_misnamed_files_in_a_contour_folder_are_left_out_and_accounted(faulty_build):
    _, _, _, validation = faulty_build
    misnamed = rows(validation, "contour_name_unrecognized", S2)
    expected = {f"contourfiles/PH-HF-2/i-contours/{name}" for name in MISNAMED_CONTOURS}
    assert set(misnamed["path"]) == expected
    assert set(misnamed["contour"]) == expected
    assert set(misnamed["severity"]) == {"error"}


def test_label_warnings_carry_their_figures(faulty_build):
    _, _, _, validation = faulty_build
    assert rows(validation, "mask_empty", S2).iloc[0]["value"] == 0
    assert rows(validation, "mask_too_large", S2).iloc[0]["value"] > 0.5
    outlier = rows(validation, "mask_area_outlier", S2)
    assert 22 in set(outlier["slice"])
    assert outlier[outlier["slice"] == 22].iloc[0]["value"] == 1  # the 1x1 square covers 1 px


def test_contour_without_dicom_is_recorded(faulty_build):
    _, _, index, validation = faulty_build
    missing = rows(validation, "dicom_missing", S2)
    assert list(missing["path"]) == [f"dicoms/{S2}/{MISSING_DICOM_SLICE}.dcm"]
    assert missing.iloc[0]["contour"].endswith(
        f"IM-0001-{MISSING_DICOM_SLICE:04d}-icontour-manual.txt"
    )
    assert MISSING_DICOM_SLICE not in sample_slices(index, S2)


def test_o_contour_of_a_slice_without_sample_is_accounted_for(faulty_build):
    _, _, _, validation = faulty_build
    # slices 4, 8, ... of study 1 have o-contours; slice 4's DICOM is not DICOM
    unpaired = rows(validation, "ocontour_unpaired", S1)
    assert "contourfiles/PH-HF-1/o-contours/IM-0001-0004-ocontour-manual.txt" in set(
        unpaired["path"]
    )


def test_i_contour_outside_o_contour_is_flagged_with_the_fraction(faulty_build):
    _, version_dir, index, validation = faulty_build
    flagged = rows(validation, "icontour_outside_ocontour", S3)
    with_omask = index[(index["study_id"] == S3) & index["has_omask"]]
    assert set(flagged["slice"]) == set(with_omask["slice"])
    for row in flagged.itertuples():
        arrays = read_sample(version_dir / f"slices/{S3}/{int(row.slice):04d}.npz")
        outside = (arrays["mask"] & ~arrays["omask"]).sum() / arrays["mask"].sum()
        assert row.value == pytest.approx(outside)


def test_clutter_files_are_recorded_not_read(faulty_build):
    _, _, _, validation = faulty_build
    assert f"dicoms/{S3}/._2.dcm" in set(rows(validation, "hidden_file", S3)["path"])
    assert "contourfiles/PH-HF-3/i-contours/._IM-0001-0002-icontour-manual.txt" in set(
        rows(validation, "hidden_file", S3)["path"]
    )
    assert f"dicoms/{S3}/notes.txt" in set(rows(validation, "file_name_unrecognized", S3)["path"])
    assert list(rows(validation, "link_broken", S3)["path"]) == [f"dicoms/{S3}/99.dcm"]
    assert f"dicoms/{S3}/2.dcm" not in set(validation["path"])  # its link leads to a file


def test_a_dicom_reached_through_a_link_is_read_and_recorded_with_its_target(faulty_build):
    raw, version_dir, _, _ = faulty_build
    inputs = read_whole_manifest(version_dir / "manifest.json")["inputs"]
    outside = raw.parent / "outside.dcm"
    assert inputs[f"dicoms/{S3}/2.dcm"]["link_target"] == str(outside.resolve())
    assert inputs[f"dicoms/{S3}/2.dcm"]["sha256"] == sha256(outside)
    linked = [name for name, entry in inputs.items() if "link_target" in entry]
    assert linked == [f"dicoms/{S3}/2.dcm"]


def test_listed_but_missing_study_is_reported_and_the_rest_built(faulty_build):
    _, _, index, validation = faulty_build
    assert list(rows(validation, "study_missing")["path"]) == ["dicoms/PHANTOM0009"]
    assert set(index["study_id"]) == {S1, S2, S3}


def test_unlisted_study_folders_are_reported_with_each_contour_file(faulty_build):
    raw, _, index, validation = faulty_build
    unlisted = rows(validation, "study_unlisted")
    assert "dicoms/STRAY01" in set(unlisted["path"])
    stray_contours = {
        p.relative_to(raw).as_posix() for p in (raw / "contourfiles" / "PH-STRAY").rglob("IM-*")
    }
    assert set(unlisted["contour"].dropna()) == stray_contours
    assert "STRAY01" not in set(index["study_id"])


def test_every_contour_file_is_accounted_for_exactly_once(faulty_build):
    raw, version_dir, _, _ = faulty_build
    check_accounting(raw, version_dir, ("i", "o"))


def test_good_slices_are_all_built(faulty_build):
    _, _, index, _ = faulty_build
    # Study 3 has no faulty i-contour: all 13 contoured slices (2, 4, ..., 26) are samples.
    assert sample_slices(index, S3) == set(range(2, 27, 2))
    dropped_s1 = {
        n for n, (_, code) in DICOM_FAULTS.items() if code not in (None, "dicom_no_file_meta")
    }
    assert sample_slices(index, S1) == set(range(2, 27, 2)) - dropped_s1


@pytest.mark.workflow
def test_snakemake_builds_the_same_dataset_as_the_direct_calls(faulty_build):
    # Every bad input above, through the rules: the same samples, tables, problem rows and
    # manifest (the rules pass the studies, contour kinds and options as the calls do).
    raw, version_dir, _, _ = faulty_build
    workdir = raw.parent / "snakemake"
    workdir.mkdir()
    run_workflow(workdir, "--config", f"data_dir={raw}", "out_dir=out", "contours=[i,o]")
    assert_same_build(workdir / "out", version_dir.parent)
