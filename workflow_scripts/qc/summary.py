"""What only the report shows (rule ``summarize_qc``), written outside the dataset, into the
build's work folder (``report/``):

- ``studies/<study>.html``: a study at a glance, one self-contained page: its numbers, its
  mask-area plot and its contact sheet (both inlined), and a table of its slices' figures;
- ``flagged/<code>/<study>/<slice>-<codes>.png``: the overlay of each sample flagged with
  ``code``, named so that the report labels it by study, slice and all of its codes.

Everything is read from the built version (tables, ``qc/``), never from the study jobs' outputs.
"""

from __future__ import annotations

import base64
import html
import shutil
from pathlib import Path

import pandas as pd

from workflow_scripts.files import staged_directory
from workflow_scripts.layout import Layout
from workflow_scripts.qc.figures import PX, StudyFigures, sample_figures, study_figures
from workflow_scripts.qc.review_sheet import NONE, summary_rows
from workflow_scripts.qc.version_qc import read_tables

__all__ = ["study_page", "write_report_material"]

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 12px; color: #222; }
table { border-collapse: collapse; margin: 6px 0 12px; }
td, th { padding: 2px 10px 2px 0; text-align: left; }
table.slices td, table.slices th { border-bottom: 1px solid #eee; text-align: right; }
tr.flagged { background: #fff1d6; }
img { max-width: 100%; }
"""


def _data_uri(path: Path, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _cell(value, digits: int) -> str:
    return NONE if value is None or pd.isna(value) else f"{value:,.{digits}f}"


def study_page(figures: StudyFigures, layout: Layout) -> bytes:
    """The study's report entry: numbers, plot and contact sheet together, self-contained."""
    study = figures.study_id
    escape = html.escape
    numbers = "".join(
        f"<tr><td>{escape(name)}</td><td>{escape(value)}</td></tr>"
        for name, value in summary_rows(figures)
    )
    digits = 0 if figures.unit == PX else 1
    unit = escape(figures.unit)
    rows = "".join(
        f"<tr class='{'flagged' if row.flags else ''}'><td>{row.slice}</td>"
        f"<td>{_cell(row.area, digits)}</td><td>{_cell(row.area_to_median, 2)}</td>"
        f"<td>{_cell(row.oarea, digits)}</td><td>{_cell(row.i_outside_o, 4)}</td>"
        f"<td>{escape(row.flags.replace(',', ', '))}</td></tr>"
        for row in figures.samples.itertuples()
    )
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(study)}"
        f"</title><style>{_STYLE}</style></head><body><h2>{escape(study)}</h2>",
        f"<table>{numbers}</table>",
        f"<img alt='mask areas of {escape(study)} by slice' "
        f"src='{_data_uri(layout.study_plot(study), 'image/png')}'>",
    ]
    sheet = layout.contact_sheet(study)
    if sheet.is_file():
        parts.append(
            f"<h3>Contact sheet</h3><img alt='overlays of {escape(study)}' "
            f"src='{_data_uri(sheet, 'image/jpeg')}'>"
        )
    if rows:
        parts.append(
            f"<h3>Slices</h3><table class='slices'><tr><th>slice</th><th>area ({unit})</th>"
            f"<th>area / median</th><th>o-mask ({unit})</th><th>i outside o</th>"
            f"<th>flags</th></tr>{rows}</table>"
        )
    parts.append(
        "<p>Mark slices to exclude in the version's review sheet, <code>qc/review.html</code>."
        "</p></body></html>"
    )
    return "".join(parts).encode("utf-8")


def write_report_material(
    layout: Layout,
    index_path: str | Path,
    validation_path: str | Path,
    studies_dir: str | Path,
    flagged_dir: str | Path,
) -> None:
    """Write the per-study pages and the flagged overlays, each folder as a whole."""
    index, validation = read_tables(index_path, validation_path)
    studies = study_figures(sample_figures(index), validation)
    with staged_directory(studies_dir) as staging:
        for study, figures in studies.items():
            (staging / f"{study}.html").write_bytes(study_page(figures, layout))
    with staged_directory(flagged_dir) as staging:
        for row in index[index["flags"] != ""].itertuples():
            codes = row.flags.split(",")
            for code in codes:
                target = staging / code / row.study_id / f"{row.slice:04d}-{','.join(codes)}.png"
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(layout.version_dir / row.qc, target)
