"""Reusing a built study: when a batch job reruns, the studies whose build would give the same
bytes are kept as they are and only the others are rebuilt.

A batch job reruns when anything of its studies changes (their fingerprint, a Snakemake
parameter: a file touched, added or removed, an exclusion, an option), yet usually one study
changed, or none (a file touched with the same content). A study is reused when all of this
holds, else it is rebuilt whole (:func:`~workflow_scripts.study.build.build_study`):

- its *stamp* (``work/{version}/reuse/{study}.json``, written by the batch after the study's
  build) exists and its ``key`` equals the build's now: a digest of the study's ids, the build
  options (``contours``, ``checks``, ``qc``, ``resample``, ``frames``, ``follow_symlinks``),
  its reviewed exclusions, the source of the packages that build (``workflow_scripts``,
  ``loader``) and the versions of the libraries that shape the bytes; another option, decision,
  code or library rebuilds the study;
- the stamp's ``record`` is the sha256 of the study record on disk (the stamp describes that
  record and no other);
- the record's inputs: the same folder listing (its digest: no file added, removed or renamed),
  every file it read still there with its size, and its sha256 where its modification time
  changed (a touched file with the same content passes, as in the parse-time checks,
  :func:`~workflow_scripts.raw.listing.input_changed`); no file read through a symbolic link
  and no link on the way to the study's folders (such a study is always rebuilt: where a link
  leads is part of its record);
- the record's outputs (and the study's report page) are intact: each file's size,
  modification time (ns) and inode equal what the stamp noted after the build, else its sha256
  equals the record's; and the study's own output folders (``slices/{study}/``,
  ``qc/{study}/``, ...) hold exactly the recorded files.

The outputs' check trusts (size, mtime_ns, inode) as the quick checks of the inputs trust
(size, mtime_ns): every writer of the workflow writes a new file and renames it (a new inode),
and writing into a file in place changes its modification time; only a deliberate write in place
followed by setting the time back to the nanosecond goes unseen (``python -m loader verify
--full`` hashes every file). Hashing every output instead would cost ~4 MB of reading per real
study, ~0.4 GB per batch of 100.

A reused study whose inputs were touched gets their new modification times in its record (the
manifest's quick check then passes them without hashing), which is then what a rebuild would
have written. Its outputs, its log and report page are left as they are.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from loader.manifest import file_digest
from workflow_scripts.files import folder_names, write_bytes_atomic
from workflow_scripts.layout import Layout, RawLayout
from workflow_scripts.raw.links import StudyLink
from workflow_scripts.raw.listing import input_changed, list_study, read_file_stats

__all__ = [
    "LIBRARIES",
    "NOT_BUILT",
    "build_key",
    "code_digest",
    "reuse_study",
    "stamp_path",
    "write_stamp",
]

#: Libraries whose versions can change a study's bytes (DICOM decoding, arrays, PNG/JPEG
#: encoding, the study plot, the pairing table).
LIBRARIES = ("pydicom", "numpy", "Pillow", "matplotlib", "pyarrow", "scikit-image", "scipy")

#: :func:`reuse_study`'s reason for a study never built (or built before stamps existed).
NOT_BUILT = "not built before (no record or stamp)"


def stamp_path(layout: Layout, study: str) -> Path:
    """The study's reuse stamp, beside (not inside) the study records' folder: a study id may
    end in ``.json`` itself."""
    return layout.work_dir / "reuse" / f"{study}.json"


@cache
def code_digest() -> str:
    """sha256 of the Python source of the packages a study's build runs, and of the versions
    of :data:`LIBRARIES`: any edit rebuilds every study the next time its batch runs."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parents[2]
    for package in ("workflow_scripts", "loader"):
        for path in sorted((root / package).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    for name in LIBRARIES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "-"
        digest.update(f"{name}={version}\0".encode())
    return digest.hexdigest()


def build_key(link: StudyLink, options: Mapping[str, Any], exclusions: Sequence[Mapping]) -> str:
    """What a study's build depends on besides its files' contents and listing: its ids, the
    build options, its reviewed exclusions and the code (see the module's docstring)."""
    described = {
        "study": [link.patient_id, link.original_id],
        "options": options,
        "exclusions": list(exclusions),
        "code": code_digest(),
    }
    text = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _stat(path: str | Path) -> list[int] | None:
    try:
        result = os.lstat(path)
    except OSError:
        return None
    return [result.st_size, result.st_mtime_ns, result.st_ino]


def write_stamp(layout: Layout, link: StudyLink, key: str) -> None:
    """Note, right after a study's build, what :func:`reuse_study` will compare: the build's
    ``key``, the record's sha256, and (size, mtime_ns, inode) of each output and the page."""
    study = link.patient_id
    record_bytes = layout.study_record(study).read_bytes()
    record = json.loads(record_bytes)
    outputs = {relpath: _stat(layout.version_dir / relpath) for relpath in record["outputs"]}
    page = layout.report_page(study)
    stamp = {
        "key": key,
        "record": hashlib.sha256(record_bytes).hexdigest(),
        "outputs": outputs,
        "page": {**file_digest(page), "stat": _stat(page)} if page.exists() else None,
    }
    write_bytes_atomic(stamp_path(layout, study), json.dumps(stamp, sort_keys=True).encode())


def reuse_study(
    layout: Layout,
    link: StudyLink,
    key: str,
    contour_kinds: tuple[str, ...],
    follow_symlinks: bool,
) -> str | None:
    """Keep the study as built if its build would give the same bytes (the module's
    docstring); return None when it is kept (its record updated with its inputs' new
    modification times, if any), else why it must be rebuilt."""
    study = link.patient_id
    try:
        stamp = json.loads(stamp_path(layout, study).read_bytes())
        record_bytes = layout.study_record(study).read_bytes()
        record = json.loads(record_bytes)
    except (OSError, ValueError):
        return NOT_BUILT
    if stamp.get("key") != key:
        return "options, exclusions or code changed"
    if stamp.get("record") != hashlib.sha256(record_bytes).hexdigest():
        return "record changed since its build"
    reason, touched = _inputs_changed(layout, link, record, contour_kinds, follow_symlinks)
    if reason is None:
        reason = _outputs_changed(layout, study, record, stamp)
    if reason is not None:
        return reason
    if touched:  # the record as a rebuild would write it: the inputs' new times
        write_bytes_atomic(
            layout.study_record(study), json.dumps(record, indent=1, sort_keys=True).encode()
        )
        write_stamp(layout, link, key)
    return None


def _inputs_changed(
    layout: Layout,
    link: StudyLink,
    record: dict,
    contour_kinds: tuple[str, ...],
    follow_symlinks: bool,
) -> tuple[str | None, bool]:
    """Why the record's inputs no longer describe the study's files (None: they do), and
    whether any entry's ``mtime_ns`` was set to the touched file's (same content)."""
    data_dir = layout.data_dir
    listing = list_study(link, data_dir, contour_kinds, follow_symlinks)
    if listing.digest() != record["listing"]:
        return "files added, removed or renamed", False
    inputs = record["inputs"]
    if any("link_target" in entry for entry in inputs.values()):
        return "reads files through symbolic links", False
    root = os.path.realpath(data_dir)
    folders = [RawLayout.dicom_dir_relpath(link.patient_id)]
    folders += [RawLayout.contour_kind_relpath(link.original_id, kind) for kind in contour_kinds]
    if any(os.path.realpath(data_dir / folder) != f"{root}/{folder}" for folder in folders):
        return "its folders are reached through symbolic links", False
    stats = read_file_stats(data_dir, list(inputs))
    touched = False
    base = str(data_dir)
    for relpath, entry in inputs.items():
        now = stats.get(relpath)
        if now is None:
            return f"{relpath} gone", False
        path = f"{base}/{relpath}"  # a str: ~250 inputs per study, a Path each cost more
        # the parse-time rule: another size, or another time and another content
        if input_changed(path, entry, now):
            return f"{relpath} changed", False
        mtime_ns = now[1]
        if mtime_ns == entry["mtime_ns"]:
            continue
        if os.path.islink(path):  # touched, and now reached through a link
            return f"{relpath} changed", False
        # the time of the bytes just hashed: a change since would have another time
        if os.stat(path).st_mtime_ns != mtime_ns:
            return f"{relpath} changed while being read", False
        entry["mtime_ns"] = mtime_ns
        touched = True
    return None, touched


def _outputs_changed(layout: Layout, study: str, record: dict, stamp: dict) -> str | None:
    noted = stamp.get("outputs") or {}
    outputs = record["outputs"]
    if set(noted) != set(outputs):
        return "stamp does not list the record's outputs"
    own = {layout.in_version(layout.slices_dir(study)), layout.in_version(layout.qc_dir(study))}
    folders: dict[str, set[str]] = {folder: set() for folder in own}
    for relpath, digest in outputs.items():
        path = layout.version_dir / relpath
        if _stat(path) != noted[relpath] and not _same_content(path, digest):
            return f"output {relpath} changed"
        parent, _, name = relpath.rpartition("/")
        if parent in own:
            folders[parent].add(name)
    for folder, names in folders.items():
        if set(folder_names(layout.version_dir / folder)) != names:
            return f"output folder {folder}/ holds other files"
    page, noted_page = layout.report_page(study), stamp.get("page")
    if noted_page is None:
        return "no report page"
    if _stat(page) != noted_page["stat"] and not _same_content(page, noted_page):
        return "report page changed"
    return None


def _same_content(path: Path, digest: Mapping[str, Any]) -> bool:
    """Whether the regular file at ``path`` has the recorded ``sha256`` and ``size``."""
    if not path.is_file() or path.is_symlink():
        return False
    found = file_digest(path)
    return found["size"] == digest["size"] and found["sha256"] == digest["sha256"]
