"""Pairing a study's DICOM slices with its contour files, from file names alone.

``dicoms/<patient_id>/<n>.dcm`` is slice ``n``; ``contourfiles/<original_id>/i-contours/
IM-0001-<nnnn>-icontour-manual.txt`` (and ``o-contours/...-ocontour-...``) belongs to slice
``int(nnnn)``. Nothing is read here but folder listings; the files' contents are checked when the
study is built. Everything that cannot take part (hidden files such as macOS ``._*`` AppleDouble
copies, names that fit no pattern, links that lead out of the data folder) is recorded as a
problem rather than silently skipped.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from workflow_scripts.raw.contours import parse_contour_name
from workflow_scripts.raw.links import StudyLink
from workflow_scripts.raw.problems import Problem

__all__ = [
    "SlicePair",
    "StudyPairing",
    "contour_folder",
    "pair_study",
    "study_fingerprint",
    "study_listing_digest",
]

_OUTSIDE = "a link that leads outside the data folder; skipped"
_DICOM_NAME = re.compile(r"^(0|[1-9][0-9]*)\.dcm$")


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


def contour_folder(kind: str) -> str:
    """Name of the sub-folder holding contours of ``kind``: ``i-contours`` or ``o-contours``."""
    return f"{kind}-contours"


def pair_study(
    link: StudyLink, data_dir: str | Path, contour_kinds: tuple[str, ...]
) -> StudyPairing:
    """Pair the files of one study by slice number.

    Args:
        link: the study's row of link.csv (ids already checked to be plain folder names).
        data_dir: the raw data root.
        contour_kinds: which contour kinds to take, e.g. ``("i",)`` or ``("i", "o")``.

    Returns:
        a StudyPairing whose slices hold every DICOM and contour file found, and whose problems
        record missing folders and skipped files.
    """
    data_dir = Path(data_dir)
    study = link.patient_id
    problems: list[Problem] = []
    by_slice: dict[int, SlicePair] = {}

    def slice_pair(number: int) -> SlicePair:
        return by_slice.setdefault(number, SlicePair(number))

    dicom_dir = f"dicoms/{link.patient_id}"
    dicom_names = _list_files(data_dir, dicom_dir, study, problems)
    if dicom_names is None:
        problems.append(
            Problem(
                study,
                dicom_dir,
                "study_missing",
                f"study listed on line {link.line} of link.csv but {dicom_dir}/ is not on disk",
            )
        )
        dicom_names = []
    for name in dicom_names:
        match = _DICOM_NAME.match(name)
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

    contour_dir = f"contourfiles/{link.original_id}"
    if not (data_dir / contour_dir).is_dir():
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
        for kind in contour_kinds:
            folder = f"{contour_dir}/{contour_folder(kind)}"
            for name in _list_files(data_dir, folder, study, problems) or []:
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


def _list_files(
    data_dir: Path, folder: str, study: str, problems: list[Problem]
) -> list[str] | None:
    """Names of the regular files in ``data_dir/folder``, sorted; None if the folder is absent.

    Hidden entries, sub-folders and links leading out of the data folder are recorded and left
    out.
    """
    root = data_dir / folder
    if not root.is_dir():
        return None
    if not _inside(data_dir, root):
        problems.append(Problem(study, folder, "path_outside_data_dir", _OUTSIDE))
        return []
    entries = sorted(os.scandir(root), key=lambda entry: entry.name)
    names = []
    for entry in entries:
        path = f"{folder}/{entry.name}"
        if entry.name.startswith("."):
            problems.append(Problem(study, path, "hidden_file", "hidden file skipped"))
        elif entry.is_symlink() and not _inside(data_dir, Path(entry.path)):
            problems.append(Problem(study, path, "path_outside_data_dir", _OUTSIDE))
        elif not entry.is_file():
            problems.append(
                Problem(study, path, "file_name_unrecognized", "not a regular file; skipped")
            )
        else:
            names.append(entry.name)
    return names


def _inside(data_dir: Path, path: Path) -> bool:
    return path.resolve().is_relative_to(data_dir.resolve())


def study_listing_digest(pairing: StudyPairing) -> str:
    """A digest of the study's file names and what pairing made of them (no file contents).

    Adding, removing or renaming any file of the study changes it.
    """
    parts = [pairing.link.patient_id, pairing.link.original_id]
    for pair in pairing.slices:
        parts.append(f"{pair.slice}:{pair.dicom}:{sorted(pair.contours.items())}")
    parts.extend(sorted(f"{problem.code}:{problem.path}" for problem in pairing.problems))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def study_fingerprint(pairing: StudyPairing, data_dir: str | Path) -> str:
    """A digest that changes whenever the files the study's build reads may have changed.

    It covers the study's file listing (see :func:`study_listing_digest`) and the size and
    modification time of each contour file and of each DICOM slice with a contour (the only
    DICOMs read). The workflow passes it as a parameter of the study's job, so that Snakemake
    reruns exactly the studies whose files changed, without declaring their ~40 files each as
    job inputs (which slows Snakemake's scheduler quadratically).
    """
    data_dir = Path(data_dir)
    parts = [study_listing_digest(pairing)]
    for pair in pairing.slices:
        if not pair.contours:
            continue
        for relpath in sorted([*pair.contours.values(), *([pair.dicom] if pair.dicom else [])]):
            stat = (data_dir / relpath).stat()
            parts.append(f"{relpath}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
