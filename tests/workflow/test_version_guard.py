"""A finished version is never rebuilt differently: every kind of change, and what passes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pydicom
import pytest

from build_helpers import (
    build_by_calls,
    build_studies,
    change_first_digit,
    copy_build,
    finished_phantom_build,
    phantom,
)
from workflow_scripts.config import default_config
from workflow_scripts.dataset.tables import find_unlisted_studies
from workflow_scripts.dataset.version_guard import (
    VersionChangedError,
    check_finished_version,
    forced_rerun_refusal,
    refuse_missing_kept_files,
)
from workflow_scripts.layout import Layout
from workflow_scripts.raw.links import StudyLink, read_link_table
from workflow_scripts.raw.listing import list_study
from workflow_scripts.raw.phantom import PhantomSpec

VERSION = "4.2"


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished version of two phantom studies (4 slices of 32 x 32, the phantom's faults:
    study 1 has a contour without DICOM, study 2 a truncated DICOM under a contour)."""
    return finished_phantom_build(tmp_path_factory.mktemp("finished"), VERSION)


@pytest.fixture
def build(finished, tmp_path) -> SimpleNamespace:
    """A copy of the finished build (times kept) that a test may change."""
    return copy_build(finished, tmp_path)


def check(build, **overrides) -> None:
    overrides = {"version": VERSION, **overrides}
    config = default_config(data_dir=str(build.raw), out_dir=str(build.out), **overrides)
    links = read_link_table(build.raw / "link.csv")
    check_finished_version(Layout.from_config(config), config, links)


def refusal(build, **overrides) -> str:
    with pytest.raises(VersionChangedError) as raised:
        check(build, **overrides)
    return str(raised.value)


def touch(path: Path) -> None:
    later = path.stat().st_mtime_ns + 5_000_000_000
    os.utime(path, ns=(later, later))


I4 = "contourfiles/PH-HF-1/i-contours/IM-0001-0004-icontour-manual.txt"


def test_an_unchanged_version_passes_even_from_a_moved_data_folder(build, finished):
    assert build.raw != finished / "raw"  # data_dir and out_dir are only locations
    check(build)


def test_a_version_without_manifest_is_not_finished_and_passes(build):
    (build.out / VERSION / "manifest.json").unlink()
    (build.raw / "link.csv").write_text("patient_id,original_id\nX,Y\n")
    check(build, contours=["i", "o"])


def test_another_version_name_is_a_new_build(build):
    check(build, version="2.0.0", contours=["i", "o"])


def test_a_config_change_is_refused_naming_the_key_and_only_the_key(build):
    message = refusal(build, contours=["i", "o"])
    assert f"version '{VERSION}' in {build.out} is finished" in message
    assert "config contours: ['i'] -> ['i', 'o']" in message
    # listed as the finished build listed them, the o-contours are no file change
    assert "study(ies)" not in message and "input file(s)" not in message
    assert "build a new one (e.g. --config version=X)" in message
    assert f"delete {build.out / VERSION}" in message


def test_several_config_changes_are_each_named(build):
    message = refusal(build, split_seed=3, qc={"sheet_columns": 2})
    assert "config qc: " in message and "'sheet_columns': 2" in message
    assert "config split_seed: 0 -> 3" in message
    assert message.index("config qc") < message.index("config split_seed")


def test_a_changed_input_is_refused_naming_the_file(build):
    contour = build.raw / I4
    contour.write_text(contour.read_text().replace(".50", ".00", 1))
    message = refusal(build)
    assert f"1 input file(s) changed or missing: {I4}" in message
    assert "study(ies)" not in message


def test_same_size_new_content_is_found_by_its_digest(build):
    contour = build.raw / I4
    change_first_digit(contour)
    touch(contour)
    assert f"1 input file(s) changed or missing: {I4}" in refusal(build)


def test_a_touched_but_identical_input_passes(build):
    touch(build.raw / I4)
    touch(build.raw / "dicoms" / "PHANTOM0001" / "4.dcm")
    touch(build.raw / "link.csv")
    check(build)


def test_a_deleted_input_is_refused_as_missing_and_as_a_listing_change(build):
    (build.raw / "dicoms" / "PHANTOM0001" / "2.dcm").unlink()
    message = refusal(build)
    assert "1 input file(s) changed or missing: dicoms/PHANTOM0001/2.dcm" in message
    assert "1 study(ies) with files added, removed or renamed: PHANTOM0001" in message


