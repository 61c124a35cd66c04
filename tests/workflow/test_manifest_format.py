"""Manifest format 2 (inputs, outputs and listing in Parquet tables beside manifest.json, whose
sha256 it records) and versions finished in format 1 (all of it in manifest.json): both load,
verify, pass the immutability check and refuse changes; a changed table is refused by name."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from build_helpers import (
    change_first_digit,
    copy_build,
    finished_phantom_build,
    phantom,
    tree_digests,
)
from conftest import run_workflow
from loader import DatasetIndex
from loader.manifest import (
    MANIFEST_TABLES,
    DatasetVerificationError,
    manifest_files,
    manifest_table,
    read_manifest,
    read_whole_manifest,
    verify_dataset,
)
from workflow_scripts.config import default_config
from workflow_scripts.dataset.version_guard import VersionChangedError, check_finished_version
from workflow_scripts.layout import Layout
from workflow_scripts.raw.links import read_link_table

VERSION = "2.0.0"


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished version (format 2) of two phantom studies of 4 slices of 32 x 32."""
    return finished_phantom_build(tmp_path_factory.mktemp("finished"), VERSION)


@pytest.fixture
def build(finished, tmp_path) -> SimpleNamespace:
    """A copy of the finished build (times kept) that a test may change."""
    copied = copy_build(finished, tmp_path)
    return SimpleNamespace(raw=copied.raw, version=copied.out / VERSION)


def check(build) -> None:
    """The immutability check the workflow runs when it parses a finished version."""
    config = default_config(data_dir=str(build.raw), out_dir=str(build.version.parent))
    config["version"] = VERSION
    links = read_link_table(build.raw / "link.csv")
    assert check_finished_version(Layout.from_config(config), config, links) is not None


def as_format_1(version_dir: Path) -> None:
    """Rewrite a version's manifest as format 1 wrote it (all inline), tables removed."""
    whole = read_whole_manifest(version_dir)
    (version_dir / "manifest.json").write_text(json.dumps(whole, indent=1, sort_keys=True) + "\n")
    for name in MANIFEST_TABLES.values():
        (version_dir / name).unlink()


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_format_2_keeps_the_sections_in_tables_whose_digests_manifest_json_records(finished):
    version_dir = finished / "out" / VERSION
    manifest = json.loads((version_dir / "manifest.json").read_text())
    assert manifest["format"] == 2
    assert not {"inputs", "outputs", "listing"} & set(manifest)
    for section, name in MANIFEST_TABLES.items():
        data = (version_dir / name).read_bytes()
        recorded = manifest["tables"][section]
        assert recorded["file"] == name
        assert recorded["sha256"] == hashlib.sha256(data).hexdigest()
        assert recorded["size"] == len(data)
    # the outputs are every file of the version but the manifest's own, with its digest
    outputs = read_manifest(version_dir)["outputs"]
    own = {"manifest.json", *MANIFEST_TABLES.values()}
    on_disk = {
        path.relative_to(version_dir).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in version_dir.rglob("*")
        if path.is_file() and path.name not in own
    }
    assert {path: entry["sha256"] for path, entry in outputs.items()} == on_disk
    assert manifest["tables"]["outputs"]["rows"] == len(on_disk)
    # every i-contour file of the phantom is an input (contours: [i]), with its size
    inputs = read_manifest(version_dir)["inputs"]
    contours = list((finished / "raw" / "contourfiles").rglob("*-icontour-manual.txt"))
    assert contours
    for path in contours:
        relpath = path.relative_to(finished / "raw").as_posix()
        assert inputs[relpath]["size"] == path.stat().st_size


def test_what_is_read_writes_back_to_the_same_bytes(finished):
    """Round trip: the manifest read (whole, format 1's shape) and written in format 2 again
    gives the files of the build, byte for byte."""
    version_dir = finished / "out" / VERSION
    whole = read_whole_manifest(version_dir)
    assert whole["format"] == 1 and "tables" not in whole
    assert set(whole["listing"]) == {"top", "studies", "unlisted_contours"}
    rewritten = dict(manifest_files({k: v for k, v in whole.items() if k != "format"}))
    assert set(rewritten) == {"manifest.json", *MANIFEST_TABLES.values()}
    for name, data in rewritten.items():
        assert (version_dir / name).read_bytes() == data, name


