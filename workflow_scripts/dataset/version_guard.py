"""The promise that a version name always means the same bytes.

A finished version (one with a ``manifest.json``) is rebuilt only with the same configuration
and the same inputs; :func:`check_finished_version` runs when the workflow is parsed and refuses,
before any job, to build it differently, saying what changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from loader.manifest import MANIFEST_NAME, file_digest, read_manifest
from workflow_scripts.dataset.manifest import build_config, top_listing
from workflow_scripts.layout import Layout
from workflow_scripts.raw.links import StudyLink
from workflow_scripts.raw.listing import StudyListing, list_study, read_file_stats

__all__ = ["VersionChangedError", "check_finished_version"]

_SHOWN = 5

#: (study link, contour kinds) -> the study's listing
ListStudy = Callable[[StudyLink, tuple[str, ...]], StudyListing]
#: relative paths -> (size, mtime_ns) of those that exist
StatFiles = Callable[[list[str]], dict[str, tuple[int, int]]]


class VersionChangedError(RuntimeError):
    """A finished version would be rebuilt with another configuration or other inputs."""


def check_finished_version(
    layout: Layout,
    config: Mapping[str, Any],
    links: list[StudyLink],
    list_files: ListStudy | None = None,
    stat_files: StatFiles | None = None,
) -> None:
    """Refuse to rebuild a finished version with another configuration or other inputs.

    Does nothing when the version has no manifest yet (a new or interrupted build). Otherwise
    compares the shaping configuration (``build_config``: not how the build runs, such as
    ``studies_per_job``), the study folders, the listing digest of every study, and each
    recorded input file: by size and modification time against the manifest first, and by
    sha256 only for files whose time changed, so an unchanged archive costs one ``stat`` per
    input file and a few ``scandir`` calls per study, and a touched but identical file passes.
    ``list_files`` and ``stat_files`` default to
    :func:`~workflow_scripts.raw.listing.list_study` and
    :func:`~workflow_scripts.raw.listing.read_file_stats` (the build plan passes caching
    ones, shared with the job fingerprints). Raises VersionChangedError saying what changed.
    """
    if not (layout.version_dir / MANIFEST_NAME).exists():
        return
    list_files = list_files or (lambda link, kinds: list_study(link, layout.data_dir, kinds))
    stat_files = stat_files or (lambda relpaths: read_file_stats(layout.data_dir, relpaths))
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
        built_kinds = tuple(old.get("contours", config["contours"]))
        changes += _input_changes(manifest, layout, links, built_kinds, list_files, stat_files)
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
    list_files: ListStudy,
    stat_files: StatFiles,
) -> list[str]:
    changes = []
    recorded = manifest["inputs"]
    stats = stat_files(list(recorded))
    changed = [
        relpath
        for relpath, entry in recorded.items()
        if _input_changed(layout, relpath, entry, stats.get(relpath))
    ]
    if changed:
        changes.append(_some(changed, "input file(s) changed or missing"))
    listing = manifest["listing"]
    if top_listing(layout.data_dir) != listing["top"]:
        changes.append("study folders were added or removed under dicoms/ or contourfiles/")
    relisted = [
        link.patient_id
        for link in sorted(links, key=lambda link: link.patient_id)
        if list_files(link, kinds).digest() != listing["studies"].get(link.patient_id)
    ]
    if relisted:
        changes.append(_some(relisted, "study(ies) with files added, removed or renamed"))
    return changes


def _some(names: list[str], what: str) -> str:
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return f"{len(names)} {what}: {', '.join(names[:_SHOWN])}{more}"


def _input_changed(
    layout: Layout, relpath: str, entry: Mapping[str, Any], stat: tuple[int, int] | None
) -> bool:
    """Whether the file differs from its manifest entry: absent, another size, or another
    modification time and content (a touched but identical file has not changed)."""
    if stat is None:
        return True
    size, mtime_ns = stat
    if size != entry["size"]:
        return True
    if mtime_ns == entry["mtime_ns"]:
        return False
    return file_digest(layout.data_dir / relpath)["sha256"] != entry["sha256"]
