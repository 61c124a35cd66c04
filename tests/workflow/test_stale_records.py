"""The manifest is refused when a study record no longer describes the files it was built from
(issue 12): what Snakemake misses under ``--rerun-triggers mtime``, or a file changed while the
build ran. The end-to-end case (Snakemake with those triggers) is in test_versions.py."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from build_helpers import build_by_calls, change_first_digit, phantom
from workflow_scripts.build_plan import plan_build
from workflow_scripts.config import default_config
from workflow_scripts.dataset.batch_tables import read_version_tables
from workflow_scripts.dataset.manifest import write_dataset_manifest
from workflow_scripts.dataset.stale_records import StaleRecordsError, find_stale_records

S1, S2 = "PHANTOM0001", "PHANTOM0002"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A version of a 2-study phantom built by calls (one batch per study, as with
    studies_per_job 1)."""
    root = tmp_path_factory.mktemp("stale")
    raw = phantom(root / "raw", studies=2, slices=4, size=32)
    build_by_calls(default_config(data_dir=str(raw), out_dir=str(root / "out"), studies_per_job=1))
    return root


@pytest.fixture
def unfinished(built, tmp_path) -> SimpleNamespace:
    """A copy of that version (times kept) without its manifest: what rule write_manifest
    finds."""
    for name in ("raw", "out"):
        shutil.copytree(built / name, tmp_path / name, symlinks=True)
    raw = tmp_path / "raw"
    config = default_config(data_dir=str(raw), out_dir=str(tmp_path / "out"), studies_per_job=1)
    plan = plan_build(config)
    plan.layout.manifest.unlink()
    batches = [plan.layout.batch_record(batch) for batch in plan.batches]
    inputs = {
        study: json.loads(plan.layout.study_record(study).read_text())["inputs"]
        for study in plan.studies
    }
    return SimpleNamespace(raw=raw, config=config, plan=plan, batches=batches, inputs=inputs)


def finish(build: SimpleNamespace) -> Path:
    """Write the manifest as rule write_manifest does."""
    layout = build.plan.layout
    return write_dataset_manifest(
        layout, build.config, build.batches, layout.index_file, layout.validation_file,
        layout.version_qc,
    )  # fmt: skip


def refusal(build: SimpleNamespace) -> str:
    with pytest.raises(StaleRecordsError) as raised:
        finish(build)
    assert not build.plan.layout.manifest.exists()
    return str(raised.value)


def contour_read_by(build: SimpleNamespace, study: str) -> str:
    return next(path for path in sorted(build.inputs[study]) if "i-contours" in path)


def later(path: Path) -> None:
    moment = path.stat().st_mtime_ns + 5_000_000_000
    os.utime(path, ns=(moment, moment))


def test_records_that_describe_the_files_give_a_manifest(unfinished):
    later(unfinished.raw / contour_read_by(unfinished, S1))  # touched, the same content
    assert finish(unfinished).is_file()


def test_a_contour_changed_after_its_study_was_built_refuses_the_manifest(unfinished):
    contour = contour_read_by(unfinished, S2)
    path = unfinished.raw / contour
    path.write_text(path.read_text() + "10.5 10.5\n")
    message = refusal(unfinished)
    assert "version '1.0.0': 1 study(ies) were built from files that have changed since" in message
    assert f"  - {S2}: {contour} changed\n" in message
    assert S1 not in message
    # how to fix it: default rerun triggers, or forcing exactly the batch that built it
    layout = unfinished.plan.layout
    (batch,) = [b for b, studies in unfinished.plan.batches.items() if studies == (S2,)]
    assert "Run the same command without --rerun-triggers" in message
    assert message.endswith(f"--forcerun {layout.batch_record(batch)}")


def test_same_size_new_content_is_found_by_its_digest(unfinished):
    contour = contour_read_by(unfinished, S1)
    path = unfinished.raw / contour
    change_first_digit(path)
    later(path)
    assert f"  - {S1}: {contour} changed" in refusal(unfinished)


def test_an_input_gone_and_files_added_are_each_named(unfinished):
    dicom = next(path for path in sorted(unfinished.inputs[S1]) if path.endswith(".dcm"))
    (unfinished.raw / dicom).unlink()
    shutil.copy(unfinished.raw / "dicoms" / S2 / "1.dcm", unfinished.raw / "dicoms" / S2 / "99.dcm")
    message = refusal(unfinished)
    assert f"  - {S1}: {dicom} gone" in message
    assert f"  - {S2}: dicoms/{S2}/, contourfiles/PH-HF-2/ files added, removed or renamed" in (
        message
    )
    assert "2 study(ies)" in message


def test_every_changed_study_is_found_and_each_counts_its_files(unfinished):
    for study in (S1, S2):
        for relpath in unfinished.inputs[study]:
            if "i-contours" in relpath:
                (unfinished.raw / relpath).write_text("1 1\n5 1\n5 5\n")
    layout = unfinished.plan.layout
    tables = read_version_tables(layout, unfinished.batches)
    stale = find_stale_records(layout, unfinished.config, tables)
    assert [item.study_id for item in stale] == [S1, S2]
    for item in stale:
        contours = sorted(p for p in unfinished.inputs[item.study_id] if "i-contours" in p)
        assert item.path == contours[0]
        assert item.change == f"changed (and {len(contours) - 1} more input(s))"


def test_through_links_the_file_led_to_is_compared(unfinished, tmp_path):
    contour = contour_read_by(unfinished, S1)
    path = unfinished.raw / contour
    copy = tmp_path / "elsewhere.txt"
    shutil.copy(path, copy)  # the same content, another time
    path.unlink()
    path.symlink_to(copy)
    assert finish(unfinished).is_file()
    unfinished.plan.layout.manifest.unlink()
    copy.write_text(copy.read_text() + "10.5 10.5\n")
    assert f"  - {S1}: {contour} changed" in refusal(unfinished)
