"""The promise that a version name always means the same bytes.

A finished version (one with a ``manifest.json``) is rebuilt only with the same configuration
and the same inputs; :func:`check_finished_version` runs when the workflow is parsed and refuses,
before any job, to build it differently, saying what changed. Once it passes, nothing of the
version is built again: its run reads no build rule (``RunMode.FINISHED`` in
:mod:`~workflow_scripts.build_plan`), and the workflow refuses a forced rerun
(:func:`forced_rerun_refusal`) and a missing file of the build
(:func:`refuse_missing_kept_files`), which say the version's folders were changed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from loader.manifest import MANIFEST_NAME, read_manifest
from workflow_scripts.config import FOLLOW_SYMLINKS
from workflow_scripts.dataset.manifest import (
    CONFIG_FILE_INPUTS,
    build_config,
    top_listing,
    unlisted_contour_files,
)
from workflow_scripts.layout import Layout, RawLayout
from workflow_scripts.raw.links import StudyLink
from workflow_scripts.raw.listing import (
    StudyListing,
    input_changed,
    list_study,
    read_file_stats,
)
from workflow_scripts.study.frames import FRAMES_LABELLED

__all__ = [
    "VersionChangedError",
    "check_finished_version",
    "forced_rerun_refusal",
    "refuse_missing_kept_files",
]

_SHOWN = 5

#: (study link, contour kinds, follow_symlinks) -> the study's listing
ListStudy = Callable[[StudyLink, tuple[str, ...], bool], StudyListing]
#: relative paths -> (size, mtime_ns) of those that exist
StatFiles = Callable[[list[str]], dict[str, tuple[int, int]]]


class VersionChangedError(RuntimeError):
    """A finished version would be rebuilt with another configuration or other inputs, or
    rewritten at all."""


def refuse_missing_kept_files(layout: Layout, kept_files: list[str]) -> None:
    """Refuse to go on with a finished version one of whose ``kept_files`` is missing (the
    files of its build that Snakemake judges its jobs by: link table, tables, QC files):
    Snakemake would rebuild them, and with them rewrite the version. Raises
    VersionChangedError naming them."""
    missing = [path for path in kept_files if not os.path.exists(path)]
    if missing:
        shown = ", ".join(missing[:_SHOWN]) + (
            f" and {len(missing) - _SHOWN} more" if len(missing) > _SHOWN else ""
        )
        raise VersionChangedError(
            f"{_finished(layout)}, but files its build keeps are missing: {shown}. Rebuilding "
            f"them would rewrite the version. {_NEVER_REWRITTEN} The dataset "
            "itself may be whole: `python -m loader verify` checks it."
        )


def forced_rerun_refusal(layout: Layout) -> str:
    """Why a forced rerun (``--forceall``, ``--forcerun``, ``--force``) of a finished version
    is refused."""
    return f"{_finished(layout)}, and a forced rerun would rewrite it. {_NEVER_REWRITTEN}"


_NEVER_REWRITTEN = (
    "A finished version is never rewritten; build a new version for new files "
    "(--config version=...)."
)


def _finished(layout: Layout) -> str:
    return f"version {layout.version!r} in {layout.out_dir} is finished (it has a manifest)"


def check_finished_version(
    layout: Layout,
    config: Mapping[str, Any],
    links: list[StudyLink],
    list_files: ListStudy | None = None,
    stat_files: StatFiles | None = None,
) -> dict[str, Any] | None:
    """Refuse to rebuild a finished version with another configuration or other inputs.

    Does nothing when the version has no manifest yet (a new or interrupted build). Otherwise
    compares the shaping configuration (``build_config``: not how the build runs, such as
    ``studies_per_job``), the study folders, the listing digest of every study, and each
    recorded input file: by size and modification time against the manifest first, and by
    sha256 only for files whose time changed, so an unchanged archive costs one ``stat`` per
    input file and a few ``scandir`` calls per study, and a touched but identical file passes.
    Inputs reached through symbolic links are compared by what they lead to (``stat`` follows
    them), with the version's own ``follow_symlinks``: a link now leading to another file of
    the same content is the same input (the manifest's ``link_target`` says what was read).

    A version built before ``follow_symlinks`` existed has none in its ``build_config``; it
    was built by the rule of ``follow_symlinks: false``. Its studies are listed by the current
    rule, so it passes where the two rules agree (no link leads out of the data folder) and is
    refused, naming the studies, where they do not.
    ``list_files`` and ``stat_files`` default to
    :func:`~workflow_scripts.raw.listing.list_study` and
    :func:`~workflow_scripts.raw.listing.read_file_stats` (the build plan passes caching
    ones, shared with the job fingerprints). Raises VersionChangedError saying what changed.

    Returns the finished version's manifest as read (so that the caller need not parse it
    again), or None when there is none.
    """
    if not (layout.version_dir / MANIFEST_NAME).exists():
        return None
    list_files = list_files or (
        lambda link, kinds, follow: list_study(link, layout.data_dir, kinds, follow)
    )
    stat_files = stat_files or (lambda relpaths: read_file_stats(layout.data_dir, relpaths))
    manifest = read_manifest(layout.version_dir)
    old, new = manifest["build_config"], build_config(config, layout.phantom)
    keys = old.keys() | new.keys()
    before_links = "follow_symlinks" not in old  # built before the key existed: see above
    if before_links:
        keys -= {"follow_symlinks"}
    # frames is recorded only when it is "all": absent, it is "labelled" (build_config)
    absent = {"frames": FRAMES_LABELLED}
    changes = [
        f"config {key}: {old.get(key, absent.get(key))!r} -> {new.get(key, absent.get(key))!r}"
        for key in sorted(keys)
        if old.get(key) != new.get(key)
    ]
    # A deleted phantom is regenerated from its configuration, which was compared above.
    if not (layout.phantom and not layout.data_dir.exists()):
        # List the studies as the finished build did, so a config change is not also
        # reported as changed files.
        built_kinds = tuple(old.get("contours", config["contours"]))
        now_follow = config.get("follow_symlinks", FOLLOW_SYMLINKS)
        built_follow = bool(old.get("follow_symlinks", now_follow))

        def listed(link: StudyLink, kinds: tuple[str, ...]) -> StudyListing:
            return list_files(link, kinds, built_follow)

        input_changes = _input_changes(manifest, layout, links, built_kinds, listed, stat_files)
        if input_changes and before_links and built_follow:
            input_changes.append(
                "(the version was built before follow_symlinks existed, when links leading out "
                "of data_dir were refused: follow_symlinks=false lists the studies as it did)"
            )
        changes += input_changes
    for key, name in CONFIG_FILE_INPUTS.items():
        changes += _config_file_changes(key, manifest["inputs"].get(name), config)
    if changes:
        raise VersionChangedError(
            f"version {layout.version!r} in {layout.out_dir} is finished (it has a "
            f"{MANIFEST_NAME}) and would now be built differently:\n  - "
            + "\n  - ".join(changes)
            + "\nA version never changes: build a new one (e.g. --config version=X), with "
            f"from_version={layout.version} to start from this one's recorded configuration, or "
            f"delete {layout.version_dir} if you really mean to discard it."
        )
    return manifest


def _input_changes(
    manifest: Mapping[str, Any],
    layout: Layout,
    links: list[StudyLink],
    kinds: tuple[str, ...],
    list_files: Callable[[StudyLink, tuple[str, ...]], StudyListing],
    stat_files: StatFiles,
) -> list[str]:
    changes = []
    outside = set(CONFIG_FILE_INPUTS.values())  # not in data_dir: compared on their own
    recorded = {k: v for k, v in manifest["inputs"].items() if k not in outside}
    stats = stat_files(list(recorded))
    root = str(layout.data_dir)
    changed = [
        relpath
        for relpath, entry in recorded.items()
        if input_changed(f"{root}/{relpath}", entry, stats.get(relpath))
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
        for link in sorted(links, key=lambda link: link.patient_id)
        if list_files(link, kinds).digest() != listing["studies"].get(link.patient_id)
    ]
    if relisted:
        changes.append(_some(relisted, "study(ies) with files added, removed or renamed"))
    if "unlisted_contours" in listing:  # recorded since the guard looks inside them
        listed = {link.original_id for link in links}
        unlisted = unlisted_contour_files(layout.data_dir, listed, kinds)
        changed = sorted(
            RawLayout.contour_dir_relpath(name)
            for name in unlisted.keys() & listing["unlisted_contours"].keys()
            if unlisted[name] != listing["unlisted_contours"][name]
        )
        if changed:
            changes.append(_some(changed, "unlisted contour folder(s) with files added or removed"))
    return changes


def _some(names: list[str], what: str) -> str:
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return f"{len(names)} {what}: {', '.join(names[:_SHOWN])}{more}"


def _config_file_changes(
    key: str, entry: Mapping[str, Any] | None, config: Mapping[str, Any]
) -> list[str]:
    """A file config ``key`` names (the reviewed exclusions, the splits file), compared by
    content: the file may have moved (its path is a location, like data_dir), but other
    decisions or splits make another dataset."""
    path = config.get(key, "")
    if entry is None:
        return [f"{key}: built without, now {path!r}"] if path else []
    if not path:
        return [f"{key}: built with {entry['path']!r}, now without"]
    try:
        status = os.stat(path)
    except OSError:
        status = None
    stat = None if status is None else (status.st_size, status.st_mtime_ns)
    if input_changed(path, entry, stat):
        return [f"{key}: {path!r} differs from the file the version was built with"]
    return []
