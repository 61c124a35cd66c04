"""Symbolic links inside the data folder (issue 12, config ``follow_symlinks``).

A data folder whose files and study folders are links into an archive elsewhere, built by the
workflow's own functions: by default it gives the very bytes its archive gives, and the manifest
says where each linked input was read from; with ``follow_symlinks: false`` the links leading out
are refused as before; links that lead nowhere or into a loop are error rows. The parse-time
checks (job fingerprints, the immutability check) stat through the links.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from build_helpers import build_by_calls, phantom, sha256, tree_digests
from conftest import run_workflow
from dataset_checks import check_accounting, check_samples_match_raw
from loader.manifest import read_whole_manifest
from workflow_scripts.build_plan import plan_build
from workflow_scripts.config import default_config
from workflow_scripts.raw.listing import list_study
from workflow_scripts.raw.phantom import PhantomSpec

STUDIES = 4
SAMPLES = STUDIES * 4 - 1  # 4 contoured slices each, less the phantom's truncated DICOM
S1, S2, S3, S4 = (f"PHANTOM{n:04d}" for n in range(1, 5))
O1, O2, O3, O4 = (f"PH-HF-{n}" for n in range(1, 5))


def tree_state(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (links not followed): a link's target, a file's digest and
    modification time, a folder's presence."""
    state = {}
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if path.is_symlink():
            state[name] = ("link", os.readlink(path))
        elif path.is_file():
            state[name] = ("file", sha256(path), path.stat().st_mtime_ns)
        else:
            state[name] = ("folder",)
    return state


def link_into(archive: Path, data: Path) -> dict[str, Path]:
    """Make ``data`` a copy of ``archive`` in which these lead into the archive by symbolic
    links: every file of dicoms/S1 (absolute links), every other i-contour of O1 (relative
    links), and the whole study folders dicoms/S2 and contourfiles/O2. The rest is copied,
    modification times kept. Returns each link's path in ``data`` -> what it leads to."""
    shutil.copytree(archive, data)
    links = {}

    def link(relpath: str, relative: bool = False) -> None:
        path, target = data / relpath, archive / relpath
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
        path.symlink_to(os.path.relpath(target, path.parent) if relative else target)
        links[relpath] = target

    for path in sorted((archive / "dicoms" / S1).iterdir()):
        link(f"dicoms/{S1}/{path.name}")
    for path in sorted((archive / "contourfiles" / O1 / "i-contours").iterdir())[::2]:
        link(f"contourfiles/{O1}/i-contours/{path.name}", relative=True)
    link(f"dicoms/{S2}")
    link(f"contourfiles/{O2}")
    return links


def expected_target(links: dict[str, Path], relpath: str) -> str | None:
    """Where an input at ``relpath`` of the linked folder is read from (None: not linked)."""
    for link, target in links.items():
        if relpath == link or relpath.startswith(link + "/"):
            return str((target / relpath[len(link) + 1 :]).resolve())
    return None


@pytest.fixture(scope="module")
def archive_build(tmp_path_factory):
    """A phantom archive (with its faults), built as it is: the reference."""
    root = tmp_path_factory.mktemp("links")
    archive = phantom(root / "archive", studies=STUDIES, slices=8, size=64)
    build_by_calls(default_config(data_dir=str(archive), out_dir=str(root / "reference")))
    return root, archive


@pytest.fixture(scope="module")
def linked_build(archive_build):
    """The linked data folder, built with the default (links followed) and with
    follow_symlinks false; the archive's and the data folder's state taken before."""
    root, archive = archive_build
    data = root / "data"
    links = link_into(archive, data)
    before = {"archive": tree_state(archive), "data": tree_state(data)}
    for name, follow in (("followed", True), ("strict", False)):
        config = default_config(
            data_dir=str(data), out_dir=str(root / name), follow_symlinks=follow
        )
        build_by_calls(config)
    return root, archive, data, links, before


def manifest(root: Path, out: str) -> dict:
    return read_whole_manifest(root / out / "1.0.0" / "manifest.json")


def test_a_linked_data_folder_builds_the_same_bytes_as_its_archive(linked_build):
    root, archive, data, _, _ = linked_build
    built, reference = root / "followed" / "1.0.0", root / "reference" / "1.0.0"
    digests = tree_digests(built)
    assert sum(name.endswith(".npz") for name in digests) == SAMPLES
    assert digests == tree_digests(reference)
    assert check_samples_match_raw(archive, built) == SAMPLES
    check_accounting(data, built, follow_links=True)


