"""A study's folder listing: the names in its folders, read once with ``os.scandir``.

Everything a study's build depends on besides file contents is in its listing: which files sit
in ``dicoms/<patient_id>/`` and in the contour folders of ``contourfiles/<original_id>/``, and
what each entry is (a regular file, something else, a symbolic link that is not followed).
Pairing (:mod:`~workflow_scripts.raw.pairing`) is a pure function of it, so its digest
(:meth:`StudyListing.digest`) stands for the pairing in the study record, in the manifest and
in the parse-time checks, which then never pair a study: when the workflow is parsed, each
study costs a few ``scandir`` calls and one ``stat`` per file its build reads
(:func:`read_file_stats`), with no per-file Python objects beyond a name and a letter.

Symbolic links (config ``follow_symlinks``). A link anywhere in the data folder (a file, a
study folder, ``dicoms/`` itself) is followed to what it leads to: with ``follow_symlinks``
true (the default) wherever that is, with false only when it stays inside the data folder
(one leading out is :data:`OUTSIDE`, never read). A followed link to a regular file is listed
as a regular file (:data:`FILE`): the pairing and the content are the same as a copy's, and
the study record notes where the link led (:func:`open_input`). A link that cannot be followed
is listed with its own kind, in both modes: one leading nowhere (:data:`BROKEN`), into a loop
of links or to a folder that contains it (:data:`LOOP`), or to something other than what is
expected there (:data:`WRONG_TYPE`: a folder, fifo or device where a file is expected, or a
file where a folder is). Each such kind is a problem code (:data:`LINK_CODES`). Following a
link costs the ``stat`` that a regular file's check costs; only ``follow_symlinks: false``
resolves the link's whole path (to see whether it stays inside).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from loader.manifest import file_digest
from workflow_scripts.config import FOLLOW_SYMLINKS
from workflow_scripts.layout import RawLayout
from workflow_scripts.raw.contours import parse_contour_name
from workflow_scripts.raw.links import StudyLink

if TYPE_CHECKING:  # only a type here: the listing itself needs no pyarrow
    import pyarrow as pa

__all__ = [
    "BROKEN",
    "DICOM_NAME",
    "FILE",
    "LINK_CODES",
    "LOOP",
    "NOT_FILE",
    "OUTSIDE",
    "WRONG_TYPE",
    "StudyListing",
    "broken_folder_link",
    "changed_input_rows",
    "file_stat_arrays",
    "input_changed",
    "list_study",
    "open_input",
    "read_file_stats",
]

#: A DICOM file's name, ``<n>.dcm``: image (slice) number ``n``, without leading zeros.
DICOM_NAME = re.compile(r"^(0|[1-9][0-9]*)\.dcm$")

#: Entry kinds: a regular file (or a link followed to one); anything else that is not a link
#: (a folder, a fifo, a device); and the links that are not followed (see the module's
#: docstring): leading outside the data folder with ``follow_symlinks: false``, leading
#: nowhere, into a loop, or to something of the wrong type.
FILE, NOT_FILE, OUTSIDE, BROKEN, LOOP, WRONG_TYPE = "f", "d", "x", "b", "o", "t"
#: The kinds of a link that is not followed, with the problem code each is recorded as.
LINK_CODES = {
    OUTSIDE: "path_outside_data_dir",
    BROKEN: "link_broken",
    LOOP: "link_loop",
    WRONG_TYPE: "link_wrong_type",
}
#: What a folder is, when it is one: a path to list.
_FOLDER = "folder"

#: A folder's entries: (name, kind) sorted by name; None when the folder is absent; one of the
#: :data:`LINK_CODES` kinds when the folder is reached through a link that is not followed.
Entries = tuple[tuple[str, str], ...] | None | str


@dataclass(frozen=True)
class StudyListing:
    """What is on disk for one study (paths relative to ``data_dir``, POSIX).

    ``dicoms``: entries of ``dicoms/<patient_id>/``; ``contours_present``: whether
    ``contourfiles/<original_id>/`` is there (a folder, or a link to one or that cannot be
    followed); ``contours``: contour kind -> entries of its sub-folder (kinds in configured
    order); ``contour_root``: the kind of link (:data:`BROKEN`, :data:`LOOP` or
    :data:`WRONG_TYPE`) when ``contourfiles/<original_id>`` is one that cannot be followed, so
    that none of its sub-folders can be listed (one leading outside is recorded per sub-folder,
    as it always was), else None.
    """

    link: StudyLink
    data_dir: str | Path  # as given to list_study
    dicoms: Entries
    contours_present: bool
    contours: dict[str, Entries]
    contour_root: str | None = None

    @property
    def dicom_dir(self) -> str:
        return RawLayout.dicom_dir_relpath(self.link.patient_id)

    @property
    def contour_dir(self) -> str:
        return RawLayout.contour_dir_relpath(self.link.original_id)

    def contour_dir_of(self, kind: str) -> str:
        return RawLayout.contour_kind_relpath(self.link.original_id, kind)

    def digest(self) -> str:
        """sha256 of the ids, kinds and every entry: adding, removing, renaming or replacing
        (a file by a folder or a link) any file of the study changes it."""
        parts = [self.link.patient_id, self.link.original_id, f"contours:{self.contours_present}"]
        if self.contour_root is not None:  # only then: earlier listings keep their digests
            parts.append(f"{self.contour_dir}:{self.contour_root}")
        for folder, entries in [
            (self.dicom_dir, self.dicoms),
            *((self.contour_dir_of(kind), entries) for kind, entries in self.contours.items()),
        ]:
            if entries is None or isinstance(entries, str):
                parts.append(f"{folder}:{entries}")
            else:  # "name|kind" per entry, joined in C: a study's digest is ~80 entries
                parts.append(f"{folder}:" + "/".join(map("|".join, entries)))
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def contour_files(self) -> list[tuple[str, int, str]]:
        """(kind, slice number, relative path) of every contour file whose name fits its
        folder's pattern, kinds in configured order, names sorted."""
        found = []
        for kind, entries in self.contours.items():
            if not isinstance(entries, tuple):
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
        its folder's pattern and, when there is one, every DICOM named ``<n>.dcm`` (the
        labelled ones for their pixels, all for the cine's positions and phases)."""
        contours = self.contour_files()
        read = [path for _, _, path in contours]
        if contours and isinstance(self.dicoms, tuple):
            folder = self.dicom_dir
            read += [
                f"{folder}/{name}"
                for name, entry_kind in self.dicoms
                if entry_kind == FILE and DICOM_NAME.match(name)
            ]
        return sorted(read)


