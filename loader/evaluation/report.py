"""The evaluation's summary as text, in the challenge's terms (what ``python -m loader
evaluate`` prints)."""

from __future__ import annotations

from typing import Any

from loader.evaluation.scoring import GOOD_APD_MM, Evaluation
from loader.index import counted

__all__ = ["format_summary"]

_KINDS = {"i": "i-contour (endocardium)", "o": "o-contour (epicardium)"}


def format_summary(evaluation: Evaluation) -> str:
    """A few lines: per contour kind detected %, good %, Dice, APD and Hausdorff over the good
    contours; per study the EF, EDV, ESV and LV mass errors; then the notes."""
    summary = evaluation.summary
    split = f" (split {evaluation.split})" if evaluation.split else ""
    lines = [
        f"evaluation of {evaluation.predictions} against {evaluation.version}{split}: "
        f"{counted(summary['studies'], 'study', 'studies')}"
    ]
    kinds = summary["by_contour"]
    if kinds:
        header = f"{'':24}" + "".join(f"{_KINDS[k]:>26}" for k in kinds)
        lines.append(header)
        rows = [
            ("manual contours", lambda s: f"{s['contours']}"),
            ("detected", lambda s: f"{_pct(s['detected_percent'])} ({s['detected']})"),
            (
                f"good (APD < {GOOD_APD_MM:g} mm)",
                lambda s: f"{_pct(s['good_percent'])} ({s['good']})",
            ),
            ("Dice, good contours", lambda s: _fmt(s["dice_mean"], "{:.3f}")),
            ("APD, good contours", lambda s: _fmt(s["apd_mm_mean"], "{:.2f} mm")),
            ("Hausdorff, good contours", lambda s: _fmt(s["hausdorff_mm_mean"], "{:.2f} mm")),
        ]
        for label, value in rows:
            lines.append(f"{label:24}" + "".join(f"{value(kinds[k]):>26}" for k in kinds))
    with_volumes = summary["studies_with_volumes"]
    if with_volumes:
        lines.append(
            f"per study ({with_volumes} with volumes): mean |EF error| "
            f"{_fmt(summary['ef_abs_error_mean'], '{:.2f} points')}, |EDV error| "
            f"{_fmt(summary['edv_abs_error_ml_mean'], '{:.1f} mL')}, |ESV error| "
            f"{_fmt(summary['esv_abs_error_ml_mean'], '{:.1f} mL')}, |LV mass error| "
            f"{_fmt(summary['lv_mass_abs_error_g_mean'], '{:.1f} g')}"
        )
    lines += [f"note: {note}" for note in evaluation.notes]
    return "\n".join(lines)


def _pct(value: Any) -> str:
    return _fmt(value, "{:.1f}%")


def _fmt(value: Any, pattern: str) -> str:
    return "n/a" if value is None else pattern.format(value)
