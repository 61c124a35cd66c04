"""The batches' tables (workflow_scripts.dataset.batch_tables): each batch job writes its
studies' inputs, outputs and listings as tables, and write_manifest combines them. The
manifest they give must describe the files on disk exactly, as it did when it was assembled
from the study records; a batch without usable tables is read from its records."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from build_helpers import build_by_calls, phantom
from loader.manifest import MANIFEST_TABLES, _section_table, manifest_section_table
from workflow_scripts.build_plan import plan_build
from workflow_scripts.config import default_config
from workflow_scripts.dataset.batch_tables import BATCH_TABLE_SCHEMAS, read_version_tables

MANIFEST_FILES = {"manifest.json", *MANIFEST_TABLES.values()}


def _build(root: Path, raw: Path):
    config = default_config(data_dir=str(raw), out_dir=str(root / "out"), studies_per_job=2)
    build_by_calls(config)
    return plan_build(config)


@pytest.fixture(scope="module")
def phantom_build(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch-tables-phantom")
    return _build(root, phantom(root / "raw", studies=5, slices=4, size=32))


@pytest.fixture(scope="module")
def real_build(tmp_path_factory):
    from conftest import REAL_DATA, real_data_missing

    if not (REAL_DATA / "link.csv").is_file():
        pytest.skip(real_data_missing())
    return _build(tmp_path_factory.mktemp("batch-tables-real"), REAL_DATA)


@pytest.fixture(params=["phantom", "real"])
def build(request):
    return request.getfixturevalue(f"{request.param}_build")


def _file(path: Path) -> dict:
    data = path.read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _records(plan) -> list[dict]:
    return [json.loads(plan.layout.study_record(s).read_text()) for s in sorted(plan.studies)]


def test_the_manifest_lists_every_file_of_the_version_as_it_is_on_disk(build):
    version = build.layout.version_dir
    outputs = pq.read_table(version / MANIFEST_TABLES["outputs"]).to_pylist()
    on_disk = {
        path.relative_to(version).as_posix(): _file(path)
        for path in version.rglob("*")
        if path.is_file() and path.name not in MANIFEST_FILES
    }
    assert [row["path"] for row in outputs] == sorted(on_disk)
    assert {row["path"]: {"sha256": row["sha256"], "size": row["size"]} for row in outputs} == (
        on_disk
    )


def test_the_manifest_lists_every_input_the_records_name_with_its_digest_and_time(build):
    data_dir = build.layout.data_dir
    named = {"link.csv"} | {path for record in _records(build) for path in record["inputs"]}
    inputs = pq.read_table(build.layout.version_dir / MANIFEST_TABLES["inputs"]).to_pylist()
    assert [row["path"] for row in inputs] == sorted(named)
    for row in inputs:
        path = data_dir / row["path"]
        assert {"sha256": row["sha256"], "size": row["size"]} == _file(path), row["path"]
        assert row["mtime_ns"] == os.stat(path).st_mtime_ns
        assert row["link_target"] is None and row["config_path"] is None


def test_the_manifest_tables_are_those_of_the_records_mappings(build):
    """The tables combined from the batches equal the format-1 route: the records' mappings
    turned into a table row by row."""
    records = _records(build)
    version = build.layout.version_dir
    written = pq.read_table(version / MANIFEST_TABLES["inputs"])
    link_csv = written.filter(pa.compute.equal(written["path"], "link.csv")).to_pylist()[0]
    mapping = {"link.csv": {k: v for k, v in link_csv.items() if v is not None and k != "path"}}
    for record in records:
        mapping.update(record["inputs"])
    assert written.equals(_section_table("inputs", mapping))
    outputs = pq.read_table(version / MANIFEST_TABLES["outputs"])
    per_study = {path for record in records for path in record["outputs"]}
    mapping = {
        row["path"]: {"sha256": row["sha256"], "size": row["size"]}
        for row in outputs.to_pylist()
        if row["path"] not in per_study
    }
    for record in records:
        mapping.update(record["outputs"])
    assert outputs.equals(_section_table("outputs", mapping))


def test_each_batch_table_holds_its_studies_records(build):
    layout = build.layout
    for batch in build.batches:
        studies = json.loads(layout.batch_record(batch).read_text())["studies"]
        records = [json.loads(layout.study_record(s).read_text()) for s in studies]
        tables = {
            name: pq.read_table(layout.batch_table(batch, name)) for name in BATCH_TABLE_SCHEMAS
        }
        rows = tables["studies"].to_pylist()
        assert [row["study_id"] for row in rows] == studies
        for row, record in zip(rows, records, strict=True):
            assert row["original_id"] == record["original_id"]
            assert row["listing"] == record["listing"]
            counts = record["counts"]
            assert (row["dicoms"], row["contour_files"], row["samples"]) == (
                counts["dicoms"],
                counts["contour_files"],
                counts["samples"],
            )
        inputs = [(r["study_id"], r["path"]) for r in tables["inputs"].to_pylist()]
        assert inputs == [(rec["study_id"], path) for rec in records for path in rec["inputs"]]
        outputs = tables["outputs"].to_pylist()
        assert [(r["study_id"], r["path"], r["sha256"], r["size"]) for r in outputs] == [
            (rec["study_id"], path, digest["sha256"], digest["size"])
            for rec in records
            for path, digest in rec["outputs"].items()
        ]


def test_a_batch_without_usable_tables_is_read_from_its_records(phantom_build, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(phantom_build.layout.out_dir, out)
    plan = plan_build({**phantom_build.config, "out_dir": str(out)})
    layout = plan.layout
    records = [layout.batch_record(batch) for batch in plan.batches]
    expected = read_version_tables(layout, records)
    first, second, third = list(plan.batches)[:3]
    for name in BATCH_TABLE_SCHEMAS:  # another batch's studies
        shutil.copyfile(layout.batch_table(first, name), layout.batch_table(third, name))
    layout.batch_table(first, "inputs").unlink()  # missing
    layout.batch_table(second, "outputs").write_bytes(b"not parquet")  # unreadable
    again = read_version_tables(layout, records)
    for name in BATCH_TABLE_SCHEMAS:
        assert again[name].equals(expected[name]), name
    # the tables a step asks for, the same whether read or rebuilt from the records
    some = read_version_tables(layout, records, ("inputs", "samples"))
    assert set(some) == {"inputs", "samples"}
    assert some["inputs"].equals(expected["inputs"]) and some["samples"].equals(expected["samples"])
    studies = again["studies"].column("study_id").to_pylist()
    assert studies == sorted(plan.studies)


def test_a_section_table_by_columns_is_the_mapping_table():
    entries = {
        "b/2": {"sha256": "22", "size": 2, "mtime_ns": 20},
        "a/1": {"sha256": "11", "size": 1, "mtime_ns": 10, "link_target": "x/1"},
        "c/3": {"sha256": "33", "size": 3, "mtime_ns": 30},
    }
    more = {"splits.csv": {"sha256": "44", "size": 4, "mtime_ns": 40, "path": "/s.csv"}}
    table = pa.table(
        {
            "path": ["b/2", "a/1", "c/3"],
            "sha256": ["22", "11", "33"],
            "size": pa.array([2, 1, 3], pa.int32()),  # cast to the section's types
            "mtime_ns": [20, 10, 30],
            "link_target": [None, "x/1", None],
        }
    )
    assert manifest_section_table("inputs", table, more).equals(
        _section_table("inputs", {**entries, **more})
    )
    left = manifest_section_table("inputs", table, more, leave_out=("c/3", "splits.csv"))
    assert left.column("path").to_pylist() == ["a/1", "b/2"]
    # a path given twice: the later entry stands, as in a mapping
    twice = manifest_section_table(
        "outputs", table.select(["path", "sha256", "size"]), {"a/1": {"sha256": "99", "size": 9}}
    )
    assert twice.to_pylist() == [
        {"path": "a/1", "sha256": "99", "size": 9},
        {"path": "b/2", "sha256": "22", "size": 2},
        {"path": "c/3", "sha256": "33", "size": 3},
    ]
