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

import pyarrow as pa
import pyarrow.parquet as pq

from loader.manifest import (
    MANIFEST_NAME,
    MANIFEST_TABLES,
    file_digest,
    manifest_files,
    manifest_section_table,
)
from workflow_scripts.dataset.batch_tables import input_entry, read_version_tables
from workflow_scripts.dataset.stale_records import (
    StaleRecordsError,
    find_stale_records,
    stale_records_message,
)
from workflow_scripts.files import flush_to_disk, folder_names, write_bytes_atomic
from workflow_scripts.layout import Layout, RawLayout
from workflow_scripts.raw.contours import CONTOUR_KINDS
from workflow_scripts.study.frames import FRAMES_LABELLED
from workflow_scripts.study.resample import ResampleGrid

__all__ = [
    "CONFIG_FILE_INPUTS",
    "EXCLUSIONS_INPUT",
    "SPLITS_INPUT",
    "build_config",
    "config_file_entry",
    "derived_from_entry",
    "exclusions_entry",
    "recorded_config",
    "top_listing",
    "unlisted_contour_files",
    "write_dataset_manifest",
    "write_manifest_files",
]

#: Libraries whose versions can change the bytes of a build.
SOFTWARE = ("pydicom", "numpy", "Pillow", "pandas", "pyarrow", "matplotlib", "snakemake")
#: Configuration keys that shape the dataset (data_dir and out_dir are only locations: the
#: inputs' digests stand for the data). ``follow_symlinks`` decides what is read.
BUILD_KEYS = (
    "version",
    "contours",
    "splits",
    "split_seed",
    "checks",
    "qc",
    "resample",
    "follow_symlinks",
    "frames",
)
#: Configuration keys that say how the build runs, never what it builds: they are not
#: recorded in the manifest (builds that differ only in them are the same bytes).
#: ``from_version`` says where the configuration came from; the manifest records the whole
#: configuration, and the version it was made from as ``derived_from``.
RUN_KEYS = ("studies_per_job", "from_version")
#: The key of the reviewed exclusions file (config ``exclusions``) among the manifest's inputs.
#: The other inputs are paths relative to data_dir; this entry also records the ``path`` as
#: configured, since the file usually lives elsewhere. Only its content shapes the dataset:
#: moving the file changes nothing, editing it makes another version.
EXCLUSIONS_INPUT = "exclusions.csv"
#: The key of the splits file (config ``splits_file``) among the manifest's inputs, recorded
#: the same way: its content is part of the version, its location is not.
SPLITS_INPUT = "splits.csv"
#: Config keys naming a file outside data_dir that is an input of the version, and the name
#: of its entry among the manifest's inputs.
CONFIG_FILE_INPUTS = {"exclusions": EXCLUSIONS_INPUT, "splits_file": SPLITS_INPUT}


#: The batches' tables (:mod:`~workflow_scripts.dataset.batch_tables`) the manifest is made of.
BATCH_TABLES_USED = ("inputs", "outputs", "studies")


def build_config(config: Mapping[str, Any], phantom: bool) -> dict[str, Any]:
    """The part of the configuration that shapes the dataset (with ``phantom`` when built).

    ``resample`` appears in its canonical form (numbers, not text) and only when it is set,
    so a native build's record is the same as before the key existed; ``frames`` likewise
    only when it is ``all`` (a version finished before the key existed stored the labelled
    frames, and stays the same version).
    """
    keys = (*BUILD_KEYS, "phantom") if phantom else BUILD_KEYS
    shaping = {key: config[key] for key in keys if key in config}
    grid = ResampleGrid.from_config(shaping.pop("resample", None))
    if grid is not None:
        shaping["resample"] = grid.as_config()
    if shaping.get("frames", FRAMES_LABELLED) == FRAMES_LABELLED:
        shaping.pop("frames", None)
    return shaping


def recorded_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration as the manifest records it: all of it but :data:`RUN_KEYS`."""
    return {key: value for key, value in config.items() if key not in RUN_KEYS}


def config_file_entry(config: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    """The manifest's entry for the file config ``key`` names (one of
    :data:`CONFIG_FILE_INPUTS`): its ``sha256``, ``size``, ``mtime_ns`` and ``path`` as
    configured; None without one."""
    path = config.get(key, "")
    if not path:
        return None
    return {**file_digest(path), "mtime_ns": Path(path).stat().st_mtime_ns, "path": path}


def exclusions_entry(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The manifest's entry for the reviewed exclusions file (config ``exclusions``)."""
    return config_file_entry(config, "exclusions")


