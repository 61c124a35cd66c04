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
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from loader.manifest import MANIFEST_NAME, DatasetVerificationError, manifest_table, read_manifest
from workflow_scripts.config import FOLLOW_SYMLINKS
from workflow_scripts.dataset.manifest import (
    CONFIG_FILE_INPUTS,
    build_config,
    top_listing,
    unlisted_contour_files,
)
from workflow_scripts.dataset.raw_state import ListStudy, raw_state
from workflow_scripts.layout import Layout, RawLayout
from workflow_scripts.raw.links import StudyLink
from workflow_scripts.raw.listing import changed_input_rows, input_changed
from workflow_scripts.study.frames import FRAMES_LABELLED

__all__ = [
    "VersionChangedError",
    "check_finished_version",
    "forced_rerun_refusal",
    "refuse_missing_kept_files",
]

_SHOWN = 5


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
    processes: int = 1,
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
    The inputs are stat'ed and the studies listed by
    :func:`~workflow_scripts.dataset.raw_state.raw_state`: in up to ``processes`` processes
    at scale, with :func:`~workflow_scripts.raw.listing.list_study`, or in this process with
    ``list_files`` when given (a test's). The manifest's inputs and
    listing are read as tables (:func:`~loader.manifest.manifest_table`, either format) and
    compared as arrays; a table of a format-2 manifest whose sha256 differs from the one
    manifest.json records is refused naming it. Raises VersionChangedError saying what changed.

    Returns the finished version's manifest as read (so that the caller need not parse it
    again), or None when there is none.
    """
    if not (layout.version_dir / MANIFEST_NAME).exists():
        return None
    manifest = read_manifest(layout.version_dir)
    try:
        input_table = manifest_table(layout.version_dir, manifest, "inputs")
        listing = manifest_table(layout.version_dir, manifest, "listing")
    except DatasetVerificationError as error:  # a table of the manifest was changed
        raise VersionChangedError(
            f"{_finished(layout)}, but the manifest's own files were changed: "
            + "; ".join(error.problems)
            + f". {_NEVER_REWRITTEN} `python -m loader verify` checks the dataset."
        ) from None
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
        input_changes = _input_changes(
            input_table,
            listing,
            layout,
            links,
            (built_kinds, built_follow),
            list_files,
            processes,
        )
        if input_changes and before_links and built_follow:
            input_changes.append(
                "(the version was built before follow_symlinks existed, when links leading out "
                "of data_dir were refused: follow_symlinks=false lists the studies as it did)"
            )
        changes += input_changes
    config_inputs = _config_file_entries(input_table)
    for key, name in CONFIG_FILE_INPUTS.items():
        changes += _config_file_changes(key, config_inputs.get(name), config)
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
    inputs: pa.Table,
    listing: pa.Table,
    layout: Layout,
    links: list[StudyLink],
    rule: tuple[tuple[str, ...], bool],
    list_files: ListStudy | None,
    processes: int,
) -> list[str]:
    """What changed in the inputs, given the manifest's ``inputs`` and ``listing`` tables
    (:func:`~loader.manifest.manifest_table`) and the listing ``rule`` the version was built
    with (contour kinds, follow_symlinks): sizes and times compared as arrays, sha256 only for
    files of the same size whose time differs."""
    outside = pa.array(sorted(CONFIG_FILE_INPUTS.values()))  # not in data_dir: on their own
    recorded = inputs.filter(pc.invert(pc.is_in(inputs["path"], value_set=outside)))
    paths = recorded["path"]
    root = str(layout.data_dir)
    kinds, follow = rule
    now = raw_state(root, paths, links, kinds, follow, processes, list_files)
    rows = changed_input_rows(root, recorded, now.sizes, now.times)
    changed = [paths[row].as_py() for row in rows]
    changes = [_some(changed, "input file(s) changed or missing")] if changed else []
    return changes + _listing_changes(listing, layout, links, kinds, now.digests)


def _listing_changes(
    listing: pa.Table,
    layout: Layout,
    links: list[StudyLink],
    kinds: tuple[str, ...],
    now_digests: Mapping[str, str],
) -> list[str]:
    """What changed in the folder listings, given each study's listing digest now: study
    folders added or removed, studies whose digest differs, unlisted contour folders whose
    files differ."""
    changes = []
    sections = _listing_sections(listing)
    now_top = top_listing(layout.data_dir)
    for top, before in sections.get("top", {}).items():
        added = sorted(set(now_top.get(top, [])) - set(before))
        removed = sorted(set(before) - set(now_top.get(top, [])))
        if added:
            changes.append(_some([f"{top}/{name}" for name in added], "study folder(s) added"))
        if removed:
            changes.append(_some([f"{top}/{name}" for name in removed], "study folder(s) removed"))
    digests = sections.get("studies", {})
    relisted = [
        link.patient_id
        for link in sorted(links, key=lambda link: link.patient_id)
        if now_digests[link.patient_id] != digests.get(link.patient_id)
    ]
    if relisted:
        changes.append(_some(relisted, "study(ies) with files added, removed or renamed"))
    if "unlisted_contours" in sections:  # recorded since the guard looks inside them
        before_unlisted = sections["unlisted_contours"]
        listed = {link.original_id for link in links}
        unlisted = unlisted_contour_files(layout.data_dir, listed, kinds)
        changed = sorted(
            RawLayout.contour_dir_relpath(name)
            for name in unlisted.keys() & before_unlisted.keys()
            if unlisted[name] != before_unlisted[name]
        )
        if changed:
            changes.append(_some(changed, "unlisted contour folder(s) with files added or removed"))
    return changes


def _listing_sections(listing: pa.Table) -> dict[str, dict[str, Any]]:
    """The manifest's listing table as ``{"top": {folder: [names]}, "studies": {id: digest},
    "unlisted_contours": {folder: [files]}}`` (sections absent from the table are absent)."""
    sections: dict[str, dict[str, Any]] = {}
    for part in pc.unique(listing["section"]).to_pylist():
        rows = listing.filter(pc.equal(listing["section"], part))
        rows = rows.filter(pc.is_valid(rows["key"]))  # a null key marks an empty section
        keys, values = rows["key"].to_pylist(), rows["value"].to_pylist()
        if part == "studies":
            sections[part] = dict(zip(keys, values, strict=True))
            continue
        grouped: dict[str, list[str]] = {}
        for key, value in zip(keys, values, strict=True):
            names = grouped.setdefault(key, [])
            if value is not None:
                names.append(value)
        sections[part] = grouped
    return sections


def _config_file_entries(inputs: pa.Table) -> dict[str, dict[str, Any]]:
    """The manifest's entries of the files config names (exclusions.csv, splits.csv)."""
    names = pa.array(sorted(CONFIG_FILE_INPUTS.values()))
    rows = inputs.filter(pc.is_in(inputs["path"], value_set=names)).to_pylist()
    keys = {"config_path": "path"}
    return {
        row["path"]: {
            keys.get(key, key): value
            for key, value in row.items()
            if key != "path" and value is not None
        }
        for row in rows
    }


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
