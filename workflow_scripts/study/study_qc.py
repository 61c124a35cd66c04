"""A study's own QC beyond its overlays, made by its build while the study is in memory:

- its plot of mask areas against slice position, one curve per phase, EDV/ESV/EF in its title
  (``qc/{study}/mask_areas.png``, in the version),
  drawn by :func:`workflow_scripts.qc.study_plot.study_plot` (with Pillow, in a few ms);
- its report entry (``work/{version}/studies/{study}.html``, outside the version), made by
  :func:`workflow_scripts.qc.summary.study_page`: numbers, plot and contact sheet together.

Both come from :func:`study_figures_of`: the study's index rows and problems as the version's
tables will hold them, through the same :func:`~workflow_scripts.qc.figures.sample_figures` as
the dataset-wide figures (units, areas, the median of the outlier band: all per study). So they
depend on this study alone, and a rebuilt study redraws only its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from workflow_scripts.dataset.schemas import SAMPLE_SCHEMA, VALIDATION_SCHEMA
from workflow_scripts.qc.figures import StudyFigures, sample_figures
from workflow_scripts.qc.study_plot import study_plot

__all__ = ["study_figures_of", "study_plot_png"]


def study_figures_of(
    study_id: str, rows: Sequence[Mapping[str, Any]], problems: Sequence[Mapping[str, Any]]
) -> StudyFigures:
    """The study's :class:`~workflow_scripts.qc.figures.StudyFigures` from its index rows
    (without version and split) and its problem rows (``validation.parquet``'s columns)."""
    samples = pd.DataFrame(list(rows), columns=SAMPLE_SCHEMA.names)
    table = pd.DataFrame(list(problems), columns=VALIDATION_SCHEMA.names)
    return StudyFigures(study_id, sample_figures(samples), table)


def study_plot_png(
    figures: StudyFigures,
    measures: Mapping[str, Any] | None,
    excluded_positions: Sequence[float] = (),
) -> bytes:
    """The study's mask-area plot (PNG bytes): areas by position, a curve per phase, its
    measures (a row of measures.parquet, or None) in the title, and the positions of its
    slices excluded by review."""
    return study_plot(figures.study_id, figures.samples, excluded_positions, measures)
