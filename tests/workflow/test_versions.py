"""Versioned datasets: deterministic bytes, immutable finished versions, safe interruption."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, run_workflow
from dataset_checks import tree_digests
from workflow_scripts.raw.phantom import PhantomSpec, write_phantom

pytestmark = pytest.mark.workflow


@pytest.fixture
def raw_data(tmp_path) -> Path:
    return write_phantom(tmp_path / "raw", PhantomSpec.with_defaults(studies=3, slices=8, size=96))


def build(workdir: Path, raw: Path, *config: str, check: bool = True):
    return run_workflow(workdir, "--config", f"data_dir={raw}", "out_dir=out", *config, check=check)


def test_same_inputs_and_config_give_byte_identical_datasets_in_two_out_dirs(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    for workdir in (first, second):
        run_workflow(workdir, "--config", "out_dir=out", "contours=[i,o]")
    a, b = first / "out" / "1.0.0", second / "out" / "1.0.0"
    digests = tree_digests(a)
    assert any(name.endswith(".npz") for name in digests)
    assert any(name.endswith(".png") for name in digests)
    assert any(name.endswith(".parquet") for name in digests)
    assert digests == tree_digests(b)
    manifest_a = json.loads((a / "manifest.json").read_text())
    manifest_b = json.loads((b / "manifest.json").read_text())
    assert manifest_a["outputs"] == manifest_b["outputs"]
    assert {k: v["sha256"] for k, v in manifest_a["inputs"].items()} == {
        k: v["sha256"] for k, v in manifest_b["inputs"].items()
    }


def test_manifest_records_config_code_software_inputs_outputs_and_counts(tmp_path, raw_data):
    build(tmp_path, raw_data)
    version_dir = tmp_path / "out" / "1.0.0"
    manifest = json.loads((version_dir / "manifest.json").read_text())
    assert manifest["version"] == "1.0.0"
    assert manifest["config"]["contours"] == ["i"]
    assert set(manifest["code"]) == {"package_version", "git_commit", "git_dirty"}
    assert {"python", "pydicom", "numpy", "Pillow", "pandas", "pyarrow", "snakemake"} <= set(
        manifest["software"]
    )
    # every file in the version folder but the manifest is listed with its true digest
    assert {name: entry["sha256"] for name, entry in manifest["outputs"].items()} == tree_digests(
        version_dir
    )
    assert "link.csv" in manifest["inputs"]
    for relpath, entry in manifest["inputs"].items():
        data = (raw_data / relpath).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["size"] == len(data)
    # 3 studies x 4 contoured slices, less the one whose DICOM is corrupt (the contour whose
    # DICOM is missing is an extra one)
    assert manifest["counts"]["samples"] == 3 * 4 - 1


def test_rebuilding_a_finished_version_with_other_config_is_refused(tmp_path, raw_data):
    build(tmp_path, raw_data)
    before = tree_digests(tmp_path / "out" / "1.0.0")
    result = build(tmp_path, raw_data, "contours=[i,o]", check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "version '1.0.0'" in output and "is finished" in output
    assert "config contours: ['i'] -> ['i', 'o']" in output
    assert "study(ies)" not in output  # a config change is not also reported as file changes
    assert tree_digests(tmp_path / "out" / "1.0.0") == before


def test_rebuilding_a_finished_version_with_a_changed_input_is_refused(tmp_path, raw_data):
    build(tmp_path, raw_data)
    before = tree_digests(tmp_path / "out" / "1.0.0")
    contour = next(raw_data.glob("contourfiles/PH-HF-1/i-contours/*0004*"))
    contour.write_text(contour.read_text().replace(".50", ".00", 1))
    result = build(tmp_path, raw_data, check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "1 input file(s) changed or missing" in output
    assert contour.relative_to(raw_data).as_posix() in output
    assert tree_digests(tmp_path / "out" / "1.0.0") == before


def test_added_files_in_a_finished_version_are_refused(tmp_path, raw_data):
    build(tmp_path, raw_data)
    (raw_data / "dicoms" / "PHANTOM0001" / "99.dcm").write_bytes(
        (raw_data / "dicoms" / "PHANTOM0001" / "1.dcm").read_bytes()
    )
    result = build(tmp_path, raw_data, check=False)
    assert result.returncode != 0
    assert (
        "1 study(ies) with files added, removed or renamed: PHANTOM0001"
        in result.stdout + result.stderr
    )


def test_touched_but_identical_input_rebuilds_its_study_to_the_same_bytes(tmp_path, raw_data):
    build(tmp_path, raw_data, "studies_per_job=2")  # 4 listed studies: 2 batches
    version_dir = tmp_path / "out" / "1.0.0"
    before = tree_digests(version_dir)
    contour = next(raw_data.glob("contourfiles/PH-HF-1/i-contours/*0004*"))
    os.utime(contour, ns=(time.time_ns(), time.time_ns()))
    result = build(tmp_path, raw_data, "studies_per_job=2")
    assert (result.stdout + result.stderr).count("rule build_studies:") == 1  # its batch only
    assert (version_dir / "manifest.json").is_file()
    assert tree_digests(version_dir) == before


def test_a_new_version_leaves_the_old_one_untouched(tmp_path, raw_data):
    build(tmp_path, raw_data)
    old = tree_digests(tmp_path / "out" / "1.0.0")
    old_manifest = (tmp_path / "out" / "1.0.0" / "manifest.json").read_bytes()
    build(tmp_path, raw_data, "version=2.0.0", "contours=[i,o]")
    assert (tmp_path / "out" / "2.0.0" / "manifest.json").is_file()
    assert tree_digests(tmp_path / "out" / "1.0.0") == old
    assert (tmp_path / "out" / "1.0.0" / "manifest.json").read_bytes() == old_manifest


def test_killed_build_leaves_no_manifest_and_a_rerun_finishes_the_same_dataset(tmp_path):
    raw = write_phantom(
        tmp_path / "raw", PhantomSpec.with_defaults(studies=40, slices=20, size=128)
    )
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    killed.mkdir(), clean.mkdir()
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--configfile", str(REPO / "config.yaml"), "--directory", str(killed), "--cores", "2",
        "--config", f"data_dir={raw}", "out_dir=out",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = killed / "out" / "work" / "1.0.0" / "studies"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(records.glob("*.json"))) < 5:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)  # no chance to clean up: the hardest interruption
    process.wait()
    version_dir = killed / "out" / "1.0.0"
    assert 5 <= len(list(records.glob("*.json"))) < 41, "the kill came too late to test anything"
    assert not (version_dir / "manifest.json").exists()

    # Snakemake keeps its lock after a hard kill; --unlock is its documented first step.
    run_workflow(killed, "--config", f"data_dir={raw}", "out_dir=out", "--unlock")
    run_workflow(killed, "--config", f"data_dir={raw}", "out_dir=out")
    run_workflow(clean, "--config", f"data_dir={raw}", "out_dir=out")
    assert (version_dir / "manifest.json").is_file()
    assert not list(version_dir.rglob(".staging-*"))
    assert tree_digests(version_dir) == tree_digests(clean / "out" / "1.0.0")
