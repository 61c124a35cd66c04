"""The last check before a version is finished: every study record still describes the files.

A study's raw files are no Snakemake inputs: the batch fingerprint, a parameter of rule
``build_studies``, stands for them (see docs/design-notes.md), and Snakemake compares
parameters only under its default ``--rerun-triggers``. With ``--rerun-triggers mtime`` a
contour file changed in an unfinished version leaves its study built from the old file, while
the manifest would record the new file's sha256; and a file changed while the build runs, after
its study was built, does the same under any triggers. So before the manifest is written
(:func:`~workflow_scripts.dataset.manifest.write_dataset_manifest`), :func:`find_stale_records`
compares what each study record says its build read with what is on disk now, and the manifest
is refused (:class:`StaleRecordsError`) if any study was built from something else.

It compares as the parse-time checks do, at their cost: each input the record names by size
and modification time (one ``stat``, through links), by sha256 only where the time differs (a
touched but identical file passes); and each study's folder listing by its digest (a few
``scandir`` calls), which notices files added, removed or renamed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from workflow_scripts.config import FOLLOW_SYMLINKS
from workflow_scripts.layout import Layout
from workflow_scripts.raw.links import StudyLink
from workflow_scripts.raw.listing import changed_input_rows, file_stat_arrays, list_study

__all__ = ["StaleRecord", "StaleRecordsError", "find_stale_records", "stale_records_message"]

_SHOWN = 10


class StaleRecordsError(RuntimeError):
    """Study records were built from files that have changed since: no manifest."""


@dataclass(frozen=True)
class StaleRecord:
    """A study whose record no longer describes its files: ``path`` is the first input that
    changed (relative to data_dir), or the study's folders when files were added, removed or
    renamed; ``change`` says which, and how many inputs changed."""

    study_id: str
    path: str
    change: str


def find_stale_records(
    layout: Layout, config: Mapping[str, Any], tables: Mapping[str, pa.Table]
) -> list[StaleRecord]:
    """The studies whose record was built from other files than those now on disk, by study
    id (see the module's docstring). ``config``: the build's validated configuration (its
    ``contours`` and ``follow_symlinks`` list the study folders as the build did); ``tables``:
    the records' ``inputs`` and ``studies`` tables
    (:func:`~workflow_scripts.dataset.batch_tables.read_version_tables`)."""
    kinds = tuple(config["contours"])
    follow = bool(config.get("follow_symlinks", FOLLOW_SYMLINKS))
    inputs = tables["inputs"]
    relpaths = inputs["path"].to_pylist()
    sizes, times = file_stat_arrays(layout.data_dir, relpaths)
    changed: dict[str, list[str]] = {}
    gone: set[str] = set()
    for row in changed_input_rows(layout.data_dir, inputs, sizes, times):
        relpath = relpaths[row]
        changed.setdefault(inputs["study_id"][row].as_py(), []).append(relpath)
        if sizes[row] < 0:
            gone.add(relpath)
    stale = []
    studies = tables["studies"]
    for study, original_id, digest in zip(
        *(studies.column(name).to_pylist() for name in ("study_id", "original_id", "listing")),
        strict=True,
    ):
        if study in changed:
            paths = sorted(changed[study])
            what = "gone" if paths[0] in gone else "changed"
            more = f" (and {len(paths) - 1} more input(s))" if len(paths) > 1 else ""
            stale.append(StaleRecord(study, paths[0], what + more))
            continue
        listing = list_study(StudyLink(study, original_id), layout.data_dir, kinds, follow)
        if listing.digest() != digest:
            folders = f"{listing.dicom_dir}/, {listing.contour_dir}/"
            change = "files added, removed or renamed"
            stale.append(StaleRecord(study, folders, change))
    return sorted(stale, key=lambda item: item.study_id)


def stale_records_message(layout: Layout, stale: list[StaleRecord]) -> str:
    """What the refusal says: the version, each study with a file, and how to rebuild them
    (naming the batch records to force, where they are found)."""
    studies = {item.study_id for item in stale}
    lines = [
        f"version {layout.version!r}: {len(stale)} study(ies) were built from files that have "
        "changed since; no manifest was written:"
    ]
    lines += [f"  - {item.study_id}: {item.path} {item.change}" for item in stale[:_SHOWN]]
    if len(stale) > _SHOWN:
        lines.append(f"  ... and {len(stale) - _SHOWN} more")
    batches = _batch_records_of(layout, studies)
    force = " ".join(str(path) for path in batches) if batches else "build_studies"
    lines.append(
        "Their raw files are tracked by a parameter of rule build_studies, which Snakemake "
        "compares only under its default --rerun-triggers. Run the same command without "
        "--rerun-triggers to rebuild exactly the batches whose files changed, or force those "
        f"batches: --forcerun {force}"
    )
    return "\n".join(lines)


def _batch_records_of(layout: Layout, studies: set[str]) -> list[Path]:
    """The records of the batches that built ``studies`` (read only when refusing)."""
    found = []
    for path in sorted((layout.work_dir / "batches").glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if studies & set(record.get("studies", ())):
            found.append(layout.batch_record(record["batch"]))
    return found
