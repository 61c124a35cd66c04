"""Scoring a predictions folder against a dataset version: one row per manual contour, one row
per study, and the challenge-style summary.

Which prediction scores a sample: its file ``{study_id}/{slice:04d}.npz`` when present, else the
frame (position, phase) of the study's whole-cine prediction ``{study_id}.npy``; a sample with
neither is an error (the message counts them and names the first), never a silent omission. An
empty predicted mask is a contour the model did not detect. O-contours are scored when the
predictions carry ``omask``: then every sample with a manual o-contour needs one.

Per study (versions with the cine columns and ``measures.parquet``): the predicted EDV, ESV, EF
and LV mass by the disc rule over the positions the manual volumes use, against the manual
values of ``measures.parquet``; for a whole-cine prediction, the volume curve over the phases and
the predicted ED/ES as its maximum and minimum (:mod:`loader.evaluation.volumes`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loader.evaluation.metrics import score_contour
from loader.evaluation.predictions import (
    PredictionError,
    find_predictions,
    read_cine_prediction,
    read_prediction,
)
from loader.evaluation.version_tables import VersionTables
from loader.evaluation.volumes import (
    MYOCARDIUM_DENSITY_G_PER_ML,
    disc_volume_ml,
    ed_es_phases,
    ejection_fraction,
    volume_curve_ml,
)
from loader.index import counted
from loader.sample_file import read_sample

__all__ = [
    "CONTOUR_COLUMNS",
    "GOOD_APD_MM",
    "STUDY_COLUMNS",
    "Evaluation",
    "evaluate",
    "summarize",
]

#: A contour is *good* when its APD is below this (the challenge's v1.0 rule; v0.9 had 4 mm).
GOOD_APD_MM = 5.0
CONTOUR_COLUMNS = [
    "study_id", "slice", "contour", "detected", "dice", "apd_mm", "hausdorff_mm", "good",
    "position", "phase", "cardiac_phase", "predicted_pixels", "manual_pixels", "source",
]  # fmt: skip
STUDY_COLUMNS = [
    "study_id", "original_id", "split", "source", "phases_from", "ed_phase", "es_phase",
    "ed_phase_manual", "es_phase_manual", "positions_used", "spacing_mm",
    "edv_ml", "esv_ml", "sv_ml", "ef_percent", "myocardium_ml", "lv_mass_g",
    "edv_ml_manual", "esv_ml_manual", "sv_ml_manual", "ef_percent_manual",
    "myocardium_ml_manual", "lv_mass_g_manual", "ef_error", "lv_mass_error_g",
    "volume_curve_ml", "edv_ml_all_positions", "esv_ml_all_positions",
    "ef_percent_all_positions",
]  # fmt: skip


@dataclass
class Evaluation:
    """The result: ``contours`` (one row per manual contour, CONTOUR_COLUMNS), ``studies`` (one
    row per study, STUDY_COLUMNS), ``summary`` (the challenge's figures) and ``notes`` (what
    could not be computed, and why)."""

    version: Path
    predictions: Path
    split: str | None
    contours: pd.DataFrame
    studies: pd.DataFrame
    summary: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write contours.parquet, studies.parquet and summary.json into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.contours.to_parquet(out / "contours.parquet", index=False)
        self.studies.to_parquet(out / "studies.parquet", index=False)
        text = json.dumps(self.summary, indent=1, sort_keys=True, allow_nan=False) + "\n"
        (out / "summary.json").write_text(text, encoding="utf-8")
        return [out / "contours.parquet", out / "studies.parquet", out / "summary.json"]


def evaluate(
    version: str | Path,
    predictions: str | Path,
    split: str | None = None,
    *,
    verify: str = "fast",
    on_contour: Callable[[pd.Series, str, np.ndarray], None] | None = None,
) -> Evaluation:
    """Score the predictions in ``predictions`` against the version folder ``version``.

    Args:
        version: the dataset version folder (``results/1.0.0``).
        predictions: the predictions folder (see :mod:`loader.evaluation.predictions`).
        split: score only the samples of this split; None: every sample of the version.
        verify: how the version is checked against its manifest (as :class:`~loader.DatasetIndex`).
        on_contour: called as ``on_contour(sample, kind, predicted_mask)`` for every scored
            contour (the contour export uses it).

    Raises:
        PredictionError: a prediction missing, malformed or naming no sample of the version.
        ValueError: a split without samples.
    """
    tables = VersionTables.open(version, verify=verify)
    folder = Path(predictions)
    sample_files, cine_files = find_predictions(folder)
    samples = tables.samples
    _check_known(tables, folder, sample_files, cine_files)
    if split is not None:
        tables.index.rows(split)  # ValueError naming the splits present when it has no samples
        samples = samples[samples["split"] == split]
    selected = set(samples["study_id"])
    notes: list[str] = []
    outside = sum(1 for s, _ in sample_files if s not in selected) + sum(
        1 for s in cine_files if s not in selected
    )
    if outside:
        notes.append(
            f"{counted(outside, 'prediction file')} of studies outside split {split!r} left out"
        )
    cines = _open_cines(tables, samples, {s: p for s, p in cine_files.items() if s in selected})
    _check_complete(folder, samples, sample_files, cines)

    predicted = {}
    for sample in samples.itertuples(index=False):
        key = (sample.study_id, int(sample.slice))
        shape = (int(sample.height), int(sample.width))
        if key in sample_files:
            predicted[key] = ("file", read_prediction(sample_files[key], shape))
        else:
            place = (getattr(sample, "position", None), getattr(sample, "phase", None))
            if any(value is None or pd.isna(value) for value in place):
                raise PredictionError(
                    f"{sample.study_id} slice {int(sample.slice)}: the index gives no (position, "
                    f"phase) for this sample, so {cine_files[sample.study_id]} cannot score it: "
                    f"write {folder / sample.study_id / f'{int(sample.slice):04d}.npz'}"
                )
            cine = cines[sample.study_id]
            frame = np.asarray(cine[int(place[0]), int(place[1])])
            predicted[key] = ("cine", {"mask": frame})
    score_omask = any("omask" in arrays for _, arrays in predicted.values())
    if score_omask:
        lacking = [
            key
            for key, has_o in zip(
                zip(samples["study_id"], samples["slice"], strict=True),
                samples["has_omask"],
                strict=True,
            )
            if has_o and "omask" not in predicted[(key[0], int(key[1]))][1]
        ]
        if lacking:
            study_id, number = lacking[0]
            raise PredictionError(
                f"{folder}: predictions carry 'omask', but {counted(len(lacking), 'sample')} with "
                f"a manual o-contour {'has' if len(lacking) == 1 else 'have'} none, e.g. "
                f"{study_id}/{int(number):04d}.npz: add it, or leave omask out everywhere"
            )
    elif samples["has_omask"].any():
        notes.append("o-contours not scored: no prediction holds an 'omask'")

    no_spacing = samples[samples[["pixel_spacing_row", "pixel_spacing_col"]].isna().any(axis=1)]
    if len(no_spacing):
        notes.append(
            f"{counted(len(no_spacing), 'sample')} without a pixel spacing (e.g. "
            f"{no_spacing['study_id'].iloc[0]} slice {int(no_spacing['slice'].iloc[0])}): "
            "no APD or Hausdorff in mm, so not counted good"
        )
    rows = []
    for sample in samples.itertuples(index=False):
        key = (sample.study_id, int(sample.slice))
        source, arrays = predicted[key]
        manual = read_sample(tables.index.path(int(sample.row)))
        spacing = (float(sample.pixel_spacing_row), float(sample.pixel_spacing_col))
        kinds = [("i", "mask")] + ([("o", "omask")] if score_omask and sample.has_omask else [])
        for kind, name in kinds:
            mask = arrays[name]
            score = score_contour(mask, manual[name], spacing)
            rows.append(
                {
                    "study_id": sample.study_id,
                    "slice": int(sample.slice),
                    "contour": kind,
                    "detected": score.detected,
                    "dice": score.dice,
                    "apd_mm": score.apd_mm,
                    "hausdorff_mm": score.hausdorff_mm,
                    "good": bool(score.detected and score.apd_mm < GOOD_APD_MM),
                    "position": _optional_int(sample, "position"),
                    "phase": _optional_int(sample, "phase"),
                    "cardiac_phase": getattr(sample, "cardiac_phase", None) or "",
                    "predicted_pixels": int(np.count_nonzero(mask)),
                    "manual_pixels": int(np.count_nonzero(manual[name])),
                    "source": source,
                }
            )
            if on_contour is not None:
                on_contour(sample, kind, mask)
    contours = pd.DataFrame(rows, columns=CONTOUR_COLUMNS)
    contours["position"] = contours["position"].astype("Int64")
    contours["phase"] = contours["phase"].astype("Int64")

    studies = _studies(tables, samples, contours, cines, notes)
    return Evaluation(
        version=tables.root,
        predictions=folder,
        split=split,
        contours=contours,
        studies=studies,
        summary=summarize(contours, studies),
        notes=notes,
    )


def summarize(contours: pd.DataFrame, studies: pd.DataFrame) -> dict[str, Any]:
    """The challenge's figures: per contour kind, ``contours`` (manual ones), ``detected``,
    ``detected_percent``, ``good`` and ``good_percent`` (APD < 5 mm, over all manual contours),
    ``dice_mean``, ``apd_mm_mean`` and ``hausdorff_mm_mean`` over the good contours; per study,
    the mean absolute EF (points), EDV, ESV (mL) and LV mass (g) errors. The top-level contour
    keys are the i-contour's (the blood pool, the loader's ``mask``); ``by_contour`` holds both.
    JSON-ready: None where nothing was measured."""
    by_contour = {}
    for kind in ("i", "o"):
        rows = contours[contours["contour"] == kind]
        if rows.empty:
            continue
        good = rows[rows["good"]]
        by_contour[kind] = {
            "contours": len(rows),
            "detected": int(rows["detected"].sum()),
            "detected_percent": _number(100.0 * rows["detected"].mean()),
            "good": len(good),
            "good_percent": _number(100.0 * rows["good"].mean()),
            "dice_mean": _mean(good["dice"]),
            "apd_mm_mean": _mean(good["apd_mm"]),
            "hausdorff_mm_mean": _mean(good["hausdorff_mm"]),
        }
    measured = studies.dropna(subset=["ef_percent", "ef_percent_manual"])
    summary: dict[str, Any] = {
        **by_contour.get("i", {}),
        "by_contour": by_contour,
        "studies": len(studies),
        "studies_with_volumes": len(measured),
        "ef_abs_error_mean": _mean((measured["ef_percent"] - measured["ef_percent_manual"]).abs()),
        "edv_abs_error_ml_mean": _mean((studies["edv_ml"] - studies["edv_ml_manual"]).abs()),
        "esv_abs_error_ml_mean": _mean((studies["esv_ml"] - studies["esv_ml_manual"]).abs()),
        "lv_mass_abs_error_g_mean": _mean(
            (studies["lv_mass_g"] - studies["lv_mass_g_manual"]).abs()
        ),
        "good_apd_mm_limit": GOOD_APD_MM,
    }
    return summary


def _mean(values: pd.Series) -> float | None:
    values = pd.to_numeric(values, errors="coerce").dropna()
    return _number(values.mean()) if len(values) else None


def _number(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _optional_int(sample: Any, name: str) -> int | None:
    value = getattr(sample, name, None)
    return None if value is None or pd.isna(value) else int(value)


def _check_known(
    tables: VersionTables,
    folder: Path,
    sample_files: dict[tuple[str, int], Path],
    cine_files: dict[str, Path],
) -> None:
    """Refuse prediction files that name no sample or study of the version."""
    known = set(zip(tables.samples["study_id"], tables.samples["slice"].astype(int), strict=True))
    unknown = [f"{s}/{n:04d}.npz" for s, n in sample_files if (s, n) not in known]
    studies = set(tables.samples["study_id"])
    unknown += [f"{s}.npy" for s in cine_files if s not in studies]
    if unknown:
        shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise PredictionError(
            f"{folder}: {counted(len(unknown), 'prediction file')} name no sample of "
            f"{tables.root} (study and slice not in its index.parquet): {shown}"
        )


def _open_cines(
    tables: VersionTables, samples: pd.DataFrame, cine_files: dict[str, Path]
) -> dict[str, np.ndarray]:
    """The whole-cine predictions, memory-mapped and checked against each study's cine size."""
    cines = {}
    for study_id, path in sorted(cine_files.items()):
        if "position" not in samples or "phase" not in samples:
            raise PredictionError(
                f"{path}: whole-cine predictions need a version whose index places samples in "
                "their cine (columns position and phase); this version has none"
            )
        size = tables.cine_shape(study_id)
        if size is None:
            raise PredictionError(
                f"{path}: the version records no cine size for {study_id} (no frames.parquet, no "
                "position/phase in its pairs table): build it with the cine columns"
            )
        own = samples[samples["study_id"] == study_id]
        grids = set(zip(own["height"], own["width"], strict=True))
        if len(grids) != 1:
            raise PredictionError(
                f"{path}: the samples of {study_id} have several shapes {sorted(grids)}, so a "
                "(P, T, H, W) cine cannot hold them"
            )
        height, width = grids.pop()
        cines[study_id] = read_cine_prediction(path, (*size, int(height), int(width)))
    return cines


