"""The manifest of a built dataset version, and checking a version folder against it.

``{out_dir}/{version}/manifest.json`` is written last, only when the whole build succeeded, so a
version folder without one is not a finished dataset. It records (all paths POSIX, relative):

- ``format`` (int), ``version`` (str), ``built_at`` (UTC ISO 8601; the only field that differs
  between two builds of the same inputs and configuration);
- ``config``: the configuration the dataset was built with;
- ``code``: ``package_version``, ``git_commit`` and ``git_dirty`` (None when not a git checkout);
- ``software``: versions of Python and the libraries that shape the bytes;
- ``inputs``: ``{path relative to data_dir: {"sha256", "size", "mtime_ns"}}`` for link.csv and
  every DICOM and contour file the build read (also those it left out: repairing one changes
  the dataset); an input reached through a symbolic link also has ``link_target``, the file
  that was read (relative to data_dir when inside it, else absolute);
- ``outputs``: ``{path relative to the version folder: {"sha256", "size"}}`` for every file the
  build wrote into the version folder (the manifest itself excepted);
- ``counts``: studies, samples, and problems by code.

Both the workflow (which writes it) and the loader (which checks it) use this module; it also
holds the one ``{"sha256", "size"}`` digest that every manifest entry and study record uses.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "MANIFEST_NAME",
    "DatasetNotFinishedError",
    "DatasetVerificationError",
    "bytes_digest",
    "check_dataset",
    "file_digest",
    "finished_versions",
    "manifest_bytes",
    "read_manifest",
    "verify_dataset",
]

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
#: What a version folder holds besides its manifest: any of them without a manifest is a build
#: that did not finish.
DATASET_PARTS = ("index.parquet", "slices", "pairs", "qc", "validation.parquet")
#: What marks a folder of raw data in the Sunnybrook layout (the workflow's data_dir).
RAW_DATA_PARTS = ("link.csv", "dicoms", "contourfiles")


class DatasetNotFinishedError(FileNotFoundError):
    """The folder has no manifest: the build did not finish (or this is not a dataset)."""


class DatasetVerificationError(ValueError):
    """Files of a finished dataset are missing or differ from what the manifest recorded."""

    def __init__(self, version_dir: Path, problems: list[str]):
        self.problems = problems
        shown = "\n  ".join(problems[:10])
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        super().__init__(
            f"dataset {version_dir} does not match its manifest "
            f"({len(problems)} problem(s)):\n  {shown}{more}"
        )


def bytes_digest(data: bytes) -> dict[str, Any]:
    """The manifest's digest of some content: ``{"sha256": hex digest, "size": bytes}``."""
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def file_digest(path: str | Path) -> dict[str, Any]:
    """:func:`bytes_digest` of a file's content, read in chunks (never the whole file at once)."""
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
        size = handle.tell()
    return {"sha256": digest.hexdigest(), "size": size}


def read_manifest(version_dir: str | Path) -> dict[str, Any]:
    """Load ``manifest.json`` of a version folder.

    Raises DatasetNotFinishedError when it is absent, with a message saying what that means.
    """
    path = Path(version_dir) / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetNotFinishedError(not_a_version_message(Path(version_dir))) from None
    return _parsed(path, text)


def _parsed(path: Path, text: str) -> dict[str, Any]:
    """The manifest in ``text`` (read from ``path``); ValueError for another format."""
    manifest = json.loads(text)
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(
            f"{path}: manifest format {manifest.get('format')!r} is not supported "
            f"(expected {MANIFEST_FORMAT})"
        )
    return manifest


