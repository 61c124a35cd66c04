"""A batch's share of the manifest, as tables: what ``write_manifest`` combines instead of
reading every study record again.

The manifest lists every input and output of every study (about 270 rows per real study:
its cine's DICOMs, contour files and outputs). Assembling that from the study records, one
JSON file and a dict per file each, costs seconds per 1,000 studies, and a rerun for one
touched input paid it in full. So each batch job (rule ``build_studies``), once its studies
are built or reused, writes its studies' rows as three Parquet tables beside its batch record
(:meth:`~workflow_scripts.layout.Layout.batch_table`), and ``write_manifest`` concatenates
the batches' tables (:func:`read_version_tables`):

- ``inputs``: one row per input file a study read (``study_id``, ``path`` relative to
  data_dir, ``sha256``, ``size``, ``mtime_ns``: the time the build saw, ``link_target``);
- ``outputs``: one row per file a study wrote (``study_id``, ``path`` relative to the version
  folder, ``sha256``, ``size``);
- ``studies``: one row per study (``study_id``, ``original_id``, ``listing``: the digest of its
  folders' listing, and the counts of ``dicoms``, ``contour_files`` and ``samples``).

The tables hold exactly what the records say, so a batch whose tables are missing (built by
an older version of the code) or do not list the batch's studies is read from its records
instead, with the same result.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from loader.manifest import file_digest
from workflow_scripts.files import parquet_bytes, write_bytes_atomic
from workflow_scripts.layout import Layout
from workflow_scripts.raw.listing import open_input

__all__ = [
    "BATCH_TABLE_SCHEMAS",
    "batch_tables",
    "input_entry",
    "read_version_tables",
    "write_batch_tables",
]

BATCH_TABLE_SCHEMAS = {
    "inputs": pa.schema(
        [
            ("study_id", pa.string()),
            ("path", pa.string()),
            ("sha256", pa.string()),
            ("size", pa.int64()),
            ("mtime_ns", pa.int64()),
            ("link_target", pa.string()),
        ]
    ),
    "outputs": pa.schema(
        [
            ("study_id", pa.string()),
            ("path", pa.string()),
            ("sha256", pa.string()),
            ("size", pa.int64()),
        ]
    ),
    "studies": pa.schema(
        [
            ("study_id", pa.string()),
            ("original_id", pa.string()),
            ("listing", pa.string()),
            ("dicoms", pa.int64()),
            ("contour_files", pa.int64()),
            ("samples", pa.int64()),
        ]
    ),
}


def input_entry(data_dir: Path, relpath: str, digest: Mapping[str, Any] | None) -> dict:
    """Digest entry of an input, with its modification time for the quick check: the one the
    study's build saw when it read the file (its record's ``mtime_ns``), else the file's now;
    and, for a file reached through a symbolic link, ``link_target``: the file read."""
    if digest is not None and "mtime_ns" in digest:
        keys = ("sha256", "size", "mtime_ns", "link_target")
        return {key: digest[key] for key in keys if key in digest}
    path, link_target = open_input(data_dir, relpath)
    entry = {**(digest or file_digest(path)), "mtime_ns": os.stat(path).st_mtime_ns}
    if link_target is not None:
        entry["link_target"] = link_target
    return entry


def batch_tables(data_dir: Path, records: Iterable[Mapping[str, Any]]) -> dict[str, pa.Table]:
    """The ``inputs``, ``outputs`` and ``studies`` tables of ``records`` (study records), in
    record order, each file in the order its record lists it (see the module's docstring)."""
    columns: dict[str, dict[str, list]] = {
        name: {field: [] for field in schema.names} for name, schema in BATCH_TABLE_SCHEMAS.items()
    }
    inputs, outputs, studies = columns["inputs"], columns["outputs"], columns["studies"]
    for record in records:
        study = record["study_id"]
        for relpath, digest in record["inputs"].items():
            entry = input_entry(data_dir, relpath, digest)
            inputs["study_id"].append(study)
            inputs["path"].append(relpath)
            inputs["sha256"].append(entry["sha256"])
            inputs["size"].append(entry["size"])
            inputs["mtime_ns"].append(entry["mtime_ns"])
            inputs["link_target"].append(entry.get("link_target"))
        for relpath, digest in record["outputs"].items():
            outputs["study_id"].append(study)
            outputs["path"].append(relpath)
            outputs["sha256"].append(digest["sha256"])
            outputs["size"].append(digest["size"])
        studies["study_id"].append(study)
        studies["original_id"].append(record["original_id"])
        studies["listing"].append(record["listing"])
        for count in ("dicoms", "contour_files", "samples"):
            studies[count].append(record["counts"][count])
    return {
        name: pa.table(columns[name], schema=schema) for name, schema in BATCH_TABLE_SCHEMAS.items()
    }


def write_batch_tables(layout: Layout, batch: str, studies: Iterable[str]) -> None:
    """Write the tables (:func:`batch_tables`) of the batch's ``studies`` (ids, whose records
    are written), each atomically; the job does so before its batch record."""
    for name, table in batch_tables(layout.data_dir, _study_records(layout, studies)).items():
        write_bytes_atomic(layout.batch_table(batch, name), parquet_bytes(table))


def read_version_tables(layout: Layout, batch_records: Iterable[str | Path]) -> dict[str, pa.Table]:
    """The tables of every batch of ``batch_records`` (their record files), concatenated and
    sorted by study id. A batch whose tables are missing, unreadable or list other studies
    than its record is read from its studies' records."""
    parts: dict[str, list[pa.Table]] = {name: [] for name in BATCH_TABLE_SCHEMAS}
    for record_path in batch_records:
        batch = json.loads(Path(record_path).read_text(encoding="utf-8"))
        tables = _read_batch_tables(layout, batch["batch"], batch["studies"])
        for name, table in tables.items():
            parts[name].append(table)
    combined = {}
    for name, schema in BATCH_TABLE_SCHEMAS.items():
        table = pa.concat_tables(parts[name]) if parts[name] else schema.empty_table()
        # studies in id order, each study's files in its record's order: a stable sort
        combined[name] = table.sort_by([("study_id", "ascending")])
    return combined


def _read_batch_tables(layout: Layout, batch: str, studies: list[str]) -> dict[str, pa.Table]:
    try:
        tables = {
            name: pq.ParquetFile(layout.batch_table(batch, name)).read()
            for name in BATCH_TABLE_SCHEMAS
        }
        if all(
            tables[name].schema.equals(schema) for name, schema in BATCH_TABLE_SCHEMAS.items()
        ) and sorted(tables["studies"].column("study_id").to_pylist()) == sorted(studies):
            return tables
    except (OSError, pa.ArrowException):
        pass
    return batch_tables(layout.data_dir, _study_records(layout, studies))


def _study_records(layout: Layout, studies: Iterable[str]) -> list[dict]:
    return [json.loads(layout.study_record(s).read_text(encoding="utf-8")) for s in studies]