def derived_from_entry(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The manifest's ``derived_from`` for a version made from another (config
    ``from_version``): that version's name and the sha256 of its manifest.json (which pins its
    whole record, configuration included); None for a version built from config.yaml."""
    source = config.get("from_version") or ""
    if not source:
        return None
    manifest = Path(config["out_dir"]) / source / MANIFEST_NAME
    return {"version": source, "sha256": file_digest(manifest)["sha256"]}


def top_listing(data_dir: str | Path) -> dict[str, list[str]]:
    """The study folder names under dicoms/ and contourfiles/ (hidden ones included)."""
    return {top: folder_names(Path(data_dir) / top) for top in RawLayout.STUDY_FOLDERS}


def unlisted_contour_files(
    data_dir: str | Path, listed: set[str], kinds: tuple[str, ...]
) -> dict[str, list[str]]:
    """The names in the contour sub-folders (of ``kinds``) of every folder under contourfiles/
    that link.csv does not list (``listed``: its original_ids), by folder: each such file is a
    row of validation.parquet, so adding one changes the dataset."""
    data_dir = Path(data_dir)
    return {
        name: [
            f"{RawLayout.contour_kind_folder(kind)}/{file}"
            for kind in kinds
            for file in folder_names(data_dir / RawLayout.contour_kind_relpath(name, kind))
        ]
        for name in folder_names(data_dir / RawLayout.CONTOURS)
        if not name.startswith(".") and name not in listed
    }


def build_manifest(
    layout: Layout,
    config: Mapping[str, Any],
    tables: Mapping[str, pa.Table],
    problems: list[Mapping[str, Any]],
    top_outputs: Iterable[str | Path],
    exclusions: Mapping[str, Any] | None = None,
    splits_file: Mapping[str, Any] | None = None,
    derived_from: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the manifest of a finished build; its ``inputs`` and ``outputs`` are tables
    (:func:`loader.manifest.manifest_files` writes them as they are), the rest mappings.

    Args:
        layout: the build's folders.
        config: the full configuration (recorded but for :data:`RUN_KEYS`; ``build_config``
            of it is what a rebuild must match).
        tables: the study records' ``inputs``, ``outputs`` and ``studies`` tables
            (:mod:`~workflow_scripts.dataset.batch_tables`), which carry the digests of the
            files the studies read and wrote.
        problems: every row of validation.parquet, for the counts.
        top_outputs: the version-level files written after the studies (index, validation,
            the version's QC files).
        exclusions: the reviewed exclusions file's digest, ``mtime_ns`` and ``path``, recorded
            under :data:`EXCLUSIONS_INPUT`; None when the build has none.
        splits_file: the same for the splits file (config ``splits_file``), recorded under
            :data:`SPLITS_INPUT`.
        derived_from: for a version made from another, :func:`derived_from_entry`; the
            manifest has ``derived_from`` only then.
    """
    more_inputs = {RawLayout.LINK_CSV: input_entry(layout.data_dir, RawLayout.LINK_CSV, None)}
    if exclusions is not None:
        more_inputs[EXCLUSIONS_INPUT] = dict(exclusions)
    if splits_file is not None:
        more_inputs[SPLITS_INPUT] = dict(splits_file)
    more_outputs = {layout.in_version(Path(path)): file_digest(path) for path in top_outputs}
    studies = tables["studies"].to_pydict()
    by_code = Counter(problem["code"] for problem in problems)
    by_severity = Counter(problem["severity"] for problem in problems)
    manifest = {
        "version": layout.version,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "config": recorded_config(config),
        "build_config": build_config(config, layout.phantom),
        "code": _code_revision(),
        "software": _software_versions(),
        "inputs": manifest_section_table(
            "inputs", tables["inputs"].drop_columns(["study_id"]), more_inputs
        ),
        "outputs": manifest_section_table(
            "outputs",
            tables["outputs"].drop_columns(["study_id"]),
            more_outputs,
            leave_out=(MANIFEST_NAME, *MANIFEST_TABLES.values()),  # the manifest's own files
        ),
        "listing": {
            "top": top_listing(layout.data_dir),
            "studies": dict(zip(studies["study_id"], studies["listing"], strict=True)),
            "unlisted_contours": unlisted_contour_files(
                layout.data_dir, set(studies["original_id"]), tuple(config["contours"])
            ),
        },
        "counts": {
            "studies": len(studies["study_id"]),
            "studies_with_samples": sum(1 for count in studies["samples"] if count),
            "dicoms": sum(studies["dicoms"]),
            "contour_files": sum(studies["contour_files"]),
            "contour_files_not_used": _contour_files_not_used(
                layout, config, studies["original_id"]
            ),
            "samples": sum(studies["samples"]),
            "problems": dict(sorted(by_code.items())),
            "problems_by_severity": dict(sorted(by_severity.items())),
        },
    }
    if derived_from is not None:
        manifest["derived_from"] = dict(derived_from)
    return manifest