def test_a_changed_link_table_is_refused(build):
    with open(build.raw / "link.csv", "a") as link:
        link.write("PHANTOM0009,PH-HF-9\n")
    message = refusal(build)
    assert "1 input file(s) changed or missing: link.csv" in message
    assert "1 study(ies) with files added, removed or renamed: PHANTOM0009" in message


@pytest.mark.parametrize(
    "change",
    [
        lambda raw: shutil.copy(
            raw / "dicoms/PHANTOM0001/1.dcm", raw / "dicoms/PHANTOM0001/99.dcm"
        ),
        lambda raw: (raw / "dicoms/PHANTOM0001/3.dcm").rename(raw / "dicoms/PHANTOM0001/5.dcm"),
        lambda raw: (raw / "dicoms/PHANTOM0001/._1.dcm").write_bytes(b"\0\5\26\7"),
        lambda raw: (raw / "contourfiles/PH-HF-1/i-contours/notes.txt").write_text("x"),
    ],
    ids=["dicom added", "dicom renamed", "hidden file added", "stray contour file"],
)
def test_files_added_or_renamed_in_a_study_are_refused(build, change, request):
    change(build.raw)
    message = refusal(build)
    assert "1 study(ies) with files added, removed or renamed: PHANTOM0001" in message
    # every DICOM is an input (read for the cine): the renamed one is also a missing input
    renamed = request.node.callspec.id == "dicom renamed"
    assert ("input file(s)" in message) == renamed


@pytest.mark.parametrize("top", ["dicoms", "contourfiles"])
def test_an_added_study_folder_is_refused(build, top):
    (build.raw / top / "NEWSTUDY").mkdir()
    message = refusal(build)
    assert f"1 study folder(s) added: {top}/NEWSTUDY" in message


def test_a_removed_study_folder_is_named(build):
    (build.raw / "contourfiles" / "PH-HF-2").rename(build.raw / "PH-HF-2")
    message = refusal(build)
    assert "1 study folder(s) removed: contourfiles/PH-HF-2" in message


def test_many_changed_files_are_counted_and_the_first_five_named(build):
    # every input that fed a sample (slices 2 and 4 of study 1, 2 of study 2) and link.csv
    changed = [
        "contourfiles/PH-HF-1/i-contours/IM-0001-0002-icontour-manual.txt",
        "contourfiles/PH-HF-1/i-contours/IM-0001-0004-icontour-manual.txt",
        "contourfiles/PH-HF-2/i-contours/IM-0001-0002-icontour-manual.txt",
        "dicoms/PHANTOM0001/2.dcm",
        "dicoms/PHANTOM0001/4.dcm",
        "dicoms/PHANTOM0002/2.dcm",
        "link.csv",
    ]
    for relpath in changed:
        path = build.raw / relpath
        path.write_bytes(path.read_bytes() + b"\n")
    message = refusal(build)
    assert f"7 input file(s) changed or missing: {', '.join(changed[:5])} and 2 more" in message


def test_the_studies_are_listed_with_the_contour_kinds_and_link_rule_the_version_was_built_with(
    build,
):
    config = default_config(
        data_dir=str(build.raw),
        out_dir=str(build.out),
        version=VERSION,
        contours=["i", "o"],
        follow_symlinks=False,
    )
    links = read_link_table(build.raw / "link.csv")
    calls = []

    def list_files(link, kinds, follow):
        calls.append((link.patient_id, kinds, follow))
        return list_study(link, build.raw, kinds, follow)

    with pytest.raises(VersionChangedError) as raised:
        check_finished_version(Layout.from_config(config), config, links, list_files)
    assert calls == [(link.patient_id, ("i",), True) for link in links]
    assert "config follow_symlinks: True -> False" in str(raised.value)


def test_a_fixed_unreadable_dicom_is_refused(build):
    dicoms = build.raw / "dicoms" / "PHANTOM0002"
    fixed = pydicom.dcmread(dicoms / "2.dcm")
    fixed.InstanceNumber = 4
    fixed.save_as(dicoms / "4.dcm")  # the truncated DICOM, now readable
    rebuilt = build_studies(build.raw, build.out.parent / "rebuild")
    assert 4 in [row["slice"] for row in rebuilt.records["PHANTOM0002"]["samples"]]
    assert "dicoms/PHANTOM0002/4.dcm" in refusal(build)


