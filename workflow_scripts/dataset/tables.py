"""The dataset's tables: ``index.parquet`` (one row per sample) and ``validation.parquet``
(one row per problem), and measures.parquet and frames.parquet, assembled from the studies'
tables (:mod:`workflow_scripts.dataset.batch_tables`: the batch jobs' share of them).

It also looks for what the per-study jobs cannot see: folders under ``dicoms/`` and
``contourfiles/`` that link.csv does not list (their contour files are accounted for one by one,
so that every contour file in the input appears in one of the two tables), and contour files
copied from one study into another (:func:`copies_between_studies`, from the points digests the
studies' builds recorded, without reading any contour file again).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from itertools import islice
from pathlib import Path

import pyarrow as pa

from workflow_scripts.dataset.schemas import INDEX_SCHEMA, VALIDATION_SCHEMA
from workflow_scripts.dataset.splits import assign_split
from workflow_scripts.files import folder_names, parquet_bytes, write_bytes_atomic
from workflow_scripts.layout import RawLayout
from workflow_scripts.raw.contours import SHOWN_COPIES, copies_message, parse_contour_name
from workflow_scripts.raw.links import StudyLink
from workflow_scripts.raw.listing import LINK_CODES, broken_folder_link
from workflow_scripts.raw.pairing import FOLDER_LINK_MESSAGES
from workflow_scripts.raw.problems import Problem
from workflow_scripts.study.frames import FRAMES_SCHEMA

__all__ = [
    "BATCH_TABLES_USED",
    "INDEX_SCHEMA",
    "VALIDATION_SCHEMA",
    "copies_between_studies",
    "find_unlisted_studies",
    "frames_table",
    "index_table",
    "measures_table",
    "write_dataset_tables",
]


#: The batches' tables (:mod:`~workflow_scripts.dataset.batch_tables`) that
#: :func:`write_dataset_tables` reads.
BATCH_TABLES_USED = ("samples", "problems", "measures", "frames", "contours")


def index_table(
    samples: pa.Table,
    version: str,
    fractions: Mapping[str, float],
    seed: int,
    assigned: Mapping[str, str] | None = None,
    copied: frozenset[str] | set[str] = frozenset(),
) -> pa.Table:
    """index.parquet: the studies' ``samples`` (columns of
    :data:`~workflow_scripts.dataset.schemas.SAMPLE_SCHEMA`) sorted by (study_id, slice), with
    the version and each study's split: from ``assigned`` (study id -> split, config
    ``splits_file``) when given, else by hash of ``fractions`` and ``seed``
    (:mod:`workflow_scripts.dataset.splits`). A sample whose i- or o-contour file is among
    ``copied`` (relative paths) gets ``contour_duplicate`` in its ``flags``."""
    samples = samples.sort_by([("study_id", "ascending"), ("slice", "ascending")])
    studies = samples.column("study_id").to_pylist()
    split_of = {}
    for study in dict.fromkeys(studies):
        if assigned is None:
            split_of[study] = assign_split(study, fractions, seed)
        elif study in assigned:
            split_of[study] = assigned[study]
        else:  # the build plan checked the table against link.csv: a record of another build
            raise ValueError(f"study {study!r} has a record but no split in splits_file")
    columns = {name: samples.column(name) for name in samples.column_names}
    columns["version"] = pa.array([version] * samples.num_rows, pa.string())
    columns["split"] = pa.array([split_of[study] for study in studies], pa.string())
    if copied:
        columns["flags"] = pa.array(_with_duplicate_flag(samples, copied), pa.string())
    return pa.table(
        [columns[field.name] for field in INDEX_SCHEMA], schema=INDEX_SCHEMA
    ).combine_chunks()


def _with_duplicate_flag(samples: pa.Table, copied: frozenset[str] | set[str]) -> list:
    """The ``flags`` of ``samples``, with ``contour_duplicate`` added where a contour file is
    among ``copied``."""
    flags = samples.column("flags").to_pylist()
    contours = zip(
        samples.column("icontour").to_pylist(), samples.column("ocontour").to_pylist(), strict=True
    )
    for row, pair in enumerate(contours):
        if set(pair) & copied:
            codes = {code for code in (flags[row] or "").split(",") if code}
            flags[row] = ",".join(sorted(codes | {"contour_duplicate"}))
    return flags


def copies_between_studies(contours: pa.Table) -> list[Problem]:
    """``contour_duplicate`` rows for contour files whose points equal those of a contour file
    of another study, found from the studies' ``contours`` table (``study_id``, ``path``,
    ``digest``: the points digest of each contour file a study's samples put into the dataset;
    :mod:`~workflow_scripts.dataset.batch_tables`). Each file of such a group gets one row
    naming the other studies' files; copies within one study are its build's rows
    (:func:`~workflow_scripts.study.checks.flag_copied_contours`)."""
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for study, path, digest in zip(
        *(contours.column(name).to_pylist() for name in ("study_id", "path", "digest")),
        strict=True,
    ):
        groups[digest].append((study, path))
    problems = []
    for group in groups.values():
        if len(group) < 2 or len({study for study, _ in group}) < 2:
            continue  # (the first test alone: most contours have no copy)
        # the message names the first few others and counts the rest: a group of n copies
        # costs n rows, not n * n names (copied studies can share every contour)
        by_path = sorted(group, key=lambda member: member[1])
        per_study = Counter(study for study, _ in group)
        for study, path in group:
            others = (other for other_study, other in by_path if other_study != study)
            message = copies_message(
                list(islice(others, SHOWN_COPIES)), len(group) - per_study[study]
            )
            parsed = parse_contour_name(path.rsplit("/", 1)[-1])
            number = parsed[0] if parsed else None
            problems.append(Problem(study, path, "contour_duplicate", message, number))
    return problems


def validation_table(problems: Iterable[Mapping]) -> pa.Table:
    """One row per problem, sorted by (study_id, path, code, slice) for stable bytes."""
    rows = sorted(
        problems,
        key=lambda row: (row["study_id"], row["path"], row["code"], row["slice"] or -1),
    )
    return pa.Table.from_pylist(list(rows), schema=VALIDATION_SCHEMA)


def find_unlisted_studies(
    data_dir: str | Path, links: Iterable[StudyLink], contour_kinds: tuple[str, ...]
) -> list[Problem]:
    """Problems for study folders on disk that link.csv does not list.

    An unlisted DICOM folder gives one ``study_unlisted`` row; an unlisted contour folder gives
    one per file in its contour sub-folders (of the configured kinds), each accounting for that
    file, or, when it is a symbolic link that cannot be followed (so that its files are
    unknown), one row of that link's code. Hidden entries directly under dicoms/ and
    contourfiles/ give ``hidden_file`` rows.
    """
    data_dir = Path(data_dir)
    links = list(links)
    problems: list[Problem] = []
    listed_dicoms = {link.patient_id for link in links}
    for name in folder_names(data_dir / RawLayout.DICOMS):
        path = RawLayout.dicom_dir_relpath(name)
        if name.startswith("."):
            problems.append(Problem(name, path, "hidden_file", "hidden entry skipped"))
        elif name not in listed_dicoms:
            problems.append(Problem(name, path, "study_unlisted", "not listed in link.csv"))
    listed_contours = {link.original_id for link in links}
    for name in folder_names(data_dir / RawLayout.CONTOURS):
        path = RawLayout.contour_dir_relpath(name)
        if name.startswith("."):
            problems.append(Problem(name, path, "hidden_file", "hidden entry skipped"))
        elif name not in listed_contours:
            if link_kind := broken_folder_link(data_dir, path):
                message = FOLDER_LINK_MESSAGES[link_kind]
                problems.append(Problem(name, path, LINK_CODES[link_kind], message))
                continue
            for kind in contour_kinds:
                folder = RawLayout.contour_kind_relpath(name, kind)
                for file in folder_names(data_dir / folder):
                    if file.startswith("."):
                        continue  # not a contour file (macOS ._ copies and the like)
                    parsed = parse_contour_name(file)
                    problems.append(
                        Problem(
                            name,
                            f"{folder}/{file}",
                            "study_unlisted",
                            "its study folder is not listed in link.csv",
                            parsed[0] if parsed else None,
                            contour=f"{folder}/{file}",
                        )
                    )
    return problems


def measures_table(measures: pa.Table) -> pa.Table:
    """measures.parquet: the studies' ``measures`` rows (those with ED/ES measures), by study
    id."""
    return measures.sort_by([("study_id", "ascending")]).combine_chunks()


def frames_table(frames: pa.Table, index: pa.Table) -> pa.Table:
    """With ``frames: all``: frames.parquet, the studies' ``frames`` rows (one per (study,
    position, phase), without ``index_row``;
    :func:`~workflow_scripts.study.frames.frame_rows`) by study id, position and phase, each
    frame that is a sample with its ``index_row`` (its row number in ``index``)."""
    frames = frames.sort_by(
        [("study_id", "ascending"), ("position", "ascending"), ("phase", "ascending")]
    )
    studies, slices = index.column("study_id").to_pylist(), index.column("slice").to_pylist()
    pairs = zip(studies, slices, strict=True)
    row_of = {(study, number): row for row, (study, number) in enumerate(pairs)}
    keys = zip(
        *(frames.column(name).to_pylist() for name in ("study_id", "slice", "npz")), strict=True
    )
    index_rows = [row_of.get((study, number)) if npz else None for study, number, npz in keys]
    columns = {name: frames.column(name) for name in frames.column_names}
    columns["index_row"] = pa.array(index_rows, pa.int64())
    return pa.table(
        [columns[field.name] for field in FRAMES_SCHEMA], schema=FRAMES_SCHEMA
    ).combine_chunks()


def write_dataset_tables(
    tables: Mapping[str, pa.Table],
    links: list[StudyLink],
    data_dir: str | Path,
    contour_kinds: tuple[str, ...],
    version: str,
    fractions: Mapping[str, float],
    seed: int,
    index_path: str | Path,
    validation_path: str | Path,
    assigned: Mapping[str, str] | None = None,
    measures_path: str | Path | None = None,
    frames_path: str | Path | None = None,
) -> None:
    """Write index.parquet, validation.parquet and (given their paths) measures.parquet and
    frames.parquet (``frames: all``), each atomically, from the studies' ``tables``
    (:func:`~workflow_scripts.dataset.batch_tables.read_version_tables`), adding the problems
    of study folders that link.csv does not list. ``assigned``: each study's split from config
    ``splits_file`` (see :func:`index_table`)."""
    problems = tables["problems"].to_pylist()
    copies = copies_between_studies(tables["contours"])
    problems += [problem.as_row() for problem in copies]
    problems += [
        problem.as_row() for problem in find_unlisted_studies(data_dir, links, contour_kinds)
    ]
    copied = {problem.path for problem in copies}
    index = index_table(tables["samples"], version, fractions, seed, assigned, copied)
    write_bytes_atomic(index_path, parquet_bytes(index))
    write_bytes_atomic(validation_path, parquet_bytes(validation_table(problems)))
    if measures_path is not None:
        write_bytes_atomic(measures_path, parquet_bytes(measures_table(tables["measures"])))
    if frames_path is not None:
        write_bytes_atomic(frames_path, parquet_bytes(frames_table(tables["frames"], index)))
