"""The review sheet: one HTML page per version (``qc/review.html``) where a person looks at each
study's overlays with their figures, marks slices to exclude with a reason, and downloads the
decisions as ``exclusions.csv`` (the format :mod:`workflow_scripts.qc.exclusions` reads).

The page is a static file: the figures are embedded as JSON, the pictures are the version's own
QC files referenced relatively from ``qc/`` (``<study>/<slice>.png``, ``<study>/mask_areas.png``),
so it works opened from the file, with no server and no network, and stays small (the pictures
are not copied). Its script keeps the decisions in the browser's local storage between visits and
starts a new review with the version's own exclusions, so the downloaded file carries them into
the next version. The template is ``review_sheet.html`` beside this module.

A study's overlays are arranged as its cine (:func:`cine_arrangement`): one row per slice
position, base to apex, one column per contoured phase (ED, then ES, then any other), so a
position's ED and ES lie side by side; samples whose position or phase is unknown (older
versions, ``cine_*`` problems) follow in a row of their own. Positions, phases, trigger times
and ED/ES are the index's columns, and the study's EDV, ESV and EF its row of
``measures.parquet``: the sheet derives none of them.
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

__all__ = ["cine_arrangement", "measures_entry", "review_sheet_html", "summary_rows"]

_TEMPLATE = Path(__file__).with_name("review_sheet.html")
#: The figure columns of a sample's entry in the sheet, and the entry's names for them.
_SAMPLE_FIELDS = {
    "slice": "slice", "qc": "qc", "area": "area", "oarea": "oarea",
    "area_to_median": "ratio", "i_outside_o": "i_outside_o", "flags": "flags",
}  # fmt: skip
#: The index's cine columns (docs/cine.md) a sample's entry carries; None where the version's
#: index has no such column (versions built before the cine) or the value is unknown.
_CINE_FIELDS = ("position", "position_mm", "phase", "trigger_time", "cardiac_phase")
_INTEGER_CINE_FIELDS = ("position", "phase")
#: The measures.parquet columns shown in a study's header.
_MEASURES_FIELDS = ("edv_ml", "esv_ml", "ef_percent")
#: The order of a study's columns: ED, ES, then the other contoured phases by phase index.
_COLUMN_ORDER = {"ED": 0, "ES": 1}
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


def _cine_value(name: str, value):
    """An index cine value as JSON: int position/phase (read as float where some are null),
    float millimetres and milliseconds, the ED/ES string ("" unknown), None where unknown."""
    if name == "cardiac_phase":
        return value if isinstance(value, str) else ""
    number = _number(value)
    if number is None or name not in _INTEGER_CINE_FIELDS:
        return number
    return int(number)


def _sample_entry(sample: Mapping[str, object], qc_prefix: str) -> dict:
    return {
        "slice": int(sample["slice"]),
        "qc": str(sample["qc"]).removeprefix(qc_prefix),
        **{name: _number(sample[name]) for name in ("area", "oarea", "ratio", "i_outside_o")},
        "flags": [code for code in str(sample["flags"]).split(",") if code],
        **{name: _cine_value(name, sample.get(name)) for name in _CINE_FIELDS},
    }


def _milliseconds(times: list[float]) -> str:
    """The range of trigger times, in whole ms (TriggerTime has microseconds on the real
    studies, which only clutter a heading)."""
    low, high = f"{min(times):.0f}", f"{max(times):.0f}"
    return f"{low} ms" if low == high else f"{low}\N{EN DASH}{high} ms"


def cine_arrangement(samples: list[Mapping[str, object]]) -> dict:
    """A study's samples (entries with ``slice`` and the index's :data:`_CINE_FIELDS`) laid
    out as its cine, by slice number (never re-derived: the index's values as they are).

    Returns a dict of:

    - ``columns``: one per contoured phase, ED, then ES, then the other phases by phase index,
      each ``{"cardiac_phase", "phase", "heading"}``; the heading, e.g. ``ED · phase 19 ·
      672-688 ms`` (an en dash), gives the range of its samples' trigger times in whole ms.
    - ``rows``: one per slice position with a sample, in ``position`` order (base to apex),
      each ``{"position", "position_mm", "cells"}``: ``cells`` holds per column the slice
      numbers at that position and phase (usually one; none where the position has no
      contour at that phase), ``position_mm`` is that of the row's lowest slice number.
    - ``unplaced``: the slice numbers whose position or phase is unknown, ascending.
    """
    ordered = sorted(samples, key=lambda sample: sample["slice"])
    placed = [s for s in ordered if s["position"] is not None and s["phase"] is not None]
    unplaced = [s["slice"] for s in ordered if s["position"] is None or s["phase"] is None]
    column_keys = sorted(
        {(_COLUMN_ORDER.get(s["cardiac_phase"], 2), s["phase"], s["cardiac_phase"]) for s in placed}
    )
    columns = []
    for _, phase, cardiac in column_keys:
        at_phase = [s for s in placed if (s["phase"], s["cardiac_phase"]) == (phase, cardiac)]
        times = [s["trigger_time"] for s in at_phase if s["trigger_time"] is not None]
        parts = [cardiac] if cardiac else []
        parts += [f"phase {phase}"] + ([_milliseconds(times)] if times else [])
        columns.append({"cardiac_phase": cardiac, "phase": phase, "heading": " · ".join(parts)})
    at = {key[1:]: number for number, key in enumerate(column_keys)}
    rows: dict[int, dict] = {}
    for s in placed:
        row = rows.setdefault(
            s["position"],
            {"position": s["position"], "position_mm": s["position_mm"],
             "cells": [[] for _ in columns]},
        )  # fmt: skip
        row["cells"][at[(s["phase"], s["cardiac_phase"])]].append(s["slice"])
    return {"columns": columns, "rows": [rows[p] for p in sorted(rows)], "unplaced": unplaced}


def measures_entry(measures: pd.DataFrame | None, study: str) -> dict | None:
    """The study's EDV, ESV (mL) and EF (%) from its row of ``measures.parquet``
    (:data:`_MEASURES_FIELDS`); None without a row (or without the table: versions built
    before it, studies without two contoured phases)."""
    if measures is None:
        return None
    rows = measures[measures["study_id"] == study]
    if rows.empty:
        return None
    row = rows.iloc[0]
    return {name: _number(row[name]) for name in _MEASURES_FIELDS}


def _entries(
    figures: pd.DataFrame,
    validation: pd.DataFrame,
    decisions: pd.DataFrame,
    measures: pd.DataFrame | None,
):
    """Each study's entry, in study order, from one pass over each table's columns (not a
    DataFrame per study: the sheet holds every study of the version)."""
    names = [*_SAMPLE_FIELDS.values(), *_CINE_FIELDS]
    absent = [None] * len(figures)  # a cine column of an index built before the cine
    columns = [figures[name].tolist() for name in _SAMPLE_FIELDS]
    columns += [figures[name].tolist() if name in figures else absent for name in _CINE_FIELDS]
    samples = defaultdict(list)
    for study, unit, split, *values in zip(
        figures["study_id"].tolist(), figures["unit"].tolist(), figures["split"].tolist(),
        *columns, strict=True,
    ):  # fmt: skip
        sample = dict(zip(names, values, strict=True))
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
        entries = [_sample_entry(sample, "qc/") for _, _, sample in rows]
        yield {
            "id": study,
            "unit": unit,
            "summary": summary_rows(summary),
            "plot": f"{study}/{STUDY_PLOT}",
            "samples": entries,
            "cine": cine_arrangement(entries),
            "measures": measures_entry(measures, study),
            "excluded": excluded.get(study, []),
        }


def review_sheet_html(
    version: str,
    figures: pd.DataFrame,
    validation: pd.DataFrame,
    decisions: pd.DataFrame,
    measures: pd.DataFrame | None = None,
) -> bytes:
    """The review sheet's bytes (UTF-8 HTML) for a version.

    Args:
        version: the version's name (the page's title and its local-storage key).
        figures: :func:`~workflow_scripts.qc.figures.sample_figures` of the version's index.
        validation: the version's ``validation.parquet``; every study of
            :func:`~workflow_scripts.qc.figures.listed_studies` gets an entry.
        decisions: the version's reviewed exclusions
            (:func:`~workflow_scripts.qc.figures.reviewed_exclusions`).
        measures: the version's ``measures.parquet``, whose EDV, ESV and EF head each study
            with a row; None for a version without it.
    """
    studies = list(_entries(figures, validation, decisions, measures))
    # whether the version has measures.parquet at all (those built before it have not)
    data = {"version": version, "studies": studies, "measures": measures is not None}
    # JSON inside a <script> element: "<" escaped so no value can close the element.
    text = json.dumps(data, ensure_ascii=True, sort_keys=True, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    title = f"dataset version {version}".replace("&", "&amp;").replace("<", "&lt;")
    page = _TEMPLATE.read_text(encoding="utf-8")
    return page.replace("__TITLE__", title).replace("__DATA__", text).encode("utf-8")
