"""Writing a version's manifest: the last file of a build, which marks the version finished.

The manifest format and the checks a reader makes live in ``loader.manifest``; this module
assembles what the workflow knows: configuration, code and library versions, digests of every
input and output, the file listings the immutability check compares
(:mod:`workflow_scripts.dataset.version_guard`), and counts.
"""

from __future__ import annotations

import platform
import subprocess
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from loader.manifest import MANIFEST_NAME, file_digest, manifest_bytes
from workflow_scripts.dataset.tables import load_records
from workflow_scripts.files import flush_to_disk, folder_names, write_bytes_atomic
from workflow_scripts.layout import Layout

__all__ = [
    "build_config",
    "build_manifest",
    "recorded_config",
    "top_listing",
    "write_dataset_manifest",
]

#: Libraries whose versions can change the bytes of a build.
SOFTWARE = ("pydicom", "numpy", "Pillow", "pandas", "pyarrow", "snakemake")
#: Configuration keys that shape the dataset (data_dir and out_dir are only locations: the
#: inputs' digests stand for the data).
BUILD_KEYS = ("version", "contours", "splits", "split_seed", "checks", "qc")
#: Configuration keys that say how the build runs, never what it builds: they are not
#: recorded in the manifest (builds that differ only in them are the same bytes).
RUN_KEYS = ("studies_per_job",)


def build_config(config: Mapping[str, Any], phantom: bool) -> dict[str, Any]:
    """The part of the configuration that shapes the dataset (with ``phantom`` when built)."""
    keys = (*BUILD_KEYS, "phantom") if phantom else BUILD_KEYS
    return {key: config[key] for key in keys if key in config}


def recorded_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration as the manifest records it: all of it but :data:`RUN_KEYS`."""
    return {key: value for key, value in config.items() if key not in RUN_KEYS}


def top_listing(data_dir: str | Path) -> dict[str, list[str]]:
    """The study folder names under dicoms/ and contourfiles/ (hidden ones included)."""
    return {top: folder_names(Path(data_dir) / top) for top in ("dicoms", "contourfiles")}


def build_manifest(
    layout: Layout,
    config: Mapping[str, Any],
    records: list[dict],
    problems: list[Mapping[str, Any]],
    top_outputs: Iterable[str | Path],
) -> dict[str, Any]:
    """Assemble the manifest of a finished build.

    Args:
        layout: the build's folders.
        config: the full configuration (recorded but for :data:`RUN_KEYS`; ``build_config``
            of it is what a rebuild must match).
        records: the study records, which carry the digests of the inputs they read and the
            outputs they wrote.
        problems: every row of validation.parquet, for the counts.
        top_outputs: the version-level files written after the studies (index, validation).
    """
    inputs = {"link.csv": _input_entry(layout.data_dir, "link.csv", None)}
    outputs = {}
    for record in records:
        for relpath, digest in record["inputs"].items():
            inputs[relpath] = _input_entry(layout.data_dir, relpath, digest)
        outputs.update(record["outputs"])
    for path in top_outputs:
        outputs[layout.in_version(Path(path))] = file_digest(path)
    outputs.pop(MANIFEST_NAME, None)
    by_code = Counter(problem["code"] for problem in problems)
    by_severity = Counter(problem["severity"] for problem in problems)
    return {
        "version": layout.version,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "config": recorded_config(config),
        "build_config": build_config(config, layout.phantom),
        "code": _code_revision(),
        "software": _software_versions(),
        "inputs": dict(sorted(inputs.items())),
        "outputs": dict(sorted(outputs.items())),
        "listing": {
            "top": top_listing(layout.data_dir),
            "studies": {record["study_id"]: record["listing"] for record in records},
        },
        "counts": {
            "studies": len(records),
            "studies_with_samples": sum(1 for record in records if record["samples"]),
            "dicoms": sum(record["counts"]["dicoms"] for record in records),
            "contour_files": sum(record["counts"]["contour_files"] for record in records),
            "samples": sum(record["counts"]["samples"] for record in records),
            "problems": dict(sorted(by_code.items())),
            "problems_by_severity": dict(sorted(by_severity.items())),
        },
    }


def _input_entry(data_dir: Path, relpath: str, digest: Mapping[str, Any] | None) -> dict:
    """Digest entry of an input, with its modification time for the quick check: the one the
    study's build saw when it read the file (its record's ``mtime_ns``), else the file's now."""
    if digest is not None and "mtime_ns" in digest:
        return {key: digest[key] for key in ("sha256", "size", "mtime_ns")}
    path = data_dir / relpath
    return {**(digest or file_digest(path)), "mtime_ns": path.stat().st_mtime_ns}


def _software_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in SOFTWARE:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _code_revision() -> dict[str, Any]:
    try:
        package_version = metadata.version("lv-dataset")
    except metadata.PackageNotFoundError:
        package_version = None
    root = Path(__file__).resolve().parents[2]  # the repository (or site-packages)
    commit = _git(root, "rev-parse", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=no") if commit else None
    return {
        "package_version": package_version,
        "git_commit": commit,
        "git_dirty": None if commit is None else bool(status),
    }


def _git(root: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def write_dataset_manifest(
    layout: Layout,
    config: Mapping[str, Any],
    record_paths: Iterable[str | Path],
    index_path: str | Path,
    validation_path: str | Path,
) -> Path:
    """Assemble and atomically write the manifest of a finished build; return its path.

    Everything written before is flushed to disk first (see :mod:`workflow_scripts.files`):
    the manifest is the version's commit point.
    """
    records = load_records(record_paths)
    problems = pq.read_table(validation_path).to_pylist()
    manifest = build_manifest(layout, config, records, problems, [index_path, validation_path])
    flush_to_disk()
    write_bytes_atomic(layout.manifest, manifest_bytes(manifest))
    return layout.manifest
