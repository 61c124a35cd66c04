"""The review sheet: one HTML page per version (``qc/review.html``) where a person looks at each
study's overlays with their figures, marks slices to exclude with a reason, and downloads the
decisions as ``exclusions.csv`` (the format :mod:`workflow_scripts.qc.exclusions` reads).

The page is a static file: the figures are embedded as JSON, the pictures are the version's own
QC files referenced relatively from ``qc/`` (``<study>/<slice>.png``, ``<study>/mask_areas.png``),
so it works opened from the file, with no server and no network, and stays small (the pictures
are not copied). Its script keeps the decisions in the browser's local storage between visits and
starts a new review with the version's own exclusions, so the downloaded file carries them into
the next version. The template is ``review_sheet.html`` beside this module.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from workflow_scripts.layout import STUDY_PLOT
from workflow_scripts.qc.figures import PX, listed_studies, study_summary

#: What a table shows for a figure that does not exist.
NONE = "\N{EN DASH}"

__all__ = ["review_sheet_html", "summary_rows"]

_TEMPLATE = Path(__file__).with_name("review_sheet.html")
#: The figure columns of a sample's entry in the sheet, and the entry's names for them.
_SAMPLE_FIELDS = {
    "slice": "slice", "qc": "qc", "area": "area", "oarea": "oarea",
    "area_to_median": "ratio", "i_outside_o": "i_outside_o", "flags": "flags",
}  # fmt: skip
_DECISION_TEXT = ("reason", "reviewer", "date")


def _number(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def summary_rows(summary: Mapping[str, object], with_split: bool = True) -> list[tuple[str, str]]:
    """A study's numbers (:func:`~workflow_scripts.qc.figures.study_summary`) as (name, text)
    rows; the first is its split, ``with_split``."""
    digits = 0 if summary["unit"] == PX else 1
    rows = [("split", summary["split"] or NONE)] if with_split else []
    rows.append(("samples", str(summary["samples"])))
    for name in ("median area", "smallest area", "largest area"):
        value = summary[name]
        text = NONE if value is None else f"{value:,.{digits}f} {summary['unit']}"
        rows.append((name, text))
    rows.append(("flagged slices", str(summary["flagged slices"])))
    rows.append(("excluded by review", str(summary["excluded by review"])))
    problems = ", ".join(f"{code} {n}" for code, n in summary["problems"].items())
    rows.append(("problems", problems or "none"))
    return rows


def _sample_entry(sample: Mapping[str, object], qc_prefix: str) -> dict:
    return {
        "slice": int(sample["slice"]),
        "qc": str(sample["qc"]).removeprefix(qc_prefix),
        **{name: _number(sample[name]) for name in ("area", "oarea", "ratio", "i_outside_o")},
        "flags": [code for code in str(sample["flags"]).split(",") if code],
    }


def _entries(figures: pd.DataFrame, validation: pd.DataFrame, decisions: pd.DataFrame):
    """Each study's entry, in study order, from one pass over each table's columns (not a
    DataFrame per study: the sheet holds every study of the version)."""
    columns = [figures[name].tolist() for name in _SAMPLE_FIELDS]
    samples = defaultdict(list)
    for study, unit, split, *values in zip(
        figures["study_id"].tolist(), figures["unit"].tolist(), figures["split"].tolist(),
        *columns, strict=True,
    ):  # fmt: skip
        sample = dict(zip(_SAMPLE_FIELDS.values(), values, strict=True))
        samples[study].append((unit, split, sample))
    codes = defaultdict(list)
    problems = zip(validation["study_id"].tolist(), validation["code"].tolist(), strict=True)
    for study, code in problems:
        codes[study].append(code)
    excluded = defaultdict(list)
    for row in decisions.to_dict("records"):
        text = {key: row[key] if isinstance(row[key], str) else "" for key in _DECISION_TEXT}
        if row.get("contour"):  # an o-contour excluded alone: carried forward as such
            text["contour"] = row["contour"]
        excluded[row["study_id"]].append({"slice": int(row["slice"]), **text})
    for study in listed_studies(figures, validation):
        rows = samples.get(study, [])
        unit, split = (rows[0][0], rows[0][1]) if rows else (PX, "")
        summary = study_summary(
            [sample["area"] for _, _, sample in rows],
            [sample["flags"] for _, _, sample in rows],
            codes.get(study, []),
            unit,
            split,
        )
        yield {
            "id": study,
            "unit": unit,
            "summary": summary_rows(summary),
            "plot": f"{study}/{STUDY_PLOT}",
            "samples": [_sample_entry(sample, "qc/") for _, _, sample in rows],
            "excluded": excluded.get(study, []),
        }


def review_sheet_html(
    version: str, figures: pd.DataFrame, validation: pd.DataFrame, decisions: pd.DataFrame
) -> bytes:
    """The review sheet's bytes (UTF-8 HTML) for a version.

    Args:
        version: the version's name (the page's title and its local-storage key).
        figures: :func:`~workflow_scripts.qc.figures.sample_figures` of the version's index.
        validation: the version's ``validation.parquet``; every study of
            :func:`~workflow_scripts.qc.figures.listed_studies` gets an entry.
        decisions: the version's reviewed exclusions
            (:func:`~workflow_scripts.qc.figures.reviewed_exclusions`).
    """
    data = {"version": version, "studies": list(_entries(figures, validation, decisions))}
    # JSON inside a <script> element: "<" escaped so no value can close the element.
    text = json.dumps(data, ensure_ascii=True, sort_keys=True, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    title = f"dataset version {version}".replace("&", "&amp;").replace("<", "&lt;")
    page = _TEMPLATE.read_text(encoding="utf-8")
    return page.replace("__TITLE__", title).replace("__DATA__", text).encode("utf-8")