def test_the_manifest_records_where_each_linked_input_was_read_from(linked_build):
    root, _, _, links, _ = linked_build
    inputs, reference = manifest(root, "followed")["inputs"], manifest(root, "reference")["inputs"]
    assert inputs.keys() == reference.keys()
    targets = {}
    for relpath, entry in inputs.items():
        assert {k: entry[k] for k in ("sha256", "size")} == {
            k: reference[relpath][k] for k in ("sha256", "size")
        }
        if "link_target" in entry:
            targets[relpath] = entry["link_target"]
    expected = {
        relpath: expected_target(links, relpath)
        for relpath in inputs
        if expected_target(links, relpath) is not None
    }
    assert targets == expected
    # each kind of link is among them: a linked file, a file in a linked folder, relative links
    assert {path.split("/")[1] for path in targets} == {S1, S2, O1, O2}
    assert manifest(root, "followed")["build_config"]["follow_symlinks"] is True


def test_with_follow_symlinks_false_the_links_leading_out_are_refused_as_before(linked_build):
    root, _, data, links, _ = linked_build
    validation = pd.read_parquet(root / "strict" / "1.0.0" / "validation.parquet")
    refused = validation[validation["code"] == "path_outside_data_dir"]
    i_folder = f"contourfiles/{O2}/i-contours"  # a linked contour folder: a row per kind
    expected = {
        name
        for name in links
        if name != f"contourfiles/{O2}" and not Path(name).name.startswith(".")
    } | {i_folder}
    assert set(refused["path"]) == expected
    assert (refused["severity"] == "error").all()
    # a refused link in a contour folder is accounted for as a contour file
    contours = refused[refused["path"].str.contains("-contours/")]
    assert list(contours["contour"]) == list(contours["path"])
    index = pd.read_parquet(root / "strict" / "1.0.0" / "index.parquet")
    assert set(index["study_id"]) == {S3, S4}  # S1's DICOMs and all of S2 lie outside
    check_accounting(data, root / "strict" / "1.0.0")
    inputs = manifest(root, "strict")["inputs"]
    assert not any("link_target" in entry for entry in inputs.values())
    assert manifest(root, "strict")["build_config"]["follow_symlinks"] is False


def test_building_through_links_writes_nothing_outside_out_dir(linked_build):
    _, archive, data, _, before = linked_build
    assert tree_state(archive) == before["archive"]
    assert tree_state(data) == before["data"]


def test_the_parse_time_checks_stat_through_links(linked_build):
    root, archive, data, _, _ = linked_build
    linked = plan_build(default_config(data_dir=str(data), out_dir=str(root / "followed")))
    copy = plan_build(default_config(data_dir=str(archive), out_dir=str(root / "reference")))
    # the same names, kinds, sizes and times through the links as in the archive: the same jobs
    assert linked.batches == copy.batches
    for batch in linked.batches:
        assert linked.batch_fingerprint(batch) == copy.batch_fingerprint(batch)
    strict = plan_build(
        default_config(data_dir=str(data), out_dir=str(root / "strict"), follow_symlinks=False)
    )
    assert [strict.fingerprint(s) for s in (S1, S2)] != [linked.fingerprint(s) for s in (S1, S2)]
    assert [strict.fingerprint(s) for s in (S3, S4)] == [linked.fingerprint(s) for s in (S3, S4)]


@pytest.fixture
def finished_linked(tmp_path):
    """A finished version of a linked data folder (its own copies: a test may change them)."""
    archive = phantom(tmp_path / "archive", studies=2, slices=6, size=32)
    data = tmp_path / "data"
    links = link_into(archive, data)
    config = default_config(data_dir=str(data), out_dir=str(tmp_path / "out"))
    build_by_calls(config)
    return archive, data, links, config


def refusal(config: dict) -> str:
    with pytest.raises(Exception) as raised:  # snakemake's WorkflowError
        plan_build(config)
    assert type(raised.value).__name__ == "WorkflowError"
    return str(raised.value)


def test_a_finished_linked_version_passes_and_refuses_a_change_behind_a_link(finished_linked):
    archive, _, _, config = finished_linked
    plan_build(config)  # unchanged: passes
    target = archive / "dicoms" / S1 / "2.dcm"
    later = target.stat().st_mtime_ns + 5_000_000_000
    os.utime(target, ns=(later, later))  # touched behind its link, same content
    plan_build(config)
    contour = next((archive / "contourfiles" / O2 / "i-contours").iterdir())
    contour.write_text(contour.read_text().replace(".5", ".0", 1))  # inside a linked folder
    message = refusal(config)
    assert f"1 input file(s) changed or missing: contourfiles/{O2}/i-contours/{contour.name}" in (
        message
    )