def list_study(
    link: StudyLink,
    data_dir: str | Path,
    contour_kinds: tuple[str, ...],
    follow_symlinks: bool = FOLLOW_SYMLINKS,
) -> StudyListing:
    """The listing of one study (ids already checked to be plain folder names), following
    symbolic links as config ``follow_symlinks`` says (see the module's docstring)."""
    root = str(data_dir)  # no Path: 100,000 studies are listed when a version is checked
    dicoms = _entries(root, RawLayout.dicom_dir_relpath(link.patient_id), follow_symlinks)
    contour_dir = RawLayout.contour_dir_relpath(link.original_id)
    found = _folder(root, contour_dir, follow_symlinks)
    contour_root = found if found in (BROKEN, LOOP, WRONG_TYPE) else None
    contours = {
        kind: _entries(
            root, RawLayout.contour_kind_relpath(link.original_id, kind), follow_symlinks
        )
        if found is not None and contour_root is None
        else None
        for kind in contour_kinds
    }
    return StudyListing(link, data_dir, dicoms, found is not None, contours, contour_root)


def read_file_stats(data_dir: str | Path, relpaths: list[str]) -> dict[str, tuple[int, int]]:
    """(size in bytes, modification time in ns) of each file, by relative path, through any
    symbolic link (the file it leads to), as ``os.stat`` of its path gives; a file that cannot
    be stat'ed, or is not a regular file, is left out (see :func:`file_stat_arrays`)."""
    sizes, times = file_stat_arrays(data_dir, relpaths)
    return {
        relpath: (size, time)
        for relpath, size, time in zip(relpaths, sizes.tolist(), times.tolist(), strict=True)
        if size >= 0
    }