def _check_complete(
    folder: Path,
    samples: pd.DataFrame,
    sample_files: dict[tuple[str, int], Path],
    cines: dict[str, np.ndarray],
) -> None:
    """Every selected sample has a prediction file or its study a cine prediction."""
    missing = [
        (s, int(n))
        for s, n in zip(samples["study_id"], samples["slice"], strict=True)
        if (s, int(n)) not in sample_files and s not in cines
    ]
    if not missing:
        return
    study_id, number = missing[0]
    have = sorted({s for s, _ in sample_files} | set(cines))
    splits = sorted(set(samples.loc[samples["study_id"].isin(have), "split"]))
    hint = f"; the predictions cover split(s) {', '.join(splits)}: pass --split" if splits else ""
    raise PredictionError(
        f"{folder}: {len(missing)} of {counted(len(samples), 'sample')} "
        f"{'has' if len(missing) == 1 else 'have'} no prediction, e.g. "
        f"{folder / study_id / f'{number:04d}.npz'} (nor {study_id}.npy){hint}"
    )


def _studies(
    tables: VersionTables,
    samples: pd.DataFrame,
    contours: pd.DataFrame,
    cines: dict[str, np.ndarray],
    notes: list[str],
) -> pd.DataFrame:
    rows = []
    if not tables.has_cine_columns:
        notes.append(
            "per-study volumes (EDV, ESV, EF, LV mass) need a version with the cine columns "
            "(position, phase) and measures.parquet; this version has "
            + ("no measures.parquet" if tables.measures is None else "no position/phase columns")
        )
    by_study = dict(tuple(contours.groupby("study_id", sort=False)))
    for study_id, own in samples.groupby("study_id", sort=True):
        row: dict[str, Any] = {
            "study_id": study_id,
            "original_id": str(own["original_id"].iloc[0]),
            "split": str(own["split"].iloc[0]),
            "source": "cine" if study_id in cines else "samples",
        }
        measures = tables.measures_of(study_id) if tables.has_cine_columns else None
        if measures is not None and pd.isna(measures[["ed_phase", "es_phase", "spacing_mm"]]).any():
            notes.append(f"{study_id}: measures.parquet lacks ED/ES or the spacing: no volumes")
            measures = None
        if measures is not None:
            mine = by_study[study_id]
            row.update(_study_volumes(study_id, own, mine, cines.get(study_id), measures))
        rows.append(row)
    return pd.DataFrame(rows, columns=STUDY_COLUMNS)


