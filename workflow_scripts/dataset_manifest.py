"""Writing a version's manifest, and refusing to rebuild a finished version differently.

The manifest format and the checks a reader makes live in ``loader.manifest``; this module
assembles what the workflow knows (configuration, code and library versions, digests of every
input and output, counts) and guards the promise that a version name always means the same
bytes: a finished version is rebuilt only with the same configuration and the same inputs.
"""

from __future__ import annotations

import platform
import subprocess
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from loader.manifest import MANIFEST_NAME, file_digest, read_manifest, write_manifest
from workflow_scripts.dataset_index import load_records
from workflow_scripts.links import StudyLink
from workflow_scripts.pairing import StudyPairing, pair_study, study_listing_digest
from workflow_scripts.settings import Layout

__all__ = [
    "VersionChangedError",
    "build_config",
    "build_manifest",
    "check_finished_version",
    "top_listing",
    "write_dataset_manifest",
]

#: Libraries whose versions can change the bytes of a build.
SOFTWARE = ("pydicom", "numpy", "Pillow", "pandas", "pyarrow", "snakemake")
#: Configuration keys that shape the dataset (data_dir and out_dir are only locations: the
#: inputs' digests stand for the data).
BUILD_KEYS = ("version", "contours", "splits", "split_seed", "checks", "qc")
_SHOWN = 5


class VersionChangedError(RuntimeError):
    """A finished version would be rebuilt with another configuration or other inputs."""


def build_config(config: Mapping[str, Any], phantom: bool) -> dict[str, Any]:
    """The part of the configuration that shapes the dataset (with ``phantom`` when built)."""
    keys = (*BUILD_KEYS, "phantom") if phantom else BUILD_KEYS
    return {key: config[key] for key in keys if key in config}


def top_listing(data_dir: str | Path) -> dict[str, list[str]]:
    """The study folder names under dicoms/ and contourfiles/ (hidden ones included)."""
    data_dir = Path(data_dir)
    listing = {}
    for top in ("dicoms", "contourfiles"):
        folder = data_dir / top
        listing[top] = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    return listing


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
        config: the full configuration (recorded whole; ``build_config`` of it is what a
            rebuild must match).
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
        path = Path(path)
        sha256, size = file_digest(path)
        outputs[path.relative_to(layout.version_dir).as_posix()] = {"sha256": sha256, "size": size}
    outputs.pop(MANIFEST_NAME, None)
    by_code = Counter(problem["code"] for problem in problems)
    by_severity = Counter(problem["severity"] for problem in problems)
    return {
        "version": layout.version,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "config": dict(config),
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


def check_finished_version(
    layout: Layout,
    config: Mapping[str, Any],
    links: list[StudyLink],
    contour_kinds: tuple[str, ...],
    pair: Callable[[StudyLink, Path, tuple[str, ...]], StudyPairing] = pair_study,
) -> None:
    """Refuse to rebuild a finished version with another configuration or other inputs.

    Does nothing when the version has no manifest yet (a new or interrupted build). Otherwise
    compares the shaping configuration, the study folders, the file listing of every study,
    and each recorded input file: by size and modification time first, and by sha256 only for
    files whose time changed, so an unchanged archive is checked in a fraction of a second and
    a touched but identical file passes. ``pair`` lists a study (pairing.pair_study, or a
    caching stand-in). Raises VersionChangedError saying what changed.
    """
    if not (layout.version_dir / MANIFEST_NAME).exists():
        return
    manifest = read_manifest(layout.version_dir)
    old, new = manifest["build_config"], build_config(config, layout.phantom)
    changes = [
        f"config {key}: {old.get(key)!r} -> {new.get(key)!r}"
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    ]
    # A deleted phantom is regenerated from its configuration, which was compared above.
    if not (layout.phantom and not layout.data_dir.exists()):
        # List the studies as the finished build did, so a config change is not also
        # reported as changed files.
        built_kinds = tuple(old.get("contours", contour_kinds))
        changes += _input_changes(manifest, layout, links, built_kinds, pair)
    if changes:
        raise VersionChangedError(
            f"version {layout.version!r} in {layout.out_dir} is finished (it has a "
            f"{MANIFEST_NAME}) and would now be built differently:\n  - "
            + "\n  - ".join(changes)
            + "\nA version never changes: build a new one (e.g. --config version=X), or delete "
            f"{layout.version_dir} if you really mean to discard it."
        )


def _input_changes(
    manifest: Mapping[str, Any],
    layout: Layout,
    links: list[StudyLink],
    kinds: tuple[str, ...],
    pair: Callable[[StudyLink, Path, tuple[str, ...]], StudyPairing],
) -> list[str]:
    changes = []
    changed = [
        relpath
        for relpath, entry in manifest["inputs"].items()
        if _input_changed(layout.data_dir / relpath, entry)
    ]
    if changed:
        changes.append(_some(changed, "input file(s) changed or missing"))
    listing = manifest["listing"]
    if top_listing(layout.data_dir) != listing["top"]:
        changes.append("study folders were added or removed under dicoms/ or contourfiles/")
    relisted = [
        link.patient_id
        for link in links
        if study_listing_digest(pair(link, layout.data_dir, kinds))
        != listing["studies"].get(link.patient_id)
    ]
    if relisted:
        changes.append(_some(relisted, "study(ies) with files added, removed or renamed"))
    return changes


def _some(names: list[str], what: str) -> str:
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return f"{len(names)} {what}: {', '.join(names[:_SHOWN])}{more}"


def _input_entry(data_dir: Path, relpath: str, digest: Mapping[str, Any] | None) -> dict:
    """Digest entry of an input, with its modification time for the quick check."""
    path = data_dir / relpath
    stat = path.stat()
    if digest is None:
        sha256, size = file_digest(path)
        digest = {"sha256": sha256, "size": size}
    return {**digest, "mtime_ns": stat.st_mtime_ns}


def _input_changed(path: Path, entry: Mapping[str, Any]) -> bool:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return True
    if stat.st_size != entry["size"]:
        return True
    if stat.st_mtime_ns == entry["mtime_ns"]:
        return False
    return file_digest(path)[0] != entry["sha256"]


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
    root = Path(__file__).resolve().parent.parent
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
    """Assemble and atomically write the manifest of a finished build; return its path."""
    records = load_records(record_paths)
    problems = pq.read_table(validation_path).to_pylist()
    manifest = build_manifest(layout, config, records, problems, [index_path, validation_path])
    return write_manifest(layout.version_dir, manifest)