def _contour_files_not_used(
    layout: Layout, config: Mapping[str, Any], original_ids: list[str]
) -> dict[str, int]:
    """Per contour kind the configuration leaves out (``o`` with ``contours: [i]``), how many
    such files the listed studies (``original_ids``) have: a build should say what it did not
    use."""
    unused = {}
    for kind in (kind for kind in CONTOUR_KINDS if kind not in config["contours"]):
        unused[kind] = sum(
            not name.startswith(".")
            for original_id in original_ids
            for name in folder_names(
                layout.raw.path(RawLayout.contour_kind_relpath(original_id, kind))
            )
        )
    return unused


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
    batch_records: Iterable[str | Path],
    index_path: str | Path,
    validation_path: str | Path,
    qc_outputs: Iterable[str | Path] = (),
    exclusions: Mapping[str, Any] | None = None,
    splits_file: Mapping[str, Any] | None = None,
    measures_path: str | Path | None = None,
    derived_from: Mapping[str, Any] | None = None,
    frames_path: str | Path | None = None,
) -> Path:
    """Assemble and atomically write the manifest of a finished build; return its path.

    ``batch_records``: the record files of every batch (rule ``build_studies``), whose tables
    hold their studies' files (:func:`~workflow_scripts.dataset.batch_tables.read_version_tables`);
    ``qc_outputs``: the version's own QC files and folders (review sheet, plots), written
    after the tables; ``exclusions``, ``splits_file``, ``derived_from``: see
    :func:`build_manifest`; ``measures_path``: measures.parquet, and ``frames_path``:
    frames.parquet (``frames: all``), listed with the tables.

    Raises StaleRecordsError, writing nothing, when a study was built from other files than
    those on disk now (:mod:`~workflow_scripts.dataset.stale_records`): the manifest would
    record the new files' digests beside samples made from the old ones.

    Everything written before is flushed to disk first (see :mod:`workflow_scripts.files`):
    the manifest is the version's commit point.
    """
    tables = read_version_tables(layout, batch_records, BATCH_TABLES_USED)
    if stale := find_stale_records(layout, config, tables):
        raise StaleRecordsError(stale_records_message(layout, stale))
    problems = pq.read_table(validation_path, columns=["code", "severity"]).to_pylist()
    optional = [path for path in (measures_path, frames_path) if path]
    top_outputs = [index_path, validation_path, *optional, *_files(qc_outputs)]
    manifest = build_manifest(
        layout,
        config,
        tables,
        problems,
        top_outputs,
        exclusions=exclusions,
        splits_file=splits_file,
        derived_from=derived_from,
    )
    write_manifest_files(layout, manifest)
    return layout.manifest


def write_manifest_files(layout: Layout, manifest: Mapping[str, Any]) -> None:
    """Write ``manifest`` (as :func:`build_manifest` returns it) in the current format: its
    tables first, each atomically, then everything written so far is flushed to disk, then
    ``manifest.json``, which names the tables' digests: the version's commit point (see
    :func:`loader.manifest.manifest_files`)."""
    *tables, (name, data) = manifest_files(manifest)
    for table_name, table_data in tables:
        write_bytes_atomic(layout.version_dir / table_name, table_data)
    flush_to_disk()
    write_bytes_atomic(layout.version_dir / name, data)


def _files(paths: Iterable[str | Path]) -> list[Path]:
    """The files among ``paths`` and inside the folders among them, sorted; Snakemake's
    ``.snakemake_timestamp`` markers are not part of the dataset."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found += [
                p for p in path.rglob("*") if p.is_file() and p.name != ".snakemake_timestamp"
            ]
        else:
            found.append(path)
    return sorted(found)