def test_a_link_repointed_to_the_same_content_is_the_same_version(finished_linked, tmp_path):
    _, data, links, config = finished_linked
    relpath = f"dicoms/{S1}/2.dcm"
    moved = tmp_path / "elsewhere.dcm"
    shutil.copy(links[relpath], moved)  # a new time: the content is compared
    (data / relpath).unlink()
    (data / relpath).symlink_to(moved)
    plan_build(config)
    (data / relpath).unlink()
    (data / relpath).symlink_to(tmp_path / "gone.dcm")
    message = refusal(config)
    assert f"1 input file(s) changed or missing: {relpath}" in message
    assert f"1 study(ies) with files added, removed or renamed: {S1}" in message


def test_a_version_built_before_follow_symlinks_existed(finished_linked):
    """Such a version has no follow_symlinks in its build config, and its listings were taken
    by the rule of follow_symlinks false (links leading out refused)."""
    _, data, _, config = finished_linked
    manifest_path = Path(config["out_dir"]) / "1.0.0" / "manifest.json"

    def make_it_old() -> None:
        recorded = read_whole_manifest(manifest_path)
        recorded["build_config"].pop("follow_symlinks", None)
        plan = plan_build({**config, "version": "another"})
        recorded["listing"]["studies"] = {
            study: list_study(link, data, ("i",), follow_symlinks=False).digest()
            for study, link in plan.studies.items()
        }
        manifest_path.write_text(json.dumps(recorded))

    make_it_old()
    # where links lead out, the two rules list studies differently: refused, with a hint
    message = refusal(config)
    assert f"2 study(ies) with files added, removed or renamed: {S1}, {S2}" in message
    assert "built before follow_symlinks existed" in message
    assert "config follow_symlinks" not in message
    plan_build({**config, "follow_symlinks": False})  # the rule it was built by: passes
    # without links leading out the two rules agree: it passes as it is
    for path in sorted(data.rglob("*"), reverse=True):
        if path.is_symlink():
            target = path.resolve()
            path.unlink()
            (shutil.copytree if target.is_dir() else shutil.copy2)(target, path)
    make_it_old()
    plan_build(config)


def test_links_that_cannot_be_followed_are_error_rows_and_nothing_crashes(tmp_path):
    raw = phantom(tmp_path / "raw", studies=STUDIES, slices=8, size=64, faults=False)
    spec = PhantomSpec.with_defaults(studies=STUDIES, slices=8, size=64, faults=False)
    s1_slice, s2_slice, s3_slice = (min(spec.labelled_slices(s)) for s in (S1, S2, S3))
    icontour = "IM-0001-{:04d}-icontour-manual.txt"
    contour_of = {s: f"contourfiles/{o}/i-contours/" for s, o in ((S1, O1), (S2, O2), (S3, O3))}

    def replace(relpath: str, target: str | Path) -> None:
        (raw / relpath).unlink()
        (raw / relpath).symlink_to(target)

    broken_dicom = f"dicoms/{S1}/{s1_slice}.dcm"
    replace(broken_dicom, tmp_path / "gone.dcm")
    looping_contour = contour_of[S2] + icontour.format(s2_slice)
    replace(looping_contour, raw / looping_contour)  # itself
    os.mkfifo(tmp_path / "fifo")
    fifo_dicom = f"dicoms/{S3}/{s3_slice}.dcm"
    replace(fifo_dicom, tmp_path / "fifo")
    folder_contour = contour_of[S3] + icontour.format(s3_slice)
    replace(folder_contour, raw / "dicoms")
    shutil.rmtree(raw / "dicoms" / S4)
    (raw / "dicoms" / S4).symlink_to(raw / "dicoms")  # a folder holding the link: a loop
    (raw / "contourfiles" / "PH-LOOP").symlink_to("PH-LOOP")  # unlisted, a loop of its own
    config = default_config(data_dir=str(raw), out_dir=str(tmp_path / "out"))
    version_dir = build_by_calls(config).layout.version_dir
    validation = pd.read_parquet(version_dir / "validation.parquet")
    link_rows = validation[validation["code"].str.startswith("link_")]
    rows = {
        (r.code, r.path, r.contour) for r in link_rows.replace({float("nan"): None}).itertuples()
    }
    assert rows == {
        ("link_broken", broken_dicom, None),
        ("link_loop", looping_contour, looping_contour),
        ("link_wrong_type", fifo_dicom, None),
        ("link_wrong_type", folder_contour, folder_contour),
        ("link_loop", f"dicoms/{S4}", None),
        ("link_loop", "contourfiles/PH-LOOP", None),
    }
    assert (link_rows["severity"] == "error").all()
    # the contours over the DICOMs that cannot be read are left out as without DICOM
    missing = validation[validation["code"] == "dicom_missing"]
    assert {contour_of[S1] + icontour.format(s1_slice)} <= set(missing["contour"])
    assert set(spec.labelled_slices(S4)) == set(missing[missing["study_id"] == S4]["slice"])
    check_accounting(raw, version_dir)
    plan_build(config)  # the finished version's parse-time checks pass over them too


