"""The version's own QC files (rule ``plot_qc``), written into ``qc/`` before the manifest:

- ``qc/plots/studies/<study>.png``: each study's mask areas against slice number;
- ``qc/plots/{mask_areas,area_to_median,intensities}.png``: the dataset's distributions;
- ``qc/review.html``: the review sheet (:mod:`workflow_scripts.qc.review_sheet`).

They are read from the version's tables alone (``index.parquet``, whose intensity columns each
sample's build computed, and ``validation.parquet``): no sample file is opened, so they come out
the same however the studies were built, and they are deterministic: the same version gives the
same bytes.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from workflow_scripts.files import staged_directory, write_bytes_atomic
from workflow_scripts.layout import Layout
from workflow_scripts.qc import plots
from workflow_scripts.qc.figures import reviewed_exclusions, sample_figures, study_figures
from workflow_scripts.qc.review_sheet import review_sheet_html

__all__ = ["read_tables", "write_version_qc"]

#: Below this many studies a worker pool costs more (each worker imports matplotlib and
#: pandas, ~1 s) than it saves (a study plot takes ~0.1 s).
_POOL_FROM = 40


def read_tables(index_path: str | Path, validation_path: str | Path):
    """(index, validation) as DataFrames, flags as "" when a sample has none."""
    index = pd.read_parquet(index_path)
    index["flags"] = index["flags"].fillna("")
    return index, pd.read_parquet(validation_path)


def _draw_study(task: tuple) -> tuple[str, bytes]:
    study, samples, excluded, factor = task
    return study, plots.study_plot(study, samples, excluded, factor)


def draw_study_plots(tasks: Sequence[tuple], workers: int) -> list[tuple[str, bytes]]:
    """(study, PNG bytes) for each (study, samples, excluded slices, factor) task, in order;
    on ``workers`` processes when there are enough studies to pay for them.

    The pool starts its workers with "spawn": a Snakemake script that calls this must keep its
    top-level work under ``if __name__ == "__main__"``, which spawned workers skip.
    """
    if workers <= 1 or len(tasks) < _POOL_FROM:
        return [_draw_study(task) for task in tasks]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(_draw_study, tasks, chunksize=8))


def write_version_qc(
    layout: Layout,
    index_path: str | Path,
    validation_path: str | Path,
    decisions: Sequence[Mapping],
    area_outlier_factor: float,
    workers: int = 1,
) -> None:
    """Write the version's plots and review sheet (each file atomically, the study plots as
    one folder).

    Args:
        layout: the build's layout (where ``qc/`` is).
        index_path, validation_path: the version's tables.
        decisions: the reviewed exclusions the version was built with (``study_id``,
            ``slice``, ``reason``, ``reviewer``, ``date``), shown in the review sheet and
            carried into the exclusions file it downloads.
        area_outlier_factor: ``checks.area_outlier_factor``, drawn as the outlier band.
        workers: processes for the study plots.
    """
    index, validation = read_tables(index_path, validation_path)
    figures = sample_figures(index)
    studies = study_figures(figures, validation)
    tasks = [
        (study, item.samples, sorted(item.excluded["slice"].astype(int)), area_outlier_factor)
        for study, item in studies.items()
    ]
    with staged_directory(layout.study_plots_dir) as staging:
        for study, png in draw_study_plots(tasks, workers):
            (staging / f"{study}.png").write_bytes(png)
    write_bytes_atomic(layout.dataset_plot("mask_areas"), plots.area_distribution_plot(figures))
    write_bytes_atomic(
        layout.dataset_plot("area_to_median"),
        plots.ratio_distribution_plot(figures, area_outlier_factor),
    )
    write_bytes_atomic(layout.dataset_plot("intensities"), plots.intensity_plot(figures))
    table = reviewed_exclusions(validation, list(decisions))
    write_bytes_atomic(layout.review_sheet, review_sheet_html(layout.version, studies, table))
