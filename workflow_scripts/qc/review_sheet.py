"""The review sheet: one HTML page per version (``qc/review.html``) where a person looks at each
study's overlays with their figures, marks slices to exclude with a reason, and downloads the
decisions as ``exclusions.csv`` (the format :mod:`workflow_scripts.qc.exclusions` reads).

The page is a static file: the figures are embedded as JSON, the pictures are the version's own
QC files referenced relatively from ``qc/`` (``<study>/<slice>.png``, ``plots/studies/...``), so
it works opened from the file, with no server and no network, and stays small (the overlays are
not copied). Its script keeps the decisions in the browser's local storage between visits and
starts a new review with the version's own exclusions, so the downloaded file carries them into
the next version. The template is ``review_sheet.html`` beside this module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from workflow_scripts.qc.figures import PX, StudyFigures

#: What a table shows for a figure that does not exist.
NONE = "\N{EN DASH}"

__all__ = ["review_sheet_html", "summary_rows"]

_TEMPLATE = Path(__file__).with_name("review_sheet.html")


def _number(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def summary_rows(figures: StudyFigures) -> list[tuple[str, str]]:
    """The study's numbers as (name, text) rows."""
    summary = figures.summary()
    digits = 0 if summary["unit"] == PX else 1
    rows = [("split", summary["split"] or NONE), ("samples", str(summary["samples"]))]
    for name in ("median area", "smallest area", "largest area"):
        value = summary[name]
        text = NONE if value is None else f"{value:,.{digits}f} {summary['unit']}"
        rows.append((name, text))
    rows.append(("flagged slices", str(summary["flagged slices"])))
    rows.append(("excluded by review", str(summary["excluded by review"])))
    problems = ", ".join(f"{code} {n}" for code, n in summary["problems"].items())
    rows.append(("problems", problems or "none"))
    return rows


def _study_entry(figures: StudyFigures, decisions: pd.DataFrame, qc_prefix: str) -> dict:
    samples = [
        {
            "slice": int(row.slice),
            "qc": str(row.qc).removeprefix(qc_prefix),
            "area": _number(row.area),
            "oarea": _number(row.oarea),
            "ratio": _number(row.area_to_median),
            "i_outside_o": _number(row.i_outside_o),
            "flags": [code for code in str(row.flags).split(",") if code],
        }
        for row in figures.samples.itertuples()
    ]
    mine = decisions[decisions["study_id"] == figures.study_id]
    excluded = [
        {
            "slice": int(row.slice),
            "reason": row.reason if isinstance(row.reason, str) else "",
            "reviewer": row.reviewer if isinstance(row.reviewer, str) else "",
            "date": row.date if isinstance(row.date, str) else "",
        }
        for row in mine.itertuples()
    ]
    return {
        "id": figures.study_id,
        "unit": figures.unit,
        "summary": summary_rows(figures),
        "plot": f"plots/studies/{figures.study_id}.png",
        "samples": samples,
        "excluded": excluded,
    }


def review_sheet_html(
    version: str, studies: Mapping[str, StudyFigures], decisions: pd.DataFrame
) -> bytes:
    """The review sheet's bytes (UTF-8 HTML) for a version.

    Args:
        version: the version's name (the page's title and its local-storage key).
        studies: :func:`~workflow_scripts.qc.figures.study_figures` of the version, by id.
        decisions: the version's reviewed exclusions
            (:func:`~workflow_scripts.qc.figures.reviewed_exclusions`).
    """
    data = {
        "version": version,
        "studies": [_study_entry(studies[study], decisions, "qc/") for study in sorted(studies)],
    }
    # JSON inside a <script> element: "<" escaped so no value can close the element.
    text = json.dumps(data, ensure_ascii=True, sort_keys=True, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    title = f"dataset version {version}".replace("&", "&amp;").replace("<", "&lt;")
    page = _TEMPLATE.read_text(encoding="utf-8")
    return page.replace("__TITLE__", title).replace("__DATA__", text).encode("utf-8")