@pytest.mark.realdata
def test_the_real_studies_reached_through_links_build_the_same_bytes(real_data, tmp_path):
    """The real studies as an archive elsewhere: a data folder whose DICOMs are links into it
    file by file (the first study), whose study folders are links (the second), and whose
    contour files are partly links (the rest) builds what the archive itself builds."""
    studies = sorted(path.name for path in (real_data / "dicoms").iterdir())
    originals = sorted(path.name for path in (real_data / "contourfiles").iterdir())
    data = tmp_path / "data"
    (data / "dicoms").mkdir(parents=True)
    (data / "contourfiles").mkdir()
    shutil.copy2(real_data / "link.csv", data / "link.csv")
    for number, (study, original) in enumerate(zip(studies, originals, strict=False)):
        if number == 1:  # whole study folders
            (data / "dicoms" / study).symlink_to(real_data / "dicoms" / study)
            (data / "contourfiles" / original).symlink_to(real_data / "contourfiles" / original)
            continue
        (data / "dicoms" / study).mkdir()
        for path in (real_data / "dicoms" / study).iterdir():
            if number == 0:
                (data / "dicoms" / study / path.name).symlink_to(path)
            else:
                shutil.copy2(path, data / "dicoms" / study / path.name)
        for folder in (real_data / "contourfiles" / original).iterdir():
            (data / "contourfiles" / original / folder.name).mkdir(parents=True)
            for index, path in enumerate(sorted(folder.iterdir())):
                linked = data / "contourfiles" / original / folder.name / path.name
                if index % 2:
                    linked.symlink_to(path)
                else:
                    shutil.copy2(path, linked)
    for name, source in (("linked", data), ("archive", real_data)):
        config = default_config(
            data_dir=str(source), out_dir=str(tmp_path / name), contours=["i", "o"]
        )
        build_by_calls(config)
    built, reference = tmp_path / "linked" / "1.0.0", tmp_path / "archive" / "1.0.0"
    digests = tree_digests(built)
    assert any(name.endswith(".npz") for name in digests)
    assert digests == tree_digests(reference)
    inputs = manifest(tmp_path, "linked")["inputs"]
    linked = {
        name: entry["link_target"] for name, entry in inputs.items() if "link_target" in entry
    }
    assert linked, "no input was read through a link"
    for name, target in linked.items():
        assert target == str((real_data / name).resolve())
        assert inputs[name]["sha256"] == sha256(real_data / name)
    assert {name.split("/")[1] for name in linked} >= {studies[0], studies[1], originals[1]}


@pytest.mark.workflow
def test_snakemake_builds_a_linked_data_folder_by_the_configured_rule(archive_build, tmp_path):
    """The rule reaches the jobs (follow_symlinks is no job parameter, see
    BuildPlan.options_params): by default the linked folder builds its archive's bytes, and a
    rerun has nothing to do; with follow_symlinks=false it builds what the same calls build."""
    root, archive = archive_build
    data = tmp_path / "data"
    link_into(archive, data)
    result = run_workflow(tmp_path, "--config", f"data_dir={data}", "out_dir=out")
    assert tree_digests(tmp_path / "out" / "1.0.0") == tree_digests(root / "reference" / "1.0.0")
    inputs = read_whole_manifest(tmp_path / "out" / "1.0.0" / "manifest.json")["inputs"]
    assert inputs[f"dicoms/{S1}/2.dcm"]["link_target"] == str(archive / "dicoms" / S1 / "2.dcm")
    rerun = run_workflow(tmp_path, "--config", f"data_dir={data}", "out_dir=out")
    assert "Nothing to be done" in rerun.stdout + rerun.stderr, result.stdout[-2000:]
    run_workflow(tmp_path, "--config", f"data_dir={data}", "out_dir=out", "version=strict",
                 "follow_symlinks=false")  # fmt: skip
    config = default_config(
        data_dir=str(data), out_dir=str(tmp_path / "calls"), version="strict",
        follow_symlinks=False,
    )  # fmt: skip
    build_by_calls(config)
    assert tree_digests(tmp_path / "out" / "strict") == tree_digests(tmp_path / "calls" / "strict")
    validation = pd.read_parquet(tmp_path / "out" / "strict" / "validation.parquet")
    assert f"dicoms/{S2}" in set(validation[validation["code"] == "path_outside_data_dir"]["path"])