def test_a_contour_file_added_to_an_unlisted_study_folder_is_refused(tmp_path):
    raw = phantom(tmp_path / "raw", studies=1, slices=2, size=32, faults=False)
    stray = raw / "contourfiles" / "PH-STRAY" / "i-contours"
    stray.mkdir(parents=True)
    (stray / "IM-0001-0001-icontour-manual.txt").write_text("1 1\n5 1\n5 5\n")
    config = default_config(data_dir=str(raw), out_dir=str(tmp_path / "out"), version=VERSION)
    build_by_calls(config)
    build = SimpleNamespace(raw=raw, out=tmp_path / "out")
    check(build)  # finished, and unchanged so far
    (stray / "IM-0001-0002-icontour-manual.txt").write_text("1 1\n5 1\n5 5\n")
    links = read_link_table(raw / "link.csv")
    assert len(find_unlisted_studies(raw, links, ("i",))) == 2  # a rebuild's rows: one more
    message = refusal(build)
    assert (
        "1 unlisted contour folder(s) with files added or removed: contourfiles/PH-STRAY" in message
    )


PHANTOM = {"studies": 2, "slices": 4, "size": 32}


@pytest.fixture(scope="module")
def finished_phantom(tmp_path_factory) -> Path:
    """A finished build of a small phantom (generated in the work folder, as the rule does)."""
    out = tmp_path_factory.mktemp("phantom") / "out"
    build_by_calls(default_config(out_dir=str(out), phantom=PHANTOM))
    return out


@pytest.fixture
def phantom_build(finished_phantom, tmp_path) -> dict:
    """A copy of the finished phantom build (times kept) that a test may change; its config."""
    shutil.copytree(finished_phantom, tmp_path / "out", symlinks=True)
    return default_config(out_dir=str(tmp_path / "out"), phantom=PHANTOM)


def check_phantom(config, **phantom_changes) -> None:
    """The guard as plan_build runs it for a phantom build, ``phantom`` settings changed."""
    config = default_config(
        out_dir=config["out_dir"], phantom={**config["phantom"], **phantom_changes}
    )
    spec = PhantomSpec(**config["phantom"])
    links = [StudyLink(p, o, line) for line, (p, o) in enumerate(spec.study_ids(), start=2)]
    check_finished_version(Layout.from_config(config), config, links)


def test_a_deleted_phantom_passes_it_is_regenerated_from_its_config(phantom_build):
    layout = Layout.from_config(phantom_build)
    shutil.rmtree(layout.data_dir)
    check_phantom(phantom_build)


def test_a_deleted_phantom_with_other_settings_is_refused(phantom_build):
    shutil.rmtree(Layout.from_config(phantom_build).data_dir)
    with pytest.raises(VersionChangedError, match="config phantom: "):
        check_phantom(phantom_build, seed=1)


def test_a_changed_phantom_file_is_refused(phantom_build):
    layout = Layout.from_config(phantom_build)
    contour = next(layout.data_dir.glob("contourfiles/PH-HF-1/i-contours/*0002*"))
    contour.write_text(contour.read_text() + "\n")
    with pytest.raises(VersionChangedError, match="1 input file"):
        check_phantom(phantom_build)


def test_missing_files_of_a_finished_build_are_refused_naming_the_first_few(tmp_path):
    layout = Layout.from_config(default_config(out_dir=str(tmp_path / "out")))
    kept = [tmp_path / f"batch-{n}.json" for n in range(7)]
    for path in kept[:1]:
        path.write_text("{}")
    refuse_missing_kept_files(layout, [str(kept[0])])  # all there: nothing to refuse
    with pytest.raises(VersionChangedError) as refused:
        refuse_missing_kept_files(layout, [str(path) for path in kept])
    message = str(refused.value)
    assert message.startswith(f"version '1.0.0' in {tmp_path / 'out'} is finished")
    assert all(str(path) in message for path in kept[1:6])
    assert str(kept[6]) not in message and "and 1 more" in message
    assert "never rewritten" in forced_rerun_refusal(layout)
