"""A study's folder listing: what its digest notices, which files a build reads, and pairing
from it (the same problems as before for hidden files, odd entries and links leading out)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from workflow_scripts.raw.links import StudyLink
from workflow_scripts.raw.listing import (
    BROKEN,
    FILE,
    LOOP,
    NOT_FILE,
    OUTSIDE,
    WRONG_TYPE,
    list_study,
    open_input,
    read_file_stats,
)
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


def test_files_read_are_the_contours_and_every_dicom(data_dir):
    # every DICOM: the labelled ones for their pixels, all for their place in the cine
    listing = list_study(LINK, data_dir, ("i",))
    assert listing.files_read() == [
        f"contourfiles/O1/i-contours/{ICONTOUR.format(2)}",
        f"contourfiles/O1/i-contours/{ICONTOUR.format(7)}",
        "dicoms/S1/1.dcm",
        "dicoms/S1/2.dcm",
        "dicoms/S1/3.dcm",
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
    listing = list_study(LINK, data_dir, ("i",), follow_symlinks=False)
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


def test_with_follow_symlinks_false_a_study_folder_linked_from_outside_is_refused(
    data_dir, tmp_path
):
    elsewhere = tmp_path / "elsewhere"
    (data_dir / "dicoms/S1").rename(elsewhere)
    (data_dir / "dicoms/S1").symlink_to(elsewhere)
    listing = list_study(LINK, data_dir, ("i",), follow_symlinks=False)
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


# Symbolic links (config follow_symlinks): followed wherever they lead by default, only inside
# the data folder with follow_symlinks false; links that cannot be followed are their own kinds
# in both modes, each a problem code.


def test_listing_digests_of_folders_without_such_links_are_as_before(data_dir):
    """Digests recorded by finished versions must not change: these were computed by the
    listing as it was before follow_symlinks existed, on the same folders."""
    (data_dir / "dicoms/S1/sub").mkdir()
    (data_dir / "dicoms/S1/6.dcm").symlink_to(data_dir / "dicoms/S1/1.dcm")
    before = "a3cbc9e5bfe4bd10b009490f0762b76cc749c9c6e5590b9a5de31fef202a98d8"
    missing = "d8436c4b5bf250874620ef349cee767820399b3aee698da99f30d10d40ba649a"
    for follow in (True, False):
        assert list_study(LINK, data_dir, ("i", "o"), follow).digest() == before
        assert list_study(StudyLink("S9", "O9"), data_dir, ("i", "o"), follow).digest() == missing


@pytest.fixture
def archive(tmp_path) -> Path:
    """Files outside the data folder that its links lead to."""
    root = tmp_path / "archive"
    (root / "S1").mkdir(parents=True)
    (root / "S1" / "4.dcm").write_bytes(b"dicom 4")
    (root / "contour.txt").write_text("1 1\n2 2\n1 2\n")
    return root


def link_kinds(data_dir: Path, follow: bool) -> dict[str, str]:
    listing = list_study(LINK, data_dir, ("i",), follow)
    kinds = dict(listing.dicoms)
    kinds.update(dict(listing.contours["i"]))
    return kinds


def test_each_kind_of_link_is_told_apart_in_both_modes(data_dir, archive):
    dicoms, contours = data_dir / "dicoms/S1", data_dir / "contourfiles/O1/i-contours"
    (dicoms / "4.dcm").symlink_to(archive / "S1" / "4.dcm")  # out, to a file
    (dicoms / "5.dcm").symlink_to(dicoms / "1.dcm")  # inside, to a file
    (dicoms / "6.dcm").symlink_to(archive / "gone.dcm")  # out, to nothing
    (dicoms / "7.dcm").symlink_to(dicoms / "nothing.dcm")  # inside, to nothing
    (dicoms / "8.dcm").symlink_to(dicoms / "9.dcm")  # 8 -> 9 -> 8
    (dicoms / "9.dcm").symlink_to(dicoms / "8.dcm")
    (dicoms / "10.dcm").symlink_to(dicoms / "10.dcm")  # itself
    (dicoms / "11.dcm").symlink_to(data_dir / "dicoms")  # a folder holding the link
    (dicoms / "12.dcm").symlink_to(data_dir / "contourfiles")  # a folder, not holding it
    (dicoms / "13.dcm").symlink_to(archive / "S1")  # a folder outside
    os.mkfifo(data_dir / "fifo")
    (dicoms / "14.dcm").symlink_to(data_dir / "fifo")  # a fifo
    (contours / ICONTOUR.format(8)).symlink_to(archive / "contour.txt")
    (contours / ICONTOUR.format(9)).symlink_to(contours / "none.txt")
    expected = {
        "4.dcm": FILE,
        "5.dcm": FILE,
        "6.dcm": BROKEN,
        "7.dcm": BROKEN,
        "8.dcm": LOOP,
        "9.dcm": LOOP,
        "10.dcm": LOOP,
        "11.dcm": LOOP,
        "12.dcm": WRONG_TYPE,
        "13.dcm": WRONG_TYPE,
        "14.dcm": WRONG_TYPE,
        ICONTOUR.format(8): FILE,
        ICONTOUR.format(9): BROKEN,
    }
    followed = link_kinds(data_dir, follow=True)
    assert {name: followed[name] for name in expected} == expected
    # follow_symlinks false: what leads out is refused first, whether it exists or not
    outside = {"4.dcm", "6.dcm", "13.dcm", ICONTOUR.format(8)}
    strict = link_kinds(data_dir, follow=False)
    assert {name: strict[name] for name in expected} == {
        name: OUTSIDE if name in outside else kind for name, kind in expected.items()
    }


def test_links_that_cannot_be_followed_are_error_rows_accounting_for_contours(data_dir):
    dicoms, contours = data_dir / "dicoms/S1", data_dir / "contourfiles/O1/i-contours"
    (dicoms / "4.dcm").symlink_to(dicoms / "gone.dcm")
    (dicoms / "5.dcm").symlink_to(dicoms / "5.dcm")
    (dicoms / "6.dcm").symlink_to(data_dir / "dicoms")
    loop = contours / ICONTOUR.format(3)
    loop.symlink_to(loop)
    (contours / ICONTOUR.format(4)).symlink_to(data_dir / "dicoms")
    (contours / ICONTOUR.format(5)).symlink_to(contours / "gone.txt")
    pairing = pair_listing(list_study(LINK, data_dir, ("i",)))
    rows = {(p.code, p.path, p.contour, p.severity) for p in pairing.problems}
    folder = "contourfiles/O1/i-contours"
    assert rows == {
        ("link_broken", "dicoms/S1/4.dcm", None, "error"),
        ("link_loop", "dicoms/S1/5.dcm", None, "error"),
        ("link_loop", "dicoms/S1/6.dcm", None, "error"),
        *(
            (code, f"{folder}/{ICONTOUR.format(n)}", f"{folder}/{ICONTOUR.format(n)}", "error")
            for code, n in [("link_loop", 3), ("link_wrong_type", 4), ("link_broken", 5)]
        ),
    }
    assert sorted(pair.slice for pair in pairing.slices) == [1, 2, 3, 7]
    assert {p.slice: p.contours for p in pairing.slices}[3] == {}  # DICOM 3 only


@pytest.mark.parametrize(
    ("target", "kind", "code"),
    [
        ("archive/nowhere", BROKEN, "link_broken"),
        ("data/dicoms/S1", LOOP, "link_loop"),
        ("data/dicoms", LOOP, "link_loop"),
        ("archive/contour.txt", WRONG_TYPE, "link_wrong_type"),
    ],
    ids=["broken", "itself", "its-parent", "to-a-file"],
)
def test_a_study_folder_link_that_cannot_be_followed_is_one_row(
    data_dir, archive, tmp_path, target, kind, code
):
    shutil.rmtree(data_dir / "dicoms/S1")
    (data_dir / "dicoms/S1").symlink_to(tmp_path / target)
    listing = list_study(LINK, data_dir, ("i",))
    assert listing.dicoms == kind
    problems = [(p.code, p.path) for p in pair_listing(listing).problems]
    assert problems == [(code, "dicoms/S1")]  # not also study_missing
    # follow_symlinks false: a link leading out is refused as such, whatever it leads to
    strict = list_study(LINK, data_dir, ("i",), follow_symlinks=False)
    assert strict.dicoms == (OUTSIDE if target.startswith("archive/") else kind)


def test_a_contour_folder_link_that_cannot_be_followed_is_one_row(data_dir, archive):
    shutil.rmtree(data_dir / "contourfiles/O1")
    (data_dir / "contourfiles/O1").symlink_to(data_dir / "contourfiles/O1")
    listing = list_study(LINK, data_dir, ("i", "o"))
    assert (listing.contour_root, listing.contours) == (LOOP, {"i": None, "o": None})
    assert listing.files_read() == []
    problems = [(p.code, p.path) for p in pair_listing(listing).problems]
    assert problems == [("link_loop", "contourfiles/O1")]  # not study_contours_missing
    (data_dir / "contourfiles/O1").unlink()
    (data_dir / "contourfiles/O1").symlink_to(archive / "nowhere")
    problems = [(p.code, p.path) for p in pair_listing(list_study(LINK, data_dir, ("i",))).problems]
    assert problems == [("link_broken", "contourfiles/O1")]


def test_a_top_folder_link_that_leads_nowhere_gives_each_study_a_row(data_dir, tmp_path):
    (data_dir / "dicoms").rename(tmp_path / "moved")
    (data_dir / "dicoms").symlink_to(tmp_path / "gone")
    problems = [(p.code, p.path) for p in pair_listing(list_study(LINK, data_dir, ("i",))).problems]
    assert problems == [("link_broken", "dicoms/S1")]


def test_a_study_reached_through_links_lists_like_its_copy_and_reads_their_targets(
    data_dir, tmp_path
):
    copy = tmp_path / "copy"
    shutil.copytree(data_dir, copy)
    before = list_study(LINK, copy, ("i",)).digest()
    # DICOM folder linked as a whole, one contour file linked
    (data_dir / "dicoms/S1").rename(tmp_path / "S1")
    (data_dir / "dicoms/S1").symlink_to(tmp_path / "S1")
    contour = data_dir / "contourfiles/O1/i-contours" / ICONTOUR.format(2)
    contour.rename(tmp_path / "c2.txt")
    contour.symlink_to(tmp_path / "c2.txt")
    assert list_study(LINK, data_dir, ("i",)).digest() == before
    assert open_input(data_dir, "dicoms/S1/2.dcm") == (
        str((tmp_path / "S1/2.dcm").resolve()),
        str((tmp_path / "S1/2.dcm").resolve()),
    )
    relpath = f"contourfiles/O1/i-contours/{ICONTOUR.format(2)}"
    assert open_input(data_dir, relpath)[1] == str((tmp_path / "c2.txt").resolve())
    unlinked = f"contourfiles/O1/i-contours/{ICONTOUR.format(7)}"
    assert open_input(data_dir, unlinked) == (str((data_dir / unlinked).resolve()), None)
    inside = data_dir / "contourfiles/O1/i-contours" / ICONTOUR.format(9)
    inside.symlink_to(ICONTOUR.format(7))  # inside: where it leads, relative to the data folder
    assert open_input(data_dir, inside.relative_to(data_dir).as_posix())[1] == unlinked
    # the data folder itself reached through a link is not a link inside it
    (tmp_path / "data-link").symlink_to(data_dir)
    assert open_input(tmp_path / "data-link", unlinked)[1] is None


def test_file_stats_by_folder_equal_os_stat_by_path(tmp_path):
    """read_file_stats stats each file relative to its opened folder: the same (size, time)
    as os.stat of the path, through links to files and folders; what cannot be stat'ed
    (missing, a broken link, a folder that is missing or a file) is left out."""
    root = tmp_path / "data"
    (root / "a").mkdir(parents=True)
    (root / "elsewhere").mkdir()
    (root / "a" / "1.dcm").write_bytes(b"x" * 3)
    (root / "a" / "2.dcm").write_bytes(b"y" * 5)
    (root / "elsewhere" / "3.dcm").write_bytes(b"z" * 7)
    (root / "a" / "link.dcm").symlink_to(root / "elsewhere" / "3.dcm")
    (root / "a" / "broken.dcm").symlink_to(root / "nowhere.dcm")
    (root / "b").symlink_to(root / "elsewhere", target_is_directory=True)
    (root / "top.csv").write_text("t")
    relpaths = [
        "a/1.dcm", "a/2.dcm", "a/broken.dcm", "a/gone.dcm", "a/link.dcm", "b/3.dcm",
        "missing/4.dcm", "top.csv", "top.csv/5.dcm",
    ]  # fmt: skip
    expected = {}
    for relpath in relpaths:
        try:
            status = os.stat(root / relpath)
        except OSError:
            continue
        expected[relpath] = (status.st_size, status.st_mtime_ns)
    (root / "a" / "folder.dcm").mkdir()  # a folder where a file was: not a file, left out
    relpaths.insert(3, "a/folder.dcm")
    assert set(expected) == {"a/1.dcm", "a/2.dcm", "a/link.dcm", "b/3.dcm", "top.csv"}
    assert read_file_stats(root, relpaths) == expected
    assert read_file_stats(root, relpaths)["a/link.dcm"][0] == 7
