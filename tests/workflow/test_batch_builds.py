"""Batches end to end: the batch size never changes a byte, and neither does the order of
link.csv's lines change any job."""

from __future__ import annotations

from pathlib import Path

import pytest

from build_helpers import tree_digests
from conftest import run_workflow
from loader.manifest import read_whole_manifest
from workflow_scripts.raw.phantom import PhantomSpec, write_phantom

pytestmark = pytest.mark.workflow


@pytest.fixture
def raw(tmp_path) -> Path:
    # 9 studies on disk and one listed but missing: batches of 7 are [7, 3]
    return write_phantom(tmp_path / "raw", PhantomSpec.with_defaults(studies=9, slices=6, size=48))


def build(workdir: Path, raw: Path, *config: str):
    workdir.mkdir(exist_ok=True)
    return run_workflow(workdir, "--config", f"data_dir={raw}", "out_dir=out", *config)


def test_batches_of_1_and_of_7_build_byte_identical_datasets(tmp_path, raw):
    ones, sevens = tmp_path / "ones", tmp_path / "sevens"
    result_1 = build(ones, raw, "studies_per_job=1")
    result_7 = build(sevens, raw, "studies_per_job=7")
    assert (result_1.stdout + result_1.stderr).count("rule build_studies:") == 10
    assert (result_7.stdout + result_7.stderr).count("rule build_studies:") == 2
    a, b = ones / "out" / "1.0.0", sevens / "out" / "1.0.0"
    assert tree_digests(a) == tree_digests(b)
    manifest_a = read_whole_manifest(a / "manifest.json")
    manifest_b = read_whole_manifest(b / "manifest.json")
    del manifest_a["built_at"], manifest_b["built_at"]
    assert manifest_a == manifest_b  # the batch size is not recorded anywhere

    # Another batch size over a finished version is not a change of the version, and a
    # finished version is never built again: nothing runs, not a byte changes.
    before = tree_digests(sevens / "out" / "1.0.0", exclude=())
    result = build(sevens, raw, "studies_per_job=1")
    assert "Nothing to be done" in result.stdout + result.stderr
    assert tree_digests(sevens / "out" / "1.0.0", exclude=()) == before


def test_reordering_link_csv_reruns_no_batch_and_changes_no_byte(tmp_path, raw):
    build(tmp_path, raw, "studies_per_job=3")
    version_dir = tmp_path / "out" / "1.0.0"
    before = tree_digests(version_dir)
    # Unfinish the version (a finished one refuses a changed link.csv), then reorder.
    (version_dir / "manifest.json").unlink()
    lines = (raw / "link.csv").read_text().splitlines()
    (raw / "link.csv").write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    result = build(tmp_path, raw, "studies_per_job=3")
    output = result.stdout + result.stderr
    assert "rule validate_link_table:" in output  # the tables are made again ...
    assert "rule build_studies:" not in output  # ... but no study is rebuilt
    assert tree_digests(version_dir) == before
