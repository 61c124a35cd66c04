"""A study's folder listing: the names in its folders, read once with ``os.scandir``.

Everything a study's build depends on besides file contents is in its listing: which files sit
in ``dicoms/<patient_id>/`` and in the contour folders of ``contourfiles/<original_id>/``, and
what each entry is (a regular file, something else, a link leading out of the data folder).
Pairing (:mod:`~workflow_scripts.raw.pairing`) is a pure function of it, so its digest
(:meth:`StudyListing.digest`) stands for the pairing in the study record, in the manifest and
in the parse-time checks, which then never pair a study: when the workflow is parsed, each
study costs a few ``scandir`` calls and one ``stat`` per file its build reads
(:func:`read_file_stats`), with no per-file Python objects beyond a name and a letter.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from workflow_scripts.raw.contours import parse_contour_name
from workflow_scripts.raw.links import StudyLink

__all__ = [
    "FILE",
    "NOT_FILE",
    "OUTSIDE",
    "StudyListing",
    "contour_folder",
    "list_study",
    "read_file_stats",
]

#: Entry kinds: a regular file (or a link to one inside the data folder), anything else
#: (a folder, a device, a dangling link), a link that leads outside the data folder.
FILE, NOT_FILE, OUTSIDE = "f", "d", "x"

#: A folder's entries: (name, kind) sorted by name; None when the folder is absent;
#: OUTSIDE when the folder itself leads outside the data folder.
Entries = tuple[tuple[str, str], ...] | None | str


def contour_folder(kind: str) -> str:
    """Name of the sub-folder holding contours of ``kind``: ``i-contours`` or ``o-contours``."""
    return f"{kind}-contours"


@dataclass(frozen=True)
class StudyListing:
    """What is on disk for one study (paths relative to ``data_dir``, POSIX).

    ``dicoms``: entries of ``dicoms/<patient_id>/``; ``contours_present``: whether
    ``contourfiles/<original_id>/`` is a folder; ``contours``: contour kind -> entries of its
    sub-folder (kinds in configured order).
    """

    link: StudyLink
    data_dir: Path
    dicoms: Entries
    contours_present: bool
    contours: dict[str, Entries]

    @property
    def dicom_dir(self) -> str:
        return f"dicoms/{self.link.patient_id}"

    @property
    def contour_dir(self) -> str:
        return f"contourfiles/{self.link.original_id}"

    def contour_dir_of(self, kind: str) -> str:
        return f"{self.contour_dir}/{contour_folder(kind)}"

    def digest(self) -> str:
        """sha256 of the ids, kinds and every entry: adding, removing, renaming or replacing
        (a file by a folder or a link) any file of the study changes it."""
        parts = [self.link.patient_id, self.link.original_id, f"contours:{self.contours_present}"]
        for folder, entries in [
            (self.dicom_dir, self.dicoms),
            *((self.contour_dir_of(kind), entries) for kind, entries in self.contours.items()),
        ]:
            if entries is None or entries == OUTSIDE:
                parts.append(f"{folder}:{entries}")
            else:
                parts.append(f"{folder}:" + "/".join(f"{name}|{kind}" for name, kind in entries))
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def contour_files(self) -> list[tuple[str, int, str]]:
        """(kind, slice number, relative path) of every contour file whose name fits its
        folder's pattern, kinds in configured order, names sorted."""
        found = []
        for kind, entries in self.contours.items():
            if entries is None or entries == OUTSIDE:
                continue
            folder = self.contour_dir_of(kind)
            for name, entry_kind in entries:
                parsed = parse_contour_name(name)
                if entry_kind == FILE and parsed is not None and parsed[1] == kind:
                    found.append((kind, parsed[0], f"{folder}/{name}"))
        return found

    def labelled_slices(self) -> set[int]:
        """The slice numbers that have an i-contour file."""
        return {number for kind, number, _ in self.contour_files() if kind == "i"}

    def files_read(self) -> list[str]:
        """The files a build of the study reads, sorted: every contour file whose name fits
        its folder's pattern, and the DICOM of each slice number that has one."""
        contours = self.contour_files()
        read = [path for _, _, path in contours]
        if self.contours_present and self.dicoms not in (None, OUTSIDE):
            files = {name for name, entry_kind in self.dicoms if entry_kind == FILE}
            slices = {number for _, number, _ in contours}
            read += [f"{self.dicom_dir}/{n}.dcm" for n in slices if f"{n}.dcm" in files]
        return sorted(read)


def list_study(link: StudyLink, data_dir: str | Path, contour_kinds: tuple[str, ...]):
    """The listing of one study (ids already checked to be plain folder names)."""
    data_dir = Path(data_dir)
    root = str(data_dir)
    dicoms = _entries(root, f"dicoms/{link.patient_id}")
    contour_dir = f"contourfiles/{link.original_id}"
    contours_present = _folder(root, contour_dir) is not None
    contours = {
        kind: _entries(root, f"{contour_dir}/{contour_folder(kind)}") if contours_present else None
        for kind in contour_kinds
    }
    return StudyListing(link, data_dir, dicoms, contours_present, contours)


def read_file_stats(data_dir: str | Path, relpaths: list[str]) -> dict[str, tuple[int, int]]:
    """(size in bytes, modification time in ns) of each file, by relative path; a file that
    cannot be stat'ed is left out."""
    root = str(data_dir)
    stats = {}
    for relpath in relpaths:
        try:
            result = os.stat(f"{root}/{relpath}")
        except OSError:
            continue
        stats[relpath] = (result.st_size, result.st_mtime_ns)
    return stats


def _folder(root: str, folder: str) -> str | None:
    """The folder's path; None when absent or not a folder; OUTSIDE when it leads out of
    the data folder (through a link at any level of ``folder``)."""
    path = f"{root}/{folder}"
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    linked = stat.S_ISLNK(mode) or _linked_parent(root, folder)
    if linked:
        if not os.path.isdir(path):
            return None
        return path if _inside(root, path) else OUTSIDE
    return path if stat.S_ISDIR(mode) else None


def _linked_parent(root: str, folder: str) -> bool:
    """Whether a component of ``folder`` above its last is a link (e.g. ``dicoms`` itself, or
    ``contourfiles/<original_id>`` for a contour sub-folder)."""
    parts = folder.split("/")[:-1]
    return any(_is_link(root, "/".join(parts[: i + 1])) for i in range(len(parts)))


def _is_link(root: str, relpath: str) -> bool:
    # Top folders are few: their state is looked up once per process.
    if "/" not in relpath:
        return _is_top_link(root, relpath)
    try:
        return stat.S_ISLNK(os.lstat(f"{root}/{relpath}").st_mode)
    except OSError:
        return False


@cache
def _is_top_link(root: str, name: str) -> bool:
    return os.path.islink(f"{root}/{name}")


def _entries(root: str, folder: str) -> Entries:
    path = _folder(root, folder)
    if path is None or path == OUTSIDE:
        return path
    entries = []
    with os.scandir(path) as scan:
        for entry in scan:
            if entry.is_symlink():
                if not _inside(root, entry.path):
                    kind = OUTSIDE
                else:
                    kind = FILE if entry.is_file() else NOT_FILE
            else:
                kind = FILE if entry.is_file(follow_symlinks=False) else NOT_FILE
            entries.append((entry.name, kind))
    entries.sort()
    return tuple(entries)


def _inside(root: str, path: str) -> bool:
    return Path(path).resolve().is_relative_to(_resolved(root))


@cache
def _resolved(root: str) -> Path:
    return Path(root).resolve()
