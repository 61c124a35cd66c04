"""The evaluation page: ``evaluation.html`` beside the tables, with its pictures in
``figures/`` (relative links, so the folder can be moved or zipped whole).

At the top, the summary; then per study the volume curve over the cardiac cycle (the predicted
volumes, red, and the manual ED and ES volumes, green; for sample predictions the predicted curve
has only the ED and ES points, for a whole-cine prediction every phase) as an inline SVG, and the
study's worst contours by APD (undetected first) as overlays: the stored image cropped around the
two masks, the manual boundary in green and the predicted one in red.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pandas as pd

from loader.evaluation.metrics import boundaries
from loader.evaluation.predictions import prediction_path, read_prediction
from loader.evaluation.scoring import GOOD_APD_MM, Evaluation
from loader.evaluation.version_tables import VersionTables
from loader.index import counted
from loader.sample_file import read_sample

__all__ = ["PAGE_NAME", "write_page"]

PAGE_NAME = "evaluation.html"
#: Worst contours shown per study.
WORST_PER_STUDY = 3
_ZOOM = 3
_MARGIN = 10
_MANUAL, _PREDICTED = (40, 220, 40), (255, 60, 60)
_PHASES_FROM = {"curve": "from the predicted curve", "manual": "the manual phases"}
_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
section.study { border-top: 1px solid #ddd; margin-top: 1em; }
.row { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
figure { margin: 0; width: 200px; }
figure img { width: 200px; image-rendering: pixelated; }
figcaption { font-size: 80%; }
svg.curve text { font-size: 11px; }
.legend span { display: inline-block; width: 1em; height: 0.6em; margin: 0 4px 0 12px; }
"""


def write_page(evaluation: Evaluation, out_dir: str | Path) -> Path:
    """Write ``evaluation.html`` and ``figures/*.png`` into ``out_dir``; returns the page."""
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    tables = VersionTables.open(evaluation.version, verify="none")
    contours, studies = evaluation.contours, evaluation.studies
    sections = []
    for study in studies.itertuples(index=False):
        own = contours[contours["study_id"] == study.study_id]
        worst = _worst(own)
        figures = [_overlay(evaluation, tables, row, out) for row in worst.itertuples(index=False)]
        sections.append(_study_section(study, own, figures))
    page = out / PAGE_NAME
    page.write_text(_document(evaluation, "\n".join(sections)), encoding="utf-8")
    return page


def _worst(own: pd.DataFrame) -> pd.DataFrame:
    """The study's contours ordered worst first: undetected, then by APD, descending."""
    ranked = own.assign(_missed=~own["detected"], _apd=own["apd_mm"].fillna(math.inf))
    ranked = ranked.sort_values(["_missed", "_apd"], ascending=False, kind="stable")
    return ranked.head(WORST_PER_STUDY)


def _predicted_mask(evaluation: Evaluation, row, kind: str, shape) -> np.ndarray:
    path = prediction_path(evaluation.predictions, row.study_id, row.slice)
    if path.is_file():
        arrays = read_prediction(path, shape)
        return arrays["mask" if kind == "i" else "omask"]
    cine = np.load(evaluation.predictions / f"{row.study_id}.npy", mmap_mode="r")
    return np.asarray(cine[int(row.position), int(row.phase)])


def _overlay(evaluation: Evaluation, tables: VersionTables, row, out: Path) -> dict:
    """Draw one contour's overlay PNG; returns its caption fields and file name."""
    from PIL import Image, ImageDraw

    samples = tables.samples
    sample = samples[(samples["study_id"] == row.study_id) & (samples["slice"] == row.slice)]
    stored = read_sample(tables.index.path(int(sample["row"].iloc[0])))
    name = "mask" if row.contour == "i" else "omask"
    manual = stored[name]
    predicted = _predicted_mask(evaluation, row, row.contour, manual.shape)
    both = manual | predicted
    rows_, cols_ = np.flatnonzero(both.any(axis=1)), np.flatnonzero(both.any(axis=0))
    top = max(int(rows_[0]) - _MARGIN, 0) if len(rows_) else 0
    left = max(int(cols_[0]) - _MARGIN, 0) if len(cols_) else 0
    bottom = min(int(rows_[-1]) + _MARGIN + 1, manual.shape[0]) if len(rows_) else manual.shape[0]
    right = min(int(cols_[-1]) + _MARGIN + 1, manual.shape[1]) if len(cols_) else manual.shape[1]
    image = np.asarray(stored["image"], dtype=np.float64)[top:bottom, left:right]
    low, high = np.percentile(image, [1, 99]) if image.size else (0.0, 1.0)
    grey = np.clip((image - low) / max(high - low, 1e-9) * 255, 0, 255).astype(np.uint8)
    picture = Image.fromarray(grey).convert("RGB")
    picture = picture.resize((grey.shape[1] * _ZOOM, grey.shape[0] * _ZOOM), Image.NEAREST)
    draw = ImageDraw.Draw(picture)
    for mask, colour in ((manual, _MANUAL), (predicted, _PREDICTED)):
        for outline in boundaries(mask):
            # (row, col) pixel coordinates -> zoomed image (x, y); pixel centres at +0.5 zoom
            xy = [((c - left + 0.5) * _ZOOM, (r - top + 0.5) * _ZOOM) for r, c in outline.tolist()]
            draw.line(xy, fill=colour, width=2)
    file_name = f"{row.study_id}-{int(row.slice):04d}-{row.contour}.png"
    picture.save(out / "figures" / file_name, optimize=False)
    return {"file": file_name, "row": row}


