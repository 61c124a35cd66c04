"""The dataset's tables: ``index.parquet`` (one row per sample) and ``validation.parquet``
(one row per problem), assembled from the study records.

It also looks for what the per-study jobs cannot see: folders under ``dicoms/`` and
``contourfiles/`` that link.csv does not list (their contour files are accounted for one by one,
so that every contour file in the input appears in one of the two tables), and contour files
copied from one study into another (:func:`copies_between_studies`, from the points digests the
study records carry, without reading any contour file again).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

import pyarrow as pa

from loader.index_columns import INDEX_COLUMNS
from workflow_scripts.dataset.splits import assign_split
from workflow_scripts.files import folder_names, parquet_bytes, write_bytes_atomic
from workflow_scripts.layout import RawLayout
from workflow_scripts.raw.contours import copies_message, parse_contour_name
from workflow_scripts.raw.links import StudyLink
from workflow_scripts.raw.listing import LINK_CODES, broken_folder_link
from workflow_scripts.raw.pairing import FOLDER_LINK_MESSAGES
from workflow_scripts.raw.problems import Problem
from workflow_scripts.study.frames import FRAMES_SCHEMA
from workflow_scripts.study.measures import MEASURES_SCHEMA

__all__ = [
    "INDEX_SCHEMA",
    "VALIDATION_SCHEMA",
    "copies_between_studies",
    "find_unlisted_studies",
    "frames_table",
    "index_table",
    "load_records",
    "measures_table",
    "write_dataset_tables",
]


def _arrow_type(kind: str) -> pa.DataType:
    """The Arrow type of a type name of :data:`loader.index_columns.INDEX_COLUMNS`."""
    if kind.startswith("float64["):
        return pa.list_(pa.float64(), int(kind[len("float64[") : -1]))
    return {
        "string": pa.string(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "bool": pa.bool_(),
        "float64": pa.float64(),
    }[kind]


#: index.parquet's schema, from the one list of its columns and their meaning
#: (:data:`loader.index_columns.INDEX_COLUMNS`; ``docs/index-columns.md``).
INDEX_SCHEMA = pa.schema([(name, _arrow_type(kind)) for name, (kind, _) in INDEX_COLUMNS.items()])

VALIDATION_SCHEMA = pa.schema(
    [
        ("study_id", pa.string()),
        ("slice", pa.int32()),
        ("path", pa.string()),
        ("contour", pa.string()),
        ("code", pa.string()),
        ("severity", pa.string()),
        ("message", pa.string()),
        ("value", pa.float64()),
    ]
)


def load_records(paths: Iterable[str | Path]) -> list[dict]:
    """Read study records (JSON), sorted by study id."""
    records = [json.loads(Path(path).read_text(encoding="utf-8")) for path in paths]
    return sorted(records, key=lambda record: record["study_id"])


def index_table(
    records: list[dict],
    version: str,
    fractions: Mapping[str, float],
    seed: int,
    assigned: Mapping[str, str] | None = None,
    copied: frozenset[str] | set[str] = frozenset(),
) -> pa.Table:
    """One row per sample, sorted by (study_id, slice), with the version and the study's split:
    from ``assigned`` (study id -> split, config ``splits_file``) when given, else by hash of
    ``fractions`` and ``seed`` (:mod:`workflow_scripts.dataset.splits`). A sample whose
    i- or o-contour file is among ``copied`` (relative paths) gets ``contour_duplicate`` in its
    ``flags``."""
    rows = []
    for record in records:
        study = record["study_id"]
        if assigned is None:
            split = assign_split(study, fractions, seed)
        elif study in assigned:
            split = assigned[study]
        else:  # the build plan checked the table against link.csv: a record of another build
            raise ValueError(f"study {study!r} has a record but no split in splits_file")
        for sample in sorted(record["samples"], key=lambda sample: sample["slice"]):
            row = {**sample, "version": version, "split": split}
            if {sample.get("icontour"), sample.get("ocontour")} & copied:
                codes = {code for code in (sample.get("flags") or "").split(",") if code}
                row["flags"] = ",".join(sorted(codes | {"contour_duplicate"}))
            rows.append(row)
    return pa.Table.from_pylist(rows, schema=INDEX_SCHEMA)


def copies_between_studies(records: Iterable[Mapping]) -> list[Problem]:
    """``contour_duplicate`` rows for contour files whose points equal those of a contour file
    of another study, found from the records' ``contour_digests`` (the points digest of each
    contour file a study's samples put into the dataset; records written before they existed
    have none). Each file of such a group gets one row naming the other studies' files; copies
    within one study are its build's rows
    (:func:`~workflow_scripts.study.checks.flag_copied_contours`)."""
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for record in records:
        for path, digest in record.get("contour_digests", {}).items():
            groups[digest].append((record["study_id"], path))
    problems = []
    for group in groups.values():
        if len(group) < 2 or len({study for study, _ in group}) < 2:
            continue  # (the first test alone: most contours have no copy)
        for study, path in group:
            others = sorted(other for other_study, other in group if other_study != study)
            parsed = parse_contour_name(path.rsplit("/", 1)[-1])
            number = parsed[0] if parsed else None
            problems.append(
                Problem(study, path, "contour_duplicate", copies_message(others), number)
            )
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


def measures_table(records: list[dict]) -> pa.Table:
    """One row per study that has ED/ES measures (``measures`` of its record), by study id;
    records written before measures existed have none."""
    rows = [record["measures"] for record in records if record.get("measures")]
    return pa.Table.from_pylist(rows, schema=MEASURES_SCHEMA)


def frames_table(records: list[dict], index: pa.Table) -> pa.Table:
    """With ``frames: all``: one row per (study, position, phase), from the records' ``frames``
    (:func:`~workflow_scripts.study.frames.frame_rows`), by study id, position and phase, each
    frame that is a sample with its ``index_row`` (its row number in ``index``)."""
    studies, slices = index.column("study_id").to_pylist(), index.column("slice").to_pylist()
    pairs = zip(studies, slices, strict=True)
    row_of = {(study, number): row for row, (study, number) in enumerate(pairs)}
    rows = []
    for record in records:
        for frame in record.get("frames", []):
            key = (record["study_id"], frame["slice"])
            rows.append({**frame, "index_row": row_of.get(key) if frame["npz"] else None})
    return pa.Table.from_pylist(rows, schema=FRAMES_SCHEMA)


def write_dataset_tables(
    record_paths: Iterable[str | Path],
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
    frames.parquet (``frames: all``), each atomically, from the study records, adding the
    problems of study folders that link.csv does not list. ``assigned``: each study's split
    from config ``splits_file`` (see :func:`index_table`)."""
    records = load_records(record_paths)
    problems = [row for record in records for row in record["problems"]]
    copies = copies_between_studies(records)
    problems += [problem.as_row() for problem in copies]
    problems += [
        problem.as_row() for problem in find_unlisted_studies(data_dir, links, contour_kinds)
    ]
    copied = {problem.path for problem in copies}
    index = index_table(records, version, fractions, seed, assigned, copied)
    write_bytes_atomic(index_path, parquet_bytes(index))
    write_bytes_atomic(validation_path, parquet_bytes(validation_table(problems)))
    if measures_path is not None:
        write_bytes_atomic(measures_path, parquet_bytes(measures_table(records)))
    if frames_path is not None:
        write_bytes_atomic(frames_path, parquet_bytes(frames_table(records, index)))
