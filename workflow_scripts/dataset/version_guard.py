"""The promise that a version name always means the same bytes.

A finished version (one with a ``manifest.json``) is rebuilt only with the same configuration
and the same inputs; :func:`check_finished_version` runs when the workflow is parsed and refuses,
before any job, to build it differently, saying what changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from loader.manifest import MANIFEST_NAME, file_digest, read_manifest
from workflow_scripts.dataset.manifest import EXCLUSIONS_INPUT, build_config, top_listing
from workflow_scripts.layout import Layout
from workflow_scripts.raw.links import StudyLink
from workflow_scripts.raw.pairing import StudyPairing, pair_study, study_listing_digest

__all__ = ["VersionChangedError", "check_finished_version"]

_SHOWN = 5


class VersionChangedError(RuntimeError):
    """A finished version would be rebuilt with another configuration or other inputs."""


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
    changes += _exclusions_changes(manifest["inputs"].get(EXCLUSIONS_INPUT), config)
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
        if relpath != EXCLUSIONS_INPUT and _input_changed(layout.data_dir / relpath, entry)
    ]
    if changed:
        changes.append(_some(changed, "input file(s) changed or missing"))
    listing = manifest["listing"]
    now = top_listing(layout.data_dir)
    for top, before in listing["top"].items():
        added = sorted(set(now.get(top, [])) - set(before))
        removed = sorted(set(before) - set(now.get(top, [])))
        if added:
            changes.append(_some([f"{top}/{name}" for name in added], "study folder(s) added"))
        if removed:
            changes.append(_some([f"{top}/{name}" for name in removed], "study folder(s) removed"))
    relisted = [
        link.patient_id
        for link in links
        if study_listing_digest(pair(link, layout.data_dir, kinds))
        != listing["studies"].get(link.patient_id)
    ]
    if relisted:
        changes.append(_some(relisted, "study(ies) with files added, removed or renamed"))
    return changes


def _exclusions_changes(entry: Mapping[str, Any] | None, config: Mapping[str, Any]) -> list[str]:
    """The reviewed exclusions, compared by content: the file may have moved (its path is a
    location, like data_dir), but other decisions make another dataset."""
    path = config.get("exclusions", "")
    if entry is None:
        return [f"exclusions: built without, now {path!r}"] if path else []
    if not path:
        return [f"exclusions: built with {entry['path']!r}, now without"]
    if _input_changed(Path(path), entry):
        return [f"exclusions: {path!r} differs from the file the version was built with"]
    return []


def _some(names: list[str], what: str) -> str:
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return f"{len(names)} {what}: {', '.join(names[:_SHOWN])}{more}"


def _input_changed(path: Path, entry: Mapping[str, Any]) -> bool:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return True
    if stat.st_size != entry["size"]:
        return True
    if stat.st_mtime_ns == entry["mtime_ns"]:
        return False
    return file_digest(path)["sha256"] != entry["sha256"]