def _study_section(study, own: pd.DataFrame, figures: list[dict]) -> str:
    good = int(own["good"].sum())
    title = (
        f"{html.escape(study.study_id)} ({html.escape(str(study.original_id))}, "
        f"{html.escape(str(study.split))})"
    )
    volumes = ""
    if study.edv_ml == study.edv_ml and study.edv_ml is not None:  # not NaN
        volumes = (
            f"<p class='volumes'>EF {_f(study.ef_percent, '.1f')}% predicted, "
            f"{_f(study.ef_percent_manual, '.1f')}% manual; EDV {_f(study.edv_ml, '.1f')} / "
            f"{_f(study.edv_ml_manual, '.1f')} mL; ESV {_f(study.esv_ml, '.1f')} / "
            f"{_f(study.esv_ml_manual, '.1f')} mL; LV mass {_f(study.lv_mass_g, '.1f')} / "
            f"{_f(study.lv_mass_g_manual, '.1f')} g (predicted / manual; ED and ES "
            f"{_PHASES_FROM.get(study.phases_from, '')})</p>"
        )
    cards = []
    for figure in figures:
        row = figure["row"]
        verdict = (
            "not detected"
            if not row.detected
            else f"APD {row.apd_mm:.2f} mm, Dice {row.dice:.3f}, HD {row.hausdorff_mm:.2f} mm"
            + ("" if row.good else f" (APD &ge; {GOOD_APD_MM:g} mm)")
        )
        cards.append(
            f"<figure><img src='figures/{html.escape(figure['file'])}' alt='{html.escape(title)} "
            f"slice {int(row.slice)} {row.contour}-contour'><figcaption>slice {int(row.slice)} "
            f"{row.contour}-contour{_phase(row)}: {verdict}</figcaption></figure>"
        )
    return (
        f"<section class='study' id='{html.escape(study.study_id)}'><h2>{title}</h2>"
        f"<p>{good} of {len(own)} contours good</p>{volumes}"
        f"<div class='row'>{_curve_svg(study)}{''.join(cards)}</div></section>"
    )


def _phase(row) -> str:
    phase = "" if pd.isna(row.phase) else f", phase {int(row.phase)}"
    cardiac = f" {row.cardiac_phase}" if row.cardiac_phase else ""
    return f" (position {int(row.position)}{phase}{cardiac})" if not pd.isna(row.position) else ""


