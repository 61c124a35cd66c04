"""Pairing a study's DICOM slices with its contour files, from file names alone.

``dicoms/<patient_id>/<n>.dcm`` is slice ``n``; ``contourfiles/<original_id>/i-contours/
IM-0001-<nnnn>-icontour-manual.txt`` (and ``o-contours/...-ocontour-...``) belongs to slice
``int(nnnn)``. Nothing is read here but the study's folder listing
(:mod:`~workflow_scripts.raw.listing`, whose digest stands for the pairing); the files' contents
are checked when the study is built. Everything that cannot take part (hidden files such as
macOS ``._*`` AppleDouble copies, names that fit no pattern, symbolic links that are not
followed: leading out of the data folder with ``follow_symlinks: false``, leading nowhere, into
a loop, or to the wrong type of thing) is recorded as a problem rather than silently skipped.
A link in a contour folder is where a contour file goes, so its row accounts for it
(``contour``), as for a misnamed file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from workflow_scripts.config import FOLLOW_SYMLINKS
from workflow_scripts.raw.contours import parse_contour_name
from workflow_scripts.raw.links import StudyLink
from workflow_scripts.raw.listing import (
    BROKEN,
    DICOM_NAME,
    FILE,
    LINK_CODES,
    LOOP,
    OUTSIDE,
    WRONG_TYPE,
    Entries,
    StudyListing,
    list_study,
)
from workflow_scripts.raw.problems import Problem

__all__ = [
    "FOLDER_LINK_MESSAGES",
    "SlicePair",
    "StudyPairing",
    "pair_listing",
    "pair_study",
]

#: Why a link is not followed, by its kind (:data:`~workflow_scripts.raw.listing.LINK_CODES`).
_LINK_MESSAGES = {
    OUTSIDE: "a link that leads outside the data folder (follow_symlinks is false); skipped",
    BROKEN: "a symbolic link that leads nowhere (its target does not exist); skipped",
    LOOP: "a symbolic link that leads into a loop (of links, or to a folder holding it); skipped",
    WRONG_TYPE: "a symbolic link to something that is not a regular file; skipped",
}
#: The same, for a folder (a study's, a contour kind's) that is or sits under such a link.
FOLDER_LINK_MESSAGES = {
    **_LINK_MESSAGES,
    WRONG_TYPE: "a symbolic link (or under one) to something that is not a folder; skipped",
}


@dataclass
class SlicePair:
    """One slice number of a study with the files that carry it (paths relative to data_dir,
    POSIX). ``contours`` maps contour kind (``"i"``/``"o"``) to its file."""

    slice: int
    dicom: str | None = None
    contours: dict[str, str] = field(default_factory=dict)


@dataclass
class StudyPairing:
    """The outcome of pairing one study: its slices in slice order and the problems found."""

    link: StudyLink
    slices: list[SlicePair]
    problems: list[Problem]

    @property
    def study_id(self) -> str:
        return self.link.patient_id


def pair_study(
    link: StudyLink,
    data_dir: str | Path,
    contour_kinds: tuple[str, ...],
    follow_symlinks: bool = FOLLOW_SYMLINKS,
) -> StudyPairing:
    """Pair the files of one study by slice number (lists it, then :func:`pair_listing`).

    Args:
        link: the study's row of link.csv (ids already checked to be plain folder names).
        data_dir: the raw data root.
        contour_kinds: which contour kinds to take, e.g. ``("i",)`` or ``("i", "o")``.
        follow_symlinks: config ``follow_symlinks`` (see :mod:`~workflow_scripts.raw.listing`).

    Returns:
        a StudyPairing whose slices hold every DICOM and contour file found, and whose problems
        record missing folders and skipped files.
    """
    return pair_listing(list_study(link, data_dir, contour_kinds, follow_symlinks))


def pair_listing(listing: StudyListing) -> StudyPairing:
    """Pair a study's listed files by slice number (see :func:`pair_study`)."""
    link = listing.link
    study = link.patient_id
    problems: list[Problem] = []
    by_slice: dict[int, SlicePair] = {}

    def slice_pair(number: int) -> SlicePair:
        return by_slice.setdefault(number, SlicePair(number))

    dicom_dir = listing.dicom_dir
    dicom_names = _file_names(listing.dicoms, dicom_dir, study, problems)
    if dicom_names is None:
        problems.append(
            Problem(
                study,
                dicom_dir,
                "study_missing",
                f"study listed in link.csv but {dicom_dir}/ is not on disk",
            )
        )
        dicom_names = []
    for name in dicom_names:
        match = DICOM_NAME.match(name)
        if match is None:
            problems.append(
                Problem(
                    study,
                    f"{dicom_dir}/{name}",
                    "file_name_unrecognized",
                    "name does not match '<n>.dcm'; skipped",
                )
            )
        else:
            slice_pair(int(match[1])).dicom = f"{dicom_dir}/{name}"

    contour_dir = listing.contour_dir
    if listing.contour_root is not None:
        code = LINK_CODES[listing.contour_root]
        message = FOLDER_LINK_MESSAGES[listing.contour_root]
        problems.append(Problem(study, contour_dir, code, message))
    elif not listing.contours_present:
        if dicom_names:
            problems.append(
                Problem(
                    study,
                    contour_dir,
                    "study_contours_missing",
                    f"{contour_dir}/ is not on disk: the study has no labels",
                )
            )
    else:
        for kind, entries in listing.contours.items():
            folder = listing.contour_dir_of(kind)
            for name in _file_names(entries, folder, study, problems, contours=True) or []:
                parsed = parse_contour_name(name)
                if parsed is None or parsed[1] != kind:
                    # It sits where contours go, so it is left out as a contour file would be.
                    path = f"{folder}/{name}"
                    problems.append(
                        Problem(
                            study,
                            path,
                            "contour_name_unrecognized",
                            f"name does not match 'IM-0001-<nnnn>-{kind}contour-manual.txt'",
                            contour=path,
                        )
                    )
                else:
                    slice_pair(parsed[0]).contours[kind] = f"{folder}/{name}"

    return StudyPairing(link, [by_slice[n] for n in sorted(by_slice)], problems)


def _file_names(
    entries: Entries, folder: str, study: str, problems: list[Problem], contours: bool = False
) -> list[str] | None:
    """Names of the regular files of a listed folder, sorted; None if the folder is absent.

    Hidden entries, sub-folders and links that are not followed are recorded and left out; in a
    contour folder (``contours``), a link's row accounts for it as a contour file.
    """
    if entries is None:
        return None
    if isinstance(entries, str):
        problems.append(Problem(study, folder, LINK_CODES[entries], FOLDER_LINK_MESSAGES[entries]))
        return []
    names = []
    for name, kind in entries:
        path = f"{folder}/{name}"
        if name.startswith("."):
            problems.append(Problem(study, path, "hidden_file", "hidden file skipped"))
        elif kind in LINK_CODES:
            contour = path if contours else None
            message = _LINK_MESSAGES[kind]
            problems.append(Problem(study, path, LINK_CODES[kind], message, contour=contour))
        elif kind != FILE:
            problems.append(
                Problem(study, path, "file_name_unrecognized", "not a regular file; skipped")
            )
        else:
            names.append(name)
    return names