def not_a_version_message(folder: Path) -> str:
    """Why ``folder`` (which has no manifest) is not a finished dataset version, by what it is,
    and what to pass instead."""
    start = f"{folder} has no {MANIFEST_NAME}: it is not a finished dataset"
    if folder.is_dir():
        finished, unfinished = finished_versions(folder)
        if finished:
            names = ", ".join(name for _, _, name, _, _ in finished)
            return (
                f"{start} but a folder of dataset versions, holding {len(finished)} finished "
                f"version(s): {names}. Pass one of them, e.g. {folder / finished[-1][2]}"
            )
        if any((folder / name).exists() for name in RAW_DATA_PARTS):
            return (
                f"{start} but raw data in the Sunnybrook layout (link.csv, dicoms/, "
                "contourfiles/). Build a version from it (snakemake --cores N --config "
                f"data_dir={folder} version=X) and pass that version's folder, e.g. results/X"
            )
        if any((folder / name).exists() for name in DATASET_PARTS):
            return (
                f"{start}: the build of this version did not complete. Run the workflow (the "
                "same command) to finish it."
            )
        if unfinished:
            return (
                f"{start} but a folder of dataset versions, none of them finished: "
                + ", ".join(unfinished)
                + ". Run the workflow to finish one."
            )
    return (
        f"{start}, and not a dataset version folder ({{out_dir}}/{{version}}, e.g. "
        "results/1.0.0; python -m loader versions OUT_DIR lists the finished versions)."
    )


def finished_versions(out_dir: Path) -> tuple[list[tuple], list[str]]:
    """The finished versions in ``out_dir`` (a folder of versions) as (built_at, version,
    folder name, samples, studies), oldest first, and one line per unfinished or unreadable
    version folder."""
    finished, unfinished = [], []
    for folder in sorted(p for p in out_dir.iterdir() if p.is_dir()):
        try:
            path = folder / MANIFEST_NAME
            manifest = _parsed(path, path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            if any((folder / name).exists() for name in DATASET_PARTS):  # a partial build
                unfinished.append(f"{folder.name} (no {MANIFEST_NAME}: not finished)")
            continue  # other folders (logs, work files) are not dataset versions
        except (ValueError, OSError) as exc:  # json.JSONDecodeError is a ValueError
            unfinished.append(f"{folder.name} (unreadable {MANIFEST_NAME}: {exc})")
            continue
        counts = manifest.get("counts", {})
        finished.append(
            (
                str(manifest.get("built_at", "")),
                str(manifest.get("version", folder.name)),
                folder.name,
                counts.get("samples", "?"),
                counts.get("studies", "?"),
            )
        )
    return sorted(finished), unfinished


def verify_dataset(version_dir: str | Path, full: bool = False) -> list[str]:
    """Compare the files of a finished version folder with its manifest.

    The fast check (default) confirms every output file exists with the recorded size; ``full``
    also recomputes every sha256. Returns one human-readable line per problem (empty when all
    is well). Raises DatasetNotFinishedError when there is no manifest.
    """
    version_dir = Path(version_dir)
    manifest = read_manifest(version_dir)
    problems = []
    for relpath, expected in sorted(manifest["outputs"].items()):
        path = version_dir / relpath
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            problems.append(f"{relpath}: missing")
            continue
        if size != expected["size"]:
            problems.append(f"{relpath}: size {size} bytes, manifest says {expected['size']}")
        elif full and file_digest(path)["sha256"] != expected["sha256"]:
            problems.append(f"{relpath}: content changed (sha256 differs from the manifest)")
    return problems


def check_dataset(version_dir: str | Path, full: bool = False) -> dict[str, Any]:
    """Return the manifest of a finished, intact version folder, or raise.

    Raises DatasetNotFinishedError (no manifest) or DatasetVerificationError (files missing or
    changed), naming the files.
    """
    problems = verify_dataset(version_dir, full=full)
    if problems:
        raise DatasetVerificationError(Path(version_dir), problems)
    return read_manifest(version_dir)


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The bytes of ``manifest.json`` for ``manifest`` (format number added, keys sorted)."""
    text = json.dumps({"format": MANIFEST_FORMAT, **manifest}, indent=1, sort_keys=True) + "\n"
    return text.encode("utf-8")
