"""The version's own QC files (rule ``plot_qc``), written into ``qc/`` before the manifest:

- ``qc/plots/{mask_areas,area_to_median,intensities}.png``: the dataset's distributions;
- ``qc/review.html``: the review sheet (:mod:`workflow_scripts.qc.review_sheet`).

They are read from the version's tables alone (``index.parquet``, whose intensity columns each
sample's build computed, ``validation.parquet`` and, where the version has it,
``measures.parquet``): no sample file is opened, so they come out
the same however the studies were built, and they are deterministic: the same version gives the
same bytes. Each study's own plot is drawn by its build (:mod:`workflow_scripts.study.study_qc`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from workflow_scripts.files import write_bytes_atomic
from workflow_scripts.layout import Layout
from workflow_scripts.qc import plots
from workflow_scripts.qc.figures import reviewed_exclusions, sample_figures
from workflow_scripts.qc.review_sheet import review_sheet_html

__all__ = ["read_tables", "write_version_qc"]


def read_tables(index_path: str | Path, validation_path: str | Path):
    """(index, validation) as DataFrames, flags as "" when a sample has none."""
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