def test_a_changed_table_is_refused_naming_it(build):
    outputs = build.version / "manifest.outputs.parquet"
    flip_a_byte(outputs)
    with pytest.raises(DatasetVerificationError, match=r"manifest\.outputs\.parquet: content"):
        DatasetIndex(build.version, verify="full")
    # the fast open reads no table of the manifest (manifest.json records index.parquet's
    # sha256 itself): it compares their sizes
    assert len(DatasetIndex(build.version)) > 0
    data = outputs.read_bytes()
    outputs.write_bytes(data[:-1])
    with pytest.raises(DatasetVerificationError, match=r"manifest\.outputs\.parquet: size"):
        DatasetIndex(build.version)
    outputs.write_bytes(data)
    assert any("manifest.outputs.parquet" in line for line in verify_dataset(build.version))
    flip_a_byte(build.version / "manifest.inputs.parquet")
    with pytest.raises(VersionChangedError, match=r"manifest\.inputs\.parquet: content changed"):
        check(build)
    (build.version / "manifest.listing.parquet").unlink()
    with pytest.raises(DatasetVerificationError, match=r"manifest\.listing\.parquet: missing"):
        manifest_table(build.version, read_manifest(build.version), "listing")


def test_fast_open_checks_what_the_loader_reads_and_full_every_byte(build):
    index = DatasetIndex(build.version)
    victim = build.version / index.npz[0]
    flip_a_byte(victim)  # same size: only a sha256 tells
    assert len(DatasetIndex(build.version)) == len(index)
    with pytest.raises(DatasetVerificationError, match=index.npz[0]):
        DatasetIndex(build.version, verify="full")
    victim.unlink()
    with pytest.raises(DatasetVerificationError, match=f"{index.npz[0]}: missing"):
        DatasetIndex(build.version, verify="full")
    assert f"{index.npz[0]}: missing" in verify_dataset(build.version)
    # the fast open lists no sample folder: reading the file names it
    assert len(DatasetIndex(build.version)) == len(index)
    table = build.version / "validation.parquet"
    table.write_bytes(table.read_bytes()[:-10])
    with pytest.raises(DatasetVerificationError, match=r"validation\.parquet: size"):
        DatasetIndex(build.version)


def test_a_format_1_version_loads_verifies_and_passes_the_check(build):
    before = read_whole_manifest(build.version)
    as_format_1(build.version)
    assert read_manifest(build.version)["format"] == 1
    assert read_whole_manifest(build.version) == before
    assert verify_dataset(build.version, full=True) == []
    for verify in ("none", "fast", "full"):
        assert len(DatasetIndex(build.version, verify=verify)) > 0
    check(build)


def test_a_format_1_version_refuses_a_changed_input_naming_it(build):
    as_format_1(build.version)
    contour = sorted((build.raw / "contourfiles").rglob("*.txt"))[0]
    change_first_digit(contour)
    with pytest.raises(VersionChangedError, match=contour.name):
        check(build)
    victim = sorted((build.version / "slices").rglob("*.npz"))[0]
    victim.unlink()
    with pytest.raises(DatasetVerificationError, match=victim.name):
        DatasetIndex(build.version, verify="full")
    index = build.version / "index.parquet"
    flip_a_byte(index)  # same size: the fast open compares its sha256 (format 1's entry)
    with pytest.raises(DatasetVerificationError, match=r"index\.parquet: content changed"):
        DatasetIndex(build.version)


@pytest.mark.workflow
def test_snakemake_over_a_format_1_version_does_nothing_and_refuses_a_changed_input(tmp_path):
    raw = phantom(tmp_path / "raw", studies=2, slices=4, size=32)
    args = ("--config", f"data_dir={raw}", "out_dir=out")
    run_workflow(tmp_path, *args)
    version_dir = tmp_path / "out" / "1.0.0"
    as_format_1(version_dir)
    before = tree_digests(version_dir, exclude=())
    result = run_workflow(tmp_path, *args)
    assert "Nothing to be done" in result.stdout + result.stderr
    assert tree_digests(version_dir, exclude=()) == before
    contour = sorted((raw / "contourfiles").rglob("*.txt"))[0]
    change_first_digit(contour)
    result = run_workflow(tmp_path, *args, check=False)
    assert result.returncode != 0
    assert "is finished" in result.stdout + result.stderr
    assert contour.name in result.stdout + result.stderr
    assert tree_digests(version_dir, exclude=()) == before
