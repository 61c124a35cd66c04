"""Pairing a study's files by slice number from folder listings, and the digests of a listing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from workflow_scripts.build_plan import BuildPlan
from workflow_scripts.config import default_config
from workflow_scripts.layout import Layout
from workflow_scripts.raw.links import StudyLink
from workflow_scripts.raw.pairing import pair_study

LINK = StudyLink("P1", "O-1", 2)
I_DIR, O_DIR = "contourfiles/O-1/i-contours", "contourfiles/O-1/o-contours"


def icontour(number: int) -> str:
    return f"{I_DIR}/IM-0001-{number:04d}-icontour-manual.txt"


def ocontour(number: int) -> str:
    return f"{O_DIR}/IM-0001-{number:04d}-ocontour-manual.txt"


def make(root: Path, *paths: str) -> Path:
    """Create files (content: their own path) under ``root``."""
    for path in paths:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(path)
    return root


@pytest.fixture
def study(tmp_path) -> Path:
    """Slices 1, 2, 10 and 11; i-contours on 2 and 10, an o-contour on 10."""
    data = tmp_path / "data"
    dicoms = [f"dicoms/P1/{n}.dcm" for n in (1, 2, 10, 11)]
    return make(data, *dicoms, icontour(2), icontour(10), ocontour(10))


def problems(pairing) -> set[tuple[str, str]]:
    return {(problem.code, problem.path) for problem in pairing.problems}


def test_files_are_paired_by_slice_number_in_numeric_order(study):
    pairing = pair_study(LINK, study, ("i", "o"))
    assert pairing.study_id == "P1"
    assert [(p.slice, p.dicom, p.contours) for p in pairing.slices] == [
        (1, "dicoms/P1/1.dcm", {}),
        (2, "dicoms/P1/2.dcm", {"i": icontour(2)}),
        (10, "dicoms/P1/10.dcm", {"i": icontour(10), "o": ocontour(10)}),
        (11, "dicoms/P1/11.dcm", {}),
    ]
    assert pairing.problems == []


def test_only_the_configured_contour_kinds_are_listed(study):
    (study / O_DIR / "stray.txt").write_text("x")  # would be a problem if o were listed
    pairing = pair_study(LINK, study, ("i",))
    assert {p.slice: p.contours for p in pairing.slices}[10] == {"i": icontour(10)}
    assert pairing.problems == []


def test_a_contour_without_dicom_and_a_dicom_without_contour_are_both_kept(tmp_path):
    data = make(tmp_path, "dicoms/P1/3.dcm", icontour(4))
    pairing = pair_study(LINK, data, ("i",))
    assert [(p.slice, p.dicom, p.contours) for p in pairing.slices] == [
        (3, "dicoms/P1/3.dcm", {}),
        (4, None, {"i": icontour(4)}),
    ]


def test_slice_zero_is_a_slice(tmp_path):
    data = make(tmp_path, "dicoms/P1/0.dcm", icontour(0))
    pairing = pair_study(LINK, data, ("i",))
    assert [(p.slice, p.dicom, p.contours) for p in pairing.slices] == [
        (0, "dicoms/P1/0.dcm", {"i": icontour(0)})
    ]


def test_hidden_files_are_recorded_not_paired(study):
    make(
        study,
        "dicoms/P1/._2.dcm",
        "dicoms/P1/.DS_Store",
        f"{I_DIR}/._IM-0001-0002-icontour-manual.txt",
    )
    pairing = pair_study(LINK, study, ("i", "o"))
    assert problems(pairing) == {
        ("hidden_file", "dicoms/P1/._2.dcm"),
        ("hidden_file", "dicoms/P1/.DS_Store"),
        ("hidden_file", f"{I_DIR}/._IM-0001-0002-icontour-manual.txt"),
    }
    assert {problem.severity for problem in pairing.problems} == {"warning"}
    assert [p.slice for p in pairing.slices] == [1, 2, 10, 11]
    assert {p.slice: p.dicom for p in pairing.slices}[2] == "dicoms/P1/2.dcm"


@pytest.mark.parametrize("name", ["notes.txt", "01.dcm", "2.DCM", "2.dcm.bak", "-1.dcm", "a.dcm"])
def test_unrecognized_dicom_names_are_recorded_not_paired(study, name):
    make(study, f"dicoms/P1/{name}")
    pairing = pair_study(LINK, study, ("i",))
    assert problems(pairing) == {("file_name_unrecognized", f"dicoms/P1/{name}")}
    assert [p.slice for p in pairing.slices] == [1, 2, 10, 11]
    assert pairing.problems[0].contour is None


@pytest.mark.parametrize(
    "path",
    [
        f"{I_DIR}/IM-0001-48-icontour-manual.txt",  # three digits short
        f"{I_DIR}/IM-0001-0050-ocontour-manual.txt",  # an o-contour among the i-contours
        f"{I_DIR}/x.txt",
        f"{O_DIR}/IM-0001-0012-icontour-manual.txt",
    ],
)
def test_misnamed_contour_files_are_error_rows_that_account_for_them(study, path):
    make(study, path)
    pairing = pair_study(LINK, study, ("i", "o"))
    assert problems(pairing) == {("contour_name_unrecognized", path)}
    (problem,) = pairing.problems
    assert problem.contour == path and problem.severity == "error"
    assert all(path not in p.contours.values() for p in pairing.slices)


def test_sub_folders_and_other_non_regular_entries_are_recorded(study):
    (study / "dicoms/P1/series2").mkdir()
    os.mkfifo(study / "dicoms/P1/12.dcm")
    (study / I_DIR / "old").mkdir()
    pairing = pair_study(LINK, study, ("i",))
    assert problems(pairing) == {
        ("file_name_unrecognized", "dicoms/P1/series2"),
        ("file_name_unrecognized", "dicoms/P1/12.dcm"),
        ("file_name_unrecognized", f"{I_DIR}/old"),
    }
    assert 12 not in [p.slice for p in pairing.slices]


def test_with_follow_symlinks_false_a_link_leading_out_is_recorded_not_paired(tmp_path, study):
    outside = make(tmp_path / "elsewhere", "secret.dcm") / "secret.dcm"
    os.symlink(outside, study / "dicoms/P1/5.dcm")
    os.symlink(tmp_path / "elsewhere" / "missing.dcm", study / "dicoms/P1/6.dcm")  # dangling
    pairing = pair_study(LINK, study, ("i",), follow_symlinks=False)
    assert problems(pairing) == {
        ("path_outside_data_dir", "dicoms/P1/5.dcm"),
        ("path_outside_data_dir", "dicoms/P1/6.dcm"),
    }
    assert {problem.severity for problem in pairing.problems} == {"error"}
    assert [p.slice for p in pairing.slices] == [1, 2, 10, 11]


def test_by_default_a_link_leading_out_is_followed_and_a_dangling_one_recorded(tmp_path, study):
    outside = make(tmp_path / "elsewhere", "secret.dcm") / "secret.dcm"
    os.symlink(outside, study / "dicoms/P1/5.dcm")
    os.symlink(tmp_path / "elsewhere" / "missing.dcm", study / "dicoms/P1/6.dcm")  # dangling
    pairing = pair_study(LINK, study, ("i",))
    assert problems(pairing) == {("link_broken", "dicoms/P1/6.dcm")}
    assert pairing.problems[0].severity == "error"
    assert {p.slice: p.dicom for p in pairing.slices}[5] == "dicoms/P1/5.dcm"
    assert [p.slice for p in pairing.slices] == [1, 2, 5, 10, 11]


def test_with_follow_symlinks_false_a_study_folder_linked_out_is_not_listed(tmp_path):
    outside = make(tmp_path / "elsewhere", "1.dcm", "i-contours/IM-0001-0001-icontour-manual.txt")
    data = tmp_path / "data"
    (data / "dicoms").mkdir(parents=True)
    (data / "contourfiles").mkdir()
    os.symlink(outside, data / "dicoms" / "P1")
    os.symlink(outside, data / "contourfiles" / "O-1")
    pairing = pair_study(LINK, data, ("i",), follow_symlinks=False)
    assert pairing.slices == []
    assert problems(pairing) == {
        ("path_outside_data_dir", "dicoms/P1"),
        ("path_outside_data_dir", I_DIR),
    }
    followed = pair_study(LINK, data, ("i",))
    # one folder serves as both: the contour sub-folder sits among the DICOMs
    assert problems(followed) == {("file_name_unrecognized", "dicoms/P1/i-contours")}
    assert [(p.slice, p.dicom, p.contours) for p in followed.slices] == [
        (1, "dicoms/P1/1.dcm", {"i": icontour(1)})
    ]


def test_symlinks_inside_the_data_folder_are_followed(tmp_path, study):
    os.symlink(study / "dicoms/P1/1.dcm", study / "dicoms/P1/7.dcm")
    linked_root = tmp_path / "linked"
    os.symlink(study, linked_root)  # the data folder itself reached through a link
    pairing = pair_study(LINK, linked_root, ("i",))
    assert pairing.problems == []
    assert {p.slice: p.dicom for p in pairing.slices}[7] == "dicoms/P1/7.dcm"


def test_a_listed_study_without_dicom_folder_is_recorded_once(tmp_path):
    data = make(tmp_path, icontour(2))
    pairing = pair_study(StudyLink("P1", "O-1", 7), data, ("i",))
    (problem,) = pairing.problems
    assert (problem.code, problem.path, problem.severity) == ("study_missing", "dicoms/P1", "error")
    # no line number: reordering link.csv's lines must not change a study's build
    assert problem.message == "study listed in link.csv but dicoms/P1/ is not on disk"
    # its contour files are still paired, so the build can account for each of them
    assert [(p.slice, p.dicom, p.contours) for p in pairing.slices] == [
        (2, None, {"i": icontour(2)})
    ]


def test_a_listed_study_with_nothing_on_disk_is_only_missing(tmp_path):
    pairing = pair_study(LINK, tmp_path, ("i", "o"))
    assert problems(pairing) == {("study_missing", "dicoms/P1")}
    assert pairing.slices == []


def test_a_study_without_contour_folder_is_recorded(tmp_path):
    data = make(tmp_path, "dicoms/P1/1.dcm")
    pairing = pair_study(LINK, data, ("i",))
    (problem,) = pairing.problems
    assert (problem.code, problem.path, problem.severity) == (
        "study_contours_missing",
        "contourfiles/O-1",
        "warning",
    )


def fingerprint(data: Path) -> str:
    """The study's job fingerprint, as the build plan computes it (once per plan)."""
    config = default_config(
        data_dir=str(data), out_dir=str(data.parent / "out"), contours=["i", "o"]
    )
    return BuildPlan(config, Layout.from_config(config), [LINK]).fingerprint(LINK.patient_id)


def touch(path: Path) -> None:
    later = path.stat().st_mtime_ns + 5_000_000_000
    os.utime(path, ns=(later, later))


@pytest.mark.parametrize("path", [icontour(2), ocontour(10), "dicoms/P1/2.dcm", "dicoms/P1/10.dcm"])
def test_fingerprint_changes_when_a_file_the_build_reads_is_touched(study, path):
    before = fingerprint(study)
    touch(study / path)
    assert fingerprint(study) != before


def test_fingerprint_changes_when_a_read_file_changes_size_with_its_time_restored(study):
    path = study / icontour(2)
    before, stat = fingerprint(study), path.stat()
    path.write_text(path.read_text() + "\n1 1")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert fingerprint(study) != before


def test_fingerprint_follows_every_dicom(study):
    # every DICOM is read (its header places the labelled ones in the cine), so a change to
    # one without contour can change the build
    before = fingerprint(study)
    (study / "dicoms/P1/11.dcm").write_bytes(b"new content")
    assert fingerprint(study) != before


def test_fingerprint_changes_with_the_listing(study):
    before = fingerprint(study)
    make(study, "dicoms/P1/3.dcm")  # a file no build reads, but the listing changed
    assert fingerprint(study) != before