def file_stat_arrays(data_dir: str | Path, relpaths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(size in bytes, modification time in ns) of each file of ``relpaths`` (relative to
    ``data_dir``) as two int64 arrays in their order, -1 where a file cannot be stat'ed or is
    not a regular file; through any symbolic link (the file it leads to), as ``os.stat`` of
    its path gives.

    Each folder is opened once and its files stat'ed relative to it (``fstatat``): the kernel
    resolves the folder's path once, not once per file (a study's cine has ~250 files in one
    folder). Files of one folder should be neighbours in ``relpaths`` (sorted paths are);
    where a folder cannot be opened so, its files are stat'ed by their paths."""
    root = str(data_dir)
    sizes = np.full(len(relpaths), -1, dtype=np.int64)
    times = np.full(len(relpaths), -1, dtype=np.int64)
    folder, handle = None, None
    try:
        for row, relpath in enumerate(relpaths):
            parent, _, name = relpath.rpartition("/")
            if parent != folder:
                if handle is not None:
                    os.close(handle)
                folder, handle = parent, None
                with contextlib.suppress(OSError):
                    handle = os.open(f"{root}/{parent}", _FOLDER_FLAGS)
            try:
                if handle is None:
                    result = os.stat(f"{root}/{relpath}")
                else:
                    result = os.stat(name, dir_fd=handle)
            except OSError:
                continue
            if stat.S_ISREG(result.st_mode):  # a folder where a file was is no file: gone
                sizes[row] = result.st_size
                times[row] = result.st_mtime_ns
    finally:
        if handle is not None:
            os.close(handle)
    return sizes, times


#: Opens a folder only to stat the files in it (no read permission needed, as for ``stat``).
_FOLDER_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY


def input_changed(path: str | Path, entry: dict, stat_now: tuple[int, int] | None) -> bool:
    """Whether the file at ``path`` differs from a recorded ``entry`` (``sha256``, ``size``,
    ``mtime_ns``), given its (size, mtime_ns) now (None: it is gone or cannot be reached): gone,
    another size, or another modification time and another content. A touched but identical
    file has not changed; only a file whose size is the same and time differs is hashed."""
    if stat_now is None:
        return True
    size, mtime_ns = stat_now
    if size != entry["size"]:
        return True
    if mtime_ns == entry["mtime_ns"]:
        return False
    return file_digest(path)["sha256"] != entry["sha256"]


def changed_input_rows(
    data_dir: str | Path, inputs: pa.Table, now_sizes: np.ndarray, now_times: np.ndarray
) -> list[int]:
    """The rows of ``inputs`` (recorded inputs: ``path`` relative to ``data_dir``, ``sha256``,
    ``size``, ``mtime_ns``) whose file has changed (:func:`input_changed`), given each file's
    size and modification time now (int64 arrays in the table's order, -1 where it is gone, as
    :func:`file_stat_arrays` gives them). Sizes and times are compared as arrays; only a file
    of the same size whose time differs is read again, for its sha256."""
    root = str(data_dir)
    suspects = (now_sizes != inputs["size"].to_numpy()) | (
        now_times != inputs["mtime_ns"].to_numpy()
    )
    changed = []
    for row in np.flatnonzero(suspects).tolist():
        entry = {key: inputs[key][row].as_py() for key in ("sha256", "size", "mtime_ns")}
        now = None if now_sizes[row] < 0 else (int(now_sizes[row]), int(now_times[row]))
        if input_changed(f"{root}/{inputs['path'][row].as_py()}", entry, now):
            changed.append(row)
    return changed


def open_input(data_dir: str | Path, relpath: str) -> tuple[str, str | None]:
    """The path to open for the input ``relpath`` and, when a symbolic link (the file itself,
    or a folder on its way, below ``data_dir``) leads elsewhere, where it led: the resolved
    path, relative to the data folder when it stays inside it (POSIX), else absolute; None for
    a file reached without a link. Opening the returned path reads exactly the file named, even
    if the link is changed meanwhile."""
    root = os.path.realpath(data_dir)
    resolved = os.path.realpath(f"{data_dir}/{relpath}")
    if resolved == f"{root}/{relpath}":
        return resolved, None
    inside = Path(resolved).is_relative_to(root)
    return resolved, Path(resolved).relative_to(root).as_posix() if inside else resolved


