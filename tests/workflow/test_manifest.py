"""The manifest of a version built by direct calls: entries, digests, listings and counts."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from types import SimpleNamespace

import numpy
import pandas
import PIL
import pyarrow
import pydicom
import pytest
import snakemake

from build_helpers import build_by_calls, phantom, tree_digests
from conftest import REPO
from dataset_checks import all_contour_files
from loader.manifest import check_dataset, read_manifest, read_whole_manifest
from workflow_scripts.config import default_config
from workflow_scripts.dataset.manifest import (
    build_config,
    top_listing,
)
from workflow_scripts.layout import Layout
from workflow_scripts.raw.links import read_link_table


@pytest.fixture(scope="module")
def version(tmp_path_factory) -> SimpleNamespace:
    """Three phantom studies (8 slices of 64 x 64, the phantom's faults), i-contours only."""
    root = tmp_path_factory.mktemp("manifest")
    raw = phantom(root / "raw", studies=3, slices=8, size=64)
    config = default_config(data_dir=str(raw), out_dir=str(root / "out"), version="1.2.3")
    started = datetime.now(UTC).replace(microsecond=0)
    plan = build_by_calls(config)
    layout = plan.layout
    return SimpleNamespace(
        raw=raw,
        config=config,
        layout=layout,
        started=started,
        manifest=read_whole_manifest(layout.manifest),
        index=pandas.read_parquet(layout.index_file),
        validation=pandas.read_parquet(layout.validation_file),
    )


def test_manifest_names_the_version_and_records_the_whole_config(version):
    manifest = version.manifest
    assert manifest["version"] == "1.2.3"
    # all of it but how the build ran (studies_per_job): builds differing only there are equal;
    # and but from_version, which the manifest records as derived_from
    not_recorded = ("studies_per_job", "from_version")
    assert manifest["config"] == {k: v for k, v in version.config.items() if k not in not_recorded}
    assert "studies_per_job" in version.config
    assert manifest["config"]["contours"] == ["i"]
    written = read_manifest(version.layout.version_dir)
    assert written["format"] == 2 and set(written["tables"]) == {"inputs", "outputs", "listing"}


def test_build_config_is_what_shapes_the_dataset_not_where_it_lives(version):
    shaping = version.manifest["build_config"]
    assert "data_dir" not in shaping and "out_dir" not in shaping
    assert "phantom" not in shaping  # built from data, the phantom settings play no part
    for key in ("version", "contours", "splits", "split_seed", "checks", "qc"):
        assert shaping[key] == version.config[key]
    assert build_config(version.config, phantom=True)["phantom"] == version.config["phantom"]


def test_manifest_records_the_code_revision(version):
    def git(*args):
        return subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    code = version.manifest["code"]
    assert set(code) == {"package_version", "git_commit", "git_dirty"}
    assert code["git_commit"] == git("rev-parse", "HEAD")
    assert code["git_dirty"] == bool(git("status", "--porcelain", "--untracked-files=no"))


def test_manifest_records_the_software_that_shapes_the_bytes(version):
    software = version.manifest["software"]
    assert software["python"] == platform.python_version()
    for name, module in [
        ("numpy", numpy), ("pydicom", pydicom), ("Pillow", PIL), ("pandas", pandas),
        ("pyarrow", pyarrow), ("snakemake", snakemake),
    ]:  # fmt: skip
        assert software[name] == module.__version__, name


def test_every_output_is_listed_with_the_digest_of_its_file(version):
    version_dir = version.layout.version_dir
    outputs = version.manifest["outputs"]
    assert {name: entry["sha256"] for name, entry in outputs.items()} == tree_digests(version_dir)
    for name, entry in outputs.items():
        assert entry["size"] == (version_dir / name).stat().st_size
    assert {"index.parquet", "validation.parquet"} <= set(outputs)
    assert "manifest.json" not in outputs
    check_dataset(version_dir, full=True)  # the loader's own check agrees


def test_inputs_are_link_csv_and_every_file_the_build_read(version):
    inputs = version.manifest["inputs"]
    fed = {"link.csv"}
    for row in version.index.itertuples():
        fed |= {row.icontour, f"dicoms/{row.study_id}/{row.slice}.dcm"}
    # read: every i-contour file (the phantom's contour without DICOM too), and every DICOM
    # of a study with contours (for its place in the cine; the truncated one too)
    patient_of = {
        link.original_id: link.patient_id for link in read_link_table(version.raw / "link.csv")
    }
    read = {"link.csv"}
    for contour in all_contour_files(version.raw, ("i",)):
        read.add(contour)
        folder = version.raw / "dicoms" / patient_of[contour.split("/")[1]]
        read |= {f"dicoms/{folder.name}/{p.name}" for p in folder.glob("[0-9]*.dcm")}
    assert fed < read
    assert set(inputs) == read
    for relpath, entry in inputs.items():
        path = version.raw / relpath
        data = path.read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["size"] == len(data)
        assert entry["mtime_ns"] == os.stat(path).st_mtime_ns


def test_counts_are_the_studies_files_samples_and_problems(version):
    counts = version.manifest["counts"]
    raw = version.raw
    dicoms = [p for p in raw.glob("dicoms/*/*.dcm") if not p.name.startswith(".")]
    contours = list(raw.glob("contourfiles/*/i-contours/*.txt"))
    assert counts["studies"] == 4  # the three on disk and the absent one link.csv lists
    assert counts["studies_with_samples"] == 3
    assert counts["dicoms"] == len(dicoms) == 24
    assert counts["contour_files"] == len(contours) == 13
    # 3 studies x 4 contoured slices, less the one whose DICOM is corrupt (the contour whose
    # DICOM is missing is an extra one)
    assert counts["samples"] == len(version.index) == 3 * 4 - 1
    assert counts["problems"] == version.validation["code"].value_counts().to_dict()
    assert counts["problems_by_severity"] == version.validation["severity"].value_counts().to_dict()
    assert list(counts["problems"]) == sorted(counts["problems"])


def test_listing_records_the_study_folders_and_each_studys_listing(version):
    listing = version.manifest["listing"]
    assert listing["top"] == {
        "dicoms": sorted(os.listdir(version.raw / "dicoms")),
        "contourfiles": sorted(os.listdir(version.raw / "contourfiles")),
    }
    assert set(listing["studies"]) == {f"PHANTOM000{n}" for n in (1, 2, 3, 4)}
    for study, digest in listing["studies"].items():
        record = json.loads(version.layout.study_record(study).read_text())
        assert digest == record["listing"]


def test_top_listing_includes_hidden_names_and_absent_folders(tmp_path):
    (tmp_path / "dicoms" / ".hidden").mkdir(parents=True)
    (tmp_path / "dicoms" / "B").mkdir()
    assert top_listing(tmp_path) == {"dicoms": [".hidden", "B"], "contourfiles": []}


def test_built_at_is_the_utc_time_of_the_build(version):
    built_at = version.manifest["built_at"]
    assert built_at.endswith("Z")
    moment = datetime.fromisoformat(built_at.replace("Z", "+00:00"))
    assert version.started <= moment <= datetime.now(UTC)


def test_a_phantom_build_records_its_phantom_settings(tmp_path):
    config = default_config(
        out_dir=str(tmp_path / "out"), phantom={"studies": 2, "slices": 4, "size": 32}
    )
    build_by_calls(config)
    manifest = read_whole_manifest(Layout.from_config(config).manifest)
    assert manifest["build_config"]["phantom"] == config["phantom"]
    assert manifest["counts"]["studies"] == 3  # two on disk, one listed and absent (a fault)


def test_the_manifest_records_follow_symlinks(version):
    assert version.manifest["config"]["follow_symlinks"] is True
    assert version.manifest["build_config"]["follow_symlinks"] is True