def _curve_svg(study) -> str:
    """The volume curve: predicted (red; a line for a whole cine) and manual ED/ES (green)."""
    width, height, pad = 320, 200, 36
    if study.ed_phase_manual != study.ed_phase_manual or study.ed_phase_manual is None:
        return "<div class='curve'>no volumes (the version has no cine columns)</div>"
    curve = study.volume_curve_ml
    manual = [
        (int(study.ed_phase_manual), study.edv_ml_manual, "ED"),
        (int(study.es_phase_manual), study.esv_ml_manual, "ES"),
    ]
    if curve is not None and len(curve):
        predicted = list(enumerate(float(v) for v in curve))
    else:
        predicted = [(int(study.ed_phase), study.edv_ml), (int(study.es_phase), study.esv_ml)]
    values = [v for _, v in predicted] + [v for _, v, _ in manual]
    values = [v for v in values if v == v]
    if not values:
        return "<div class='curve'>no volumes</div>"
    phases = [p for p, _ in predicted] + [p for p, _, _ in manual]
    x_max = max(max(phases), 1)
    low, high = 0.0, max(values) * 1.1 or 1.0

    def x(phase: float) -> float:
        return pad + (width - 2 * pad) * phase / x_max

    def y(volume: float) -> float:
        return height - pad - (height - 2 * pad) * (volume - low) / (high - low)

    parts = [
        f"<svg class='curve' width='{width}' height='{height}' role='img' "
        f"aria-label='volume curve of {html.escape(study.study_id)}'>",
        f"<line x1='{pad}' y1='{height - pad}' x2='{width - pad}' y2='{height - pad}' "
        "stroke='#888'/>",
        f"<line x1='{pad}' y1='{pad}' x2='{pad}' y2='{height - pad}' stroke='#888'/>",
        f"<text x='{width / 2}' y='{height - 6}' text-anchor='middle'>phase</text>",
        f"<text x='4' y='{pad - 10}'>mL</text>",
        f"<text x='{pad - 4}' y='{y(high) + 4:.1f}' text-anchor='end'>{high:.0f}</text>",
        f"<text x='{pad - 4}' y='{y(0) + 4:.1f}' text-anchor='end'>0</text>",
        f"<text x='{x(x_max):.1f}' y='{height - pad + 14}' text-anchor='middle'>{x_max}</text>",
    ]
    valid = [(p, v) for p, v in predicted if v == v]
    if len(valid) > 2:
        points = " ".join(f"{x(p):.1f},{y(v):.1f}" for p, v in valid)
        parts.append(f"<polyline points='{points}' fill='none' stroke='rgb{_PREDICTED}'/>")
    for p, v in valid:
        parts.append(f"<circle cx='{x(p):.1f}' cy='{y(v):.1f}' r='4' fill='rgb{_PREDICTED}'/>")
    for p, v, label in manual:
        if v == v:
            parts.append(
                f"<rect x='{x(p) - 4:.1f}' y='{y(v) - 4:.1f}' width='8' height='8' fill='none' "
                f"stroke='rgb{_MANUAL}' stroke-width='2'/><text x='{x(p) + 7:.1f}' "
                f"y='{y(v) - 6:.1f}'>{label}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _f(value, spec: str) -> str:
    return "n/a" if value is None or value != value else format(value, spec)


def _document(evaluation: Evaluation, sections: str) -> str:
    summary = evaluation.summary
    rows = []
    for kind, figures in summary["by_contour"].items():
        rows.append(
            f"<tr><th>{kind}-contour</th><td>{figures['contours']}</td>"
            f"<td>{_f(figures['detected_percent'], '.1f')}%</td>"
            f"<td>{_f(figures['good_percent'], '.1f')}%</td><td>{_f(figures['dice_mean'], '.3f')}"
            f"</td><td>{_f(figures['apd_mm_mean'], '.2f')}</td>"
            f"<td>{_f(figures['hausdorff_mm_mean'], '.2f')}</td></tr>"
        )
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in evaluation.notes)
    split = f", split {html.escape(evaluation.split)}" if evaluation.split else ""
    title = html.escape(str(evaluation.predictions))
    studies = counted(summary["studies"], "study", "studies")
    errors = (
        f"Mean |EF error| {_f(summary['ef_abs_error_mean'], '.2f')} points over "
        f"{counted(summary['studies_with_volumes'], 'study', 'studies')} with volumes; mean "
        "|LV mass error| "
        f"{_f(summary['lv_mass_abs_error_g_mean'], '.1f')} g."
    )
    header = "".join(
        f"<th>{name}</th>"
        for name in (
            "",
            "manual contours",
            "detected",
            f"good (APD &lt; {GOOD_APD_MM:g} mm)",
            "Dice (good)",
            "APD mm (good)",
            "Hausdorff mm (good)",
        )
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Evaluation: {title}</title>
<style>{_STYLE}</style></head><body>
<h1>Evaluation of {title}</h1>
<p>against {html.escape(str(evaluation.version))}{split}: {studies}.
<span class="legend"><span style="background: rgb{_MANUAL}"></span>manual
<span style="background: rgb{_PREDICTED}"></span>predicted</span></p>
<table><tr>{header}</tr>
{"".join(rows)}</table>
<p>{errors}</p>
<ul>{notes}</ul>
{sections}
</body></html>
"""