def _study_volumes(
    study_id: str,
    own: pd.DataFrame,
    mine: pd.DataFrame,
    cine: np.ndarray | None,
    measures: pd.Series,
) -> dict[str, Any]:
    """Predicted against manual volumes of one study (``own``: its samples, ``mine``: its
    scored contours; see the module docstring)."""
    ed, es = int(measures["ed_phase"]), int(measures["es_phase"])
    spacing = float(measures["spacing_mm"])
    # samples the cine columns do not place (a tag missing) take no part in the volumes
    placed = own["position"].notna().to_numpy() & own["phase"].notna().to_numpy()
    position = own["position"].to_numpy()[placed].astype(np.int64)
    phase = own["phase"].to_numpy()[placed].astype(np.int64)
    has_omask = own["has_omask"].to_numpy()[placed].astype(bool)
    areas = (own["pixel_spacing_row"].to_numpy() * own["pixel_spacing_col"].to_numpy())[placed]
    positions = _positions_used(study_id, position, phase, measures, ed, es)
    pixel_area = dict(zip(zip(position.tolist(), phase.tolist(), strict=True), areas, strict=True))
    pixels = {
        (kind, int(p), int(t)): int(n)
        for kind, p, t, n in zip(
            mine["contour"], mine["position"], mine["phase"], mine["predicted_pixels"], strict=True
        )
        if not (pd.isna(p) or pd.isna(t))
    }

    def volume(kind: str, phase: int, at: list[int]) -> float:
        if any((kind, p, phase) not in pixels for p in at):
            return float("nan")
        areas_mm2 = [pixels[(kind, p, phase)] * pixel_area[(p, phase)] for p in at]
        return disc_volume_ml(np.asarray(areas_mm2), spacing)

    result: dict[str, Any] = {
        "ed_phase_manual": ed,
        "es_phase_manual": es,
        "positions_used": len(positions),
        "spacing_mm": spacing,
        **{f"{name}_manual": _float(measures, name) for name in _MANUAL},
    }
    if cine is not None:
        unique = set(np.round(areas, 9).tolist())
        if len(unique) != 1:
            raise PredictionError(f"{study_id}: samples differ in pixel area; a cine has one grid")
        curve = volume_curve_ml(cine, float(areas[0]), spacing, positions)
        pred_ed, pred_es = ed_es_phases(curve)
        edv, esv = float(curve[pred_ed]), float(curve[pred_es])
        # every position of the cine, contoured or not (the basal and apical slices the
        # manual volumes leave out): what the model says of the whole ventricle
        whole = volume_curve_ml(cine, float(areas[0]), spacing)
        whole_ed, whole_es = ed_es_phases(whole)
        result.update(
            phases_from="curve",
            volume_curve_ml=curve.tolist(),
            edv_ml_all_positions=float(whole[whole_ed]),
            esv_ml_all_positions=float(whole[whole_es]),
            ef_percent_all_positions=ejection_fraction(whole[whole_ed], whole[whole_es]),
        )
    else:
        pred_ed, pred_es = ed, es
        edv, esv = volume("i", ed, positions), volume("i", es, positions)
        result.update(phases_from="manual", volume_curve_ml=None)
    walls = sorted(int(p) for p in position[(phase == ed) & has_omask])
    myocardium = float("nan")
    if walls and ("o", walls[0], ed) in pixels:
        myocardium = volume("o", ed, walls) - volume("i", ed, walls)
    ef = ejection_fraction(edv, esv)
    result.update(
        ed_phase=pred_ed,
        es_phase=pred_es,
        edv_ml=edv,
        esv_ml=esv,
        sv_ml=edv - esv,
        ef_percent=ef,
        myocardium_ml=myocardium,
        lv_mass_g=myocardium * MYOCARDIUM_DENSITY_G_PER_ML,
        ef_error=ef - result["ef_percent_manual"],
        lv_mass_error_g=myocardium * MYOCARDIUM_DENSITY_G_PER_ML - result["lv_mass_g_manual"],
    )
    return result


_MANUAL = ("edv_ml", "esv_ml", "sv_ml", "ef_percent", "myocardium_ml", "lv_mass_g")


def _float(row: pd.Series, name: str) -> float:
    value = row.get(name)
    return float("nan") if value is None or pd.isna(value) else float(value)


def _positions_used(
    study_id: str,
    position: np.ndarray,
    phase: np.ndarray,
    measures: pd.Series,
    ed: int,
    es: int,
) -> list[int]:
    """The positions of the manual volumes: ``positions_used`` of measures.parquet when it lists
    them, else those with an i-contour sample at both ED and ES (the disc rule's; a count in
    measures.parquet must then agree)."""
    derived = sorted(set(position[phase == ed].tolist()) & set(position[phase == es].tolist()))
    listed = measures.get("positions_used")
    if isinstance(listed, list | tuple | np.ndarray):
        return sorted(int(p) for p in listed)
    if listed is not None and not pd.isna(listed) and int(listed) != len(derived):
        raise ValueError(
            f"{study_id}: measures.parquet uses {int(listed)} positions, but the index has "
            f"{len(derived)} with i-contours at both ED (phase {ed}) and ES (phase {es})"
        )
    return derived
