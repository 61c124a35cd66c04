"""The version's own QC files (rule ``plot_qc``), written into ``qc/`` before the manifest:

- ``qc/plots/{mask_areas,area_to_median,intensities}.png``: the dataset's distributions;
- ``qc/review.html``: the review sheet (:mod:`workflow_scripts.qc.review_sheet`).

They are read from the version's tables alone (``index.parquet``, whose intensity columns each
sample's build computed, ``validation.parquet`` and, where the version has it,
``measures.parquet``): no sample file is opened, so they come out
the same however the studies were built, and they are deterministic: the same version gives the
same bytes. Each study's own plot is drawn by its build (:mod:`workflow_scripts.study.study_qc`).

Drawing them is the dearest of the version's steps (matplotlib: ~2 s at 1,000 studies, most of
it laying out and encoding the three plots). When the step reruns on tables byte-identical to
those the files were drawn from (a study rebuilt to the same bytes, a file touched), the files
are put back as they were: ``work/{version}/version_qc/`` keeps hard links to the files last
drawn (no copy: every writer of the workflow writes a new file and renames it, so a link always
shows the file as drawn) and ``note.json`` there what they were drawn from (the sha256 of each
table, the decisions, the outlier factor, the version, and the code and library versions,
:func:`~workflow_scripts.study.reuse.code_digest`) and each file's sha256. When both still
hold, the kept files are linked into ``qc/`` again (Snakemake removes a job's outputs before it
runs) and touched, so that Snakemake sees them newer than the tables; nothing is drawn or
imported for drawing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from loader.manifest import file_digest
from workflow_scripts.files import write_bytes_atomic
from workflow_scripts.layout import DATASET_PLOTS, Layout
from workflow_scripts.study.reuse import code_digest

__all__ = ["read_tables", "write_version_qc"]


def read_tables(index_path: str | Path, validation_path: str | Path):
    """(index, validation) as DataFrames, flags as "" when a sample has none."""
    import pandas as pd

    index = pd.read_parquet(index_path)
    index["flags"] = index["flags"].fillna("")
    return index, pd.read_parquet(validation_path)


def write_version_qc(
    layout: Layout,
    index_path: str | Path,
    validation_path: str | Path,
    decisions: Sequence[Mapping],
    area_outlier_factor: float,
    measures_path: str | Path | None = None,
) -> None:
    """Write the version's dataset plots and review sheet, each file atomically.

    Args:
        layout: the build's layout (where ``qc/`` is).
        index_path, validation_path: the version's tables.
        decisions: the reviewed exclusions the version was built with (``study_id``,
            ``slice``, ``reason``, ``reviewer``, ``date``), shown in the review sheet and
            carried into the exclusions file it downloads.
        area_outlier_factor: ``checks.area_outlier_factor``, drawn as the outlier thresholds.
        measures_path: the version's ``measures.parquet`` (EDV, ESV and EF in the review
            sheet's study headers); None for a version without it.
    """
    drawn_from = _drawn_from(
        layout, index_path, validation_path, measures_path, decisions, area_outlier_factor
    )
    if _kept(layout, drawn_from):
        return
    # deferred: a version whose tables did not change draws nothing
    import pandas as pd

    from workflow_scripts.qc import plots
    from workflow_scripts.qc.figures import reviewed_exclusions, sample_figures
    from workflow_scripts.qc.review_sheet import review_sheet_html

    index, validation = read_tables(index_path, validation_path)
    figures = sample_figures(index)
    write_bytes_atomic(layout.dataset_plot("mask_areas"), plots.area_distribution_plot(figures))
    write_bytes_atomic(
        layout.dataset_plot("area_to_median"),
        plots.ratio_distribution_plot(figures, area_outlier_factor),
    )
    write_bytes_atomic(layout.dataset_plot("intensities"), plots.intensity_plot(figures))
    table = reviewed_exclusions(validation, list(decisions))
    measures = pd.read_parquet(measures_path) if measures_path else None
    sheet = review_sheet_html(layout.version, figures, validation, table, measures)
    write_bytes_atomic(layout.review_sheet, sheet)
    _keep(layout, drawn_from)


def _kept_dir(layout: Layout) -> Path:
    return layout.work_dir / "version_qc"


def _files(layout: Layout) -> list[Path]:
    return [layout.review_sheet, *(layout.dataset_plot(name) for name in DATASET_PLOTS)]


def _kept_file(layout: Layout, path: Path) -> Path:
    return _kept_dir(layout) / layout.in_version(path).replace("/", "__")


def _drawn_from(
    layout: Layout,
    index_path: str | Path,
    validation_path: str | Path,
    measures_path: str | Path | None,
    decisions: Sequence[Mapping],
    area_outlier_factor: float,
) -> str:
    """sha256 of everything the version's QC files are drawn from (the module's docstring)."""
    tables = [index_path, validation_path, measures_path]
    described = {
        "tables": [file_digest(path)["sha256"] if path else None for path in tables],
        "decisions": [dict(decision) for decision in decisions],
        "area_outlier_factor": float(area_outlier_factor),
        "version": layout.version,
        "code": code_digest(),
    }
    text = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _keep(layout: Layout, drawn_from: str) -> None:
    """Link the files just drawn into the work folder, with the note saying what from."""
    note_path = _kept_dir(layout) / "note.json"
    note_path.unlink(missing_ok=True)  # first: a note never describes other files
    files = {}
    for path in _files(layout):
        _link_into_place(path, _kept_file(layout, path))
        files[layout.in_version(path)] = file_digest(path)["sha256"]
    note = {"drawn_from": drawn_from, "files": files}
    write_bytes_atomic(note_path, json.dumps(note, indent=1, sort_keys=True).encode())


def _kept(layout: Layout, drawn_from: str) -> bool:
    """Whether the kept files were drawn from ``drawn_from`` and are intact (each file's
    sha256 as noted); then they are linked into place and touched, as a rewrite would."""
    try:
        note = json.loads((_kept_dir(layout) / "note.json").read_bytes())
    except (OSError, ValueError):
        return False
    files = _files(layout)
    noted = note.get("files", {})
    if note.get("drawn_from") != drawn_from or set(noted) != {
        layout.in_version(path) for path in files
    }:
        return False
    for path in files:
        kept = _kept_file(layout, path)
        if not kept.is_file() or file_digest(kept)["sha256"] != noted[layout.in_version(path)]:
            return False
    for path in files:
        _link_into_place(_kept_file(layout, path), path)
        os.utime(path)
    return True


def _link_into_place(source: Path, target: Path) -> None:
    """``target`` becomes a hard link to ``source`` (a copy where the file system has none),
    atomically: linked under a temporary name and renamed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.link")
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
    except OSError:
        shutil.copyfile(source, temporary)
    os.replace(temporary, target)
