"""The label figures a reviewer reads beside the overlays, from the version's tables.

Areas are in mm² for a study whose every sample has a known pixel spacing (``index.parquet``'s
``pixel_spacing_row`` and ``pixel_spacing_col``, finite and positive), else in pixels, so a
figure never mixes units within a study. The area-to-median ratio is in pixels (median over the
study's samples), for the version's area-to-median plot. Image intensities are
percentiles of the stored pixel values of each sample's ``image`` (the DICOM's, rescaled if the
file says so), computed by the sample's build while the image is in memory and kept in
``index.parquet`` (:data:`INTENSITY_COLUMNS`), so no plot reads a sample file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workflow_scripts.raw.contours import parse_contour_name

__all__ = [
    "INTENSITY_COLUMNS",
    "INTENSITY_PERCENTILES",
    "MM2",
    "PX",
    "StudyFigures",
    "dataset_unit",
    "intensity_percentiles",
    "listed_studies",
    "reviewed_exclusions",
    "sample_figures",
    "study_figures",
    "study_summary",
]

MM2, PX = "mm²", "px"
_SPACING = ("pixel_spacing_row", "pixel_spacing_col")
#: Percentiles of a sample's pixel values kept for the intensity plot: 1st, quartiles, 99th.
INTENSITY_PERCENTILES = (1.0, 25.0, 50.0, 75.0, 99.0)
#: The index columns (float64) holding them: ``intensity_p01`` ... ``intensity_p99``.
INTENSITY_COLUMNS = tuple(f"intensity_p{p:02.0f}" for p in INTENSITY_PERCENTILES)


def intensity_percentiles(image: np.ndarray) -> dict[str, float]:
    """A sample's :data:`INTENSITY_COLUMNS`: the :data:`INTENSITY_PERCENTILES` of its stored
    image's pixel values (numpy's default, linear interpolation between order statistics)."""
    values = image.ravel()
    if values.dtype.kind in "iu" and values.dtype.itemsize <= 2:
        # numpy sorts small integers by radix: sorted first, a 256 x 256 int16 image's
        # percentiles take 0.7 ms instead of 1.2 (the same values: only the order changes).
        values = np.sort(values, kind="stable")
    percentiles = np.percentile(values, INTENSITY_PERCENTILES)
    return {name: float(value) for name, value in zip(INTENSITY_COLUMNS, percentiles, strict=True)}


def sample_figures(index: pd.DataFrame) -> pd.DataFrame:
    """One row per sample of ``index`` (sorted by study and slice) with the label figures.

    Adds ``unit`` (:data:`MM2` or :data:`PX`, per study), ``area`` and ``oarea`` (the i- and
    o-mask areas in that unit; NaN without o-mask) and ``area_to_median`` (i-mask pixels over
    the study's median i-mask pixels; NaN when that median is 0).
    """
    frame = index.sort_values(["study_id", "slice"]).reset_index(drop=True).copy()
    if all(column in frame for column in _SPACING):
        spacing = frame[list(_SPACING)].astype(float)
        known = np.isfinite(spacing).all(axis=1) & (spacing > 0).all(axis=1)
        per_study = known.groupby(frame["study_id"]).transform("all")
        pixel_area = (spacing[_SPACING[0]] * spacing[_SPACING[1]]).where(per_study, 1.0)
    else:
        per_study = pd.Series(False, index=frame.index)
        pixel_area = pd.Series(1.0, index=frame.index)
    frame["unit"] = np.where(per_study, MM2, PX)
    frame["area"] = frame["mask_pixels"].astype(float) * pixel_area
    frame["oarea"] = frame["omask_pixels"].astype(float) * pixel_area
    median = frame.groupby("study_id")["mask_pixels"].transform("median").astype(float)
    frame["area_to_median"] = (frame["mask_pixels"] / median.where(median > 0)).astype(float)
    return frame


def dataset_unit(figures: pd.DataFrame) -> str:
    """The unit of dataset-wide area plots: mm² only when every study has it."""
    return MM2 if len(figures) and (figures["unit"] == MM2).all() else PX


@dataclass(frozen=True)
class StudyFigures:
    """A study at a glance: its samples' figures and the rows of ``validation.parquet``."""

    study_id: str
    samples: pd.DataFrame
    problems: pd.DataFrame

    @property
    def unit(self) -> str:
        return str(self.samples["unit"].iloc[0]) if len(self.samples) else PX

    @property
    def split(self) -> str:
        """The study's split; "" without samples, or where the samples carry none (a study's
        own build, before the index assigns it)."""
        known = len(self.samples) and "split" in self.samples
        return str(self.samples["split"].iloc[0]) if known else ""

    @property
    def excluded(self) -> pd.DataFrame:
        """The study's ``excluded_by_review`` rows of slices left out (not those of an
        o-contour excluded alone, whose slice stays a sample)."""
        rows = self.problems[self.problems["code"] == "excluded_by_review"]
        return rows[_excluded_kinds(rows) == "i"]

    def summary(self) -> dict[str, object]:
        """The numbers of the study's report entry (see :func:`study_summary`)."""
        return study_summary(
            self.samples["area"].tolist(),
            self.samples["flags"].tolist(),
            self.problems["code"].tolist(),
            self.unit,
            self.split,
        )


def study_summary(
    areas: Sequence[float], flags: Sequence[str], codes: Iterable[str], unit: str, split: str
) -> dict[str, object]:
    """The numbers of a study's report entry and review sheet header, from its samples' areas
    (in ``unit``) and flags, and the problem codes of its rows of ``validation.parquet``."""
    counts = Counter(codes)
    return {
        "split": split,
        "samples": len(areas),
        "unit": unit,
        "median area": float(np.median(areas)) if len(areas) else None,
        "smallest area": float(min(areas)) if len(areas) else None,
        "largest area": float(max(areas)) if len(areas) else None,
        "flagged slices": sum(1 for flag in flags if flag),
        "excluded by review": counts["excluded_by_review"],
        "problems": dict(sorted(counts.items())),
    }


#: Rows about folders that are no study of link.csv (their ids are folder names).
_NOT_STUDIES = {"study_unlisted", "hidden_file"}


def listed_studies(figures: pd.DataFrame, validation: pd.DataFrame) -> list[str]:
    """The studies of link.csv with samples or problems, sorted; folders link.csv does not
    list are left to ``validation.parquet``."""
    listed = validation[~validation["code"].isin(_NOT_STUDIES)]
    return sorted(set(figures["study_id"]) | set(listed["study_id"]))


def study_figures(figures: pd.DataFrame, validation: pd.DataFrame) -> dict[str, StudyFigures]:
    """:class:`StudyFigures` of every study of :func:`listed_studies`, by study id (sorted)."""
    samples = dict(tuple(figures.groupby("study_id", sort=True)))
    problems = dict(tuple(validation.groupby("study_id", sort=True)))
    empty_samples, empty_problems = figures.iloc[0:0], validation.iloc[0:0]
    return {
        study: StudyFigures(
            study, samples.get(study, empty_samples), problems.get(study, empty_problems)
        )
        for study in listed_studies(figures, validation)
    }


def _excluded_kinds(rows: pd.DataFrame) -> pd.Series:
    """For ``excluded_by_review`` rows, the kind of contour file each left out: "o" for an
    o-contour excluded alone, "i" for a whole slice (whose row names its i-contour; also for
    tables without a ``contour`` column)."""
    if "contour" not in rows:
        return pd.Series("i", index=rows.index)
    names = rows["contour"].map(lambda path: parse_contour_name(str(path).rsplit("/", 1)[-1]))
    return names.map(lambda parsed: parsed[1] if parsed else "i")


def reviewed_exclusions(validation: pd.DataFrame, decisions: list[Mapping]) -> pd.DataFrame:
    """The version's ``excluded_by_review`` rows joined with the decisions behind them
    (``reason``, ``reviewer``, ``date``, and ``contour``, "o" for an o-contour excluded
    alone), by study, slice and the kind of contour file left out."""
    columns = ["study_id", "slice", "reason", "reviewer", "date"]
    rows = validation[validation["code"] == "excluded_by_review"]
    rows = rows.assign(kind=_excluded_kinds(rows))[["study_id", "slice", "kind"]]
    rows = rows.astype({"study_id": str, "slice": "int64"})
    decisions = [{**decision, "contour": decision.get("contour") or ""} for decision in decisions]
    table = pd.DataFrame(decisions, columns=[*columns, "contour"])
    table = table.assign(kind=table["contour"].where(table["contour"] == "o", "i"))
    table = table.astype({"study_id": str, "slice": "int64"})
    merged = rows.merge(table, on=["study_id", "slice", "kind"], how="left")
    merged = merged.sort_values(["study_id", "slice", "kind"]).reset_index(drop=True)
    if not (merged["contour"] == "o").any():
        return merged[columns]  # the table as before contours could be excluded alone
    return merged[[*columns, "contour"]]
