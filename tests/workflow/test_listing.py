"""A study's folder listing: what its digest notices, which files a build reads, and pairing
from it (the same problems as before for hidden files, odd entries and links leading out)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from workflow_scripts.raw.links import StudyLink
from workflow_scripts.raw.listing import FILE, NOT_FILE, OUTSIDE, list_study, read_file_stats
from workflow_scripts.raw.pairing import pair_listing

LINK = StudyLink("S1", "O1")
ICONTOUR = "IM-0001-{:04d}-icontour-manual.txt"


@pytest.fixture
def data_dir(tmp_path) -> Path:
    root = tmp_path / "data"
    dicoms = root / "dicoms" / "S1"
    contours = root / "contourfiles" / "O1" / "i-contours"
    dicoms.mkdir(parents=True)
    contours.mkdir(parents=True)
    for n in (1, 2, 3):
        (dicoms / f"{n}.dcm").write_bytes(b"dicom")
    for n in (2, 7):  # slice 7 has no DICOM
        (contours / ICONTOUR.format(n)).write_text("1 1\n2 2\n1 2\n")
    return root


def digest(data_dir: Path) -> str:
    return list_study(LINK, data_dir, ("i",)).digest()


def test_files_read_are_the_contours_and_the_dicoms_of_their_slices(data_dir):
    listing = list_study(LINK, data_dir, ("i",))
    assert listing.files_read() == [
        f"contourfiles/O1/i-contours/{ICONTOUR.format(2)}",
        f"contourfiles/O1/i-contours/{ICONTOUR.format(7)}",
        "dicoms/S1/2.dcm",
    ]
    assert listing.dicoms == (("1.dcm", FILE), ("2.dcm", FILE), ("3.dcm", FILE))


@pytest.mark.parametrize(
    "change",
    [
        lambda d: (d / "dicoms/S1/4.dcm").write_bytes(b"new"),
        lambda d: (d / "dicoms/S1/3.dcm").unlink(),
        lambda d: (d / "dicoms/S1/3.dcm").rename(d / "dicoms/S1/03.dcm"),
        lambda d: ((d / "dicoms/S1/3.dcm").unlink(), (d / "dicoms/S1/3.dcm").mkdir()),
        lambda d: (d / "contourfiles/O1/i-contours" / ICONTOUR.format(3)).write_text("1 1"),
        lambda d: (d / "contourfiles/O1/i-contours/._x").write_text(""),
    ],
    ids=["added", "removed", "renamed", "file-became-folder", "contour-added", "hidden-added"],
)
def test_listing_digest_changes_when_files_are_added_removed_renamed_or_replaced(data_dir, change):
    before = digest(data_dir)
    change(data_dir)
    assert digest(data_dir) != before


def test_listing_digest_ignores_contents_and_times(data_dir):
    before = digest(data_dir)
    (data_dir / "dicoms/S1/2.dcm").write_bytes(b"other content, longer")
    later = time.time_ns() + 10**9
    os.utime(data_dir / "dicoms/S1/1.dcm", ns=(later, later))
    assert digest(data_dir) == before


def test_file_stats_are_size_and_mtime_and_skip_missing_files(data_dir):
    os.utime(data_dir / "dicoms/S1/1.dcm", ns=(5, 1_234_567_891))
    stats = read_file_stats(data_dir, ["dicoms/S1/1.dcm", "dicoms/S1/9.dcm"])
    assert stats == {"dicoms/S1/1.dcm": (5, 1_234_567_891)}


def test_pairing_from_a_listing_records_odd_entries(data_dir, tmp_path):
    dicoms = data_dir / "dicoms/S1"
    (dicoms / "._2.dcm").write_bytes(b"")
    (dicoms / "sub").mkdir()
    (dicoms / "notes.txt").write_text("")
    outside = tmp_path / "outside.dcm"
    outside.write_bytes(b"x")
    (dicoms / "5.dcm").symlink_to(outside)
    (dicoms / "6.dcm").symlink_to(dicoms / "1.dcm")  # inside: an ordinary file
    listing = list_study(LINK, data_dir, ("i",))
    kinds = dict(listing.dicoms)
    assert (kinds["5.dcm"], kinds["6.dcm"], kinds["sub"]) == (OUTSIDE, FILE, NOT_FILE)
    pairing = pair_listing(listing)
    problems = {(p.code, p.path) for p in pairing.problems}
    assert problems == {
        ("hidden_file", "dicoms/S1/._2.dcm"),
        ("file_name_unrecognized", "dicoms/S1/sub"),
        ("file_name_unrecognized", "dicoms/S1/notes.txt"),
        ("path_outside_data_dir", "dicoms/S1/5.dcm"),
    }
    by_slice = {pair.slice: pair for pair in pairing.slices}
    assert sorted(by_slice) == [1, 2, 3, 6, 7]
    assert by_slice[2].contours == {"i": f"contourfiles/O1/i-contours/{ICONTOUR.format(2)}"}
    assert by_slice[7].dicom is None


def test_a_study_folder_linked_from_outside_is_refused(data_dir, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    (data_dir / "dicoms/S1").rename(elsewhere)
    (data_dir / "dicoms/S1").symlink_to(elsewhere)
    listing = list_study(LINK, data_dir, ("i",))
    assert listing.dicoms == OUTSIDE
    assert listing.files_read() == [
        f"contourfiles/O1/i-contours/{ICONTOUR.format(n)}" for n in (2, 7)
    ]
    problems = [(p.code, p.path) for p in pair_listing(listing).problems]
    assert problems == [("path_outside_data_dir", "dicoms/S1")]


def test_a_missing_study_and_missing_contours_are_recorded(data_dir):
    missing = pair_listing(list_study(StudyLink("S9", "O1"), data_dir, ("i",)))
    assert [(p.code, p.path) for p in missing.problems] == [("study_missing", "dicoms/S9")]
    unlabelled = pair_listing(list_study(StudyLink("S1", "O9"), data_dir, ("i",)))
    assert [(p.code, p.path) for p in unlabelled.problems] == [
        ("study_contours_missing", "contourfiles/O9")
    ]
