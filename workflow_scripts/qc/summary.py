"""What only the report shows (rule ``summarize_qc``), outside the dataset, in the build's work
folder:

- a study's entry, one self-contained page: its numbers, its mask-area plot and its contact
  sheet (both inlined), and a table of its slices' figures. Each study's build writes its own
  (:func:`study_page`, beside its record: ``work/{version}/studies/{study}.html``), from the
  bytes it has just drawn, so a rebuilt study rewrites only its own page;
- ``report/studies/<split>/<study>.html``: every study's page, gathered by
  :func:`write_report_material` and labelled by study and split (``none`` without samples);
- ``report/flagged/<code>/<study>/<slice>-<codes>.png``: the overlay of each sample flagged
  with ``code``, named so that the report labels it by study, slice and all of its codes.

Gathering links rather than copies: the pages and overlays are hard links to the files the
builds wrote (a copy only where the file system refuses a link), so the step writes no picture
and costs about the same whatever the pictures weigh. The files it links are never changed in
place (every writer of the workflow writes a new file and renames it), so a link always shows
the file as it was when linked.
"""

from __future__ import annotations

import base64
import html
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from workflow_scripts.files import staged_directory
from workflow_scripts.layout import Layout
from workflow_scripts.qc.figures import PX, StudyFigures
from workflow_scripts.qc.review_sheet import NONE, summary_rows

__all__ = ["NO_SPLIT", "study_page", "write_report_material"]

#: The report's split label of a study without samples.
NO_SPLIT = "none"

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 12px; color: #222; }
table { border-collapse: collapse; margin: 6px 0 12px; }
td, th { padding: 2px 10px 2px 0; text-align: left; }
table.slices td, table.slices th { border-bottom: 1px solid #eee; text-align: right; }
tr.flagged { background: #fff1d6; }
img { max-width: 100%; }
"""


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _cell(value, digits: int) -> str:
    return NONE if value is None or pd.isna(value) else f"{value:,.{digits}f}"


def study_page(figures: StudyFigures, plot: bytes, sheet: bytes | None) -> bytes:
    """The study's report entry (UTF-8 HTML): numbers, ``plot`` (PNG) and ``sheet`` (its
    contact sheet, JPEG) together, self-contained. The split is the report's label, not part
    of the page: the page is made by the study's build, before the index assigns splits."""
    study = figures.study_id
    escape = html.escape
    numbers = "".join(
        f"<tr><td>{escape(name)}</td><td>{escape(value)}</td></tr>"
        for name, value in summary_rows(figures.summary(), with_split=False)
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
        f"<img alt='mask areas of {escape(study)} by slice' src='{_data_uri(plot, 'image/png')}'>",
    ]
    if sheet is not None:
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
    studies: Iterable[str],
    studies_dir: str | Path,
    flagged_dir: str | Path,
) -> None:
    """Gather the report's material, each folder as a whole: the page of every study of
    ``studies`` (the batch records' studies; each build wrote its page), under its split,
    and the overlay of every flagged sample of the index once per code."""
    index = pq.read_table(index_path, columns=["study_id", "slice", "qc", "split", "flags"])
    index = index.to_pydict()
    splits = dict(zip(index["study_id"], index["split"], strict=True))
    with staged_directory(studies_dir) as staging:
        for study in sorted(studies):
            target = staging / splits.get(study, NO_SPLIT) / f"{study}.html"
            _link(layout.report_page(study), target)
    with staged_directory(flagged_dir) as staging:
        rows = zip(index["study_id"], index["slice"], index["qc"], index["flags"], strict=True)
        for study, number, overlay, flags in rows:
            codes = flags.split(",") if flags else []
            for code in codes:
                target = staging / code / study / f"{number:04d}-{','.join(codes)}.png"
                _link(layout.version_dir / overlay, target)


def _link(source: Path, target: Path) -> None:
    """A hard link to ``source`` at ``target`` (a copy where the file system has no links)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