def broken_folder_link(data_dir: str | Path, folder: str) -> str | None:
    """The kind of link (:data:`BROKEN`, :data:`LOOP` or :data:`WRONG_TYPE`) when ``folder``
    (relative to ``data_dir``) is, or sits under, a symbolic link that cannot be followed;
    else None."""
    found = _folder(str(data_dir), folder, follow=True)
    return found if found in (BROKEN, LOOP, WRONG_TYPE) else None


def _folder(root: str, folder: str, follow: bool) -> str | None:
    """The folder's path; None when absent or not a folder (and not a link); the link's kind
    (:data:`LINK_CODES`) when it is, or is reached through, a link that is not followed."""
    path = f"{root}/{folder}"
    try:
        mode = os.lstat(path).st_mode
    except OSError as error:
        return _unreachable(root, folder, error)
    if stat.S_ISLNK(mode):
        kind = _link_kind(root, path, follow, expect_folder=True)
        return path if kind == _FOLDER else kind
    if not stat.S_ISDIR(mode):
        return None
    # A folder under a linked one (e.g. dicoms/ itself a link) leads where that link does.
    if not follow and _linked_parent(root, folder) and not _inside(root, path):
        return OUTSIDE
    return path


def _unreachable(root: str, folder: str, error: OSError) -> str | None:
    """Why ``folder`` cannot be looked at: None when it is simply absent, the kind of link
    when a folder on its way is a link that cannot be followed (a loop, or one that leads
    nowhere or to a file)."""
    if error.errno == errno.ELOOP:
        return LOOP
    parts = folder.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        parent = "/".join(parts[:depth])
        if _is_link(root, parent):
            try:
                mode = os.stat(f"{root}/{parent}").st_mode
            except OSError as parent_error:
                return LOOP if parent_error.errno == errno.ELOOP else BROKEN
            if not stat.S_ISDIR(mode):
                return WRONG_TYPE
    return None


def _link_kind(root: str, path: str, follow: bool, expect_folder: bool) -> str:
    """What the link at ``path`` leads to: :data:`FILE` (or the folder mark when
    ``expect_folder``), else the kind of link that is not followed."""
    if not follow and not _inside(root, path):
        return OUTSIDE
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        return LOOP if error.errno == errno.ELOOP else BROKEN
    if stat.S_ISDIR(mode):
        # A folder that holds the link itself: following it would go round for ever.
        target = os.path.realpath(path)
        holder = os.path.realpath(os.path.dirname(path))
        if holder == target or holder.startswith(target.rstrip("/") + "/"):
            return LOOP
        return _FOLDER if expect_folder else WRONG_TYPE
    if stat.S_ISREG(mode) and not expect_folder:
        return FILE
    return WRONG_TYPE


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


def _entries(root: str, folder: str, follow: bool) -> Entries:
    path = _folder(root, folder, follow)
    if path is None or path in LINK_CODES:
        return path
    # A regular file costs one test of the entry's type, from the folder's own record (no
    # stat): the listing of 100,000 studies is ~3.5 million of them.
    with os.scandir(path) as scan:
        entries = [
            (entry.name, FILE)
            if entry.is_file(follow_symlinks=False)
            else (entry.name, _kind_of(root, entry, follow))
            for entry in scan
        ]
    entries.sort()
    return tuple(entries)


def _kind_of(root: str, entry: os.DirEntry, follow: bool) -> str:
    """The kind of an entry that is not a regular file: a link's (followed or not), else
    :data:`NOT_FILE`."""
    if entry.is_symlink():
        return _link_kind(root, entry.path, follow, expect_folder=False)
    return NOT_FILE


def _inside(root: str, path: str) -> bool:
    """Whether ``path``, every link on it resolved, lies inside the data folder. (A loop
    resolves to no path, and counts as inside: it is refused as a loop.)"""
    return Path(os.path.realpath(path)).is_relative_to(_resolved(root))


@cache
def _resolved(root: str) -> str:
    return os.path.realpath(root)
