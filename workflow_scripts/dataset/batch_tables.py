"""A batch's share of the version's tables: what ``index_dataset`` and ``write_manifest``
combine instead of reading every study record again.

The manifest lists every input and output of every study (about 270 rows per real study:
its cine's DICOMs, contour files and outputs), and the index every sample. Assembling them
from the study records, one JSON file and a dict per row each, cost seconds per 1,000 studies
in each of those steps, and a rerun for one touched input paid it in full. So each batch job
(rule ``build_studies``), once its studies are built or reused, writes its studies' rows as
Parquet tables beside its batch record (:meth:`~workflow_scripts.layout.Layout.batch_table`),
and the version's steps concatenate the batches' tables (:func:`read_version_tables`):

- ``inputs``: one row per input file a study read (``study_id``, ``path`` relative to
  data_dir, ``sha256``, ``size``, ``mtime_ns``: the time the build saw, ``link_target``);
- ``outputs``: one row per file a study wrote (``study_id``, ``path`` relative to the version
  folder, ``sha256``, ``size``);
- ``studies``: one row per study (``study_id``, ``original_id``, ``listing``: the digest of its
  folders' listing, and the counts of ``dicoms``, ``contour_files`` and ``samples``);
- ``samples``: the studies' index rows (all columns but ``version`` and ``split``);
- ``problems``: their rows of validation.parquet;
- ``measures``: their ED/ES measures (a row per study that has them);
- ``frames``: their rows of frames.parquet (``frames: all``), without ``index_row``;
- ``contours``: the points digest of each contour file a study's samples use (``study_id``,
  ``path``, ``digest``), for the copies between studies.

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
from workflow_scripts.dataset.schemas import SAMPLE_SCHEMA, VALIDATION_SCHEMA
from workflow_scripts.files import parquet_bytes, write_bytes_atomic
from workflow_scripts.layout import Layout
from workflow_scripts.raw.listing import open_input
from workflow_scripts.study.frames import FRAMES_SCHEMA
from workflow_scripts.study.measures import MEASURES_SCHEMA

__all__ = [
    "BATCH_TABLE_SCHEMAS",
    "batch_tables",
    "input_entry",
    "load_records",
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
    "samples": SAMPLE_SCHEMA,
    "problems": VALIDATION_SCHEMA,
    "measures": MEASURES_SCHEMA,
    "frames": pa.schema([field for field in FRAMES_SCHEMA if field.name != "index_row"]),
    "contours": pa.schema(
        [("study_id", pa.string()), ("path", pa.string()), ("digest", pa.string())]
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
    """The tables of :data:`BATCH_TABLE_SCHEMAS` of ``records`` (study records), in record
    order, each study's rows in the order its record lists them (see the module's
    docstring); what a record lacks (a record written before the key existed, or a test's
    partial record) gives no rows."""
    rows: dict[str, list[dict]] = {name: [] for name in BATCH_TABLE_SCHEMAS}
    for record in records:
        study = record["study_id"]
        for relpath, digest in record.get("inputs", {}).items():
            entry = input_entry(data_dir, relpath, digest)
            rows["inputs"].append({"study_id": study, "path": relpath, **entry})
        for relpath, digest in record.get("outputs", {}).items():
            rows["outputs"].append({"study_id": study, "path": relpath, **digest})
        if "listing" in record:
            counts = record["counts"]
            rows["studies"].append(
                {
                    "study_id": study,
                    "original_id": record["original_id"],
                    "listing": record["listing"],
                    **{count: counts[count] for count in ("dicoms", "contour_files", "samples")},
                }
            )
        rows["samples"] += sorted(record.get("samples", []), key=lambda sample: sample["slice"])
        rows["problems"] += record.get("problems", [])
        if record.get("measures"):
            rows["measures"].append(record["measures"])
        rows["frames"] += record.get("frames", [])
        rows["contours"] += [
            {"study_id": study, "path": path, "digest": digest}
            for path, digest in record.get("contour_digests", {}).items()
        ]
    return {
        name: pa.Table.from_pylist(rows[name], schema=schema)
        for name, schema in BATCH_TABLE_SCHEMAS.items()
    }


def write_batch_tables(layout: Layout, batch: str, studies: Iterable[str]) -> None:
    """Write the tables (:func:`batch_tables`) of the batch's ``studies`` (ids, whose records
    are written), each atomically; the job does so before its batch record."""
    for name, table in batch_tables(layout.data_dir, _study_records(layout, studies)).items():
        write_bytes_atomic(layout.batch_table(batch, name), parquet_bytes(table))


def read_version_tables(
    layout: Layout,
    batch_records: Iterable[str | Path],
    names: Iterable[str] = tuple(BATCH_TABLE_SCHEMAS),
) -> dict[str, pa.Table]:
    """The tables ``names`` (default: all) of every batch of ``batch_records`` (their record
    files), concatenated and sorted by study id. A batch whose tables are missing,
    unreadable or list other studies than its record is read from its studies' records."""
    names = tuple(names)
    parts: dict[str, list[pa.Table]] = {name: [] for name in names}
    for record_path in batch_records:
        batch = json.loads(Path(record_path).read_text(encoding="utf-8"))
        tables = _read_batch_tables(layout, batch["batch"], batch["studies"], names)
        for name in names:
            parts[name].append(tables[name])
    combined = {}
    for name in names:
        schema = BATCH_TABLE_SCHEMAS[name]
        table = pa.concat_tables(parts[name]) if parts[name] else schema.empty_table()
        # studies in id order, each study's files in its record's order: a stable sort
        combined[name] = table.sort_by([("study_id", "ascending")])
    return combined


def _read_batch_tables(
    layout: Layout, batch: str, studies: list[str], names: tuple[str, ...]
) -> dict[str, pa.Table]:
    # ``studies`` is always read: it says whether the files are this batch's
    wanted = dict.fromkeys(("studies", *names))
    try:
        tables = {name: pq.ParquetFile(layout.batch_table(batch, name)).read() for name in wanted}
        if all(tables[name].schema.equals(BATCH_TABLE_SCHEMAS[name]) for name in wanted) and sorted(
            tables["studies"].column("study_id").to_pylist()
        ) == sorted(studies):
            return tables
    except (OSError, pa.ArrowException):
        pass
    return batch_tables(layout.data_dir, _study_records(layout, studies))


def _study_records(layout: Layout, studies: Iterable[str]) -> list[dict]:
    return load_records(layout.study_record(study) for study in studies)


def load_records(paths: Iterable[str | Path]) -> list[dict]:
    """Read study records (JSON), sorted by study id."""
    records = [json.loads(Path(path).read_text(encoding="utf-8")) for path in paths]
    return sorted(records, key=lambda record: record["study_id"])
